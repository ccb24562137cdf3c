/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot file format (vmm/snapshot_fmt.c) against hostile files: a
 * valid synthetic snapshot is built section by section, then every way a
 * file can be wrong is tried: flipped bytes anywhere, every truncation,
 * foreign magic and version, and, with the checksum recomputed so that the
 * deeper checks are reached, wrong sizes, counts, indexes and values in
 * each section. Every one must be refused with a message naming what is
 * wrong; none may crash (ASan/UBSan).
 */
#include <string.h>

#include "tap.h"
#include "vmm/snapshot.h"

#define MIB	       (1ULL << 20)
#define PAYLOAD_MAX    (64u << 10)
#define TEST_MEM       (64 * MIB)
#define TEST_CPUS      2
#define TEST_NVIRTIO   2
#define TEST_XSAVE     4096
#define CRC_OFF	       offsetof(struct snap_hdr, crc32c)
#define VERSION_OFF    offsetof(struct snap_hdr, version)
#define FILE_SIZE_OFF  offsetof(struct snap_hdr, file_size)
#define NSECTIONS_OFF  offsetof(struct snap_hdr, nsections)
#define FIRST_SEC_OFF  sizeof(struct snap_hdr)
#define SEC_HDR	       sizeof(struct snap_sec)
#define CPUID_ENTRIES  3
#define MSR_ENTRIES    4
#define ALIGN8(x)      (((x) + 7) & ~(size_t)7)
#define FUZZ_ROUNDS    3000
#define TEST_RING_BASE 0x100000ULL

/* A mutator sees each section before it is written: change it, or drop it (false). */
typedef bool (*mutator_fn)(uint32_t type, uint32_t index, uint8_t *p, size_t *len, void *ctx);

struct builder {
	struct snap_writer w;
	mutator_fn mut;
	void *ctx;
	uint8_t *scratch;
};

/* The builder at work, for mutators that add sections of their own. */
static struct builder *building;

static void add(struct builder *b, uint32_t type, uint32_t index, const void *data, size_t len)
{
	memset(b->scratch, 0, PAYLOAD_MAX);
	memcpy(b->scratch, data, len);
	if (b->mut && !b->mut(type, index, b->scratch, &len, b->ctx))
		return;
	snap_writer_add(&b->w, type, index, b->scratch, len);
}

static void add_vcpu(struct builder *b, unsigned c)
{
	static uint8_t zero[PAYLOAD_MAX];
	struct kvm_cpuid_entry2 cpuid[CPUID_ENTRIES] = {
	    {.function = 0},
	    {.function = 1},
	    {.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX}};
	struct kvm_msr_entry msrs[MSR_ENTRIES] = {{.index = 0x6e0, .data = 5},
						  {.index = 0x10, .data = 1000},
						  {.index = 0xc0000080},
						  {.index = 0x1b}};
	struct kvm_xcrs xcrs = {.nr_xcrs = 1};
	add(b, SNAP_SEC_MP_STATE, c, zero, sizeof(struct kvm_mp_state));
	add(b, SNAP_SEC_REGS, c, zero, sizeof(struct kvm_regs));
	add(b, SNAP_SEC_SREGS, c, zero, sizeof(struct kvm_sregs));
	add(b, SNAP_SEC_XSAVE, c, zero, TEST_XSAVE);
	add(b, SNAP_SEC_XCRS, c, &xcrs, sizeof(xcrs));
	add(b, SNAP_SEC_DEBUGREGS, c, zero, sizeof(struct kvm_debugregs));
	add(b, SNAP_SEC_LAPIC, c, zero, sizeof(struct kvm_lapic_state));
	add(b, SNAP_SEC_MSRS, c, msrs, sizeof(msrs));
	add(b, SNAP_SEC_CPUID, c, cpuid, sizeof(cpuid));
	add(b, SNAP_SEC_EVENTS, c, zero, sizeof(struct kvm_vcpu_events));
}

static void add_virtio(struct builder *b, unsigned i, uint32_t id)
{
	struct snap_virtio v;
	memset(&v, 0, sizeof(v));
	v.device_id = v.st.device_id = id;
	v.st.nqueues = 1;
	v.st.status = 15;
	v.st.q[0] = (struct virtio_mmio_queue_state){.desc = TEST_RING_BASE + i * 0x10000,
						     .avail = TEST_RING_BASE + i * 0x10000 + 0x1000,
						     .used = TEST_RING_BASE + i * 0x10000 + 0x2000,
						     .num = 256,
						     .ready = 1};
	v.config_size = 8;
	if (id == 27) {
		v.window_gpa = 0x100000000ULL;
		v.window_size = 16 * MIB;
	}
	add(b, SNAP_SEC_VIRTIO, i, &v, sizeof(v));
}

/* A complete snapshot state: 2 vCPUs, a blk and a pmem device. */
static uint8_t *build(mutator_fn mut, void *ctx, size_t *len)
{
	struct builder b = {.mut = mut, .ctx = ctx, .scratch = kv_malloc0(PAYLOAD_MAX)};
	snap_writer_init(&b.w);
	building = &b;
	struct snap_machine mc = {.mem_size = TEST_MEM,
				  .arch = SNAP_ARCH_X86_64,
				  .ncpus = TEST_CPUS,
				  .nvirtio = TEST_NVIRTIO,
				  .flags = SNAP_F_PVM,
				  .tsc_khz = 2000000,
				  .xsave_size = TEST_XSAVE,
				  .has_xcrs = 1};
	add(&b, SNAP_SEC_MACHINE, 0, &mc, sizeof(mc));
	for (unsigned c = 0; c < TEST_CPUS; c++)
		add_vcpu(&b, c);
	for (unsigned i = 0; i < SNAP_IRQCHIPS; i++) {
		struct kvm_irqchip chip = {.chip_id = i};
		add(&b, SNAP_SEC_IRQCHIP, i, &chip, sizeof(chip));
	}
	struct kvm_pit_state2 pit;
	memset(&pit, 0, sizeof(pit));
	for (unsigned i = 0; i < 3; i++)
		pit.channels[i].mode = 0xff; /* never programmed, as KVM resets it */
	add(&b, SNAP_SEC_PIT, 0, &pit, sizeof(pit));
	struct kvm_clock_data clock = {.clock = 123456789};
	add(&b, SNAP_SEC_CLOCK, 0, &clock, sizeof(clock));
	struct serial_state ser = {.ier = 0x0f, .rx_len = 3, .rx_head = 63};
	add(&b, SNAP_SEC_SERIAL, 0, &ser, sizeof(ser));
	add_virtio(&b, 0, 2);
	add_virtio(&b, 1, 27);
	uint8_t id[SNAP_ID_LEN] = {1, 2, 3};
	snap_writer_finish(&b.w, id, 42);
	free(b.scratch);
	building = NULL;
	*len = b.w.len;
	return b.w.buf; /* the caller frees */
}

static void fix_crc(uint8_t *buf, size_t len)
{
	memset(buf + CRC_OFF, 0, 4);
	uint32_t crc = snap_crc32c(0, buf, len);
	memcpy(buf + CRC_OFF, &crc, 4);
}

/* Parse; on failure *msg is the message (static copy). Returns 0 on success. */
static int parse(const uint8_t *buf, size_t len, const char **msg)
{
	static char last[512];
	struct snap s;
	struct kv_err *err = NULL;
	int r = snap_parse(buf, len, &s, &err);
	snprintf(last, sizeof(last), "%s", err ? err->msg : "");
	kv_err_free(err);
	if (msg)
		*msg = last;
	return r;
}

/* Build with a mutator and expect a refusal whose message contains want. */
static void refused(mutator_fn mut, void *ctx, const char *want, const char *what)
{
	size_t len;
	uint8_t *buf = build(mut, ctx, &len);
	const char *msg;
	int r = parse(buf, len, &msg);
	ok(r < 0 && strstr(msg, want), "refused: %s (\"%s\")", what, msg);
	free(buf);
}

/* ------------------------------------------------------------- mutators */

struct target {
	uint32_t type, index;
	size_t off; /* byte to change, or (size_t)-1 for the length */
	uint64_t value;
	unsigned width;
};

static bool mut_field(uint32_t type, uint32_t index, uint8_t *p, size_t *len, void *ctx)
{
	const struct target *t = ctx;
	if (type != t->type || index != t->index)
		return true;
	if (t->off == (size_t)-1)
		*len = t->value;
	else
		memcpy(p + t->off, &t->value, t->width);
	return true;
}

static bool mut_drop(uint32_t type, uint32_t index, uint8_t *p, size_t *len, void *ctx)
{
	const struct target *t = ctx;
	return !(type == t->type && index == t->index);
}

static void field(uint32_t type, uint32_t index, size_t off, uint64_t value, unsigned width,
		  const char *want, const char *what)
{
	struct target t = {type, index, off, value, width};
	refused(mut_field, &t, want, what);
}

static void test_valid(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	struct snap s;
	struct kv_err *err = NULL;
	ok(snap_parse(buf, len, &s, &err) == 0, "a complete snapshot parses (%s)",
	   err ? err->msg : "ok");
	kv_err_free(err);
	is_int(s.machine.ncpus, TEST_CPUS, "machine: vCPUs");
	is_int(s.machine.mem_size, TEST_MEM, "machine: memory");
	is_int(snap_vcpu_sec(&s, 1, SNAP_SEC_MSRS)->len, MSR_ENTRIES * sizeof(struct kvm_msr_entry),
	       "vCPU 1 MSRs: all entries");
	is_int(snap_vcpu_sec(&s, 0, SNAP_SEC_XSAVE)->len, TEST_XSAVE, "vCPU 0 XSAVE size");
	ok(snap_vcpu_sec(&s, 0, SNAP_SEC_FPU)->p == NULL, "no FPU section when XSAVE is there");
	ok(s.virtio[1].p && !s.virtio[2].p, "two devices indexed");
	free(buf);
}

/* Which PIT states a restore does without (snap_pit_idle). */
static void test_pit_idle(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	struct snap s;
	struct kv_err *err = NULL;
	ok(snap_parse(buf, len, &s, &err) == 0, "parses");
	kv_err_free(err);
	ok(snap_pit_idle(&s), "never programmed: idle");
	struct kvm_pit_state2 pit;
	memcpy(&pit, s.pit.p, sizeof(pit));
	s.pit.p = (const void *)&pit;
	pit.channels[0].mode = 0; /* Linux's pit_shutdown(): mode 0, count 0 (65536) */
	pit.channels[0].count = 0x10000;
	ok(snap_pit_idle(&s), "shut down by Linux: idle");
	pit.channels[0].count = 1193;
	ok(!snap_pit_idle(&s), "a one-shot of 1 ms pending: in use");
	pit.channels[0].mode = 2;
	ok(!snap_pit_idle(&s), "periodic (mode 2): in use");
	pit.channels[0].mode = 3;
	pit.channels[0].count = 0x10000;
	ok(!snap_pit_idle(&s), "square wave (mode 3): in use");
	pit.channels[0].mode = 0xff;
	pit.channels[2].gate = 1;
	ok(!snap_pit_idle(&s), "channel 2 gated on (speaker, calibration): in use");
	pit.channels[2].gate = 0;
	pit.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	ok(!snap_pit_idle(&s), "speaker data on: in use");
	free(buf);
}

static void test_crc(void)
{
	is_int(snap_crc32c(0, "123456789", 9), 0xe3069283u, "CRC32C check value");
	is_int(snap_crc32c_sw(0, "123456789", 9), 0xe3069283u, "CRC32C check value (portable)");
	uint8_t data[1000];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = i * 7 + 3;
	bool same = true;
	for (unsigned n = 0; n < sizeof(data); n += 13)
		same &= snap_crc32c(5, data, n) == snap_crc32c_sw(5, data, n);
	ok(same, "hardware and portable CRC32C agree at every length");
	is_int(snap_crc32c(snap_crc32c(0, data, 300), data + 300, 700), snap_crc32c(0, data, 1000),
	       "CRC32C continues across calls");
}

/* Every single-bit flip anywhere in the file is caught. */
static void test_flips(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	unsigned caught = 0, total = 0;
	const char *msg = "";
	for (size_t i = 0; i < len; i++) {
		uint8_t bit = 1u << (i % 8);
		buf[i] ^= bit;
		caught += parse(buf, len, &msg) < 0;
		total++;
		buf[i] ^= bit;
	}
	ok(caught == total, "every bit flip refused (%u of %u)", caught, total);
	buf[len / 2] ^= 0x40;
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "checksum mismatch"),
	   "a flipped byte in a section: checksum mismatch (\"%s\")", msg);
	free(buf);
}

static void test_truncations(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	unsigned caught = 0;
	const char *msg = "";
	for (size_t n = 0; n < len; n++)
		caught += parse(buf, n, &msg) < 0;
	is_int(caught, len, "every truncation refused");
	ok(parse(buf, len - 100, &msg) < 0 && strstr(msg, "truncated"),
	   "truncated file says so (\"%s\")", msg);
	ok(parse(buf, 10, &msg) < 0 && strstr(msg, "truncated"), "10 bytes: truncated (\"%s\")",
	   msg);
	ok(parse(NULL, 0, &msg) < 0, "empty file refused");
	uint8_t *longer = kv_malloc0(len + 8);
	memcpy(longer, buf, len);
	ok(parse(longer, len + 8, &msg) < 0 && strstr(msg, "trailing data"),
	   "trailing bytes refused (\"%s\")", msg);
	free(longer);
	free(buf);
}

static void test_header(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	const char *msg;
	uint32_t v = 2;
	memcpy(buf + VERSION_OFF, &v, 4);
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "version 2 is not supported"),
	   "foreign version named (\"%s\")", msg);
	v = SNAP_VERSION;
	memcpy(buf + VERSION_OFF, &v, 4);
	buf[0] = 'X';
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "bad magic"), "bad magic (\"%s\")", msg);
	is_str(msg, "not a kvrun snapshot state file (bad magic)",
	       "  the verdict alone (no strerror)");
	buf[0] = 'K';
	uint64_t big = len + 4096;
	memcpy(buf + FILE_SIZE_OFF, &big, 8);
	fix_crc(buf, len);
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "truncated"),
	   "header size beyond the file: truncated (\"%s\")", msg);
	uint64_t real = len;
	memcpy(buf + FILE_SIZE_OFF, &real, 8);
	uint32_t nsec = 1u << 30;
	memcpy(buf + NSECTIONS_OFF, &nsec, 4);
	fix_crc(buf, len);
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "sections"), "absurd section count (\"%s\")",
	   msg);
	nsec = 3;
	memcpy(buf + NSECTIONS_OFF, &nsec, 4);
	fix_crc(buf, len);
	ok(parse(buf, len, &msg) < 0, "too few sections: refused (\"%s\")", msg);
	fix_crc(buf, len);
	free(buf);
}

/* A section header pointing past the end, and an unknown type, with a valid CRC. */
static void test_section_headers(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	const char *msg;
	struct snap_sec sec;
	memcpy(&sec, buf + FIRST_SEC_OFF, sizeof(sec));
	struct snap_sec bad = sec;
	bad.size = UINT64_MAX - 3;
	memcpy(buf + FIRST_SEC_OFF, &bad, sizeof(bad));
	fix_crc(buf, len);
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "past the end"),
	   "section size past the end (\"%s\")", msg);
	bad = sec;
	bad.type = 999;
	memcpy(buf + FIRST_SEC_OFF, &bad, sizeof(bad));
	fix_crc(buf, len);
	ok(parse(buf, len, &msg) < 0 && strstr(msg, "unknown type 999"), "unknown type (\"%s\")",
	   msg);
	free(buf);
}

static void test_sections(void)
{
	struct target t = {SNAP_SEC_REGS, 1, 0, 0, 0};
	refused(mut_drop, &t, "vCPU 1: section regs missing", "a vCPU without regs");
	t = (struct target){SNAP_SEC_IRQCHIP, 2, 0, 0, 0};
	refused(mut_drop, &t, "irqchip 2 missing", "no IOAPIC");
	t = (struct target){SNAP_SEC_MACHINE, 0, 0, 0, 0};
	refused(mut_drop, &t, "machine missing", "no machine section");
	t = (struct target){SNAP_SEC_VIRTIO, 1, 0, 0, 0};
	refused(mut_drop, &t, "virtio 1 missing", "a device missing");
	field(SNAP_SEC_REGS, 0, (size_t)-1, 100, 0, "expected", "regs of the wrong size");
	field(SNAP_SEC_LAPIC, 1, (size_t)-1, 1023, 0, "expected 1024", "LAPIC one byte short");
	field(SNAP_SEC_XSAVE, 0, (size_t)-1, 8192, 0, "machine says 4096", "XSAVE size mismatch");
	field(SNAP_SEC_XSAVE, 0, (size_t)-1, 100, 0, "xsave 0: 100 bytes", "XSAVE too small");
	field(SNAP_SEC_MSRS, 0, (size_t)-1, 17, 0, "entries of 16", "MSRs not whole entries");
	field(SNAP_SEC_CPUID, 0, (size_t)-1, 0, 0, "cpuid 0: 0 bytes", "empty CPUID");
	field(SNAP_SEC_MSRS, 1, 16 + offsetof(struct kvm_msr_entry, reserved), 1, 4,
	      "reserved field set", "MSR reserved field");
	field(SNAP_SEC_CPUID, 0, 8, 0x80, 4, "flags", "CPUID unknown flags");
	field(SNAP_SEC_MP_STATE, 0, 0, 7, 4, "mp-state 7", "MP state out of range");
	field(SNAP_SEC_EVENTS, 1, offsetof(struct kvm_vcpu_events, exception.nr), 40, 1,
	      "vcpu-events", "exception vector 40");
	field(SNAP_SEC_EVENTS, 0, offsetof(struct kvm_vcpu_events, flags), 0x1000, 4, "vcpu-events",
	      "unknown event flags");
	field(SNAP_SEC_XCRS, 0, 0, 17, 4, "xcrs count 17", "too many XCRs");
	field(SNAP_SEC_DEBUGREGS, 0, offsetof(struct kvm_debugregs, flags), 1, 4, "debugregs flags",
	      "debugregs flags");
	field(SNAP_SEC_IRQCHIP, 1, 0, 2, 4, "irqchip 1: chip id 2", "irqchip id mismatch");
	field(SNAP_SEC_PIT, 0, offsetof(struct kvm_pit_state2, channels[1].mode), 9, 1, "channel 1",
	      "PIT mode 9");
	field(SNAP_SEC_SERIAL, 0, offsetof(struct serial_state, rx_len), 65, 4, "serial",
	      "UART FIFO longer than 64");
	field(SNAP_SEC_SERIAL, 0, offsetof(struct serial_state, ier), 0x10, 1, "serial",
	      "UART IER unknown bits");
}

static void test_sections_index(void)
{
	/* Sections for a vCPU the machine does not have, or beyond any. */
	struct target m = {SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, ncpus), 1, 4};
	refused(mut_field, &m, "vCPU 1: section", "sections of a vCPU beyond ncpus");
	m.value = 0;
	refused(mut_field, &m, "0 vCPUs", "zero vCPUs");
	m.value = 65;
	refused(mut_field, &m, "65 vCPUs", "65 vCPUs");
	m = (struct target){SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, mem_size),
			    TEST_MEM + 4096, 8};
	refused(mut_field, &m, "not a multiple of 2 MiB", "memory size not 2 MiB aligned");
	m.value = 1ULL << 50;
	refused(mut_field, &m, "memory size", "absurd memory size");
	m = (struct target){SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, arch), 2, 4};
	refused(mut_field, &m, "architecture 2", "another architecture");
	m = (struct target){SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, flags), 6, 4};
	refused(mut_field, &m, "unknown flags", "unknown machine flags");
	m = (struct target){SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, nvirtio), 1, 4};
	refused(mut_field, &m, "virtio 1 not expected", "a device beyond nvirtio");
	m = (struct target){SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, reserved), 1, 4};
	refused(mut_field, &m, "reserved", "reserved machine field set");
	m = (struct target){SNAP_SEC_MACHINE, 0, offsetof(struct snap_machine, xsave_size), 0, 4};
	refused(mut_field, &m, "section fpu missing", "FPU expected but XSAVE present");
}

static void test_virtio(void)
{
	size_t q0 = offsetof(struct snap_virtio, st.q[0]);
	field(SNAP_SEC_VIRTIO, 0, q0 + offsetof(struct virtio_mmio_queue_state, num), 100, 2,
	      "queue 0: size 100", "queue size not a power of two");
	field(SNAP_SEC_VIRTIO, 0, q0 + offsetof(struct virtio_mmio_queue_state, desc),
	      TEST_MEM - 16, 8, "rings outside guest memory", "descriptor table past RAM");
	field(SNAP_SEC_VIRTIO, 1, q0 + offsetof(struct virtio_mmio_queue_state, used),
	      0xfffffffffffff000ULL, 8, "rings outside", "used ring at the top of the space");
	field(SNAP_SEC_VIRTIO, 0, q0 + offsetof(struct virtio_mmio_queue_state, ready), 2, 1,
	      "ready 2", "queue ready 2");
	field(SNAP_SEC_VIRTIO, 0, offsetof(struct snap_virtio, st.nqueues), 9, 4, "9 queues",
	      "9 queues");
	field(SNAP_SEC_VIRTIO, 0, offsetof(struct snap_virtio, config_size), 4096, 4,
	      "config size 4096", "config larger than the window");
	field(SNAP_SEC_VIRTIO, 1, offsetof(struct snap_virtio, st.device_id), 4, 4,
	      "device id 27/4", "transport id differs from the device's");
	field(SNAP_SEC_VIRTIO, 1, offsetof(struct snap_virtio, window_size), 4096, 8,
	      "memory window", "pmem window not 2 MiB aligned");
	field(SNAP_SEC_VIRTIO, 0, offsetof(struct snap_virtio, st.q[2].num), 8, 2,
	      "past the device's queues", "state for a queue the device lacks");
}

/* Extra sections spliced in before the clock: duplicates, bad indexes. */
static bool mut_extra(uint32_t type, uint32_t index, uint8_t *p, size_t *len, void *ctx)
{
	const struct target *t = ctx;
	if (type == SNAP_SEC_CLOCK) {
		static uint8_t zero[PAYLOAD_MAX];
		snap_writer_add(&building->w, t->type, t->index, zero, t->value);
	}
	return true;
}

static void extra(uint32_t type, uint32_t index, uint64_t len, const char *want, const char *what)
{
	struct target t = {type, index, 0, len, 0};
	refused(mut_extra, &t, want, what);
}

static void test_extra_sections(void)
{
	extra(SNAP_SEC_PIT, 0, sizeof(struct kvm_pit_state2), "pit 0: duplicate", "a second PIT");
	extra(SNAP_SEC_MACHINE, 0, sizeof(struct snap_machine), "duplicate",
	      "a second machine section");
	extra(SNAP_SEC_REGS, 64, sizeof(struct kvm_regs), "index 64 out of range",
	      "regs of vCPU 64");
	extra(SNAP_SEC_IRQCHIP, 3, sizeof(struct kvm_irqchip), "index 3 out of range",
	      "a fourth irqchip");
	extra(SNAP_SEC_CLOCK, 1, sizeof(struct kvm_clock_data), "index 1 out of range",
	      "a clock with index 1");
	extra(SNAP_SEC_VIRTIO, 40, sizeof(struct snap_virtio), "index 40 out of range",
	      "device 40");
	extra(SNAP_SEC_REGS, 5, sizeof(struct kvm_regs), "vCPU 5: section regs not expected",
	      "a vCPU beyond ncpus");
}

/* Random damage with a recomputed checksum: anything goes but a crash. */
static void test_fuzz(void)
{
	size_t len;
	uint8_t *orig = build(NULL, NULL, &len);
	uint8_t *buf = kv_malloc0(len);
	unsigned seed = 12345, refused_n = 0;
	for (unsigned round = 0; round < FUZZ_ROUNDS; round++) {
		memcpy(buf, orig, len);
		unsigned n = 1 + (seed = seed * 1103515245 + 12345) % 8;
		for (unsigned k = 0; k < n; k++) {
			seed = seed * 1103515245 + 12345;
			size_t at = FIRST_SEC_OFF + (seed >> 8) % (len - FIRST_SEC_OFF);
			buf[at] = (uint8_t)(seed >> 3);
		}
		fix_crc(buf, len);
		refused_n += parse(buf, len, NULL) < 0;
	}
	ok(1, "%u rounds of random damage, %u refused, no crash", FUZZ_ROUNDS, refused_n);
	free(buf);
	free(orig);
}

static void test_mem_hdr(void)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	struct snap s;
	struct kv_err *err = NULL;
	if (snap_parse(buf, len, &s, &err) < 0) {
		ok(0, "parse: %s", err->msg);
		kv_err_free(err);
		free(buf);
		return;
	}
	struct snap_mem_hdr h;
	snap_mem_hdr_fill(&h, s.hdr.id, TEST_MEM, 4096);
	uint64_t fsize = SNAP_MEM_DATA_OFFSET + TEST_MEM;
	ok(snap_mem_hdr_check(&h, &s, fsize, &err) == 0, "memory header matches its state");
	static const struct {
		const char *what, *want;
	} cases[] = {
	    {"truncated memory file", "expected"},
	    {"memory file of another snapshot", "another snapshot"},
	    {"wrong memory size", "memory size mismatch"},
	    {"foreign version", "version 9"},
	    {"corrupt header", "corrupt"},
	    {"not a memory file", "bad magic"},
	};
	for (unsigned i = 0; i < KV_ARRAY_SIZE(cases); i++) {
		struct snap_mem_hdr c = h;
		uint64_t fs = fsize;
		uint8_t id[SNAP_ID_LEN];
		memcpy(id, h.id, sizeof(id));
		id[0] ^= 1;
		switch (i) {
		case 0: fs -= 4096; break;
		case 1: snap_mem_hdr_fill(&c, id, TEST_MEM, 0); break;
		case 2: snap_mem_hdr_fill(&c, h.id, TEST_MEM * 2, 0); break;
		case 3: c.version = 9; break;
		case 4: c.data_bytes ^= 1; break;
		default: c.magic[3] = 0; break;
		}
		kv_err_free(err);
		err = NULL;
		int r = snap_mem_hdr_check(&c, &s, fs, &err);
		ok(r < 0 && err && strstr(err->msg, cases[i].want),
		   "memory file: %s refused (\"%s\")", cases[i].what, err ? err->msg : "accepted");
	}
	kv_err_free(err);
	free(buf);
}

/* --write-seed DIR: the valid state for the fuzz target's corpus. */
static int write_seed(const char *dir)
{
	size_t len;
	uint8_t *buf = build(NULL, NULL, &len);
	char path[4096];
	snprintf(path, sizeof(path), "%s/valid.state", dir);
	FILE *f = fopen(path, "wb");
	int r = f && fwrite(buf, 1, len, f) == len ? 0 : 1;
	if (f)
		fclose(f);
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-seed") == 0)
		return write_seed(argv[2]);
	test_crc();
	test_valid();
	test_pit_idle();
	test_flips();
	test_truncations();
	test_header();
	test_section_headers();
	test_sections();
	test_sections_index();
	test_virtio();
	test_extra_sections();
	test_fuzz();
	test_mem_hdr();
	return tap_done();
}
