/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim once its process exists: relay stdio, forward signals and
 * window-size changes, wait for the exit event, and turn it into our own
 * exit. poll() over a signalfd, the agent connection and the relays; the
 * only blocking calls are short requests to the agent (kill, resize).
 */
#include "shim/internal.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <yajl/yajl_tree.h>

/* After the exit, how long output may still drain before we go anyway (a
 * daemon the process left behind can hold its stdout open forever). */
#define SHIM_DRAIN_MS 5000
/* Waiting for one event frame once the connection is readable. */
#define SHIM_EVENT_WAIT_MS 50
#define SHIM_CALL_MS	   30000

static void agent_call(struct shim *s, const char *op, const char *params)
{
	cleanup_msg struct kv_msg resp = {0};
	cleanup_err struct kv_err *e = NULL;
	kv_agent_client_set_timeout(s->agent, SHIM_CALL_MS);
	if (kv_agent_client_call(s->agent, op, params, &resp, &e) < 0)
		kv_warn("%s: %s", op, e->msg);
}

static void forward_signal(struct shim *s, int sig)
{
	if (s->exited)
		return;
	kv_debug("forwarding signal %d to %s%s%s", sig, s->req.container, s->req.exec_id ? "/" : "",
		 s->req.exec_id ? s->req.exec_id : "");
	cleanup_err struct kv_err *e = NULL;
	cleanup_free char *p = kv_req_kill(s->req.container, s->req.exec_id, sig, NULL, &e);
	if (!p) {
		kv_warn("%s: %s", KV_OP_KILL, e->msg);
		return;
	}
	agent_call(s, KV_OP_KILL, p);
}

static void process_gone(struct shim *s, int code, int sig, const char *why)
{
	if (s->exited)
		return;
	s->exited = true;
	s->exit_code = code;
	s->exit_signal = sig;
	s->exit_at_ms = kv_now_ms();
	kv_debug("%s: %s %d", why, sig ? "signal" : "exit code", sig ? sig : code);
}

static void handle_event(struct shim *s, struct kv_msg *ev)
{
	const char *ctr = kv_jstr(ev->tree, "container"), *xid = kv_jstr(ev->tree, "exec_id");
	if (!ev->event || strcmp(ev->event, KV_EV_EXIT) || !ctr || strcmp(ctr, s->req.container))
		return;
	if ((xid == NULL) != (s->req.exec_id == NULL) || (xid && strcmp(xid, s->req.exec_id)))
		return;
	long long code = 0, sig = 0;
	kv_jint(ev->tree, "exit_code", &code);
	kv_jint(ev->tree, "signal", &sig);
	process_gone(s, (int)code, (int)sig, "the process exited");
}

/* Read what the agent sent: events (queued ones first). */
static void agent_readable(struct shim *s)
{
	kv_agent_client_set_timeout(s->agent, SHIM_EVENT_WAIT_MS);
	for (;;) {
		cleanup_msg struct kv_msg ev = {0};
		cleanup_err struct kv_err *e = NULL;
		int r = kv_agent_client_next_event(s->agent, &ev, &e);
		if (r > 0) {
			handle_event(s, &ev);
			continue;
		}
		if (r == 0 || (e && e->errnum != ETIMEDOUT)) {
			kv_agent_client_free(steal_ptr(s->agent));
			process_gone(s, 0, SIGKILL, "the VM's agent went away");
		}
		return;
	}
}

/* Events the client queued while it waited for an answer. */
static void agent_queued(struct shim *s)
{
	while (s->agent && kv_agent_client_pending(s->agent)) {
		cleanup_msg struct kv_msg ev = {0};
		cleanup_err struct kv_err *e = NULL;
		if (kv_agent_client_next_event(s->agent, &ev, &e) <= 0)
			return;
		handle_event(s, &ev);
	}
}

static void signal_readable(struct shim *s)
{
	struct signalfd_siginfo si[16];
	ssize_t n = read(s->sigfd, si, sizeof(si));
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(si[0]); i++) {
		int sig = (int)si[i].ssi_signo;
		if (sig == SIGCHLD) {
			if (shim_vm_reap(s))
				process_gone(s, 0, SIGKILL, "the VM stopped");
		} else if (sig == SIGWINCH) {
			shim_tty_resize(s);
		} else if (sig != SIGPIPE) {
			forward_signal(s, sig);
		}
	}
	/* A forward may have queued events behind its answer. */
	if (s->agent)
		agent_readable(s);
}

#define MAX_POLL (2 + SHIM_RELAYS)

int shim_run(struct shim *s)
{
	for (;;) {
		/* An event that came before a call's answer (a quick process's
		 * exit before the answer to its exec) was read with it: handled
		 * here, as the socket will not poll readable for it. */
		agent_queued(s);
		struct pollfd pfd[MAX_POLL];
		struct relay *owner[MAX_POLL] = {0};
		short dir[MAX_POLL] = {0};
		size_t n = 0;
		pfd[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		if (s->agent)
			pfd[n++] =
			    (struct pollfd){.fd = kv_agent_client_fd(s->agent), .events = POLLIN};
		size_t first_relay = n;
		n += shim_relays_poll(s, pfd + n, MAX_POLL - n, owner + n, dir + n);
		int timeout = -1;
		if (s->exited) {
			uint64_t now = kv_now_ms(), end = s->exit_at_ms + SHIM_DRAIN_MS;
			if (shim_outputs_done(s) || now >= end)
				return 0;
			timeout = (int)(end - now);
		}
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			return -1;
		if (pfd[0].revents)
			signal_readable(s);
		if (first_relay == 2 && pfd[1].revents && s->agent)
			agent_readable(s);
		for (size_t i = first_relay; i < n; i++) {
			short ev = pfd[i].revents;
			if (!ev)
				continue;
			bool err = ev & (POLLERR | POLLHUP | POLLNVAL);
			shim_relay_step(owner[i], dir[i] == POLLIN && (ev & POLLIN || err),
					dir[i] == POLLOUT && (ev & POLLOUT || err));
		}
	}
}
