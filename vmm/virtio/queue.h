/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue (virtio 1.2 section 2.7), device side. Internal to
 * vmm/virtio/. Pure functions over guest memory: no locks, no logging, no
 * KVM, so the fuzz target (tests/fuzz/fuzz_vq.c) links this file alone.
 *
 * The guest is hostile (style.md): every ring and descriptor access goes
 * through gm_ptr(); a head >= size, an avail index that runs more than
 * `size` ahead, a chain longer than the queue (or than an indirect table),
 * a loop, nested indirection, a descriptor outside RAM or a readable
 * descriptor after a writable one are all reported, never followed.
 *
 * EVENT_IDX: negotiated when the driver acks it (mmio.c offers it). The
 * device then publishes avail_event after each pop and decides interrupts
 * with vring_need_event() against the used_event the driver wrote. The
 * decision is tracked with `signalled_used`; after restore or reset it is
 * invalid, so the first completion always interrupts.
 */
#ifndef KV_VMM_VIRTIO_QUEUE_H
#define KV_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/mem.h"

/* Largest queue the devices offer (QueueNumMax), and so the longest chain. */
#define VQ_MAX_SIZE 256
/* A chain (direct or through one indirect table) has at most this many segments. */
#define VQ_MAX_SEGS VQ_MAX_SIZE

#define VIRTQ_DESC_F_NEXT	   1
#define VIRTQ_DESC_F_WRITE	   2
#define VIRTQ_DESC_F_INDIRECT	   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

#define VIRTQ_DESC_SIZE	     16
#define VIRTQ_USED_ELEM_SIZE 8

struct virtq {
	struct gm *gm;
	uint16_t size; /* QueueNum, a power of two <= VQ_MAX_SIZE */
	bool ready;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool broken;	/* the driver corrupted the ring; device needs reset */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail; /* next avail ring slot to consume */
	uint16_t used_idx;   /* next used ring slot to fill (published on push) */
	uint16_t signalled_used;
	bool signalled_used_valid;
};

/* A popped descriptor chain: readable segments first, then writable ones. */
struct vq_chain {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len;
	struct iovec iov[VQ_MAX_SEGS]; /* iov[0..n_out) readable, then n_in writable */
};

enum vq_pop_result {
	VQ_POP_EMPTY = 0, /* nothing available */
	VQ_POP_OK = 1,	  /* a valid chain in *chain */
	/* The chain at chain->head is malformed: complete it (len 0), go on. */
	VQ_POP_BAD_CHAIN = -1,
	/* The ring itself is corrupt (head >= size, avail idx jump, rings outside RAM). */
	VQ_POP_BROKEN = -2,
};

/* Ring sizes in bytes, for validation (event fields included). */
uint64_t vq_desc_bytes(uint16_t size);
uint64_t vq_avail_bytes(uint16_t size);
uint64_t vq_used_bytes(uint16_t size);
/* Whether num/addresses describe a usable queue: power of two, aligned, in RAM. */
bool vq_layout_ok(const struct gm *gm, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used);

/* Back to the reset state (not ready, indexes 0), keeping gm. */
void vq_reset(struct virtq *vq);
/* Whether the driver made buffers available that were not popped yet. */
bool vq_has_avail(struct virtq *vq);
enum vq_pop_result vq_pop(struct virtq *vq, struct vq_chain *chain);
/* Wanting more buffers than are there: ask for a kick at the next one; true if one came. */
bool vq_want_more(struct virtq *vq);
/* Give back the last popped chain (nothing to do with it now; pop it again later). */
void vq_undo_pop(struct virtq *vq);
/* Complete `head` with `len` bytes written; publishes used->idx. */
void vq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* After pushes: whether the driver wants an interrupt (EVENT_IDX / NO_INTERRUPT). */
bool vq_should_notify(struct virtq *vq);

/* Copy out of the readable part at byte offset `off`; returns bytes copied. */
size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *buf, size_t len);
/* Copy into the writable part at byte offset `off`; returns bytes copied. */
size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *buf, size_t len);
/*
 * An iovec view of [off, off+len) of the readable (in=false) or writable
 * (in=true) part, into dst (at most max entries). Returns the entry count;
 * *got is the byte count covered (less than len when the part is shorter).
 */
unsigned vq_chain_iov(const struct vq_chain *c, bool in, uint64_t off, uint64_t len,
		      struct iovec *dst, unsigned max, uint64_t *got);

#endif
