/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the virtio devices end to end: a device (rng, blk,
 * pmem, vsock or net) is brought up through its virtio-mmio window with queues
 * at fixed places in a small fake guest RAM; the input then supplies the RAM
 * contents (descriptors, rings, request headers, vsock packets) and a
 * sequence of register accesses and queue kicks, as a hostile guest driver
 * would. ASan/UBSan catch any access outside the RAM or the device; every
 * request must complete without hanging. The NIC's "tap" is a datagram
 * socketpair primed with a few frames (the device's TUN ioctls off).
 *
 * Build: make fuzz; run: build/fuzz/fuzz_virtio -max_total_time=60
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "vmm/virtio/virtio_dev.h"

#define RAM_GPA	 0x10000ull
#define RAM_SIZE (128u << 10)
#define QSIZE	 16
#define QSTEP	 0x1000

/* vsock and net want an event loop: a fake that only remembers the last callback (net: the tap's).
 */
struct evloop {
	evloop_cb cb;
	void *ctx;
};
int evloop_add(struct evloop *l, int fd, uint32_t ev, evloop_cb cb, void *ctx)
{
	l->cb = cb;
	l->ctx = ctx;
	return 0;
}
int evloop_mod(struct evloop *l, int fd, uint32_t ev)
{
	return 0;
}
int evloop_del(struct evloop *l, int fd)
{
	return 0;
}

static struct evloop loop;
static uint8_t *ram;
static int net_host = -1; /* the NIC's fake tap, host end */
static char blk_path[64], uds[64];

static void irq_nop(void *ctx, unsigned gsi) {}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kv_err *err = NULL;
	if (kv_log_init("fuzz", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &err) < 0)
		abort();
	ram = aligned_alloc(4096, RAM_SIZE);
	int fd = memfd_create("fuzz-blk", 0);
	if (fd < 0 || ftruncate(fd, 64 << 10) < 0)
		abort();
	snprintf(blk_path, sizeof(blk_path), "/proc/self/fd/%d", fd);
	snprintf(uds, sizeof(uds), "/tmp/kvrun-fuzz-vsock-%d.sock", (int)getpid());
	return 0;
}

/* A NIC with a socketpair for a tap, three frames waiting in it. */
static struct virtio_mmio *net_new(const struct virtio_env *env, struct kv_err **err)
{
	static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
	static uint8_t frame[5000];
	struct virtio_env fake = *env;
	fake.fake_tap = true;
	struct virtio_mmio *dev = virtio_net_new(&fake, mac, err);
	int sp[2];
	if (!dev || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sp) < 0)
		abort();
	if (virtio_net_attach(dev, sp[0], err) < 0)
		abort();
	close(sp[0]);
	net_host = sp[1];
	memset(frame, 0x5a, sizeof(frame));
	memset(frame, 0, VIRTIO_NET_HDR_SIZE);
	send(net_host, frame, 60, 0);
	send(net_host, frame, 1514, 0);
	send(net_host, frame, sizeof(frame), 0);
	return dev;
}

static struct virtio_mmio *device_new(unsigned kind, const struct virtio_env *env)
{
	struct kv_err *err = NULL;
	struct virtio_mmio *dev = NULL;
	switch (kind % 5) {
	case 0: dev = virtio_rng_new(env, &err); break;
	case 1: dev = virtio_blk_new(env, blk_path, kind & 4, &err); break;
	case 2: dev = virtio_pmem_new(env, 1ull << 32, 1 << 20, NULL, false, &err); break;
	case 3: dev = virtio_vsock_new(env, 3, uds, &err); break;
	case 4: dev = net_new(env, &err); break;
	}
	if (!dev)
		abort();
	return dev;
}

static void wr(const struct bus_dev *bd, uint64_t off, uint32_t v)
{
	bd->write(bd->ctx, off, &v, 4);
}

static void bring_up(const struct bus_dev *bd, uint32_t feat_lo)
{
	wr(bd, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(bd, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(bd, VIRTIO_MMIO_DRIVER_FEATURES, feat_lo);
	wr(bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(bd, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(bd, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		uint64_t base = RAM_GPA + q * QSTEP;
		wr(bd, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(bd, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		wr(bd, VIRTIO_MMIO_QUEUE_DESC_LOW, base);
		wr(bd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 0x400);
		wr(bd, VIRTIO_MMIO_QUEUE_USED_LOW, base + 0x800);
		wr(bd, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(bd, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	       VIRTIO_STATUS_DRIVER_OK);
}

/* One op: 1 byte kind, 2 bytes offset, 4 bytes value. */
static void run_op(const struct bus_dev *bd, struct virtio_mmio *dev, const uint8_t *op)
{
	uint16_t off;
	uint32_t v, out;
	memcpy(&off, op + 1, 2);
	memcpy(&v, op + 3, 4);
	switch (op[0] % 4) {
	case 0: virtio_mmio_notify(dev, v % 4); break;
	case 1: wr(bd, off % VIRTIO_MMIO_WINDOW, v); break;
	case 2: bd->read(bd->ctx, off % VIRTIO_MMIO_WINDOW, &out, 1 << (v % 3)); break;
	case 3:
		if (loop.cb)
			loop.cb(loop.ctx, 0);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	unsigned kind = data[0], nops = data[1] % 32, feat = data[2];
	data += 3;
	size -= 3;
	if (size < nops * 7u)
		return 0;
	const uint8_t *ops = data;
	data += nops * 7u;
	size -= nops * 7u;
	memset(ram, 0, RAM_SIZE);
	memcpy(ram, data, size < RAM_SIZE ? size : RAM_SIZE);

	struct gm gm = {.n = 1, .r = {{.gpa = RAM_GPA, .size = RAM_SIZE, .hva = ram}}};
	struct virtio_env env = {.gm = &gm, .irq = {irq_nop, NULL}, .gsi = 5, .loop = &loop};
	loop.cb = NULL;
	struct virtio_mmio *dev = device_new(kind, &env);
	struct bus_dev bd = virtio_mmio_bus_dev(dev, 0);
	/* Bits 28/29: INDIRECT_DESC, EVENT_IDX; net: MRG_RXBUF, CSUM + GUEST_CSUM. */
	uint32_t lo = (feat & 3u) << 28;
	if (kind % 5 == 4)
		lo |= (feat & 4 ? 1u << 15 : 0) | (feat & 8 ? 3u : 0);
	bring_up(&bd, lo);
	for (unsigned q = 0; q < 3; q++)
		virtio_mmio_notify(dev, q);
	for (unsigned i = 0; i < nops; i++)
		run_op(&bd, dev, ops + 7 * i);
	virtio_mmio_free(dev);
	if (net_host >= 0)
		close(net_host);
	net_host = -1;
	return 0;
}
