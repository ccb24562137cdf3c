/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2 section 5.2) over a raw image file or block device,
 * read-only (VIRTIO_BLK_F_RO) or read-write. Requests: IN, OUT, FLUSH,
 * GET_ID, DISCARD and WRITE_ZEROES (read-write only). Every request the
 * driver makes gets a status byte: a short header, a sector range past the
 * capacity or a write to a read-only disk is IOERR, an unknown type UNSUPP;
 * only a chain with no writable byte at all (nowhere to put a status) is
 * completed with length 0.
 *
 * I/O is synchronous, on the thread that kicked the queue, under the device
 * lock (like kvmtool without its I/O threads).
 */
#include "vmm/virtio/virtio_dev.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1
#define VIRTIO_BLK_ID_BYTES		   20

/* struct virtio_blk_config offsets (spec 5.2.4). */
#define BLK_CFG_CAPACITY	    0
#define BLK_CFG_SEG_MAX		    12
#define BLK_CFG_MAX_DISCARD_SECTORS 36
#define BLK_CFG_MAX_DISCARD_SEG	    40
#define BLK_CFG_DISCARD_ALIGN	    44
#define BLK_CFG_MAX_WZ_SECTORS	    48
#define BLK_CFG_MAX_WZ_SEG	    52
#define BLK_CFG_WZ_MAY_UNMAP	    56
#define BLK_CFG_SIZE		    60

#define SECTOR_SHIFT  9
#define SECTOR_SIZE   (1u << SECTOR_SHIFT)
#define BLK_REQ_HDR   16 /* le32 type, le32 reserved, le64 sector */
#define BLK_SEG_SIZE  16 /* discard/write-zeroes segment: le64 sector, le32 num, le32 flags */
#define BLK_MAX_RANGE (1u << 22) /* sectors per discard/write-zeroes segment (2 GiB) */

struct virtio_blk {
	struct virtio_mmio mmio; /* first: the transport hands us this pointer */
	struct virtio_dev_ops ops;
	int fd;
	bool ro;
	char *path;
	uint64_t capacity; /* in 512-byte sectors */
	char id[VIRTIO_BLK_ID_BYTES];
	uint8_t config[BLK_CFG_SIZE];
};

static struct virtio_blk *to_blk(struct virtio_mmio *dev)
{
	return (struct virtio_blk *)dev;
}

static int blk_size(int fd, uint64_t *bytes)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		/* lseek rather than BLKGETSIZE64: resize runs under seccomp, lseek is allowed. */
		off_t end = lseek(fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		*bytes = end;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*bytes = st.st_size;
	return 0;
}

/* Whether [sector, sector + n) lies inside the disk (overflow-safe). */
static bool blk_in_range(const struct virtio_blk *b, uint64_t sector, uint64_t n)
{
	return sector <= b->capacity && n <= b->capacity - sector;
}

/* preadv/pwritev until done; returns 0, or -1 on error or a short transfer. */
static int blk_rw(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	while (n) {
		ssize_t r = write ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		off += r;
		while (n && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

/* IN / OUT: data after the header (OUT) or before the status byte (IN). */
static uint8_t blk_data(struct virtio_blk *b, const struct vq_chain *c, bool write, uint64_t sector,
			uint32_t *used)
{
	uint64_t len = write ? c->out_len - BLK_REQ_HDR : c->in_len - 1, got;
	if (write && b->ro)
		return VIRTIO_BLK_S_IOERR;
	if (len % SECTOR_SIZE || !blk_in_range(b, sector, len >> SECTOR_SHIFT)) {
		virtio_warn(&b->mmio, "%s: %s of %llu bytes at sector %llu out of range", b->path,
			    write ? "write" : "read", (unsigned long long)len,
			    (unsigned long long)sector);
		return VIRTIO_BLK_S_IOERR;
	}
	struct iovec v[VQ_MAX_SEGS];
	unsigned n = vq_chain_iov(c, !write, write ? BLK_REQ_HDR : 0, len, v, VQ_MAX_SEGS, &got);
	if (blk_rw(b->fd, v, n, sector << SECTOR_SHIFT, write) < 0) {
		virtio_warn(&b->mmio, "%s: %s at sector %llu: %s", b->path,
			    write ? "write" : "read", (unsigned long long)sector,
			    errno ? strerror(errno) : "short transfer");
		return VIRTIO_BLK_S_IOERR;
	}
	if (!write)
		*used += len;
	return VIRTIO_BLK_S_OK;
}

static int blk_write_zeroes_slow(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zero[64 << 10];
	while (len) {
		size_t n = len < sizeof(zero) ? len : sizeof(zero);
		ssize_t r = pwrite(fd, zero, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		off += r;
		len -= r;
	}
	return 0;
}

/* DISCARD / WRITE_ZEROES: exactly one segment (max_*_seg is 1). */
static uint8_t blk_zero(struct virtio_blk *b, const struct vq_chain *c, uint32_t type)
{
	uint8_t seg[BLK_SEG_SIZE];
	if (b->ro)
		return VIRTIO_BLK_S_IOERR;
	if (c->out_len != BLK_REQ_HDR + BLK_SEG_SIZE ||
	    vq_chain_read(c, BLK_REQ_HDR, seg, sizeof(seg)) != sizeof(seg))
		return VIRTIO_BLK_S_UNSUPP;
	uint64_t sector = virtio_get_le64(seg);
	uint32_t num = virtio_get_le32(seg + 8), flags = virtio_get_le32(seg + 12);
	bool unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
	    (unmap && type == VIRTIO_BLK_T_DISCARD))
		return VIRTIO_BLK_S_UNSUPP;
	if (num > BLK_MAX_RANGE || !blk_in_range(b, sector, num))
		return VIRTIO_BLK_S_IOERR;
	uint64_t off = sector << SECTOR_SHIFT, len = (uint64_t)num << SECTOR_SHIFT;
	int mode = type == VIRTIO_BLK_T_WRITE_ZEROES && !unmap
		       ? FALLOC_FL_ZERO_RANGE
		       : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (len == 0 || fallocate(b->fd, mode, off, len) == 0)
		return VIRTIO_BLK_S_OK;
	if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENODEV)
		return VIRTIO_BLK_S_IOERR;
	/* No hole punching here: a discard is only a hint; write-zeroes must zero. */
	if (type == VIRTIO_BLK_T_DISCARD)
		return VIRTIO_BLK_S_OK;
	return blk_write_zeroes_slow(b->fd, off, len) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* Handle one request; returns its status, *used counts bytes written for the driver. */
static uint8_t blk_request(struct virtio_blk *b, const struct vq_chain *c, uint32_t *used)
{
	uint8_t hdr[BLK_REQ_HDR];
	if (vq_chain_read(c, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		virtio_warn(&b->mmio, "%s: request header of %llu bytes", b->path,
			    (unsigned long long)c->out_len);
		return VIRTIO_BLK_S_IOERR;
	}
	uint32_t type = virtio_get_le32(hdr);
	uint64_t sector = virtio_get_le64(hdr + 8);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: return blk_data(b, c, type == VIRTIO_BLK_T_OUT, sector, used);
	case VIRTIO_BLK_T_FLUSH:
		if (!b->ro && fdatasync(b->fd) < 0) {
			virtio_warn(&b->mmio, "%s: fdatasync: %s", b->path, strerror(errno));
			return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		*used += vq_chain_write(
		    c, 0, b->id, c->in_len - 1 < sizeof(b->id) ? c->in_len - 1 : sizeof(b->id));
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: return blk_zero(b, c, type);
	}
	virtio_warn(&b->mmio, "%s: unsupported request type %u", b->path, type);
	return VIRTIO_BLK_S_UNSUPP;
}

static void blk_notify(struct virtio_mmio *dev, unsigned queue)
{
	struct virtio_blk *b = to_blk(dev);
	struct vq_chain c;
	while (virtio_queue_pop(dev, queue, &c)) {
		if (c.in_len == 0) {
			virtio_warn(dev, "%s: request without a status byte", b->path);
			virtio_queue_push(dev, queue, c.head, 0);
			continue;
		}
		uint32_t used = 0;
		uint8_t status = blk_request(b, &c, &used);
		/* The status is the last writable byte (spec 5.2.6). */
		vq_chain_write(&c, c.in_len - 1, &status, 1);
		virtio_queue_push(dev, queue, c.head, used + 1);
	}
	virtio_queue_signal(dev, queue);
}

static void blk_set_capacity(struct virtio_blk *b, uint64_t bytes)
{
	b->capacity = bytes >> SECTOR_SHIFT;
	virtio_put_le64(b->config + BLK_CFG_CAPACITY, b->capacity);
}

static void blk_free(struct virtio_mmio *dev)
{
	struct virtio_blk *b = to_blk(dev);
	if (b->fd >= 0)
		close(b->fd);
	free(b->path);
	free(b);
}

static void blk_config_init(struct virtio_blk *b)
{
	uint8_t *cfg = b->config;
	/* Two segments of each chain carry the header and the status. */
	virtio_put_le32(cfg + BLK_CFG_SEG_MAX, VQ_MAX_SEGS - 2);
	if (b->ro)
		return;
	virtio_put_le32(cfg + BLK_CFG_MAX_DISCARD_SECTORS, BLK_MAX_RANGE);
	virtio_put_le32(cfg + BLK_CFG_MAX_DISCARD_SEG, 1);
	virtio_put_le32(cfg + BLK_CFG_DISCARD_ALIGN, 1);
	virtio_put_le32(cfg + BLK_CFG_MAX_WZ_SECTORS, BLK_MAX_RANGE);
	virtio_put_le32(cfg + BLK_CFG_MAX_WZ_SEG, 1);
	cfg[BLK_CFG_WZ_MAY_UNMAP] = 1;
}

static void blk_free_partial(struct virtio_blk **b)
{
	if (*b)
		blk_free(&(*b)->mmio);
}

struct virtio_mmio *virtio_blk_new(const struct virtio_env *env, const char *path, bool ro,
				   struct kv_err **err)
{
	__attribute__((cleanup(blk_free_partial))) struct virtio_blk *b = kv_malloc0(sizeof(*b));
	b->path = kv_strdup(path);
	b->ro = ro;
	b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		kv_err_make(err, errno, "virtio-blk: open %s", path);
		return NULL;
	}
	/* Two VMs writing one image corrupt it: refuse a second writer. */
	if (flock(b->fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		kv_err_make(err, errno, "virtio-blk: lock %s (in use by another VM?)", path);
		return NULL;
	}
	uint64_t bytes;
	int r = blk_size(b->fd, &bytes);
	if (r < 0) {
		kv_err_make(err, -r, "virtio-blk: size of %s", path);
		return NULL;
	}
	struct stat st;
	if (fstat(b->fd, &st) == 0) {
		char id[32];
		snprintf(id, sizeof(id), "kvrun%llx", (unsigned long long)st.st_ino);
		memcpy(b->id, id, strnlen(id, sizeof(b->id)));
	}
	blk_set_capacity(b, bytes);
	blk_config_init(b);
	b->ops = (struct virtio_dev_ops){
	    .device_id = VIRTIO_ID_BLOCK,
	    .nqueues = 1,
	    .features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_FLUSH) |
			(ro ? 1ull << VIRTIO_BLK_F_RO
			    : (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES)),
	    .config_size = BLK_CFG_SIZE,
	    .notify = blk_notify,
	    .free = blk_free,
	};
	virtio_mmio_init(&b->mmio, env, "virtio-blk", &b->ops, b->config);
	return &steal_ptr(b)->mmio;
}

int virtio_blk_resize(struct virtio_mmio *dev, struct kv_err **err)
{
	if (dev->ops->device_id != VIRTIO_ID_BLOCK)
		return kv_err_plain(err, EINVAL, "%s: not a virtio-blk device", dev->name);
	struct virtio_blk *b = to_blk(dev);
	uint64_t bytes;
	virtio_mmio_lock(dev);
	int r = blk_size(b->fd, &bytes);
	if (r == 0 && bytes >> SECTOR_SHIFT != b->capacity) {
		blk_set_capacity(b, bytes);
		virtio_config_changed(dev);
	}
	virtio_mmio_unlock(dev);
	if (r < 0)
		return kv_err_make(err, -r, "virtio-blk: size of %s", b->path);
	return 0;
}
