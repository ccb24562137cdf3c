/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE file and directory I/O: open/create/read/write/flush/release/fsync,
 * opendir/readdir/readdirplus/releasedir/fsyncdir, fallocate, lseek,
 * copy_file_range and syncfs. Data moves between the file and guest memory
 * directly (preadv/pwritev on iovecs of the chain), bounded by the chain and
 * by FUSE_MAX_WRITE / FUSE_REPLY_MAX.
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <dirent.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* Open flags a guest may pass on; the rest (O_CREAT, O_PATH, O_DIRECT, ...) are ours to set. */
#define FUSE_OPEN_FLAGS                                                                            \
	(O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DSYNC | O_SYNC | O_NOATIME | O_LARGEFILE)
#define FUSE_READ_MAX	   (1u << 20)
#define FUSE_DIRENT_BUF	   (16u << 10)
#define FUSE_FALLOC_MODES  (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)
#define FUSE_OUT_HDR	   sizeof(struct fuse_out_header)
#define FUSE_WRITE_DATA_AT (sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))

static int fuse_open_flags(struct fuse_server *s, const struct fuse_inode *ino, uint32_t in,
			   int *flags)
{
	int f = (int)(in & FUSE_OPEN_FLAGS);
	if ((f & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (((f & O_ACCMODE) != O_RDONLY || (f & O_TRUNC)) && fuse_share_of(s, ino)->ro)
		return -EROFS;
	*flags = f;
	return 0;
}

/* Reply bytes after the header: what the guest asked, bounded by its buffer and by max. */
static uint64_t fuse_reply_room(const struct fuse_req *r, uint64_t want, uint64_t max)
{
	if (want > r->c->in_len - FUSE_OUT_HDR)
		want = r->c->in_len - FUSE_OUT_HDR;
	return want < max ? want : max;
}

/* --------------------------------------------------------------- open */

static int fuse_reply_open(struct fuse_req *r, uint64_t fh)
{
	struct fuse_open_out out = {.fh = fh};
	return fuse_reply(r, &out, sizeof(out));
}

int fuse_op_open(struct fuse_req *r)
{
	struct fuse_open_in in;
	struct fuse_inode *ino;
	int flags, ret = fuse_arg_inode(r, &in, sizeof(in), &ino);
	if (ret < 0)
		return ret;
	if (ino->type == S_IFDIR)
		return -EISDIR;
	if (ino->type != S_IFREG)
		return -ENXIO; /* special files are the guest's own; never opened here */
	if ((ret = fuse_open_flags(r->s, ino, in.flags, &flags)) < 0)
		return ret;
	int fd = fuse_inode_open(r->s, ino, flags);
	if (fd < 0)
		return fd;
	uint64_t fh = fuse_handle_new(r->s, fd, false, ino);
	return fh ? fuse_reply_open(r, fh) : -ENFILE;
}

/* CREATE of a name that exists (the guest's cache was stale): open it if it is a file. */
static int fuse_create_existing(struct fuse_req *r, struct fuse_inode *parent, const char *name,
				int flags)
{
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = {0};
	int ret = fuse_lookup_entry(r->s, parent, name, &out.e);
	if (ret < 0)
		return ret;
	struct fuse_inode *ino = fuse_inode_get(r->s, out.e.nodeid);
	int fd = ino->type == S_IFREG ? fuse_inode_open(r->s, ino, flags)
				      : (ino->type == S_IFDIR ? -EISDIR : -ENXIO);
	if (fd >= 0 && !(out.o.fh = fuse_handle_new(r->s, fd, false, ino)))
		fd = -ENFILE;
	if (fd < 0) {
		fuse_inode_unref(r->s, ino, 1);
		return fd;
	}
	return fuse_reply(r, &out, sizeof(out));
}

int fuse_op_create(struct fuse_req *r)
{
	struct fuse_create_in in;
	struct fuse_inode *parent = fuse_inode_get(r->s, r->in.nodeid);
	int flags, ret;
	if (!parent)
		return -ESTALE;
	if (fuse_inode_is_synthetic_root(r->s, parent))
		return -EPERM;
	if (parent->type != S_IFDIR)
		return -ENOTDIR;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	const char *name = fuse_arg_str(r, sizeof(in), FUSE_NAME_MAX, true, NULL);
	if (!name || ((in.mode & S_IFMT) && (in.mode & S_IFMT) != S_IFREG))
		return -EINVAL;
	if (fuse_share_of(r->s, parent)->ro)
		return -EROFS;
	if ((ret = fuse_open_flags(r->s, parent, in.flags, &flags)) < 0)
		return ret;
	/* Always O_EXCL: O_CREAT on an existing device node or FIFO would open it here. */
	int fd = fuse_openat_beneath(parent->fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW,
				     in.mode & 07777);
	if (fd == -EEXIST && !(in.flags & O_EXCL))
		return fuse_create_existing(r, parent, name, flags);
	if (fd < 0)
		return fd;
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = {0};
	if ((ret = fuse_new_entry(r, parent, name, in.mode, &out.e)) < 0) {
		close(fd);
		return ret;
	}
	struct fuse_inode *ino = fuse_inode_get(r->s, out.e.nodeid);
	if (!(out.o.fh = fuse_handle_new(r->s, fd, false, ino))) {
		fuse_inode_unref(r->s, ino, 1);
		return -ENFILE;
	}
	return fuse_reply(r, &out, sizeof(out));
}

/* ---------------------------------------------------------- read/write */

/* preadv/pwritev until `len` bytes or (reading) end of file; bytes moved or -errno. */
static ssize_t fuse_rw(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	ssize_t total = 0;
	while (n) {
		ssize_t got = write ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return total ? total : -errno;
		if (got == 0)
			break;
		total += got;
		off += got;
		while (n && (size_t)got >= iov->iov_len) {
			got -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + got;
			iov->iov_len -= got;
		}
	}
	return total;
}

int fuse_op_read(struct fuse_req *r)
{
	struct fuse_read_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, false, &h);
	if (ret < 0)
		return ret;
	if (in.offset > INT64_MAX)
		return -EINVAL;
	uint64_t size = fuse_reply_room(r, in.size, FUSE_READ_MAX), got;
	struct iovec iov[VQ_MAX_SEGS];
	unsigned n = vq_chain_iov(r->c, true, FUSE_OUT_HDR, size, iov, VQ_MAX_SEGS, &got);
	ssize_t done = fuse_rw(h->fd, iov, n, in.offset, false);
	if (done < 0)
		return (int)done;
	return fuse_reply_written(r, done);
}

int fuse_op_write(struct fuse_req *r)
{
	struct fuse_write_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, false, &h);
	if (ret < 0)
		return ret;
	if (r->s->shares[h->share].ro)
		return -EROFS;
	/* The data follows the fixed part; it must all be there, and no more than we said. */
	if (in.size > FUSE_MAX_WRITE || in.size > r->in.len - FUSE_WRITE_DATA_AT ||
	    in.offset > INT64_MAX)
		return -EINVAL;
	struct iovec iov[VQ_MAX_SEGS];
	uint64_t got;
	unsigned n = vq_chain_iov(r->c, false, FUSE_WRITE_DATA_AT, in.size, iov, VQ_MAX_SEGS, &got);
	if (got != in.size)
		return -EINVAL;
	ssize_t done = fuse_rw(h->fd, iov, n, in.offset, true);
	if (done < 0)
		return (int)done;
	struct fuse_write_out out = {.size = (uint32_t)done};
	return fuse_reply(r, &out, sizeof(out));
}

/* -------------------------------------------------- flush, release, sync */

int fuse_op_flush(struct fuse_req *r)
{
	struct fuse_flush_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, false, &h);
	if (ret < 0)
		return ret;
	/* close() of a duplicate: what a close in the guest means to NFS and friends. */
	int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || close(fd) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

/* Gone handles too: releasing frees their slots. */
static int fuse_release(struct fuse_req *r, bool dir)
{
	struct fuse_release_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fuse_handle *h = fuse_handle_find(r->s, in.fh, dir);
	if (!h)
		return -EBADF;
	fuse_handle_close(r->s, h);
	return fuse_reply(r, NULL, 0);
}

int fuse_op_release(struct fuse_req *r)
{
	return fuse_release(r, false);
}

int fuse_op_releasedir(struct fuse_req *r)
{
	return fuse_release(r, true);
}

static int fuse_fsync(struct fuse_req *r, bool dir)
{
	struct fuse_fsync_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, dir, &h);
	if (ret < 0)
		return ret;
	if (h->fd >= 0 &&
	    ((in.fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd)) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

int fuse_op_fsync(struct fuse_req *r)
{
	return fuse_fsync(r, false);
}

int fuse_op_fsyncdir(struct fuse_req *r)
{
	return fuse_fsync(r, true);
}

int fuse_op_syncfs(struct fuse_req *r)
{
	struct fuse_server *s = r->s;
	for (unsigned i = 0; i < s->nshares; i++) {
		if (!fuse_share_used(&s->shares[i]))
			continue;
		int fd = fuse_reopen(s, s->shares[i].fd, s->shares[i].type, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			return fd;
		int ret = syncfs(fd) < 0 ? -errno : 0;
		close(fd);
		if (ret < 0)
			return ret;
	}
	return fuse_reply(r, NULL, 0);
}

/* ------------------------------------------------------- directories */

int fuse_op_opendir(struct fuse_req *r)
{
	struct fuse_open_in in;
	struct fuse_inode *ino;
	int ret = fuse_arg_inode(r, &in, sizeof(in), &ino);
	if (ret < 0)
		return ret;
	if (ino->type != S_IFDIR)
		return -ENOTDIR;
	int fd = -1;
	if (!fuse_inode_is_synthetic_root(r->s, ino) &&
	    (fd = fuse_inode_open(r->s, ino, O_RDONLY)) < 0)
		return fd;
	uint64_t fh = fuse_handle_new(r->s, fd, true, ino);
	return fh ? fuse_reply_open(r, fh) : -ENFILE;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* A reply being filled with dirents (plus: direntplus). */
struct fuse_dirbuf {
	struct fuse_req *r;
	struct fuse_inode *dir;
	bool plus;
	uint8_t *buf;
	size_t size, len;
};

/* Add one entry; false when it does not fit (the guest asks again from its offset). */
static bool fuse_dirbuf_add(struct fuse_dirbuf *d, const char *name, uint64_t ino, uint64_t off,
			    unsigned type)
{
	size_t namelen = strlen(name);
	size_t hdr = d->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t entlen = FUSE_DIRENT_ALIGN(hdr + namelen);
	if (entlen > d->size - d->len)
		return false;
	uint8_t *p = d->buf + d->len;
	memset(p, 0, entlen);
	struct fuse_dirent de = {.ino = ino, .off = off, .namelen = namelen, .type = type};
	if (d->plus) {
		struct fuse_entry_out e = {0};
		bool dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
		/* No entry (nodeid 0) for the dots, or when the name vanished meanwhile. */
		if (!dots && fuse_lookup_entry(d->r->s, d->dir, name, &e) < 0)
			memset(&e, 0, sizeof(e));
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	memcpy(p, &de, FUSE_NAME_OFFSET);
	memcpy(p + FUSE_NAME_OFFSET, name, namelen);
	d->len += entlen;
	return true;
}

static void fuse_readdir_synthetic(struct fuse_server *s, struct fuse_dirbuf *d, uint64_t off)
{
	for (uint64_t i = off; i < 2 + (uint64_t)s->nshares; i++) {
		if (i >= 2 && !fuse_share_used(&s->shares[i - 2]))
			continue; /* a live device's free slot */
		const char *name = i == 0 ? "." : i == 1 ? ".." : s->shares[i - 2].name;
		unsigned type = i < 2 || s->shares[i - 2].type == S_IFDIR ? DT_DIR : DT_REG;
		if (!fuse_dirbuf_add(d, name, i < 2 ? FUSE_SYNTH_ROOT_INO : 2 + i, i + 1, type))
			return;
	}
}

static int fuse_readdir_host(struct fuse_dirbuf *d, int fd, uint64_t off)
{
	uint8_t buf[FUSE_DIRENT_BUF] __attribute__((aligned(8)));
	if (lseek(fd, (off_t)off, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (long pos = 0; pos < n;) {
			struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + pos);
			if (!fuse_dirbuf_add(d, e->d_name, e->d_ino, e->d_off, e->d_type))
				return 0;
			pos += e->d_reclen;
		}
	}
}

static int fuse_readdir(struct fuse_req *r, bool plus)
{
	struct fuse_read_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, true, &h);
	if (ret < 0)
		return ret;
	if (in.offset > INT64_MAX)
		return -EINVAL;
	/*
	 * READDIRPLUS looks names up beneath the open directory itself (not the
	 * inode, which the guest may have forgotten meanwhile).
	 */
	struct fuse_inode dir = {
	    .fd = h->fd, .slot = UINT32_MAX, .type = S_IFDIR, .share = h->share};
	struct fuse_dirbuf d = {.r = r,
				.dir = h->fd < 0 ? fuse_inode_root(r->s) : &dir,
				.plus = plus,
				.buf = r->s->replybuf,
				.size = fuse_reply_room(r, in.size, FUSE_REPLY_MAX)};
	if (h->fd < 0) {
		fuse_readdir_synthetic(r->s, &d, in.offset);
	} else {
		ret = fuse_readdir_host(&d, h->fd, in.offset);
		if (ret < 0 && d.len == 0)
			return ret;
	}
	vq_chain_write(r->c, FUSE_OUT_HDR, d.buf, d.len);
	return fuse_reply_written(r, d.len);
}

int fuse_op_readdir(struct fuse_req *r)
{
	return fuse_readdir(r, false);
}

int fuse_op_readdirplus(struct fuse_req *r)
{
	return fuse_readdir(r, true);
}

/* ------------------------------------------ fallocate, lseek, copy range */

int fuse_op_fallocate(struct fuse_req *r)
{
	struct fuse_fallocate_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, false, &h);
	if (ret < 0)
		return ret;
	if (r->s->shares[h->share].ro)
		return -EROFS;
	if (in.mode & ~FUSE_FALLOC_MODES)
		return -EOPNOTSUPP;
	if (in.offset > INT64_MAX || in.length > INT64_MAX - in.offset)
		return -EINVAL;
	if (fallocate(h->fd, in.mode, in.offset, in.length) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

int fuse_op_lseek(struct fuse_req *r)
{
	struct fuse_lseek_in in;
	struct fuse_handle *h;
	int ret = fuse_arg_handle(r, &in, false, &h);
	if (ret < 0)
		return ret;
	if ((in.whence != SEEK_DATA && in.whence != SEEK_HOLE) || in.offset > INT64_MAX)
		return -EINVAL; /* the guest does SEEK_SET/CUR/END itself */
	off_t off = lseek(h->fd, (off_t)in.offset, in.whence);
	if (off < 0)
		return -errno;
	struct fuse_lseek_out out = {.offset = off};
	return fuse_reply(r, &out, sizeof(out));
}

int fuse_op_copy_file_range(struct fuse_req *r)
{
	struct fuse_copy_file_range_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fuse_handle *hin = fuse_handle_find(r->s, in.fh_in, false);
	struct fuse_handle *hout = fuse_handle_find(r->s, in.fh_out, false);
	if (hin && hout && (hin->gone || hout->gone))
		return -EIO; /* a share removed under the guest */
	struct fuse_inode *out_ino = fuse_inode_get(r->s, in.nodeid_out);
	if (!hin || !hout || !out_ino || fuse_handle_inode(r->s, hout) != out_ino)
		return -EBADF;
	if (r->s->shares[hout->share].ro)
		return -EROFS;
	if (in.flags || in.off_in > INT64_MAX || in.off_out > INT64_MAX)
		return -EINVAL;
	loff_t off_in = in.off_in, off_out = in.off_out;
	size_t len = in.len < FUSE_COPY_MAX ? in.len : FUSE_COPY_MAX;
	ssize_t n = copy_file_range(hin->fd, &off_in, hout->fd, &off_out, len, 0);
	if (n < 0)
		return -errno;
	struct fuse_write_out out = {.size = (uint32_t)n};
	return fuse_reply(r, &out, sizeof(out));
}
