/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (vmm/virtio/vsock*.c): a simulated guest driver on the
 * queues, real Unix sockets in a temporary directory on the host side, and
 * a one-fd fake event loop pumped by hand.
 */
#include "tap.h"
#include "vq_builder.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "vmm/virtio/vsock.h"

#define BASE	  0x1000000ull
#define MEMSZ	  (16u << 20)
#define QSIZE	  64
#define RX_SLOTS  (QSIZE / 2)
#define RX_DATA	  4096
#define TX_SLOT	  (VSOCK_HDR_SIZE + VSOCK_MAX_PKT)
#define GUEST_CID 3

/* ------------------------------------------------------ fake evloop */

struct evloop {
	int fd;
	evloop_cb cb;
	void *ctx;
};

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *ctx)
{
	loop->fd = fd;
	loop->cb = cb;
	loop->ctx = ctx;
	return 0;
}
int evloop_mod(struct evloop *loop, int fd, uint32_t events)
{
	return 0;
}
int evloop_del(struct evloop *loop, int fd)
{
	loop->fd = -1;
	return 0;
}

static struct evloop loop = {.fd = -1};

/* Run the device's loop callback while its epoll set has events (up to wait_ms for the first). */
static void pump_wait(int wait_ms)
{
	for (int i = 0; i < 100 && loop.fd >= 0; i++) {
		struct pollfd p = {.fd = loop.fd, .events = POLLIN};
		if (poll(&p, 1, i == 0 ? wait_ms : 0) <= 0)
			return;
		loop.cb(loop.ctx, EPOLLIN);
	}
}
static void pump(void)
{
	pump_wait(0);
}

/* ----------------------------------------------------- guest driver */

static struct vqb_mem mem;
static struct irq_count irqs;
static char dir[] = "/tmp/kvrun-vsock-XXXXXX";
static char uds[64];

struct guest {
	struct virtio_mmio *dev;
	struct bus_dev bd;
	struct vqb q[3]; /* rx, tx, event */
	uint64_t rx_pool, tx_pool, ev_pool;
	unsigned tx_next;
};

static void guest_post_rx(struct guest *g, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = g->q[0].next_desc;
		uint64_t a = g->rx_pool + (uint64_t)(d / 2) * (VSOCK_HDR_SIZE + RX_DATA);
		struct vqb_buf b[] = {{a, VSOCK_HDR_SIZE, true},
				      {a + VSOCK_HDR_SIZE, RX_DATA, true}};
		vqb_add_chain(&g->q[0], b, 2);
	}
	vdrv_kick(&g->bd, VSOCK_QUEUE_RX);
}

static void guest_post_event(struct guest *g)
{
	struct vqb_buf b = {g->ev_pool, 4, true};
	memset(vqb_ptr(&mem, g->ev_pool), 0xff, 4);
	vqb_add_chain(&g->q[2], &b, 1);
	vdrv_kick(&g->bd, VSOCK_QUEUE_EVENT);
}

static bool guest_up(struct guest *g, uint64_t cid)
{
	struct virtio_env env = {.gm = &mem.gm,
				 .irq = {irq_count_raise, &irqs},
				 .gsi = 8,
				 .loop = &loop,
				 .timeout_ms = 50};
	struct kv_err *err = NULL;
	memset(g, 0, sizeof(*g));
	g->dev = virtio_vsock_new(&env, cid, uds, &err);
	if (!g->dev) {
		diag("%s", err->msg);
		kv_err_free(err);
		return false;
	}
	g->bd = virtio_mmio_bus_dev(g->dev, 0xd0000000);
	for (int i = 0; i < 3; i++)
		vqb_init(&g->q[i], &mem, QSIZE);
	g->rx_pool = vqb_alloc(&mem, (uint64_t)RX_SLOTS * (VSOCK_HDR_SIZE + RX_DATA), 16);
	g->tx_pool = vqb_alloc(&mem, (uint64_t)4 * TX_SLOT, 16);
	g->ev_pool = vqb_alloc(&mem, 4, 4);
	uint32_t st = vdrv_bringup(&g->bd, 1ull << VIRTIO_F_VERSION_1, g->q, 3);
	guest_post_rx(g, 16);
	guest_post_event(g);
	return st & VIRTIO_STATUS_DRIVER_OK;
}

static void guest_down(struct guest *g)
{
	virtio_mmio_free(g->dev);
	mem.next = mem.base; /* all guest buffers are free again */
}

struct pkt {
	struct vsock_hdr h;
	uint8_t data[RX_DATA];
};

static void hdr_parse(const uint8_t *raw, struct vsock_hdr *h)
{
	h->src_cid = virtio_get_le64(raw);
	h->dst_cid = virtio_get_le64(raw + 8);
	h->src_port = virtio_get_le32(raw + 16);
	h->dst_port = virtio_get_le32(raw + 20);
	h->len = virtio_get_le32(raw + 24);
	h->type = virtio_get_le16(raw + 28);
	h->op = virtio_get_le16(raw + 30);
	h->flags = virtio_get_le32(raw + 32);
	h->buf_alloc = virtio_get_le32(raw + 36);
	h->fwd_cnt = virtio_get_le32(raw + 40);
}

static bool guest_recv(struct guest *g, struct pkt *p);

/* Throw away whatever the device has queued for the guest. */
static void guest_drain(struct guest *g)
{
	struct pkt p;
	while (guest_recv(g, &p))
		;
}

/* The next packet the device gave the guest (re-posting its buffer), or false. */
static bool guest_recv(struct guest *g, struct pkt *p)
{
	uint32_t id, len;
	pump();
	if (!vqb_next_used(&g->q[0], &id, &len))
		return false;
	uint64_t a = g->rx_pool + (uint64_t)(id / 2) * (VSOCK_HDR_SIZE + RX_DATA);
	hdr_parse(vqb_ptr(&mem, a), &p->h);
	if (len != VSOCK_HDR_SIZE + p->h.len)
		diag("used len %u for a packet of %u", len, p->h.len);
	memcpy(p->data, vqb_ptr(&mem, a + VSOCK_HDR_SIZE), p->h.len < RX_DATA ? p->h.len : 0);
	guest_post_rx(g, 1);
	return true;
}

struct gsend {
	uint16_t op;
	uint32_t src_port, dst_port, flags, buf_alloc, fwd_cnt;
	const void *data;
	uint32_t len;
	uint64_t src_cid;
	uint32_t claim_len; /* header len field, if not len */
};

static void guest_send(struct guest *g, const struct gsend *s)
{
	uint64_t a = g->tx_pool + (uint64_t)(g->tx_next++ % 4) * TX_SLOT;
	struct vsock_hdr h = {
	    .src_cid = s->src_cid ? s->src_cid : GUEST_CID,
	    .dst_cid = VSOCK_HOST_CID,
	    .src_port = s->src_port,
	    .dst_port = s->dst_port,
	    .len = s->claim_len ? s->claim_len : s->len,
	    .type = VSOCK_TYPE_STREAM,
	    .op = s->op,
	    .flags = s->flags,
	    .buf_alloc = s->buf_alloc,
	    .fwd_cnt = s->fwd_cnt,
	};
	vsock_hdr_write(&h, vqb_ptr(&mem, a));
	struct vqb_buf b[2] = {{a, VSOCK_HDR_SIZE, false}, {a + VSOCK_HDR_SIZE, s->len, false}};
	if (s->len)
		memcpy(vqb_ptr(&mem, a + VSOCK_HDR_SIZE), s->data, s->len);
	vqb_add_chain(&g->q[1], b, s->len ? 2 : 1);
	vdrv_kick(&g->bd, VSOCK_QUEUE_TX);
	uint32_t id, len;
	while (vqb_next_used(&g->q[1], &id, &len))
		;
}

static void guest_op(struct guest *g, uint16_t op, uint32_t src, uint32_t dst, uint32_t flags)
{
	struct gsend s = {
	    .op = op, .src_port = src, .dst_port = dst, .flags = flags, .buf_alloc = 1 << 20};
	guest_send(g, &s);
}

/* ------------------------------------------------------ host helpers */

static int host_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int host_listen(uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", uds, port);
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what is there within wait_ms (pumping the device meanwhile); returns bytes. */
static ssize_t host_read(int fd, void *buf, size_t len, int wait_ms)
{
	size_t got = 0;
	for (int i = 0; i <= wait_ms && got < len; i++) {
		pump();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 1) <= 0)
			continue;
		ssize_t r = recv(fd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);
		if (r <= 0)
			return got ? (ssize_t)got : r;
		got += r;
	}
	return got;
}

/* Whether the host socket saw EOF (or a reset) within wait_ms. */
static bool host_closed(int fd, int wait_ms)
{
	static char b[64 << 10];
	for (int i = 0; i <= wait_ms; i++) {
		pump();
		ssize_t r;
		while ((r = recv(fd, b, sizeof(b), MSG_DONTWAIT)) > 0)
			;
		if (r == 0 || (r < 0 && errno != EAGAIN))
			return true;
		usleep(1000);
	}
	return false;
}

/* Host connects to uds for guest `port`; returns the fd, the REQUEST seen by the guest in *req. */
static int host_open(struct guest *g, uint32_t port, struct pkt *req)
{
	int fd = host_connect(uds);
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (fd < 0 || write(fd, line, n) != n)
		return -1;
	pump();
	if (!guest_recv(g, req) || req->h.op != VSOCK_OP_REQUEST) {
		close(fd);
		return -1;
	}
	return fd;
}

/* -------------------------------------------------------------- tests */

static void test_setup(void)
{
	struct guest g;
	struct kv_err *err = NULL;
	struct virtio_env env = {.gm = &mem.gm, .loop = &loop};
	ok(virtio_vsock_new(&env, 2, uds, &err) == NULL, "guest cid 2 (host) refused");
	kv_err_free(err);
	err = NULL;
	ok(virtio_vsock_new(&env, 1ull << 32, uds, &err) == NULL, "guest cid >= 2^32-1 refused");
	kv_err_free(err);
	err = NULL;
	char file[160];
	snprintf(file, sizeof(file), "%s/plain", dir);
	close(open(file, O_CREAT | O_WRONLY, 0600));
	ok(virtio_vsock_new(&env, 3, file, &err) == NULL, "uds over a regular file refused");
	ok(err && strstr(err->msg, file), "error names the path");
	kv_err_free(err);
	unlink(file);

	ok(guest_up(&g, GUEST_CID), "vsock up");
	struct stat st;
	ok(stat(uds, &st) == 0 && S_ISSOCK(st.st_mode), "uds is a listening socket");
	is_int(vdrv_r32(&g.bd, VIRTIO_MMIO_DEVICE_ID), 19, "device id 19");
	uint64_t cid;
	vdrv_config(&g.bd, 0, &cid, 8);
	is_int(cid, GUEST_CID, "config guest_cid");
	guest_down(&g);
	ok(stat(uds, &st) < 0, "uds removed on free");

	/* A stale socket file from a dead VMM is replaced. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	ok(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "stale socket file");
	close(s);
	ok(guest_up(&g, 7), "vsock up over a stale socket (cid 7)");
	vdrv_config(&g.bd, 0, &cid, 8);
	is_int(cid, 7, "config guest_cid 7");
	guest_down(&g);
}

static void test_host_to_guest(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int fd = host_open(&g, 1024, &p);
	ok(fd >= 0, "host CONNECT 1024 -> guest REQUEST");
	is_int(p.h.src_cid, 2, "REQUEST from host cid 2");
	is_int(p.h.dst_cid, GUEST_CID, "to the guest cid");
	is_int(p.h.dst_port, 1024, "to port 1024");
	ok(p.h.src_port >= VSOCK_LOCAL_PORT_BASE, "from a local port");
	is_int(p.h.type, VSOCK_TYPE_STREAM, "stream type");
	is_int(p.h.buf_alloc, VSOCK_CONN_BUF, "device advertises its buffer");
	uint32_t lport = p.h.src_port;
	ok(!guest_recv(&g, &p), "nothing else yet");

	const char early[] = "early";
	ok(write(fd, early, 5) == 5, "host writes before the guest answers");
	guest_op(&g, VSOCK_OP_RESPONSE, 1024, lport, 0);
	char buf[64] = {0}, want[32];
	snprintf(want, sizeof(want), "OK %u\n", lport);
	host_read(fd, buf, strlen(want), 100);
	is_str(buf, want, "host reads OK <local port>");
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW && p.h.len == 5 &&
	       memcmp(p.data, "early", 5) == 0,
	   "bytes written before the answer arrive after it");
	ok(write(fd, "hello", 5) == 5, "host writes");
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW && memcmp(p.data, "hello", 5) == 0,
	   "guest receives RW hello");
	is_int(p.h.src_port, lport, "RW from the local port");
	is_int(p.h.dst_port, 1024, "RW to the guest port");

	struct gsend s = {.op = VSOCK_OP_RW,
			  .src_port = 1024,
			  .dst_port = lport,
			  .buf_alloc = 1 << 20,
			  .data = "world",
			  .len = 5};
	guest_send(&g, &s);
	memset(buf, 0, sizeof(buf));
	host_read(fd, buf, 5, 100);
	is_str(buf, "world", "host reads the guest's bytes");

	/* Guest closes: SHUTDOWN both -> device answers RST and closes the host socket. */
	guest_op(&g, VSOCK_OP_SHUTDOWN, 1024, lport, VSOCK_SHUTDOWN_BOTH);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "full shutdown answered with RST");
	ok(host_closed(fd, 100), "host socket closed");
	close(fd);

	/* The guest refuses a connection: RST closes the host socket. */
	fd = host_open(&g, 99, &p);
	ok(fd >= 0, "CONNECT 99");
	guest_op(&g, VSOCK_OP_RST, 99, p.h.src_port, 0);
	ok(host_closed(fd, 100), "guest RST closes the host socket");
	close(fd);

	/* Local ports are distinct for two connections to the same guest port. */
	struct pkt p2;
	int a = host_open(&g, 1024, &p), b = host_open(&g, 1024, &p2);
	ok(a >= 0 && b >= 0 && p.h.src_port != p2.h.src_port, "distinct local ports");
	close(a);
	close(b);
	guest_down(&g);
}

static void test_bad_host_lines(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	const char *bad[] = {
	    "CONNECT\n",   "CONNECT x\n",  "CONNECT 99999999999\n",
	    "connect 5\n", "CONNECT 5 \n", "CONNECT 00000000000000000000000000000000000000001\n"};
	for (unsigned i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		int fd = host_connect(uds);
		ok(write(fd, bad[i], strlen(bad[i])) > 0 && host_closed(fd, 100),
		   "bad line %u closes the host socket", i);
		close(fd);
	}
	ok(!guest_recv(&g, &p), "and the guest saw nothing");
	int fd = host_connect(uds);
	ok(fd >= 0 && host_closed(fd, 500), "no line at all: closed after the timeout");
	close(fd);
	guest_down(&g);
}

static void test_guest_to_host(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int l = host_listen(5000);
	ok(l >= 0, "host listens on uds_5000");
	guest_op(&g, VSOCK_OP_REQUEST, 1234, 5000, 0);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RESPONSE, "guest REQUEST -> RESPONSE");
	is_int(p.h.src_port, 5000, "RESPONSE from port 5000");
	is_int(p.h.dst_port, 1234, "to the guest's port");
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ok(fd >= 0, "device connected to uds_5000");
	struct gsend s = {.op = VSOCK_OP_RW,
			  .src_port = 1234,
			  .dst_port = 5000,
			  .buf_alloc = 1 << 20,
			  .data = "ping",
			  .len = 4};
	guest_send(&g, &s);
	char buf[16] = {0};
	host_read(fd, buf, 4, 100);
	is_str(buf, "ping", "host reads ping");
	ok(write(fd, "pong", 4) == 4, "host answers");
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW && memcmp(p.data, "pong", 4) == 0,
	   "guest receives pong");

	/* Host half-closes: guest gets SHUTDOWN(SEND) only and can still send. */
	shutdown(fd, SHUT_WR);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_SHUTDOWN && p.h.flags == VSOCK_SHUTDOWN_SEND,
	   "host half-close -> SHUTDOWN(SEND)");
	s.data = "more";
	guest_send(&g, &s);
	memset(buf, 0, sizeof(buf));
	host_read(fd, buf, 4, 100);
	is_str(buf, "more", "guest can still send after the host's half-close");
	/* Guest half-closes too: the host reads EOF. */
	guest_op(&g, VSOCK_OP_SHUTDOWN, 1234, 5000, VSOCK_SHUTDOWN_SEND);
	ok(host_closed(fd, 100), "guest SHUTDOWN(SEND) -> host EOF");
	close(fd);
	guest_op(&g, VSOCK_OP_RST, 1234, 5000, 0);

	guest_drain(&g);

	/* Host closes first: SHUTDOWN both, the guest answers RST. */
	guest_op(&g, VSOCK_OP_REQUEST, 1235, 5000, 0);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RESPONSE, "second connection");
	fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ok(write(fd, "bye", 3) == 3, "host writes, then closes");
	close(fd);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW && p.h.len == 3,
	   "data before the close arrives");
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_SHUTDOWN && p.h.flags == VSOCK_SHUTDOWN_BOTH,
	   "then SHUTDOWN(RCV|SEND)");
	guest_op(&g, VSOCK_OP_RST, 1235, 5000, 0);
	s.src_port = 1235;
	guest_send(&g, &s);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "connection gone after the guest RST");

	/* Nobody listening on 5001. */
	guest_op(&g, VSOCK_OP_REQUEST, 1236, 5001, 0);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST && p.h.src_port == 5001 &&
	       p.h.dst_port == 1236,
	   "REQUEST to a port nobody listens on -> RST");
	close(l);
	guest_down(&g);
}

static void test_hostile_packets(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	guest_op(&g, VSOCK_OP_RW, 1, 2, 0);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "RW to an unknown connection -> RST");
	guest_op(&g, VSOCK_OP_RST, 1, 2, 0);
	ok(!guest_recv(&g, &p), "RST to an unknown connection: silence");
	struct gsend s = {.op = VSOCK_OP_REQUEST, .src_port = 1, .dst_port = 2, .src_cid = 9};
	guest_send(&g, &s);
	ok(!guest_recv(&g, &p), "spoofed source cid dropped");
	s = (struct gsend){.op = VSOCK_OP_RW,
			   .src_port = 1,
			   .dst_port = 2,
			   .data = "abc",
			   .len = 3,
			   .claim_len = 4000};
	guest_send(&g, &s);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "len past the payload -> RST");
	guest_op(&g, 42, 1, 2, 0);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "unknown op -> RST");
	/* A header split over two tiny descriptors still parses. */
	uint64_t a = vqb_alloc(&mem, VSOCK_HDR_SIZE, 8);
	struct vsock_hdr h = {.src_cid = GUEST_CID,
			      .dst_cid = 2,
			      .src_port = 1,
			      .dst_port = 2,
			      .type = VSOCK_TYPE_STREAM,
			      .op = VSOCK_OP_RW};
	vsock_hdr_write(&h, vqb_ptr(&mem, a));
	struct vqb_buf b[] = {{a, 10, false}, {a + 10, VSOCK_HDR_SIZE - 10, false}};
	vqb_add_chain(&g.q[1], b, 2);
	vdrv_kick(&g.bd, VSOCK_QUEUE_TX);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "split header parsed (RST for RW)");
	/* A header too short to parse is consumed without reply. */
	struct vqb_buf shortb = {a, 20, false};
	vqb_add_chain(&g.q[1], &shortb, 1);
	vdrv_kick(&g.bd, VSOCK_QUEUE_TX);
	uint32_t id, len;
	bool used = false;
	while (vqb_next_used(&g.q[1], &id, &len))
		used = true;
	ok(used && !guest_recv(&g, &p), "short tx header completed, no reply");
	/* An rx buffer too small for a header is completed empty, the next one used. */
	vdrv_w32(&g.bd, VIRTIO_MMIO_STATUS, 0);
	for (int i = 0; i < 3; i++)
		vqb_init(&g.q[i], &mem, QSIZE);
	vdrv_bringup(&g.bd, 1ull << VIRTIO_F_VERSION_1, g.q, 3);
	uint64_t tiny = vqb_alloc(&mem, 8, 8);
	struct vqb_buf tb = {tiny, 8, true};
	uint16_t th = vqb_add_chain(&g.q[0], &tb, 1);
	guest_post_rx(&g, 1);
	guest_op(&g, VSOCK_OP_RW, 1, 2, 0);
	ok(vqb_next_used(&g.q[0], &id, &len) && id == th && len == 0,
	   "tiny rx buffer completed with length 0");
	ok(vqb_next_used(&g.q[0], &id, &len) && len == VSOCK_HDR_SIZE, "RST in the next buffer");
	guest_down(&g);
}

static void test_credit_host_to_guest(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int l = host_listen(6000);
	struct gsend s = {
	    .op = VSOCK_OP_REQUEST, .src_port = 77, .dst_port = 6000, .buf_alloc = 100};
	guest_send(&g, &s);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RESPONSE, "connected with guest buf_alloc 100");
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	uint8_t big[300];
	for (int i = 0; i < 300; i++)
		big[i] = i;
	ok(write(fd, big, 300) == 300, "host writes 300 bytes");
	uint32_t got = 0;
	while (guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW)
		got += p.h.len;
	is_int(got, 100, "guest receives no more than its credit");
	is_int(p.h.op, VSOCK_OP_CREDIT_REQUEST, "then the device asks for credit");
	ok(!guest_recv(&g, &p), "and waits");
	s = (struct gsend){.op = VSOCK_OP_CREDIT_UPDATE,
			   .src_port = 77,
			   .dst_port = 6000,
			   .buf_alloc = 100,
			   .fwd_cnt = 60};
	guest_send(&g, &s);
	got = 0;
	while (guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW)
		got += p.h.len;
	is_int(got, 60, "credit update for 60 bytes lets 60 more through");
	s.fwd_cnt = 160;
	s.buf_alloc = 1000;
	guest_send(&g, &s);
	got = 0;
	uint8_t last = 0;
	while (guest_recv(&g, &p) && p.h.op == VSOCK_OP_RW) {
		got += p.h.len;
		last = p.data[p.h.len - 1];
	}
	is_int(got, 140, "the rest after a bigger window");
	is_int(last, (uint8_t)299, "in order, nothing lost");

	/* Guest asks for our credit. */
	s = (struct gsend){.op = VSOCK_OP_CREDIT_REQUEST,
			   .src_port = 77,
			   .dst_port = 6000,
			   .buf_alloc = 1000,
			   .fwd_cnt = 300};
	guest_send(&g, &s);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_CREDIT_UPDATE, "CREDIT_REQUEST answered");
	is_int(p.h.buf_alloc, VSOCK_CONN_BUF, "with our buf_alloc");
	close(fd);
	close(l);
	guest_down(&g);
}

static void test_credit_guest_to_host(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int l = host_listen(6001);
	guest_op(&g, VSOCK_OP_REQUEST, 88, 6001, 0);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RESPONSE, "connected");
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	/* The host does not read: the socket fills, then the device's buffer. */
	static uint8_t chunk[VSOCK_MAX_PKT];
	uint64_t sent = 0;
	struct gsend s = {.op = VSOCK_OP_RW,
			  .src_port = 88,
			  .dst_port = 6001,
			  .buf_alloc = 1 << 20,
			  .data = chunk,
			  .len = sizeof(chunk)};
	bool rst = false;
	uint32_t fwd = 0;
	/* Respect the device's credit, as a driver must: it is buf_alloc - (sent - fwd_cnt). */
	for (int i = 0; i < 64 && !rst; i++) {
		while (guest_recv(&g, &p)) {
			if (p.h.op == VSOCK_OP_RST)
				rst = true;
			fwd = p.h.fwd_cnt;
		}
		uint64_t credit = VSOCK_CONN_BUF - (sent - fwd);
		if (credit < sizeof(chunk))
			break;
		for (unsigned j = 0; j < sizeof(chunk); j++)
			chunk[j] = (uint8_t)(sent + j);
		guest_send(&g, &s);
		sent += sizeof(chunk);
	}
	ok(!rst, "a guest within its credit is never reset");
	ok(sent > VSOCK_CONN_BUF, "the host socket took some, the ring the rest (%llu sent)",
	   (unsigned long long)sent);
	/* Now the host reads everything: data intact, and a CREDIT_UPDATE reaches the guest. */
	static uint8_t in[4 << 20];
	ssize_t n = host_read(fd, in, sent, 2000);
	is_int(n, sent, "host reads every byte");
	bool intact = true;
	for (ssize_t i = 0; i < n; i++)
		intact &= in[i] == (uint8_t)i;
	ok(intact, "bytes in order");
	bool update = false;
	while (guest_recv(&g, &p))
		if (p.h.op == VSOCK_OP_CREDIT_UPDATE && p.h.fwd_cnt == (uint32_t)sent)
			update = true;
	ok(update, "CREDIT_UPDATE with fwd_cnt = all bytes forwarded");

	/* A guest ignoring credit gets a RST. */
	for (int i = 0; i < 64 && !rst; i++) {
		guest_send(&g, &s);
		while (guest_recv(&g, &p))
			rst |= p.h.op == VSOCK_OP_RST;
	}
	ok(rst, "a guest overrunning its credit is reset");
	ok(host_closed(fd, 200), "and the host socket closed");
	close(fd);
	close(l);
	guest_down(&g);
}

static void test_rx_starvation(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int fd = host_open(&g, 1024, &p);
	uint32_t lport = p.h.src_port;
	guest_op(&g, VSOCK_OP_RESPONSE, 1024, lport, 0);
	char ok_line[32];
	host_read(fd, ok_line, 10 + (lport > 999999999), 100);
	/* Use up every posted rx buffer: 16 posted, one re-posted per packet received. */
	uint32_t id, len;
	while (vqb_next_used(&g.q[0], &id, &len))
		;
	unsigned avail = (uint16_t)(g.q[0].avail_idx - vqb_used_idx(&g.q[0]));
	char blob[RX_DATA];
	memset(blob, 'z', sizeof(blob));
	for (unsigned i = 0; i < avail + 3; i++)
		ok(write(fd, blob, sizeof(blob)) == sizeof(blob) || 1, "host write %u", i);
	pump();
	pump();
	is_int((uint16_t)(vqb_used_idx(&g.q[0]) - g.q[0].used_seen), avail,
	       "every rx buffer filled, then the device waits");
	g.q[0].used_seen = vqb_used_idx(&g.q[0]);
	guest_post_rx(&g, 8);
	pump();
	is_int((uint16_t)(vqb_used_idx(&g.q[0]) - g.q[0].used_seen), 3,
	       "new buffers: the remaining 3 packets delivered");
	close(fd);
	guest_down(&g);
}

static void test_transport_reset(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int fd = host_open(&g, 1024, &p);
	guest_op(&g, VSOCK_OP_RESPONSE, 1024, p.h.src_port, 0);
	char line[32];
	host_read(fd, line, 5, 50);
	struct kv_err *err = NULL;
	irqs.n = 0;
	ok(virtio_vsock_reset_transport(g.dev, &err) == 0, "virtio_vsock_reset_transport");
	uint32_t id, len;
	ok(vqb_next_used(&g.q[2], &id, &len) && len == 4, "event delivered");
	is_int(virtio_get_le32(vqb_ptr(&mem, g.ev_pool)), VSOCK_EVENT_TRANSPORT_RESET,
	       "event id TRANSPORT_RESET");
	ok(irqs.n >= 1, "interrupt raised");
	ok(host_closed(fd, 100), "host connections dropped");
	ok(!guest_recv(&g, &p), "no RST: the event says it all");
	close(fd);
	/* With no event buffer posted, the event waits for one. */
	ok(virtio_vsock_reset_transport(g.dev, &err) == 0, "reset again, no event buffer");
	ok(!vqb_next_used(&g.q[2], &id, &len), "nothing yet");
	guest_post_event(&g);
	ok(vqb_next_used(&g.q[2], &id, &len) && len == 4, "delivered once a buffer is posted");
	struct virtio_env env = {.gm = &mem.gm};
	struct virtio_mmio *rng = virtio_rng_new(&env, &err);
	ok(virtio_vsock_reset_transport(rng, &err) < 0, "not a vsock device: error");
	kv_err_free(err);
	virtio_mmio_free(rng);
	guest_down(&g);
}

static void test_device_reset(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int fd = host_open(&g, 1024, &p);
	ok(fd >= 0, "connection up");
	/* A host connection made while the driver is down waits for the next driver. */
	vdrv_w32(&g.bd, VIRTIO_MMIO_STATUS, 0);
	ok(host_closed(fd, 100), "device reset drops connections the guest knew");
	close(fd);
	int early = host_connect(uds);
	ok(write(early, "CONNECT 2048\n", 13) == 13, "host connects while the driver is down");
	pump();
	for (int i = 0; i < 3; i++)
		vqb_init(&g.q[i], &mem, QSIZE);
	vdrv_bringup(&g.bd, 1ull << VIRTIO_F_VERSION_1, g.q, 3);
	guest_post_rx(&g, 4);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_REQUEST && p.h.dst_port == 2048,
	   "its REQUEST reaches the new driver");
	close(early);
	guest_down(&g);
}

static void test_request_timeout(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int fd = host_open(&g, 1024, &p);
	ok(fd >= 0, "REQUEST sent");
	ok(host_closed(fd, 500), "no answer from the guest: host socket closed after the timeout");
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_RST, "and the guest told with RST");
	close(fd);
	guest_down(&g);
}

static void test_fd_exhaustion(void)
{
	struct guest g;
	struct pkt p;
	guest_up(&g, GUEST_CID);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int probe = dup(0); /* the lowest free fd: accept4 would get this one */
	close(probe);
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = probe;
	ok(setrlimit(RLIMIT_NOFILE, &low) == 0, "fd limit lowered to %d", probe);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	ok(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "host connects (backlog)");
	ok(write(fd, "CONNECT 1024\n", 13) == 13, "and asks for port 1024");
	pump();
	ok(!guest_recv(&g, &p), "accept fails with EMFILE: nothing for the guest, no spin");
	setrlimit(RLIMIT_NOFILE, &old);
	pump_wait(100);
	ok(guest_recv(&g, &p) && p.h.op == VSOCK_OP_REQUEST && p.h.dst_port == 1024,
	   "fds back: the paused listener resumes on the timer and the REQUEST goes out");
	close(fd);
	guest_down(&g);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	vqb_mem_init(&mem, BASE, MEMSZ);
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	snprintf(uds, sizeof(uds), "%s/vsock.sock", dir);
	test_setup();
	test_host_to_guest();
	test_bad_host_lines();
	test_guest_to_host();
	test_hostile_packets();
	test_credit_host_to_guest();
	test_credit_guest_to_host();
	test_rx_starvation();
	test_transport_reset();
	test_device_reset();
	test_request_timeout();
	test_fd_exhaustion();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", dir);
	vqb_mem_free(&mem);
	return tap_done();
}
