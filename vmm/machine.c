/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmm_run(): build the machine from the configuration, confine the process,
 * run the vCPU threads and the event loop until something stops the VM,
 * then tear everything down and report the exit status.
 *
 * Threads: the main thread runs the event loop (API socket, console input,
 * ioeventfds, device sockets, signals); one thread per vCPU. Stop and pause
 * go through m->lock/m->cond and kick vCPUs out of KVM_RUN with a signal.
 */
#include "vmm/machine.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>

#include "vmm/api.h"
#include "vmm/evloop.h"
#include "vmm/sandbox.h"
#include "vmm/snapshot.h"
#include "vmm/virtio/virtio.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/mptable.h"
#include "vmm/x86/pvm.h"
#include "vmm/x86/regs.h"

#define MACHINE_PAUSE_TIMEOUT_S 5
#define VCPU_STACK_SIZE		(256 * 1024)

/* ------------------------------------------------------------ run state */

void machine_stop(struct machine *m, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&m->lock);
	if (atomic_load(&m->stopping)) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->exit_status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
	if (status == VMM_EXIT_RESET && atomic_load(&m->panicked)) {
		m->exit_status = VMM_EXIT_PANIC;
		snprintf(m->why, sizeof(m->why),
			 "guest kernel panicked (the console has the message)");
	}
	atomic_store(&m->stopping, true);
	for (unsigned i = 0; i < m->ncpus; i++)
		vcpu_kick(&m->vcpus[i]);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->loop)
		evloop_stop(m->loop);
}

bool machine_vcpu_gate(struct machine *m, struct vcpu *v)
{
	if (atomic_load(&m->stopping))
		return false;
	if (!atomic_load(&m->pause_req))
		return true;
	vcpu_settle(v);
	pthread_mutex_lock(&m->lock);
	m->paused++;
	pthread_cond_broadcast(&m->cond);
	while (atomic_load(&m->pause_req) && !atomic_load(&m->stopping))
		pthread_cond_wait(&m->cond, &m->lock);
	m->paused--;
	pthread_mutex_unlock(&m->lock);
	return !atomic_load(&m->stopping);
}

int machine_pause(struct machine *m, struct kv_err **err)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += MACHINE_PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&m->lock);
	atomic_store(&m->pause_req, true);
	for (unsigned i = 0; i < m->ncpus; i++)
		vcpu_kick(&m->vcpus[i]);
	int r = 0;
	while (m->paused < m->ncpus && !atomic_load(&m->stopping) && r == 0)
		r = pthread_cond_timedwait(&m->cond, &m->lock, &deadline);
	bool ok = m->paused == m->ncpus;
	pthread_mutex_unlock(&m->lock);
	if (!ok) {
		machine_resume(m);
		if (atomic_load(&m->stopping))
			return kv_err_plain(err, ESRCH,
					    "pause: vCPUs did not stop: the VM is stopping");
		return kv_err_plain(err, ETIMEDOUT, "pause: vCPUs did not stop within %d s",
				    MACHINE_PAUSE_TIMEOUT_S);
	}
	return 0;
}

void machine_resume(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	atomic_store(&m->pause_req, false);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

bool machine_paused(struct machine *m)
{
	return atomic_load(&m->pause_req);
}

int machine_vcpu_confine(struct machine *m, struct kv_err **err)
{
	return sandbox_seccomp_load(SANDBOX_VCPU, m->cfg->seccomp, err);
}

uint64_t machine_exits_total(struct machine *m)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < m->ncpus; i++)
		n += vcpu_exits_total(&m->vcpus[i]);
	return n;
}

/*
 * The idle probe: once a second, kick the vCPUs that made no exit since the
 * last tick. The vCPU thread then looks at its state (vcpu_probe): a PVM
 * VMCALL that never completes (x86/pvm.h), or a vCPU that can never run
 * again. An idle guest costs one wakeup per vCPU per second.
 */
void machine_dead_check(struct machine *m)
{
	for (unsigned i = 0; i < m->ncpus; i++)
		if (!__atomic_load_n(&m->vcpus[i].dead, __ATOMIC_SEQ_CST))
			return;
	machine_stop(m, VMM_EXIT_POWEROFF,
		     "guest halted with interrupts off (powered off without the exit port)");
}

static void machine_probe_tick(void *ctx, uint32_t events)
{
	struct machine *m = ctx;
	uint64_t ticks;
	if (read(m->probe_timer_fd, &ticks, sizeof(ticks)) != sizeof(ticks) || machine_paused(m))
		return;
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpus[i];
		uint64_t n = vcpu_exits_total(v);
		if (n == v->probe_seen) {
			__atomic_store_n(&v->probe_req, 1, __ATOMIC_SEQ_CST);
			vcpu_kick(v);
		}
		v->probe_seen = n;
	}
}

static int machine_probe_setup(struct machine *m, struct kv_err **err)
{
	m->probe_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->probe_timer_fd < 0)
		return kv_err_make(err, errno, "timerfd");
	struct timespec period = {VCPU_PROBE_MS / 1000, (VCPU_PROBE_MS % 1000) * 1000000L};
	struct itimerspec t = {.it_interval = period, .it_value = period};
	if (timerfd_settime(m->probe_timer_fd, 0, &t, NULL) < 0 ||
	    evloop_add(m->loop, m->probe_timer_fd, EPOLLIN, machine_probe_tick, m) < 0)
		return kv_err_make(err, errno, "probe timer");
	return 0;
}

/* ------------------------------------------------------------ building */

static int machine_ram_setup(struct machine *m, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	int ret = cfg->mem_path ? ram_create_from_file(&m->ram, cfg->mem_path, cfg->mem,
						       !cfg->mem_shared, err)
				: ram_create(&m->ram, cfg->mem, err);
	if (ret < 0)
		return -1;
	for (unsigned i = 0; i < m->ram.gm.n; i++) {
		const struct gm_region *r = &m->ram.gm.r[i];
		if (vm_memslot_add(&m->vm, r->gpa, r->size, r->hva, false, err) < 0)
			return -1;
	}
	return 0;
}

static int machine_kernel_load(struct machine *m, struct boot_kernel *k, uint64_t *initrd_addr,
			       uint64_t *initrd_size, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	cleanup_close int kfd = open(cfg->kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0)
		return kv_err_make(err, errno, "open kernel %s", cfg->kernel);
	if (boot_kernel_load(&m->ram.gm, kfd, k, err) < 0)
		return kv_err_wrap(err, "%s", cfg->kernel);
	*initrd_addr = *initrd_size = 0;
	if (!cfg->initrd)
		return 0;
	cleanup_close int ifd = open(cfg->initrd, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return kv_err_make(err, errno, "open initrd %s", cfg->initrd);
	if (boot_initrd_load(&m->ram.gm, ifd, k, initrd_addr, initrd_size, err) < 0)
		return kv_err_wrap(err, "%s", cfg->initrd);
	return 0;
}

static int machine_boot_setup(struct machine *m, struct kv_err **err)
{
	struct boot_kernel k;
	uint64_t initrd_addr, initrd_size;
	if (machine_kernel_load(m, &k, &initrd_addr, &initrd_size, err) < 0)
		return -1;
	kv_debug("vm: kernel %s entry 0x%llx, cmdline: %s", k.bzimage ? "bzImage" : "ELF",
		 (unsigned long long)k.entry, m->cmdline);
	struct gm *gm = &m->ram.gm;
	if (boot_params_write(gm, &k, m->cmdline, initrd_addr, initrd_size, err) < 0 ||
	    regs_gdt_write(gm, err) < 0 || regs_pagetables_write(gm, err) < 0 ||
	    mptable_write(gm, m->ncpus, err) < 0)
		return -1;
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpus[i];
		if (vcpu_create(v, &m->vm, i, err) < 0)
			return -1;
		v->m = m;
		if (vcpu_arch_setup(v, &m->vm, m->ncpus, m->pvm, err) < 0)
			return -1;
	}
	return vcpu_boot_regs_set(&m->vcpus[0], k.entry, LAYOUT_ZERO_PAGE, err);
}

static void machine_signal_ready(void *ctx, uint32_t events)
{
	struct machine *m = ctx;
	struct signalfd_siginfo si;
	if (read(m->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	machine_stop(m, 128 + (int)si.ssi_signo, "stopped by signal %s", strsignal(si.ssi_signo));
}

/* SIGTERM/SIGINT/SIGHUP arrive on a signalfd in the loop; every thread blocks them. */
static int machine_signals_setup(struct machine *m, struct kv_err **err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	int e = pthread_sigmask(SIG_BLOCK, &set, NULL); /* returns the error, errno untouched */
	if (e != 0)
		return kv_err_make(err, e, "pthread_sigmask");
	sigdelset(&set, SIGPIPE);
	m->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m->signal_fd < 0)
		return kv_err_make(err, errno, "signalfd");
	if (evloop_add(m->loop, m->signal_fd, EPOLLIN, machine_signal_ready, m) < 0)
		return kv_err_make(err, errno, "watch signals");
	return vcpu_signals_init(err);
}

static int machine_build(struct machine *m, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	m->ncpus = cfg->cpus;
	m->pvm = cfg->pvm == VMM_PVM_ON || (cfg->pvm == VMM_PVM_AUTO && pvm_detect());
	if (m->pvm)
		kv_debug("vm: PVM host: compatibility mode on");
	if (cfg->stats_path) {
		m->stats_fd = open(cfg->stats_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (m->stats_fd < 0)
			return kv_err_make(err, errno, "open %s", cfg->stats_path);
	}
	m->loop = evloop_new(err);
	if (!m->loop || machine_signals_setup(m, err) < 0)
		return -1;
	if (cfg->restore_dir) {
		if (snapshot_restore(m, err) < 0)
			return -1;
	} else if (vm_create(&m->vm, err) < 0 || machine_ram_setup(m, err) < 0 ||
		   machine_devices_setup(m, err) < 0 || machine_boot_setup(m, err) < 0) {
		return -1;
	}
	if (console_input_start(&m->console, &m->serial, m->loop, err) < 0)
		return -1;
	if (machine_probe_setup(m, err) < 0)
		return -1;
	if (cfg->api_sock) {
		snapshot_setup(m);
		m->api = api_start(m, cfg->api_sock, err);
		if (!m->api)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- running */

static int machine_vcpus_start(struct machine *m, struct kv_err **err)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, VCPU_STACK_SIZE);
	int r = 0;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->ncpus && r == 0; i++) {
		struct vcpu *v = &m->vcpus[i];
		r = pthread_create(&v->thread, &attr, vcpu_thread_main, v);
		if (r == 0)
			v->thread_started = true;
	}
	pthread_mutex_unlock(&m->lock);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return kv_err_make(err, r, "start vCPU thread");
	return 0;
}

static void machine_vcpus_join(struct machine *m)
{
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->vcpus[i].thread_started)
			pthread_join(m->vcpus[i].thread, NULL);
}

/* Where each vCPU stopped: for a VM that hangs and is stopped from outside. */
static void machine_vcpus_log(struct machine *m)
{
	if (!kv_log_enabled(KV_LOG_DEBUG))
		return;
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct kvm_regs r;
		if (m->vcpus[i].fd >= 0 && ioctl(m->vcpus[i].fd, KVM_GET_REGS, &r) == 0)
			kv_debug("vcpu %u: stopped at RIP 0x%llx RSP 0x%llx RFLAGS 0x%llx", i,
				 (unsigned long long)r.rip, (unsigned long long)r.rsp,
				 (unsigned long long)r.rflags);
	}
}

/* The vsock socket's directory, to bind into the jail (sandbox.h); malloc'd, or NULL. */
static char *machine_dial_dir(const struct machine *m)
{
	const char *uds = m->cfg->vsock_uds;
	if (!m->vsock || !uds)
		return NULL;
	const char *slash = strrchr(uds, '/');
	if (!slash)
		return kv_strdup(".");
	return slash == uds ? kv_strdup("/") : kv_asprintf("%.*s", (int)(slash - uds), uds);
}

/* Into the jail's root; its ids are taken with the capabilities' drop. */
static int machine_jail_pivot(struct machine *m, struct sandbox_ids *ids, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	ids->uid = cfg->jail_uid;
	ids->gid = cfg->jail_gid;
	if (!cfg->jail_uid) {
		if (sandbox_jail_default_id(&ids->uid, err) < 0)
			return -1;
		ids->gid = ids->uid;
	}
	cleanup_free char *dial = machine_dial_dir(m);
	if (sandbox_jail_pivot(dial, err) < 0)
		return -1;
	if (m->vsock)
		virtio_vsock_jailed(m->vsock, SANDBOX_JAIL_DIAL_DIR);
	return 0;
}

/* A change of ids clears the parent-death signal (prctl(2)): set it again. */
static int machine_pdeathsig_rearm(struct machine *m, struct kv_err **err)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return kv_err_make(err, errno, "PR_SET_PDEATHSIG");
	if (getppid() != m->parent)
		return kv_err_plain(err, ESRCH, "the parent exited before the VM started");
	return 0;
}

static int machine_run(struct machine *m, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	struct sandbox_ids ids;
	if (m->jailed && machine_jail_pivot(m, &ids, err) < 0)
		return -1;
	if (cfg->drop_caps ? sandbox_caps_drop(m->jailed ? &ids : NULL, err) < 0
			   : m->jailed && sandbox_jail_ids(&ids, err) < 0)
		return -1;
	if (m->jailed && cfg->pdeathsig && machine_pdeathsig_rearm(m, err) < 0)
		return -1;
	/* What set-up (a snapshot's state, the command line's devices) freed
	 * goes back to the host: each idle VM would keep it otherwise. */
	malloc_trim(0);
	if (machine_vcpus_start(m, err) < 0) {
		machine_stop(m, VMM_EXIT_ERROR, "%s", (*err)->msg);
		machine_vcpus_join(m);
		return -1;
	}
	struct kv_err *lerr = NULL;
	if (sandbox_seccomp_load(SANDBOX_MAIN, cfg->seccomp, &lerr) < 0 ||
	    evloop_run(m->loop, &lerr) < 0) {
		machine_stop(m, VMM_EXIT_ERROR, "%s", lerr->msg);
		kv_err_free(lerr);
	}
	machine_vcpus_join(m);
	machine_vcpus_log(m);
	return 0;
}

static void machine_stats_write(struct machine *m)
{
	if (m->stats_fd < 0)
		return;
	cleanup_json struct kv_json *j = kv_json_new(true);
	kv_json_map_open(j);
	kv_json_kint(j, "exit_status", m->exit_status);
	kv_json_kstr(j, "reason", m->why);
	uint64_t first = atomic_load(&m->t_first_run_ns);
	kv_json_key(j, "first_run_us");
	kv_json_uint(j, first ? (first - m->t_start_ns) / 1000 : 0);
	kv_json_key(j, "run_ms");
	kv_json_uint(j, (kv_now_ns() - m->t_start_ns) / 1000000);
	kv_json_key(j, "exits_total");
	kv_json_uint(j, machine_exits_total(m));
	kv_json_key(j, "exits");
	kv_json_map_open(j);
	for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++) {
		uint64_t n = 0;
		for (unsigned i = 0; i < m->ncpus; i++)
			n += m->vcpus[i].exits[r];
		if (n) {
			kv_json_key(j, vcpu_exit_reason_name(r));
			kv_json_uint(j, n);
		}
	}
	kv_json_map_close(j);
	uint64_t fixups = 0;
	for (unsigned i = 0; i < m->ncpus; i++)
		fixups += m->vcpus[i].fixups;
	kv_json_key(j, "pvm_fixups");
	kv_json_uint(j, fixups);
	kv_json_kbool(j, "pvm", m->pvm);
	if (m->cfg->restore_dir)
		snapshot_stats_write(m, j);
	kv_json_map_close(j);
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_json_finish(j, &out, &len, &err) < 0) {
		kv_warn("stats: %s", err->msg);
		kv_err_free(err);
		return;
	}
	/* Opened during setup: seccomp allows no open() by now. */
	if (kv_write_all(m->stats_fd, out, len) != (ssize_t)len)
		kv_warn("stats %s: %s", m->cfg->stats_path, strerror(errno));
}

static void machine_destroy(struct machine *m)
{
	api_stop(m->api);
	m->api = NULL;
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->vcpus[i].run)
			vcpu_destroy(&m->vcpus[i]);
	machine_devices_teardown(m);
	vm_destroy(&m->vm);
	ram_destroy(&m->ram);
	if (m->signal_fd >= 0)
		close(m->signal_fd);
	if (m->stats_fd >= 0)
		close(m->stats_fd);
	if (m->panic_timer_fd >= 0)
		close(m->panic_timer_fd);
	if (m->probe_timer_fd >= 0)
		close(m->probe_timer_fd);
	if (m->maps_fd >= 0)
		close(m->maps_fd);
	evloop_free(m->loop);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
}

int vmm_run(const struct vmm_config *cfg, int *exit_status, struct kv_err **err)
{
	*exit_status = VMM_EXIT_ERROR;
	struct machine *m = kv_malloc0(sizeof(*m));
	m->cfg = cfg;
	m->t_start_ns = kv_now_ns();
	m->signal_fd = -1;
	m->stats_fd = -1;
	m->panic_timer_fd = -1;
	m->probe_timer_fd = -1;
	m->maps_fd = -1;
	m->ram.fd = -1;
	vm_init(&m->vm);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->parent = getppid();
	/* The jail needs root (a VMM started by a user is unprivileged already). */
	m->jailed = cfg->jail && geteuid() == 0;
	if (cfg->jail && !m->jailed)
		kv_debug("jail: not root: running without it");
	int r = m->jailed ? sandbox_jail_unshare(err) : 0;
	if (r == 0)
		r = machine_build(m, err);
	if (r == 0)
		r = machine_run(m, err);
	if (r == 0) {
		*exit_status = m->exit_status;
		if (m->exit_status == VMM_EXIT_POWEROFF)
			kv_debug("vm: %s", m->why);
		else if (m->exit_status == VMM_EXIT_ERROR)
			r = kv_err_plain(err, 0, "%s", m->why);
		else
			kv_info("vm: %s", m->why);
	} else {
		m->exit_status = VMM_EXIT_ERROR;
		snprintf(m->why, sizeof(m->why), "%s", *err ? (*err)->msg : "setup failed");
	}
	machine_stats_write(m);
	machine_destroy(m);
	free(m);
	return r;
}
