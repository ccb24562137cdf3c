/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Boot CPU state for the 64-bit boot protocol (boot.rst): "the CPU must be
 * in 64-bit mode with paging enabled; the range with setup_header.init_size
 * from the start address of the loaded kernel, the zero page and the command
 * line buffer get ident mapping; a GDT must be loaded with the descriptors
 * for selectors __BOOT_CS(0x10) and __BOOT_DS(0x18) ... interrupts must be
 * disabled; %rsi must hold the base address of the struct boot_params."
 */
#include "vmm/x86/regs.h"

#include <string.h>

#include "vmm/x86/layout.h"

/* Access/flags words for the descriptors (kernel's GDT_ENTRY_INIT). */
#define GDT_CODE64  0xa09b /* G, L, P, DPL0, code exec/read, accessed */
#define GDT_DATA    0xc093 /* G, D/B, P, DPL0, data read/write, accessed */
#define GDT_TSS	    0x808b /* G, P, 64-bit TSS (busy) */
#define GDT_ENTRIES 5

#define PTE_PRESENT (1ULL << 0)
#define PTE_RW	    (1ULL << 1)
#define PTE_PS	    (1ULL << 7)
#define PAGE_2M	    (2ULL << 20)

#define MSR_IA32_TSC		0x10
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MISC_ENABLE_FAST_STRING 1
#define MTRR_ENABLE		(1ULL << 11)
#define MTRR_TYPE_WB		6

#define FPU_FCW_DEFAULT	  0x37f
#define FPU_MXCSR_DEFAULT 0x1f80

#define GDT_ENTRY(flags, base, limit)                                                              \
	((((uint64_t)(base)&0xff000000u) << (56 - 24)) | (((uint64_t)(flags)&0x0000f0ffu) << 40) | \
	 (((uint64_t)(limit)&0x000f0000u) << (48 - 16)) | (((uint64_t)(base)&0x00ffffffu) << 16) | \
	 ((uint64_t)(limit)&0x0000ffffu))

static const uint64_t regs_gdt[GDT_ENTRIES] = {
    0,
    0,
    GDT_ENTRY(GDT_CODE64, 0, 0xfffff), /* __BOOT_CS */
    GDT_ENTRY(GDT_DATA, 0, 0xfffff),   /* __BOOT_DS */
    GDT_ENTRY(GDT_TSS, 0, 0xfffff),
};

uint64_t regs_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return GDT_ENTRY(flags, base, limit);
}

int regs_gdt_write(struct gm *gm, struct kv_err **err)
{
	uint64_t *gdt = gm_ptr(gm, LAYOUT_GDT, GDT_ENTRIES * 8);
	uint64_t *idt = gm_ptr(gm, LAYOUT_IDT, 8);
	if (!gdt || !idt)
		return kv_err_plain(err, EINVAL, "GDT: low memory is not guest RAM");
	memcpy(gdt, regs_gdt, sizeof(regs_gdt));
	*idt = 0;
	return 0;
}

int regs_pagetables_write(struct gm *gm, struct kv_err **err)
{
	uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gm_ptr(gm, LAYOUT_PDPT, 4096);
	uint64_t *pd = gm_ptr(gm, LAYOUT_PD, 4096 * LAYOUT_PD_COUNT);
	if (!pml4 || !pdpt || !pd)
		return kv_err_plain(err, EINVAL, "page tables: low memory is not guest RAM");
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
	for (unsigned i = 0; i < LAYOUT_PD_COUNT; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096ULL) | PTE_PRESENT | PTE_RW;
	for (unsigned i = 0; i < 512 * LAYOUT_PD_COUNT; i++)
		pd[i] = (i * PAGE_2M) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

static struct kvm_segment regs_segment_from_gdt(uint64_t entry, uint16_t selector)
{
	uint32_t limit = (entry & 0xffff) | ((entry >> 32) & 0xf0000);
	struct kvm_segment s = {
	    .base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24),
	    .selector = selector,
	    .type = (entry >> 40) & 0xf,
	    .s = (entry >> 44) & 1,
	    .dpl = (entry >> 45) & 3,
	    .present = (entry >> 47) & 1,
	    .avl = (entry >> 52) & 1,
	    .l = (entry >> 53) & 1,
	    .db = (entry >> 54) & 1,
	    .g = (entry >> 55) & 1,
	};
	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	return s;
}

void regs_sregs_fill(struct kvm_sregs *s)
{
	struct kvm_segment code = regs_segment_from_gdt(regs_gdt[2], REGS_BOOT_CS);
	struct kvm_segment data = regs_segment_from_gdt(regs_gdt[3], REGS_BOOT_DS);
	struct kvm_segment tss = regs_segment_from_gdt(regs_gdt[4], REGS_BOOT_TSS);
	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = tss;
	memset(&s->ldt, 0, sizeof(s->ldt));
	s->ldt.type = 2; /* an unusable but well-formed LDT */
	s->ldt.present = 1;
	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = GDT_ENTRIES * 8 - 1;
	s->idt.base = LAYOUT_IDT;
	s->idt.limit = 0;
	s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s->cr3 = LAYOUT_PML4;
	s->cr4 = X86_CR4_PAE;
	s->efer = X86_EFER_LME | X86_EFER_LMA;
}

void regs_regs_fill(struct kvm_regs *r, uint64_t entry, uint64_t zero_page)
{
	memset(r, 0, sizeof(*r));
	r->rip = entry;
	r->rsi = zero_page;
	r->rsp = LAYOUT_BOOT_STACK;
	r->rbp = LAYOUT_BOOT_STACK;
	r->rflags = X86_RFLAGS_FIXED; /* IF clear: interrupts off */
}

void regs_fpu_fill(struct kvm_fpu *f)
{
	memset(f, 0, sizeof(*f));
	f->fcw = FPU_FCW_DEFAULT;
	f->mxcsr = FPU_MXCSR_DEFAULT;
}

unsigned regs_msrs_fill(struct kvm_msr_entry *e)
{
	static const struct {
		uint32_t index;
		uint64_t data;
	} boot_msrs[] = {
	    {MSR_IA32_SYSENTER_CS, 0},
	    {MSR_IA32_SYSENTER_ESP, 0},
	    {MSR_IA32_SYSENTER_EIP, 0},
	    {MSR_STAR, 0},
	    {MSR_CSTAR, 0},
	    {MSR_KERNEL_GS_BASE, 0},
	    {MSR_SYSCALL_MASK, 0},
	    {MSR_LSTAR, 0},
	    {MSR_IA32_TSC, 0},
	    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
	    /* Write-back by default: without MTRRs Linux would treat RAM as uncached. */
	    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB},
	};
	unsigned n = 0;
	for (; n < KV_ARRAY_SIZE(boot_msrs) && n < REGS_MSR_MAX; n++) {
		memset(&e[n], 0, sizeof(e[n]));
		e[n].index = boot_msrs[n].index;
		e[n].data = boot_msrs[n].data;
	}
	return n;
}
