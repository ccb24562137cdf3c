/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Restoring a snapshot into a new kvrun-vmm process (kvrun-vmm --restore).
 *
 * 1. Before KVM: read and validate the state file (snap_parse), open the
 *    memory file and check its header, id and size against the state, and
 *    the snapshot against the command line (memory, vCPUs) and the host
 *    (PVM mode). Anything wrong stops here with an error naming it.
 * 2. The VM with guest RAM mapped MAP_PRIVATE from the memory file (nothing
 *    is read: pages fault in from the page cache when the guest touches
 *    them), the devices from the command line (their files may differ from
 *    the template's: a container's disk), the vCPUs.
 * 3. State, in the order KVM needs: each vCPU's (vcpu_restore, vcpu.c:
 *    CPUID first, TSC frequency, MP state, regs, sregs, XSAVE/FPU, XCRs,
 *    debug registers, LAPIC, MSRs with the TSC first and the TSC deadline
 *    last, vCPU events last; the reasons are there). Then the PIT, kvmclock
 *    and irqchips (vm_restore, vm.c), the UART (serial_restore); then the
 *    virtio devices (snapshot_dev.c), whose interrupts land in the
 *    restored irqchip.
 *
 * Clock: KVM_SET_CLOCK with the saved kvmclock value and the TSC MSR with
 * the saved TSC make both continue from where the snapshot stopped: the
 * guest's monotonic time does not jump over the time spent on disk. Wall
 * time is the host's to set afterwards (kvrun sets it through the agent).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"

struct snap_load {
	char *buf;
	size_t len;
	struct snap s;
	int mem_fd;
};

static void snap_load_free(struct snap_load *l)
{
	free(l->buf);
	if (l->mem_fd >= 0)
		close(l->mem_fd);
}

static int snap_mem_open(const char *dir, struct snap_load *l, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/%s", dir, SNAP_MEMORY_FILE);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kv_err_make(err, errno, "stat %s", path);
	if (!S_ISREG(st.st_mode))
		return kv_err_plain(err, EINVAL, "%s: not a regular file", path);
	struct snap_mem_hdr h;
	ssize_t r = pread(fd, &h, sizeof(h), 0);
	if (r < 0)
		return kv_err_make(err, errno, "read %s", path);
	if (r != (ssize_t)sizeof(h))
		return kv_err_plain(err, EINVAL, "%s: truncated (%lld bytes)", path,
				    (long long)st.st_size);
	if (snap_mem_hdr_check(&h, &l->s, st.st_size, err) < 0)
		return kv_err_wrap(err, "%s", path);
	l->mem_fd = steal_fd(fd);
	return 0;
}

/* Step 1: everything about the files, before KVM. */
static int snap_files_load(const char *dir, struct snap_load *l, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/%s", dir, SNAP_STATE_FILE);
	if (kv_read_file(path, SNAP_STATE_MAX, &l->buf, &l->len, err) < 0)
		return -1;
	if (snap_parse((const uint8_t *)l->buf, l->len, &l->s, err) < 0)
		return kv_err_wrap(err, "%s", path);
	return snap_mem_open(dir, l, err);
}

static int snap_config_check(struct machine *m, const struct snap *s, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	const struct snap_machine *mc = &s->machine;
	if (cfg->mem_given && cfg->mem != mc->mem_size)
		return kv_err_plain(err, EINVAL,
				    "memory size mismatch: --mem is %llu MiB, the snapshot's guest "
				    "has %llu MiB",
				    (unsigned long long)(cfg->mem >> 20),
				    (unsigned long long)(mc->mem_size >> 20));
	if (cfg->cpus_given && cfg->cpus != mc->ncpus)
		return kv_err_plain(err, EINVAL, "--cpus is %u, the snapshot's guest has %u vCPUs",
				    cfg->cpus, mc->ncpus);
	if (mc->ncpus > VMM_MAX_CPUS)
		return kv_err_plain(err, EINVAL, "%u vCPUs, this VMM runs at most %u", mc->ncpus,
				    VMM_MAX_CPUS);
	bool pvm = mc->flags & SNAP_F_PVM;
	if (pvm != m->pvm)
		return kv_err_plain(
		    err, EINVAL,
		    "the snapshot was taken %s PVM compatibility mode, this VMM runs "
		    "%s it",
		    pvm ? "in" : "without", m->pvm ? "in" : "without");
	return 0;
}

/* ------------------------------------------------------------- state */

static void *snap_dup(const void *p, size_t len)
{
	void *q = kv_malloc0(len);
	memcpy(q, p, len);
	return q;
}

/* vCPU c's sections as a vcpu_state (copies: the state owns its buffers). */
static void snap_vcpu_state_load(const struct snap *s, unsigned c, struct vcpu_state *st)
{
#define SEC(t)	       snap_vcpu_sec(s, c, (t))
#define LOAD(field, t) memcpy(&st->field, SEC(t)->p, sizeof(st->field))
	memset(st, 0, sizeof(*st));
	st->tsc_khz = s->machine.tsc_khz;
	st->xsave_size = s->machine.xsave_size;
	st->has_xcrs = s->machine.has_xcrs;
	LOAD(mp_state, SNAP_SEC_MP_STATE);
	LOAD(regs, SNAP_SEC_REGS);
	LOAD(sregs, SNAP_SEC_SREGS);
	if (st->xsave_size)
		st->xsave = snap_dup(SEC(SNAP_SEC_XSAVE)->p, st->xsave_size);
	else
		LOAD(fpu, SNAP_SEC_FPU);
	if (st->has_xcrs)
		LOAD(xcrs, SNAP_SEC_XCRS);
	LOAD(debugregs, SNAP_SEC_DEBUGREGS);
	LOAD(lapic, SNAP_SEC_LAPIC);
	LOAD(events, SNAP_SEC_EVENTS);
	st->nmsrs = SEC(SNAP_SEC_MSRS)->len / sizeof(st->msrs[0]);
	st->msrs = snap_dup(SEC(SNAP_SEC_MSRS)->p, SEC(SNAP_SEC_MSRS)->len);
	st->ncpuid = SEC(SNAP_SEC_CPUID)->len / sizeof(st->cpuid[0]);
	st->cpuid = snap_dup(SEC(SNAP_SEC_CPUID)->p, SEC(SNAP_SEC_CPUID)->len);
#undef LOAD
#undef SEC
}

static int snap_vcpus_restore(struct machine *m, const struct snap *s, struct kv_err **err)
{
	uint32_t host_xsave = vcpu_xsave_size(&m->vm);
	if (host_xsave != s->machine.xsave_size)
		return kv_err_plain(
		    err, EINVAL,
		    "XSAVE state is %u bytes on this host, %u in the snapshot (another "
		    "CPU or kernel)",
		    host_xsave, s->machine.xsave_size);
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpus[i];
		if (vcpu_create(v, &m->vm, i, err) < 0)
			return -1;
		v->m = m;
		struct vcpu_state st;
		snap_vcpu_state_load(s, i, &st);
		int r = vcpu_restore(v, &st, err);
		vcpu_state_free(&st);
		if (r < 0)
			return -1;
	}
	return 0;
}

/*
 * After the vCPUs: the PIT, kvmclock and irqchips (vm_restore), then the
 * UART; the virtio devices follow (snap_virtio_restore_all), raising their
 * interrupts into the restored chips.
 */
static int snap_vm_restore(struct machine *m, const struct snap *s, struct kv_err **err)
{
	struct vm_state vs;
	for (unsigned i = 0; i < VM_IRQCHIPS; i++)
		memcpy(&vs.irqchip[i], s->irqchip[i].p, sizeof(vs.irqchip[i]));
	memcpy(&vs.pit, s->pit.p, sizeof(vs.pit));
	memcpy(&vs.clock, s->clock.p, sizeof(vs.clock));
	if (vm_restore(&m->vm, &vs, err) < 0)
		return -1;
	struct serial_state ser;
	memcpy(&ser, s->serial.p, sizeof(ser));
	serial_restore(&m->serial, &ser);
	return 0;
}

static int snap_ram_map(struct machine *m, struct snap_load *l, struct kv_err **err)
{
	if (ram_create_from_fd(&m->ram, l->mem_fd, SNAP_MEM_DATA_OFFSET, l->s.machine.mem_size,
			       true, err) < 0)
		return kv_err_wrap(err, "snapshot memory");
	l->mem_fd = -1; /* the RAM owns it now */
	for (unsigned i = 0; i < m->ram.gm.n; i++) {
		const struct gm_region *r = &m->ram.gm.r[i];
		if (vm_memslot_add(&m->vm, r->gpa, r->size, r->hva, false, err) < 0)
			return -1;
	}
	return 0;
}

int snapshot_restore(struct machine *m, struct kv_err **err)
{
	const char *dir = m->cfg->restore_dir;
	__attribute__((cleanup(snap_load_free))) struct snap_load l = {.mem_fd = -1};
	uint64_t t0 = kv_now_ns();
	if (snap_files_load(dir, &l, err) < 0 || snap_config_check(m, &l.s, err) < 0)
		return kv_err_wrap(err, "restore %s", dir);
	/* The machine is the snapshot's: memory and vCPUs come from it. */
	m->cfg_restored = *m->cfg;
	m->cfg_restored.mem = l.s.machine.mem_size;
	m->cfg_restored.cpus = l.s.machine.ncpus;
	m->cfg = &m->cfg_restored;
	m->ncpus = l.s.machine.ncpus;
	uint64_t t1 = kv_now_ns();
	/*
	 * Every memslot (RAM, pmem disks, DAX windows) before the irqchip and
	 * PIT: on this project's PVM hosts a memslot added once the VM has an
	 * irqchip costs 5-10 ms (a KVM synchronisation), before it ~0.1 ms.
	 * No PIT for a guest that shut its own down (snap_pit_idle): it would
	 * cost a kernel thread, and re-arming its one-shot counter would give
	 * the guest a stray IRQ 0 55 ms after the restore.
	 */
	if (vm_open(&m->vm, err) < 0 || snap_ram_map(m, &l, err) < 0 ||
	    machine_devices_setup(m, err) < 0 ||
	    vm_irqchip_create(&m->vm, !snap_pit_idle(&l.s), err) < 0)
		return kv_err_wrap(err, "restore %s", dir);
	uint64_t t2 = kv_now_ns();
	if (snap_vcpus_restore(m, &l.s, err) < 0 || snap_vm_restore(m, &l.s, err) < 0 ||
	    snap_virtio_restore_all(m, &l.s, err) < 0)
		return kv_err_wrap(err, "restore %s", dir);
	uint64_t t3 = kv_now_ns();
	m->restore_us[0] = (t1 - t0) / 1000;
	m->restore_us[1] = (t2 - t1) / 1000;
	m->restore_us[2] = (t3 - t2) / 1000;
	m->t_restored_ns = t3;
	kv_debug("restore: files %llu us, VM+RAM+devices %llu us, state %llu us",
		 (unsigned long long)m->restore_us[0], (unsigned long long)m->restore_us[1],
		 (unsigned long long)m->restore_us[2]);
	return 0;
}

void snapshot_stats_write(struct machine *m, struct kv_json *j)
{
	static const char *const keys[] = {"files_us", "vm_us", "state_us"};
	kv_json_key(j, "restore");
	kv_json_map_open(j);
	for (unsigned i = 0; i < KV_ARRAY_SIZE(keys); i++) {
		kv_json_key(j, keys[i]);
		kv_json_uint(j, m->restore_us[i]);
	}
	/* The rest of the way: event loop sources, confinement, the vCPU thread's start. */
	uint64_t first = atomic_load(&m->t_first_run_ns);
	kv_json_key(j, "start_us");
	kv_json_uint(j, first > m->t_restored_ns ? (first - m->t_restored_ns) / 1000 : 0);
	kv_json_map_close(j);
}
