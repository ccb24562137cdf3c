/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue, device side (virtio 1.2 section 2.7). See queue.h for the
 * rules enforced. Barriers follow section 2.7.13 / Linux virtio_ring.c:
 *  - load avail->idx with acquire before reading ring entries and
 *    descriptors it covers;
 *  - store used->idx with release after writing the used element;
 *  - a full fence between publishing used->idx and reading used_event /
 *    avail->flags, and between writing avail_event and re-reading avail->idx
 *    (each side writes one index, then reads the other's).
 * Descriptors are copied once into locals (a compiler barrier forbids
 * re-reading guest memory), so a guest changing them under us gains nothing.
 */
#include "vmm/virtio/queue.h"

#include <endian.h>
#include <string.h>

#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_rings {
	uint8_t *desc;	 /* size * 16 */
	uint16_t *avail; /* flags, idx, ring[size], used_event */
	uint16_t *used;	 /* flags, idx, then 8-byte elements, then avail_event */
};

uint64_t vq_desc_bytes(uint16_t size)
{
	return (uint64_t)size * VIRTQ_DESC_SIZE;
}
uint64_t vq_avail_bytes(uint16_t size)
{
	return 6 + 2 * (uint64_t)size;
}
uint64_t vq_used_bytes(uint16_t size)
{
	return 6 + (uint64_t)VIRTQ_USED_ELEM_SIZE * size;
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static bool host_aligned(const void *p, uintptr_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static bool vq_rings_get(const struct gm *gm, uint16_t size, uint64_t desc, uint64_t avail,
			 uint64_t used, struct vq_rings *r)
{
	if (!is_pow2(size) || size > VQ_MAX_SIZE)
		return false;
	/* Spec 2.7: descriptor table 16-aligned, avail ring 2, used ring 4. */
	if ((desc & 15) || (avail & 1) || (used & 3))
		return false;
	r->desc = gm_ptr(gm, desc, vq_desc_bytes(size));
	r->avail = gm_ptr(gm, avail, vq_avail_bytes(size));
	r->used = gm_ptr(gm, used, vq_used_bytes(size));
	if (!r->desc || !r->avail || !r->used)
		return false;
	/* Host mappings keep the guest alignment; check so atomics stay aligned. */
	return host_aligned(r->desc, 16) && host_aligned(r->avail, 2) && host_aligned(r->used, 4);
}

bool vq_layout_ok(const struct gm *gm, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vq_rings r;
	return vq_rings_get(gm, size, desc, avail, used, &r);
}

static bool vq_rings(const struct virtq *vq, struct vq_rings *r)
{
	return vq_rings_get(vq->gm, vq->size, vq->desc_gpa, vq->avail_gpa, vq->used_gpa, r);
}

void vq_reset(struct virtq *vq)
{
	struct gm *gm = vq->gm;
	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
}

static uint16_t load16_acquire(uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}
static uint16_t load16(uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}
static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static void vq_desc_load(const uint8_t *p, struct vq_desc *d)
{
	uint8_t raw[VIRTQ_DESC_SIZE];
	memcpy(raw, p, sizeof(raw));
	compiler_barrier();
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
	memcpy(&addr, raw, 8);
	memcpy(&len, raw + 8, 4);
	memcpy(&flags, raw + 12, 2);
	memcpy(&next, raw + 14, 2);
	d->addr = le64toh(addr);
	d->len = le32toh(len);
	d->flags = le16toh(flags);
	d->next = le16toh(next);
}

/* Publish avail_event = last_avail (EVENT_IDX): "kick me for anything newer". */
static void vq_set_avail_event(struct virtq *vq, const struct vq_rings *r)
{
	if (vq->event_idx)
		store16(&r->used[2 + 4 * (uint32_t)vq->size], vq->last_avail);
}

bool vq_has_avail(struct virtq *vq)
{
	struct vq_rings r;
	if (!vq->ready || vq->broken || !vq_rings(vq, &r))
		return false;
	return load16_acquire(&r.avail[1]) != vq->last_avail;
}

/*
 * The device needs more buffers than are available now (virtio-net's
 * mergeable rx, waiting to hold a whole frame): with EVENT_IDX, ask for a
 * kick at the next buffer the driver adds (avail_event = avail idx; pops
 * since undone left it behind the driver's index, where it would never
 * fire). True when buffers came meanwhile: try again rather than wait.
 */
bool vq_want_more(struct virtq *vq)
{
	struct vq_rings r;
	if (!vq->ready || vq->broken || !vq_rings(vq, &r))
		return false;
	uint16_t idx = load16_acquire(&r.avail[1]);
	if (vq->event_idx)
		store16(&r.used[2 + 4 * (uint32_t)vq->size], idx);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16_acquire(&r.avail[1]) != idx;
}

static int vq_chain_add(struct vq_chain *c, const struct gm *gm, const struct vq_desc *d,
			unsigned *nseg)
{
	void *p = gm_ptr(gm, d->addr, d->len);
	if (!p)
		return -1;
	bool wr = d->flags & VIRTQ_DESC_F_WRITE;
	/* Spec 2.7.4.2: device-writable descriptors come after device-readable ones. */
	if (!wr && c->n_in)
		return -1;
	if (d->len == 0)
		return 0;
	if (*nseg >= VQ_MAX_SEGS)
		return -1;
	c->iov[(*nseg)++] = (struct iovec){.iov_base = p, .iov_len = d->len};
	if (wr) {
		c->n_in++;
		c->in_len += d->len;
	} else {
		c->n_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* Walk an indirect table: bounded by its entry count, no nesting (spec 2.7.5.3.1). */
static int vq_walk_indirect(const struct gm *gm, const struct vq_desc *ind, struct vq_chain *c,
			    unsigned *nseg)
{
	if (ind->len == 0 || ind->len % VIRTQ_DESC_SIZE || ind->len / VIRTQ_DESC_SIZE > VQ_MAX_SEGS)
		return -1;
	uint32_t n = ind->len / VIRTQ_DESC_SIZE;
	const uint8_t *table = gm_ptr(gm, ind->addr, ind->len);
	if (!table)
		return -1;
	uint32_t i = 0;
	for (uint32_t count = 0;; count++) {
		struct vq_desc d;
		if (count >= n)
			return -1; /* a loop inside the table */
		vq_desc_load(table + (uint64_t)i * VIRTQ_DESC_SIZE, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return -1;
		if (vq_chain_add(c, gm, &d, nseg) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= n)
			return -1;
	}
}

static int vq_walk(const struct virtq *vq, const struct vq_rings *r, struct vq_chain *c)
{
	unsigned nseg = 0;
	uint16_t i = c->head;
	for (uint32_t count = 0;; count++) {
		struct vq_desc d;
		if (count >= vq->size)
			return -1; /* longer than the queue: a loop */
		vq_desc_load(r->desc + (uint32_t)i * VIRTQ_DESC_SIZE, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* Only as the whole chain (spec: not with NEXT); like QEMU, head only. */
			if (count != 0 || (d.flags & VIRTQ_DESC_F_NEXT))
				return -1;
			return vq_walk_indirect(vq->gm, &d, c, &nseg);
		}
		if (vq_chain_add(c, vq->gm, &d, &nseg) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= vq->size)
			return -1;
	}
}

enum vq_pop_result vq_pop(struct virtq *vq, struct vq_chain *c)
{
	struct vq_rings r;
	if (!vq->ready)
		return VQ_POP_EMPTY;
	if (vq->broken || !vq_rings(vq, &r)) {
		vq->broken = true;
		return VQ_POP_BROKEN;
	}
	uint16_t avail_idx = load16_acquire(&r.avail[1]);
	if (avail_idx == vq->last_avail) {
		/* Ask for a kick, then re-check: the driver may have added one meanwhile. */
		vq_set_avail_event(vq, &r);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = load16_acquire(&r.avail[1]);
		if (avail_idx == vq->last_avail)
			return VQ_POP_EMPTY;
	}
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		vq->broken = true;
		return VQ_POP_BROKEN;
	}
	uint16_t head = load16(&r.avail[2 + (vq->last_avail & (vq->size - 1))]);
	if (head >= vq->size) {
		vq->broken = true;
		return VQ_POP_BROKEN;
	}
	vq->last_avail++;
	vq_set_avail_event(vq, &r);
	c->head = head;
	c->n_out = c->n_in = 0;
	c->out_len = c->in_len = 0;
	if (vq_walk(vq, &r, c) < 0) {
		c->n_out = c->n_in = 0;
		c->out_len = c->in_len = 0;
		return VQ_POP_BAD_CHAIN;
	}
	return VQ_POP_OK;
}

void vq_undo_pop(struct virtq *vq)
{
	struct vq_rings r;
	vq->last_avail--;
	if (vq_rings(vq, &r))
		vq_set_avail_event(vq, &r);
}

void vq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vq_rings r;
	if (!vq->ready || !vq_rings(vq, &r))
		return;
	uint32_t slot = vq->used_idx & (vq->size - 1);
	uint32_t elem[2] = {htole32(head), htole32(len)};
	/* Element i sits at byte 4 + 8*i of the used ring: u16 index 2 + 4*i. */
	memcpy(&r.used[2 + 4 * slot], elem, sizeof(elem));
	vq->used_idx++;
	__atomic_store_n(&r.used[1], htole16(vq->used_idx), __ATOMIC_RELEASE);
}

bool vq_should_notify(struct virtq *vq)
{
	struct vq_rings r;
	if (!vq->ready || !vq_rings(vq, &r))
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&r.avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_used_valid;
	vq->signalled_used = now;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	uint16_t used_event = load16(&r.avail[2 + vq->size]);
	/* vring_need_event(): did `now` pass used_event since the last interrupt? */
	return (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}

static unsigned vq_part(const struct vq_chain *c, bool in, unsigned *first)
{
	*first = in ? c->n_out : 0;
	return in ? c->n_in : c->n_out;
}

unsigned vq_chain_iov(const struct vq_chain *c, bool in, uint64_t off, uint64_t len,
		      struct iovec *dst, unsigned max, uint64_t *got)
{
	unsigned first, n = vq_part(c, in, &first), out = 0;
	*got = 0;
	for (unsigned i = first; i < first + n && len && out < max; i++) {
		const struct iovec *s = &c->iov[i];
		if (off >= s->iov_len) {
			off -= s->iov_len;
			continue;
		}
		uint64_t take = s->iov_len - off;
		if (take > len)
			take = len;
		dst[out++] =
		    (struct iovec){.iov_base = (uint8_t *)s->iov_base + off, .iov_len = take};
		*got += take;
		len -= take;
		off = 0;
	}
	return out;
}

size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *buf, size_t len)
{
	struct iovec v[VQ_MAX_SEGS];
	uint64_t got;
	unsigned n = vq_chain_iov(c, false, off, len, v, VQ_MAX_SEGS, &got);
	uint8_t *b = buf;
	for (unsigned i = 0; i < n; i++) {
		memcpy(b, v[i].iov_base, v[i].iov_len);
		b += v[i].iov_len;
	}
	return got;
}

size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *buf, size_t len)
{
	struct iovec v[VQ_MAX_SEGS];
	uint64_t got;
	unsigned n = vq_chain_iov(c, true, off, len, v, VQ_MAX_SEGS, &got);
	const uint8_t *b = buf;
	for (unsigned i = 0; i < n; i++) {
		memcpy(v[i].iov_base, b, v[i].iov_len);
		b += v[i].iov_len;
	}
	return got;
}
