/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot file format (see snapshot.h): CRC32C, the state writer, and
 * the parser that validates a state file like untrusted input. Pure code:
 * no KVM, no files, so the unit tests and the fuzz target
 * (tests/fuzz/fuzz_snapshot.c) drive it with hostile buffers.
 */
#include <string.h>

#include "vmm/ram.h"
#include "vmm/serial.h"
#include "vmm/snapshot.h"

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

/* ---------------------------------------------------------------- CRC32C */

#define CRC32C_POLY 0x82f63b78u /* Castagnoli, reflected */

uint32_t snap_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	static bool table_ready;
	if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) {
		/* Idempotent: racing threads compute the same values. */
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
			__atomic_store_n(&table[i], c, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&table_ready, true, __ATOMIC_RELEASE);
	}
	const uint8_t *p = buf;
	uint32_t c = ~crc;
	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t snap_crc32c_hw(uint32_t crc, const void *buf,
								 size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}
#endif

uint32_t snap_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return snap_crc32c_hw(crc, buf, len);
#endif
	return snap_crc32c_sw(crc, buf, len);
}

/* CRC of a buffer whose 4 bytes at crc_off count as zero. */
static uint32_t snap_crc_skip(const uint8_t *buf, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = snap_crc32c(0, buf, crc_off);
	c = snap_crc32c(c, zero, sizeof(zero));
	return snap_crc32c(c, buf + crc_off + 4, len - crc_off - 4);
}

/* ---------------------------------------------------------------- writer */

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->cap = 64 << 10;
	w->buf = kv_malloc0(w->cap);
	w->len = sizeof(struct snap_hdr);
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static void snap_writer_reserve(struct snap_writer *w, size_t more)
{
	if (w->len + more <= w->cap)
		return;
	size_t cap = w->cap;
	while (cap < w->len + more)
		cap *= 2;
	uint8_t *nb = kv_malloc0(cap);
	memcpy(nb, w->buf, w->len);
	free(w->buf);
	w->buf = nb;
	w->cap = cap;
}

void snap_writer_add(struct snap_writer *w, uint32_t type, uint32_t index, const void *data,
		     size_t len)
{
	struct snap_sec sec = {.type = type, .index = index, .size = len};
	snap_writer_reserve(w, sizeof(sec) + ALIGN8(len));
	memcpy(w->buf + w->len, &sec, sizeof(sec));
	memcpy(w->buf + w->len + sizeof(sec), data, len);
	/* The padding is already zero (kv_malloc0). */
	w->len += sizeof(sec) + ALIGN8(len);
	w->nsections++;
}

void snap_writer_finish(struct snap_writer *w, const uint8_t id[SNAP_ID_LEN], uint64_t realtime_ns)
{
	struct snap_hdr h = {
	    .version = SNAP_VERSION,
	    .hdr_size = sizeof(h),
	    .file_size = w->len,
	    .nsections = w->nsections,
	    .saved_realtime_ns = realtime_ns,
	};
	memcpy(h.magic, SNAP_MAGIC, SNAP_MAGIC_LEN);
	memcpy(h.id, id, SNAP_ID_LEN);
	memcpy(w->buf, &h, sizeof(h));
	uint32_t crc = snap_crc_skip(w->buf, w->len, offsetof(struct snap_hdr, crc32c));
	memcpy(w->buf + offsetof(struct snap_hdr, crc32c), &crc, sizeof(crc));
}

/* ---------------------------------------------------------------- parser */

const char *snap_sec_name(uint32_t type)
{
	static const char *const names[SNAP_SEC_TYPES] = {
	    [SNAP_SEC_MACHINE] = "machine",
	    [SNAP_SEC_CPUID] = "cpuid",
	    [SNAP_SEC_REGS] = "regs",
	    [SNAP_SEC_SREGS] = "sregs",
	    [SNAP_SEC_FPU] = "fpu",
	    [SNAP_SEC_XSAVE] = "xsave",
	    [SNAP_SEC_XCRS] = "xcrs",
	    [SNAP_SEC_DEBUGREGS] = "debugregs",
	    [SNAP_SEC_LAPIC] = "lapic",
	    [SNAP_SEC_MSRS] = "msrs",
	    [SNAP_SEC_EVENTS] = "vcpu-events",
	    [SNAP_SEC_MP_STATE] = "mp-state",
	    [SNAP_SEC_IRQCHIP] = "irqchip",
	    [SNAP_SEC_PIT] = "pit",
	    [SNAP_SEC_CLOCK] = "clock",
	    [SNAP_SEC_SERIAL] = "serial",
	    [SNAP_SEC_VIRTIO] = "virtio",
	};
	return type < SNAP_SEC_TYPES && names[type] ? names[type] : "unknown";
}

/* The exact payload size of a fixed-size section, 0 for variable ones. */
static uint64_t snap_sec_fixed_size(uint32_t type)
{
	switch (type) {
	case SNAP_SEC_MACHINE: return sizeof(struct snap_machine);
	case SNAP_SEC_REGS: return sizeof(struct kvm_regs);
	case SNAP_SEC_SREGS: return sizeof(struct kvm_sregs);
	case SNAP_SEC_FPU: return sizeof(struct kvm_fpu);
	case SNAP_SEC_XCRS: return sizeof(struct kvm_xcrs);
	case SNAP_SEC_DEBUGREGS: return sizeof(struct kvm_debugregs);
	case SNAP_SEC_LAPIC: return sizeof(struct kvm_lapic_state);
	case SNAP_SEC_EVENTS: return sizeof(struct kvm_vcpu_events);
	case SNAP_SEC_MP_STATE: return sizeof(struct kvm_mp_state);
	case SNAP_SEC_IRQCHIP: return sizeof(struct kvm_irqchip);
	case SNAP_SEC_PIT: return sizeof(struct kvm_pit_state2);
	case SNAP_SEC_CLOCK: return sizeof(struct kvm_clock_data);
	case SNAP_SEC_SERIAL: return sizeof(struct serial_state);
	case SNAP_SEC_VIRTIO: return sizeof(struct snap_virtio);
	default: return 0;
	}
}

static int snap_sec_size_check(const struct snap_sec *sec, struct kv_err **err)
{
	const char *name = snap_sec_name(sec->type);
	uint64_t want = snap_sec_fixed_size(sec->type);
	if (want && sec->size != want)
		return kv_err_plain(err, EINVAL, "section %s %u: %llu bytes, expected %llu", name,
				    sec->index, (unsigned long long)sec->size,
				    (unsigned long long)want);
	uint64_t unit = 0, max = 0;
	if (sec->type == SNAP_SEC_CPUID) {
		unit = sizeof(struct kvm_cpuid_entry2);
		max = SNAP_MAX_CPUID;
	} else if (sec->type == SNAP_SEC_MSRS) {
		unit = sizeof(struct kvm_msr_entry);
		max = SNAP_MAX_MSRS;
	} else if (sec->type == SNAP_SEC_XSAVE) {
		if (sec->size < SNAP_XSAVE_MIN || sec->size > SNAP_XSAVE_MAX || sec->size % 4)
			return kv_err_plain(err, EINVAL, "section %s %u: %llu bytes", name,
					    sec->index, (unsigned long long)sec->size);
	}
	if (unit && (sec->size == 0 || sec->size % unit || sec->size / unit > max))
		return kv_err_plain(err, EINVAL,
				    "section %s %u: %llu bytes is not 1 to %llu entries of %llu",
				    name, sec->index, (unsigned long long)sec->size,
				    (unsigned long long)max, (unsigned long long)unit);
	return 0;
}

/* Where a section goes in the parsed view; NULL when its index is out of range. */
static struct snap_blob *snap_sec_slot(struct snap *s, const struct snap_sec *sec)
{
	uint32_t t = sec->type, i = sec->index;
	if (t >= SNAP_VCPU_FIRST && t <= SNAP_SEC_MP_STATE)
		return i < SNAP_MAX_VCPUS ? &s->vcpu[i][t - SNAP_VCPU_FIRST] : NULL;
	switch (t) {
	case SNAP_SEC_IRQCHIP: return i < SNAP_IRQCHIPS ? &s->irqchip[i] : NULL;
	case SNAP_SEC_VIRTIO: return i < SNAP_MAX_VIRTIO ? &s->virtio[i] : NULL;
	case SNAP_SEC_PIT: return i == 0 ? &s->pit : NULL;
	case SNAP_SEC_CLOCK: return i == 0 ? &s->clock : NULL;
	case SNAP_SEC_SERIAL: return i == 0 ? &s->serial : NULL;
	default: return NULL;
	}
}

static int snap_sections_index(const uint8_t *buf, size_t len, struct snap *s, bool *have_machine,
			       struct kv_err **err)
{
	size_t off = sizeof(struct snap_hdr);
	for (uint32_t n = 0; n < s->hdr.nsections; n++) {
		struct snap_sec sec;
		if (len - off < sizeof(sec))
			return kv_err_plain(err, EINVAL,
					    "section %u: header past the end of the file", n);
		memcpy(&sec, buf + off, sizeof(sec));
		off += sizeof(sec);
		if (sec.type == 0 || sec.type >= SNAP_SEC_TYPES)
			return kv_err_plain(err, EINVAL, "section %u: unknown type %u", n,
					    sec.type);
		if (sec.size > len - off || ALIGN8(sec.size) > len - off)
			return kv_err_plain(
			    err, EINVAL, "section %s %u: %llu bytes run past the end of the file",
			    snap_sec_name(sec.type), sec.index, (unsigned long long)sec.size);
		if (snap_sec_size_check(&sec, err) < 0)
			return -1;
		if (sec.type == SNAP_SEC_MACHINE) {
			if (*have_machine || sec.index != 0)
				return kv_err_plain(err, EINVAL,
						    "section machine: duplicate or index %u",
						    sec.index);
			memcpy(&s->machine, buf + off, sizeof(s->machine));
			*have_machine = true;
		} else {
			struct snap_blob *b = snap_sec_slot(s, &sec);
			if (!b)
				return kv_err_plain(err, EINVAL,
						    "section %s: index %u out of range",
						    snap_sec_name(sec.type), sec.index);
			if (b->p)
				return kv_err_plain(err, EINVAL, "section %s %u: duplicate",
						    snap_sec_name(sec.type), sec.index);
			*b = (struct snap_blob){buf + off, sec.size};
		}
		off += ALIGN8(sec.size);
	}
	if (off != len)
		return kv_err_plain(err, EINVAL,
				    "%zu bytes of trailing data after the last section", len - off);
	return 0;
}

static int snap_machine_check(const struct snap_machine *mc, struct kv_err **err)
{
	struct gm gm;
	if (mc->arch != SNAP_ARCH_X86_64)
		return kv_err_plain(err, EINVAL,
				    "machine: architecture %u, this VMM runs x86_64 (%u)", mc->arch,
				    SNAP_ARCH_X86_64);
	if (mc->ncpus == 0 || mc->ncpus > SNAP_MAX_VCPUS)
		return kv_err_plain(err, EINVAL, "machine: %u vCPUs", mc->ncpus);
	if (mc->mem_size > SNAP_MEM_MAX)
		return kv_err_plain(err, EINVAL, "machine: memory size %llu is more than %llu",
				    (unsigned long long)mc->mem_size, SNAP_MEM_MAX);
	if (ram_layout(&gm, mc->mem_size, err) < 0)
		return kv_err_wrap(err, "machine: memory size %llu",
				   (unsigned long long)mc->mem_size);
	if (mc->nvirtio > SNAP_MAX_VIRTIO)
		return kv_err_plain(err, EINVAL, "machine: %u devices", mc->nvirtio);
	if (mc->flags & ~SNAP_F_PVM)
		return kv_err_plain(err, EINVAL, "machine: unknown flags %#x", mc->flags);
	if (mc->xsave_size && (mc->xsave_size < SNAP_XSAVE_MIN || mc->xsave_size > SNAP_XSAVE_MAX))
		return kv_err_plain(err, EINVAL, "machine: XSAVE size %u", mc->xsave_size);
	if (mc->has_xcrs > 1)
		return kv_err_plain(err, EINVAL, "machine: has_xcrs %u", mc->has_xcrs);
	for (unsigned i = 0; i < KV_ARRAY_SIZE(mc->reserved); i++)
		if (mc->reserved[i])
			return kv_err_plain(err, EINVAL, "machine: reserved field %u is set", i);
	return 0;
}

/* Which per-vCPU sections a vCPU must have, given the machine section. */
static bool snap_vcpu_sec_required(const struct snap_machine *mc, enum snap_sec_type t)
{
	switch (t) {
	case SNAP_SEC_FPU: return mc->xsave_size == 0;
	case SNAP_SEC_XSAVE: return mc->xsave_size != 0;
	case SNAP_SEC_XCRS: return mc->has_xcrs;
	default: return true;
	}
}

static int snap_presence_check(const struct snap *s, struct kv_err **err)
{
	const struct snap_machine *mc = &s->machine;
	for (unsigned c = 0; c < SNAP_MAX_VCPUS; c++)
		for (unsigned t = SNAP_VCPU_FIRST; t <= SNAP_SEC_MP_STATE; t++) {
			bool want = c < mc->ncpus && snap_vcpu_sec_required(mc, t);
			bool have = snap_vcpu_sec(s, c, t)->p != NULL;
			if (want != have)
				return kv_err_plain(err, EINVAL, "vCPU %u: section %s %s", c,
						    snap_sec_name(t),
						    have ? "not expected" : "missing");
		}
	for (unsigned i = 0; i < SNAP_IRQCHIPS; i++)
		if (!s->irqchip[i].p)
			return kv_err_plain(err, EINVAL, "section irqchip %u missing", i);
	if (!s->pit.p || !s->clock.p || !s->serial.p)
		return kv_err_plain(err, EINVAL, "section %s missing",
				    !s->pit.p	  ? "pit"
				    : !s->clock.p ? "clock"
						  : "serial");
	for (unsigned i = 0; i < SNAP_MAX_VIRTIO; i++)
		if ((i < mc->nvirtio) != (s->virtio[i].p != NULL))
			return kv_err_plain(err, EINVAL, "section virtio %u %s", i,
					    s->virtio[i].p ? "not expected" : "missing");
	return 0;
}

static int snap_vcpu_check(const struct snap *s, unsigned c, struct kv_err **err)
{
	const struct snap_blob *b = snap_vcpu_sec(s, c, SNAP_SEC_XSAVE);
	if (b->p && b->len != s->machine.xsave_size)
		return kv_err_plain(err, EINVAL, "vCPU %u: xsave is %llu bytes, machine says %u", c,
				    (unsigned long long)b->len, s->machine.xsave_size);
	struct kvm_mp_state mp;
	memcpy(&mp, snap_vcpu_sec(s, c, SNAP_SEC_MP_STATE)->p, sizeof(mp));
	if (mp.mp_state > KVM_MP_STATE_SIPI_RECEIVED)
		return kv_err_plain(err, EINVAL, "vCPU %u: mp-state %u", c, mp.mp_state);
	struct kvm_vcpu_events ev;
	memcpy(&ev, snap_vcpu_sec(s, c, SNAP_SEC_EVENTS)->p, sizeof(ev));
	const uint32_t ev_flags = KVM_VCPUEVENT_VALID_NMI_PENDING |
				  KVM_VCPUEVENT_VALID_SIPI_VECTOR | KVM_VCPUEVENT_VALID_SHADOW |
				  KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD |
				  KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	if ((ev.flags & ~ev_flags) || ev.exception.nr >= 32 || ev.exception.injected > 1 ||
	    ev.exception.pending > 1 || ev.interrupt.injected > 1 || ev.nmi.injected > 1 ||
	    ev.nmi.pending > 1 || ev.nmi.masked > 1)
		return kv_err_plain(err, EINVAL, "vCPU %u: vcpu-events out of range (flags %#x)", c,
				    ev.flags);
	b = snap_vcpu_sec(s, c, SNAP_SEC_XCRS);
	if (b->p) {
		struct kvm_xcrs x;
		memcpy(&x, b->p, sizeof(x));
		if (x.nr_xcrs > KVM_MAX_XCRS || x.flags)
			return kv_err_plain(err, EINVAL, "vCPU %u: xcrs count %u flags %#x", c,
					    x.nr_xcrs, x.flags);
	}
	struct kvm_debugregs dr;
	memcpy(&dr, snap_vcpu_sec(s, c, SNAP_SEC_DEBUGREGS)->p, sizeof(dr));
	if (dr.flags)
		return kv_err_plain(err, EINVAL, "vCPU %u: debugregs flags %#llx", c,
				    (unsigned long long)dr.flags);
	b = snap_vcpu_sec(s, c, SNAP_SEC_MSRS);
	for (uint64_t i = 0; i < b->len / sizeof(struct kvm_msr_entry); i++) {
		struct kvm_msr_entry e;
		memcpy(&e, b->p + i * sizeof(e), sizeof(e));
		if (e.reserved)
			return kv_err_plain(err, EINVAL, "vCPU %u: MSR 0x%x: reserved field set", c,
					    e.index);
	}
	b = snap_vcpu_sec(s, c, SNAP_SEC_CPUID);
	const uint32_t cpuid_flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX |
				     KVM_CPUID_FLAG_STATEFUL_FUNC | KVM_CPUID_FLAG_STATE_READ_NEXT;
	for (uint64_t i = 0; i < b->len / sizeof(struct kvm_cpuid_entry2); i++) {
		struct kvm_cpuid_entry2 e;
		memcpy(&e, b->p + i * sizeof(e), sizeof(e));
		if (e.flags & ~cpuid_flags)
			return kv_err_plain(err, EINVAL, "vCPU %u: CPUID 0x%x flags %#x", c,
					    e.function, e.flags);
	}
	return 0;
}

static int snap_pit_check(const struct snap_blob *b, struct kv_err **err)
{
	struct kvm_pit_state2 pit;
	memcpy(&pit, b->p, sizeof(pit));
	if (pit.flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON))
		return kv_err_plain(err, EINVAL, "pit: flags %#x", pit.flags);
	for (unsigned i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *ch = &pit.channels[i];
		/* i8254.c: modes 0-5 (0xff: never programmed, as reset leaves it),
		 * read/write states RW_STATE_LSB(1)..WORD1(4). */
		if ((ch->mode > 5 && ch->mode != 0xff) || ch->rw_mode > 4 || ch->read_state > 4 ||
		    ch->write_state > 4 || ch->bcd > 1 || ch->gate > 1 || ch->status_latched > 1 ||
		    ch->count_latched > 4)
			return kv_err_plain(err, EINVAL, "pit: channel %u out of range", i);
	}
	return 0;
}

#define PIT_COUNT_MAX 0x10000 /* a count of 0 means 65536 */

/*
 * Whether the guest has no use for the PIT: channel 0 never programmed
 * (mode 0xff) or shut down the way Linux does once the LAPIC timer takes
 * over (i8253.c pit_shutdown(): mode 0, count 0, its one interrupt long
 * past), channel 2 gated off (no speaker, no calibration loop on port
 * 0x61). Channel 1 has no output. A restore of such a guest creates no PIT.
 */
bool snap_pit_idle(const struct snap *s)
{
	struct kvm_pit_state2 pit;
	memcpy(&pit, s->pit.p, sizeof(pit));
	const struct kvm_pit_channel_state *c0 = &pit.channels[0], *c2 = &pit.channels[2];
	bool c0_idle = c0->mode == 0xff || (c0->mode == 0 && c0->count == PIT_COUNT_MAX);
	return c0_idle && !c2->gate && !pit.flags;
}

static int snap_vm_check(const struct snap *s, struct kv_err **err)
{
	for (unsigned i = 0; i < SNAP_IRQCHIPS; i++) {
		struct kvm_irqchip chip;
		memcpy(&chip, s->irqchip[i].p, sizeof(chip));
		if (chip.chip_id != i || chip.pad)
			return kv_err_plain(err, EINVAL, "irqchip %u: chip id %u", i, chip.chip_id);
	}
	if (snap_pit_check(&s->pit, err) < 0)
		return -1;
	struct serial_state ser;
	memcpy(&ser, s->serial.p, sizeof(ser));
	if (serial_state_check(&ser, err) < 0)
		return -1;
	for (unsigned i = 0; i < s->machine.nvirtio; i++) {
		struct snap_virtio v;
		memcpy(&v, s->virtio[i].p, sizeof(v));
		if (snap_virtio_check(&v, s->machine.mem_size, err) < 0)
			return kv_err_wrap(err, "virtio %u", i);
	}
	return 0;
}

static int snap_hdr_check(const uint8_t *buf, size_t len, struct snap_hdr *h, struct kv_err **err)
{
	if (len < sizeof(*h))
		return kv_err_plain(err, EINVAL, "truncated: %zu bytes, the header alone is %zu",
				    len, sizeof(*h));
	memcpy(h, buf, sizeof(*h));
	if (memcmp(h->magic, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
		return kv_err_plain(err, EINVAL, "not a kvrun snapshot state file (bad magic)");
	if (h->version != SNAP_VERSION)
		return kv_err_plain(err, EINVAL,
				    "snapshot format version %u is not supported (this kvrun-vmm "
				    "reads version %u)",
				    h->version, SNAP_VERSION);
	if (h->hdr_size != sizeof(*h))
		return kv_err_plain(err, EINVAL, "header size %u, expected %zu", h->hdr_size,
				    sizeof(*h));
	if (h->file_size != len)
		return kv_err_plain(err, EINVAL, "%s: the header says %llu bytes, the file has %zu",
				    h->file_size > len ? "truncated" : "trailing data",
				    (unsigned long long)h->file_size, len);
	if (len > SNAP_STATE_MAX)
		return kv_err_plain(err, EFBIG, "%zu bytes, more than %u", len, SNAP_STATE_MAX);
	uint32_t crc = snap_crc_skip(buf, len, offsetof(struct snap_hdr, crc32c));
	if (crc != h->crc32c)
		return kv_err_plain(err, EINVAL,
				    "checksum mismatch (stored %08x, computed %08x): the file is "
				    "corrupt",
				    h->crc32c, crc);
	if (h->nsections > SNAP_MAX_SECTIONS)
		return kv_err_plain(err, EINVAL, "%u sections, at most %u", h->nsections,
				    SNAP_MAX_SECTIONS);
	return 0;
}

int snap_parse(const uint8_t *buf, size_t len, struct snap *s, struct kv_err **err)
{
	memset(s, 0, sizeof(*s));
	bool have_machine = false;
	if (snap_hdr_check(buf, len, &s->hdr, err) < 0 ||
	    snap_sections_index(buf, len, s, &have_machine, err) < 0)
		return -1;
	if (!have_machine)
		return kv_err_plain(err, EINVAL, "section machine missing");
	if (snap_machine_check(&s->machine, err) < 0 || snap_presence_check(s, err) < 0)
		return -1;
	for (unsigned c = 0; c < s->machine.ncpus; c++)
		if (snap_vcpu_check(s, c, err) < 0)
			return -1;
	if (snap_vm_check(s, err) < 0)
		return -1;
	s->buf = (uint8_t *)buf;
	s->len = len;
	return 0;
}

/* ------------------------------------------------------------ memory file */

void snap_mem_hdr_fill(struct snap_mem_hdr *h, const uint8_t id[SNAP_ID_LEN], uint64_t mem_size,
		       uint64_t data_bytes)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, SNAP_MEM_MAGIC, SNAP_MAGIC_LEN);
	h->version = SNAP_VERSION;
	h->hdr_size = sizeof(*h);
	h->data_offset = SNAP_MEM_DATA_OFFSET;
	h->mem_size = mem_size;
	memcpy(h->id, id, SNAP_ID_LEN);
	h->data_bytes = data_bytes;
	h->crc32c =
	    snap_crc_skip((const uint8_t *)h, sizeof(*h), offsetof(struct snap_mem_hdr, crc32c));
}

int snap_mem_hdr_check(const struct snap_mem_hdr *h, const struct snap *s, uint64_t file_size,
		       struct kv_err **err)
{
	if (memcmp(h->magic, SNAP_MEM_MAGIC, SNAP_MAGIC_LEN) != 0)
		return kv_err_plain(err, EINVAL, "not a kvrun snapshot memory file (bad magic)");
	if (h->version != SNAP_VERSION)
		return kv_err_plain(err, EINVAL,
				    "memory file format version %u is not supported (this "
				    "kvrun-vmm reads version %u)",
				    h->version, SNAP_VERSION);
	uint32_t crc =
	    snap_crc_skip((const uint8_t *)h, sizeof(*h), offsetof(struct snap_mem_hdr, crc32c));
	if (h->hdr_size != sizeof(*h) || crc != h->crc32c)
		return kv_err_plain(err, EINVAL,
				    "memory file header is corrupt (checksum mismatch)");
	if (memcmp(h->id, s->hdr.id, SNAP_ID_LEN) != 0)
		return kv_err_plain(
		    err, EINVAL, "memory file belongs to another snapshot (snapshot ids differ)");
	if (h->data_offset != SNAP_MEM_DATA_OFFSET)
		return kv_err_plain(err, EINVAL, "memory file data offset %llu, expected %llu",
				    (unsigned long long)h->data_offset, SNAP_MEM_DATA_OFFSET);
	if (h->mem_size != s->machine.mem_size)
		return kv_err_plain(err, EINVAL,
				    "memory size mismatch: the memory file holds %llu bytes, the "
				    "state says %llu",
				    (unsigned long long)h->mem_size,
				    (unsigned long long)s->machine.mem_size);
	if (file_size != h->data_offset + h->mem_size)
		return kv_err_plain(err, EINVAL,
				    "memory file is %llu bytes, expected %llu (truncated or wrong "
				    "memory size)",
				    (unsigned long long)file_size,
				    (unsigned long long)(h->data_offset + h->mem_size));
	return 0;
}

/* ------------------------------------------------------- device sections */

static bool snap_range_in_ram(const struct gm *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->n; i++) {
		const struct gm_region *r = &gm->r[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return true;
	}
	return false;
}

static int snap_queue_check(const struct virtio_mmio_queue_state *q, unsigned i,
			    const struct gm *gm, struct kv_err **err)
{
	if (q->ready > 1 || q->reserved)
		return kv_err_plain(err, EINVAL, "queue %u: ready %u", i, q->ready);
	if (q->num > 32768 || (q->num & (q->num - 1)))
		return kv_err_plain(err, EINVAL, "queue %u: size %u", i, q->num);
	if (!q->ready)
		return 0;
	/* Split ring sizes (virtio 1.2 2.7): 16 per descriptor, 6 + 2n avail, 6 + 8n used. */
	if (q->num == 0 || !snap_range_in_ram(gm, q->desc, 16ULL * q->num) ||
	    !snap_range_in_ram(gm, q->avail, 6 + 2ULL * q->num) ||
	    !snap_range_in_ram(gm, q->used, 6 + 8ULL * q->num))
		return kv_err_plain(err, EINVAL, "queue %u: rings outside guest memory", i);
	return 0;
}

int snap_virtio_check(const struct snap_virtio *v, uint64_t mem_size, struct kv_err **err)
{
	struct gm gm;
	if (ram_layout(&gm, mem_size, err) < 0)
		return -1;
	if (v->config_size > SNAP_VIRTIO_CFG_SIZE)
		return kv_err_plain(err, EINVAL, "config size %u", v->config_size);
	if (v->st.device_id != v->device_id || v->st.nqueues > VIRTIO_MMIO_STATE_QUEUES)
		return kv_err_plain(err, EINVAL, "device id %u/%u with %u queues", v->device_id,
				    v->st.device_id, v->st.nqueues);
	if ((v->window_size == 0) != (v->window_gpa == 0) || v->window_gpa % (2ULL << 20) ||
	    v->window_size % (2ULL << 20) || v->window_size > SNAP_MEM_MAX ||
	    v->window_gpa > SNAP_MEM_MAX * 2)
		return kv_err_plain(err, EINVAL, "memory window 0x%llx+0x%llx",
				    (unsigned long long)v->window_gpa,
				    (unsigned long long)v->window_size);
	for (unsigned i = 0; i < v->st.nqueues; i++)
		if (snap_queue_check(&v->st.q[i], i, &gm, err) < 0)
			return -1;
	for (unsigned i = v->st.nqueues; i < VIRTIO_MMIO_STATE_QUEUES; i++)
		if (v->st.q[i].num || v->st.q[i].ready)
			return kv_err_plain(err, EINVAL, "queue %u: state past the device's queues",
					    i);
	return 0;
}
