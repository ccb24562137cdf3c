/* SPDX-License-Identifier: Apache-2.0 */
/* Boot CPU state: GDT, identity page tables, sregs/regs/FPU/MSRs. */
#include <string.h>
#include <sys/mman.h>

#include "tap.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/regs.h"

#define RAM_SIZE (16ULL << 20)

/* Walk the 4-level tables the way the MMU does; returns the physical address or ~0. */
static uint64_t walk(struct gm *gm, uint64_t cr3, uint64_t va)
{
	uint64_t *pml4 = gm_ptr(gm, cr3, 4096);
	uint64_t e = pml4[(va >> 39) & 511];
	if (!(e & 1))
		return ~0ULL;
	uint64_t *pdpt = gm_ptr(gm, e & ~0xfffULL, 4096);
	e = pdpt[(va >> 30) & 511];
	if (!(e & 1))
		return ~0ULL;
	uint64_t *pd = gm_ptr(gm, e & ~0xfffULL, 4096);
	e = pd[(va >> 21) & 511];
	if (!(e & 1) || !(e & 0x80))
		return ~0ULL;
	return (e & ~0x1fffffULL) | (va & 0x1fffff);
}

static void test_page_tables(void)
{
	struct gm gm = {0};
	gm.r[0] = (struct gm_region){
	    0, RAM_SIZE,
	    mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)};
	gm.n = 1;
	struct kv_err *err = NULL;
	ok(regs_pagetables_write(&gm, &err) == 0, "page tables: written");
	is_int(walk(&gm, LAYOUT_PML4, 0x1000000), 0x1000000, "identity: kernel at 16 MiB");
	is_int(walk(&gm, LAYOUT_PML4, 0x7000), 0x7000, "identity: zero page");
	is_int(walk(&gm, LAYOUT_PML4, 0xfee00000), 0xfee00000, "identity: LAPIC below 4 GiB");
	is_int(walk(&gm, LAYOUT_PML4, 0xffffffffULL), 0xffffffffULL,
	       "identity: last byte of 4 GiB");
	is_int(walk(&gm, LAYOUT_PML4, 0x100000000ULL), ~0ULL, "nothing mapped at 4 GiB");
	uint64_t *pml4 = gm_ptr(&gm, LAYOUT_PML4, 8);
	ok((pml4[0] & 3) == 3, "PML4[0] present and writable");

	ok(regs_gdt_write(&gm, &err) == 0, "GDT: written");
	uint64_t *gdt = gm_ptr(&gm, LAYOUT_GDT, 40);
	is_int(gdt[REGS_BOOT_CS / 8], regs_gdt_entry(0xa09b, 0, 0xfffff), "GDT: __BOOT_CS at 0x10");
	is_int(gdt[REGS_BOOT_DS / 8], regs_gdt_entry(0xc093, 0, 0xfffff), "GDT: __BOOT_DS at 0x18");
	is_int(regs_gdt_entry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffULL,
	       "GDT entry encoding (kernel's GDT_ENTRY)");
	struct gm small = {.n = 0};
	ok(regs_pagetables_write(&small, &err) < 0, "page tables: refused without low RAM");
	kv_err_free(err);
	munmap(gm.r[0].hva, RAM_SIZE);
}

static void test_sregs_regs(void)
{
	struct kvm_sregs s;
	memset(&s, 0xa5, sizeof(s));
	s.apic_base = 0xfee00900;
	regs_sregs_fill(&s);
	ok(s.cs.l == 1 && s.cs.db == 0 && s.cs.present && s.cs.s && s.cs.selector == REGS_BOOT_CS,
	   "CS: 64-bit code, __BOOT_CS");
	ok(s.cs.limit == 0xffffffff && s.cs.g, "CS: flat 4 GiB limit");
	ok(s.ds.selector == REGS_BOOT_DS && s.ss.selector == REGS_BOOT_DS &&
	       s.es.selector == REGS_BOOT_DS && s.ds.type == 3,
	   "DS/ES/SS: __BOOT_DS, read/write data");
	ok(s.tr.present && s.tr.type == 11, "TR: busy 64-bit TSS");
	ok((s.cr0 & (X86_CR0_PE | X86_CR0_PG)) == (X86_CR0_PE | X86_CR0_PG), "CR0: PE and PG");
	ok(s.cr4 & X86_CR4_PAE, "CR4: PAE");
	ok((s.efer & (X86_EFER_LME | X86_EFER_LMA)) == (X86_EFER_LME | X86_EFER_LMA),
	   "EFER: LME and LMA");
	is_int(s.cr3, LAYOUT_PML4, "CR3: PML4");
	is_int(s.gdt.base, LAYOUT_GDT, "GDTR base");
	is_int(s.apic_base, 0xfee00900, "apic_base from KVM kept");

	struct kvm_regs r;
	regs_regs_fill(&r, 0x1000000, LAYOUT_ZERO_PAGE);
	is_int(r.rip, 0x1000000, "RIP: entry");
	is_int(r.rsi, LAYOUT_ZERO_PAGE, "RSI: zero page");
	is_int(r.rflags, 2, "RFLAGS: IF clear, reserved bit 1 set");

	struct kvm_fpu f;
	regs_fpu_fill(&f);
	ok(f.fcw == 0x37f && f.mxcsr == 0x1f80, "FPU: reset FCW and MXCSR");

	struct kvm_msr_entry e[REGS_MSR_MAX];
	unsigned n = regs_msrs_fill(e);
	ok(n > 0 && n <= REGS_MSR_MAX, "MSRs: some");
	bool mtrr = false;
	for (unsigned i = 0; i < n; i++)
		mtrr |= e[i].index == 0x2ff && e[i].data == ((1 << 11) | 6);
	ok(mtrr, "MSRs: MTRR default type write-back, enabled");
}

int main(void)
{
	test_page_tables();
	test_sregs_regs();
	return tap_done();
}
