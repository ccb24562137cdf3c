/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng (virtio 1.2 section 5.4): one request queue; every writable
 * buffer the driver posts is filled from getrandom(2). A request is capped
 * (RNG_MAX_REQ) so one huge buffer cannot stall the vCPU; the used length
 * tells the driver how much it got.
 */
#include "vmm/virtio/virtio_dev.h"

#include <string.h>
#include <sys/random.h>

#define RNG_MAX_REQ (64u << 10)

struct virtio_rng {
	struct virtio_mmio mmio; /* first: the transport hands us this pointer */
};

/* Fill up to `len` bytes of the chain's writable part; returns bytes written. */
static uint32_t rng_fill(struct virtio_mmio *dev, const struct vq_chain *c)
{
	uint64_t want = c->in_len < RNG_MAX_REQ ? c->in_len : RNG_MAX_REQ, got;
	struct iovec v[VQ_MAX_SEGS];
	unsigned n = vq_chain_iov(c, true, 0, want, v, VQ_MAX_SEGS, &got);
	uint32_t done = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t off = 0;
		while (off < v[i].iov_len) {
			ssize_t r =
			    getrandom((uint8_t *)v[i].iov_base + off, v[i].iov_len - off, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				virtio_warn(dev, "getrandom: %s", strerror(errno));
				return done;
			}
			off += r;
			done += r;
		}
	}
	return done;
}

static void rng_notify(struct virtio_mmio *dev, unsigned queue)
{
	struct vq_chain c;
	while (virtio_queue_pop(dev, queue, &c))
		virtio_queue_push(dev, queue, c.head, rng_fill(dev, &c));
	virtio_queue_signal(dev, queue);
}

static void rng_free(struct virtio_mmio *dev)
{
	free(dev);
}

static const struct virtio_dev_ops rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nqueues = 1,
    .notify = rng_notify,
    .free = rng_free,
};

struct virtio_mmio *virtio_rng_new(const struct virtio_env *env, struct kv_err **err)
{
	struct virtio_rng *rng = kv_malloc0(sizeof(*rng));
	virtio_mmio_init(&rng->mmio, env, "virtio-rng", &rng_ops, NULL);
	return &rng->mmio;
}
