/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cloned child: it is already in its namespaces and its cgroup (clone3
 * put it there). It builds the container's view (rootfs, mounts, hostname,
 * sysctl), applies the process settings, reports "ready" on the setup
 * channel, waits for "start" (the container's init only), drops privileges,
 * loads seccomp and execs. Any failure is reported with the step's name and
 * ends the child; the parent answers the request with it. Every syscall
 * here runs in emulated guest kernel mode on PVM hosts: count them.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>

static int sync_fd = -1;

/* Report a failure to the parent and end. `step` names what was being done. */
__attribute__((noreturn)) static void child_fail(struct kv_err *err, const char *step)
{
	struct sync_msg m = {.type = SYNC_ERROR};
	m.errnum = err && err->errnum ? err->errnum : EINVAL;
	snprintf(m.text, sizeof(m.text), "%s: %s", step, err ? err->msg : "failed");
	if (sync_fd >= 0)
		(void)send(sync_fd, &m, sizeof(m), MSG_NOSIGNAL);
	_exit(127);
}

static void child_send(struct sync_msg *m, int fd)
{
	if (kv_send_fds(sync_fd, m, sizeof(*m), &fd, fd >= 0) < 0)
		_exit(127); /* the parent is gone or the channel broke */
}

/*
 * stdio onto 0..2, the setup channel onto 3, and nothing else: an fd of
 * another container's stream held here would delay its EOF.
 */
static void child_fds(struct child_args *ca)
{
	struct kv_err *err = NULL;
	for (int i = 0; i < 3; i++)
		if (ca->stdio[i] >= 0 && dup2(ca->stdio[i], i) < 0)
			child_fail((kv_err_make(&err, errno, "dup2 %d", i), err), "stdio");
	if (ca->sync_fd != 3) {
		if (dup3(ca->sync_fd, 3, O_CLOEXEC) < 0)
			child_fail((kv_err_make(&err, errno, "dup3"), err), "stdio");
		ca->sync_fd = 3;
	}
	sync_fd = 3;
	if (ca->join_pidfd >= 0 && ca->join_pidfd != 4) {
		if (dup3(ca->join_pidfd, 4, O_CLOEXEC) < 0)
			child_fail((kv_err_make(&err, errno, "dup3"), err), "stdio");
		ca->join_pidfd = 4;
	}
	unsigned first = ca->join_pidfd >= 0 ? 5 : 4;
	if (syscall(SYS_close_range, first, ~0U, 0) < 0)
		child_fail((kv_err_make(&err, errno, "close_range"), err), "stdio");
}

static void child_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
}

/* exec into a running container: join its namespaces. With a pid
 * namespace, only children of the joiner enter it: clone once more, with
 * CLONE_PARENT so the agent stays the parent, report the pid, and go. */
static void child_join(struct child_args *ca)
{
	struct kv_err *err = NULL;
	int flags = ca->ctr->spec->ns_flags & (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
					       CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWNET);
	if (setns(ca->join_pidfd, flags) < 0)
		child_fail((kv_err_make(&err, errno, "setns into the container"), err), "exec");
	close(ca->join_pidfd);
	if (!(flags & CLONE_NEWPID))
		return;
	struct clone_args cl = {.flags = CLONE_PARENT, .exit_signal = 0};
	pid_t pid = syscall(SYS_clone3, &cl, sizeof(cl));
	if (pid < 0)
		child_fail((kv_err_make(&err, errno, "clone into the pid namespace"), err), "exec");
	if (pid > 0) {
		struct sync_msg m = {.type = SYNC_PID, .pid = pid};
		child_send(&m, -1);
		_exit(0);
	}
}

/* Namespaces the spec names by path (a pod's shared uts/ipc/net...). */
static void child_join_paths(const struct kv_spec *s)
{
	static const int types[KV_NS_COUNT] = {CLONE_NEWPID, CLONE_NEWNS,     CLONE_NEWUTS,
					       CLONE_NEWIPC, CLONE_NEWCGROUP, CLONE_NEWNET};
	struct kv_err *err = NULL;
	for (int i = 0; i < KV_NS_COUNT; i++) {
		if (!s->ns_paths[i])
			continue;
		int fd = open(s->ns_paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, types[i]) < 0)
			child_fail((kv_err_make(&err, errno, "join %s", s->ns_paths[i]), err),
				   "linux.namespaces");
		close(fd);
	}
}

/* The pty lives in the container's devpts: open it there, hand the master
 * to the agent with "ready", keep the slave as the controlling terminal. */
static int child_pty(const struct kv_process *p)
{
	struct kv_err *err = NULL;
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		child_fail((kv_err_make(&err, errno, "open /dev/ptmx (is /dev/pts mounted?)"), err),
			   "process.terminal");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		child_fail((kv_err_make(&err, errno, "unlock pty"), err), "process.terminal");
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (slave < 0)
		child_fail((kv_err_make(&err, errno, "open pty peer"), err), "process.terminal");
	if (p->rows || p->cols) {
		struct winsize ws = {.ws_row = p->rows, .ws_col = p->cols};
		ioctl(slave, TIOCSWINSZ, &ws);
	}
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		child_fail((kv_err_make(&err, errno, "make the pty the controlling terminal"), err),
			   "process.terminal");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			child_fail((kv_err_make(&err, errno, "dup2 pty"), err), "process.terminal");
	close(slave);
	return master;
}

static void child_write_proc(const char *path, const char *value, const char *step)
{
	struct kv_err *err = NULL;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		child_fail((kv_err_make(&err, errno, "write %s", path), err), step);
	close(fd);
}

static void child_sysctl(const struct kv_spec *s)
{
	for (size_t i = 0; i < s->nsysctls; i++) {
		char path[256];
		snprintf(path, sizeof(path), "/proc/sys/%s", s->sysctls[i].key);
		for (char *c = path + 10; *c; c++)
			if (*c == '.')
				*c = '/';
		child_write_proc(path, s->sysctls[i].value, "linux.sysctl");
	}
}

static void child_process_limits(const struct kv_process *p)
{
	struct kv_err *err = NULL;
	for (size_t i = 0; i < p->nrlimits; i++)
		if (setrlimit(p->rlimits[i].resource, &p->rlimits[i].limit) < 0)
			child_fail(
			    (kv_err_make(&err, errno, "setrlimit %d", p->rlimits[i].resource), err),
			    "process.rlimits");
}

/* Credentials and capabilities, then no_new_privs. */
static void child_credentials(const struct kv_process *p)
{
	struct kv_err *err = NULL;
	if (caps_drop_bounding(p, &err) < 0)
		child_fail(err, "process.capabilities.bounding");
	if (p->has_caps && p->uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		child_fail((kv_err_make(&err, errno, "PR_SET_KEEPCAPS"), err), "process.user");
	if (setgroups(p->ngids, p->gids) < 0)
		child_fail((kv_err_make(&err, errno, "setgroups"), err),
			   "process.user.additionalGids");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		child_fail((kv_err_make(&err, errno, "setresgid %u", p->gid), err),
			   "process.user.gid");
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		child_fail((kv_err_make(&err, errno, "setresuid %u", p->uid), err),
			   "process.user.uid");
	if (caps_apply(p, &err) < 0)
		child_fail(err, "process.capabilities");
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail((kv_err_make(&err, errno, "PR_SET_NO_NEW_PRIVS"), err),
			   "process.noNewPrivileges");
}

/* execvpe looks PATH up in the caller's environment: give it the process's. */
__attribute__((noreturn)) static void child_exec(struct child_args *ca, char **env)
{
	const struct kv_process *p = ca->proc;
	struct kv_err *err = NULL;
	if (!p->no_new_privs && agent_seccomp_load(ca->ctr->seccomp) < 0)
		child_fail((kv_err_make(&err, EPERM, "load the filter"), err), "linux.seccomp");
	child_credentials(p);
	if (p->no_new_privs && agent_seccomp_load(ca->ctr->seccomp) < 0)
		child_fail((kv_err_make(&err, EPERM, "load the filter"), err), "linux.seccomp");
	extern char **environ;
	environ = env;
	if (!getenv("PATH") && !strchr(p->args[0], '/'))
		environ = (char *[]){
		    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	execvpe(p->args[0], p->args, env);
	child_fail((kv_err_make(&err, errno, "exec %s", p->args[0]), err), "process.args");
}

static void child_setup_init(struct child_args *ca)
{
	const struct kv_spec *s = ca->ctr->spec;
	struct kv_err *err = NULL;
	child_join_paths(s);
	if (mounts_setup_rootfs(s, ca->a->cfg.state_dir, &err) < 0)
		child_fail(err, "rootfs");
	/* runc makes a missing cwd here: as root, inside the new root, before
	 * the root goes read-only. (An exec's cwd must exist, as in runc.) */
	const char *cwd = s->process.cwd;
	if (access(cwd, F_OK) < 0 && errno == ENOENT && kv_mkdir_p(cwd, 0755, &err) < 0)
		child_fail(err, "process.cwd");
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		child_fail((kv_err_make(&err, errno, "sethostname"), err), "hostname");
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		child_fail((kv_err_make(&err, errno, "setdomainname"), err), "domainname");
	child_sysctl(s);
	if (mounts_finish_rootfs(s, &err) < 0)
		child_fail(err, "rootfs");
}

void child_main(struct child_args *ca)
{
	const struct kv_process *p = ca->proc;
	struct kv_err *err = NULL;
	child_signals();
	child_fds(ca);
	if (p->has_oom_score_adj) {
		char v[16];
		snprintf(v, sizeof(v), "%d", p->oom_score_adj);
		child_write_proc("/proc/self/oom_score_adj", v, "process.oomScoreAdj");
	}
	if (ca->is_init)
		child_setup_init(ca);
	else
		child_join(ca);
	int master = p->terminal ? child_pty(p) : -1;
	child_process_limits(p);
	if (chdir(p->cwd) < 0)
		child_fail((kv_err_make(&err, errno, "chdir %s", p->cwd), err), "process.cwd");
	/* Read as root, in the container's root (pivoted or joined). */
	char **env = agent_env_with_home(p->env, p->uid, "/etc/passwd");
	struct sync_msg m = {.type = SYNC_READY};
	child_send(&m, master);
	if (master >= 0)
		close(master);
	if (ca->is_init) {
		/* The create -> start barrier. */
		ssize_t r;
		do
			r = recv(sync_fd, &m, sizeof(m), 0);
		while (r < 0 && errno == EINTR);
		if (r != sizeof(m) || m.type != SYNC_START)
			_exit(127); /* the agent gave up on us */
	}
	if (p->umask >= 0)
		umask(p->umask);
	child_exec(ca, env);
}
