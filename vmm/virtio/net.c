/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (device id 1, virtio 1.2 section 5.1): queues rx (0) and tx
 * (1), no control queue, no multiqueue, backed by a tap fd attached and
 * detached at run time (the container's network exists only after the VM
 * booted, or after a template VM was restored). Without a tap the link is
 * down (config status 0): tx frames are completed and dropped, rx is idle.
 *
 * The tap is opened by the caller with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR; we
 * set its vnet header to the 12 bytes of struct virtio_net_hdr_v1
 * (TUNSETVNETHDRSZ), so frames pass between guest buffers and the tap with
 * their header as is. Offloads: the guest's receive features become the
 * tap's TUNSETOFFLOAD flags as in QEMU and Firecracker (GUEST_CSUM ->
 * TUN_F_CSUM, GUEST_TSO4/6 -> TUN_F_TSO4/6, GUEST_ECN -> TUN_F_TSO_ECN), set
 * at DRIVER_OK or at attach, cleared at reset. What the guest sends (CSUM,
 * HOST_TSO4/6, HOST_ECN) the tap always accepts. No UFO/USO.
 *
 * tx (a kick): each chain's readable part is written to the tap with one
 * writev, header included; a frame shorter than the header or longer than
 * VIRTIO_NET_MAX_FRAME is dropped with a warning. A full tap (EAGAIN)
 * drops the frame, as Firecracker does and as a switch would: TCP
 * retransmits, and a guest can never stall the device. Chains complete
 * with length 0; at most NET_TX_BATCH per kick, the rest through our own
 * eventfd on the event loop, so one exit cannot run for ever.
 *
 * rx: the tap is in the event loop for EPOLLIN while the guest has rx
 * buffers. A frame is read whole into a bounce buffer, then copied into one
 * chain, or with MRG_RXBUF as many as it takes (num_buffers in the first
 * header). Buffers are counted before anything is completed (as QEMU does):
 * when they are short the frame waits in the bounce buffer, polling stops,
 * and the guest's next rx kick resumes it. At most NET_RX_BATCH frames per
 * wakeup. A tap that fails (EPOLLERR, its interface deleted) is detached.
 *
 * Threads: notify/activate/reset run under the device lock on a vCPU or the
 * loop; the tap and eventfd callbacks take the lock (virtio_dev.h).
 */
#include "vmm/virtio/virtio_dev.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#define NET_QUEUE_RX 0
#define NET_QUEUE_TX 1

/* Feature bits (virtio 1.2 section 5.1.3). */
#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN	9
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_HOST_ECN	13
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16

#define NET_FEATURES                                                                               \
	((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |                         \
	 (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |                          \
	 (1ull << VIRTIO_NET_F_GUEST_TSO6) | (1ull << VIRTIO_NET_F_GUEST_ECN) |                    \
	 (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |                     \
	 (1ull << VIRTIO_NET_F_HOST_ECN) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |                      \
	 (1ull << VIRTIO_NET_F_STATUS))

/* Config space: mac[6], status (le16), max_virtqueue_pairs (le16). */
#define NET_CFG_MAC	    0
#define NET_CFG_STATUS	    6
#define NET_CFG_MAX_PAIRS   8
#define NET_CFG_SIZE	    10
#define NET_S_LINK_UP	    1
#define NET_HDR_NUM_BUFFERS 10 /* le16 in struct virtio_net_hdr_v1 */

#define NET_MAX_PKT  (VIRTIO_NET_HDR_SIZE + VIRTIO_NET_MAX_FRAME)
#define NET_TX_BATCH 128
#define NET_RX_BATCH 64

struct virtio_net {
	struct virtio_mmio mmio; /* first: the transport hands us this pointer */
	uint8_t config[NET_CFG_SIZE];
	struct evloop *loop;
	int tap_fd;	   /* the backend, or -1: link down */
	int kick_fd;	   /* eventfd: tx work left over from a bounded batch */
	bool polling;	   /* tap_fd has EPOLLIN in the loop */
	bool fake_tap;	   /* env->fake_tap: any fd is a "tap", no TUN ioctls */
	unsigned offloads; /* TUN_F_* last given to the tap */
	size_t rx_len;	   /* a frame in rx_buf waiting for rx buffers, or 0 */
	uint8_t *rx_buf;   /* NET_MAX_PKT bytes */
	struct virtio_net_stats stats;
};

static struct virtio_net *to_net(struct virtio_mmio *dev)
{
	return (struct virtio_net *)dev;
}

unsigned virtio_net_tun_offloads(uint64_t f)
{
	/* The kernel ignores TSO without CSUM (tun set_offload); so does the spec. */
	if (!(f & (1ull << VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	unsigned o = TUN_F_CSUM;
	if (f & (1ull << VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (f & (1ull << VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if ((o & (TUN_F_TSO4 | TUN_F_TSO6)) && (f & (1ull << VIRTIO_NET_F_GUEST_ECN)))
		o |= TUN_F_TSO_ECN;
	return o;
}

/* ------------------------------------------------------------ backend */

static void net_offloads_set(struct virtio_net *n, unsigned o)
{
	if (!n->fake_tap && ioctl(n->tap_fd, TUNSETOFFLOAD, (unsigned long)o) < 0) {
		virtio_warn(&n->mmio, "tap: TUNSETOFFLOAD %#x: %s; offloads off", o,
			    strerror(errno));
		o = 0;
		(void)ioctl(n->tap_fd, TUNSETOFFLOAD, 0ul);
	}
	n->offloads = o;
}

static void net_poll(struct virtio_net *n, bool on)
{
	if (n->tap_fd < 0 || n->polling == on)
		return;
	if (evloop_mod(n->loop, n->tap_fd, on ? EPOLLIN : 0) == 0)
		n->polling = on;
}

static void net_link_set(struct virtio_net *n, bool up)
{
	virtio_put_le16(n->config + NET_CFG_STATUS, up ? NET_S_LINK_UP : 0);
	virtio_config_changed(&n->mmio);
}

static void net_detach_locked(struct virtio_net *n)
{
	if (n->tap_fd < 0)
		return;
	(void)evloop_del(n->loop, n->tap_fd);
	close(n->tap_fd);
	n->tap_fd = -1;
	n->polling = false;
	n->rx_len = 0;
	n->offloads = 0;
	net_link_set(n, false);
}

/* ------------------------------------------------------------------ tx */

static void net_tx_frame(struct virtio_net *n, const struct vq_chain *c)
{
	if (c->out_len < VIRTIO_NET_HDR_SIZE || c->out_len > NET_MAX_PKT) {
		virtio_warn(&n->mmio, "tx: frame of %llu bytes (header %d, at most %d) dropped",
			    (unsigned long long)c->out_len, VIRTIO_NET_HDR_SIZE, NET_MAX_PKT);
		n->stats.tx_dropped++;
		return;
	}
	if (n->tap_fd < 0) {
		n->stats.tx_dropped++; /* link down */
		return;
	}
	struct iovec v[VQ_MAX_SEGS];
	uint64_t got;
	unsigned nv = vq_chain_iov(c, false, 0, c->out_len, v, VQ_MAX_SEGS, &got);
	ssize_t w;
	do
		w = writev(n->tap_fd, v, nv);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		n->stats.tx_dropped++;
		if (errno != EAGAIN)
			virtio_warn(&n->mmio, "tx: tap write: %s", strerror(errno));
		return;
	}
	n->stats.tx_frames++;
}

static void net_tx_run(struct virtio_net *n)
{
	struct virtio_mmio *dev = &n->mmio;
	struct vq_chain c;
	unsigned done = 0;
	while (done < NET_TX_BATCH && virtio_queue_pop(dev, NET_QUEUE_TX, &c)) {
		net_tx_frame(n, &c);
		virtio_queue_push(dev, NET_QUEUE_TX, c.head, 0);
		done++;
	}
	virtio_queue_signal(dev, NET_QUEUE_TX);
	if (done == NET_TX_BATCH && vq_has_avail(&dev->vq[NET_QUEUE_TX])) {
		uint64_t one = 1;
		if (write(n->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			virtio_warn(dev, "tx: eventfd: %s", strerror(errno));
	}
}

static void net_on_kick(void *ctx, uint32_t events)
{
	struct virtio_net *n = ctx;
	uint64_t v;
	if (read(n->kick_fd, &v, sizeof(v)) < 0)
		return;
	virtio_mmio_lock(&n->mmio);
	if (n->mmio.vq[NET_QUEUE_TX].ready)
		net_tx_run(n);
	virtio_mmio_unlock(&n->mmio);
}

/* ------------------------------------------------------------------ rx */

/* The chains counted for a frame, completed empty: the driver drops them and refills. */
static void net_rx_discard(struct virtio_net *n, const uint16_t *heads, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		virtio_queue_push(&n->mmio, NET_QUEUE_RX, heads[i], 0);
}

/*
 * Count the chains the frame in rx_buf needs (one, or with MRG_RXBUF as many
 * as it takes), then give them back: returns their number; 0 when the
 * driver has not posted enough yet (or the ring broke); -1 when the frame
 * was dropped: too big for a chain without MRG_RXBUF, or for the whole ring
 * with it (it would wait for ever). Unusable chains (a malformed one, a
 * first one shorter than the header, one with nothing writable) are
 * completed empty on the way, with those counted before them.
 */
static int net_rx_count(struct virtio_net *n)
{
	struct virtio_mmio *dev = &n->mmio;
	struct virtq *vq = &dev->vq[NET_QUEUE_RX];
	bool mrg = virtio_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
	uint16_t heads[VQ_MAX_SIZE];
	unsigned k = 0, undo;
	uint64_t room = 0;
	struct vq_chain c;
	while (room < n->rx_len) {
		if (k == vq->size || (!mrg && k == 1)) {
			for (undo = k; undo; undo--)
				vq_undo_pop(vq);
			virtio_warn(dev, "rx: frame of %zu bytes dropped: %u buffers hold %llu",
				    n->rx_len, k, (unsigned long long)room);
			return -1;
		}
		enum vq_pop_result r = vq_pop(vq, &c);
		if (r == VQ_POP_EMPTY || r == VQ_POP_BROKEN) {
			for (undo = k; undo; undo--)
				vq_undo_pop(vq);
			if (r == VQ_POP_BROKEN)
				virtio_needs_reset(dev);
			return 0;
		}
		if (r == VQ_POP_BAD_CHAIN || c.in_len < (k ? 1 : VIRTIO_NET_HDR_SIZE)) {
			virtio_warn(dev, "rx: unusable descriptor chain at head %u (%llu bytes)",
				    c.head, (unsigned long long)c.in_len);
			net_rx_discard(n, heads, k);
			virtio_queue_push(dev, NET_QUEUE_RX, c.head, 0);
			k = 0;
			room = 0;
			continue;
		}
		heads[k++] = c.head;
		room += c.in_len;
	}
	for (undo = k; undo; undo--)
		vq_undo_pop(vq);
	return k;
}

/* Copy the frame into the k chains counted; the driver may have changed them since. */
static void net_rx_copy(struct virtio_net *n, unsigned k)
{
	struct virtio_mmio *dev = &n->mmio;
	struct vq_chain c;
	size_t off = 0;
	virtio_put_le16(n->rx_buf + NET_HDR_NUM_BUFFERS, k);
	for (unsigned i = 0; i < k; i++) {
		enum vq_pop_result r = vq_pop(&dev->vq[NET_QUEUE_RX], &c);
		if (r == VQ_POP_BROKEN)
			virtio_needs_reset(dev);
		if (r == VQ_POP_EMPTY || r == VQ_POP_BROKEN)
			break;
		size_t w =
		    r == VQ_POP_OK ? vq_chain_write(&c, 0, n->rx_buf + off, n->rx_len - off) : 0;
		virtio_queue_push(dev, NET_QUEUE_RX, c.head, w);
		off += w;
	}
	if (off < n->rx_len)
		virtio_warn(dev, "rx: rx buffers changed under the device; frame truncated");
	n->stats.rx_frames++;
}

/* The frame waiting in rx_buf to the guest: false when it has to wait for buffers. */
static bool net_rx_deliver(struct virtio_net *n)
{
	int k;
	while ((k = net_rx_count(n)) == 0) {
		if (!vq_want_more(&n->mmio.vq[NET_QUEUE_RX]))
			return false;
	}
	if (k > 0)
		net_rx_copy(n, k);
	else
		n->stats.rx_dropped++;
	n->rx_len = 0;
	return true;
}

/* One frame from the tap into rx_buf; false when there is none (or the tap failed). */
static bool net_rx_read(struct virtio_net *n)
{
	ssize_t r;
	do
		r = read(n->tap_fd, n->rx_buf, NET_MAX_PKT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN)
		return false;
	if (r <= 0) {
		virtio_warn(&n->mmio, "rx: tap read: %s; tap detached, link down",
			    r ? strerror(errno) : "end of file");
		net_detach_locked(n);
		return false;
	}
	if (r < VIRTIO_NET_HDR_SIZE) {
		virtio_warn(&n->mmio, "rx: %zd bytes from the tap, shorter than the header", r);
		n->stats.rx_dropped++;
		return true;
	}
	n->rx_len = r;
	return true;
}

/* Move frames from the tap to the guest while it has buffers. Lock held. */
static void net_rx_run(struct virtio_net *n)
{
	struct virtio_mmio *dev = &n->mmio;
	if (n->tap_fd < 0)
		return;
	struct virtq *vq = &dev->vq[NET_QUEUE_RX];
	bool more = virtio_driver_ok(dev) && vq->ready;
	for (unsigned i = 0; more && i < NET_RX_BATCH; i++) {
		if (!n->rx_len) {
			/* No buffer, no read: the tap keeps the frames until the guest kicks. */
			if (!vq_has_avail(vq) && !vq_want_more(vq)) {
				more = false;
				break;
			}
			if (!net_rx_read(n))
				break;
			if (!n->rx_len)
				continue;
		}
		if (!net_rx_deliver(n))
			more = false;
	}
	net_poll(n, more);
	virtio_queue_signal(dev, NET_QUEUE_RX);
}

static void net_on_tap(void *ctx, uint32_t events)
{
	struct virtio_net *n = ctx;
	virtio_mmio_lock(&n->mmio);
	if (n->tap_fd >= 0 && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		virtio_warn(&n->mmio, "tap: poll error (%#x); tap detached, link down", events);
		net_detach_locked(n);
	}
	net_rx_run(n);
	virtio_mmio_unlock(&n->mmio);
}

/* -------------------------------------------------------------- device */

static void net_notify(struct virtio_mmio *dev, unsigned queue)
{
	struct virtio_net *n = to_net(dev);
	if (queue == NET_QUEUE_TX)
		net_tx_run(n);
	else
		net_rx_run(n);
}

static void net_activate(struct virtio_mmio *dev)
{
	struct virtio_net *n = to_net(dev);
	if (n->tap_fd < 0)
		return;
	net_offloads_set(n, virtio_net_tun_offloads(dev->driver_features));
	net_rx_run(n);
}

/* The driver reset the device: the tap stays; rx waits for the next DRIVER_OK. */
static void net_reset(struct virtio_mmio *dev)
{
	struct virtio_net *n = to_net(dev);
	n->rx_len = 0;
	net_poll(n, false);
	if (n->tap_fd >= 0 && n->offloads)
		net_offloads_set(n, 0);
}

static void net_free(struct virtio_mmio *dev)
{
	struct virtio_net *n = to_net(dev);
	if (n->tap_fd >= 0) {
		(void)evloop_del(n->loop, n->tap_fd);
		close(n->tap_fd);
	}
	if (n->kick_fd >= 0) {
		(void)evloop_del(n->loop, n->kick_fd);
		close(n->kick_fd);
	}
	free(n->rx_buf);
	free(n);
}

static void net_free_partial(struct virtio_net **n)
{
	if (*n)
		net_free(&(*n)->mmio);
}

static const struct virtio_dev_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .nqueues = 2,
    .features = NET_FEATURES,
    .config_size = NET_CFG_SIZE,
    .notify = net_notify,
    .activate = net_activate,
    .reset = net_reset,
    .free = net_free,
};

struct virtio_mmio *virtio_net_new(const struct virtio_env *env, const uint8_t mac[6],
				   struct kv_err **err)
{
	if (!env->loop) {
		kv_err_plain(err, EINVAL, "virtio-net: no event loop");
		return NULL;
	}
	__attribute__((cleanup(net_free_partial))) struct virtio_net *n = kv_malloc0(sizeof(*n));
	n->tap_fd = -1;
	n->loop = env->loop;
	n->fake_tap = env->fake_tap;
	n->rx_buf = kv_malloc0(NET_MAX_PKT);
	memcpy(n->config + NET_CFG_MAC, mac, 6);
	virtio_put_le16(n->config + NET_CFG_MAX_PAIRS, 1);
	n->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->kick_fd < 0) {
		kv_err_make(err, errno, "virtio-net: eventfd");
		return NULL;
	}
	if (evloop_add(n->loop, n->kick_fd, EPOLLIN, net_on_kick, n) < 0) {
		kv_err_make(err, errno, "virtio-net: add to the event loop");
		close(steal_fd(n->kick_fd));
		n->kick_fd = -1;
		return NULL;
	}
	virtio_mmio_init(&n->mmio, env, "virtio-net", &net_ops, n->config);
	return &steal_ptr(n)->mmio;
}

/* ------------------------------------------------------------- control */

static int net_tap_check(int fd, struct kv_err **err)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return kv_err_plain(err, EINVAL, "virtio-net: the fd is not a tap (TUNGETIFF: %s)",
				    strerror(errno));
	const short want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if ((ifr.ifr_flags & (want | IFF_TUN)) != want)
		return kv_err_plain(err, EINVAL,
				    "virtio-net: %.*s is not a tap opened with "
				    "IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (flags %#x)",
				    IFNAMSIZ, ifr.ifr_name,
				    (unsigned)(unsigned short)ifr.ifr_flags);
	int sz = VIRTIO_NET_HDR_SIZE;
	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
		return kv_err_make(err, errno, "virtio-net: %.*s: TUNSETVNETHDRSZ", IFNAMSIZ,
				   ifr.ifr_name);
	return 0;
}

static int net_attach_locked(struct virtio_net *n, int fd, struct kv_err **err)
{
	if (n->tap_fd >= 0)
		return kv_err_plain(err, EBUSY,
				    "virtio-net: a tap is attached already (detach it first)");
	if (!n->fake_tap && net_tap_check(fd, err) < 0)
		return -1;
	cleanup_close int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int fl = own < 0 ? -1 : fcntl(own, F_GETFL);
	if (fl < 0 || fcntl(own, F_SETFL, fl | O_NONBLOCK) < 0)
		return kv_err_make(err, errno, "virtio-net: tap fd");
	/* Polled once the guest has rx buffers (net_rx_run). */
	if (evloop_add(n->loop, own, 0, net_on_tap, n) < 0)
		return kv_err_make(err, errno, "virtio-net: add the tap to the event loop");
	n->tap_fd = steal_fd(own);
	n->polling = false;
	n->rx_len = 0;
	n->offloads = 0;
	net_link_set(n, true);
	if (virtio_driver_ok(&n->mmio)) {
		net_offloads_set(n, virtio_net_tun_offloads(n->mmio.driver_features));
		net_rx_run(n);
	}
	return 0;
}

int virtio_net_attach(struct virtio_mmio *dev, int fd, struct kv_err **err)
{
	if (dev->ops->device_id != VIRTIO_ID_NET)
		return kv_err_plain(err, EINVAL, "%s: not a virtio-net device", dev->name);
	virtio_mmio_lock(dev);
	int r = net_attach_locked(to_net(dev), fd, err);
	virtio_mmio_unlock(dev);
	return r;
}

bool virtio_net_detach(struct virtio_mmio *dev)
{
	if (dev->ops->device_id != VIRTIO_ID_NET)
		return false;
	struct virtio_net *n = to_net(dev);
	virtio_mmio_lock(dev);
	bool was = n->tap_fd >= 0;
	net_detach_locked(n);
	virtio_mmio_unlock(dev);
	return was;
}

bool virtio_net_attached(struct virtio_mmio *dev)
{
	if (dev->ops->device_id != VIRTIO_ID_NET)
		return false;
	virtio_mmio_lock(dev);
	bool a = to_net(dev)->tap_fd >= 0;
	virtio_mmio_unlock(dev);
	return a;
}

void virtio_net_stats_get(struct virtio_mmio *dev, struct virtio_net_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (dev->ops->device_id != VIRTIO_ID_NET)
		return;
	virtio_mmio_lock(dev);
	*st = to_net(dev)->stats;
	st->offloads = to_net(dev)->offloads;
	st->polling = to_net(dev)->polling;
	virtio_mmio_unlock(dev);
}
