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
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define PAGE_4K		 4096ULL
#define SNAP_WRITE_CHUNK (1ULL << 20)
#define SNAP_MAPS_MAX	 (4u << 20)

/* ------------------------------------------------------------- vCPUs */

/* KVM_GET_MSR_INDEX_LIST: every MSR KVM saves and emulates (malloc'd). */
static struct kvm_msr_list *snap_msr_index_list(struct machine *m, struct kv_err **err)
{
	struct kvm_msr_list *l = kv_malloc0(sizeof(*l) + SNAP_MAX_MSRS * sizeof(l->indices[0]));
	l->nmsrs = SNAP_MAX_MSRS;
	if (ioctl(m->vm.kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		kv_err_make(err, errno, "KVM_GET_MSR_INDEX_LIST");
		free(l);
		return NULL;
	}
	return l;
}

/*
 * Read the MSRs of the list that this vCPU has (KVM_GET_MSRS stops at the
 * first it cannot read: that one is left out, and the rest read again).
 */
static int snap_msrs_get(struct vcpu *v, const struct kvm_msr_list *l, struct kvm_msr_entry *out,
			 unsigned *n_out, struct kv_err **err)
{
	cleanup_free struct kvm_msrs *msrs =
	    kv_malloc0(sizeof(*msrs) + SNAP_MAX_MSRS * sizeof(struct kvm_msr_entry));
	struct kvm_msr_entry *e = msrs->entries;
	unsigned n = 0;
	for (unsigned i = 0; i < l->nmsrs && i < SNAP_MAX_MSRS; i++)
		e[n++].index = l->indices[i];
	unsigned done = 0;
	while (done < n) {
		memmove(&e[0], &e[done], (n - done) * sizeof(e[0]));
		n -= done;
		msrs->nmsrs = n;
		int r = ioctl(v->fd, KVM_GET_MSRS, msrs);
		if (r < 0)
			return kv_err_make(err, errno, "vcpu %u: KVM_GET_MSRS", v->index);
		for (int i = 0; i < r; i++)
			out[(*n_out)++] = e[i];
		done = r;
		if ((unsigned)r < n) {
			kv_debug("snapshot: vcpu %u: MSR 0x%x not readable, left out", v->index,
				 e[r].index);
			done++;
		}
	}
	return 0;
}

static int snap_ioctl_add(struct snap_writer *w, struct vcpu *v, unsigned long req,
			  const char *name, uint32_t type, void *buf, size_t len,
			  struct kv_err **err)
{
	if (ioctl(v->fd, req, buf) < 0)
		return kv_err_make(err, errno, "vcpu %u: %s", v->index, name);
	snap_writer_add(w, type, v->index, buf, len);
	return 0;
}

static int snap_vcpu_save_msrs_cpuid(struct machine *m, struct vcpu *v, struct snap_writer *w,
				     struct kv_err **err)
{
	cleanup_free struct kvm_msr_list *l = snap_msr_index_list(m, err);
	cleanup_free struct kvm_msr_entry *e = kv_malloc0(SNAP_MAX_MSRS * sizeof(*e));
	unsigned n = 0;
	if (!l || snap_msrs_get(v, l, e, &n, err) < 0)
		return -1;
	snap_writer_add(w, SNAP_SEC_MSRS, v->index, e, n * sizeof(*e));
	cleanup_free struct kvm_cpuid2 *c =
	    kv_malloc0(sizeof(*c) + SNAP_MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
	c->nent = SNAP_MAX_CPUID;
	if (ioctl(v->fd, KVM_GET_CPUID2, c) < 0 || c->nent == 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_GET_CPUID2", v->index);
	snap_writer_add(w, SNAP_SEC_CPUID, v->index, c->entries, c->nent * sizeof(c->entries[0]));
	return 0;
}

static int snap_vcpu_save(struct machine *m, struct vcpu *v, const struct snap_machine *mc,
			  struct snap_writer *w, struct kv_err **err)
{
	/* MP state first: reading it makes KVM process pending APIC events
	 * (kvm_apic_accept_events), which may change what the others show. */
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_vcpu_events ev;
	cleanup_free struct kvm_lapic_state *lapic = kv_malloc0(sizeof(*lapic));
	if (snap_ioctl_add(w, v, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", SNAP_SEC_MP_STATE, &mp,
			   sizeof(mp), err) < 0 ||
	    snap_ioctl_add(w, v, KVM_GET_REGS, "KVM_GET_REGS", SNAP_SEC_REGS, &regs, sizeof(regs),
			   err) < 0 ||
	    snap_ioctl_add(w, v, KVM_GET_SREGS, "KVM_GET_SREGS", SNAP_SEC_SREGS, &sregs,
			   sizeof(sregs), err) < 0)
		return -1;
	if (mc->xsave_size) {
		cleanup_free void *xs = kv_malloc0(mc->xsave_size);
		unsigned long req =
		    mc->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
		if (snap_ioctl_add(w, v, req, "KVM_GET_XSAVE", SNAP_SEC_XSAVE, xs, mc->xsave_size,
				   err) < 0)
			return -1;
	} else {
		struct kvm_fpu fpu;
		if (snap_ioctl_add(w, v, KVM_GET_FPU, "KVM_GET_FPU", SNAP_SEC_FPU, &fpu,
				   sizeof(fpu), err) < 0)
			return -1;
	}
	if (mc->has_xcrs && snap_ioctl_add(w, v, KVM_GET_XCRS, "KVM_GET_XCRS", SNAP_SEC_XCRS, &xcrs,
					   sizeof(xcrs), err) < 0)
		return -1;
	if (snap_ioctl_add(w, v, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", SNAP_SEC_DEBUGREGS, &dregs,
			   sizeof(dregs), err) < 0 ||
	    snap_ioctl_add(w, v, KVM_GET_LAPIC, "KVM_GET_LAPIC", SNAP_SEC_LAPIC, lapic,
			   sizeof(*lapic), err) < 0 ||
	    snap_vcpu_save_msrs_cpuid(m, v, w, err) < 0 ||
	    snap_ioctl_add(w, v, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", SNAP_SEC_EVENTS, &ev,
			   sizeof(ev), err) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- the VM */

static int snap_machine_fill(struct machine *m, struct snap_machine *mc, struct kv_err **err)
{
	memset(mc, 0, sizeof(*mc));
	mc->mem_size = m->ram.size;
	mc->arch = SNAP_ARCH_X86_64;
	mc->ncpus = m->ncpus;
	mc->nvirtio = m->nvirtio;
	mc->flags = m->pvm ? SNAP_F_PVM : 0;
	int khz = ioctl(m->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	if (khz < 0)
		return kv_err_make(err, errno, "KVM_GET_TSC_KHZ");
	mc->tsc_khz = khz;
	int xs2 = vm_check_extension(&m->vm, KVM_CAP_XSAVE2);
	if (xs2 >= SNAP_XSAVE_MIN)
		mc->xsave_size = xs2;
	else if (vm_check_extension(&m->vm, KVM_CAP_XSAVE) > 0)
		mc->xsave_size = sizeof(struct kvm_xsave);
	mc->has_xcrs = vm_check_extension(&m->vm, KVM_CAP_XCRS) > 0;
	if (m->ncpus > SNAP_MAX_VCPUS || m->nvirtio > SNAP_MAX_VIRTIO)
		return kv_err_make(err, E2BIG, "too many vCPUs or devices for a snapshot");
	return 0;
}

static int snap_vm_save(struct machine *m, struct snap_writer *w, struct kv_err **err)
{
	for (unsigned i = 0; i < SNAP_IRQCHIPS; i++) {
		struct kvm_irqchip chip = {.chip_id = i};
		if (ioctl(m->vm.vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return kv_err_make(err, errno, "KVM_GET_IRQCHIP %u", i);
		snap_writer_add(w, SNAP_SEC_IRQCHIP, i, &chip, sizeof(chip));
	}
	struct kvm_pit_state2 pit = m->pit_restored;
	if (m->vm.pit && ioctl(m->vm.vm_fd, KVM_GET_PIT2, &pit) < 0)
		return kv_err_make(err, errno, "KVM_GET_PIT2");
	snap_writer_add(w, SNAP_SEC_PIT, 0, &pit, sizeof(pit));
	struct kvm_clock_data clock;
	memset(&clock, 0, sizeof(clock));
	if (ioctl(m->vm.vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return kv_err_make(err, errno, "KVM_GET_CLOCK");
	snap_writer_add(w, SNAP_SEC_CLOCK, 0, &clock, sizeof(clock));
	struct snap_serial ser;
	snap_serial_save(m, &ser);
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
	struct snap_machine mc;
	if (snap_machine_fill(m, &mc, err) < 0)
		return -1;
	snap_writer_add(w, SNAP_SEC_MACHINE, 0, &mc, sizeof(mc));
	for (unsigned i = 0; i < m->ncpus; i++)
		if (snap_vcpu_save(m, &m->vcpus[i], &mc, w, err) < 0)
			return -1;
	return snap_vm_save(m, w, err);
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

static int snap_mem_run_write(int fd, const uint8_t *src, uint64_t off, uint64_t len,
			      struct kv_err **err)
{
	while (len) {
		ssize_t w = pwrite(fd, src, len, SNAP_MEM_DATA_OFFSET + off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return kv_err_make(err, w < 0 ? errno : EIO, "write memory file");
		src += w;
		off += w;
		len -= w;
	}
	return 0;
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
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return kv_err_make(err, errno, "memory file: write the header");
	return 0;
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
		if (ftruncate(state_fd, 0) < 0 ||
		    pwrite(state_fd, w.buf, w.len, 0) != (ssize_t)w.len)
			r = kv_err_make(err, errno, "write state file");
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
