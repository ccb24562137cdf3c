/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers for virtio-fs (vmm/virtio/fs.c): a device over a fake guest
 * memory, driven through its virtio-mmio window, and a FUSE "driver" that
 * lays hand-built requests into the request queue the way Linux's
 * virtio_fs does (readable: header + arguments; writable: out header +
 * reply). Header-only; include once per test, after tap.h.
 */
#ifndef KV_TEST_FS_HELPERS_H
#define KV_TEST_FS_HELPERS_H

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/stat.h>

#include <sys/sysmacros.h>

#include "vq_builder.h"

#define FS_MEM_BASE 0x100000ull
#define FS_MEM_SIZE (8u << 20)
#define FS_QSIZE    64
#define FS_REQ_MAX  (288u << 10)

static struct vqb_mem fs_mem;
static struct irq_count fs_irqs;

struct fsdev {
	struct virtio_mmio *dev;
	struct bus_dev bd;
	struct vqb q[2];
	uint64_t mark; /* guest memory past the rings: reused by every request */
	uint64_t unique;
	uint32_t uid, gid; /* the requester, in each fuse_in_header */
};

/*
 * A request body being built (after the fuse_in_header). The bytes live in a
 * small ring of static buffers, not on the stack: a test holds a few of
 * these at a time, and compilers that inline every helper into main would
 * otherwise stack them all up.
 */
struct freq {
	uint8_t *buf;
	size_t len;
};

#define FS_REQ_RING 4
static inline void freq_init(struct freq *r)
{
	static uint8_t ring[FS_REQ_RING][FS_REQ_MAX] __attribute__((aligned(8)));
	static unsigned next;
	r->buf = ring[next++ % FS_REQ_RING];
	r->len = sizeof(struct fuse_in_header);
}
static inline void freq_add(struct freq *r, const void *p, size_t n)
{
	assert(r->len + n <= FS_REQ_MAX);
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}
static inline void freq_str(struct freq *r, const char *s)
{
	freq_add(r, s, strlen(s) + 1);
}

static inline bool fs_open_dev(struct fsdev *d, const struct virtio_fs_params *p)
{
	memset(d, 0, sizeof(*d));
	struct virtio_env env = {.gm = &fs_mem.gm, .irq = {irq_count_raise, &fs_irqs}, .gsi = 9};
	struct kv_err *err = NULL;
	fs_mem.next = fs_mem.base;
	d->dev = virtio_fs_new(&env, p, &err);
	if (!d->dev) {
		diag("virtio_fs_new: %s", err->msg);
		kv_err_free(err);
		return false;
	}
	d->bd = virtio_mmio_bus_dev(d->dev, 0xd0000000);
	vqb_init(&d->q[0], &fs_mem, FS_QSIZE);
	vqb_init(&d->q[1], &fs_mem, FS_QSIZE);
	d->mark = fs_mem.next;
	uint64_t feat = vdrv_device_features(&d->bd);
	return vdrv_bringup(&d->bd, feat, d->q, 2) & VIRTIO_STATUS_DRIVER_OK;
}

static inline void fs_close_dev(struct fsdev *d)
{
	virtio_mmio_free(d->dev);
	d->dev = NULL;
}

/* Wait (threaded devices) until queue q has a used entry; false after ~5 s. */
static inline bool fs_wait_used(struct vqb *q)
{
	for (int i = 0; i < 5000; i++) {
		if (vqb_used_idx(q) != q->used_seen)
			return true;
		usleep(1000);
	}
	return false;
}

/*
 * Lay out a raw request: `rlen` readable bytes from `raw`, then writable
 * buffers of the sizes in wl[] (nw of them). Kicks queue q and returns the
 * used length (or -1 when nothing completed); *wgpa receives the first
 * writable buffer's guest address.
 */
static inline int64_t fs_raw(struct fsdev *d, unsigned q, const void *raw, size_t rlen,
			     const uint32_t *wl, unsigned nw, uint64_t *wgpa)
{
	fs_mem.next = d->mark;
	struct vqb_buf b[8];
	unsigned n = 0;
	if (rlen)
		b[n++] = (struct vqb_buf){vqb_put(&fs_mem, raw, rlen), (uint32_t)rlen, false};
	uint64_t first = 0;
	for (unsigned i = 0; i < nw; i++) {
		uint64_t g = vqb_alloc(&fs_mem, wl[i] ? wl[i] : 1, 8);
		memset(vqb_ptr(&fs_mem, g), 0xee, wl[i]);
		if (i == 0)
			first = g;
		b[n++] = (struct vqb_buf){g, wl[i], true};
	}
	if (wgpa)
		*wgpa = first;
	uint16_t head = vqb_add_chain(&d->q[q], b, n);
	vdrv_kick(&d->bd, q);
	fs_wait_used(&d->q[q]);
	uint32_t id, used;
	if (!vqb_next_used(&d->q[q], &id, &used) || id != head)
		return -1;
	return used;
}

/*
 * Send opcode with the body in r to nodeid; the reply (after the out
 * header) is copied to out (up to outlen; the writable part is outlen + 16
 * bytes). Returns the out header's error (0 or -errno), or -1000 when the
 * chain completed without a valid header. *got: reply payload length.
 */
static inline int fs_call_q(struct fsdev *d, unsigned q, uint32_t op, uint64_t nodeid,
			    struct freq *r, void *out, uint32_t outlen, uint32_t *got)
{
	struct fuse_in_header h = {.len = (uint32_t)r->len,
				   .opcode = op,
				   .unique = ++d->unique,
				   .nodeid = nodeid,
				   .uid = d->uid,
				   .gid = d->gid,
				   .pid = 1};
	memcpy(r->buf, &h, sizeof(h));
	uint32_t wl = (uint32_t)sizeof(struct fuse_out_header) + outlen;
	uint64_t w;
	int64_t used = fs_raw(d, q, r->buf, r->len, &wl, 1, &w);
	if (got)
		*got = 0;
	if (used < (int64_t)sizeof(struct fuse_out_header))
		return -1000;
	struct fuse_out_header oh;
	memcpy(&oh, vqb_ptr(&fs_mem, w), sizeof(oh));
	if (oh.unique != h.unique || oh.len != used)
		return -1000;
	size_t n = (size_t)used - sizeof(oh);
	if (out && n)
		memcpy(out, vqb_ptr(&fs_mem, w + sizeof(oh)), n < outlen ? n : outlen);
	if (got)
		*got = (uint32_t)n;
	return oh.error;
}

static inline int fs_call(struct fsdev *d, uint32_t op, uint64_t nodeid, struct freq *r, void *out,
			  uint32_t outlen, uint32_t *got)
{
	return fs_call_q(d, 1, op, nodeid, r, out, outlen, got);
}

/* ------------------------------------------------------- common ops */

static inline int fs_init(struct fsdev *d, uint32_t flags, struct fuse_init_out *out)
{
	struct freq r;
	freq_init(&r);
	struct fuse_init_in in = {
	    .major = 7, .minor = 37, .max_readahead = 1 << 20, .flags = flags};
	freq_add(&r, &in, sizeof(in));
	struct fuse_init_out o;
	int e = fs_call(d, FUSE_INIT, 0, &r, &o, sizeof(o), NULL);
	if (out)
		*out = o;
	return e;
}

static inline int fs_lookup(struct fsdev *d, uint64_t parent, const char *name,
			    struct fuse_entry_out *e)
{
	struct freq r;
	freq_init(&r);
	freq_str(&r, name);
	struct fuse_entry_out tmp;
	return fs_call(d, FUSE_LOOKUP, parent, &r, e ? e : &tmp, sizeof(tmp), NULL);
}

static inline int fs_getattr(struct fsdev *d, uint64_t node, struct fuse_attr_out *a)
{
	struct freq r;
	freq_init(&r);
	struct fuse_getattr_in in = {0};
	freq_add(&r, &in, sizeof(in));
	struct fuse_attr_out tmp;
	return fs_call(d, FUSE_GETATTR, node, &r, a ? a : &tmp, sizeof(tmp), NULL);
}

static inline int fs_mkdir(struct fsdev *d, uint64_t parent, const char *name, uint32_t mode,
			   struct fuse_entry_out *e)
{
	struct freq r;
	freq_init(&r);
	struct fuse_mkdir_in in = {.mode = mode};
	freq_add(&r, &in, sizeof(in));
	freq_str(&r, name);
	struct fuse_entry_out tmp;
	return fs_call(d, FUSE_MKDIR, parent, &r, e ? e : &tmp, sizeof(tmp), NULL);
}

struct fs_created {
	struct fuse_entry_out e;
	struct fuse_open_out o;
};

static inline int fs_create(struct fsdev *d, uint64_t parent, const char *name, uint32_t flags,
			    uint32_t mode, struct fs_created *c)
{
	struct freq r;
	freq_init(&r);
	struct fuse_create_in in = {.flags = flags, .mode = S_IFREG | mode};
	freq_add(&r, &in, sizeof(in));
	freq_str(&r, name);
	struct fs_created tmp;
	return fs_call(d, FUSE_CREATE, parent, &r, c ? c : &tmp, sizeof(tmp), NULL);
}

static inline int fs_open(struct fsdev *d, uint64_t node, uint32_t flags, uint64_t *fh, bool dir)
{
	struct freq r;
	freq_init(&r);
	struct fuse_open_in in = {.flags = flags};
	freq_add(&r, &in, sizeof(in));
	struct fuse_open_out o = {0};
	int e = fs_call(d, dir ? FUSE_OPENDIR : FUSE_OPEN, node, &r, &o, sizeof(o), NULL);
	*fh = o.fh;
	return e;
}

static inline int fs_write(struct fsdev *d, uint64_t node, uint64_t fh, uint64_t off,
			   const void *data, uint32_t len, uint32_t *written)
{
	struct freq r;
	freq_init(&r);
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = len};
	freq_add(&r, &in, sizeof(in));
	freq_add(&r, data, len);
	struct fuse_write_out o = {0};
	int e = fs_call(d, FUSE_WRITE, node, &r, &o, sizeof(o), NULL);
	if (written)
		*written = o.size;
	return e;
}

static inline int fs_read(struct fsdev *d, uint64_t node, uint64_t fh, uint64_t off, void *buf,
			  uint32_t len, uint32_t *got)
{
	struct freq r;
	freq_init(&r);
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = len};
	freq_add(&r, &in, sizeof(in));
	return fs_call(d, FUSE_READ, node, &r, buf, len, got);
}

static inline int fs_release(struct fsdev *d, uint64_t node, uint64_t fh, bool dir)
{
	struct freq r;
	freq_init(&r);
	struct fuse_release_in in = {.fh = fh};
	freq_add(&r, &in, sizeof(in));
	return fs_call(d, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, node, &r, NULL, 0, NULL);
}

/* One name (UNLINK, RMDIR, READLINK-less ops). */
static inline int fs_name_op(struct fsdev *d, uint32_t op, uint64_t parent, const char *name)
{
	struct freq r;
	freq_init(&r);
	freq_str(&r, name);
	return fs_call(d, op, parent, &r, NULL, 0, NULL);
}

static inline void fs_forget(struct fsdev *d, uint64_t node, uint64_t n)
{
	struct freq r;
	freq_init(&r);
	struct fuse_forget_in in = {.nlookup = n};
	freq_add(&r, &in, sizeof(in));
	struct fuse_in_header h = {.len = (uint32_t)r.len, .opcode = FUSE_FORGET, .nodeid = node};
	memcpy(r.buf, &h, sizeof(h));
	fs_raw(d, 0, r.buf, r.len, NULL, 0, NULL);
}

/* ------------------------------------------------------ the export */

/*
 * <top>/export is shared; <top>/outside is a sibling the guest must never
 * reach. export: hello.txt, sub/inner.txt, escape -> ../outside,
 * abs -> <top>/outside, fifo.
 */
static char top[96] = "/tmp/kvrun-fs-XXXXXX";
static char exp_dir[128], outside[128];
static bool is_root;

static inline void path_of(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", exp_dir, rel);
}

static inline void write_host(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert(fd >= 0);
	assert(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
	close(fd);
}

static inline void setup_tree(void)
{
	char p[256];
	assert(mkdtemp(top));
	snprintf(exp_dir, sizeof(exp_dir), "%s/export", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	assert(mkdir(exp_dir, 0755) == 0 && mkdir(outside, 0755) == 0);
	snprintf(p, sizeof(p), "%s/secret.txt", outside);
	write_host(p, "SECRET\n");
	path_of(p, sizeof(p), "hello.txt");
	write_host(p, "hello world\n");
	path_of(p, sizeof(p), "sub");
	assert(mkdir(p, 0755) == 0);
	path_of(p, sizeof(p), "sub/inner.txt");
	write_host(p, "inner\n");
	path_of(p, sizeof(p), "escape");
	assert(symlink("../outside", p) == 0);
	path_of(p, sizeof(p), "abs");
	assert(symlink(outside, p) == 0);
	path_of(p, sizeof(p), "fifo");
	assert(mkfifo(p, 0644) == 0);
}

static inline void fs_test_setup(void)
{
	is_root = geteuid() == 0;
	umask(022);
	vqb_mem_init(&fs_mem, FS_MEM_BASE, FS_MEM_SIZE);
	setup_tree();
}

static inline void cleanup_tree(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", top);
}

static inline bool open_export(struct fsdev *d, bool ro, bool dev)
{
	struct virtio_fs_share sh = {.path = exp_dir, .ro = ro, .dev = dev};
	struct virtio_fs_params p = {.tag = "testfs", .shares = &sh, .nshares = 1};
	if (!fs_open_dev(d, &p))
		return false;
	return fs_init(d, FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES, NULL) == 0;
}

static inline void fs_test_cleanup(void)
{
	cleanup_tree();
	vqb_mem_free(&fs_mem);
}

#endif
