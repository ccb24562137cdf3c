/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot CPU's state for the 64-bit boot protocol: a flat GDT with
 * __BOOT_CS (0x10) and __BOOT_DS (0x18), identity page tables for the first
 * 4 GiB, long mode on, interrupts off, RSI = zero page. These functions only
 * write guest memory and fill KVM structs; vcpu.c applies them.
 */
#ifndef KV_VMM_X86_REGS_H
#define KV_VMM_X86_REGS_H

#include <linux/kvm.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/mem.h"

#define REGS_BOOT_CS  0x10
#define REGS_BOOT_DS  0x18
#define REGS_BOOT_TSS 0x20

#define X86_CR0_PE	 (1ULL << 0)
#define X86_CR0_ET	 (1ULL << 4)
#define X86_CR0_NE	 (1ULL << 5)
#define X86_CR0_PG	 (1ULL << 31)
#define X86_CR4_PAE	 (1ULL << 5)
#define X86_EFER_SCE	 (1ULL << 0)
#define X86_EFER_LME	 (1ULL << 8)
#define X86_EFER_LMA	 (1ULL << 10)
#define X86_RFLAGS_FIXED (1ULL << 1)
#define X86_RFLAGS_IF	 (1ULL << 9)

#define REGS_MSR_MAX 16

/* A GDT entry from base, limit and the flags/access word (kernel's GDT_ENTRY). */
uint64_t regs_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);
/* The GDT at LAYOUT_GDT and an empty IDT. */
int regs_gdt_write(struct gm *gm, struct kv_err **err) KV_WUR;
/* Identity map of [0, 4 GiB) with 2 MiB pages at LAYOUT_PML4.. */
int regs_pagetables_write(struct gm *gm, struct kv_err **err) KV_WUR;
/* Fill sregs for 64-bit mode (keeps the fields KVM_GET_SREGS gave, e.g. apic_base). */
void regs_sregs_fill(struct kvm_sregs *s);
void regs_regs_fill(struct kvm_regs *r, uint64_t entry, uint64_t zero_page);
void regs_fpu_fill(struct kvm_fpu *f);
/* Boot MSRs; returns the count written to e (at most REGS_MSR_MAX). */
unsigned regs_msrs_fill(struct kvm_msr_entry *e);

#endif
