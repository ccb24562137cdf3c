/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun's side of the kvrun-shim handshake (shim/shim.h): start the shim
 * (a container's in PID and mount namespaces of its own) in a session with the container's stdio as
 * fds 0-2, hand it the request, wait for its answer, commit. And the process plumbing that goes
 * with it: waiting for a shim with signal forwarding, killing recorded processes for good.
 */
#include "runtime/backend.h"
#include "agent/protocol.h"
#include "shim/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

#define SHIM_SYNC_FD 3
/* The host devices the shim and its VMM use, opened by kvrun (dev_open):
 * slot i is the shim's fd SHIM_DEV_FD + i, named by dev_opt[i]. */
enum { DEV_NULL, DEV_KVM, DEV_TUN, DEV_PTMX, SHIM_DEV_N };
#define SHIM_DEV_FD (SHIM_SYNC_FD + 1)
static const char *const dev_opt[SHIM_DEV_N] = {"--null-fd", "--kvm-fd", "--tun-fd", "--ptmx-fd"};

/* A failure in the child before exec, told to kvrun as the shim would. */
static __attribute__((noreturn)) void child_fail(int sync_fd, int errnum, const char *what)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "{\"ok\":false,\"errno\":%d,\"message\":\"%s: %s\"}",
			 errnum, what, strerror(errnum));
	struct kv_err *e = NULL;
	if (n > 0 && (size_t)n < sizeof(msg) && kv_frame_write(sync_fd, msg, (size_t)n, &e) < 0)
		kv_err_free(e); /* kvrun sees the shim exit before answering */
	_exit(127);
}

/* The network namespace the shim (and the VMM it starts) lives in. */
static void child_netns(int netns, int sync_fd)
{
	if (netns == SHIM_NETNS_NEW && unshare(CLONE_NEWNET) < 0)
		child_fail(sync_fd, errno, "linux.namespaces: new network namespace");
	if (netns >= 0 && setns(netns, CLONE_NEWNET) < 0)
		child_fail(sync_fd, errno, "linux.namespaces: join the network namespace");
}

/*
 * A container's shim is PID 1 of a PID namespace of its own, with a /proc of
 * that namespace in a mount namespace of its own (a slave of the host's):
 * what a client lists in "the container's" /proc (podman top reads the
 * /proc of the container pid's mount namespace) is the container's host
 * processes, the shim and its VMM, not the host's. And when the shim dies,
 * the kernel ends everything in its namespace, the VMM included.
 */
static void child_procfs(int sync_fd)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		child_fail(sync_fd, errno, "the shim's mount namespace: make / a slave");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		child_fail(sync_fd, errno, "the shim's mount namespace: mount /proc");
}

/*
 * The host devices the shim and its VMM open, opened here, by kvrun, before
 * the shim joins the container's host cgroup: a device policy there (a
 * Podman pod's cgroup denies every device under cgroupfs on cgroup v2; a
 * systemd slice may say DevicePolicy=closed) is the container's, and the
 * container is in the guest. /dev/null always; /dev/kvm and /dev/net/tun
 * for a VM owner; /dev/ptmx for a terminal handed to a console socket (the
 * shim opens its slave with TIOCGPTPEER, which a device policy does not
 * see). Where one cannot be opened, -1: the shim and the VMM try themselves
 * and say why. Each above 63, so that the child's dup2()s onto the slots
 * (SHIM_DEV_FD on) clobber none of them.
 */
static int dev_open(const char *path, bool want, struct kv_err **err)
{
	if (!want)
		return -1;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (err)
			return kv_err_make(err, errno, "open %s", path);
		return -1;
	}
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 64);
	close(fd);
	if (hi < 0 && err)
		return kv_err_make(err, errno, "dup %s", path);
	return hi;
}

/*
 * /dev/net/tun, opened in the network namespace the shim joins: a tap is
 * made in the namespace its tun fd was opened in. kvrun is one thread, so
 * it steps into that namespace and back. -1 where that fails (the shim
 * opens it itself then) or where no namespace is joined by path; -2 (err
 * set) when kvrun could not step back.
 */
static int tun_open(const struct shim_spawn_opts *o, struct kv_err **err)
{
	if (!o->tun || o->netns < 0)
		return -1;
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -1;
	int fd = -1;
	if (setns(o->netns, CLONE_NEWNET) == 0) {
		fd = dev_open("/dev/net/tun", true, NULL);
		if (setns(self, CLONE_NEWNET) < 0) {
			int e = errno;
			close(self);
			if (fd >= 0)
				close(fd);
			kv_err_make(err, e, "return to kvrun's network namespace");
			return -2;
		}
	}
	close(self);
	return fd;
}

static void dev_close(const int dev[SHIM_DEV_N])
{
	for (int i = 0; i < SHIM_DEV_N; i++)
		if (dev[i] >= 0)
			close(dev[i]);
}

static __attribute__((noreturn)) void shim_child(const struct vm_conf *vc,
						 const struct shim_spawn_opts *o, int sync_fd,
						 const int dev[SHIM_DEV_N])
{
	const char *state_dir = o->state_dir, *log = o->log;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (o->own_pidns)
		child_procfs(sync_fd);
	child_netns(o->netns, sync_fd);
	if (sync_fd == SHIM_SYNC_FD ? fcntl(sync_fd, F_SETFD, 0) < 0
				    : dup2(sync_fd, SHIM_SYNC_FD) < 0)
		_exit(127);
	char *argv[20];
	int n = 0;
	char fd_arg[SHIM_DEV_N + 1][16];
	snprintf(fd_arg[0], sizeof(fd_arg[0]), "%d", SHIM_SYNC_FD);
	argv[n++] = "kvrun-shim";
	argv[n++] = "--sync-fd";
	argv[n++] = fd_arg[0];
	for (int i = 0; i < SHIM_DEV_N; i++) {
		if (dev[i] < 0) {
			close(SHIM_DEV_FD + i); /* nothing of kvrun's stays there */
			continue;
		}
		if (dup2(dev[i], SHIM_DEV_FD + i) < 0)
			_exit(127);
		snprintf(fd_arg[i + 1], sizeof(fd_arg[i + 1]), "%d", SHIM_DEV_FD + i);
		argv[n++] = (char *)dev_opt[i];
		argv[n++] = fd_arg[i + 1];
	}
	syscall(SYS_close_range, SHIM_DEV_FD + SHIM_DEV_N, ~0u, 0);
	argv[n++] = "--state-dir";
	argv[n++] = (char *)state_dir;
	argv[n++] = "--log";
	argv[n++] = (char *)log;
	if (vc->debug)
		argv[n++] = "--debug";
	argv[n] = NULL;
	execv(vc->shim, argv);
	dprintf(2, "kvrun: exec %s: %s\n", vc->shim, strerror(errno));
	_exit(127);
}

int shim_spawn(const struct vm_conf *vc, const struct shim_spawn_opts *o, const char *request,
	       struct shim_handle *h, struct kv_err **err)
{
	*h = (struct shim_handle){.sync_fd = -1};
	if (access(vc->shim, X_OK) < 0)
		return kv_err_make(err, errno, "kvrun-shim %s", vc->shim);
	int dev[SHIM_DEV_N] = {-1, -1, -1, -1};
	dev[DEV_NULL] = dev_open("/dev/null", true, err);
	if (dev[DEV_NULL] < 0)
		return -1;
	dev[DEV_KVM] = dev_open("/dev/kvm", o->kvm, NULL);
	dev[DEV_PTMX] = dev_open("/dev/ptmx", o->ptmx, NULL);
	dev[DEV_TUN] = tun_open(o, err);
	if (dev[DEV_TUN] == -2) {
		dev[DEV_TUN] = -1;
		dev_close(dev);
		return -1;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		int e = errno;
		dev_close(dev);
		return kv_err_make(err, e, "socketpair");
	}
	struct clone_args ca = {.flags = o->own_pidns ? CLONE_NEWPID | CLONE_NEWNS : 0,
				.exit_signal = SIGCHLD};
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		dev_close(dev);
		return kv_err_make(err, e, "fork kvrun-shim");
	}
	if (pid == 0)
		shim_child(vc, o, sv[1], dev);
	close(sv[1]);
	dev_close(dev);
	h->pid = pid;
	h->sync_fd = sv[0];
	if (kv_pid_start_time(pid, &h->start) < 0)
		h->start = 0;
	/* Before the request: the VMM the shim forks must start in the cgroup. */
	if (o->place && o->place(o->place_ctx, pid, err) < 0)
		return -1;
	if (kv_frame_write(h->sync_fd, request, strlen(request), err) < 0)
		return kv_err_wrap(err, "kvrun-shim %d", (int)pid);
	return 0;
}

/* The shim's phases, parts of kvrun's "shim" phase (lib/timing.c). */
static void shim_timings(yajl_val answer)
{
	static const char *path[] = {"timings", NULL};
	yajl_val t = yajl_tree_get(answer, path, yajl_t_array);
	for (size_t i = 0; t && i < t->u.array.len; i++) {
		yajl_val m = t->u.array.values[i];
		if (!YAJL_IS_ARRAY(m) || m->u.array.len != 2 ||
		    !YAJL_IS_STRING(m->u.array.values[0]) || !YAJL_IS_INTEGER(m->u.array.values[1]))
			continue;
		kv_timing_part(YAJL_GET_STRING(m->u.array.values[0]),
			       (uint64_t)YAJL_GET_INTEGER(m->u.array.values[1]));
	}
}

static int read_answer(struct shim_handle *h, struct kv_err **err)
{
	cleanup_free char *text = NULL;
	size_t len;
	int r = kv_frame_read(h->sync_fd, &text, &len, err);
	if (r < 0)
		return kv_err_wrap(err, "kvrun-shim %d", (int)h->pid);
	if (r == 0)
		return kv_err_plain(err, ECHILD, "kvrun-shim %d exited before answering",
				    (int)h->pid);
	cleanup_yajl_val yajl_val v = kv_json_parse(text, "kvrun-shim answer", err);
	if (!v)
		return -1;
	bool ok = false;
	long long n = 0;
	kv_jbool(v, "ok", &ok);
	if (ok) {
		kv_jint(v, "pid", &n);
		h->guest_pid = (pid_t)n;
		shim_timings(v);
		return 0;
	}
	const char *msg = kv_jstr(v, "message");
	kv_jint(v, "errno", &n);
	return kv_err_plain(err, n > 0 ? (int)n : EIO, "%s", msg ? msg : "kvrun-shim failed");
}

int shim_await(struct shim_handle *h, unsigned timeout_s, struct kv_err **err)
{
	struct pollfd p = {.fd = h->sync_fd, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, (int)(timeout_s * 1000));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return kv_err_plain(err, ETIMEDOUT, "kvrun-shim %d did not answer within %u s",
				    (int)h->pid, timeout_s);
	return read_answer(h, err);
}

int shim_net(struct shim_handle *h, unsigned timeout_s, struct kv_err **err)
{
	static const char net[] = "{\"net\":true}";
	if (kv_frame_write(h->sync_fd, net, sizeof(net) - 1, err) < 0)
		return kv_err_wrap(err, "kvrun-shim %d", (int)h->pid);
	return shim_await(h, timeout_s, err);
}

int shim_commit(struct shim_handle *h, struct kv_err **err)
{
	static const char commit[] = "{\"commit\":true}";
	int r = kv_frame_write(h->sync_fd, commit, sizeof(commit) - 1, err);
	close(h->sync_fd);
	h->sync_fd = -1;
	return r;
}

void shim_abort(struct shim_handle *h)
{
	if (h->sync_fd >= 0)
		close(h->sync_fd);
	h->sync_fd = -1;
	if (h->pid <= 0)
		return;
	kill(h->pid, SIGKILL);
	while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
		;
	h->pid = 0;
}

/* ------------------------------------------------------- waiting, killing */

static volatile sig_atomic_t forward_to;

static void forward(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

int shim_wait_child(pid_t pid, int *status, struct kv_err **err)
{
	static const int sigs[] = {SIGINT,  SIGTERM,  SIGHUP,  SIGQUIT, SIGUSR1,
				   SIGUSR2, SIGWINCH, SIGCONT, SIGPIPE, SIGALRM};
	struct sigaction sa = {.sa_handler = forward};
	sigemptyset(&sa.sa_mask);
	forward_to = pid;
	for (size_t i = 0; i < KV_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	forward_to = 0;
	if (r < 0)
		return kv_err_make(err, errno, "wait for kvrun-shim %d", (int)pid);
	*status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	return 0;
}

int kill_and_wait(pid_t pid, uint64_t start, struct kv_err **err)
{
	if (pid <= 0 || !pid_alive(pid, start))
		return 0;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (kill(pid, SIGKILL) < 0 && errno != ESRCH) {
		if (pfd >= 0)
			close(pfd);
		return kv_err_make(err, errno, "kill %d", (int)pid);
	}
	uint64_t deadline = kv_now_ms() + 10000;
	bool gone;
	while (!(gone = !pid_alive(pid, start)) && kv_now_ms() < deadline) {
		/* Our child (a create that failed in this process)? Reap it. */
		if (waitpid(pid, NULL, WNOHANG) == pid)
			continue;
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		if (pfd < 0 || poll(&p, 1, 50) < 0)
			usleep(10000);
	}
	if (pfd >= 0)
		close(pfd);
	if (!gone)
		return kv_err_plain(err, ETIMEDOUT, "process %d did not exit after SIGKILL",
				    (int)pid);
	return 0;
}

pid_t shim_vmm_pid(pid_t shim)
{
	cleanup_free char *path = kv_asprintf("/proc/%d/task/%d/children", (int)shim, (int)shim);
	cleanup_free char *text = NULL;
	if (kv_read_file(path, 4096, &text, NULL, NULL) < 0)
		return 0;
	/* The VMM is the shim's one child (after a failed clone's restore, the
	 * cold boot's: the last one). */
	pid_t pid = 0;
	for (char *save = NULL, *t = strtok_r(text, " \n", &save); t;
	     t = strtok_r(NULL, " \n", &save))
		pid = (pid_t)atoi(t);
	return pid;
}

int kill_pidfile(const char *path, struct kv_err **err)
{
	pid_t pid;
	uint64_t start;
	if (shim_pidfile_read(path, &pid, &start) < 0)
		return 0;
	return kill_and_wait(pid, start, err);
}
