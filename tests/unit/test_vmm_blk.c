/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk (vmm/virtio/blk.c) over a temporary raw image. */
#include "tap.h"
#include "vq_builder.h"

#include <fcntl.h>
#include <sys/stat.h>

#define BASE  0x80000000ull
#define MEMSZ (1u << 21)
#define DISK  (1u << 20)

#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK	       0
#define S_IOERR	       1
#define S_UNSUPP       2

static struct vqb_mem mem;
static struct irq_count irqs;
static char dir[] = "/tmp/kvrun-blk-XXXXXX";
static char img[64];

struct blk {
	struct virtio_mmio *dev;
	struct bus_dev bd;
	struct vqb q;
};

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + 3);
}

static void make_image(void)
{
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint8_t *buf = malloc(DISK);
	for (uint64_t i = 0; i < DISK; i++)
		buf[i] = pattern(i);
	ok(fd >= 0 && write(fd, buf, DISK) == DISK, "image written");
	free(buf);
	close(fd);
}

static bool blk_open(struct blk *b, bool ro)
{
	struct virtio_env env = {.gm = &mem.gm, .irq = {irq_count_raise, &irqs}, .gsi = 6};
	struct kv_err *err = NULL;
	b->dev = virtio_blk_new(&env, img, ro, &err);
	if (!b->dev) {
		diag("%s", err->msg);
		kv_err_free(err);
		return false;
	}
	b->bd = virtio_mmio_bus_dev(b->dev, 0xd0000000);
	vqb_init(&b->q, &mem, 16);
	uint64_t feat = vdrv_device_features(&b->bd);
	return vdrv_bringup(&b->bd, feat, &b->q, 1) & VIRTIO_STATUS_DRIVER_OK;
}

static uint64_t req_hdr(uint32_t type, uint64_t sector)
{
	uint8_t h[16] = {0};
	virtio_put_le32(h, type);
	virtio_put_le64(h + 8, sector);
	return vqb_put(&mem, h, 16);
}

/* Submit hdr + data (readable for OUT, writable for IN) + status; returns the status. */
static int submit(struct blk *b, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		  bool data_write, uint32_t *used_len)
{
	uint64_t st = vqb_alloc(&mem, 1, 1);
	*(uint8_t *)vqb_ptr(&mem, st) = 0xee;
	struct vqb_buf bufs[3] = {{req_hdr(type, sector), 16, false}};
	unsigned n = 1;
	if (len)
		bufs[n++] = (struct vqb_buf){data, len, data_write};
	bufs[n++] = (struct vqb_buf){st, 1, true};
	uint16_t head = vqb_add_chain(&b->q, bufs, n);
	vdrv_kick(&b->bd, 0);
	uint32_t id, used;
	if (!vqb_next_used(&b->q, &id, &used) || id != head)
		return -1;
	if (used_len)
		*used_len = used;
	return *(uint8_t *)vqb_ptr(&mem, st);
}

static void test_rw(void)
{
	struct blk b;
	ok(blk_open(&b, false), "rw disk up");
	uint64_t feat = vdrv_device_features(&b.bd);
	ok(!(feat & (1u << 5)), "rw disk does not offer RO");
	ok(!!(feat & (1u << 9)), "offers FLUSH");
	ok(!!(feat & (1u << 13)) && !!(feat & (1u << 14)), "offers DISCARD and WRITE_ZEROES");
	uint64_t cap;
	vdrv_config(&b.bd, 0, &cap, 8);
	is_int(cap, DISK / 512, "capacity in sectors");

	uint64_t d = vqb_alloc(&mem, 1024, 8);
	uint32_t used;
	irqs.n = 0;
	is_int(submit(&b, T_IN, 3, d, 1024, true, &used), S_OK, "read 2 sectors");
	is_int(used, 1025, "used length = data + status");
	is_int(irqs.n, 1, "completion interrupt");
	uint8_t *p = vqb_ptr(&mem, d);
	ok(p[0] == pattern(3 * 512) && p[1023] == pattern(3 * 512 + 1023), "read data matches");

	memset(p, 0x5a, 1024);
	is_int(submit(&b, T_OUT, 10, d, 1024, false, &used), S_OK, "write 2 sectors");
	is_int(used, 1, "write: used length is the status byte");
	uint64_t r = vqb_alloc(&mem, 512, 8);
	is_int(submit(&b, T_IN, 11, r, 512, true, NULL), S_OK, "read back");
	ok(((uint8_t *)vqb_ptr(&mem, r))[0] == 0x5a, "written data read back");

	is_int(submit(&b, T_IN, DISK / 512 - 1, d, 1024, true, NULL), S_IOERR,
	       "read past the end: IOERR");
	is_int(submit(&b, T_OUT, UINT64_MAX, d, 512, false, NULL), S_IOERR,
	       "sector 2^64-1: IOERR (no overflow)");
	is_int(submit(&b, T_IN, 0, d, 100, true, NULL), S_IOERR, "partial sector: IOERR");
	is_int(submit(&b, T_FLUSH, 0, 0, 0, false, NULL), S_OK, "flush");
	is_int(submit(&b, 99, 0, 0, 0, false, NULL), S_UNSUPP, "unknown type: UNSUPP");

	uint64_t id = vqb_alloc(&mem, 20, 8);
	is_int(submit(&b, T_GET_ID, 0, id, 20, true, &used), S_OK, "GET_ID");
	ok(memcmp(vqb_ptr(&mem, id), "kvrun", 5) == 0, "id starts with kvrun");
	is_int(used, 21, "GET_ID used length");

	/* WRITE_ZEROES over sectors 10-11 (holding 0x5a). */
	uint8_t seg[16] = {0};
	virtio_put_le64(seg, 10);
	virtio_put_le32(seg + 8, 2);
	uint64_t s = vqb_put(&mem, seg, 16);
	is_int(submit(&b, T_WRITE_ZEROES, 0, s, 16, false, NULL), S_OK, "write zeroes");
	is_int(submit(&b, T_IN, 10, d, 1024, true, NULL), S_OK, "read zeroed range");
	ok(p[0] == 0 && p[1023] == 0, "range reads as zeroes");
	virtio_put_le32(seg + 12, 1); /* unmap flag */
	s = vqb_put(&mem, seg, 16);
	is_int(submit(&b, T_WRITE_ZEROES, 0, s, 16, false, NULL), S_OK, "write zeroes with unmap");
	is_int(submit(&b, T_DISCARD, 0, s, 16, false, NULL), S_UNSUPP, "discard with unmap flag");
	virtio_put_le32(seg + 12, 0);
	s = vqb_put(&mem, seg, 16);
	is_int(submit(&b, T_DISCARD, 0, s, 16, false, NULL), S_OK, "discard");
	virtio_put_le64(seg, DISK / 512);
	s = vqb_put(&mem, seg, 16);
	is_int(submit(&b, T_DISCARD, 0, s, 16, false, NULL), S_IOERR, "discard past the end");
	is_int(submit(&b, T_DISCARD, 0, s, 8, false, NULL), S_UNSUPP, "short discard segment");
	virtio_mmio_free(b.dev);
}

static void test_malformed(void)
{
	struct blk b;
	ok(blk_open(&b, false), "disk up");
	uint32_t id, used;
	/* Short header: 8 readable bytes then a status byte. */
	uint64_t h = vqb_alloc(&mem, 8, 8), st = vqb_alloc(&mem, 1, 1);
	struct vqb_buf bufs[] = {{h, 8, false}, {st, 1, true}};
	uint16_t head = vqb_add_chain(&b.q, bufs, 2);
	vdrv_kick(&b.bd, 0);
	ok(vqb_next_used(&b.q, &id, &used) && id == head, "short header completed");
	is_int(*(uint8_t *)vqb_ptr(&mem, st), S_IOERR, "short header: IOERR");
	/* No writable byte at all: completed with length 0. */
	struct vqb_buf ro[] = {{req_hdr(T_IN, 0), 16, false}};
	head = vqb_add_chain(&b.q, ro, 1);
	vdrv_kick(&b.bd, 0);
	ok(vqb_next_used(&b.q, &id, &used) && id == head && used == 0,
	   "no status byte: completed with length 0");
	/* Through an indirect table. */
	uint64_t d = vqb_alloc(&mem, 512, 8);
	struct vqb_buf ind[] = {{req_hdr(T_IN, 1), 16, false}, {d, 512, true}, {st, 1, true}};
	head = vqb_add_indirect(&b.q, ind, 3);
	vdrv_kick(&b.bd, 0);
	ok(vqb_next_used(&b.q, &id, &used) && id == head && used == 513, "indirect read");
	is_int(*(uint8_t *)vqb_ptr(&mem, st), S_OK, "indirect read OK");
	ok(((uint8_t *)vqb_ptr(&mem, d))[5] == pattern(512 + 5), "indirect read data");
	/* Data descriptor outside RAM: chain refused, completed with 0. */
	struct vqb_buf out[] = {
	    {req_hdr(T_IN, 1), 16, false}, {BASE + MEMSZ, 512, true}, {st, 1, true}};
	head = vqb_add_chain(&b.q, out, 3);
	vdrv_kick(&b.bd, 0);
	ok(vqb_next_used(&b.q, &id, &used) && id == head && used == 0,
	   "buffer outside RAM: completed with length 0");
	virtio_mmio_free(b.dev);
}

static void test_ro(void)
{
	struct blk b;
	make_image();
	ok(blk_open(&b, true), "ro disk up");
	ok(!!(vdrv_device_features(&b.bd) & (1u << 5)), "ro disk offers VIRTIO_BLK_F_RO");
	ok(!(vdrv_device_features(&b.bd) & (1u << 13)), "and no DISCARD");
	uint64_t d = vqb_alloc(&mem, 512, 8);
	memset(vqb_ptr(&mem, d), 0x11, 512);
	is_int(submit(&b, T_OUT, 0, d, 512, false, NULL), S_IOERR, "write to ro disk: IOERR");
	is_int(submit(&b, T_IN, 0, d, 512, true, NULL), S_OK, "read from ro disk");
	ok(((uint8_t *)vqb_ptr(&mem, d))[0] == pattern(0), "ro disk unchanged");
	uint8_t seg[16] = {0};
	virtio_put_le32(seg + 8, 1);
	uint64_t s = vqb_put(&mem, seg, 16);
	is_int(submit(&b, T_WRITE_ZEROES, 0, s, 16, false, NULL), S_IOERR, "write zeroes on ro");
	is_int(submit(&b, T_FLUSH, 0, 0, 0, false, NULL), S_OK, "flush on ro is OK");

	struct blk b2;
	ok(blk_open(&b2, true), "a second ro opener is fine");
	virtio_mmio_free(b2.dev);
	struct kv_err *err = NULL;
	struct virtio_env env = {.gm = &mem.gm};
	ok(virtio_blk_new(&env, img, false, &err) == NULL, "a writer while readers hold it fails");
	ok(err && strstr(err->msg, img), "error names the image");
	kv_err_free(err);
	virtio_mmio_free(b.dev);
}

static void test_resize(void)
{
	struct blk b;
	ok(blk_open(&b, false), "disk up");
	uint32_t gen = vdrv_r32(&b.bd, VIRTIO_MMIO_CONFIG_GENERATION);
	ok(truncate(img, 2 * DISK) == 0, "image grown");
	irqs.n = 0;
	struct kv_err *err = NULL;
	ok(virtio_blk_resize(b.dev, &err) == 0, "virtio_blk_resize");
	uint64_t cap;
	vdrv_config(&b.bd, 0, &cap, 8);
	is_int(cap, 2 * DISK / 512, "new capacity");
	is_int(vdrv_r32(&b.bd, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1, "generation bumped");
	is_int(irqs.n, 1, "config interrupt");
	ok(vdrv_r32(&b.bd, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG,
	   "ISR config bit");
	ok(virtio_blk_resize(b.dev, &err) == 0 && irqs.n == 1, "no change: no interrupt");
	uint64_t d = vqb_alloc(&mem, 512, 8);
	is_int(submit(&b, T_IN, DISK / 512 + 5, d, 512, true, NULL), S_OK, "read the new space");
	virtio_mmio_free(b.dev);

	struct virtio_env env = {.gm = &mem.gm};
	struct virtio_mmio *rng = virtio_rng_new(&env, &err);
	ok(virtio_blk_resize(rng, &err) < 0, "resize of a non-blk device fails");
	kv_err_free(err);
	err = NULL;
	virtio_mmio_free(rng);
	ok(virtio_blk_new(&env, "/nonexistent/disk.img", true, &err) == NULL, "missing image");
	ok(err && strstr(err->msg, "/nonexistent/disk.img"), "error names the path");
	kv_err_free(err);
}

int main(void)
{
	vqb_mem_init(&mem, BASE, MEMSZ);
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	make_image();
	test_rw();
	test_malformed();
	test_ro();
	test_resize();
	unlink(img);
	rmdir(dir);
	vqb_mem_free(&mem);
	return tap_done();
}
