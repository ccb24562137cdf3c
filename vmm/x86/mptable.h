/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel MultiProcessor Specification 1.4 tables at the EBDA: without ACPI
 * this is how Linux finds the other vCPUs and the IOAPIC (and with it the
 * interrupt routing for the virtio-mmio GSIs).
 */
#ifndef KV_VMM_X86_MPTABLE_H
#define KV_VMM_X86_MPTABLE_H

#include "lib/kv.h"
#include "vmm/mem.h"

#define MPTABLE_IOAPIC_PINS 24

/* Write the MP floating pointer and config table for ncpus at LAYOUT_EBDA. */
int mptable_write(struct gm *gm, unsigned ncpus, struct kv_err **err) KV_WUR;

#endif
