/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test virtqueue builder (after Firecracker's VirtQueue test helper): a
 * fake guest memory over a plain buffer, split rings laid out in it, chains
 * added and kicked the way a driver would, used entries read back. Plus a
 * tiny virtio-mmio "driver" that talks to a device through its bus_dev, and
 * an irq sink that counts raises. Header-only; include once per test.
 */
#ifndef KV_TEST_VQ_BUILDER_H
#define KV_TEST_VQ_BUILDER_H

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/virtio_dev.h"

/* ------------------------------------------------------ guest memory */

struct vqb_mem {
	struct gm gm;
	uint8_t *buf;
	uint64_t base, size, next;
};

/* A fake guest RAM of `size` bytes at guest physical `base` (page-aligned host buffer). */
static inline void vqb_mem_init(struct vqb_mem *m, uint64_t base, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->buf = aligned_alloc(4096, size);
	assert(m->buf);
	memset(m->buf, 0, size);
	m->base = base;
	m->size = size;
	m->next = base;
	m->gm.n = 1;
	m->gm.r[0] = (struct gm_region){.gpa = base, .size = size, .hva = m->buf};
}

static inline void vqb_mem_free(struct vqb_mem *m)
{
	free(m->buf);
}

/* Bump allocator for guest buffers (zeroed). */
static inline uint64_t vqb_alloc(struct vqb_mem *m, uint64_t len, uint64_t align)
{
	uint64_t a = (m->next + align - 1) & ~(align - 1);
	assert(a + len <= m->base + m->size);
	m->next = a + len;
	memset(m->buf + (a - m->base), 0, len);
	return a;
}

static inline void *vqb_ptr(struct vqb_mem *m, uint64_t gpa)
{
	assert(gpa >= m->base && gpa <= m->base + m->size);
	return m->buf + (gpa - m->base);
}

/* A guest buffer holding a copy of `data`. */
static inline uint64_t vqb_put(struct vqb_mem *m, const void *data, uint64_t len)
{
	uint64_t gpa = vqb_alloc(m, len, 8);
	memcpy(vqb_ptr(m, gpa), data, len);
	return gpa;
}

/* ------------------------------------------------------------ rings */

struct vqb {
	struct vqb_mem *m;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx; /* driver's shadow of avail->idx */
	uint16_t next_desc; /* next free descriptor, round robin */
	uint16_t used_seen; /* used entries already consumed by vqb_next_used */
};

static inline void vqb_init(struct vqb *q, struct vqb_mem *m, uint16_t size)
{
	memset(q, 0, sizeof(*q));
	q->m = m;
	q->size = size;
	q->desc = vqb_alloc(m, 16ull * size, 16);
	q->avail = vqb_alloc(m, 6 + 2ull * size, 2);
	q->used = vqb_alloc(m, 6 + 8ull * size, 4);
}

static inline void vqb_w16(struct vqb *q, uint64_t gpa, uint16_t v)
{
	memcpy(vqb_ptr(q->m, gpa), &v, 2);
}
static inline uint16_t vqb_r16(struct vqb *q, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, vqb_ptr(q->m, gpa), 2);
	return v;
}

/* Write descriptor `i` of a table at `table` (the queue's, or an indirect one). */
static inline void vqb_desc_at(struct vqb_mem *m, uint64_t table, uint16_t i, uint64_t addr,
			       uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = vqb_ptr(m, table + 16ull * i);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static inline void vqb_set_desc(struct vqb *q, uint16_t i, uint64_t addr, uint32_t len,
				uint16_t flags, uint16_t next)
{
	vqb_desc_at(q->m, q->desc, i, addr, len, flags, next);
}

static inline void vqb_set_avail_idx(struct vqb *q, uint16_t idx)
{
	q->avail_idx = idx;
	vqb_w16(q, q->avail + 2, idx);
}

/* Make `head` available (does not notify the device). */
static inline void vqb_publish(struct vqb *q, uint16_t head)
{
	vqb_w16(q, q->avail + 4 + 2ull * (q->avail_idx % q->size), head);
	vqb_set_avail_idx(q, q->avail_idx + 1);
}

struct vqb_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Lay out a chain in free descriptors, publish it, return its head. */
static inline uint16_t vqb_add_chain(struct vqb *q, const struct vqb_buf *b, unsigned n)
{
	uint16_t head = q->next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (head + i) % q->size, nx = (head + i + 1) % q->size;
		uint16_t fl =
		    (b[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		vqb_set_desc(q, d, b[i].gpa, b[i].len, fl, i + 1 < n ? nx : 0);
	}
	q->next_desc = (head + n) % q->size;
	vqb_publish(q, head);
	return head;
}

/* A chain of one descriptor pointing at an indirect table holding `b`. */
static inline uint16_t vqb_add_indirect(struct vqb *q, const struct vqb_buf *b, unsigned n)
{
	uint64_t table = vqb_alloc(q->m, 16ull * n, 16);
	for (unsigned i = 0; i < n; i++)
		vqb_desc_at(q->m, table, i, b[i].gpa, b[i].len,
			    (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				(i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			    i + 1 < n ? i + 1 : 0);
	uint16_t head = q->next_desc;
	vqb_set_desc(q, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	q->next_desc = (head + 1) % q->size;
	vqb_publish(q, head);
	return head;
}

static inline uint16_t vqb_used_idx(struct vqb *q)
{
	return vqb_r16(q, q->used + 2);
}

static inline void vqb_used_elem(struct vqb *q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint8_t *p = vqb_ptr(q->m, q->used + 4 + 8ull * (i % q->size));
	memcpy(id, p, 4);
	memcpy(len, p + 4, 4);
}

/* The next used entry not yet seen; false when there is none. */
static inline bool vqb_next_used(struct vqb *q, uint32_t *id, uint32_t *len)
{
	if (vqb_used_idx(q) == q->used_seen)
		return false;
	vqb_used_elem(q, q->used_seen++, id, len);
	return true;
}

static inline void vqb_set_used_event(struct vqb *q, uint16_t v)
{
	vqb_w16(q, q->avail + 4 + 2ull * q->size, v);
}
static inline uint16_t vqb_avail_event(struct vqb *q)
{
	return vqb_r16(q, q->used + 4 + 8ull * q->size);
}
static inline void vqb_set_avail_flags(struct vqb *q, uint16_t f)
{
	vqb_w16(q, q->avail, f);
}

/* A struct virtq (device side) over the builder's rings, ready. */
static inline void vqb_virtq(struct vqb *q, struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
	vq->gm = &q->m->gm;
	vq->size = q->size;
	vq->desc_gpa = q->desc;
	vq->avail_gpa = q->avail;
	vq->used_gpa = q->used;
	vq->ready = true;
}

/* ------------------------------------------------------------- irqs */

struct irq_count {
	unsigned n;
	unsigned last_gsi;
};

static inline void irq_count_raise(void *ctx, unsigned gsi)
{
	struct irq_count *c = ctx;
	c->n++;
	c->last_gsi = gsi;
}

/* --------------------------------------------------- mmio "driver" */

static inline uint32_t vdrv_r32(const struct bus_dev *bd, uint64_t off)
{
	uint32_t v = 0;
	bd->read(bd->ctx, off, &v, 4);
	return v;
}

static inline void vdrv_w32(const struct bus_dev *bd, uint64_t off, uint32_t v)
{
	bd->write(bd->ctx, off, &v, 4);
}

static inline uint64_t vdrv_device_features(const struct bus_dev *bd)
{
	vdrv_w32(bd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t f = (uint64_t)vdrv_r32(bd, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	vdrv_w32(bd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return f | vdrv_r32(bd, VIRTIO_MMIO_DEVICE_FEATURES);
}

/* Reset, ACKNOWLEDGE, DRIVER, accept `features`, FEATURES_OK. Returns Status. */
static inline uint32_t vdrv_negotiate(const struct bus_dev *bd, uint64_t features)
{
	vdrv_w32(bd, VIRTIO_MMIO_STATUS, 0);
	vdrv_w32(bd, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	vdrv_w32(bd, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vdrv_w32(bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_w32(bd, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	vdrv_w32(bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_w32(bd, VIRTIO_MMIO_DRIVER_FEATURES, features >> 32);
	vdrv_w32(bd, VIRTIO_MMIO_STATUS,
		 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return vdrv_r32(bd, VIRTIO_MMIO_STATUS);
}

static inline void vdrv_queue(const struct bus_dev *bd, unsigned idx, const struct vqb *q)
{
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_SEL, idx);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_NUM, q->size);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_DESC_HIGH, q->desc >> 32);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)q->avail);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, q->avail >> 32);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)q->used);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_USED_HIGH, q->used >> 32);
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline void vdrv_driver_ok(const struct bus_dev *bd)
{
	vdrv_w32(bd, VIRTIO_MMIO_STATUS,
		 vdrv_r32(bd, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

static inline void vdrv_kick(const struct bus_dev *bd, unsigned idx)
{
	vdrv_w32(bd, VIRTIO_MMIO_QUEUE_NOTIFY, idx);
}

/* Read n config bytes at config offset `off`, one byte at a time like readb(). */
static inline void vdrv_config(const struct bus_dev *bd, uint64_t off, void *out, unsigned n)
{
	uint8_t *o = out;
	for (unsigned i = 0; i < n; i++)
		bd->read(bd->ctx, VIRTIO_MMIO_CONFIG + off + i, &o[i], 1);
}

/* Full bring-up of a device with `nq` queues built in `qs`, accepting `features`. */
static inline uint32_t vdrv_bringup(const struct bus_dev *bd, uint64_t features, struct vqb *qs,
				    unsigned nq)
{
	vdrv_negotiate(bd, features);
	for (unsigned i = 0; i < nq; i++)
		vdrv_queue(bd, i, &qs[i]);
	vdrv_driver_ok(bd);
	return vdrv_r32(bd, VIRTIO_MMIO_STATUS);
}

#endif
