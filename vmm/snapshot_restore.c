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
 * 3. State, in the order KVM needs: per vCPU CPUID first (KVM drops state
 *    set before it), TSC frequency, MP state, regs, sregs (APIC base),
 *    XSAVE/FPU, XCRs, debug registers, LAPIC before the MSRs (the TSC
 *    deadline MSR is only armed in the LAPIC's TSC-deadline mode), TSC
 *    first and TSC deadline last among the MSRs, vCPU events last (pending
 *    exceptions and interrupts refer to the rest). Then the PIT, kvmclock
 *    and irqchips; then the devices (snapshot_dev.c), whose interrupts
 *    land in the restored irqchip.
 *
 * Clock: KVM_SET_CLOCK with the saved kvmclock value and the TSC MSR with
 * the saved TSC make both continue from where the snapshot stopped: the
 * guest's monotonic time does not jump over the time spent on disk. Wall
 * time is the host's to set afterwards (kvrun sets it through the agent).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

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
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return kv_err_make(err, EINVAL, "%s: not a regular file", path);
	struct snap_mem_hdr h;
	ssize_t r = pread(fd, &h, sizeof(h), 0);
	if (r < 0)
		return kv_err_make(err, errno, "read %s", path);
	if (r != (ssize_t)sizeof(h))
		return kv_err_make(err, EINVAL, "%s: truncated (%lld bytes)", path,
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
		return kv_err_make(err, EINVAL,
				   "memory size mismatch: --mem is %llu MiB, the snapshot's guest "
				   "has %llu MiB",
				   (unsigned long long)(cfg->mem >> 20),
				   (unsigned long long)(mc->mem_size >> 20));
	if (cfg->cpus_given && cfg->cpus != mc->ncpus)
		return kv_err_make(err, EINVAL, "--cpus is %u, the snapshot's guest has %u vCPUs",
				   cfg->cpus, mc->ncpus);
	if (mc->ncpus > VMM_MAX_CPUS)
		return kv_err_make(err, EINVAL, "%u vCPUs, this VMM runs at most %u", mc->ncpus,
				   VMM_MAX_CPUS);
	bool pvm = mc->flags & SNAP_F_PVM;
	if (pvm != m->pvm)
		return kv_err_make(
		    err, EINVAL,
		    "the snapshot was taken %s PVM compatibility mode, this VMM runs "
		    "%s it",
		    pvm ? "in" : "without", m->pvm ? "in" : "without");
	return 0;
}

/* ------------------------------------------------------------- vCPUs */

static int snap_vcpu_ioctl(struct vcpu *v, unsigned long req, const char *name, const void *arg,
			   struct kv_err **err)
{
	if (ioctl(v->fd, req, arg) < 0)
		return kv_err_make(err, errno, "vcpu %u: %s", v->index, name);
	return 0;
}

static int snap_vcpu_cpuid_set(struct vcpu *v, const struct snap_blob *b, struct kv_err **err)
{
	cleanup_free struct kvm_cpuid2 *c = kv_malloc0(sizeof(*c) + b->len);
	c->nent = b->len / sizeof(struct kvm_cpuid_entry2);
	memcpy(c->entries, b->p, b->len);
	return snap_vcpu_ioctl(v, KVM_SET_CPUID2, "KVM_SET_CPUID2", c, err);
}

static int snap_vcpu_tsc_set(struct vcpu *v, uint32_t khz, struct kv_err **err)
{
	int cur = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (cur == (int)khz)
		return 0;
	if (ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		return kv_err_make(err, errno,
				   "TSC frequency: the snapshot's guest runs at %u kHz, this host "
				   "at %d kHz and KVM cannot scale it",
				   khz, cur);
	return 0;
}

/* Which of three passes writes an MSR: the TSC, then the rest, then the deadline. */
static unsigned snap_msr_pass(uint32_t index)
{
	return index == MSR_IA32_TSC ? 0 : index == MSR_IA32_TSC_DEADLINE ? 2 : 1;
}

/* The TSC first, the TSC deadline last: whatever order the file has. */
static int snap_vcpu_msrs_set(struct vcpu *v, const struct snap_blob *b, struct kv_err **err)
{
	unsigned n = b->len / sizeof(struct kvm_msr_entry), k = 0;
	cleanup_free struct kvm_msrs *msrs =
	    kv_malloc0(sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
	for (unsigned pass = 0; pass < 3; pass++)
		for (unsigned i = 0; i < n; i++) {
			struct kvm_msr_entry x;
			memcpy(&x, b->p + i * sizeof(x), sizeof(x));
			if (snap_msr_pass(x.index) == pass)
				msrs->entries[k++] = x;
		}
	msrs->nmsrs = k;
	int r = ioctl(v->fd, KVM_SET_MSRS, msrs);
	if (r < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_MSRS", v->index);
	if ((unsigned)r < k)
		return kv_err_make(err, EINVAL, "vcpu %u: KVM_SET_MSRS refused MSR 0x%x", v->index,
				   msrs->entries[r].index);
	return 0;
}

static int snap_vcpu_restore(struct vcpu *v, const struct snap *s, struct kv_err **err)
{
	unsigned c = v->index;
#define SEC(t) (snap_vcpu_sec(s, c, (t))->p)
	if (snap_vcpu_cpuid_set(v, snap_vcpu_sec(s, c, SNAP_SEC_CPUID), err) < 0 ||
	    snap_vcpu_tsc_set(v, s->machine.tsc_khz, err) < 0 ||
	    snap_vcpu_ioctl(v, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", SEC(SNAP_SEC_MP_STATE), err) <
		0 ||
	    snap_vcpu_ioctl(v, KVM_SET_REGS, "KVM_SET_REGS", SEC(SNAP_SEC_REGS), err) < 0 ||
	    snap_vcpu_ioctl(v, KVM_SET_SREGS, "KVM_SET_SREGS", SEC(SNAP_SEC_SREGS), err) < 0)
		return -1;
	if (s->machine.xsave_size
		? snap_vcpu_ioctl(v, KVM_SET_XSAVE, "KVM_SET_XSAVE", SEC(SNAP_SEC_XSAVE), err) < 0
		: snap_vcpu_ioctl(v, KVM_SET_FPU, "KVM_SET_FPU", SEC(SNAP_SEC_FPU), err) < 0)
		return -1;
	if (s->machine.has_xcrs &&
	    snap_vcpu_ioctl(v, KVM_SET_XCRS, "KVM_SET_XCRS", SEC(SNAP_SEC_XCRS), err) < 0)
		return -1;
	if (snap_vcpu_ioctl(v, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", SEC(SNAP_SEC_DEBUGREGS),
			    err) < 0 ||
	    snap_vcpu_ioctl(v, KVM_SET_LAPIC, "KVM_SET_LAPIC", SEC(SNAP_SEC_LAPIC), err) < 0 ||
	    snap_vcpu_msrs_set(v, snap_vcpu_sec(s, c, SNAP_SEC_MSRS), err) < 0 ||
	    snap_vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", SEC(SNAP_SEC_EVENTS),
			    err) < 0)
		return -1;
#undef SEC
	/* Tell a kvmclock guest it was stopped (no soft-lockup reports); EINVAL without one. */
	(void)ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0);
	return 0;
}

static int snap_vcpus_restore(struct machine *m, const struct snap *s, struct kv_err **err)
{
	int host_xsave = vm_check_extension(&m->vm, KVM_CAP_XSAVE2);
	if (host_xsave < SNAP_XSAVE_MIN)
		host_xsave = vm_check_extension(&m->vm, KVM_CAP_XSAVE) > 0 ? SNAP_XSAVE_MIN : 0;
	if ((uint32_t)host_xsave != s->machine.xsave_size)
		return kv_err_make(
		    err, EINVAL,
		    "XSAVE state is %d bytes on this host, %u in the snapshot (another "
		    "CPU or kernel)",
		    host_xsave, s->machine.xsave_size);
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpus[i];
		if (vcpu_create(v, &m->vm, i, err) < 0)
			return -1;
		v->m = m;
		if (snap_vcpu_restore(v, s, err) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- the VM */

static int snap_vm_restore(struct machine *m, const struct snap *s, struct kv_err **err)
{
	memcpy(&m->pit_restored, s->pit.p, sizeof(m->pit_restored));
	if (m->vm.pit && ioctl(m->vm.vm_fd, KVM_SET_PIT2, s->pit.p) < 0)
		return kv_err_make(err, errno, "KVM_SET_PIT2");
	struct kvm_clock_data saved, clock = {0};
	memcpy(&saved, s->clock.p, sizeof(saved));
	clock.clock = saved.clock;
	if (ioctl(m->vm.vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return kv_err_make(err, errno, "KVM_SET_CLOCK");
	for (unsigned i = 0; i < SNAP_IRQCHIPS; i++)
		if (ioctl(m->vm.vm_fd, KVM_SET_IRQCHIP, s->irqchip[i].p) < 0)
			return kv_err_make(err, errno, "KVM_SET_IRQCHIP %u", i);
	struct snap_serial ser;
	memcpy(&ser, s->serial.p, sizeof(ser));
	snap_serial_restore(m, &ser);
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
