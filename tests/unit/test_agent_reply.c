/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reply.c, the agent's sending side, through fake control connections:
 * answers by serial, error answers, events to every live connection, a
 * frame larger than the socket takes (sent on EPOLLOUT), and the bound on
 * what a host that stops reading gets queued.
 */
#include "agent_fake.h"

static struct agent A;

static void test_answers(struct fake_conn *f, struct fake_conn *g)
{
	cleanup_json struct kv_json *j = kv_msg_begin_result(5);
	kv_json_map_open(j);
	kv_json_kint(j, "n", 1);
	kv_json_map_close(j);
	agent_reply_json(&A, g->c->serial, j);
	cleanup_msg struct kv_msg m = {0};
	ok(fake_quiet(f) && fake_next(&A, g, &m) && m.kind == KV_MSG_RESPONSE && m.id == 5 &&
	       msg_int(m.result, "n") == 1,
	   "an answer goes to its connection only");
	struct kv_err e = {.errnum = ENOENT, .msg = (char *)"container x: no such container"};
	agent_reply_error(&A, f->c->serial, 6, &e);
	cleanup_msg struct kv_msg r = {0};
	ok(fake_next(&A, f, &r) && r.id == 6 && r.err_code == ENOENT &&
	       strcmp(r.err_message, e.msg) == 0,
	   "an error answer carries errno and message");
	agent_reply_error(&A, f->c->serial, -1, NULL);
	cleanup_msg struct kv_msg n = {0};
	ok(fake_next(&A, f, &n) && n.id_null && n.err_code == EINVAL,
	   "  none given: EINVAL, id null");
	cleanup_json struct kv_json *k = kv_msg_begin_result(7);
	kv_json_map_open(k);
	kv_json_map_close(k);
	agent_reply_json(&A, g->c->serial + 1000, k);
	ok(fake_quiet(f) && fake_quiet(g), "an answer to a gone connection is dropped");
}

static void test_broadcast(struct fake_conn *f, struct fake_conn *g)
{
	uint64_t dead = f->c->serial;
	f->c->dead = true; /* closed by the host, not yet collected */
	cleanup_json struct kv_json *j = kv_msg_begin_event(KV_EV_OOM);
	kv_json_kstr(j, "container", "c");
	agent_broadcast(&A, j);
	cleanup_msg struct kv_msg m = {0};
	ok(fake_next(&A, g, &m) && m.kind == KV_MSG_EVENT && strcmp(m.event, KV_EV_OOM) == 0,
	   "an event goes to every live connection");
	ok(fake_quiet(f), "  not to a dead one");
	conns_gc(&A);
	bool freed = true;
	for (struct conn *c = A.conns; c; c = c->next)
		freed &= c->serial != dead;
	ok(freed, "  which is then freed");
	f->c = NULL;
}

/* A frame bigger than the socket buffer: the rest goes on EPOLLOUT. */
static void test_large_frame(struct fake_conn *g)
{
	size_t len = KV_AGENT_FRAME_MAX;
	char *frame = kv_malloc0(len);
	memset(frame, 'x', len);
	conn_send(&A, g->c, frame, len);
	ok(g->c->out_len > 0 && (g->c->src.events & EPOLLOUT),
	   "large frame: what the socket did not take waits for EPOLLOUT");
	/* Read what is there, then let the agent flush, until the frame is in. */
	uint8_t hdr[KV_AGENT_FRAME_HDR];
	size_t off = 0;
	char *got = kv_malloc0(len);
	for (int idle = 0; off < sizeof(hdr) + len && idle < 100;) {
		ev_poll(&A, 10);
		char buf[65536];
		ssize_t n = recv(g->host, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0) {
			idle++;
			continue;
		}
		idle = 0;
		for (ssize_t i = 0; i < n; i++, off++)
			if (off < sizeof(hdr))
				hdr[off] = buf[i];
			else
				got[off - sizeof(hdr)] = buf[i];
	}
	bool whole = off == sizeof(hdr) + len && hdr[0] == 0 && hdr[1] == 0x10 && hdr[2] == 0 &&
		     hdr[3] == 0 && memcmp(got, frame, len) == 0;
	ok(whole, "  the host gets the whole frame");
	ok(g->c->out_len == 0 && !(g->c->src.events & EPOLLOUT), "  then EPOLLIN only again");
	free(got);
	free(frame);
}

/* A host that stops reading is dropped, not given unbounded memory. */
static void test_bounded(void)
{
	struct fake_conn h = fake_conn_open(&A);
	uint64_t serial = h.c->serial;
	size_t len = KV_AGENT_FRAME_MAX, sent = 0;
	char *frame = kv_malloc0(len);
	bool bounded = true;
	for (int i = 0; i < 80 && conn_find(&A, serial); i++) {
		conn_send(&A, h.c, frame, len);
		sent++;
		bounded &= h.c->out_len <= CONN_OUT_MAX;
	}
	ok(!conn_find(&A, serial), "a host not reading is dropped after %zu frames of 1 MiB", sent);
	ok(bounded && sent <= CONN_OUT_MAX / len + 2, "  having never had more than 64 MiB queued");
	conns_gc(&A);
	char buf[65536];
	ssize_t n;
	size_t total = 0;
	while ((n = recv(h.host, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		total += n;
	ok(n == 0, "  the host then reads EOF (after %zu bytes)", total);
	close(h.host);
	free(frame);
}

int main(void)
{
	fake_agent_init(&A);
	struct fake_conn f = fake_conn_open(&A), g = fake_conn_open(&A);
	test_answers(&f, &g);
	test_large_frame(&g);
	test_broadcast(&f, &g);
	test_bounded();
	fake_settle(&A);
	ok(fake_idle(&A), "the agent is idle at the end");
	close(f.host);
	close(g.host);
	fake_agent_fini(&A);
	return tap_done();
}
