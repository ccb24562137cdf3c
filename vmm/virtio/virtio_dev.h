/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to vmm/virtio/: what a device model sees of the virtio-mmio
 * transport (mmio.c). A device embeds `struct virtio_mmio` as the first
 * member of its own struct, fills a `struct virtio_dev_ops`, and calls
 * virtio_mmio_init().
 *
 * Locking: one mutex per device (mmio->lock) covers the transport registers,
 * the queues and the device's own state. The transport holds it while it
 * calls any op; a device's event-loop callbacks take it with
 * virtio_mmio_lock()/unlock(). Device work therefore runs on whichever
 * thread triggered it (a vCPU on QueueNotify, the loop on host I/O), one at
 * a time.
 */
#ifndef KV_VMM_VIRTIO_DEV_H
#define KV_VMM_VIRTIO_DEV_H

#include <pthread.h>

#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

/* Device IDs (virtio 1.2 section 5). */
#define VIRTIO_ID_NET	1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG	4
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_FS	26
#define VIRTIO_ID_PMEM	27

/* Feature bits every device offers through the transport. */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX	    29
#define VIRTIO_F_VERSION_1	    32

/* Device status bits (spec 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	 1
#define VIRTIO_STATUS_DRIVER		 2
#define VIRTIO_STATUS_DRIVER_OK		 4
#define VIRTIO_STATUS_FEATURES_OK	 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED		 128

/* virtio-mmio register map (spec 4.2.2), offsets in the device window. */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW	0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC     0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION_2 2
#define VIRTIO_MMIO_VENDOR    0x6e72766b /* "kvrn" */

/* InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING  1
#define VIRTIO_MMIO_INT_CONFIG 2

#define VIRTIO_MAX_QUEUES 4

struct virtio_dev_ops {
	uint32_t device_id;
	unsigned nqueues;
	uint64_t features; /* device-specific bits; the transport adds the common ones */
	/* Config space: the transport serves reads from `config` (little-endian). */
	size_t config_size;
	/* A queue was kicked (QueueNotify or virtio_mmio_notify). Lock held. */
	void (*notify)(struct virtio_mmio *dev, unsigned queue);
	/* DRIVER_OK was set. Optional. Lock held. */
	void (*activate)(struct virtio_mmio *dev);
	/* The driver wrote 0 to Status: drop device state. Optional. Lock held. */
	void (*reset)(struct virtio_mmio *dev);
	/*
	 * Stop the device's own threads before the transport goes away (it
	 * destroys its lock, then calls free). Optional. Lock not held.
	 */
	void (*quiesce)(struct virtio_mmio *dev);
	/* Release device resources and the device struct itself. Lock not held. */
	void (*free)(struct virtio_mmio *dev);
	/*
	 * Shared memory region `id` (virtio 1.2 section 2.10; the SHMSel/SHMLen/
	 * SHMBase registers of virtio-mmio): false when there is none. Optional;
	 * without it every region reads as absent (length -1). Lock held.
	 */
	bool (*shm_region)(struct virtio_mmio *dev, uint32_t id, uint64_t *base, uint64_t *len);
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const char *name;
	const struct virtio_dev_ops *ops;
	struct virtio_env env;
	uint8_t *config; /* ops->config_size bytes, owned by the device */

	uint32_t status;
	uint32_t isr;
	uint32_t config_gen;
	uint32_t dev_feat_sel, drv_feat_sel;
	uint32_t queue_sel;
	uint32_t shm_sel; /* SHMSel: validated by ops->shm_region */
	uint64_t driver_features;
	bool driver_features_bad; /* the driver wrote bits in a page past 1 */
	uint32_t signal_pending;  /* queues with completions not yet signalled */
	struct virtq vq[VIRTIO_MAX_QUEUES];
	struct kv_ratelimit rl, rl_debug;
};

void virtio_mmio_init(struct virtio_mmio *dev, const struct virtio_env *env, const char *name,
		      const struct virtio_dev_ops *ops, uint8_t *config);
static inline void virtio_mmio_lock(struct virtio_mmio *dev)
{
	pthread_mutex_lock(&dev->lock);
}
static inline void virtio_mmio_unlock(struct virtio_mmio *dev)
{
	pthread_mutex_unlock(&dev->lock);
}

static inline bool virtio_has_feature(const struct virtio_mmio *dev, unsigned bit)
{
	return dev->driver_features & (1ull << bit);
}
static inline bool virtio_driver_ok(const struct virtio_mmio *dev)
{
	return (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(dev->status & (VIRTIO_STATUS_FAILED | VIRTIO_STATUS_DEVICE_NEEDS_RESET));
}

/*
 * Pop the next valid chain of `queue`. Malformed chains are completed with
 * length 0 on the way (never dropped); a corrupt ring marks the device
 * DEVICE_NEEDS_RESET and raises a config interrupt. Returns true with a
 * chain, false when there is nothing (more) to do.
 */
bool virtio_queue_pop(struct virtio_mmio *dev, unsigned queue, struct vq_chain *chain);
/* Complete a chain; call virtio_queue_signal() after a batch. */
void virtio_queue_push(struct virtio_mmio *dev, unsigned queue, uint16_t head, uint32_t len);
/* Interrupt the driver for `queue` if it wants one. */
void virtio_queue_signal(struct virtio_mmio *dev, unsigned queue);
/* Config space changed: bump ConfigGeneration and raise a config interrupt. */
void virtio_config_changed(struct virtio_mmio *dev);
/* Device error: DEVICE_NEEDS_RESET plus a config interrupt (spec 2.1.2). */
void virtio_needs_reset(struct virtio_mmio *dev);
/* Rate-limited warning naming the device; for anything a guest can trigger. */
void virtio_warn(struct virtio_mmio *dev, const char *fmt, ...) KV_PRINTF(2, 3);
/* The same at debug level (normal events a guest can cause in bulk: refused connects). */
void virtio_debug(struct virtio_mmio *dev, const char *fmt, ...) KV_PRINTF(2, 3);

/* Little-endian config space helpers. */
static inline void virtio_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}
static inline void virtio_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}
static inline void virtio_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}
static inline uint16_t virtio_get_le16(const uint8_t *p)
{
	return p[0] | (uint16_t)p[1] << 8;
}
static inline uint32_t virtio_get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t virtio_get_le64(const uint8_t *p)
{
	return virtio_get_le32(p) | (uint64_t)virtio_get_le32(p + 4) << 32;
}

#endif
