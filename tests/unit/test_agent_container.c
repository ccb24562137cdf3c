/* SPDX-License-Identifier: Apache-2.0 */
/*
 * container.c driven through a fake control connection: what the host reads
 * when a container's process is set up, started, fails its setup, exits or
 * is deleted; exit statuses (exit codes, signals, processes reaped before
 * their pid was known); and the errors a request gets. The processes are
 * forked children standing in for clone3'd ones; their setup channel is a
 * socketpair whose far end the test writes SYNC_* messages into.
 */
#include "agent_fake.h"

#include <pty.h>
#include <sys/ioctl.h>

static struct agent A;

/* The setup channel of p: the agent watches one end, the test holds the other. */
static int fake_sync(struct proc *p)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		diag("socketpair: %s", strerror(errno));
		exit(1);
	}
	proc_watch_sync(&A, p, sv[0]);
	return sv[1];
}

static void sync_send(int fd, uint32_t type, int errnum, const char *text, int pass_fd)
{
	struct sync_msg m = {.type = type, .errnum = errnum};
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	if (kv_send_fds(fd, &m, sizeof(m), &pass_fd, pass_fd >= 0) < 0)
		diag("sync_send: %s", strerror(errno));
}

static bool is_exit_event(struct kv_msg *m, const char *ctr, const char *exec_id, pid_t pid)
{
	return m->kind == KV_MSG_EVENT && strcmp(m->event, KV_EV_EXIT) == 0 &&
	       strcmp(msg_str(m->tree, "container"), ctr) == 0 &&
	       (exec_id ? strcmp(msg_str(m->tree, "exec_id"), exec_id) == 0
			: !kv_jget(m->tree, "exec_id")) &&
	       msg_int(m->tree, "pid") == pid;
}

/* ------------------------------------------------------------------ exits */

static void test_exit_code(struct fake_conn *f)
{
	struct container *c = fake_container(&A, "c1");
	pid_t pid = fake_child(3);
	fake_running(c->init, pid);
	ok(container_wait(c->init, f->c->serial, 7) == 0, "wait on a running init is deferred");
	ok(container_wait(c->init, f->c->serial + 100, 8) == 0, "  and one from a gone connection");
	ok(fake_quiet(f), "  nothing is answered yet");
	fake_wait_exited(pid);
	container_reap(&A);
	cleanup_msg struct kv_msg ev = {0};
	ok(fake_next(&A, f, &ev) && is_exit_event(&ev, "c1", NULL, pid),
	   "exit: an exit event names the container and the pid, no exec_id");
	is_int(msg_int(ev.tree, "exit_code"), 3, "  exit_code");
	is_int(msg_int(ev.tree, "status"), 3, "  status");
	ok(!kv_jget(ev.tree, "signal"), "  no signal");
	cleanup_msg struct kv_msg w = {0};
	ok(fake_next(&A, f, &w) && w.kind == KV_MSG_RESPONSE && w.id == 7 && w.result,
	   "  the wait is answered on its connection");
	is_int(msg_int(w.result, "exit_code"), 3, "  with the exit code");
	ok(fake_quiet(f), "  the waiter of a gone connection sends nothing here");
	is_str(proc_state_name(c, c->init), "stopped", "  the container is stopped");
	is_int(c->init->pidfd, -1, "  its pidfd is closed");
	struct kv_err *err = NULL;
	ok(container_signal(&A, c, c->init, SIGTERM, false, &err) < 0 && err &&
	       err->errnum == ESRCH,
	   "kill after exit: ESRCH");
	is_str(err ? err->msg : NULL, "kill c1: process has exited", "  naming the container");
	kv_err_free(err);
	err = NULL;
	ok(container_delete(&A, c, false, &err) == 0, "delete a stopped container without force");
	ok(!container_find(&A, "c1"), "  it is gone");
	ok(fake_quiet(f), "  and nothing more is sent");
	kv_err_free(err);
	fake_settle(&A);
}

static void test_exit_signal(struct fake_conn *f)
{
	struct container *c = fake_container(&A, "c2");
	fake_running(c->init, fake_child(FAKE_PAUSE));
	struct proc *e = fake_exec(c, "e1");
	pid_t pid = fake_child(-SIGTERM);
	fake_running(e, pid);
	fake_wait_exited(pid);
	container_reap(&A);
	cleanup_msg struct kv_msg ev = {0};
	ok(fake_next(&A, f, &ev) && is_exit_event(&ev, "c2", "e1", pid),
	   "exec killed by a signal: the event names the exec_id");
	is_int(msg_int(ev.tree, "signal"), SIGTERM, "  signal");
	is_str(msg_str(ev.tree, "signal_name"), "TERM", "  signal_name");
	is_int(msg_int(ev.tree, "status"), 128 + SIGTERM, "  status is 128 + signal");
	ok(!kv_jget(ev.tree, "exit_code"), "  no exit_code");
	is_str(proc_state_name(c, c->init), "running", "  the init still runs");
	is_str(proc_state_name(c, e), "stopped", "  the exec is stopped");
}

/* A process reaped before its pid was known is matched when the pid comes. */
static void test_orphan(struct fake_conn *f)
{
	struct container *c = container_find(&A, "c2");
	struct proc *e = fake_exec(c, "e2"); /* behind an intermediate: pid 0 */
	e->state = PROC_STARTING;
	int sync = fake_sync(e);
	pid_t pid = fake_child(5);
	fake_wait_exited(pid);
	unsigned before = A.orphan_next;
	container_reap(&A);
	ok(fake_quiet(f), "orphan: an unknown pid's exit is not announced");
	is_int(A.orphan_next, before + 1, "  it is kept in the agent's orphan ring");
	struct sync_msg m = {.type = SYNC_PID, .pid = pid};
	ok(send(sync, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m), "  the intermediate reports it");
	fake_settle(&A);
	cleanup_msg struct kv_msg ev = {0};
	ok(fake_next(&A, f, &ev) && is_exit_event(&ev, "c2", "e2", pid),
	   "  then the exit is announced for the exec");
	is_int(msg_int(ev.tree, "exit_code"), 5, "  with the orphan's status");
	bool cleared = true;
	for (unsigned i = 0; i < AGENT_ORPHAN_MAX; i++)
		cleared &= A.orphans[i].pid != pid;
	ok(cleared, "  and the ring slot is freed");
	close(sync);
	fake_settle(&A);
}

static void test_orphan_ring_bounded(struct fake_conn *f)
{
	pid_t first = 0;
	unsigned start = A.orphan_next;
	for (int i = 0; i <= AGENT_ORPHAN_MAX; i++) {
		pid_t pid = fake_child(0);
		if (!first)
			first = pid;
		fake_wait_exited(pid);
		container_reap(&A);
	}
	is_int(A.orphan_next - start, AGENT_ORPHAN_MAX + 1, "orphan ring: every exit counted");
	bool gone = true;
	for (unsigned i = 0; i < AGENT_ORPHAN_MAX; i++)
		gone &= A.orphans[i].pid != first;
	ok(gone, "  the oldest is overwritten: the ring never grows");
	ok(fake_quiet(f), "  and nothing is announced");
}

/* -------------------------------------------------------------- lifecycle */

static void test_create_start(struct fake_conn *f)
{
	struct container *c = fake_container(&A, "c3");
	struct proc *p = c->init;
	struct kv_err *err = NULL;
	int child_fds[3] = {-1, -1, -1};
	ok(stdio_prepare(&A, p, false, false, child_fds, &err) == 0, "create: stdio prepared");
	for (int i = 1; i < 3; i++)
		close(child_fds[i]);
	pid_t pid = fake_child(FAKE_PAUSE);
	p->pid = pid;
	p->pidfd = syscall(SYS_pidfd_open, pid, 0);
	fake_pending(p, f, 1);
	int sync = fake_sync(p);
	fake_settle(&A);
	ok(fake_quiet(f), "  no answer before the child is ready");
	is_str(proc_state_name(c, p), "creating", "  state creating");

	sync_send(sync, SYNC_READY, 0, NULL, -1);
	fake_settle(&A);
	cleanup_msg struct kv_msg r = {0};
	ok(fake_next(&A, f, &r) && r.kind == KV_MSG_RESPONSE && r.id == 1 && r.result,
	   "ready: the create is answered");
	is_str(msg_str(r.result, "container"), "c3", "  container");
	is_int(msg_int(r.result, "pid"), pid, "  pid");
	yajl_val st = kv_jget(r.result, "stdio");
	is_str(msg_str(st, "stdout"), p->streams[STREAM_STDOUT]->token, "  stdout token");
	is_str(msg_str(st, "stderr"), p->streams[STREAM_STDERR]->token, "  stderr token");
	ok(!kv_jget(st, "stdin") && !kv_jget(st, "pty"), "  no stdin or pty stream");
	is_str(proc_state_name(c, p), "created", "  state created");

	ok(container_start(&A, c, f->c->serial, 2, &err) == 0, "start: accepted");
	struct sync_msg m = {0};
	ok(recv(sync, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m) && m.type == SYNC_START,
	   "  the child is released with SYNC_START");
	is_str(proc_state_name(c, p), "running", "  state running (starting)");
	ok(container_start(&A, c, f->c->serial, 3, &err) < 0 && err && err->errnum == EBUSY,
	   "start twice: EBUSY");
	is_str(err ? err->msg : NULL, "start c3: container is running, not created",
	       "  saying why");
	kv_err_free(err);
	err = NULL;
	ok(fake_quiet(f), "  the start waits for the exec");

	close(sync); /* the setup channel is CLOEXEC: EOF means exec'd */
	fake_settle(&A);
	cleanup_msg struct kv_msg s = {0};
	ok(fake_next(&A, f, &s) && s.kind == KV_MSG_RESPONSE && s.id == 2 && s.result,
	   "exec'd: the start is answered");
	is_int(msg_int(s.result, "pid"), pid, "  with the pid");
	is_int(p->state, PROC_RUNNING, "  state running");
	is_int(p->sync.fd, -1, "  the setup channel is closed");

	ok(container_delete(&A, c, false, &err) < 0 && err && err->errnum == EBUSY,
	   "delete while running: EBUSY");
	kv_err_free(err);
	err = NULL;
	ok(container_signal(&A, c, p, SIGKILL, false, &err) == 0, "kill: delivered");
	fake_wait_exited(pid);
	container_reap(&A);
	cleanup_msg struct kv_msg ev = {0};
	ok(fake_next(&A, f, &ev) && is_exit_event(&ev, "c3", NULL, pid), "  the exit is announced");
	is_str(msg_str(ev.tree, "signal_name"), "KILL", "  as SIGKILL");
	ok(container_delete(&A, c, false, &err) == 0 && !container_find(&A, "c3"),
	   "  then delete removes it");
	kv_err_free(err);
	fake_settle(&A);
}

/* The child's setup failed: the request gets the child's error, nothing stays. */
static void test_setup_error(struct fake_conn *f)
{
	struct container *c = fake_container(&A, "c4");
	struct proc *p = c->init;
	p->pid = fake_child(127);
	fake_pending(p, f, 11);
	int sync = fake_sync(p);
	sync_send(sync, SYNC_ERROR, EACCES, "rootfs: mount: denied", -1);
	fake_settle(&A);
	cleanup_msg struct kv_msg r = {0};
	ok(fake_next(&A, f, &r) && r.kind == KV_MSG_RESPONSE && r.id == 11 && !r.result,
	   "setup error: the create gets an error");
	is_int(r.err_code, EACCES, "  with the child's errno");
	is_str(r.err_message, "create c4: rootfs: mount: denied", "  and its message");
	ok(!container_find(&A, "c4"), "  the container is gone");
	ok(fake_quiet(f), "  and no exit event is sent for it");
	close(sync);
	fake_settle(&A);
}

static void test_setup_died(struct fake_conn *f)
{
	struct container *c = fake_container(&A, "c5");
	struct proc *e0 = c->init;
	fake_running(e0, fake_child(FAKE_PAUSE));
	struct proc *p = fake_exec(c, "e1");
	p->pid = fake_child(1);
	fake_pending(p, f, 12);
	int sync = fake_sync(p);
	close(sync); /* EOF in PROC_SETUP: the child died */
	fake_settle(&A);
	cleanup_msg struct kv_msg r = {0};
	ok(fake_next(&A, f, &r) && r.kind == KV_MSG_RESPONSE && r.id == 12 && !r.result,
	   "died during setup: the exec gets an error");
	is_int(r.err_code, ECHILD, "  ECHILD");
	is_str(r.err_message, "exec e1: process died during setup (exit status 1)",
	       "  with the exit status");
	ok(container_find(&A, "c5") && !proc_find(c, "e1"),
	   "  the exec is gone, the container stays");
}

/* An exec that ran and was reaped before its "ready" was read stays exited. */
static void test_exec_fast_exit(struct fake_conn *f)
{
	struct container *c = container_find(&A, "c5");
	struct proc *p = fake_exec(c, "fast");
	pid_t pid = fake_child(0);
	fake_running(p, pid);
	p->state = PROC_SETUP;
	fake_pending(p, f, 13);
	int sync = fake_sync(p);
	fake_wait_exited(pid);
	container_reap(&A);
	cleanup_msg struct kv_msg ev = {0};
	ok(fake_next(&A, f, &ev) && is_exit_event(&ev, "c5", "fast", pid),
	   "fast exec: its exit is announced first");
	sync_send(sync, SYNC_READY, 0, NULL, -1);
	close(sync);
	fake_settle(&A);
	cleanup_msg struct kv_msg r = {0};
	ok(fake_next(&A, f, &r) && r.kind == KV_MSG_RESPONSE && r.id == 13 && r.result,
	   "  then the exec is answered");
	is_str(msg_str(r.result, "exec_id"), "fast", "  naming it");
	is_str(proc_state_name(c, p), "stopped", "  and it stays stopped");
}

/* A terminal: the child sends the pty master with "ready". */
static void test_ready_with_pty(struct fake_conn *f)
{
	struct container *c = container_find(&A, "c5");
	struct proc *p = fake_exec(c, "tty");
	struct kv_err *err = NULL;
	int child_fds[3] = {-1, -1, -1};
	ok(stdio_prepare(&A, p, true, true, child_fds, &err) == 0 && child_fds[1] < 0,
	   "terminal: one pty stream, no pipes");
	int master, slave;
	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		skip("openpty: %s", strerror(errno));
		return;
	}
	p->pid = fake_child(FAKE_PAUSE);
	p->pidfd = syscall(SYS_pidfd_open, p->pid, 0);
	fake_pending(p, f, 14);
	int sync = fake_sync(p);
	sync_send(sync, SYNC_READY, 0, NULL, master);
	close(master);
	fake_settle(&A);
	ok(p->streams[STREAM_PTY]->end.fd >= 0, "  the master sent with ready is the stream's end");
	ok(stdio_resize(p, 30, 90, &err) == 0, "  resize works on it");
	struct winsize ws = {0};
	ioctl(slave, TIOCGWINSZ, &ws);
	ok(ws.ws_row == 30 && ws.ws_col == 90, "  the terminal has the new size");
	is_str(proc_state_name(c, p), "running", "  the exec is starting");
	ok(fake_quiet(f), "  an exec is answered at exec, not at ready");
	close(sync);
	fake_settle(&A);
	cleanup_msg struct kv_msg r = {0};
	ok(fake_next(&A, f, &r) && r.id == 14 && r.result &&
	       strcmp(msg_str(kv_jget(r.result, "stdio"), "pty"), p->streams[STREAM_PTY]->token) ==
		   0,
	   "  then answered with the pty token");
	close(slave);
	kv_err_free(err);
}

/* Forced delete: every process is killed, announced, and requests cancelled. */
static void test_delete_force(struct fake_conn *f, struct fake_conn *g)
{
	struct container *c = container_find(&A, "c5");
	struct proc *pending = fake_exec(c, "late");
	fake_running(pending, fake_child(FAKE_PAUSE));
	pending->state = PROC_STARTING;
	fake_pending(pending, f, 15);
	ok(container_wait(c->init, g->c->serial, 16) == 0, "delete force: a wait on the init");
	struct kv_err *err = NULL;
	ok(container_delete(&A, c, true, &err) == 0, "  delete with force succeeds");
	kv_err_free(err);
	int exits = 0, cancelled = 0, other = 0;
	struct kv_msg m;
	while (!fake_quiet(f) && fake_next(&A, f, &m)) {
		if (m.kind == KV_MSG_EVENT && strcmp(m.event, KV_EV_EXIT) == 0 &&
		    msg_int(m.tree, "signal") == SIGKILL)
			exits++;
		else if (m.kind == KV_MSG_RESPONSE && m.id == 15 && m.err_code == ECANCELED)
			cancelled++;
		else
			other++;
		kv_msg_free(&m);
	}
	/* init, "late", "tty" were running; "e1"... were gone or stopped. */
	is_int(exits, 3, "  every running process is announced killed");
	is_int(cancelled, 1, "  the start in flight is cancelled (ECANCELED)");
	is_int(other, 0, "  nothing else");
	cleanup_msg struct kv_msg w = {0};
	bool got = false;
	while (!got && !fake_quiet(g) && fake_next(&A, g, &w)) {
		got = w.kind == KV_MSG_RESPONSE && w.id == 16;
		if (!got)
			kv_msg_free(&w);
	}
	ok(got && msg_int(w.result, "status") == 128 + SIGKILL,
	   "  the wait on the other connection gets status 137");
	ok(!container_find(&A, "c5"), "  the container is gone");
	fake_settle(&A);
}

/* -------------------------------------------------------------- requests */

static yajl_val parse(const char *json)
{
	char eb[128];
	yajl_val v = yajl_tree_parse(json, eb, sizeof(eb));
	if (!v)
		diag("parse %s: %s", json, eb);
	return v;
}

static void test_exec_errors(struct fake_conn *f)
{
	struct container *c = fake_container(&A, "c6");
	static const struct {
		const char *params;
		int errnum;
		const char *msg;
	} cases[] = {
	    {"{\"exec_id\":\"../x\",\"process\":{}}", EINVAL,
	     "exec: exec_id: must be 1..64 of [A-Za-z0-9_.-]"},
	    {"{\"process\":{}}", EINVAL, "exec: exec_id: must be 1..64 of [A-Za-z0-9_.-]"},
	    {"{\"exec_id\":\"x\",\"process\":{}}", EBUSY,
	     "exec c6: container is creating, not running"},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(cases); i++) {
		yajl_val v = parse(cases[i].params);
		struct kv_err *err = NULL;
		ok(container_exec(&A, c, v, f->c->serial, 20, &err) < 0 && err &&
		       err->errnum == cases[i].errnum,
		   "exec %s: refused", cases[i].params);
		is_str(err ? err->msg : NULL, cases[i].msg, "  with its reason");
		kv_err_free(err);
		yajl_tree_free(v);
	}
	fake_running(c->init, fake_child(FAKE_PAUSE));
	fake_exec(c, "dup");
	yajl_val v = parse("{\"exec_id\":\"dup\",\"process\":{}}");
	struct kv_err *err = NULL;
	ok(container_exec(&A, c, v, f->c->serial, 21, &err) < 0 && err && err->errnum == EEXIST,
	   "exec with a used exec_id: EEXIST");
	is_str(err ? err->msg : NULL, "exec c6: exec_id dup already used", "  saying so");
	kv_err_free(err);
	yajl_tree_free(v);
	err = NULL;
	v = parse("{\"exec_id\":\"x\",\"process\":{\"args\":5}}");
	ok(container_exec(&A, c, v, f->c->serial, 22, &err) < 0 && err,
	   "exec with a bad process: refused");
	ok(err && strncmp(err->msg, "exec c6: process", 16) == 0, "  naming the container (%s)",
	   err ? err->msg : "-");
	ok(!proc_find(c, "x"), "  and no process is left");
	kv_err_free(err);
	yajl_tree_free(v);
	ok(fake_quiet(f), "refused requests send nothing themselves (ops.c answers)");
}

static void test_create_errors(struct fake_conn *f)
{
	static const char spec_no_mntns[] =
	    "{\"spec\":{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"/bin/true\"],"
	    "\"cwd\":\"/\"},\"root\":{\"path\":\"/tmp\"},\"linux\":{\"namespaces\":"
	    "[{\"type\":\"pid\"}]}}}";
	struct kv_err *err = NULL;
	yajl_val v = parse(spec_no_mntns);
	ok(container_create(&A, "bad/id", v, f->c->serial, 30, &err) < 0 && err &&
	       err->errnum == EINVAL,
	   "create with a bad id: EINVAL");
	is_str(err ? err->msg : NULL, "container: must be 1..64 of [A-Za-z0-9_.-]",
	       "  naming the rule");
	kv_err_free(err);
	err = NULL;
	ok(container_create(&A, "c6", v, f->c->serial, 31, &err) < 0 && err &&
	       err->errnum == EEXIST,
	   "create of an existing id: EEXIST");
	is_str(err ? err->msg : NULL, "container c6: already exists", "  saying so");
	kv_err_free(err);
	err = NULL;
	ok(container_create(&A, "c7", v, f->c->serial, 32, &err) < 0 && err &&
	       err->errnum == EINVAL,
	   "create without a mount namespace: EINVAL");
	is_str(err ? err->msg : NULL,
	       "create c7: linux.namespaces: a mount namespace is required (the agent's own "
	       "is the VM's)",
	       "  saying why");
	ok(!container_find(&A, "c7"), "  nothing is left");
	kv_err_free(err);
	yajl_tree_free(v);
	ok(fake_quiet(f), "  and nothing is sent");
}

/* Events go to every live connection; answers only to theirs. */
static void test_broadcast(struct fake_conn *f, struct fake_conn *g)
{
	struct fake_conn gone = fake_conn_open(&A);
	uint64_t gone_serial = gone.c->serial;
	fake_conn_close(&A, &gone);
	ok(!conn_find(&A, gone_serial), "broadcast: a closed connection is freed");
	struct container *c = container_find(&A, "c6");
	pid_t pid = c->init->pid;
	ok(container_wait(c->init, gone_serial, 40) == 0, "  a wait from it is kept");
	struct kv_err *err = NULL;
	ok(container_signal(&A, c, NULL, SIGKILL, true, &err) == 0, "  kill all");
	kv_err_free(err);
	fake_wait_exited(pid);
	container_reap(&A);
	cleanup_msg struct kv_msg a1 = {0}, a2 = {0};
	ok(fake_next(&A, f, &a1) && is_exit_event(&a1, "c6", NULL, pid),
	   "  the first connection gets the exit");
	ok(fake_next(&A, g, &a2) && is_exit_event(&a2, "c6", NULL, pid), "  so does the second");
	ok(fake_quiet(f) && fake_quiet(g), "  and the wait of the gone one goes nowhere");
	fake_settle(&A);
	ok(fake_idle(&A), "the agent is idle at the end: no fd left ready");
}

int main(void)
{
	fake_agent_init(&A);
	struct fake_conn f = fake_conn_open(&A), g = fake_conn_open(&A);
	test_exit_code(&f);
	test_exit_signal(&f);
	test_orphan(&f);
	test_orphan_ring_bounded(&f);
	test_create_start(&f);
	test_setup_error(&f);
	test_setup_died(&f);
	test_exec_fast_exit(&f);
	test_ready_with_pty(&f);
	test_delete_force(&f, &g);
	test_exec_errors(&f);
	test_create_errors(&f);
	test_broadcast(&f, &g);
	fake_agent_fini(&A);
	return tap_done();
}
