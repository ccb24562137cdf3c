/* SPDX-License-Identifier: Apache-2.0 */
/* Split virtqueue (vmm/virtio/queue.c) against well-formed and hostile chains. */
#include "tap.h"
#include "vq_builder.h"

#define BASE  0x100000ull
#define MEMSZ (1u << 20)

static struct vqb_mem mem;

static void setup(struct vqb *q, struct virtq *vq, uint16_t size)
{
	vqb_mem_free(&mem);
	vqb_mem_init(&mem, BASE, MEMSZ);
	vqb_init(q, &mem, size);
	vqb_virtq(q, vq);
}

static void test_simple_chain(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, 16);
	is_int(vq_pop(&vq, &c), VQ_POP_EMPTY, "empty queue pops nothing");
	uint64_t a = vqb_put(&mem, "hello", 5), b = vqb_alloc(&mem, 64, 8);
	struct vqb_buf bufs[] = {{a, 5, false}, {b, 64, true}};
	uint16_t head = vqb_add_chain(&q, bufs, 2);
	ok(vq_has_avail(&vq), "has_avail after publish");
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "pop a readable+writable chain");
	is_int(c.head, head, "head matches");
	is_int(c.n_out, 1, "one readable segment");
	is_int(c.n_in, 1, "one writable segment");
	is_int(c.out_len, 5, "readable length");
	is_int(c.in_len, 64, "writable length");
	char buf[8] = {0};
	is_int(vq_chain_read(&c, 1, buf, sizeof(buf)), 4, "read from offset clips at end");
	is_str(buf, "ello", "read bytes");
	is_int(vq_chain_write(&c, 60, "abcdefgh", 8), 4, "write clips at end");
	ok(memcmp(vqb_ptr(&mem, b + 60), "abcd", 4) == 0, "written bytes land in guest memory");
	vq_push(&vq, c.head, 42);
	uint32_t id, len;
	ok(vqb_next_used(&q, &id, &len), "one used entry");
	is_int(id, head, "used id");
	is_int(len, 42, "used len");
	is_int(vq_pop(&vq, &c), VQ_POP_EMPTY, "then empty");
	ok(vq_should_notify(&vq), "notify without EVENT_IDX");
	vqb_set_avail_flags(&q, VIRTQ_AVAIL_F_NO_INTERRUPT);
	ok(!vq_should_notify(&vq), "NO_INTERRUPT suppresses");
}

static void test_multi_segment_iov(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, 8);
	uint64_t g[4];
	for (int i = 0; i < 4; i++)
		g[i] = vqb_alloc(&mem, 10, 8);
	struct vqb_buf bufs[] = {
	    {g[0], 10, false}, {g[1], 10, false}, {g[2], 10, true}, {g[3], 10, true}};
	vqb_add_chain(&q, bufs, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "4-segment chain");
	struct iovec v[4];
	uint64_t got;
	unsigned n = vq_chain_iov(&c, true, 5, 10, v, 4, &got);
	is_int(n, 2, "iov view spans two writable segments");
	is_int(got, 10, "iov view covers 10 bytes");
	ok(v[0].iov_base == vqb_ptr(&mem, g[2] + 5) && v[0].iov_len == 5, "first piece");
	n = vq_chain_iov(&c, false, 0, 100, v, 4, &got);
	is_int(got, 20, "readable part is 20 bytes");
	is_int(n, 2, "in two pieces");
}

static void test_hostile_ring(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, 8);
	vqb_set_avail_idx(&q, 9); /* 9 > size 8 ahead of last_avail 0 */
	is_int(vq_pop(&vq, &c), VQ_POP_BROKEN, "avail idx jump past size is refused");
	ok(vq.broken, "queue marked broken");
	is_int(vq_pop(&vq, &c), VQ_POP_BROKEN, "and stays broken");

	setup(&q, &vq, 8);
	vqb_publish(&q, 8);
	is_int(vq_pop(&vq, &c), VQ_POP_BROKEN, "head >= size is refused");

	setup(&q, &vq, 8);
	vq.avail_gpa = BASE + MEMSZ - 4; /* ring runs off the end of RAM */
	is_int(vq_pop(&vq, &c), VQ_POP_BROKEN, "avail ring outside RAM");
	ok(!vq_layout_ok(&mem.gm, 8, q.desc, BASE + MEMSZ - 4, q.used), "layout check agrees");
	ok(!vq_layout_ok(&mem.gm, 8, q.desc + 8, q.avail, q.used), "misaligned desc table");
	ok(!vq_layout_ok(&mem.gm, 6, q.desc, q.avail, q.used), "size not a power of two");
	ok(!vq_layout_ok(&mem.gm, 0, q.desc, q.avail, q.used), "size 0");
	ok(vq_layout_ok(&mem.gm, 8, q.desc, q.avail, q.used), "good layout accepted");

	/* avail idx exactly size ahead is legal: a full ring. */
	setup(&q, &vq, 4);
	uint64_t b = vqb_alloc(&mem, 8, 8);
	for (int i = 0; i < 4; i++) {
		struct vqb_buf one = {b, 8, true};
		vqb_add_chain(&q, &one, 1);
	}
	int n = 0;
	while (vq_pop(&vq, &c) == VQ_POP_OK)
		n++;
	is_int(n, 4, "a full ring pops all 4 chains");
}

static void test_hostile_chains(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, 8);
	uint64_t b = vqb_alloc(&mem, 64, 8);

	/* A loop: 0 -> 1 -> 0. */
	vqb_set_desc(&q, 0, b, 8, VIRTQ_DESC_F_NEXT, 1);
	vqb_set_desc(&q, 1, b, 8, VIRTQ_DESC_F_NEXT, 0);
	vqb_publish(&q, 0);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "descriptor loop is a bad chain, not a hang");
	is_int(c.head, 0, "bad chain reports its head");
	ok(!vq.broken, "a bad chain does not break the queue");

	/* Self loop. */
	vqb_set_desc(&q, 2, b, 8, VIRTQ_DESC_F_NEXT, 2);
	vqb_publish(&q, 2);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "self loop");

	/* next out of range. */
	vqb_set_desc(&q, 3, b, 8, VIRTQ_DESC_F_NEXT, 200);
	vqb_publish(&q, 3);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "next >= size");

	/* Descriptor outside RAM; and one straddling its end. */
	vqb_set_desc(&q, 4, 0x10, 8, 0, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "buffer below RAM");
	vqb_set_desc(&q, 4, BASE + MEMSZ - 4, 8, 0, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "buffer straddling the end of RAM");
	vqb_set_desc(&q, 4, UINT64_MAX - 2, 8, 0, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "address wrapping around 2^64");

	/* Readable after writable. */
	vqb_set_desc(&q, 5, b, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 6);
	vqb_set_desc(&q, 6, b, 8, 0, 0);
	vqb_publish(&q, 5);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "readable after writable");

	/* The queue still works afterwards. */
	vqb_set_desc(&q, 7, b, 8, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&q, 7);
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "a good chain after bad ones");
	is_int(c.head, 7, "its head");
}

static void test_long_chain(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, VQ_MAX_SIZE);
	uint64_t b = vqb_alloc(&mem, 8, 8);
	/* A chain using every descriptor exactly once is legal. */
	for (int i = 0; i < VQ_MAX_SIZE; i++)
		vqb_set_desc(&q, i, b, 1, i + 1 < VQ_MAX_SIZE ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	vqb_publish(&q, 0);
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "chain of exactly size descriptors");
	is_int(c.n_out, VQ_MAX_SIZE, "all segments");
	/* Starting in the middle of the same table, it wraps nowhere: fine too. */
	vqb_publish(&q, VQ_MAX_SIZE - 2);
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "tail of the chain");
	is_int(c.n_out, 2, "two segments");
	/* Last points back to first: a loop of length size. */
	vqb_set_desc(&q, VQ_MAX_SIZE - 1, b, 1, VIRTQ_DESC_F_NEXT, 0);
	vqb_publish(&q, 0);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "size-long loop is caught");
}

static void test_indirect(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, 8);
	uint64_t h = vqb_put(&mem, "hdr!", 4), d = vqb_alloc(&mem, 32, 8);
	struct vqb_buf bufs[] = {{h, 4, false}, {d, 32, true}};
	uint16_t head = vqb_add_indirect(&q, bufs, 2);
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "indirect chain");
	is_int(c.head, head, "indirect head");
	is_int(c.out_len + c.in_len, 36, "indirect lengths");

	/* Loop inside the table. */
	uint64_t t = vqb_alloc(&mem, 32, 16);
	vqb_desc_at(&mem, t, 0, d, 8, VIRTQ_DESC_F_NEXT, 1);
	vqb_desc_at(&mem, t, 1, d, 8, VIRTQ_DESC_F_NEXT, 0);
	vqb_set_desc(&q, 3, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 3);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "loop inside an indirect table");

	/* Nested indirect. */
	vqb_desc_at(&mem, t, 0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 3);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "nested indirect table");

	/* Bad table sizes and places. */
	vqb_set_desc(&q, 4, t, 20, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "table length not a multiple of 16");
	vqb_set_desc(&q, 4, t, 0, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "empty table");
	vqb_set_desc(&q, 4, t, 16 * (VQ_MAX_SEGS + 1), VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "table too long");
	vqb_set_desc(&q, 4, BASE + MEMSZ - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 4);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "table outside RAM");

	/* Indirect with NEXT, or not at the head. */
	vqb_desc_at(&mem, t, 0, d, 8, 0, 0);
	vqb_set_desc(&q, 5, t, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 6);
	vqb_set_desc(&q, 6, d, 8, 0, 0);
	vqb_publish(&q, 5);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "INDIRECT together with NEXT");
	vqb_set_desc(&q, 5, d, 8, VIRTQ_DESC_F_NEXT, 6);
	vqb_set_desc(&q, 6, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&q, 5);
	is_int(vq_pop(&vq, &c), VQ_POP_BAD_CHAIN, "INDIRECT after a direct descriptor");
}

static void test_event_idx(void)
{
	struct vqb q;
	struct virtq vq;
	struct vq_chain c;
	setup(&q, &vq, 8);
	vq.event_idx = true;
	uint64_t b = vqb_alloc(&mem, 8, 8);
	struct vqb_buf one = {b, 8, true};
	is_int(vq_pop(&vq, &c), VQ_POP_EMPTY, "empty");
	is_int(vqb_avail_event(&q), 0, "avail_event published on empty");
	vqb_add_chain(&q, &one, 1);
	vqb_add_chain(&q, &one, 1);
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "pop 1");
	is_int(vqb_avail_event(&q), 1, "avail_event follows last_avail");
	vq_push(&vq, c.head, 1);
	ok(vq_should_notify(&vq), "first completion always notifies");
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "pop 2");
	vq_push(&vq, c.head, 1);
	vqb_set_used_event(&q, 5); /* driver: interrupt me when used idx passes 5 */
	ok(!vq_should_notify(&vq), "used_event ahead suppresses the interrupt");
	ok(!vq_should_notify(&vq), "nothing new: no interrupt");
	for (int i = 0; i < 4; i++) {
		vqb_add_chain(&q, &one, 1);
		is_int(vq_pop(&vq, &c), VQ_POP_OK, "pop");
		vq_push(&vq, c.head, 1);
	}
	ok(vq_should_notify(&vq), "crossing used_event notifies");
	vq_undo_pop(&vq);
	is_int(vq.last_avail, 5, "undo pop steps back");
	is_int(vq_pop(&vq, &c), VQ_POP_OK, "and the chain pops again");
}

int main(void)
{
	vqb_mem_init(&mem, BASE, MEMSZ);
	test_simple_chain();
	test_multi_segment_iov();
	test_hostile_ring();
	test_hostile_chains();
	test_long_chain();
	test_indirect();
	test_event_idx();
	vqb_mem_free(&mem);
	return tap_done();
}
