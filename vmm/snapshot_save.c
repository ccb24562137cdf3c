/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Taking a snapshot of a paused machine (snapshot.h has the format).
 *
 * Runs on the event-loop thread (the API), with every vCPU parked in
 * machine_vcpu_gate() after completing its pending I/O (vcpu_settle), so no
 * device callback and no vCPU runs meanwhile. The files come as fds with
 * the API request (SCM_RIGHTS): the confined VMM opens nothing.
 *
 * Guest RAM is read through the RAM mapping (direct boot maps the kernel's
 * pages MAP_PRIVATE over the memfd), but only where there can be data: the
 * memfd's data extents (SEEK_DATA) and any mapping over the RAM that is not
 * the memfd (read from /proc/self/maps, opened before confinement). Reading
 * a hole of the shared memfd through the mapping would allocate it.
 * All-zero pages become holes in the memory file.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define PAGE_4K		 4096ULL
#define SNAP_WRITE_CHUNK (1ULL << 20)
#define SNAP_MAPS_MAX	 (4u << 20)

/* ------------------------------------------------------------- state */

_Static_assert(SNAP_MAX_MSRS == VCPU_STATE_MAX_MSRS && SNAP_MAX_CPUID == VCPU_STATE_MAX_CPUID,
	       "what vcpu_save reads fits the format's bounds");
_Static_assert(SNAP_IRQCHIPS == VM_IRQCHIPS, "one irqchip section per KVM chip");

/* A vCPU's sections, in the order vcpu_save() reads them (files keep it). */
static void snap_vcpu_write(struct snap_writer *w, unsigned i, const struct vcpu_state *st)
{
	snap_writer_add(w, SNAP_SEC_MP_STATE, i, &st->mp_state, sizeof(st->mp_state));
	snap_writer_add(w, SNAP_SEC_REGS, i, &st->regs, sizeof(st->regs));
	snap_writer_add(w, SNAP_SEC_SREGS, i, &st->sregs, sizeof(st->sregs));
	if (st->xsave_size)
		snap_writer_add(w, SNAP_SEC_XSAVE, i, st->xsave, st->xsave_size);
	else
		snap_writer_add(w, SNAP_SEC_FPU, i, &st->fpu, sizeof(st->fpu));
	if (st->has_xcrs)
		snap_writer_add(w, SNAP_SEC_XCRS, i, &st->xcrs, sizeof(st->xcrs));
	snap_writer_add(w, SNAP_SEC_DEBUGREGS, i, &st->debugregs, sizeof(st->debugregs));
	snap_writer_add(w, SNAP_SEC_LAPIC, i, &st->lapic, sizeof(st->lapic));
	snap_writer_add(w, SNAP_SEC_MSRS, i, st->msrs, st->nmsrs * sizeof(st->msrs[0]));
	snap_writer_add(w, SNAP_SEC_CPUID, i, st->cpuid, st->ncpuid * sizeof(st->cpuid[0]));
	snap_writer_add(w, SNAP_SEC_EVENTS, i, &st->events, sizeof(st->events));
}

/* The machine section: the vCPUs' shape as vCPU 0's state has it. */
static void snap_machine_fill(struct machine *m, const struct vcpu_state *cpu0,
			      struct snap_machine *mc)
{
	memset(mc, 0, sizeof(*mc));
	mc->mem_size = m->ram.size;
	mc->arch = SNAP_ARCH_X86_64;
	mc->ncpus = m->ncpus;
	mc->nvirtio = m->nvirtio;
	mc->flags = m->pvm ? SNAP_F_PVM : 0;
	mc->tsc_khz = cpu0->tsc_khz;
	mc->xsave_size = cpu0->xsave_size;
	mc->has_xcrs = cpu0->has_xcrs;
}

/* The VM-wide sections: irqchips, PIT, kvmclock, the UART, the virtio devices. */
static int snap_vm_save(struct machine *m, struct snap_writer *w, struct kv_err **err)
{
	struct vm_state vs;
	if (vm_save(&m->vm, &vs, err) < 0)
		return -1;
	for (unsigned i = 0; i < VM_IRQCHIPS; i++)
		snap_writer_add(w, SNAP_SEC_IRQCHIP, i, &vs.irqchip[i], sizeof(vs.irqchip[i]));
	snap_writer_add(w, SNAP_SEC_PIT, 0, &vs.pit, sizeof(vs.pit));
	snap_writer_add(w, SNAP_SEC_CLOCK, 0, &vs.clock, sizeof(vs.clock));
	struct serial_state ser;
	serial_save(&m->serial, &ser);
	snap_writer_add(w, SNAP_SEC_SERIAL, 0, &ser, sizeof(ser));
	struct snap_virtio *v = kv_malloc0(sizeof(*v));
	for (unsigned i = 0; i < m->nvirtio; i++) {
		snap_virtio_save(m, i, v);
		snap_writer_add(w, SNAP_SEC_VIRTIO, i, v, sizeof(*v));
	}
	free(v);
	return 0;
}

static int snap_state_build(struct machine *m, struct snap_writer *w, struct kv_err **err)
{
	if (m->ncpus > SNAP_MAX_VCPUS || m->nvirtio > SNAP_MAX_VIRTIO)
		return kv_err_plain(err, E2BIG, "too many vCPUs or devices for a snapshot");
	struct vcpu_state *st = kv_malloc0(m->ncpus * sizeof(*st));
	int r = 0;
	for (unsigned i = 0; i < m->ncpus && r == 0; i++)
		r = vcpu_save(&m->vcpus[i], &m->vm, &st[i], err);
	if (r == 0) {
		struct snap_machine mc;
		snap_machine_fill(m, &st[0], &mc);
		snap_writer_add(w, SNAP_SEC_MACHINE, 0, &mc, sizeof(mc));
		for (unsigned i = 0; i < m->ncpus; i++)
			snap_vcpu_write(w, i, &st[i]);
		r = snap_vm_save(m, w, err);
	}
	for (unsigned i = 0; i < m->ncpus; i++)
		vcpu_state_free(&st[i]);
	free(st);
	return r;
}

/* ------------------------------------------------------------- memory */

/* Mark [off, off+len) of guest RAM (bytes from ram.base) as to be read. */
static void snap_need_mark(uint8_t *need, uint64_t npages, uint64_t off, uint64_t len)
{
	for (uint64_t p = off / PAGE_4K; p < npages && p * PAGE_4K < off + len; p++)
		need[p / 8] |= 1u << (p % 8);
}

/* Mappings over guest RAM that are not the memfd (the kernel's pages). */
static int snap_need_overlays(struct machine *m, uint8_t *need, uint64_t npages)
{
	struct stat st;
	if (m->maps_fd < 0 || fstat(m->ram.fd, &st) < 0 || lseek(m->maps_fd, 0, SEEK_SET) < 0)
		return -1;
	cleanup_free char *buf = kv_malloc0(SNAP_MAPS_MAX + 1);
	size_t len = 0;
	ssize_t r;
	while (len < SNAP_MAPS_MAX && (r = read(m->maps_fd, buf + len, SNAP_MAPS_MAX - len)) > 0)
		len += r;
	if (len == SNAP_MAPS_MAX)
		return -1;
	uintptr_t base = (uintptr_t)m->ram.base, end = base + m->ram.size;
	for (char *line = buf, *nl; line < buf + len; line = nl + 1) {
		nl = memchr(line, '\n', buf + len - line);
		if (!nl)
			break;
		*nl = '\0';
		unsigned long lo, hi, off, ino;
		unsigned maj, mnr;
		if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu", &lo, &hi, &off, &maj, &mnr, &ino) !=
		    6)
			return -1;
		if (hi <= base || lo >= end)
			continue;
		if (ino == st.st_ino && maj == major(st.st_dev) && mnr == minor(st.st_dev))
			continue;
		uintptr_t a = lo < base ? base : lo, b = hi > end ? end : hi;
		snap_need_mark(need, npages, a - base, b - a);
	}
	return 0;
}

/* Which pages to read: everything, or the memfd's data plus the overlays. */
static void snap_need_compute(struct machine *m, uint8_t *need, uint64_t npages)
{
	if (m->ram.private_map || m->ram.fd < 0 || snap_need_overlays(m, need, npages) < 0) {
		memset(need, 0xff, (npages + 7) / 8);
		return;
	}
	off_t off = 0;
	while ((uint64_t)off < m->ram.size) {
		off_t data = lseek(m->ram.fd, off, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no data after off */
		off_t hole = lseek(m->ram.fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = m->ram.size;
		snap_need_mark(need, npages, data, hole - data);
		off = hole;
	}
}

static bool snap_page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < PAGE_4K / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* All of LEN bytes at OFF: a short write (a full disk) goes on, and its
 * error is the one that stopped it, not a stale errno. */
static int pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off, const char *what,
		      struct kv_err **err)
{
	const uint8_t *src = buf;
	while (len) {
		ssize_t w = pwrite(fd, src, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return kv_err_make(err, w < 0 ? errno : EIO, "%s", what);
		src += w;
		off += w;
		len -= w;
	}
	return 0;
}

static int snap_mem_run_write(int fd, const uint8_t *src, uint64_t off, uint64_t len,
			      struct kv_err **err)
{
	return pwrite_all(fd, src, len, SNAP_MEM_DATA_OFFSET + off, "write memory file", err);
}

static int snap_mem_save(struct machine *m, int fd, const uint8_t id[SNAP_ID_LEN],
			 uint64_t *data_bytes, struct kv_err **err)
{
	uint64_t size = m->ram.size, npages = size / PAGE_4K;
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, SNAP_MEM_DATA_OFFSET + size) < 0)
		return kv_err_make(err, errno, "memory file: truncate");
	cleanup_free uint8_t *need = kv_malloc0((npages + 7) / 8);
	snap_need_compute(m, need, npages);
	*data_bytes = 0;
	uint64_t run = 0, run_len = 0;
	for (uint64_t p = 0; p <= npages; p++) {
		bool data = p < npages && (need[p / 8] & (1u << (p % 8))) &&
			    !snap_page_zero(m->ram.base + p * PAGE_4K);
		if (data && run_len < SNAP_WRITE_CHUNK) {
			if (!run_len)
				run = p * PAGE_4K;
			run_len += PAGE_4K;
			continue;
		}
		if (run_len && snap_mem_run_write(fd, m->ram.base + run, run, run_len, err) < 0)
			return -1;
		*data_bytes += run_len;
		run_len = 0;
		if (data) {
			run = p * PAGE_4K;
			run_len = PAGE_4K;
		}
	}
	struct snap_mem_hdr h;
	snap_mem_hdr_fill(&h, id, size, *data_bytes);
	return pwrite_all(fd, &h, sizeof(h), 0, "memory file: write the header", err);
}

/* ------------------------------------------------------------- entry points */

int snapshot_save(struct machine *m, int state_fd, int mem_fd, struct snap_save_stats *st,
		  struct kv_err **err)
{
	uint8_t id[SNAP_ID_LEN];
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return kv_err_make(err, errno, "getrandom");
	struct snap_writer w;
	snap_writer_init(&w);
	int r = snap_state_build(m, &w, err);
	if (r == 0)
		r = snap_mem_save(m, mem_fd, id, &st->mem_data_bytes, err);
	if (r == 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		snap_writer_finish(&w, id, now.tv_sec * 1000000000ULL + now.tv_nsec);
		/* The state goes last: a complete state file means a complete snapshot. */
		if (ftruncate(state_fd, 0) < 0)
			r = kv_err_make(err, errno, "truncate the state file");
		else
			r = pwrite_all(state_fd, w.buf, w.len, 0, "write state file", err);
	}
	st->mem_size = m->ram.size;
	st->state_bytes = w.len;
	snap_writer_free(&w);
	return r;
}

void snapshot_setup(struct machine *m)
{
	/* For snap_need_overlays(): confined, the VMM cannot open it later. */
	m->maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (m->maps_fd < 0)
		kv_debug("snapshot: /proc/self/maps: %s (snapshots will read all of RAM)",
			 strerror(errno));
}
