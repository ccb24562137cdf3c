/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots of a running microVM, and restoring one in a new process
 * (internal to vmm/; the public entry points are in vmm.h).
 *
 * A snapshot is a directory with two files:
 *
 *  state   everything but guest RAM, little-endian:
 *            header (struct snap_hdr, 64 bytes): magic "KVRUNSNP", format
 *              version, header size, file size, section count, CRC32C of the
 *              whole file (computed with the crc field zero), a random
 *              snapshot id (also in the memory file), save time;
 *            sections, each a 16-byte struct snap_sec (type, index, payload
 *              size) and the payload padded to 8 bytes. Sizes are explicit
 *              and each type's size is checked exactly: machine (memory size,
 *              vCPUs, devices, mode, TSC frequency), per vCPU CPUID, regs,
 *              sregs, XSAVE (or FPU), XCRs, debug registers, LAPIC, MSRs
 *              (the KVM index list), vCPU events and MP state; the VM's
 *              irqchips (PIC x2, IOAPIC), PIT and kvmclock; the UART; per
 *              virtio device its transport and virtqueue state, config
 *              space, and its pmem window.
 *  memory  a 4 KiB header (struct snap_mem_hdr: magic "KVRUNMEM", version,
 *          data offset, memory size, the snapshot id, its own CRC32C), then
 *          guest RAM at SNAP_MEM_DATA_OFFSET (2 MiB, so the data stays huge
 *          page aligned), a sparse file: all-zero pages are holes. A clone
 *          maps it MAP_PRIVATE: pages load on demand from the page cache,
 *          shared by every clone, and the pages a clone writes stay its own.
 *
 * Files are untrusted input: snap_parse() checks every size, count, index
 * and enum, the checksum and the version before anything is used, and the
 * restore checks the memory file, the host and the command line's devices
 * against it before KVM is touched. The checksum detects corruption, not
 * forgery: a snapshot carries guest state and must come from a trusted
 * place (kvrun keeps templates in its root-owned cache).
 */
#ifndef KV_VMM_SNAPSHOT_H
#define KV_VMM_SNAPSHOT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/serial.h"
#include "vmm/virtio/virtio.h"

#define SNAP_MAGIC	     "KVRUNSNP"
#define SNAP_MEM_MAGIC	     "KVRUNMEM"
#define SNAP_MAGIC_LEN	     8
#define SNAP_VERSION	     1
#define SNAP_ID_LEN	     16
#define SNAP_STATE_FILE	     "state"
#define SNAP_MEMORY_FILE     "memory"
#define SNAP_MEM_HDR_SIZE    4096
#define SNAP_MEM_DATA_OFFSET (2ULL << 20)

/* Bounds on what a state file may declare. */
#define SNAP_STATE_MAX	     (16u << 20)
#define SNAP_MAX_VCPUS	     64
#define SNAP_MAX_VIRTIO	     32
#define SNAP_MAX_SECTIONS    (SNAP_MAX_VCPUS * SNAP_VCPU_SECS + 16 + SNAP_MAX_VIRTIO)
#define SNAP_MAX_MSRS	     1024
#define SNAP_MAX_CPUID	     256
#define SNAP_XSAVE_MIN	     4096
#define SNAP_XSAVE_MAX	     (64u << 10)
#define SNAP_VIRTIO_CFG_SIZE 256
#define SNAP_MEM_MAX	     (1ULL << 40)
#define SNAP_IRQCHIPS	     3 /* PIC master, PIC slave, IOAPIC */

#define SNAP_ARCH_X86_64 1
#define SNAP_F_PVM	 1u /* taken in PVM compatibility mode */

enum snap_sec_type {
	SNAP_SEC_MACHINE = 1,
	/* Per vCPU (index = vCPU). */
	SNAP_SEC_CPUID,
	SNAP_SEC_REGS,
	SNAP_SEC_SREGS,
	SNAP_SEC_FPU,
	SNAP_SEC_XSAVE,
	SNAP_SEC_XCRS,
	SNAP_SEC_DEBUGREGS,
	SNAP_SEC_LAPIC,
	SNAP_SEC_MSRS,
	SNAP_SEC_EVENTS,
	SNAP_SEC_MP_STATE,
	/* VM-wide. */
	SNAP_SEC_IRQCHIP, /* index = KVM chip id */
	SNAP_SEC_PIT,
	SNAP_SEC_CLOCK,
	SNAP_SEC_SERIAL,
	SNAP_SEC_VIRTIO, /* index = device slot */
	SNAP_SEC_TYPES,
};
/* Per-vCPU section types are [SNAP_SEC_CPUID, SNAP_SEC_MP_STATE]. */
#define SNAP_VCPU_FIRST SNAP_SEC_CPUID
#define SNAP_VCPU_SECS	(SNAP_SEC_MP_STATE - SNAP_SEC_CPUID + 1)

struct snap_hdr {
	char magic[SNAP_MAGIC_LEN];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t file_size;
	uint32_t nsections;
	uint32_t crc32c;
	uint8_t id[SNAP_ID_LEN];
	uint64_t saved_realtime_ns;
	uint64_t reserved;
};

struct snap_sec {
	uint32_t type;
	uint32_t index;
	uint64_t size;
};

struct snap_machine {
	uint64_t mem_size;
	uint32_t arch;
	uint32_t ncpus;
	uint32_t nvirtio;
	uint32_t flags; /* SNAP_F_* */
	uint32_t tsc_khz;
	uint32_t xsave_size; /* 0: FPU sections instead of XSAVE */
	uint32_t has_xcrs;
	uint32_t reserved[5];
};

struct snap_virtio {
	uint32_t device_id;
	uint32_t config_size; /* bytes of config that follow (<= SNAP_VIRTIO_CFG_SIZE) */
	uint64_t window_gpa;  /* pmem: the memory window; 0 for other devices */
	uint64_t window_size;
	struct virtio_mmio_state st;
	uint8_t config[SNAP_VIRTIO_CFG_SIZE];
};

struct snap_mem_hdr {
	char magic[SNAP_MAGIC_LEN];
	uint32_t version;
	uint32_t hdr_size; /* bytes of this struct */
	uint64_t data_offset;
	uint64_t mem_size;
	uint8_t id[SNAP_ID_LEN];
	uint64_t data_bytes; /* bytes of non-zero pages written (informational) */
	uint32_t crc32c;     /* of this struct with the field zero */
	uint32_t reserved;
};

_Static_assert(sizeof(struct snap_hdr) == 64, "snap_hdr layout");
_Static_assert(sizeof(struct snap_sec) == 16, "snap_sec layout");
_Static_assert(sizeof(struct snap_machine) == 56, "snap_machine layout");
_Static_assert(sizeof(struct serial_state) == 88, "serial_state layout");
_Static_assert(sizeof(struct virtio_mmio_state) == 168, "virtio_mmio_state layout");
_Static_assert(sizeof(struct snap_virtio) == 24 + 168 + 256, "snap_virtio layout");
_Static_assert(sizeof(struct snap_mem_hdr) == 64, "snap_mem_hdr layout");

/* One section's payload inside a parsed state buffer. */
struct snap_blob {
	const uint8_t *p;
	uint64_t len;
};

/* A parsed and validated state file. The blobs point into buf. */
struct snap {
	uint8_t *buf;
	size_t len;
	struct snap_hdr hdr;
	struct snap_machine machine;
	struct snap_blob vcpu[SNAP_MAX_VCPUS][SNAP_VCPU_SECS];
	struct snap_blob irqchip[SNAP_IRQCHIPS];
	struct snap_blob pit, clock, serial;
	struct snap_blob virtio[SNAP_MAX_VIRTIO];
};

static inline const struct snap_blob *snap_vcpu_sec(const struct snap *s, unsigned cpu,
						    enum snap_sec_type t)
{
	return &s->vcpu[cpu][t - SNAP_VCPU_FIRST];
}

/* ------------------------------------------------------------ format (snapshot_fmt.c) */

uint32_t snap_crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable implementation (tests compare the two). */
uint32_t snap_crc32c_sw(uint32_t crc, const void *buf, size_t len);
const char *snap_sec_name(uint32_t type);

/*
 * Parse and validate a state file held in buf (len bytes). On success s
 * borrows buf (it does not free it). Errors name the section and field.
 */
int snap_parse(const uint8_t *buf, size_t len, struct snap *s, struct kv_err **err) KV_WUR;
/* The snapshot's guest does not use its PIT (snapshot_fmt.c): restored without one. */
bool snap_pit_idle(const struct snap *s);
/* Validate a memory file header against the parsed state and the file size. */
int snap_mem_hdr_check(const struct snap_mem_hdr *h, const struct snap *s, uint64_t file_size,
		       struct kv_err **err) KV_WUR;
void snap_mem_hdr_fill(struct snap_mem_hdr *h, const uint8_t id[SNAP_ID_LEN], uint64_t mem_size,
		       uint64_t data_bytes);

/* A growable state buffer for writing. */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nsections;
};
void snap_writer_init(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);
/* Append a section (payload copied, padded to 8 bytes). */
void snap_writer_add(struct snap_writer *w, uint32_t type, uint32_t index, const void *data,
		     size_t len);
/* Fill in the header (id, time) and the checksum; the buffer is then the file. */
void snap_writer_finish(struct snap_writer *w, const uint8_t id[SNAP_ID_LEN], uint64_t realtime_ns);

/* --------------------------------------------------- save and restore (snapshot*.c) */

struct machine;

/* What an API snapshot does with the VM afterwards. */
enum snap_then { SNAP_THEN_RESUME, SNAP_THEN_PAUSE, SNAP_THEN_EXIT };

struct snap_save_stats {
	uint64_t mem_size, mem_data_bytes, state_bytes;
	uint64_t pause_us, save_us;
};

/*
 * Save the paused machine: guest RAM into mem_fd, then the state into
 * state_fd (both truncated first). The vCPUs must be parked (machine_pause).
 */
int snapshot_save(struct machine *m, int state_fd, int mem_fd, struct snap_save_stats *st,
		  struct kv_err **err) KV_WUR;
/* Before confinement, on a machine with an API socket: what a later snapshot needs. */
void snapshot_setup(struct machine *m);
/* The API's "snapshot" op: pause, save into the two fds passed with the request, then. */
char *snapshot_api_op(struct machine *m, enum snap_then then, const int *fds, unsigned nfds);

/*
 * Build the machine from the snapshot in m->cfg->restore_dir instead of
 * booting: check the files (before KVM), create the VM with guest RAM mapped
 * MAP_PRIVATE from the memory file, the devices from the command line,
 * the vCPUs, then apply the state and re-kick the devices.
 */
int snapshot_restore(struct machine *m, struct kv_err **err) KV_WUR;

/* "restore": {"files_us","vm_us","state_us"} in the --stats JSON. */
void snapshot_stats_write(struct machine *m, struct kv_json *j);

/* Device state (snapshot_dev.c; the UART saves itself: serial_save, serial.h). */
/*
 * Whether every device can be saved: a live virtio-fs device with shares
 * cannot (its shares are host fds the snapshot cannot carry, and a clone
 * would not have them). Checked before the VM is paused.
 */
int snap_devices_check(struct machine *m, struct kv_err **err) KV_WUR;
void snap_virtio_save(struct machine *m, unsigned i, struct snap_virtio *out);
/* Checks what can be checked without the device (before KVM). */
int snap_virtio_check(const struct snap_virtio *v, uint64_t mem_size, struct kv_err **err) KV_WUR;
/* After the devices exist: restore each, then the post-restore events. */
int snap_virtio_restore_all(struct machine *m, const struct snap *s, struct kv_err **err) KV_WUR;

#endif
