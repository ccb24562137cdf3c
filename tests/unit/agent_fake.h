/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake agent for the unit tests of agent/: a struct agent with its epoll
 * leaf and /dev/null but no listeners, fake control connections (a
 * socketpair: the agent holds one end, the test reads frames from the other
 * as the host would), fake data connections, and containers whose processes
 * are plain forked children instead of clone3'd ones. The test runs the
 * agent's callbacks with fake_settle(), as agent_run's loop would.
 */
#ifndef KV_TEST_AGENT_FAKE_H
#define KV_TEST_AGENT_FAKE_H

#include "agent/internal.h"
#include "tap.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

/* How long a test waits for something the agent should do at once. */
#define FAKE_WAIT_MS 2000

struct fake_conn {
	struct conn *c;
	int host; /* the far end: what the host reads and writes */
};

static inline void fake_agent_init(struct agent *a)
{
	memset(a, 0, sizeof(*a));
	a->ctl_listen.fd = a->data_listen.fd = a->sigfd.fd = -1;
	a->cfg.state_dir = "/nonexistent/kvrun-test";
	a->cfg.cgroup_parent = "kvrun";
	a->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct kv_err *err = NULL;
	if (a->devnull < 0 || ev_init(a, &err) < 0) {
		diag("fake agent: %s", err ? err->msg : strerror(errno));
		exit(1);
	}
	signal(SIGPIPE, SIG_IGN); /* as agent_signals() */
}

/* Run the callbacks of whatever is ready, batch after batch, freeing what
 * they closed (conns_gc, agent_gc, as agent_run), until nothing is. */
static inline void fake_settle(struct agent *a)
{
	for (int i = 0; i < 1000; i++) {
		int n = ev_poll(a, 10);
		conns_gc(a);
		agent_gc(a);
		if (n <= 0)
			return;
	}
	diag("fake_settle: still busy after 1000 batches");
}

/* Nothing is ready: the agent would sleep (no fd left in the epoll set
 * reporting a hang-up forever). */
static inline bool fake_idle(struct agent *a)
{
	struct epoll_event ev;
	return ev_wait(a, &ev, 1, 0) == 0;
}

/* The agent's side of a fake control connection: send what is queued; the
 * host's requests are not read (the tests call container.c directly). */
static inline void fake_conn_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct conn *c = container_of(src, struct conn, src);
	if (events & EPOLLOUT)
		conn_flush(a, c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		char buf[256];
		ssize_t r = recv(src->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			c->dead = true;
	}
}

static inline struct fake_conn fake_conn_open(struct agent *a)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		diag("socketpair: %s", strerror(errno));
		exit(1);
	}
	struct fake_conn f = {.c = conn_new(a, sv[0], fake_conn_cb), .host = sv[1]};
	if (!f.c) {
		diag("conn_new failed");
		exit(1);
	}
	return f;
}

/* The host hangs up; the agent notices on its next batch. */
static inline void fake_conn_close(struct agent *a, struct fake_conn *f)
{
	close(f->host);
	f->host = -1;
	fake_settle(a);
}

/*
 * The next frame the host end holds, decoded into m (free with
 * kv_msg_free); false, with a diagnostic, when none comes or it is bad.
 */
static inline bool fake_next(struct agent *a, struct fake_conn *f, struct kv_msg *m)
{
	memset(m, 0, sizeof(*m));
	struct pollfd pfd = {.fd = f->host, .events = POLLIN};
	for (int waited = 0; poll(&pfd, 1, 0) == 0 && waited < FAKE_WAIT_MS; waited += 10)
		ev_poll(a, 10); /* let the agent flush a queued frame */
	if (!(pfd.revents & POLLIN)) {
		diag("fake_next: no frame");
		return false;
	}
	char *payload = NULL;
	size_t len = 0;
	int64_t bad_id;
	struct kv_err *err = NULL;
	int r = kv_frame_read(f->host, &payload, &len, &err);
	if (r > 0)
		r = kv_msg_decode(payload, len, m, &bad_id, &err) < 0 ? -1 : 1;
	if (r <= 0)
		diag("fake_next: %s", err ? err->msg : "EOF");
	free(payload);
	kv_err_free(err);
	return r > 0;
}

/* True when the host end holds no frame (nothing was sent). */
static inline bool fake_quiet(struct fake_conn *f)
{
	struct pollfd pfd = {.fd = f->host, .events = POLLIN};
	return poll(&pfd, 1, 0) == 0;
}

static inline long long msg_int(struct yajl_val_s *obj, const char *key)
{
	long long v = -999;
	return kv_jint(obj, key, &v) ? v : -999;
}

static inline const char *msg_str(struct yajl_val_s *obj, const char *key)
{
	const char *s = kv_jstr(obj, key);
	return s ? s : "(absent)";
}

/* ------------------------------------------------------ fake containers */

/* A container with an init in PROC_SETUP, linked into the agent. */
static inline struct container *fake_container(struct agent *a, const char *id)
{
	struct container *c = container_new(id);
	c->init = c->procs = proc_new(c, NULL, "create");
	c->next = a->containers;
	a->containers = c;
	a->had_container = true;
	return c;
}

static inline struct proc *fake_exec(struct container *c, const char *exec_id)
{
	struct proc *p = proc_new(c, exec_id, "exec");
	p->next = c->procs;
	c->procs = p;
	return p;
}

/* A request in flight on p (create, start, exec), answered by serial. */
static inline void fake_pending(struct proc *p, struct fake_conn *f, uint64_t id)
{
	struct waiter *w = kv_malloc0(sizeof(*w));
	w->conn_serial = f->c->serial;
	w->id = id;
	p->pending = w;
}

enum { FAKE_PAUSE = -1000 };

/* A child standing in for a container process: it exits with `how` (>= 0),
 * dies of signal -how, or waits for a signal (FAKE_PAUSE). */
static inline pid_t fake_child(int how)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (how >= 0)
			_exit(how);
		if (how == FAKE_PAUSE)
			for (;;)
				pause();
		signal(-how, SIG_DFL);
		raise(-how);
		_exit(99);
	}
	if (pid < 0) {
		diag("fork: %s", strerror(errno));
		exit(1);
	}
	return pid;
}

/* p runs as child pid. */
static inline void fake_running(struct proc *p, pid_t pid)
{
	p->pid = pid;
	p->pidfd = syscall(SYS_pidfd_open, pid, 0);
	p->state = PROC_RUNNING;
}

/* Block until pid has exited, leaving it to be reaped (by container_reap). */
static inline void fake_wait_exited(pid_t pid)
{
	siginfo_t si;
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
}

/* Delete every container (force), free them and the connections. */
static inline void fake_agent_fini(struct agent *a)
{
	while (a->containers) {
		struct kv_err *err = NULL;
		if (container_delete(a, a->containers, true, &err) < 0)
			diag("delete: %s", err->msg);
		kv_err_free(err);
	}
	for (struct conn *c = a->conns; c; c = c->next)
		c->dead = true;
	conns_gc(a);
	agent_gc(a);
	while (a->pending_data) {
		struct pending_data *pd = a->pending_data;
		a->pending_data = pd->next;
		ev_close(a, &pd->src);
		free(pd);
	}
	close(a->epfd);
	close(a->devnull);
}

#endif
