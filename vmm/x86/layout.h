/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest physical memory layout of a kvrun microVM (x86_64). Everything the
 * VMM writes before entry lives below 1 MiB; the kernel is loaded at or above
 * 1 MiB. RAM is [0, min(mem, 3 GiB)) and, for bigger guests, the rest from
 * 4 GiB; the hole between holds the virtio-mmio windows, IOAPIC and LAPIC.
 *
 *   0x000500  GDT (4 entries)         0x009000  PML4
 *   0x000520  IDT (empty, limit 0)    0x00a000  PDPT
 *   0x007000  zero page (boot_params) 0x00b000  4 PDs (identity map 0-4 GiB, 2 MiB pages)
 *   0x008ff0  initial stack           0x020000  kernel command line
 *   0x09fc00  MP table (EBDA)         0x100000  kernel (bzImage), 16 MiB for vmlinux
 */
#ifndef KV_VMM_X86_LAYOUT_H
#define KV_VMM_X86_LAYOUT_H

#define LAYOUT_GDT	       0x500ULL
#define LAYOUT_IDT	       0x520ULL
#define LAYOUT_ZERO_PAGE       0x7000ULL
#define LAYOUT_BOOT_STACK      0x8ff0ULL
#define LAYOUT_PML4	       0x9000ULL
#define LAYOUT_PDPT	       0xa000ULL
#define LAYOUT_PD	       0xb000ULL /* 4 pages */
#define LAYOUT_PD_COUNT	       4
#define LAYOUT_CMDLINE	       0x20000ULL
#define LAYOUT_CMDLINE_MAX     0x10000ULL
#define LAYOUT_EBDA	       0x9fc00ULL /* MP floating pointer + config table */
#define LAYOUT_HIMEM	       0x100000ULL
#define LAYOUT_LOW_RAM_MAX     0xc0000000ULL  /* 3 GiB */
#define LAYOUT_HIGH_RAM	       0x100000000ULL /* 4 GiB */
#define LAYOUT_VIRTIO_BASE     0xd0000000ULL
#define LAYOUT_VIRTIO_STEP     0x1000ULL
#define LAYOUT_VIRTIO_GSI      5
#define LAYOUT_IOAPIC	       0xfec00000ULL
#define LAYOUT_LAPIC	       0xfee00000ULL
#define LAYOUT_TSS_ADDR	       0xfffbd000ULL  /* KVM_SET_TSS_ADDR: 3 pages below 4 GiB */
#define LAYOUT_PMEM_ALIGN      (128ULL << 20) /* a memory section: DAX needs it */
#define LAYOUT_PMEM_SIZE_ALIGN (2ULL << 20)

#define LAYOUT_SERIAL_PORT 0x3f8
#define LAYOUT_SERIAL_IRQ  4
#define LAYOUT_I8042_DATA  0x60
#define LAYOUT_I8042_CMD   0x64

#endif
