/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport, version 2 (virtio 1.2 section 4.2), as a pure
 * read/write state machine: the bus hands it window-relative accesses, it
 * answers from its registers and calls the device's ops. Guest-supplied
 * selectors (queue, feature page) are validated here, once; Status follows
 * the explicit transition table below. Only VIRTIO_F_VERSION_1 drivers are
 * accepted (no legacy interface).
 */
#include "vmm/virtio/virtio_dev.h"

#include <string.h>

/* Common features every device offers (see queue.h for EVENT_IDX). */
#define VIRTIO_COMMON_FEATURES                                                                     \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                    \
	 (1ull << VIRTIO_RING_F_EVENT_IDX))

static uint64_t virtio_offered(const struct virtio_mmio *dev)
{
	return dev->ops->features | VIRTIO_COMMON_FEATURES;
}

void virtio_mmio_init(struct virtio_mmio *dev, const struct virtio_env *env, const char *name,
		      const struct virtio_dev_ops *ops, uint8_t *config)
{
	pthread_mutex_init(&dev->lock, NULL);
	dev->name = name;
	dev->ops = ops;
	dev->env = *env;
	dev->config = config;
	dev->rl = (struct kv_ratelimit)KV_RATELIMIT_INIT(5000, 10);
	dev->rl_debug = (struct kv_ratelimit)KV_RATELIMIT_INIT(1000, 50);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		dev->vq[i].gm = env->gm;
}

KV_PRINTF(4, 0)
static void virtio_vlog(struct virtio_mmio *dev, enum kv_log_level level, struct kv_ratelimit *rl,
			const char *fmt, va_list ap)
{
	if (!kv_log_enabled(level) || !kv_ratelimit_ok(rl))
		return;
	char buf[256];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	kv_log(level, "%s: %s", dev->name, buf);
}

void virtio_warn(struct virtio_mmio *dev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	virtio_vlog(dev, KV_LOG_WARN, &dev->rl, fmt, ap);
	va_end(ap);
}

void virtio_debug(struct virtio_mmio *dev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	virtio_vlog(dev, KV_LOG_DEBUG, &dev->rl_debug, fmt, ap);
	va_end(ap);
}

static void virtio_raise(struct virtio_mmio *dev, uint32_t bit)
{
	dev->isr |= bit;
	if (dev->env.irq.raise)
		dev->env.irq.raise(dev->env.irq.ctx, dev->env.gsi);
}

void virtio_needs_reset(struct virtio_mmio *dev)
{
	if (dev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	virtio_warn(dev, "driver corrupted a virtqueue; device needs reset");
	dev->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (dev->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_raise(dev, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_config_changed(struct virtio_mmio *dev)
{
	dev->config_gen++;
	if (virtio_driver_ok(dev))
		virtio_raise(dev, VIRTIO_MMIO_INT_CONFIG);
}

bool virtio_queue_pop(struct virtio_mmio *dev, unsigned queue, struct vq_chain *chain)
{
	struct virtq *vq = &dev->vq[queue];
	if (!virtio_driver_ok(dev))
		return false;
	for (;;) {
		switch (vq_pop(vq, chain)) {
		case VQ_POP_OK: return true;
		case VQ_POP_EMPTY: return false;
		case VQ_POP_BAD_CHAIN:
			virtio_warn(dev, "queue %u: malformed descriptor chain at head %u", queue,
				    chain->head);
			virtio_queue_push(dev, queue, chain->head, 0);
			continue;
		case VQ_POP_BROKEN: virtio_needs_reset(dev); return false;
		}
	}
}

void virtio_queue_push(struct virtio_mmio *dev, unsigned queue, uint16_t head, uint32_t len)
{
	vq_push(&dev->vq[queue], head, len);
	dev->signal_pending |= 1u << queue;
}

void virtio_queue_signal(struct virtio_mmio *dev, unsigned queue)
{
	if (!(dev->signal_pending & (1u << queue)))
		return;
	dev->signal_pending &= ~(1u << queue);
	if (virtio_driver_ok(dev) && vq_should_notify(&dev->vq[queue]))
		virtio_raise(dev, VIRTIO_MMIO_INT_VRING);
}

/* ------------------------------------------------------------ status */

/* Each bit the driver may set, and what must already be set (spec 3.1.1). */
static const struct {
	uint32_t bit, requires;
} status_table[] = {
    {VIRTIO_STATUS_ACKNOWLEDGE, 0},
    {VIRTIO_STATUS_DRIVER, VIRTIO_STATUS_ACKNOWLEDGE},
    {VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_DRIVER},
    {VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_FEATURES_OK},
    {VIRTIO_STATUS_FAILED, 0},
};

static void virtio_reset(struct virtio_mmio *dev)
{
	dev->status = 0;
	dev->isr = 0;
	dev->driver_features = 0;
	dev->driver_features_bad = false;
	dev->dev_feat_sel = dev->drv_feat_sel = dev->queue_sel = dev->shm_sel = 0;
	dev->signal_pending = 0;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&dev->vq[i]);
	if (dev->ops->reset)
		dev->ops->reset(dev);
}

static bool virtio_features_acceptable(struct virtio_mmio *dev)
{
	if (dev->driver_features_bad || (dev->driver_features & ~virtio_offered(dev))) {
		virtio_warn(dev, "driver accepted features not offered (%#llx)",
			    (unsigned long long)dev->driver_features);
		return false;
	}
	if (!virtio_has_feature(dev, VIRTIO_F_VERSION_1)) {
		virtio_warn(dev, "legacy driver (no VIRTIO_F_VERSION_1) refused");
		return false;
	}
	return true;
}

static void virtio_activate(struct virtio_mmio *dev)
{
	bool event_idx = virtio_has_feature(dev, VIRTIO_RING_F_EVENT_IDX);
	for (unsigned i = 0; i < dev->ops->nqueues; i++)
		dev->vq[i].event_idx = event_idx;
	if (dev->ops->activate)
		dev->ops->activate(dev);
}

static void virtio_status_write(struct virtio_mmio *dev, uint32_t v)
{
	if (v == 0) {
		virtio_reset(dev);
		return;
	}
	/* DEVICE_NEEDS_RESET belongs to the device: drivers echo it back, never set it. */
	uint32_t old = dev->status, keep = old & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	v &= ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	uint32_t set = v & ~old, have = old & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((v & have) != have) {
		virtio_warn(dev, "status %#x -> %#x clears bits without reset", old, v);
		return;
	}
	uint32_t known = 0;
	for (unsigned i = 0; i < KV_ARRAY_SIZE(status_table); i++) {
		known |= status_table[i].bit;
		if ((set & status_table[i].bit) && (status_table[i].requires & ~v)) {
			virtio_warn(dev, "status %#x -> %#x out of order", old, v);
			return;
		}
	}
	if (set & ~known) {
		virtio_warn(dev, "status %#x: unknown bits", v);
		return;
	}
	if ((set & VIRTIO_STATUS_FEATURES_OK) && !virtio_features_acceptable(dev)) {
		/* Spec 3.1.1 step 6: the driver re-reads Status and sees FEATURES_OK missing. */
		v &= ~(VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
		set &= v;
	}
	dev->status = v | keep;
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !(dev->status & VIRTIO_STATUS_FAILED))
		virtio_activate(dev);
}

/* ------------------------------------------------------------ queues */

/* The selected queue, or NULL: QueueSel is validated here and nowhere else. */
static struct virtq *virtio_sel_vq(struct virtio_mmio *dev)
{
	return dev->queue_sel < dev->ops->nqueues ? &dev->vq[dev->queue_sel] : NULL;
}

/* Queue registers may change after FEATURES_OK, before DRIVER_OK, while not ready. */
static struct virtq *virtio_sel_vq_writable(struct virtio_mmio *dev, uint64_t off)
{
	struct virtq *vq = virtio_sel_vq(dev);
	uint32_t st = dev->status;
	if (!vq) {
		virtio_warn(dev, "write %#llx: no queue %u", (unsigned long long)off,
			    dev->queue_sel);
		return NULL;
	}
	if (!(st & VIRTIO_STATUS_FEATURES_OK) || (st & VIRTIO_STATUS_DRIVER_OK) || vq->ready ||
	    (st & VIRTIO_STATUS_FAILED)) {
		virtio_warn(dev, "write %#llx: queue %u not configurable now (status %#x)",
			    (unsigned long long)off, dev->queue_sel, st);
		return NULL;
	}
	return vq;
}

static void set_lo(uint64_t *r, uint32_t v)
{
	*r = (*r & ~0xffffffffull) | v;
}
static void set_hi(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffull) | (uint64_t)v << 32;
}

static void virtio_queue_ready(struct virtio_mmio *dev, uint32_t v)
{
	struct virtq *vq = virtio_sel_vq(dev);
	if (!vq) {
		virtio_warn(dev, "QueueReady: no queue %u", dev->queue_sel);
		return;
	}
	if (v == 0) {
		vq->ready = false;
		return;
	}
	if (!(vq = virtio_sel_vq_writable(dev, VIRTIO_MMIO_QUEUE_READY)))
		return;
	if (!vq_layout_ok(dev->env.gm, vq->size, vq->desc_gpa, vq->avail_gpa, vq->used_gpa)) {
		virtio_warn(dev, "queue %u: size %u or rings (%#llx %#llx %#llx) invalid",
			    dev->queue_sel, vq->size, (unsigned long long)vq->desc_gpa,
			    (unsigned long long)vq->avail_gpa, (unsigned long long)vq->used_gpa);
		return;
	}
	vq->last_avail = vq->used_idx = 0;
	vq->signalled_used_valid = false;
	vq->broken = false;
	vq->ready = true;
}

static void virtio_queue_write(struct virtio_mmio *dev, uint64_t off, uint32_t v)
{
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		virtio_queue_ready(dev, v);
		return;
	}
	struct virtq *vq = virtio_sel_vq_writable(dev, off);
	if (!vq)
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		if (v == 0 || v > VQ_MAX_SIZE || (v & (v - 1))) {
			virtio_warn(dev, "queue %u: bad QueueNum %u", dev->queue_sel, v);
			v = 0;
		}
		vq->size = v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: set_lo(&vq->desc_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_hi(&vq->desc_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: set_lo(&vq->avail_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: set_hi(&vq->avail_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_USED_LOW: set_lo(&vq->used_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: set_hi(&vq->used_gpa, v); break;
	}
}

static void virtio_kick(struct virtio_mmio *dev, uint32_t queue)
{
	if (queue >= dev->ops->nqueues) {
		virtio_warn(dev, "notify for queue %u (has %u)", queue, dev->ops->nqueues);
		return;
	}
	if (!virtio_driver_ok(dev) || !dev->vq[queue].ready)
		return;
	dev->ops->notify(dev, queue);
}

/* --------------------------------------------------------- registers */

static uint32_t virtio_queue_read(struct virtio_mmio *dev, uint64_t off)
{
	struct virtq *vq = virtio_sel_vq(dev);
	if (!vq)
		return 0; /* QueueNumMax 0: "no such queue" to the driver */
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return VQ_MAX_SIZE;
	case VIRTIO_MMIO_QUEUE_NUM: return vq->size;
	case VIRTIO_MMIO_QUEUE_READY: return vq->ready;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return (uint32_t)vq->desc_gpa;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return vq->desc_gpa >> 32;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: return (uint32_t)vq->avail_gpa;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: return vq->avail_gpa >> 32;
	case VIRTIO_MMIO_QUEUE_USED_LOW: return (uint32_t)vq->used_gpa;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: return vq->used_gpa >> 32;
	}
	return 0;
}

/* A region the device does not have reads as length (and base) -1 (spec 4.2.2). */
static uint32_t virtio_shm_read(struct virtio_mmio *dev, uint64_t off)
{
	uint64_t base, len;
	if (!dev->ops->shm_region || !dev->ops->shm_region(dev, dev->shm_sel, &base, &len))
		base = len = ~0ull;
	switch (off) {
	case VIRTIO_MMIO_SHM_LEN_LOW: return (uint32_t)len;
	case VIRTIO_MMIO_SHM_LEN_HIGH: return len >> 32;
	case VIRTIO_MMIO_SHM_BASE_LOW: return (uint32_t)base;
	case VIRTIO_MMIO_SHM_BASE_HIGH: return base >> 32;
	}
	return 0;
}

static uint32_t virtio_reg_read(struct virtio_mmio *dev, uint64_t off)
{
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_2;
	case VIRTIO_MMIO_DEVICE_ID: return dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return dev->dev_feat_sel < 2 ? virtio_offered(dev) >> (32 * dev->dev_feat_sel) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW ... VIRTIO_MMIO_QUEUE_USED_HIGH:
		return virtio_queue_read(dev, off);
	case VIRTIO_MMIO_INTERRUPT_STATUS: return dev->isr;
	case VIRTIO_MMIO_STATUS: return dev->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH: return virtio_shm_read(dev, off);
	case VIRTIO_MMIO_CONFIG_GENERATION: return dev->config_gen;
	}
	return 0;
}

static void virtio_driver_features_write(struct virtio_mmio *dev, uint32_t v)
{
	if (!(dev->status & VIRTIO_STATUS_DRIVER) || (dev->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_warn(dev, "DriverFeatures written in status %#x", dev->status);
		return;
	}
	if (dev->drv_feat_sel == 0)
		set_lo(&dev->driver_features, v);
	else if (dev->drv_feat_sel == 1)
		set_hi(&dev->driver_features, v);
	else if (v)
		dev->driver_features_bad = true;
}

static void virtio_reg_write(struct virtio_mmio *dev, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: dev->dev_feat_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES: virtio_driver_features_write(dev, v); break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: dev->drv_feat_sel = v; break;
	case VIRTIO_MMIO_QUEUE_SEL: dev->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW ... VIRTIO_MMIO_QUEUE_USED_HIGH:
		virtio_queue_write(dev, off, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY: virtio_kick(dev, v); break;
	case VIRTIO_MMIO_INTERRUPT_ACK: dev->isr &= ~v; break;
	case VIRTIO_MMIO_STATUS: virtio_status_write(dev, v); break;
	case VIRTIO_MMIO_SHM_SEL: dev->shm_sel = v; break;
	default:
		virtio_warn(dev, "write to read-only or unknown register %#llx",
			    (unsigned long long)off);
	}
}

static bool virtio_config_range(struct virtio_mmio *dev, uint64_t off, unsigned len)
{
	uint64_t c = off - VIRTIO_MMIO_CONFIG;
	return (len == 1 || len == 2 || len == 4 || len == 8) && c <= dev->ops->config_size &&
	       len <= dev->ops->config_size - c;
}

static void virtio_mmio_read(void *ctx, uint64_t off, void *data, unsigned len)
{
	struct virtio_mmio *dev = ctx;
	memset(data, 0, len);
	virtio_mmio_lock(dev);
	if (off >= VIRTIO_MMIO_CONFIG) {
		if (virtio_config_range(dev, off, len))
			memcpy(data, dev->config + (off - VIRTIO_MMIO_CONFIG), len);
		else
			virtio_warn(dev, "config read %#llx/%u out of range",
				    (unsigned long long)off, len);
	} else if (len != 4 || (off & 3)) {
		virtio_warn(dev, "register read %#llx/%u: not 32-bit", (unsigned long long)off,
			    len);
	} else {
		uint32_t v = htole32(virtio_reg_read(dev, off));
		memcpy(data, &v, 4);
	}
	virtio_mmio_unlock(dev);
}

static void virtio_mmio_write(void *ctx, uint64_t off, const void *data, unsigned len)
{
	struct virtio_mmio *dev = ctx;
	virtio_mmio_lock(dev);
	if (off >= VIRTIO_MMIO_CONFIG) {
		/* No device here has a writable config field. */
		virtio_warn(dev, "config write %#llx/%u ignored", (unsigned long long)off, len);
	} else if (len != 4 || (off & 3)) {
		virtio_warn(dev, "register write %#llx/%u: not 32-bit", (unsigned long long)off,
			    len);
	} else {
		uint32_t v;
		memcpy(&v, data, 4);
		virtio_reg_write(dev, off, le32toh(v));
	}
	virtio_mmio_unlock(dev);
}

struct bus_dev virtio_mmio_bus_dev(struct virtio_mmio *dev, uint64_t base)
{
	return (struct bus_dev){
	    .name = dev->name,
	    .base = base,
	    .size = VIRTIO_MMIO_WINDOW,
	    .read = virtio_mmio_read,
	    .write = virtio_mmio_write,
	    .ctx = dev,
	};
}

void virtio_mmio_notify(struct virtio_mmio *dev, unsigned queue)
{
	virtio_mmio_lock(dev);
	virtio_kick(dev, queue);
	virtio_mmio_unlock(dev);
}

const char *virtio_mmio_name(const struct virtio_mmio *dev)
{
	return dev->name;
}
uint32_t virtio_mmio_device_id(const struct virtio_mmio *dev)
{
	return dev->ops->device_id;
}

void virtio_mmio_free(struct virtio_mmio *dev)
{
	if (!dev)
		return;
	if (dev->ops->quiesce)
		dev->ops->quiesce(dev);
	pthread_mutex_destroy(&dev->lock);
	dev->ops->free(dev);
}

/* ---------------------------------------------------------- snapshot */

void virtio_mmio_save(struct virtio_mmio *dev, struct virtio_mmio_state *st)
{
	memset(st, 0, sizeof(*st));
	virtio_mmio_lock(dev);
	st->device_id = dev->ops->device_id;
	st->status = dev->status;
	st->isr = dev->isr;
	st->config_gen = dev->config_gen;
	st->queue_sel = dev->queue_sel;
	st->dev_feat_sel = dev->dev_feat_sel;
	st->drv_feat_sel = dev->drv_feat_sel;
	st->nqueues = dev->ops->nqueues;
	st->driver_features = dev->driver_features;
	for (unsigned i = 0; i < dev->ops->nqueues; i++) {
		const struct virtq *vq = &dev->vq[i];
		st->q[i] = (struct virtio_mmio_queue_state){
		    .desc = vq->desc_gpa,
		    .avail = vq->avail_gpa,
		    .used = vq->used_gpa,
		    .num = vq->size,
		    .last_avail = vq->last_avail,
		    .used_idx = vq->used_idx,
		    .ready = vq->ready,
		};
	}
	virtio_mmio_unlock(dev);
}

static int virtio_state_check(struct virtio_mmio *dev, const struct virtio_mmio_state *st,
			      struct kv_err **err)
{
	const uint32_t status_bits = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK |
				     VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED;
	if (st->device_id != dev->ops->device_id || st->nqueues != dev->ops->nqueues)
		return kv_err_plain(err, EINVAL, "device id %u/%u queues, want %u/%u",
				    st->device_id, st->nqueues, dev->ops->device_id,
				    dev->ops->nqueues);
	if (st->status & ~status_bits)
		return kv_err_plain(err, EINVAL, "status %#x has unknown bits", st->status);
	if (st->driver_features & ~virtio_offered(dev))
		return kv_err_plain(err, EINVAL, "driver features %#llx not offered",
				    (unsigned long long)st->driver_features);
	if (st->isr & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
		return kv_err_plain(err, EINVAL, "interrupt status %#x", st->isr);
	for (unsigned i = 0; i < st->nqueues; i++) {
		const struct virtio_mmio_queue_state *q = &st->q[i];
		if (q->ready > 1)
			return kv_err_plain(err, EINVAL, "queue %u: ready %u", i, q->ready);
		if (q->num > VQ_MAX_SIZE || (q->num & (q->num - 1)))
			return kv_err_plain(err, EINVAL, "queue %u: size %u", i, q->num);
		if (q->ready && !vq_layout_ok(dev->env.gm, q->num, q->desc, q->avail, q->used))
			return kv_err_plain(err, EINVAL, "queue %u: rings outside guest memory", i);
	}
	return 0;
}

int virtio_mmio_restore(struct virtio_mmio *dev, const struct virtio_mmio_state *st,
			struct kv_err **err)
{
	if (st->nqueues > VIRTIO_MMIO_STATE_QUEUES || virtio_state_check(dev, st, err) < 0)
		return kv_err_wrap(err, "restore %s", dev->name);
	virtio_mmio_lock(dev);
	dev->status = st->status;
	dev->isr = st->isr;
	dev->config_gen = st->config_gen;
	dev->queue_sel = st->queue_sel;
	dev->dev_feat_sel = st->dev_feat_sel;
	dev->drv_feat_sel = st->drv_feat_sel;
	dev->driver_features = st->driver_features;
	dev->driver_features_bad = false;
	dev->signal_pending = 0;
	bool event_idx = virtio_has_feature(dev, VIRTIO_RING_F_EVENT_IDX);
	for (unsigned i = 0; i < st->nqueues; i++) {
		struct virtq *vq = &dev->vq[i];
		const struct virtio_mmio_queue_state *q = &st->q[i];
		vq_reset(vq);
		vq->size = q->num;
		vq->ready = q->ready;
		vq->desc_gpa = q->desc;
		vq->avail_gpa = q->avail;
		vq->used_gpa = q->used;
		vq->last_avail = q->last_avail;
		vq->used_idx = q->used_idx;
		/* Interrupt suppression state is not saved: the first completion interrupts. */
		vq->event_idx = event_idx;
	}
	virtio_mmio_unlock(dev);
	return 0;
}

void virtio_mmio_process_pending(struct virtio_mmio *dev)
{
	virtio_mmio_lock(dev);
	if (virtio_driver_ok(dev)) {
		/* An interrupt may have been in flight when the snapshot was taken. */
		if (dev->isr)
			virtio_raise(dev, 0);
		for (unsigned i = 0; i < dev->ops->nqueues; i++)
			if (dev->vq[i].ready)
				dev->ops->notify(dev, i);
	}
	virtio_mmio_unlock(dev);
}
