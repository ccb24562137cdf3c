/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (device id 19, virtio 1.2 section 5.10) in user space, with
 * the hybrid Unix-socket scheme of Firecracker and Kata (architecture.md):
 *
 *  - host -> guest: a host process connects to the listening socket `uds`
 *    (created here), writes "CONNECT <port>\n"; the device sends the guest a
 *    REQUEST from (host CID 2, a fresh local port) to (guest CID, port). On
 *    the guest's RESPONSE it writes "OK <local port>\n" to the host socket and
 *    the stream carries raw bytes both ways; on RST it closes the host socket.
 *  - guest -> host port P: on the guest's REQUEST the device connects to the
 *    Unix socket "<uds>_<P>" and answers RESPONSE, or RST when that fails.
 *
 * Queues: rx (0, device -> guest packets), tx (1, guest -> device), event
 * (2, TRANSPORT_RESET after a snapshot restore). Packets are a 44-byte header
 * and an optional payload.
 *
 * Flow control (spec 5.10.6.3): each side advertises buf_alloc and fwd_cnt
 * in every header. We never send the guest more than
 * peer_buf_alloc - (rx_cnt - peer_fwd_cnt); when that credit is 0 we stop
 * reading the host socket (EPOLLIN off), ask once with CREDIT_REQUEST and
 * resume on the next header from the guest. Towards the host we advertise
 * VSOCK_CONN_BUF: bytes the host socket does not take at once wait in a
 * per-connection ring of that size; a guest sending past its credit is a
 * protocol violation and gets a RST. We send CREDIT_UPDATE once
 * VSOCK_CREDIT_THRESHOLD bytes were forwarded since the last report (or
 * when asked): since a Linux guest uses up its credit before it blocks, that
 * always wakes it.
 *
 * Threading: all host sockets live in a private epoll set whose fd is the
 * only one handed to the VMM event loop; its callback drains the set under
 * the device lock. Events name connections by slot and generation, never by
 * pointer, so an event for a connection closed meanwhile is dropped safely,
 * whichever thread closed it (a vCPU on a tx kick, or the loop).
 */
#include "vmm/virtio/vsock.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#define VSOCK_EP_BATCH 64

static struct virtio_vsock *to_vsock(struct virtio_mmio *dev)
{
	return (struct virtio_vsock *)dev;
}

/* ------------------------------------------------------------ headers */

static void vsock_hdr_read(const uint8_t in[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	h->src_cid = virtio_get_le64(in);
	h->dst_cid = virtio_get_le64(in + 8);
	h->src_port = virtio_get_le32(in + 16);
	h->dst_port = virtio_get_le32(in + 20);
	h->len = virtio_get_le32(in + 24);
	h->type = virtio_get_le16(in + 28);
	h->op = virtio_get_le16(in + 30);
	h->flags = virtio_get_le32(in + 32);
	h->buf_alloc = virtio_get_le32(in + 36);
	h->fwd_cnt = virtio_get_le32(in + 40);
}

void vsock_hdr_write(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE])
{
	virtio_put_le64(out, h->src_cid);
	virtio_put_le64(out + 8, h->dst_cid);
	virtio_put_le32(out + 16, h->src_port);
	virtio_put_le32(out + 20, h->dst_port);
	virtio_put_le32(out + 24, h->len);
	virtio_put_le16(out + 28, h->type);
	virtio_put_le16(out + 30, h->op);
	virtio_put_le32(out + 32, h->flags);
	virtio_put_le32(out + 36, h->buf_alloc);
	virtio_put_le32(out + 40, h->fwd_cnt);
}

/* ---------------------------------------------------------- scheduling */

/* A RST for a connection that no longer exists (or never did) on our side. */
void vsock_queue_rst(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	if (v->rst_n == VSOCK_RST_QUEUE) {
		virtio_warn(&v->mmio, "RST queue full; dropping the oldest");
		v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
		v->rst_n--;
	}
	unsigned i = (v->rst_head + v->rst_n++) % VSOCK_RST_QUEUE;
	v->rst[i].local = local;
	v->rst[i].peer = peer;
}

void vsock_schedule(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->in_rx_list || !vsock_conn_wants_rx(c))
		return;
	c->in_rx_list = true;
	c->rx_next = NULL;
	if (v->rx_tail)
		v->rx_tail->rx_next = c;
	else
		v->rx_head = c;
	v->rx_tail = c;
}

void vsock_unschedule(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (!c->in_rx_list)
		return;
	struct vsock_conn *prev = NULL;
	for (struct vsock_conn *i = v->rx_head; i; prev = i, i = i->rx_next) {
		if (i != c)
			continue;
		if (prev)
			prev->rx_next = c->rx_next;
		else
			v->rx_head = c->rx_next;
		if (v->rx_tail == c)
			v->rx_tail = prev;
		break;
	}
	c->in_rx_list = false;
	c->rx_next = NULL;
}

static struct vsock_conn *vsock_rx_next(struct virtio_vsock *v)
{
	struct vsock_conn *c = v->rx_head;
	if (!c)
		return NULL;
	v->rx_head = c->rx_next;
	if (!v->rx_head)
		v->rx_tail = NULL;
	c->in_rx_list = false;
	c->rx_next = NULL;
	return c;
}

static void vsock_rst_write(struct virtio_vsock *v, const struct vq_chain *ch)
{
	struct vsock_hdr h = {
	    .src_cid = VSOCK_HOST_CID,
	    .dst_cid = v->guest_cid,
	    .src_port = v->rst[v->rst_head].local,
	    .dst_port = v->rst[v->rst_head].peer,
	    .type = VSOCK_TYPE_STREAM,
	    .op = VSOCK_OP_RST,
	};
	uint8_t raw[VSOCK_HDR_SIZE];
	vsock_hdr_write(&h, raw);
	vq_chain_write(ch, 0, raw, sizeof(raw));
	v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
	v->rst_n--;
}

/* Move packets to the guest while it has rx buffers: RSTs first, then connections in turn. */
static void vsock_rx_flush(struct virtio_vsock *v)
{
	struct virtio_mmio *dev = &v->mmio;
	struct vq_chain ch;
	unsigned idle = 0;
	while ((v->rst_n || v->rx_head) && idle <= v->nconns) {
		if (!virtio_queue_pop(dev, VSOCK_QUEUE_RX, &ch))
			break;
		if (ch.in_len < VSOCK_HDR_SIZE) {
			virtio_warn(dev, "rx buffer of %llu bytes", (unsigned long long)ch.in_len);
			virtio_queue_push(dev, VSOCK_QUEUE_RX, ch.head, 0);
			continue;
		}
		if (v->rst_n) {
			vsock_rst_write(v, &ch);
			virtio_queue_push(dev, VSOCK_QUEUE_RX, ch.head, VSOCK_HDR_SIZE);
			continue;
		}
		uint32_t used = 0;
		/* vsock_conn_rx() may kill the connection, or schedule it again. */
		if (vsock_conn_rx(v, vsock_rx_next(v), &ch, &used)) {
			virtio_queue_push(dev, VSOCK_QUEUE_RX, ch.head, used);
			idle = 0;
		} else {
			vq_undo_pop(&dev->vq[VSOCK_QUEUE_RX]);
			idle++;
		}
	}
	virtio_queue_signal(dev, VSOCK_QUEUE_RX);
}

/* ------------------------------------------------------------- tx / event */

static void vsock_tx_packet(struct virtio_vsock *v, const struct vq_chain *ch)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr h;
	if (vq_chain_read(ch, 0, raw, sizeof(raw)) != sizeof(raw)) {
		virtio_warn(&v->mmio, "tx packet of %llu bytes", (unsigned long long)ch->out_len);
		return;
	}
	vsock_hdr_read(raw, &h);
	if (h.src_cid != v->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
		virtio_warn(&v->mmio, "tx packet from cid %llu to cid %llu dropped",
			    (unsigned long long)h.src_cid, (unsigned long long)h.dst_cid);
		return;
	}
	struct vsock_conn *c = vsock_conn_find(v, h.dst_port, h.src_port);
	bool bad_len = h.len > ch->out_len - VSOCK_HDR_SIZE || h.len > VSOCK_MAX_PKT ||
		       (h.len && h.op != VSOCK_OP_RW);
	if (h.type != VSOCK_TYPE_STREAM || bad_len) {
		virtio_warn(&v->mmio, "port %u->%u: bad packet (type %u, op %u, len %u)",
			    h.src_port, h.dst_port, h.type, h.op, h.len);
		if (c)
			vsock_conn_kill(v, c, true);
		else if (h.op != VSOCK_OP_RST)
			vsock_queue_rst(v, h.dst_port, h.src_port);
		return;
	}
	if (c)
		vsock_conn_from_guest(v, c, &h, ch);
	else if (h.op == VSOCK_OP_REQUEST)
		vsock_conn_guest_request(v, &h);
	else if (h.op != VSOCK_OP_RST)
		vsock_queue_rst(v, h.dst_port, h.src_port);
}

static void vsock_tx_process(struct virtio_vsock *v)
{
	struct vq_chain ch;
	while (virtio_queue_pop(&v->mmio, VSOCK_QUEUE_TX, &ch)) {
		vsock_tx_packet(v, &ch);
		virtio_queue_push(&v->mmio, VSOCK_QUEUE_TX, ch.head, 0);
	}
	virtio_queue_signal(&v->mmio, VSOCK_QUEUE_TX);
}

static void vsock_event_flush(struct virtio_vsock *v)
{
	struct vq_chain ch;
	while (v->event_pending && virtio_queue_pop(&v->mmio, VSOCK_QUEUE_EVENT, &ch)) {
		uint8_t ev[4];
		virtio_put_le32(ev, VSOCK_EVENT_TRANSPORT_RESET);
		size_t n = vq_chain_write(&ch, 0, ev, sizeof(ev));
		virtio_queue_push(&v->mmio, VSOCK_QUEUE_EVENT, ch.head, n);
		if (n == sizeof(ev))
			v->event_pending = false;
		else
			virtio_warn(&v->mmio, "event buffer of %llu bytes",
				    (unsigned long long)ch.in_len);
	}
	virtio_queue_signal(&v->mmio, VSOCK_QUEUE_EVENT);
}

static void vsock_notify(struct virtio_mmio *dev, unsigned queue)
{
	struct virtio_vsock *v = to_vsock(dev);
	if (queue == VSOCK_QUEUE_TX)
		vsock_tx_process(v);
	if (queue == VSOCK_QUEUE_EVENT)
		vsock_event_flush(v);
	vsock_rx_flush(v);
}

static void vsock_activate(struct virtio_mmio *dev)
{
	struct virtio_vsock *v = to_vsock(dev);
	vsock_event_flush(v);
	vsock_rx_flush(v);
}

/*
 * Device reset (the driver wrote 0 to Status, as it does when it probes):
 * connections the guest knew are gone; host connections whose REQUEST never
 * reached the guest survive and are offered to the new driver.
 */
static void vsock_reset(struct virtio_mmio *dev)
{
	struct virtio_vsock *v = to_vsock(dev);
	vsock_conn_kill_all(v, true);
	v->rst_n = v->rst_head = 0;
	v->event_pending = false;
}

/* ------------------------------------------------------------ host side */

/* A periodic tick while connections have deadlines or the listener is paused. */
static void vsock_timer_arm(struct virtio_vsock *v)
{
	if (v->timer_armed)
		return;
	uint64_t tick_ms = v->timeout_scale_ms ? 10 : 1000;
	struct timespec t = {.tv_sec = tick_ms / 1000, .tv_nsec = (tick_ms % 1000) * 1000000};
	struct itimerspec its = {.it_interval = t, .it_value = t};
	if (timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
		v->timer_armed = true;
}

void vsock_set_deadline(struct virtio_vsock *v, struct vsock_conn *c, unsigned ms)
{
	c->deadline_ms = kv_now_ms() + (v->timeout_scale_ms ? v->timeout_scale_ms : ms);
	vsock_timer_arm(v);
}

static int vsock_listen_events(struct virtio_vsock *v, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = VSOCK_EP_LISTEN};
	return epoll_ctl(v->epfd, EPOLL_CTL_MOD, v->listen_fd, &ev);
}

void vsock_listen_pause(struct virtio_vsock *v)
{
	if (v->accepting && vsock_listen_events(v, 0) == 0)
		v->accepting = false;
	vsock_timer_arm(v);
}

void vsock_listen_resume(struct virtio_vsock *v)
{
	if (v->accepting || v->listen_fd < 0 || v->nconns >= VSOCK_MAX_CONNS)
		return;
	if (vsock_listen_events(v, EPOLLIN) == 0)
		v->accepting = true;
}

static void vsock_timer(struct virtio_vsock *v)
{
	uint64_t ticks;
	if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	vsock_conn_timeouts(v);
	vsock_listen_resume(v);
	if (!v->accepting)
		return;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conns[i] && v->conns[i]->deadline_ms)
			return;
	struct itimerspec off = {0};
	timerfd_settime(v->timer_fd, 0, &off, NULL);
	v->timer_armed = false;
}

static void vsock_dispatch(struct virtio_vsock *v, uint64_t data, uint32_t events)
{
	if (data == VSOCK_EP_LISTEN) {
		vsock_accept(v);
	} else if (data == VSOCK_EP_TIMER) {
		vsock_timer(v);
	} else {
		uint32_t slot = (uint32_t)data, gen = data >> 32;
		struct vsock_conn *c = slot < VSOCK_MAX_CONNS ? v->conns[slot] : NULL;
		if (c && c->gen == gen)
			vsock_conn_host_event(v, c, events);
	}
}

/* The event loop says our epoll set has events: drain it under the device lock. */
static void vsock_on_epoll(void *ctx, uint32_t events)
{
	struct virtio_vsock *v = ctx;
	struct epoll_event ev[VSOCK_EP_BATCH];
	virtio_mmio_lock(&v->mmio);
	int n = epoll_wait(v->epfd, ev, VSOCK_EP_BATCH, 0);
	for (int i = 0; i < n; i++)
		vsock_dispatch(v, ev[i].data.u64, ev[i].events);
	vsock_rx_flush(v);
	virtio_mmio_unlock(&v->mmio);
}

static int vsock_listen(struct virtio_vsock *v, struct kv_err **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	if (strlen(v->uds) >= sizeof(sa.sun_path))
		return kv_err_plain(err, ENAMETOOLONG,
				    "virtio-vsock: socket path %s is longer than %zu bytes", v->uds,
				    sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, v->uds);
	/* A socket left by a VMM that died is stale; anything else is not ours to remove. */
	if (lstat(v->uds, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kv_err_plain(err, EEXIST,
					    "virtio-vsock: %s exists and is not a socket", v->uds);
		unlink(v->uds);
	}
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_fd < 0)
		return kv_err_make(err, errno, "virtio-vsock: socket");
	if (bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kv_err_make(err, errno, "virtio-vsock: bind %s", v->uds);
	v->bound = true;
	if (listen(v->listen_fd, SOMAXCONN) < 0)
		return kv_err_make(err, errno, "virtio-vsock: listen %s", v->uds);
	v->accepting = true;
	return 0;
}

static int vsock_epoll_setup(struct virtio_vsock *v, struct kv_err **err)
{
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (v->epfd < 0)
		return kv_err_make(err, errno, "virtio-vsock: epoll_create1");
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->timer_fd < 0)
		return kv_err_make(err, errno, "virtio-vsock: timerfd_create");
	struct epoll_event le = {.events = EPOLLIN, .data.u64 = VSOCK_EP_LISTEN};
	struct epoll_event te = {.events = EPOLLIN, .data.u64 = VSOCK_EP_TIMER};
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &le) < 0 ||
	    epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->timer_fd, &te) < 0)
		return kv_err_make(err, errno, "virtio-vsock: epoll_ctl");
	if (evloop_add(v->loop, v->epfd, EPOLLIN, vsock_on_epoll, v) < 0)
		return kv_err_make(err, errno, "virtio-vsock: add to the event loop");
	return 0;
}

static void vsock_free(struct virtio_mmio *dev)
{
	struct virtio_vsock *v = to_vsock(dev);
	vsock_conn_kill_all(v, false);
	if (v->epfd >= 0) {
		if (v->loop)
			evloop_del(v->loop, v->epfd);
		close(v->epfd);
	}
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->bound)
		unlink(v->uds);
	free(v->uds);
	free(v->dial);
	free(v);
}

static void vsock_free_partial(struct virtio_vsock **v)
{
	if (*v)
		vsock_free(&(*v)->mmio);
}

static const struct virtio_dev_ops vsock_ops = {
    .device_id = VIRTIO_ID_VSOCK,
    .nqueues = 3,
    .config_size = sizeof(((struct virtio_vsock *)0)->config),
    .notify = vsock_notify,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .free = vsock_free,
};

struct virtio_mmio *virtio_vsock_new(const struct virtio_env *env, uint64_t guest_cid,
				     const char *uds, struct kv_err **err)
{
	/* 0, 1 and 2 are reserved (hypervisor, local, host); -1U is VMADDR_CID_ANY. */
	if (guest_cid < 3 || guest_cid >= UINT32_MAX) {
		kv_err_plain(err, EINVAL, "virtio-vsock: guest cid %llu out of range",
			     (unsigned long long)guest_cid);
		return NULL;
	}
	if (!env->loop) {
		kv_err_plain(err, EINVAL, "virtio-vsock: no event loop");
		return NULL;
	}
	__attribute__((cleanup(vsock_free_partial))) struct virtio_vsock *v =
	    kv_malloc0(sizeof(*v));
	v->listen_fd = v->epfd = v->timer_fd = -1;
	v->guest_cid = guest_cid;
	v->uds = kv_strdup(uds);
	v->loop = env->loop;
	v->timeout_scale_ms = env->timeout_ms;
	v->next_local_port = VSOCK_LOCAL_PORT_BASE;
	virtio_put_le64(v->config, guest_cid);
	if (vsock_listen(v, err) < 0 || vsock_epoll_setup(v, err) < 0)
		return NULL;
	virtio_mmio_init(&v->mmio, env, "virtio-vsock", &vsock_ops, v->config);
	return &steal_ptr(v)->mmio;
}

void virtio_vsock_jailed(struct virtio_mmio *dev, const char *dir)
{
	struct virtio_vsock *v = to_vsock(dev);
	const char *slash = strrchr(v->uds, '/');
	v->dial = kv_asprintf("%s/%s", dir, slash ? slash + 1 : v->uds);
	/* Its directory is out of reach (and not ours to write): its maker removes it. */
	v->bound = false;
}

int virtio_vsock_reset_transport(struct virtio_mmio *dev, struct kv_err **err)
{
	if (dev->ops->device_id != VIRTIO_ID_VSOCK)
		return kv_err_plain(err, EINVAL, "%s: not a virtio-vsock device", dev->name);
	struct virtio_vsock *v = to_vsock(dev);
	virtio_mmio_lock(dev);
	/* The event tells the guest every connection is gone: no RSTs. */
	vsock_conn_kill_all(v, true);
	v->rst_n = v->rst_head = 0;
	v->event_pending = true;
	vsock_event_flush(v);
	vsock_rx_flush(v);
	virtio_mmio_unlock(dev);
	return 0;
}
