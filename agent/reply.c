/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sending side of the control connections: a frame queued on a
 * connection (bounded: a host that stops reading is dropped, never waited
 * for), a deferred answer sent by the connection's serial (the connection
 * may be gone by then), and events broadcast to every connection. Containers,
 * stdio and cgroups report through here; it calls only the epoll leaf.
 */
#include "agent/internal.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

struct conn *conn_new(struct agent *a, int fd,
		      void (*cb)(struct agent *a, struct ev_src *src, uint32_t events))
{
	struct conn *c = kv_malloc0(sizeof(*c));
	c->src.fd = fd;
	c->src.cb = cb;
	c->serial = ++a->next_serial;
	kv_frame_reader_init(&c->rd);
	if (ev_add(a, &c->src, EPOLLIN) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = a->conns;
	a->conns = c;
	return c;
}

struct conn *conn_find(struct agent *a, uint64_t serial)
{
	for (struct conn *c = a->conns; c; c = c->next)
		if (c->serial == serial && !c->dead)
			return c;
	return NULL;
}

void conn_flush(struct agent *a, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->src.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) {
			c->dead = true;
			return;
		}
		c->out_off += w;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	ev_mod(a, &c->src, EPOLLIN | (c->out_len ? EPOLLOUT : 0));
}

void conn_send(struct agent *a, struct conn *c, const char *frame, size_t len)
{
	uint8_t hdr[KV_AGENT_FRAME_HDR];
	struct kv_err *err = NULL;
	if (c->dead)
		return;
	if (kv_frame_header(hdr, len, &err) < 0) {
		kv_log_err(err);
		kv_err_free(err);
		return;
	}
	size_t need = c->out_len + sizeof(hdr) + len;
	if (need > CONN_OUT_MAX) {
		kv_warn("control connection %llu: host not reading, dropping it",
			(unsigned long long)c->serial);
		c->dead = true;
		return;
	}
	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < need)
			cap *= 2;
		char *nb = realloc(c->out, cap);
		if (!nb)
			abort();
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, hdr, sizeof(hdr));
	memcpy(c->out + c->out_len + sizeof(hdr), frame, len);
	c->out_len = need;
	conn_flush(a, c);
}

void agent_reply_error(struct agent *a, uint64_t serial, int64_t id, const struct kv_err *err)
{
	struct conn *c = conn_find(a, serial);
	if (!c)
		return;
	size_t len;
	cleanup_free char *f = kv_msg_error(id, err && err->errnum ? err->errnum : EINVAL,
					    err ? err->msg : "error", &len);
	conn_send(a, c, f, len);
}

/* The frame of message J, or NULL (logged) when it cannot be encoded. */
static const char *frame_of(struct kv_json *j, size_t *len)
{
	const char *out;
	cleanup_err struct kv_err *err = NULL;
	if (kv_msg_end(j, &out, len, &err) < 0) {
		kv_log_err(err);
		return NULL;
	}
	return out;
}

void agent_reply_json(struct agent *a, uint64_t serial, struct kv_json *j)
{
	size_t len;
	const char *out = frame_of(j, &len);
	struct conn *c = out ? conn_find(a, serial) : NULL;
	if (c)
		conn_send(a, c, out, len);
}

void agent_broadcast(struct agent *a, struct kv_json *j)
{
	size_t len;
	const char *out = frame_of(j, &len);
	for (struct conn *c = out ? a->conns : NULL; c; c = c->next)
		conn_send(a, c, out, len);
}

static void conn_free(struct agent *a, struct conn *c)
{
	ev_close(a, &c->src);
	kv_frame_reader_reset(&c->rd);
	free(c->out);
	free(c);
}

/* Dead connections are unlinked here, outside any callback that uses them. */
void conns_gc(struct agent *a)
{
	for (struct conn **pp = &a->conns; *pp;) {
		struct conn *c = *pp;
		if (c->dead) {
			*pp = c->next;
			conn_free(a, c);
		} else {
			pp = &c->next;
		}
	}
}
