/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the split virtqueue parser (vmm/virtio/queue.c): the
 * input is a queue configuration followed by the raw contents of a small
 * guest RAM holding the descriptor table, the rings, indirect tables and
 * buffers, so the fuzzer controls every descriptor, index and flag a hostile
 * guest does. Each popped chain is read, written and completed; the parser
 * must never touch memory outside the fake RAM (ASan), loop forever or hand
 * out a segment that is not inside it.
 *
 * Build: make fuzz; run: build/fuzz/fuzz_vq -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/queue.h"

#define RAM_GPA	 0x10000ull
#define RAM_SIZE (64u << 10)

static bool seg_inside(const struct iovec *v, const uint8_t *ram)
{
	const uint8_t *p = v->iov_base;
	return p >= ram && p <= ram + RAM_SIZE && v->iov_len <= (size_t)(ram + RAM_SIZE - p);
}

static void check_chain(struct virtq *vq, struct vq_chain *c, uint8_t *ram)
{
	static uint8_t scratch[VQ_MAX_SEGS * 16];
	for (unsigned i = 0; i < c->n_out + c->n_in; i++)
		if (!seg_inside(&c->iov[i], ram))
			abort();
	if (c->n_out + c->n_in > VQ_MAX_SEGS)
		abort();
	vq_chain_read(c, 1, scratch, sizeof(scratch));
	vq_chain_write(c, 3, scratch, sizeof(scratch) / 2);
	struct iovec v[8];
	uint64_t got;
	vq_chain_iov(c, true, 5, 100, v, 8, &got);
	vq_chain_iov(c, false, 0, UINT64_MAX, v, 8, &got);
	vq_push(vq, c->head, (uint32_t)c->in_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	if (!ram)
		ram = aligned_alloc(4096, RAM_SIZE);
	if (size < 4)
		return 0;
	/* Config: log2(queue size), flags, ring placement. */
	uint16_t qsize = 1u << (data[0] % 9); /* 1 .. 256 */
	bool event_idx = data[1] & 1, undo = data[1] & 2;
	uint64_t desc = RAM_GPA + (data[2] & 0x0f) * 16;
	uint64_t avail = desc + vq_desc_bytes(qsize) + (data[3] & 0x3) * 2;
	uint64_t used = (avail + vq_avail_bytes(qsize) + 3) & ~3ull;
	data += 4;
	size -= 4;
	memset(ram, 0, RAM_SIZE);
	memcpy(ram, data, size < RAM_SIZE ? size : RAM_SIZE);

	struct gm gm = {.n = 1, .r = {{.gpa = RAM_GPA, .size = RAM_SIZE, .hva = ram}}};
	struct virtq vq = {.gm = &gm,
			   .size = qsize,
			   .ready = true,
			   .event_idx = event_idx,
			   .desc_gpa = desc,
			   .avail_gpa = avail,
			   .used_gpa = used};
	if (!vq_layout_ok(&gm, qsize, desc, avail, used))
		return 0;
	static struct vq_chain c;
	/* At most one ring's worth per avail index; then the queue must report empty or broken. */
	for (unsigned i = 0; i < 2u * qsize + 2; i++) {
		enum vq_pop_result r = vq_pop(&vq, &c);
		if (r == VQ_POP_EMPTY || r == VQ_POP_BROKEN)
			break;
		if (c.head >= qsize)
			abort();
		if (r == VQ_POP_OK) {
			if (undo && i == 0) {
				vq_undo_pop(&vq);
				continue;
			}
			check_chain(&vq, &c, ram);
		} else {
			vq_push(&vq, c.head, 0);
		}
		vq_should_notify(&vq);
	}
	return 0;
}
