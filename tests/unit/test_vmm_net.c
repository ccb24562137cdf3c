/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (vmm/virtio/net.c): a simulated guest driver on the queues, a
 * fake event loop pumped by hand, and a datagram socketpair as the "tap"
 * (the device's TUN ioctls off); then, in a child in a network namespace
 * of its own, a real tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) with an
 * AF_PACKET socket on its interface as the host side.
 */
#include "tap.h"
#include "vq_builder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"
#include "vmm/virtio/virtio.h"

#define BASE  0x1000000ull
#define MEMSZ (16u << 20)
#define QSIZE 256
#define RXQ   0
#define TXQ   1
#define HDR   VIRTIO_NET_HDR_SIZE

#define F_CSUM	     (1ull << 0)
#define F_GUEST_CSUM (1ull << 1)
#define F_MAC	     (1ull << 5)
#define F_GUEST_TSO4 (1ull << 7)
#define F_GUEST_TSO6 (1ull << 8)
#define F_GUEST_ECN  (1ull << 9)
#define F_GUEST_UFO  (1ull << 10)
#define F_HOST_TSO4  (1ull << 11)
#define F_MRG	     (1ull << 15)
#define F_STATUS     (1ull << 16)
#define F_CTRL_VQ    (1ull << 17)
#define F_EVENT_IDX  (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_V1	     (1ull << VIRTIO_F_VERSION_1)

/* ------------------------------------------------------ fake evloop */

struct evloop {
	struct {
		int fd;
		uint32_t events;
		evloop_cb cb;
		void *ctx;
	} e[8];
};

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *ctx)
{
	for (unsigned i = 0; i < 8; i++)
		if (!l->e[i].cb) {
			l->e[i].fd = fd;
			l->e[i].events = events;
			l->e[i].cb = cb;
			l->e[i].ctx = ctx;
			return 0;
		}
	errno = ENOSPC;
	return -1;
}
int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	for (unsigned i = 0; i < 8; i++)
		if (l->e[i].cb && l->e[i].fd == fd) {
			l->e[i].events = events;
			return 0;
		}
	errno = ENOENT;
	return -1;
}
int evloop_del(struct evloop *l, int fd)
{
	for (unsigned i = 0; i < 8; i++)
		if (l->e[i].cb && l->e[i].fd == fd) {
			l->e[i].cb = NULL;
			return 0;
		}
	errno = ENOENT;
	return -1;
}

static struct evloop loop;
static unsigned loop_calls;

/* Call back every fd that is ready for what it asked (errors always), until none is. */
static void pump(void)
{
	for (int round = 0; round < 1000; round++) {
		bool any = false;
		for (unsigned i = 0; i < 8; i++) {
			if (!loop.e[i].cb)
				continue;
			struct pollfd p = {.fd = loop.e[i].fd, .events = loop.e[i].events & POLLIN};
			if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			loop_calls++;
			loop.e[i].cb(loop.e[i].ctx, p.revents);
			any = true;
		}
		if (!any)
			return;
	}
}

static unsigned loop_count(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < 8; i++)
		n += loop.e[i].cb != NULL;
	return n;
}

/* ----------------------------------------------------- guest driver */

static struct vqb_mem mem;
static struct irq_count irqs;
static const uint8_t mac[6] = {0x02, 0x6b, 0x76, 0x00, 0x00, 0x01};

struct guest {
	struct virtio_mmio *dev;
	struct bus_dev bd;
	struct vqb q[2];
	int host;		/* the other end of the fake tap, or the packet socket */
	uint64_t rx_gpa[QSIZE]; /* the buffer of each rx descriptor */
};

/* fake_tap: the device takes any fd (our socketpairs) as its tap, no TUN ioctls. */
static struct virtio_mmio *net_new(bool fake_tap)
{
	struct virtio_env env = {.gm = &mem.gm,
				 .irq = {irq_count_raise, &irqs},
				 .gsi = 9,
				 .loop = &loop,
				 .fake_tap = fake_tap};
	struct kv_err *err = NULL;
	struct virtio_mmio *dev = virtio_net_new(&env, mac, &err);
	if (!dev) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
	return dev;
}

/* A NIC brought up with `features` (VERSION_1 added); no backend yet. */
static bool guest_up_tap(struct guest *g, uint64_t features, bool fake_tap)
{
	memset(g, 0, sizeof(*g));
	g->host = -1;
	mem.next = mem.base;
	g->dev = net_new(fake_tap);
	if (!g->dev)
		return false;
	g->bd = virtio_mmio_bus_dev(g->dev, 0xd0000000);
	for (int i = 0; i < 2; i++)
		vqb_init(&g->q[i], &mem, QSIZE);
	uint32_t st = vdrv_bringup(&g->bd, F_V1 | features, g->q, 2);
	return st & VIRTIO_STATUS_DRIVER_OK;
}

/* The same, the NIC taking a socketpair for its tap (guest_fake_tap). */
static bool guest_up(struct guest *g, uint64_t features)
{
	return guest_up_tap(g, features, true);
}

/* Attach one end of a datagram socketpair as the tap (a NIC from guest_up: no TUN ioctls). */
static bool guest_fake_tap(struct guest *g)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0)
		return false;
	int sz = 1 << 20;
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	struct kv_err *err = NULL;
	int r = virtio_net_attach(g->dev, sp[0], &err);
	if (r < 0) {
		diag("attach: %s", err->msg);
		kv_err_free(err);
	}
	close(sp[0]);
	g->host = sp[1];
	fcntl(g->host, F_SETFL, O_NONBLOCK);
	return r == 0;
}

static void guest_down(struct guest *g)
{
	virtio_mmio_free(g->dev);
	if (g->host >= 0)
		close(g->host);
	g->host = -1;
}

/* Post n rx chains of one writable buffer of `size` bytes each. */
static void guest_post_rx(struct guest *g, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = g->q[RXQ].next_desc;
		struct vqb_buf b = {vqb_alloc(&mem, size, 16), size, true};
		memset(vqb_ptr(&mem, b.gpa), 0xee, size);
		g->rx_gpa[d] = b.gpa;
		vqb_add_chain(&g->q[RXQ], &b, 1);
	}
	vdrv_kick(&g->bd, RXQ);
}

static uint8_t frame[VIRTIO_NET_MAX_FRAME + HDR + 64];

/* A frame: a zero header, then len-HDR bytes of a pattern starting at `seed`. */
static const uint8_t *frame_make(size_t len, uint8_t seed)
{
	memset(frame, 0, HDR);
	for (size_t i = HDR; i < len; i++)
		frame[i] = (uint8_t)(seed + i);
	return frame;
}

/* Send a frame as the guest would, in `nseg` readable pieces; no kick. */
static void guest_tx_add(struct guest *g, const uint8_t *data, size_t len, unsigned nseg)
{
	struct vqb_buf b[4];
	size_t off = 0;
	for (unsigned i = 0; i < nseg; i++) {
		size_t l = i + 1 == nseg ? len - off : len / nseg;
		b[i] = (struct vqb_buf){vqb_put(&mem, data + off, l ? l : 1), l, false};
		off += l;
	}
	vqb_add_chain(&g->q[TXQ], b, nseg);
}

/* The used entries of the rx queue so far, gathered into one frame (the first header's count). */
static ssize_t guest_rx_frame(struct guest *g, uint8_t *out, size_t max, unsigned *nbufs)
{
	uint32_t id, len;
	if (!vqb_next_used(&g->q[RXQ], &id, &len))
		return -1;
	const uint8_t *p = vqb_ptr(&mem, g->rx_gpa[id]);
	unsigned n = virtio_get_le16(p + 10);
	*nbufs = n;
	size_t off = 0;
	for (unsigned i = 0;; i++) {
		if (off + len > max)
			return -2;
		memcpy(out + off, vqb_ptr(&mem, g->rx_gpa[id]), len);
		off += len;
		if (i + 1 >= n || !vqb_next_used(&g->q[RXQ], &id, &len))
			break;
	}
	return off;
}

static uint16_t cfg_status(struct guest *g)
{
	uint8_t s[2];
	vdrv_config(&g->bd, 6, s, 2);
	return virtio_get_le16(s);
}

static struct virtio_net_stats stats(struct guest *g)
{
	struct virtio_net_stats st;
	virtio_net_stats_get(g->dev, &st);
	return st;
}

/* ------------------------------------------------------------ tests */

static void test_config(void)
{
	struct guest g;
	memset(&g, 0, sizeof(g));
	g.dev = net_new(true);
	g.bd = virtio_mmio_bus_dev(g.dev, 0xd0000000);
	g.host = -1;
	is_int(vdrv_r32(&g.bd, VIRTIO_MMIO_DEVICE_ID), 1, "device id 1");
	uint64_t f = vdrv_device_features(&g.bd);
	uint64_t want = F_CSUM | F_GUEST_CSUM | F_MAC | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_ECN |
			F_HOST_TSO4 | F_MRG | F_STATUS | F_V1;
	ok((f & want) == want,
	   "offers CSUM, GUEST_CSUM/TSO4/TSO6/ECN, HOST_TSO4, MAC, "
	   "MRG_RXBUF, STATUS, VERSION_1 (%#llx)",
	   (unsigned long long)f);
	ok(!(f & (F_CTRL_VQ | F_GUEST_UFO)), "no control queue, no UFO");
	uint8_t cfg[10];
	vdrv_config(&g.bd, 0, cfg, 10);
	ok(memcmp(cfg, mac, 6) == 0, "config: the MAC");
	is_int(virtio_get_le16(cfg + 6), 0, "config: link down without a tap");
	is_int(virtio_get_le16(cfg + 8), 1, "config: max_virtqueue_pairs 1");
	vdrv_w32(&g.bd, VIRTIO_MMIO_QUEUE_SEL, 2);
	is_int(vdrv_r32(&g.bd, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "two queues only");
	guest_down(&g);

	is_int(virtio_net_tun_offloads(0), 0, "offloads: none");
	is_int(virtio_net_tun_offloads(F_GUEST_TSO4), 0, "offloads: TSO without CSUM: none");
	is_int(virtio_net_tun_offloads(F_GUEST_CSUM), TUN_F_CSUM, "offloads: GUEST_CSUM");
	is_int(virtio_net_tun_offloads(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_ECN),
	       TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
	       "offloads: CSUM, TSO4, TSO6, ECN");
	is_int(virtio_net_tun_offloads(F_GUEST_CSUM | F_GUEST_ECN), TUN_F_CSUM,
	       "offloads: ECN without TSO: CSUM only");
}

static void test_no_backend(void)
{
	struct guest g;
	ok(guest_up(&g, F_MRG), "up without a tap");
	guest_post_rx(&g, 4, 2048);
	guest_tx_add(&g, frame_make(100, 1), 100, 1);
	unsigned before = irqs.n;
	vdrv_kick(&g.bd, TXQ);
	uint32_t id, len;
	ok(vqb_next_used(&g.q[TXQ], &id, &len) && len == 0, "tx without a tap: completed");
	ok(irqs.n > before, "  and signalled");
	is_int(stats(&g).tx_dropped, 1, "  and dropped");
	ok(!vqb_next_used(&g.q[RXQ], &id, &len), "rx without a tap: nothing");
	guest_down(&g);
}

static void test_attach_tx(void)
{
	struct guest g;
	ok(guest_up(&g, F_MRG | F_GUEST_CSUM | F_GUEST_TSO4), "up");
	unsigned before = irqs.n;
	uint32_t gen = vdrv_r32(&g.bd, VIRTIO_MMIO_CONFIG_GENERATION);
	ok(guest_fake_tap(&g), "attach a (fake) tap");
	ok(irqs.n > before && (vdrv_r32(&g.bd, VIRTIO_MMIO_INTERRUPT_STATUS) & 2),
	   "  config interrupt");
	ok(vdrv_r32(&g.bd, VIRTIO_MMIO_CONFIG_GENERATION) != gen, "  config generation bumped");
	is_int(cfg_status(&g), 1, "  link up");
	is_int(stats(&g).offloads, TUN_F_CSUM | TUN_F_TSO4,
	       "  offloads from the driver's features");
	int sp[2];
	ok(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) == 0, "another fd");
	struct kv_err *err = NULL;
	ok(virtio_net_attach(g.dev, sp[0], &err) < 0 && err->errnum == EBUSY,
	   "a second attach: EBUSY");
	kv_err_free(err);
	close(sp[0]);
	close(sp[1]);

	guest_tx_add(&g, frame_make(1514, 7), 1514, 1);
	guest_tx_add(&g, frame_make(3000, 9), 3000, 3);
	vdrv_kick(&g.bd, TXQ);
	static uint8_t got[70000];
	ssize_t n = recv(g.host, got, sizeof(got), 0);
	ok(n == 1514 && memcmp(got, frame_make(1514, 7), 1514) == 0,
	   "tx: a frame comes out of the tap whole, header included (%zd)", n);
	n = recv(g.host, got, sizeof(got), 0);
	ok(n == 3000 && memcmp(got, frame_make(3000, 9), 3000) == 0,
	   "tx: a frame in three descriptors comes out as one (%zd)", n);
	uint32_t id, len;
	ok(vqb_next_used(&g.q[TXQ], &id, &len) && len == 0 && vqb_next_used(&g.q[TXQ], &id, &len) &&
	       len == 0,
	   "tx: both chains completed with length 0");
	is_int(stats(&g).tx_frames, 2, "tx: 2 frames");

	/* Hostile: writable only, header-less, over the limit. */
	uint64_t a = vqb_alloc(&mem, 2048, 16);
	struct vqb_buf wonly = {a, 2048, true};
	vqb_add_chain(&g.q[TXQ], &wonly, 1);
	guest_tx_add(&g, frame_make(8, 1), 8, 1);
	size_t big = HDR + VIRTIO_NET_MAX_FRAME + 1;
	guest_tx_add(&g, frame_make(big, 3), big, 2);
	guest_tx_add(&g, frame_make(HDR + VIRTIO_NET_MAX_FRAME, 3), HDR + VIRTIO_NET_MAX_FRAME, 2);
	vdrv_kick(&g.bd, TXQ);
	unsigned done = 0;
	while (vqb_next_used(&g.q[TXQ], &id, &len))
		done++;
	is_int(done, 4, "tx: writable-only, header-less and oversized chains all completed");
	n = recv(g.host, got, sizeof(got), 0);
	is_int(n, HDR + VIRTIO_NET_MAX_FRAME, "  only the frame at the limit went out");
	ok(recv(g.host, got, sizeof(got), 0) < 0 && errno == EAGAIN, "  nothing else");
	is_int(stats(&g).tx_dropped, 3, "  three dropped");
	ok(!(vdrv_r32(&g.bd, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET),
	   "  no reset needed");

	/* A batch bigger than the per-kick bound: the rest through the loop. */
	for (unsigned i = 0; i < 200; i++)
		guest_tx_add(&g, frame_make(60, i), 60, 1);
	vdrv_kick(&g.bd, TXQ);
	done = 0;
	while (vqb_next_used(&g.q[TXQ], &id, &len))
		done++;
	ok(done > 0 && done < 200, "tx: one kick completes a bounded batch (%u of 200)", done);
	pump();
	while (vqb_next_used(&g.q[TXQ], &id, &len))
		done++;
	is_int(done, 200, "tx: the event loop completes the rest");
	unsigned out = 0;
	while (recv(g.host, got, sizeof(got), 0) == 60)
		out++;
	is_int(out, 200, "tx: 200 frames out");
	guest_down(&g);
}

static void test_rx(void)
{
	struct guest g;
	static uint8_t got[70000];
	unsigned nb;
	ok(guest_up(&g, 0), "up without MRG_RXBUF");
	ok(guest_fake_tap(&g), "attach");
	ok(!stats(&g).polling, "no rx buffers: the tap is not polled");
	ok(send(g.host, frame_make(600, 5), 600, 0) == 600, "a frame into the tap");
	pump();
	uint32_t id, len;
	ok(!vqb_next_used(&g.q[RXQ], &id, &len), "  not read while the guest has no buffers");
	guest_post_rx(&g, 4, 1526);
	ok(stats(&g).polling, "buffers posted and kicked: polled");
	pump();
	ssize_t n = guest_rx_frame(&g, got, sizeof(got), &nb);
	ok(n == 600 && nb == 1 && memcmp(got + HDR, frame + HDR, 600 - HDR) == 0,
	   "rx: the frame in one buffer, num_buffers 1 (%zd, %u)", n, nb);
	/* Too big for one buffer without MRG_RXBUF: dropped, the buffer kept. */
	send(g.host, frame_make(3000, 6), 3000, 0);
	send(g.host, frame_make(100, 8), 100, 0);
	pump();
	n = guest_rx_frame(&g, got, sizeof(got), &nb);
	ok(n == 100 && memcmp(got + HDR, frame_make(100, 8) + HDR, 100 - HDR) == 0,
	   "rx: an oversized frame dropped, the next one delivered (%zd)", n);
	is_int(stats(&g).rx_dropped, 1, "  one dropped");
	/* Short frames from the tap. */
	send(g.host, frame, 5, 0);
	pump();
	ok(!vqb_next_used(&g.q[RXQ], &id, &len), "rx: a 5-byte frame is dropped");
	/* Hostile rx chains: readable only, or shorter than the header, then a good one. */
	for (int i = 0; i < 2; i++) /* use up the two buffers left */
		send(g.host, frame_make(100, 8), 100, 0);
	pump();
	while (vqb_next_used(&g.q[RXQ], &id, &len))
		;
	uint64_t a = vqb_alloc(&mem, 64, 16);
	struct vqb_buf ro = {a, 64, false}, tiny = {a, 8, true};
	vqb_add_chain(&g.q[RXQ], &ro, 1);
	vqb_add_chain(&g.q[RXQ], &tiny, 1);
	guest_post_rx(&g, 1, 2048);
	pump();
	send(g.host, frame_make(1000, 2), 1000, 0);
	pump();
	unsigned used = 0, good = 0;
	while (vqb_next_used(&g.q[RXQ], &id, &len)) {
		used++;
		good += len == 1000;
	}
	ok(used >= 3 && good == 1, "rx: unusable chains completed empty, the frame in a good one");
	ok(!(vdrv_r32(&g.bd, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET),
	   "  no reset needed");
	guest_down(&g);
}

static void test_rx_mergeable(void)
{
	struct guest g;
	static uint8_t got[70000];
	unsigned nb;
	uint32_t id, len;
	ok(guest_up(&g, F_MRG | F_EVENT_IDX), "up with MRG_RXBUF and EVENT_IDX");
	ok(guest_fake_tap(&g), "attach");
	guest_post_rx(&g, 2, 256);
	send(g.host, frame_make(1000, 3), 1000, 0);
	pump();
	ok(!vqb_next_used(&g.q[RXQ], &id, &len), "1000 bytes, 2 x 256 posted: the frame waits");
	ok(!stats(&g).polling, "  the tap is not polled meanwhile");
	is_int(vqb_avail_event(&g.q[RXQ]), g.q[RXQ].avail_idx,
	       "  avail_event asks for a kick at the next buffer");
	guest_post_rx(&g, 3, 256);
	pump();
	ssize_t n = guest_rx_frame(&g, got, sizeof(got), &nb);
	ok(n == 1000 && nb == 4 && memcmp(got + HDR, frame_make(1000, 3) + HDR, 1000 - HDR) == 0,
	   "rx: merged across 4 buffers, num_buffers 4 (%zd, %u)", n, nb);
	/* A 64 KiB frame across 256 small buffers is more than 255 can hold. */
	size_t big = HDR + VIRTIO_NET_MAX_FRAME;
	guest_post_rx(&g, 255, 256);
	send(g.host, frame_make(big, 4), big, 0);
	pump();
	n = guest_rx_frame(&g, got, sizeof(got), &nb);
	ok(n == -1, "a frame bigger than the whole ring's buffers (256 x 256 bytes)...");
	is_int(stats(&g).rx_dropped, 1, "  is dropped rather than waited for");
	send(g.host, frame_make(300, 4), 300, 0);
	pump();
	n = guest_rx_frame(&g, got, sizeof(got), &nb);
	ok(n == 300 && nb == 2, "  and the next frame uses the buffers (%zd, %u)", n, nb);
	guest_down(&g);

	ok(guest_up(&g, F_MRG), "up with MRG_RXBUF, 4 KiB buffers");
	ok(guest_fake_tap(&g), "attach");
	guest_post_rx(&g, 32, 4096);
	send(g.host, frame_make(big, 4), big, 0);
	pump();
	n = guest_rx_frame(&g, got, sizeof(got), &nb);
	ok(n == (ssize_t)big && nb == 17 && memcmp(got + HDR, frame + HDR, big - HDR) == 0,
	   "rx: a frame at the limit in 17 buffers (%zd, %u)", n, nb);
	guest_down(&g);
}

static void test_storms_and_reset(void)
{
	struct guest g;
	uint32_t id, len;
	ok(guest_up(&g, F_MRG), "up");
	ok(guest_fake_tap(&g), "attach");
	unsigned before = irqs.n;
	for (int i = 0; i < 10000; i++) {
		vdrv_kick(&g.bd, RXQ);
		vdrv_kick(&g.bd, TXQ);
	}
	pump();
	ok(irqs.n == before && !vqb_next_used(&g.q[RXQ], &id, &len) &&
	       !vqb_next_used(&g.q[TXQ], &id, &len),
	   "10000 kicks of each queue with nothing posted: nothing happens");
	for (int i = 0; i < 100; i++)
		send(g.host, frame_make(200, i), 200, 0);
	loop_calls = 0;
	pump();
	is_int(loop_calls, 0, "100 frames in the tap, no rx buffers: not polled, no wakeup");

	/* Reset: the tap stays, rx waits for DRIVER_OK. */
	vdrv_w32(&g.bd, VIRTIO_MMIO_STATUS, 0);
	ok(virtio_net_attached(g.dev) && !stats(&g).polling, "reset: tap kept, not polled");
	for (int i = 0; i < 2; i++)
		vqb_init(&g.q[i], &mem, QSIZE);
	vdrv_bringup(&g.bd, F_V1 | F_MRG, g.q, 2);
	guest_post_rx(&g, 128, 2048);
	pump();
	unsigned n = 0;
	while (vqb_next_used(&g.q[RXQ], &id, &len))
		n += len == 200;
	is_int(n, 100, "after reset and DRIVER_OK: the 100 frames delivered");
	ok(stats(&g).polling, "  polled again");

	/* Detach while traffic flows. */
	for (int i = 0; i < 10; i++)
		send(g.host, frame_make(200, i), 200, 0);
	guest_tx_add(&g, frame_make(100, 1), 100, 1);
	before = irqs.n;
	ok(virtio_net_detach(g.dev), "detach");
	ok(irqs.n > before && cfg_status(&g) == 0, "  link down, config interrupt");
	is_int(loop_count(), 1, "  the tap is out of the loop (the tx eventfd stays)");
	vdrv_kick(&g.bd, TXQ);
	pump();
	unsigned rx = 0;
	while (vqb_next_used(&g.q[RXQ], &id, &len))
		rx++;
	ok(rx == 0 && vqb_next_used(&g.q[TXQ], &id, &len), "  nothing received; tx completes");
	char b[300];
	ok(recv(g.host, b, sizeof(b), 0) < 0, "  nothing sent");
	ok(!virtio_net_detach(g.dev), "detach again: nothing attached");
	close(g.host);
	g.host = -1;
	ok(guest_fake_tap(&g) && cfg_status(&g) == 1, "attach again: link up");
	send(g.host, frame_make(300, 1), 300, 0);
	pump();
	ok(vqb_next_used(&g.q[RXQ], &id, &len) && len == 300, "  frames flow again");
	guest_down(&g);
	is_int(loop_count(), 0, "freed: nothing left in the loop");
}

/*
 * A template with its tap attached (link up) is snapshotted; the clone's
 * NIC comes back with no tap: link down (a config interrupt says so), the
 * re-kick of its ready queues reads nothing; then a tap of its own is
 * attached as in a cold VM.
 */
static void test_snapshot(void)
{
	static struct machine tm, cm;
	static struct snap s;
	static struct snap_virtio sv;
	struct guest g;
	uint32_t id, len;
	struct kv_err *err = NULL;
	ok(guest_up(&g, F_MRG | F_EVENT_IDX) && guest_fake_tap(&g),
	   "template: NIC up, tap attached");
	guest_post_rx(&g, 8, 2048);
	send(g.host, frame_make(200, 1), 200, 0);
	pump();
	ok(vqb_next_used(&g.q[RXQ], &id, &len) && len == 200, "template: traffic");
	send(g.host, frame_make(300, 2), 300, 0); /* stays in the template's tap */
	tm.virtio[0] = g.dev;
	tm.nvirtio = 1;
	snap_virtio_save(&tm, 0, &sv);
	is_int(virtio_get_le16(sv.config + 6), 1, "the snapshot has the link up");

	struct virtio_mmio *clone = net_new(true);
	cm.virtio[0] = clone;
	cm.nvirtio = 1;
	s.machine.nvirtio = 1;
	s.virtio[0] = (struct snap_blob){(const uint8_t *)&sv, sizeof(sv)};
	struct bus_dev bd = virtio_mmio_bus_dev(clone, 0xd0000000);
	unsigned before = irqs.n;
	ok(snap_virtio_restore_all(&cm, &s, &err) == 0, "restored into a NIC without a tap");
	kv_err_free(err);
	ok(vdrv_r32(&bd, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK,
	   "  the driver's state is back");
	ok(irqs.n > before && (vdrv_r32(&bd, VIRTIO_MMIO_INTERRUPT_STATUS) & 2),
	   "  a config interrupt");
	uint8_t st[2];
	vdrv_config(&bd, 6, st, 2);
	is_int(virtio_get_le16(st), 0, "  config status 0: link down");
	ok(!vqb_next_used(&g.q[RXQ], &id, &len), "  the re-kick reads no tap");
	guest_tx_add(&g, frame_make(100, 1), 100, 1);
	vdrv_kick(&bd, TXQ);
	ok(vqb_next_used(&g.q[TXQ], &id, &len), "  tx completes (dropped)");

	/* The template goes on (or away); the clone gets its own tap. */
	struct guest c = g;
	c.dev = clone;
	c.bd = bd;
	c.host = -1;
	before = irqs.n;
	ok(guest_fake_tap(&c) && cfg_status(&c) == 1 && irqs.n > before,
	   "net-attach after restore: link up, config interrupt");
	send(c.host, frame_make(400, 3), 400, 0);
	pump();
	ok(vqb_next_used(&g.q[RXQ], &id, &len) && len == 400,
	   "  the clone's frames land in the buffers the template posted");
	guest_down(&c);
	guest_down(&g);
}

/* ------------------------------------------------------- a real tap */

static int tap_open(const char *name, short flags)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = flags;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool if_up(const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	int f = open(p, O_WRONLY | O_CLOEXEC);
	if (f >= 0) {
		(void)!write(f, "1", 1);
		close(f);
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	bool r = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
	ifr.ifr_flags |= IFF_UP | IFF_NOARP;
	r = r && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
	if (s >= 0)
		close(s);
	return r;
}

#define ETH_TEST 0x88b5 /* IEEE local experimental */

/* An Ethernet frame of total length len (after the vnet header) with our ethertype. */
static void eth_make(uint8_t *p, size_t len, uint8_t seed)
{
	memset(p, 0xff, 6);
	memcpy(p + 6, mac, 6);
	p[12] = ETH_TEST >> 8;
	p[13] = ETH_TEST & 0xff;
	for (size_t i = 14; i < len; i++)
		p[i] = (uint8_t)(seed + i);
}

/* In a child, in a new network namespace: prints TAP lines, exits with its failures. */
static void real_tap_child(void)
{
	struct guest g;
	static uint8_t buf[70000], got[70000];
	unsigned nb;
	ok(guest_up_tap(&g, F_MRG | F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6, false),
	   "real tap: NIC up");
	int tap = tap_open("kvtap0", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	int plain = tap_open("kvtap1", IFF_TAP | IFF_NO_PI);
	ok(tap >= 0 && plain >= 0 && if_up("kvtap0"),
	   "taps kvtap0 (vnet header) and kvtap1 (none)");
	struct kv_err *err = NULL;
	int sp[2];
	bool refused = socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) == 0 &&
		       virtio_net_attach(g.dev, sp[0], &err) < 0;
	ok(refused && err->errnum == EINVAL && strstr(err->msg, "not a tap"),
	   "a socket is refused: %s", err ? err->msg : "");
	kv_err_free(err);
	err = NULL;
	refused = virtio_net_attach(g.dev, plain, &err) < 0;
	ok(refused && err->errnum == EINVAL && strstr(err->msg, "IFF_VNET_HDR"),
	   "a tap without IFF_VNET_HDR is refused: %s", err ? err->msg : "");
	kv_err_free(err);
	err = NULL;
	int r = virtio_net_attach(g.dev, tap, &err);
	ok(r == 0, "the vnet-header tap is attached%s%s", err ? ": " : "", err ? err->msg : "");
	kv_err_free(err);
	int hdrsz = 0;
	r = ioctl(tap, TUNGETVNETHDRSZ, &hdrsz);
	ok(r == 0 && hdrsz == HDR, "  vnet header size %d", hdrsz);
	ok(fcntl(tap, F_GETFL) & O_NONBLOCK, "  non-blocking");
	is_int(stats(&g).offloads, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, "  offloads set");
	close(tap);

	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_TEST));
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_TEST),
				  .sll_ifindex = (int)if_nametoindex("kvtap0")};
	ok(ps >= 0 && bind(ps, (struct sockaddr *)&sll, sizeof(sll)) == 0,
	   "a packet socket on kvtap0");

	/* Guest -> tap -> packet socket. */
	memset(buf, 0, HDR);
	eth_make(buf + HDR, 800, 1);
	guest_tx_add(&g, buf, HDR + 800, 2);
	vdrv_kick(&g.bd, TXQ);
	struct pollfd p = {.fd = ps, .events = POLLIN};
	ssize_t n = poll(&p, 1, 2000) == 1 ? recv(ps, got, sizeof(got), 0) : -1;
	ok(n == 800 && memcmp(got, buf + HDR, 800) == 0,
	   "tx: the guest's frame arrives on the interface (%zd)", n);

	/* Packet socket -> tap -> guest, merged over 256-byte buffers. */
	guest_post_rx(&g, 16, 256);
	eth_make(buf, 1000, 2);
	ok(sendto(ps, buf, 1000, 0, (struct sockaddr *)&sll, sizeof(sll)) == 1000,
	   "a 1000-byte frame sent on kvtap0");
	n = -1;
	for (int i = 0; i < 200 && n < 0; i++) {
		pump();
		n = guest_rx_frame(&g, got, sizeof(got), &nb);
		while (n > 14 && (got[HDR + 12] << 8 | got[HDR + 13]) != ETH_TEST)
			n = guest_rx_frame(&g, got, sizeof(got), &nb); /* not ours */
		if (n < 0)
			usleep(10000);
	}
	ok(n == HDR + 1000 && nb == 4 && memcmp(got + HDR, buf, 1000) == 0,
	   "rx: it lands in 4 rx buffers, num_buffers 4 (%zd, %u)", n, nb);
	ok(got[0] == 0 && got[1] == 0, "  header: no flags, no GSO");
	ok(virtio_net_detach(g.dev) && cfg_status(&g) == 0, "detach: link down");
	guest_down(&g);
	close(ps);
	close(plain);
}

/* The child's TAP lines are numbered after ours; it reports how many and how many failed. */
static void test_real_tap(void)
{
	if (access("/dev/net/tun", R_OK | W_OK) < 0) {
		skip("real tap: no /dev/net/tun");
		return;
	}
	int pfd[2];
	if (pipe(pfd) < 0)
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		int res[2] = {-1, 0};
		if (unshare(CLONE_NEWNET) == 0) {
			real_tap_child();
			res[0] = tap_n;
			res[1] = tap_failed;
		}
		fflush(stdout);
		(void)!write(pfd[1], res, sizeof(res));
		_exit(0);
	}
	close(pfd[1]);
	int res[2] = {-1, 0}, st = 0;
	bool got = read(pfd[0], res, sizeof(res)) == sizeof(res);
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (got && res[0] < 0) {
		skip("real tap: cannot unshare a network namespace (not root?)");
		return;
	}
	if (!got || !WIFEXITED(st) || WEXITSTATUS(st)) {
		ok(0, "real tap: the child died (status %d)", st);
		return;
	}
	tap_n = res[0];
	tap_failed = res[1];
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	vqb_mem_init(&mem, BASE, MEMSZ);
	test_config();
	test_no_backend();
	test_attach_tx();
	test_rx();
	test_rx_mergeable();
	test_storms_and_reset();
	test_snapshot();
	test_real_tap();
	vqb_mem_free(&mem);
	return tap_done();
}
