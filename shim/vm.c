/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM, for the shim that owns it: start kvrun-vmm as our child (it dies
 * with us: PR_SET_PDEATHSIG), wait until the agent answers on vsock, and
 * kill it when we are done. Any shim: connect to the agent.
 */
#include "shim/internal.h"
#include "vmm/vmm.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* Between tries to reach an agent that is still booting (a clone's is up at once). */
#define AGENT_RETRY_MS	     200
#define AGENT_RETRY_CLONE_MS 2
/* Where the VMM finds the /dev/kvm kvrun opened (its --kvm-fd). */
#define VMM_KVM_FD     3
#define VMM_KVM_FD_STR "3"

/*
 * The child's way to kvrun-vmm. What fails before exec is written to fd, a
 * close-on-exec pipe to the shim (the log may not exist yet: the sandbox
 * directory could be missing), so the error names the step and errno.
 */
static __attribute__((noreturn)) void vmm_child(const struct shim *s, char **argv, int fd)
{
	const struct shim_req *r = &s->req;
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	const char *step = "chdir to the sandbox directory";
	if (chdir(r->sandbox_dir) == 0) {
		step = "open the vmm log";
		int null = shim_stdio_null();
		int log = open(SHIM_VMM_LOG_NAME, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (null >= 0 && log >= 0 && dup2(null, 0) >= 0 && dup2(log, 1) >= 0 &&
		    dup2(log, 2) >= 0) {
			step = "pass /dev/kvm";
			if (s->kvm_fd < 0 || dup2(s->kvm_fd, VMM_KVM_FD) >= 0) {
				step = "exec";
				execv(argv[0], argv);
			}
		}
	}
	int e = errno;
	if (strcmp(step, "exec") == 0)
		dprintf(fd, "exec %s: %s", argv[0], strerror(e));
	else
		dprintf(fd, "%s: %s", step, strerror(e));
	_exit(127);
}

/*
 * The VMM as pid 1 of a pid namespace of its own (vmm/sandbox.h: it sees
 * no process, not even ours; its jail's id comes from that namespace), and
 * where kvrun asks, of a network namespace of its own. Where clone3 is
 * missing (or filtered with ENOSYS, as Docker's default profile does),
 * clone(2) does the same. A shim that may not make namespaces forks: the
 * VMM then shares our pid namespace, where it is pid 2 in every VM, so
 * *jail_id is the id of our namespace (we are its pid 1, it is the VM's
 * alone), for the VMM's --jail-uid; 0 where none is needed.
 */
static pid_t vmm_fork(const struct shim *s, uint32_t *jail_id)
{
	*jail_id = 0;
	unsigned long flags = CLONE_NEWPID | (s->req.vmm_own_netns ? CLONE_NEWNET : 0);
	struct clone_args ca = {.flags = flags, .exit_signal = SIGCHLD};
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0 && errno == ENOSYS)
		pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid >= 0 || errno != EPERM)
		return pid;
	kv_warn("kvrun-vmm without a pid%s namespace of its own: %s",
		s->req.vmm_own_netns ? " and network" : "", strerror(errno));
	if (getpid() == 1)
		*jail_id = vmm_jail_ns_id();
	return fork();
}

int shim_vm_start(struct shim *s, struct kv_err **err)
{
	/* kvrun's /dev/kvm (runtime/spawn.c), as the VMM's fd VMM_KVM_FD. */
	size_t n = 0;
	while (s->req.vmm_argv[n])
		n++;
	cleanup_free char **argv = kv_malloc0((n + 5) * sizeof(*argv));
	memcpy(argv, s->req.vmm_argv, n * sizeof(*argv));
	if (s->kvm_fd >= 0) {
		argv[n++] = (char *)"--kvm-fd";
		argv[n++] = (char *)VMM_KVM_FD_STR;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return kv_err_make(err, errno, "pipe for kvrun-vmm");
	uint32_t jail_id;
	char jail_arg[24];
	pid_t pid = vmm_fork(s, &jail_id);
	if (pid == 0 && jail_id) {
		/* Before the caller's own --jail-uid, if any: the last one counts. */
		snprintf(jail_arg, sizeof(jail_arg), "%u:%u", jail_id, jail_id);
		memmove(argv + 3, argv + 1, (n - 1) * sizeof(*argv));
		argv[1] = (char *)"--jail-uid";
		argv[2] = jail_arg;
	}
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return kv_err_make(err, errno, "fork for kvrun-vmm");
	}
	if (pid == 0)
		vmm_child(s, argv, p[1]);
	close(p[1]);
	char why[512];
	ssize_t got;
	while ((got = read(p[0], why, sizeof(why) - 1)) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (got > 0) {
		why[got] = '\0';
		waitpid(pid, NULL, 0);
		return kv_err_plain(err, ECHILD, "kvrun-vmm did not start in %s: %s",
				    s->req.sandbox_dir, why);
	}
	s->vmm_pid = pid;
	/* Our pids are the host's unless we are pid 1 of a namespace of our
	 * own (kvrun's shims are): then the pid means nothing outside, and
	 * kvrun records the VMM's once we answer (runtime/sandbox.c). */
	cleanup_free char *pf = kv_asprintf("%s/%s", s->req.sandbox_dir, SHIM_VMM_PID_NAME);
	if (getpid() != 1 && shim_pidfile_write(pf, pid, err) < 0)
		return -1;
	kv_debug("started kvrun-vmm %d in %s", (int)pid, s->req.sandbox_dir);
	return 0;
}

/* The last lines of a log in the sandbox directory, for an error message. */
static char *log_tail(const char *dir, const char *name, size_t max)
{
	cleanup_free char *path = kv_asprintf("%s/%s", dir, name);
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (kv_read_file(path, 8u << 20, &text, &len, NULL) < 0 || len == 0)
		return kv_strdup("(empty)");
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	const char *start = len > max ? text + len - max : text;
	char *out = kv_strdup(start);
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = '|';
	return out;
}

static int vm_died(struct shim *s, int status, struct kv_err **err)
{
	cleanup_free char *vlog = log_tail(s->req.sandbox_dir, SHIM_VMM_LOG_NAME, 400);
	cleanup_free char *console = log_tail(s->req.sandbox_dir, SHIM_CONSOLE_NAME, 600);
	s->vmm_pid = 0;
	return kv_err_make(err, ECHILD,
			   "the VM stopped while booting (kvrun-vmm %s %d); vmm log: %s; "
			   "console: %s",
			   WIFSIGNALED(status) ? "killed by signal" : "exit status",
			   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), vlog,
			   console);
}

/*
 * Sleep ms between tries, watching kvrun's end of the sync socket: a kvrun
 * killed while the VM boots (SIGKILL of `kvrun create`) will never commit,
 * and a cold boot takes tens of seconds on a PVM host (up to the boot
 * timeout on a stuck one). True when kvrun has gone. kvrun sends nothing
 * while it waits for our answer, so only the hang-up can wake us early.
 */
static bool kvrun_gone_wait(const struct shim *s, int ms)
{
	if (s->sync_fd < 0) {
		usleep((useconds_t)ms * 1000);
		return false;
	}
	struct pollfd p = {.fd = s->sync_fd, .events = POLLRDHUP};
	int r = poll(&p, 1, ms);
	return r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int kvrun_gone(struct shim *s, struct kv_err *e, struct kv_err **err)
{
	kv_err_free(e);
	return kv_err_plain(err, ECONNRESET,
			    "kvrun went away while the VM in %s booted: not booting it for nobody",
			    s->req.sandbox_dir);
}

/* Try until the agent answers, the VMM dies, kvrun goes, or the boot timeout. */
static int agent_wait_boot(struct shim *s, struct kv_err **err)
{
	uint64_t deadline = kv_now_ms() + (uint64_t)s->req.boot_timeout_ms;
	for (;;) {
		struct kv_err *e = NULL;
		s->agent = kv_agent_client_connect_watch(s->addr, s->sync_fd, &e);
		if (!s->agent && e->errnum == ECANCELED)
			return kvrun_gone(s, e, err);
		if (s->agent) {
			kv_agent_client_set_timeout(s->agent, 30000);
			if (kv_agent_client_hello(s->agent, &e) == 0)
				return 0;
			kv_agent_client_free(steal_ptr(s->agent));
		}
		int status;
		if (s->vmm_pid > 0 && waitpid(s->vmm_pid, &status, WNOHANG) == s->vmm_pid) {
			kv_err_free(e);
			return vm_died(s, status, err);
		}
		if (kv_now_ms() >= deadline) {
			cleanup_free char *console =
			    log_tail(s->req.sandbox_dir, SHIM_CONSOLE_NAME, 600);
			int r = kv_err_make(err, ETIMEDOUT,
					    "the guest agent did not answer within %lld ms (%s); "
					    "console: %s",
					    s->req.boot_timeout_ms, e ? e->msg : "?", console);
			kv_err_free(e);
			return r;
		}
		kv_err_free(e);
		if (kvrun_gone_wait(s, s->req.clone ? AGENT_RETRY_CLONE_MS : AGENT_RETRY_MS))
			return kvrun_gone(s, NULL, err);
	}
}

static void agent_set_time(struct shim *s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	cleanup_msg struct kv_msg resp = {0};
	cleanup_err struct kv_err *e = NULL;
	cleanup_free char *p = kv_req_set_time(ts.tv_sec, ts.tv_nsec, &e);
	if (!p || kv_agent_client_call(s->agent, KV_OP_SET_TIME, p, &resp, &e) < 0)
		kv_warn("set the guest's clock: %s", e->msg);
}

/* Shares (virtio-fs tags) the container's bind mounts come from. */
static int agent_mount_shares(struct shim *s, struct kv_err **err)
{
	for (char **t = s->req.shares; t && *t; t++) {
		cleanup_free char *p = kv_req_mount_shared(*t, "virtiofs", err);
		cleanup_msg struct kv_msg resp = {0};
		if (!p || kv_agent_client_call(s->agent, KV_OP_MOUNT_SHARED, p, &resp, err) < 0)
			return -1;
	}
	return 0;
}

int shim_agent_connect(struct shim *s, struct kv_err **err)
{
	s->addr = shim_agent_addr(s->req.sandbox_dir, err);
	if (!s->addr)
		return -1;
	if (s->req.owner) {
		struct kv_err *e = NULL;
		if (agent_wait_boot(s, &e) < 0) {
			/* A clone whose restore failed (the VMM died): boot cold (clone.c). */
			bool died = s->vmm_pid == 0;
			if (!died || !shim_clone_fallback(s, e)) {
				*err = e;
				return -1;
			}
			kv_err_free(e);
			if (shim_vm_start(s, err) < 0 || agent_wait_boot(s, err) < 0)
				return -1;
		}
		kv_debug("the guest agent answers (%s)", s->req.clone ? "clone" : "cold boot");
		kv_timing_mark(s->req.clone ? "restore" : "boot");
		if (!s->req.clone && s->req.tmpl_tmp) {
			shim_template_out(s);
			if (agent_wait_boot(s, err) < 0)
				return -1;
		}
		if (s->req.set_time)
			agent_set_time(s);
		if (shim_clone_identity(s, err) < 0)
			return -1;
		kv_debug("the VM's time and identity are set");
		kv_timing_mark("identity");
		return agent_mount_shares(s, err);
	}
	s->agent = kv_agent_client_connect(s->addr, err);
	if (!s->agent)
		return kv_err_wrap(err, "the sandbox's VM (%s)", s->req.sandbox_dir);
	kv_agent_client_set_timeout(s->agent, 30000);
	if (kv_agent_client_hello(s->agent, err) < 0)
		return -1;
	kv_timing_mark("agent");
	/* A container joining the VM: its live shares' device (once per VM). */
	return agent_mount_shares(s, err);
}

bool shim_vm_reap(struct shim *s)
{
	int status;
	if (s->vmm_pid <= 0 || waitpid(s->vmm_pid, &status, WNOHANG) != s->vmm_pid)
		return false;
	kv_info("kvrun-vmm %d exited (%s %d)", (int)s->vmm_pid,
		WIFSIGNALED(status) ? "signal" : "status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	s->vmm_pid = 0;
	return true;
}

void shim_vm_stop(struct shim *s)
{
	if (s->vmm_pid <= 0)
		return;
	/* The guest's state is not worth a clean shutdown: its process is done. */
	kill(s->vmm_pid, SIGKILL);
	while (waitpid(s->vmm_pid, NULL, 0) < 0 && errno == EINTR)
		;
	s->vmm_pid = 0;
}
