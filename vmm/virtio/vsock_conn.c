/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock connections: the state machine between one guest stream and
 * one host Unix socket (see vsock.c for the protocol and flow control).
 * Everything here runs under the device lock.
 *
 *   host connects to uds     -> CONN_HOST_LINE (read "CONNECT <port>\n")
 *   line parsed              -> CONN_REQUEST   (REQUEST queued for the guest)
 *   guest RESPONSE           -> CONN_OPEN      ("OK <local port>\n" to the host)
 *   guest REQUEST, connected -> CONN_OPEN      (RESPONSE queued for the guest)
 *   guest RST, host error, timeout, protocol violation -> killed
 */
#include "vmm/virtio/vsock.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

static unsigned vsock_bucket(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer) % KV_ARRAY_SIZE(((struct virtio_vsock *)0)->hash);
}

struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	for (struct vsock_conn *c = v->hash[vsock_bucket(local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

void vsock_conn_hash(struct virtio_vsock *v, struct vsock_conn *c)
{
	unsigned b = vsock_bucket(c->local_port, c->peer_port);
	c->hnext = v->hash[b];
	v->hash[b] = c;
	c->hashed = true;
}

static void vsock_conn_unhash(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (!c->hashed)
		return;
	for (struct vsock_conn **p = &v->hash[vsock_bucket(c->local_port, c->peer_port)]; *p;
	     p = &(*p)->hnext) {
		if (*p == c) {
			*p = c->hnext;
			break;
		}
	}
	c->hashed = false;
}

struct vsock_conn *vsock_conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state st)
{
	if (v->nconns >= VSOCK_MAX_CONNS)
		return NULL;
	uint32_t slot = 0;
	while (v->conns[slot])
		slot++;
	struct vsock_conn *c = kv_malloc0(sizeof(*c));
	c->slot = slot;
	c->gen = ++v->gens[slot];
	c->fd = fd;
	c->state = st;
	v->conns[slot] = c;
	v->nconns++;
	return c;
}

void vsock_conn_kill(struct virtio_vsock *v, struct vsock_conn *c, bool rst)
{
	if (rst && c->guest_knows)
		vsock_queue_rst(v, c->local_port, c->peer_port);
	vsock_conn_unhash(v, c);
	vsock_unschedule(v, c);
	if (c->fd >= 0) {
		if (c->in_epoll)
			epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	v->conns[c->slot] = NULL;
	v->nconns--;
	free(c->buf);
	free(c);
	vsock_listen_resume(v);
}

void vsock_conn_kill_all(struct virtio_vsock *v, bool guest_known_only)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = v->conns[i];
		if (c && (!guest_known_only || c->guest_knows))
			vsock_conn_kill(v, c, false);
	}
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

bool vsock_conn_wants_rx(const struct vsock_conn *c)
{
	if (c->state == CONN_HOST_LINE)
		return false;
	if (c->pending)
		return true;
	if (c->state != CONN_OPEN || !c->host_readable || (c->guest_shut & VSOCK_SHUTDOWN_RCV))
		return false;
	return vsock_conn_peer_credit(c) > 0 || !c->credit_requested;
}

/* Which host-socket events we want now; then (re)schedule for rx. */
void vsock_conn_update(struct virtio_vsock *v, struct vsock_conn *c)
{
	uint32_t mask = 0;
	if (c->state == CONN_HOST_LINE)
		mask = EPOLLIN;
	if (c->state == CONN_OPEN) {
		if (!c->host_readable && !c->host_eof && !(c->pending & CONN_TX_RESPONSE) &&
		    !(c->guest_shut & VSOCK_SHUTDOWN_RCV))
			mask |= EPOLLIN;
		if (c->buf_len)
			mask |= EPOLLOUT;
	}
	/* After a hangup the fd stays out of the set: EPOLLHUP cannot be masked. */
	if (!c->host_hup && (!c->in_epoll || mask != c->ep_mask)) {
		struct epoll_event ev = {.events = mask,
					 .data.u64 = (uint64_t)c->gen << 32 | c->slot};
		if (epoll_ctl(v->epfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) ==
		    0) {
			c->in_epoll = true;
			c->ep_mask = mask;
		} else {
			virtio_warn(&v->mmio, "epoll_ctl: %s", strerror(errno));
		}
	}
	vsock_schedule(v, c);
}

/* ------------------------------------------------------ host -> guest */

static uint32_t vsock_conn_read_host(struct virtio_vsock *v, struct vsock_conn *c,
				     const struct vq_chain *ch, uint16_t *op, uint32_t *flags,
				     bool *killed)
{
	uint64_t max = vsock_conn_peer_credit(c), got;
	if (max == 0) {
		c->credit_requested = true;
		*op = VSOCK_OP_CREDIT_REQUEST;
		return 0;
	}
	if (max > ch->in_len - VSOCK_HDR_SIZE)
		max = ch->in_len - VSOCK_HDR_SIZE;
	if (max > VSOCK_MAX_PKT)
		max = VSOCK_MAX_PKT;
	struct iovec iov[VQ_MAX_SEGS];
	unsigned n = vq_chain_iov(ch, true, VSOCK_HDR_SIZE, max, iov, VQ_MAX_SEGS, &got);
	ssize_t r;
	do
		r = readv(c->fd, iov, n);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		*op = VSOCK_OP_RW;
		c->rx_cnt += r;
		return r;
	}
	if (r == 0) {
		/* EOF: the host sends no more; after a hangup it receives no more either. */
		c->host_eof = true;
		c->host_readable = false;
		*op = VSOCK_OP_SHUTDOWN;
		*flags = VSOCK_SHUTDOWN_SEND | (c->host_hup ? VSOCK_SHUTDOWN_RCV : 0);
		if (c->host_hup)
			vsock_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
		return 0;
	}
	if (errno == EAGAIN) {
		c->host_readable = false;
	} else {
		virtio_debug(&v->mmio, "port %u: read: %s", c->local_port, strerror(errno));
		vsock_conn_kill(v, c, true);
		*killed = true;
	}
	*op = VSOCK_OP_INVALID;
	return 0;
}

/* Pick the packet `c` owes the guest: control first, then data. */
static uint16_t vsock_conn_next_op(struct virtio_vsock *v, struct vsock_conn *c, uint32_t *flags)
{
	static const struct {
		unsigned bit;
		uint16_t op;
	} order[] = {
	    {CONN_TX_REQUEST, VSOCK_OP_REQUEST},
	    {CONN_TX_RESPONSE, VSOCK_OP_RESPONSE},
	    {CONN_TX_SHUTDOWN, VSOCK_OP_SHUTDOWN},
	    {CONN_TX_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE},
	    {CONN_TX_CREDIT_REQUEST, VSOCK_OP_CREDIT_REQUEST},
	};
	for (unsigned i = 0; i < KV_ARRAY_SIZE(order); i++) {
		if (!(c->pending & order[i].bit))
			continue;
		c->pending &= ~order[i].bit;
		if (order[i].op == VSOCK_OP_REQUEST) {
			c->guest_knows = true;
			vsock_set_deadline(v, c, VSOCK_REQUEST_TIMEOUT_MS);
		}
		if (order[i].op == VSOCK_OP_SHUTDOWN)
			*flags = c->shutdown_flags;
		return order[i].op;
	}
	return VSOCK_OP_INVALID;
}

bool vsock_conn_rx(struct virtio_vsock *v, struct vsock_conn *c, const struct vq_chain *ch,
		   uint32_t *used)
{
	uint32_t flags = 0, len = 0;
	bool killed = false;
	uint16_t op = vsock_conn_next_op(v, c, &flags);
	if (op == VSOCK_OP_INVALID && vsock_conn_wants_rx(c))
		len = vsock_conn_read_host(v, c, ch, &op, &flags, &killed);
	if (killed)
		return false;
	if (op == VSOCK_OP_INVALID) {
		vsock_conn_update(v, c);
		return false;
	}
	struct vsock_hdr h = {
	    .src_cid = VSOCK_HOST_CID,
	    .dst_cid = v->guest_cid,
	    .src_port = c->local_port,
	    .dst_port = c->peer_port,
	    .len = len,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .flags = flags,
	    .buf_alloc = VSOCK_CONN_BUF,
	    .fwd_cnt = c->fwd_cnt,
	};
	uint8_t raw[VSOCK_HDR_SIZE];
	vsock_hdr_write(&h, raw);
	vq_chain_write(ch, 0, raw, sizeof(raw));
	c->last_fwd_cnt_sent = c->fwd_cnt;
	*used = VSOCK_HDR_SIZE + len;
	vsock_conn_update(v, c);
	return true;
}

/* ------------------------------------------------------ guest -> host */

static void vsock_conn_credit_check(struct vsock_conn *c)
{
	if (c->fwd_cnt - c->last_fwd_cnt_sent >= VSOCK_CREDIT_THRESHOLD)
		c->pending |= CONN_TX_CREDIT_UPDATE;
}

static ssize_t vsock_send(int fd, struct iovec *iov, unsigned n)
{
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
	ssize_t r;
	do
		r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return r < 0 && errno == EAGAIN ? 0 : r;
}

/* The guest closed both directions and everything reached the host: RST and forget. */
static bool vsock_conn_maybe_done(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->buf_len)
		return false;
	if ((c->guest_shut & VSOCK_SHUTDOWN_SEND) && !c->host_wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->host_wr_shut = true;
	}
	if (c->guest_shut != VSOCK_SHUTDOWN_BOTH)
		return false;
	vsock_conn_kill(v, c, true);
	return true;
}

/* Write the ring to the host socket. Returns false when the connection died. */
static bool vsock_conn_flush_host(struct virtio_vsock *v, struct vsock_conn *c)
{
	bool progress = false;
	while (c->buf_len) {
		uint32_t first = VSOCK_CONN_BUF - c->buf_head;
		if (first > c->buf_len)
			first = c->buf_len;
		struct iovec iov[2] = {{c->buf + c->buf_head, first}, {c->buf, c->buf_len - first}};
		ssize_t r = vsock_send(c->fd, iov, c->buf_len > first ? 2 : 1);
		if (r < 0) {
			vsock_conn_kill(v, c, true);
			return false;
		}
		if (r == 0)
			break;
		c->buf_head = (c->buf_head + r) % VSOCK_CONN_BUF;
		c->buf_len -= r;
		c->fwd_cnt += r;
		progress = true;
	}
	vsock_conn_credit_check(c);
	/* The host was slow and caught up: the guest may be waiting for this space. */
	if (progress && !c->buf_len && c->fwd_cnt != c->last_fwd_cnt_sent)
		c->pending |= CONN_TX_CREDIT_UPDATE;
	return !vsock_conn_maybe_done(v, c);
}

static void vsock_conn_buffer(struct vsock_conn *c, const struct vq_chain *ch, uint64_t off,
			      uint32_t len)
{
	if (!c->buf)
		c->buf = kv_malloc0(VSOCK_CONN_BUF);
	while (len) {
		uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
		uint32_t room = VSOCK_CONN_BUF - tail, n = len < room ? len : room;
		vq_chain_read(ch, off, c->buf + tail, n);
		c->buf_len += n;
		off += n;
		len -= n;
	}
}

/* RW payload to the host: straight to the socket, the rest into the ring. */
static bool vsock_conn_write_host(struct virtio_vsock *v, struct vsock_conn *c,
				  const struct vq_chain *ch, uint32_t len)
{
	if (c->buf_len + (uint64_t)len > VSOCK_CONN_BUF) {
		virtio_warn(&v->mmio, "port %u: guest sent past its credit", c->local_port);
		vsock_conn_kill(v, c, true);
		return false;
	}
	uint64_t off = VSOCK_HDR_SIZE, got;
	if (!c->buf_len && len) {
		struct iovec iov[VQ_MAX_SEGS];
		unsigned n = vq_chain_iov(ch, false, off, len, iov, VQ_MAX_SEGS, &got);
		ssize_t r = vsock_send(c->fd, iov, n);
		if (r < 0) {
			virtio_debug(&v->mmio, "port %u: write: %s", c->local_port,
				     strerror(errno));
			vsock_conn_kill(v, c, true);
			return false;
		}
		c->fwd_cnt += r;
		off += r;
		len -= r;
	}
	if (len)
		vsock_conn_buffer(c, ch, off, len);
	vsock_conn_credit_check(c);
	return true;
}

static bool vsock_conn_established(struct virtio_vsock *v, struct vsock_conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
	c->state = CONN_OPEN;
	c->deadline_ms = 0;
	if (send(c->fd, ok, n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		vsock_conn_kill(v, c, true);
		return false;
	}
	return true;
}

static bool vsock_conn_shutdown(struct virtio_vsock *v, struct vsock_conn *c, uint32_t flags)
{
	c->guest_shut |= flags & VSOCK_SHUTDOWN_BOTH;
	if (vsock_conn_maybe_done(v, c))
		return false;
	if (c->guest_shut == VSOCK_SHUTDOWN_BOTH)
		vsock_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
	return true;
}

/* A packet from the guest for an existing connection. */
void vsock_conn_from_guest(struct virtio_vsock *v, struct vsock_conn *c, const struct vsock_hdr *h,
			   const struct vq_chain *ch)
{
	bool alive = true;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (vsock_conn_peer_credit(c) > 0)
		c->credit_requested = false;
	switch (h->op) {
	case VSOCK_OP_RST: vsock_conn_kill(v, c, false); return;
	case VSOCK_OP_RESPONSE:
		if (c->state == CONN_REQUEST && c->guest_knows)
			alive = vsock_conn_established(v, c);
		else
			alive = (vsock_conn_kill(v, c, true), false);
		break;
	case VSOCK_OP_SHUTDOWN: alive = vsock_conn_shutdown(v, c, h->flags); break;
	case VSOCK_OP_RW:
		if (c->state == CONN_OPEN && !(c->guest_shut & VSOCK_SHUTDOWN_SEND))
			alive = vsock_conn_write_host(v, c, ch, h->len);
		else
			alive = (vsock_conn_kill(v, c, true), false);
		break;
	case VSOCK_OP_CREDIT_UPDATE: break;
	case VSOCK_OP_CREDIT_REQUEST: c->pending |= CONN_TX_CREDIT_UPDATE; break;
	default: /* REQUEST on an existing connection, or an unknown op */
		virtio_warn(&v->mmio, "port %u->%u: unexpected op %u", h->src_port, h->dst_port,
			    h->op);
		vsock_conn_kill(v, c, true);
		return;
	}
	if (alive)
		vsock_conn_update(v, c);
}

/* The guest connects to host port P: connect to "<uds>_<P>", RESPONSE or RST. */
void vsock_conn_guest_request(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->dial ? v->dial : v->uds,
			 h->dst_port);
	cleanup_close int fd = -1;
	if (n > 0 && (size_t)n < sizeof(sa.sun_path) && v->nconns < VSOCK_MAX_CONNS)
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		virtio_debug(&v->mmio, "guest port %u -> host port %u refused: %s", h->src_port,
			     h->dst_port, fd < 0 ? "no slot" : strerror(errno));
		vsock_queue_rst(v, h->dst_port, h->src_port);
		return;
	}
	struct vsock_conn *c = vsock_conn_new(v, steal_fd(fd), CONN_OPEN);
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->guest_knows = true;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending = CONN_TX_RESPONSE;
	vsock_conn_hash(v, c);
	vsock_conn_update(v, c);
}

/* ------------------------------------------------------ host sockets */

static uint32_t vsock_alloc_local_port(struct virtio_vsock *v, uint32_t peer)
{
	for (;;) {
		uint32_t p = v->next_local_port++;
		if (v->next_local_port == UINT32_MAX)
			v->next_local_port = VSOCK_LOCAL_PORT_BASE;
		if (!vsock_conn_find(v, p, peer))
			return p; /* at most VSOCK_MAX_CONNS ports are taken: this ends */
	}
}

/* "CONNECT <port>" with a decimal port that fits 32 bits, nothing else. */
static bool vsock_parse_connect(const char *line, uint32_t *port)
{
	static const char prefix[] = "CONNECT ";
	const char *p = line + sizeof(prefix) - 1;
	uint64_t v = 0;
	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0 || !*p)
		return false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > UINT32_MAX)
			return false;
	}
	*port = v;
	return true;
}

/* Read the CONNECT line a byte at a time: bytes after '\n' are stream data. */
static void vsock_conn_read_line(struct virtio_vsock *v, struct vsock_conn *c)
{
	for (;;) {
		char ch;
		ssize_t r = recv(c->fd, &ch, 1, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0 || (ch != '\n' && c->line_len + 1 >= sizeof(c->line))) {
			vsock_conn_kill(v, c, false);
			return;
		}
		if (ch != '\n') {
			c->line[c->line_len++] = ch;
			continue;
		}
		c->line[c->line_len] = '\0';
		uint32_t port;
		if (!vsock_parse_connect(c->line, &port)) {
			virtio_warn(&v->mmio, "host connection: bad request \"%.*s\"",
				    (int)c->line_len, c->line);
			vsock_conn_kill(v, c, false);
			return;
		}
		c->peer_port = port;
		c->local_port = vsock_alloc_local_port(v, port);
		c->state = CONN_REQUEST;
		c->deadline_ms = 0;
		c->pending = CONN_TX_REQUEST;
		vsock_conn_hash(v, c);
		vsock_conn_update(v, c);
		return;
	}
}

void vsock_conn_host_event(struct virtio_vsock *v, struct vsock_conn *c, uint32_t events)
{
	if ((events & EPOLLERR) || ((events & EPOLLHUP) && c->state != CONN_OPEN)) {
		vsock_conn_kill(v, c, true);
		return;
	}
	if (events & EPOLLHUP) {
		/* Gone for good: drain what it sent, then SHUTDOWN both ways. */
		epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->in_epoll = false;
		c->host_hup = true;
		c->host_readable = !c->host_eof;
		/* Nothing more will be read (EOF seen, or the guest takes no more data). */
		if (c->host_eof || (c->guest_shut & VSOCK_SHUTDOWN_RCV)) {
			c->host_readable = false;
			c->pending |= CONN_TX_SHUTDOWN;
			c->shutdown_flags = VSOCK_SHUTDOWN_BOTH;
			vsock_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
		}
	}
	if ((events & EPOLLIN) && !c->host_eof) {
		if (c->state == CONN_HOST_LINE) {
			vsock_conn_read_line(v, c);
			return;
		}
		c->host_readable = true;
	}
	if ((events & EPOLLOUT) && !vsock_conn_flush_host(v, c))
		return;
	vsock_conn_update(v, c);
}

void vsock_accept(struct virtio_vsock *v)
{
	for (;;) {
		cleanup_close int fd =
		    accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0 && errno == EAGAIN)
			return;
		if (fd < 0 || v->nconns >= VSOCK_MAX_CONNS) {
			/* Out of fds or slots: a level-triggered listener would spin; pause it. */
			virtio_warn(&v->mmio, "host connection refused: %s",
				    fd < 0 ? strerror(errno) : "too many connections");
			vsock_listen_pause(v);
			return;
		}
		struct vsock_conn *c = vsock_conn_new(v, steal_fd(fd), CONN_HOST_LINE);
		vsock_set_deadline(v, c, VSOCK_LINE_TIMEOUT_MS);
		vsock_conn_update(v, c);
	}
}

void vsock_conn_timeouts(struct virtio_vsock *v)
{
	uint64_t now = kv_now_ms();
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = v->conns[i];
		if (c && c->deadline_ms && now >= c->deadline_ms) {
			virtio_debug(&v->mmio, "port %u->%u timed out", c->local_port,
				     c->peer_port);
			vsock_conn_kill(v, c, true);
		}
	}
}
