/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Containers and their processes, the parent's side: create (clone3 straight
 * into the namespaces and the cgroup, then wait for the child's "ready"),
 * start (release the child, answer once it has exec'd), exec, reap, kill,
 * delete. Answers to create/start/exec are deferred: the event loop goes on
 * while a child sets itself up.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static void proc_setup_failed(struct agent *a, struct proc *p);

struct container *container_find(struct agent *a, const char *id)
{
	for (struct container *c = a->containers; id && c; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

struct proc *proc_find(struct container *c, const char *exec_id)
{
	if (!exec_id)
		return c->init;
	for (struct proc *p = c->procs; p; p = p->next)
		if (p->exec_id && strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

const char *proc_state_name(const struct container *c, const struct proc *p)
{
	switch (p->state) {
	case PROC_SETUP: return "creating";
	case PROC_CREATED: return "created";
	case PROC_STARTING:
	case PROC_RUNNING: return c->paused ? "paused" : "running";
	case PROC_EXITED: return "stopped";
	}
	return "unknown";
}

void proc_exit_json(const struct proc *p, struct kv_json *j)
{
	if (WIFSIGNALED(p->status)) {
		kv_json_kint(j, "signal", WTERMSIG(p->status));
		kv_json_kstr(j, "signal_name", sigabbrev_np(WTERMSIG(p->status)));
		kv_json_kint(j, "status", 128 + WTERMSIG(p->status));
	} else {
		kv_json_kint(j, "exit_code", WEXITSTATUS(p->status));
		kv_json_kint(j, "status", WEXITSTATUS(p->status));
	}
}

void proc_result(struct proc *p, struct kv_json *j)
{
	kv_json_map_open(j);
	kv_json_kstr(j, "container", p->ctr->id);
	if (p->exec_id)
		kv_json_kstr(j, "exec_id", p->exec_id);
	kv_json_kint(j, "pid", p->pid);
	stdio_result(p, j);
	kv_json_map_close(j);
}

struct container *container_new(const char *id)
{
	struct container *c = kv_malloc0(sizeof(*c));
	c->id = kv_strdup(id);
	c->cgroup_fd = -1;
	c->oom.fd = -1;
	return c;
}

struct proc *proc_new(struct container *c, const char *exec_id, const char *op)
{
	struct proc *p = kv_malloc0(sizeof(*p));
	p->ctr = c;
	p->pidfd = -1;
	p->sync.fd = -1;
	p->exec_id = exec_id ? kv_strdup(exec_id) : NULL;
	p->pending_op = op;
	return p;
}

/* ------------------------------------------------------------ answers */

static void waiter_push(struct waiter **list, uint64_t serial, uint64_t id)
{
	struct waiter *w = kv_malloc0(sizeof(*w));
	w->conn_serial = serial;
	w->id = id;
	w->next = *list;
	*list = w;
}

static void pending_answer_ok(struct agent *a, struct proc *p)
{
	struct waiter *w = steal_ptr(p->pending);
	if (!w)
		return;
	cleanup_json struct kv_json *j = kv_msg_begin_result(w->id);
	proc_result(p, j);
	agent_reply_json(a, w->conn_serial, j);
	free(w);
}

static void pending_answer_err(struct agent *a, struct proc *p, int errnum, const char *msg)
{
	struct waiter *w = steal_ptr(p->pending);
	if (!w)
		return;
	struct kv_err e = {.errnum = errnum, .msg = (char *)msg};
	agent_reply_error(a, w->conn_serial, w->id, &e);
	free(w);
}

static void answer_waiters(struct agent *a, struct proc *p)
{
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		cleanup_json struct kv_json *j = kv_msg_begin_result(w->id);
		kv_json_map_open(j);
		proc_exit_json(p, j);
		kv_json_map_close(j);
		agent_reply_json(a, w->conn_serial, j);
		free(w);
	}
}

static void free_waiters(struct waiter *w)
{
	while (w) {
		struct waiter *n = w->next;
		free(w);
		w = n;
	}
}

/* --------------------------------------------------------- processes */

/* Close everything a process holds; the memory goes in agent_gc(). */
static void proc_close(struct agent *a, struct proc *p)
{
	ev_close(a, &p->sync);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	stdio_close(a, p);
}

static void proc_free(struct agent *a, struct proc *p)
{
	proc_close(a, p);
	stdio_free(a, p);
	free_waiters(p->waiters);
	free_waiters(p->pending);
	if (p->spec) {
		kv_process_clear(p->spec);
		free(p->spec);
	}
	free(p->exec_id);
	free(p);
}

/* Wait for a child we know is exiting (it reported an error). */
static void proc_exited(struct agent *a, struct proc *p, int status);

/*
 * Wait for a child we know is exiting (it reported a setup error, or was
 * just sent SIGKILL). A process that had run is announced like any exit.
 */
static void proc_reap_now(struct agent *a, struct proc *p, bool announce)
{
	if (p->state == PROC_EXITED || p->pid <= 0)
		return;
	int st = 0;
	pid_t r;
	while ((r = waitpid(p->pid, &st, __WALL)) < 0 && errno == EINTR)
		;
	if (r < 0)
		st = SIGKILL; /* already reaped elsewhere: report it as killed */
	if (announce) {
		proc_exited(a, p, st);
		return;
	}
	p->status = st;
	p->state = PROC_EXITED;
}

static void proc_exited(struct agent *a, struct proc *p, int status)
{
	p->state = PROC_EXITED;
	p->status = status;
	if (p->pidfd >= 0) {
		close(p->pidfd);
		p->pidfd = -1;
	}
	cleanup_json struct kv_json *j = kv_msg_begin_event(KV_EV_EXIT);
	kv_json_kstr(j, "container", p->ctr->id);
	if (p->exec_id)
		kv_json_kstr(j, "exec_id", p->exec_id);
	kv_json_kint(j, "pid", p->pid);
	proc_exit_json(p, j);
	agent_broadcast(a, j);
	answer_waiters(a, p);
}

static struct proc *proc_by_pid(struct agent *a, pid_t pid)
{
	for (struct container *c = a->containers; c; c = c->next)
		for (struct proc *p = c->procs; p; p = p->next)
			if (p->pid == pid && p->state != PROC_EXITED)
				return p;
	return NULL;
}

void container_reap(struct agent *a)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG | __WALL);
		if (pid <= 0)
			return;
		struct proc *p = proc_by_pid(a, pid);
		if (p) {
			proc_exited(a, p, st);
			continue;
		}
		struct orphan *o = &a->orphans[a->orphan_next++ % AGENT_ORPHAN_MAX];
		o->pid = pid;
		o->status = st;
	}
}

/* The intermediate of an exec reported the real process's pid. */
static void proc_set_pid(struct agent *a, struct proc *p, pid_t pid)
{
	p->pid = pid;
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = syscall(SYS_pidfd_open, pid, 0);
	for (unsigned i = 0; i < AGENT_ORPHAN_MAX; i++)
		if (a->orphans[i].pid == pid) {
			a->orphans[i].pid = 0;
			proc_exited(a, p, a->orphans[i].status);
		}
}

static void proc_sync_msg(struct agent *a, struct proc *p, struct sync_msg *m, int fd)
{
	m->text[sizeof(m->text) - 1] = '\0';
	switch (m->type) {
	case SYNC_PID: proc_set_pid(a, p, m->pid); break;
	case SYNC_READY:
		if (fd >= 0)
			stdio_set_pty(a, p, fd);
		fd = -1;
		/* An exec may have run, exited and been reaped in this same batch
		 * of events, before its "ready" is read: it stays exited. */
		if (p->state != PROC_EXITED)
			p->state = p->exec_id ? PROC_STARTING : PROC_CREATED;
		if (!p->exec_id)
			pending_answer_ok(a, p);
		break;
	case SYNC_ERROR: {
		cleanup_free char *msg =
		    kv_asprintf("%s %s: %s", p->pending_op ? p->pending_op : "process",
				p->exec_id ? p->exec_id : p->ctr->id, m->text);
		pending_answer_err(a, p, m->errnum ? m->errnum : EINVAL, msg);
		proc_setup_failed(a, p);
		return;
	}
	default: kv_warn("container %s: unexpected setup message %u", p->ctr->id, m->type);
	}
	if (fd >= 0)
		close(fd);
}

/* End of the setup channel: the child exec'd (it is CLOEXEC) or died. */
static void proc_sync_eof(struct agent *a, struct proc *p)
{
	ev_close(a, &p->sync);
	if (!p->pending)
		return;
	if (p->state == PROC_SETUP) {
		proc_reap_now(a, p, false);
		cleanup_free char *msg = kv_asprintf(
		    "%s %s: process died during setup (%s %d)", p->pending_op,
		    p->exec_id ? p->exec_id : p->ctr->id,
		    WIFSIGNALED(p->status) ? "signal" : "exit status",
		    WIFSIGNALED(p->status) ? WTERMSIG(p->status) : WEXITSTATUS(p->status));
		pending_answer_err(a, p, ECHILD, msg);
		proc_setup_failed(a, p);
		return;
	}
	if (p->state != PROC_EXITED)
		p->state = PROC_RUNNING;
	pending_answer_ok(a, p);
}

static void proc_sync_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct proc *p = container_of(src, struct proc, sync);
	struct sync_msg m = {0};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t r = recvmsg(src->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	int fd = -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (r > 0 && cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (r <= 0) {
		proc_sync_eof(a, p);
		return;
	}
	if ((size_t)r < offsetof(struct sync_msg, text)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	proc_sync_msg(a, p, &m, fd);
}

void proc_watch_sync(struct agent *a, struct proc *p, int fd)
{
	p->sync.fd = fd;
	p->sync.cb = proc_sync_cb;
	if (ev_add(a, &p->sync, EPOLLIN) < 0)
		kv_warn("container %s: epoll add: %s", p->ctr->id, strerror(errno));
}

/* clone3 into the namespaces (init only) and the container's cgroup. */
static pid_t proc_clone(struct container *c, bool is_init, int *pidfd)
{
	struct clone_args ca = {0};
	ca.flags = CLONE_PIDFD | (is_init ? (uint64_t)c->spec->ns_flags : 0);
	ca.pidfd = (uint64_t)(uintptr_t)pidfd;
	ca.exit_signal = SIGCHLD;
	if (c->cgroup_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = c->cgroup_fd;
	}
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

static int proc_spawn(struct agent *a, struct container *c, struct proc *p, struct kv_process *spec,
		      bool want_stdin, struct kv_err **err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return kv_err_make(err, errno, "socketpair");
	int child_fds[3] = {-1, -1, -1};
	if (stdio_prepare(a, p, want_stdin, spec->terminal, child_fds, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	struct child_args ca = {.a = a,
				.ctr = c,
				.proc = spec,
				.is_init = p == c->init,
				.sync_fd = sv[1],
				.join_pidfd = -1};
	memcpy(ca.stdio, child_fds, sizeof(child_fds));
	if (p != c->init)
		ca.join_pidfd = c->init->pidfd;
	int pidfd = -1;
	pid_t pid = proc_clone(c, p == c->init, &pidfd);
	if (pid == 0)
		child_main(&ca);
	int saved = errno;
	close(sv[1]);
	for (int i = 0; i < 3; i++)
		if (child_fds[i] >= 0 && child_fds[i] != a->devnull)
			close(child_fds[i]);
	if (pid < 0) {
		close(sv[0]);
		return kv_err_make(err, saved, "clone3");
	}
	p->pid = pid;
	p->pidfd = pidfd;
	if (p != c->init && (c->spec->ns_flags & CLONE_NEWPID)) {
		/* An intermediate: the process's pid comes with SYNC_PID. Until
		 * then no pid is ours, so the reaper cannot mistake the
		 * intermediate's exit for the process's. */
		p->pid = 0;
		close(pidfd);
		p->pidfd = -1;
	}
	proc_watch_sync(a, p, sv[0]);
	return 0;
}

/* ---------------------------------------------------------- containers */

static void container_unlink(struct agent *a, struct container *c)
{
	for (struct container **pp = &a->containers; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

static void container_free(struct agent *a, struct container *c)
{
	while (c->procs) {
		struct proc *p = c->procs;
		c->procs = p->next;
		proc_free(a, p);
	}
	cgroup_destroy(a, c);
	agent_seccomp_release(c->seccomp);
	kv_spec_free(c->spec);
	free(c->id);
	free(c);
}

/* Unlink and close now; free after the current batch of events. */
static void container_bury(struct agent *a, struct container *c)
{
	container_unlink(a, c);
	for (struct proc *p = c->procs; p; p = p->next)
		proc_close(a, p);
	cgroup_destroy(a, c);
	c->next = a->dead_containers;
	a->dead_containers = c;
}

static void proc_bury(struct agent *a, struct proc *p)
{
	struct container *c = p->ctr;
	for (struct proc **pp = &c->procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	proc_close(a, p);
	p->next = a->dead_procs;
	a->dead_procs = p;
}

void agent_gc(struct agent *a)
{
	while (a->dead_procs) {
		struct proc *p = a->dead_procs;
		a->dead_procs = p->next;
		proc_free(a, p);
	}
	while (a->dead_containers) {
		struct container *c = a->dead_containers;
		a->dead_containers = c->next;
		container_free(a, c);
	}
}

/* A process whose setup failed leaves nothing behind. */
static void proc_setup_failed(struct agent *a, struct proc *p)
{
	proc_reap_now(a, p, false);
	if (p == p->ctr->init)
		container_bury(a, p->ctr);
	else
		proc_bury(a, p);
}

int container_create(struct agent *a, const char *id, yajl_val params, uint64_t serial,
		     uint64_t req_id, struct kv_err **err)
{
	if (!kv_agent_name_ok(id))
		return kv_err_plain(err, EINVAL, "container: must be 1..64 of [A-Za-z0-9_.-]");
	if (container_find(a, id))
		return kv_err_plain(err, EEXIST, "container %s: already exists", id);
	struct container *c = container_new(id);
	c->spec = kv_spec_decode(kv_jget(params, "spec"), err);
	if (!c->spec || kv_rootfs_decode(kv_jget(params, "rootfs"), c->spec, err) < 0 ||
	    kv_spec_check(c->spec, err) < 0)
		goto fail;
	if (c->spec->seccomp &&
	    agent_seccomp_compile(c->spec->seccomp, c->spec->process.no_new_privs, &c->seccomp,
				  err) < 0)
		goto fail;
	if (cgroup_create(a, c, err) < 0)
		goto fail;
	struct proc *p = proc_new(c, NULL, "create");
	c->init = c->procs = p;
	bool want_stdin = false;
	kv_jbool(params, "stdin", &want_stdin);
	if (proc_spawn(a, c, p, &c->spec->process, want_stdin, err) < 0)
		goto fail;
	waiter_push(&p->pending, serial, req_id);
	c->next = a->containers;
	a->containers = c;
	a->had_container = true;
	return 0;
fail:
	kv_err_wrap(err, "create %s", id);
	container_free(a, c);
	return -1;
}

int container_start(struct agent *a, struct container *c, uint64_t serial, uint64_t req_id,
		    struct kv_err **err)
{
	struct proc *p = c->init;
	if (p->state != PROC_CREATED)
		return kv_err_plain(err, EBUSY, "start %s: container is %s, not created", c->id,
				    proc_state_name(c, p));
	struct sync_msg m = {.type = SYNC_START};
	if (send(p->sync.fd, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return kv_err_make(err, errno, "start %s: release the process", c->id);
	p->state = PROC_STARTING;
	p->pending_op = "start";
	waiter_push(&p->pending, serial, req_id);
	return 0;
}

int container_exec(struct agent *a, struct container *c, yajl_val params, uint64_t serial,
		   uint64_t req_id, struct kv_err **err)
{
	const char *exec_id = kv_jstr(params, "exec_id");
	if (!kv_agent_name_ok(exec_id))
		return kv_err_plain(err, EINVAL, "exec: exec_id: must be 1..64 of [A-Za-z0-9_.-]");
	if (proc_find(c, exec_id))
		return kv_err_plain(err, EEXIST, "exec %s: exec_id %s already used", c->id,
				    exec_id);
	struct proc *init = c->init;
	/* As runc: a created container (its init waiting for start) takes
	 * execs too; it has its namespaces already. */
	if (init->state != PROC_RUNNING && init->state != PROC_STARTING &&
	    init->state != PROC_CREATED)
		return kv_err_plain(err, EBUSY, "exec %s: container is %s, not running", c->id,
				    proc_state_name(c, init));
	struct kv_process *spec = kv_malloc0(sizeof(*spec));
	if (kv_process_decode(kv_jget(params, "process"), "process", spec, err) < 0) {
		kv_process_clear(spec);
		free(spec);
		return kv_err_wrap(err, "exec %s", c->id);
	}
	struct proc *p = proc_new(c, exec_id, "exec");
	p->spec = spec;
	bool want_stdin = false;
	kv_jbool(params, "stdin", &want_stdin);
	if (proc_spawn(a, c, p, spec, want_stdin, err) < 0) {
		proc_free(a, p);
		return kv_err_wrap(err, "exec %s", c->id);
	}
	waiter_push(&p->pending, serial, req_id);
	p->next = c->procs;
	c->procs = p;
	return 0;
}

int container_wait(struct proc *p, uint64_t serial, uint64_t req_id)
{
	waiter_push(&p->waiters, serial, req_id);
	return 0;
}

int container_signal(struct agent *a, struct container *c, struct proc *p, int sig, bool all,
		     struct kv_err **err)
{
	if (all && c->cgroup)
		return cgroup_kill_all(c, sig, err);
	for (struct proc *q = all ? c->procs : p; q; q = all ? q->next : NULL) {
		if (q->state == PROC_EXITED || q->pidfd < 0) {
			if (!all)
				return kv_err_plain(err, ESRCH, "kill %s: process has exited",
						    c->id);
			continue;
		}
		if (syscall(SYS_pidfd_send_signal, q->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
			return kv_err_make(err, errno, "kill %s: signal %d", c->id, sig);
	}
	return 0;
}

static bool container_alive(const struct container *c)
{
	for (const struct proc *p = c->procs; p; p = p->next)
		if (p->state != PROC_EXITED)
			return true;
	return false;
}

int container_delete(struct agent *a, struct container *c, bool force, struct kv_err **err)
{
	if (container_alive(c)) {
		if (!force)
			return kv_err_plain(err, EBUSY, "delete %s: still running (use force)",
					    c->id);
		cleanup_err struct kv_err *e = NULL;
		/* A frozen task still dies of SIGKILL in v2, but thaw for the others. */
		if (c->paused && cgroup_freeze(c, false, &e) < 0)
			kv_log_err(e);
		if (container_signal(a, c, NULL, SIGKILL, true, &e) < 0)
			kv_log_err(e);
		for (struct proc *p = c->procs; p; p = p->next)
			if (p->state != PROC_EXITED) {
				if (p->pidfd >= 0)
					syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
				proc_reap_now(a, p, true);
				pending_answer_err(a, p, ECANCELED, "the container was deleted");
			}
	}
	container_bury(a, c);
	return 0;
}
