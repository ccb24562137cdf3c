/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MP tables (Intel MP spec 1.4, chapter 4). Linux scans the last KiB of base
 * memory (0x9fc00) for the floating pointer, so the tables go there; the e820
 * map keeps that range reserved. ISA IRQ n is routed to IOAPIC pin n for all
 * 24 pins (edge, active high: "conforms to bus"), LINT0 is ExtINT (the PIC)
 * and LINT1 NMI, as on a PC.
 */
#include "vmm/x86/mptable.h"

#include <string.h>

#include "vmm/x86/layout.h"

#define MP_SPEC_REV	4
#define MP_APIC_VER	0x14
#define MP_IOAPIC_VER	0x11
#define MP_CPU_ENABLED	1
#define MP_CPU_BSP	2
#define MP_CPU_SIG	0x600 /* family 6 */
#define MP_CPU_FEATURES 0x201 /* FPU, APIC */

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature, featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "mpf size");
_Static_assert(sizeof(struct mpc_table) == 44, "mpc size");
_Static_assert(sizeof(struct mpc_cpu) == 20, "mpc_cpu size");
_Static_assert(sizeof(struct mpc_bus) == 8, "mpc_bus size");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "mpc_ioapic size");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "mpc_intsrc size");

static uint8_t mptable_checksum(const void *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += ((const uint8_t *)p)[i];
	return (uint8_t)-sum;
}

static size_t mptable_size(unsigned ncpus)
{
	return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
	       ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	       (MPTABLE_IOAPIC_PINS + 2) * sizeof(struct mpc_intsrc);
}

/* Entries after the header; returns the number written. */
static unsigned mptable_entries_write(uint8_t *p, unsigned ncpus)
{
	unsigned n = 0;
	uint8_t ioapic_id = ncpus; /* after the CPUs' APIC ids */
	for (unsigned i = 0; i < ncpus; i++, n++, p += sizeof(struct mpc_cpu)) {
		struct mpc_cpu c = {MP_PROCESSOR, i,
				    MP_APIC_VER,  MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
				    MP_CPU_SIG,	  MP_CPU_FEATURES,
				    {0, 0}};
		memcpy(p, &c, sizeof(c));
	}
	struct mpc_bus bus = {MP_BUS, 0, {'I', 'S', 'A', ' ', ' ', ' '}};
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus), n++;
	struct mpc_ioapic io = {MP_IOAPIC, ioapic_id, MP_IOAPIC_VER, 1, (uint32_t)LAYOUT_IOAPIC};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io), n++;
	for (unsigned pin = 0; pin < MPTABLE_IOAPIC_PINS; pin++, n++, p += 8) {
		struct mpc_intsrc s = {MP_INTSRC, MP_INT, 0, 0, pin, ioapic_id, pin};
		memcpy(p, &s, sizeof(s));
	}
	struct mpc_intsrc lint0 = {MP_LINTSRC, MP_EXTINT, 0, 0, 0, 0xff, 0};
	struct mpc_intsrc lint1 = {MP_LINTSRC, MP_NMI, 0, 0, 0, 0xff, 1};
	memcpy(p, &lint0, 8);
	memcpy(p + 8, &lint1, 8);
	return n + 2;
}

int mptable_write(struct gm *gm, unsigned ncpus, struct kv_err **err)
{
	if (ncpus == 0 || ncpus >= 255)
		return kv_err_plain(err, EINVAL, "MP table: %u CPUs", ncpus);
	size_t size = mptable_size(ncpus);
	if (LAYOUT_EBDA + size > LAYOUT_HIMEM - 0x60000) /* stay below 0xa0000 */
		return kv_err_plain(err, EINVAL, "MP table: %u CPUs do not fit the EBDA", ncpus);
	uint8_t *base = gm_ptr(gm, LAYOUT_EBDA, size);
	if (!base)
		return kv_err_plain(err, EINVAL, "MP table: EBDA is not guest RAM");
	memset(base, 0, size);
	struct mpf_intel mpf = {
	    {'_', 'M', 'P', '_'}, (uint32_t)LAYOUT_EBDA + sizeof(mpf), 1, MP_SPEC_REV, 0, {0}};
	mpf.checksum = mptable_checksum(&mpf, sizeof(mpf));
	memcpy(base, &mpf, sizeof(mpf));

	uint8_t *tbl = base + sizeof(mpf);
	struct mpc_table h = {
	    {'P', 'C', 'M', 'P'},   0, MP_SPEC_REV, 0, "KVRUN", "KVRUN-VMM", 0, 0, 0,
	    (uint32_t)LAYOUT_LAPIC, 0, 0,	    0};
	h.oemcount = mptable_entries_write(tbl + sizeof(h), ncpus);
	h.length = size - sizeof(mpf);
	memcpy(tbl, &h, sizeof(h));
	uint8_t sum = mptable_checksum(tbl, h.length);
	((struct mpc_table *)tbl)->checksum = sum;
	return 0;
}
