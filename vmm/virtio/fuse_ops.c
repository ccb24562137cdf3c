/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE node operations: lookup and forget, attributes, and the namespace
 * changes (mknod, mkdir, symlink, link, unlink, rmdir, rename), plus
 * statfs and access. Every name comes through fuse_arg_str(component) and
 * every host call is relative to an O_PATH fd of the inode table, without
 * following symlinks (fuse.h).
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>

#define FUSE_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* ------------------------------------------------------------ helpers */

/*
 * One checked name beneath dirfd. Where openat2 is missing (ENOSYS: an old
 * kernel, or an outer container's seccomp profile), plain openat with
 * O_NOFOLLOW is as confined for a single component that is not "." or ".."
 * and has no '/' (fuse_arg_str), which is all this is ever given.
 */
int fuse_openat_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
	static bool no_openat2;
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		struct open_how how = {
		    .flags = (uint64_t)(flags | O_CLOEXEC), .mode = mode, .resolve = FUSE_RESOLVE};
		int fd = syscall(SYS_openat2, (long)dirfd, name, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd < 0 ? -errno : fd;
		__atomic_store_n(&no_openat2, true, __ATOMIC_RELAXED);
	}
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	int fd = openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
	return fd < 0 ? -errno : fd;
}

bool fuse_inode_is_synthetic_root(struct fuse_server *s, const struct fuse_inode *ino)
{
	return ino->slot == 0 && s->synthetic_root;
}

int fuse_inode_stat(struct fuse_server *s, const struct fuse_inode *ino, struct stat *st)
{
	if (fuse_inode_is_synthetic_root(s, ino)) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_ino = FUSE_SYNTH_ROOT_INO;
		st->st_blksize = 4096;
		return 0;
	}
	if (fstatat(ino->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int fuse_reopen(struct fuse_server *s, int path_fd, mode_t type, int flags)
{
	if (path_fd < 0)
		return -EACCES;
	if (type != S_IFREG && type != S_IFDIR)
		return -ENXIO; /* never open a device, FIFO or socket on the host */
	char name[16];
	snprintf(name, sizeof(name), "%d", path_fd);
	/* The magic link leads to exactly this inode, which is no symlink. */
	int fd = openat(s->proc_fd, name, flags | O_CLOEXEC | (type == S_IFDIR ? O_DIRECTORY : 0));
	return fd < 0 ? -errno : fd;
}

int fuse_inode_open(struct fuse_server *s, const struct fuse_inode *ino, int flags)
{
	return fuse_reopen(s, ino->fd, ino->type, flags);
}

/* new_encode_dev(), the rdev format FUSE carries. */
static uint32_t fuse_dev_encode(dev_t d)
{
	unsigned ma = major(d), mi = minor(d);
	return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

static dev_t fuse_dev_decode(uint32_t d)
{
	return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
}

void fuse_fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = st->st_size;
	a->blocks = st->st_blocks;
	a->atime = st->st_atim.tv_sec;
	a->mtime = st->st_mtim.tv_sec;
	a->ctime = st->st_ctim.tv_sec;
	a->atimensec = st->st_atim.tv_nsec;
	a->mtimensec = st->st_mtim.tv_nsec;
	a->ctimensec = st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = fuse_dev_encode(st->st_rdev);
	a->blksize = st->st_blksize;
}

static void fuse_fill_entry(struct fuse_entry_out *e, const struct fuse_inode *ino,
			    const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = fuse_inode_nodeid(ino);
	e->generation = ino->gen;
	e->entry_valid = e->attr_valid = FUSE_ATTR_TIMEOUT_S;
	fuse_fill_attr(&e->attr, st);
}

static const struct fuse_share *fuse_synthetic_find(struct fuse_server *s, const char *name,
						    unsigned *idx)
{
	for (unsigned i = 0; i < s->nshares; i++)
		if (s->shares[i].name && strcmp(s->shares[i].name, name) == 0) {
			*idx = i;
			return &s->shares[i];
		}
	return NULL;
}

int fuse_lookup_entry(struct fuse_server *s, struct fuse_inode *parent, const char *name,
		      struct fuse_entry_out *e)
{
	unsigned share = parent->share;
	int fd;
	if (fuse_inode_is_synthetic_root(s, parent)) {
		const struct fuse_share *sh = fuse_synthetic_find(s, name, &share);
		if (!sh)
			return -ENOENT;
		fd = fcntl(sh->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
	} else {
		if (parent->type != S_IFDIR)
			return -ENOTDIR;
		fd = fuse_openat_beneath(parent->fd, name, O_PATH | O_NOFOLLOW, 0);
		if (fd < 0)
			return fd;
	}
	struct stat st;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int e2 = -errno;
		close(fd);
		return e2;
	}
	struct fuse_inode *ino = fuse_inode_ref(s, fd, &st, share);
	if (!ino)
		return -ENFILE;
	fuse_fill_entry(e, ino, &st);
	return 0;
}

int fuse_lookup_reply(struct fuse_req *r, struct fuse_inode *parent, const char *name)
{
	struct fuse_entry_out e;
	int ret = fuse_lookup_entry(r->s, parent, name, &e);
	if (ret < 0)
		return ret;
	return fuse_reply(r, &e, sizeof(e));
}

static struct fuse_inode *fuse_req_inode(struct fuse_req *r)
{
	return fuse_inode_get(r->s, r->in.nodeid);
}

/* A parent directory the request may change: not the synthetic root, not read-only. */
static int fuse_parent_writable(struct fuse_req *r, struct fuse_inode **parent)
{
	struct fuse_inode *p = fuse_req_inode(r);
	if (!p)
		return -ESTALE;
	if (fuse_inode_is_synthetic_root(r->s, p))
		return -EPERM;
	if (p->type != S_IFDIR)
		return -ENOTDIR;
	if (fuse_share_of(r->s, p)->ro)
		return -EROFS;
	*parent = p;
	return 0;
}

/*
 * A request that makes or removes a name: the writable parent, the fixed
 * part copied into `in` (len 0: there is none), then the name after it (and
 * in *next, when asked, the offset after its NUL).
 */
static int fuse_arg_parent_name(struct fuse_req *r, void *in, size_t len,
				struct fuse_inode **parent, const char **name, size_t *next)
{
	int ret = fuse_parent_writable(r, parent);
	if (ret < 0)
		return ret;
	if (len && fuse_arg_copy(r, 0, in, len) < 0)
		return -EINVAL;
	*name = fuse_arg_str(r, len, FUSE_NAME_MAX, true, next);
	return *name ? 0 : -EINVAL;
}

/* ------------------------------------------------------ lookup, forget */

int fuse_op_lookup(struct fuse_req *r)
{
	struct fuse_inode *parent = fuse_req_inode(r);
	const char *name = fuse_arg_str(r, 0, FUSE_NAME_MAX, true, NULL);
	if (!parent)
		return -ESTALE;
	if (!name)
		return -EINVAL;
	return fuse_lookup_reply(r, parent, name);
}

/* FORGET and BATCH_FORGET find gone inodes too: forgetting frees their slots. */
int fuse_op_forget(struct fuse_req *r)
{
	struct fuse_forget_in in;
	struct fuse_inode *ino = fuse_inode_find(r->s, r->in.nodeid);
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0 || !ino)
		return -EINVAL;
	fuse_inode_unref(r->s, ino, in.nlookup);
	return 0;
}

int fuse_op_batch_forget(struct fuse_req *r)
{
	struct fuse_batch_forget_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	size_t room = (r->arg_len - sizeof(in)) / sizeof(struct fuse_forget_one);
	if (in.count > room || in.count > FUSE_FORGET_MAX)
		return -EINVAL; /* a count past the entries sent: ignore the whole batch */
	for (uint32_t i = 0; i < in.count; i++) {
		struct fuse_forget_one one;
		if (fuse_arg_copy(r, sizeof(in) + i * sizeof(one), &one, sizeof(one)) < 0)
			return -EINVAL;
		struct fuse_inode *ino = fuse_inode_find(r->s, one.nodeid);
		if (ino)
			fuse_inode_unref(r->s, ino, one.nlookup);
	}
	return 0;
}

/* ---------------------------------------------------------- attributes */

static int fuse_reply_attr(struct fuse_req *r, const struct stat *st)
{
	struct fuse_attr_out out = {.attr_valid = FUSE_ATTR_TIMEOUT_S};
	fuse_fill_attr(&out.attr, st);
	return fuse_reply(r, &out, sizeof(out));
}

int fuse_op_getattr(struct fuse_req *r)
{
	struct fuse_getattr_in in;
	struct fuse_inode *ino;
	struct stat st;
	int ret = fuse_arg_inode(r, &in, sizeof(in), &ino);
	if (ret < 0 || (ret = fuse_inode_stat(r->s, ino, &st)) < 0)
		return ret;
	return fuse_reply_attr(r, &st);
}

static int fuse_setattr_mode(struct fuse_server *s, struct fuse_inode *ino, mode_t mode)
{
	if (ino->type == S_IFLNK)
		return -EOPNOTSUPP; /* Linux has no mode on symlinks */
	char name[16];
	snprintf(name, sizeof(name), "%d", ino->fd);
	/* Through the magic link: lands on this inode, which is not a symlink. */
	return fchmodat(s->proc_fd, name, mode & 07777, 0) < 0 ? -errno : 0;
}

static int fuse_setattr_size(struct fuse_server *s, struct fuse_inode *ino,
			     const struct fuse_setattr_in *in)
{
	if (ino->type == S_IFDIR)
		return -EISDIR;
	if (ino->type != S_IFREG)
		return -EINVAL;
	if (in->size > INT64_MAX)
		return -EFBIG;
	struct fuse_handle *h = in->valid & FATTR_FH ? fuse_handle_get(s, in->fh, false) : NULL;
	/* The guest's handle if it is of this inode and open for writing, else our own fd. */
	if (h && fuse_handle_inode(s, h) == ino && ftruncate(h->fd, in->size) == 0)
		return 0;
	cleanup_close int fd = fuse_inode_open(s, ino, O_WRONLY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	return ftruncate(fd, in->size) < 0 ? -errno : 0;
}

static int fuse_setattr_times(struct fuse_inode *ino, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){(time_t)in->atime, in->atimensec};
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){(time_t)in->mtime, in->mtimensec};
	for (int i = 0; i < 2; i++)
		if (ts[i].tv_nsec >= 1000000000 && ts[i].tv_nsec != UTIME_NOW &&
		    ts[i].tv_nsec != UTIME_OMIT)
			return -EINVAL;
	if (utimensat(ino->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int fuse_op_setattr(struct fuse_req *r)
{
	struct fuse_setattr_in in;
	struct fuse_inode *ino;
	int ret = fuse_arg_inode(r, &in, sizeof(in), &ino);
	if (ret < 0)
		return ret;
	const uint32_t change = FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME |
				FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW;
	if (in.valid & change) {
		if (fuse_inode_is_synthetic_root(r->s, ino))
			return -EPERM;
		if (fuse_share_of(r->s, ino)->ro)
			return -EROFS;
	}
	/* Owner before mode: chown clears setuid bits the mode may ask for. */
	if (in.valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = in.valid & FATTR_UID ? in.uid : (uid_t)-1;
		gid_t gid = in.valid & FATTR_GID ? in.gid : (gid_t)-1;
		if (fchownat(ino->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if ((in.valid & FATTR_MODE) && (ret = fuse_setattr_mode(r->s, ino, in.mode)) < 0)
		return ret;
	if ((in.valid & FATTR_SIZE) && (ret = fuse_setattr_size(r->s, ino, &in)) < 0)
		return ret;
	if ((in.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) &&
	    (ret = fuse_setattr_times(ino, &in)) < 0)
		return ret;
	struct stat st;
	if ((ret = fuse_inode_stat(r->s, ino, &st)) < 0)
		return ret;
	return fuse_reply_attr(r, &st);
}

int fuse_op_readlink(struct fuse_req *r)
{
	struct fuse_inode *ino = fuse_req_inode(r);
	if (!ino)
		return -ESTALE;
	if (ino->type != S_IFLNK)
		return -EINVAL;
	size_t room = r->c->in_len - sizeof(struct fuse_out_header);
	char *buf = (char *)r->s->replybuf;
	ssize_t n = readlinkat(ino->fd, "", buf, FUSE_SYMLINK_MAX);
	if (n < 0)
		return -errno;
	if ((size_t)n > room)
		return -ERANGE;
	return fuse_reply(r, buf, n);
}

/* ------------------------------------------------------- new entries */

/*
 * After creating `name` in `parent` as ourselves: look it up, give it to the
 * requester (the group stays inherited in a setgid directory), put back mode
 * bits that our umask or the chown took, and fill its entry.
 */
int fuse_new_entry(struct fuse_req *r, struct fuse_inode *parent, const char *name, mode_t mode,
		   struct fuse_entry_out *e)
{
	struct fuse_server *s = r->s;
	struct stat pst, st;
	int ret = fuse_inode_stat(s, parent, &pst);
	if (ret < 0 || (ret = fuse_lookup_entry(s, parent, name, e)) < 0)
		return ret;
	struct fuse_inode *ino = fuse_inode_get(s, e->nodeid);
	bool sgid_dir = pst.st_mode & S_ISGID;
	gid_t gid = sgid_dir ? (gid_t)-1 : r->in.gid;
	/* Skipped when we created it as the requester already (root in the guest, often). */
	if (e->attr.uid != r->in.uid || (gid != (gid_t)-1 && e->attr.gid != gid)) {
		/* EPERM: an unprivileged VMM keeps its own ids. */
		if (fchownat(ino->fd, "", r->in.uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) <
			0 &&
		    errno != EPERM) {
			ret = -errno;
			fuse_inode_unref(s, ino, 1);
			return ret;
		}
		/* chown takes setuid/setgid bits off files: look again before the mode. */
		if (fuse_inode_stat(s, ino, &st) == 0)
			fuse_fill_attr(&e->attr, &st);
	}
	mode_t want = mode & 07777;
	if (ino->type == S_IFDIR && sgid_dir)
		want |= S_ISGID;
	if (ino->type != S_IFLNK && (e->attr.mode & 07777) != want &&
	    fuse_setattr_mode(s, ino, want) == 0 && fuse_inode_stat(s, ino, &st) == 0)
		fuse_fill_attr(&e->attr, &st);
	return 0;
}

static int fuse_reply_new_entry(struct fuse_req *r, struct fuse_inode *parent, const char *name,
				mode_t mode)
{
	struct fuse_entry_out e;
	int ret = fuse_new_entry(r, parent, name, mode, &e);
	return ret < 0 ? ret : fuse_reply(r, &e, sizeof(e));
}

int fuse_op_mknod(struct fuse_req *r)
{
	struct fuse_mknod_in in;
	struct fuse_inode *parent;
	const char *name;
	int ret = fuse_arg_parent_name(r, &in, sizeof(in), &parent, &name, NULL);
	if (ret < 0)
		return ret;
	mode_t type = in.mode & S_IFMT;
	dev_t rdev = 0;
	switch (type) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK: break;
	case S_IFCHR:
	case S_IFBLK:
		rdev = fuse_dev_decode(in.rdev);
		/* A whiteout (char 0:0, overlayfs) opens nothing; other nodes need `dev`. */
		if (!(type == S_IFCHR && rdev == 0) && !fuse_share_of(r->s, parent)->dev)
			return -EPERM;
		break;
	default: return -EINVAL;
	}
	if (mknodat(parent->fd, name, type | (in.mode & 07777), rdev) < 0)
		return -errno;
	return fuse_reply_new_entry(r, parent, name, in.mode);
}

int fuse_op_mkdir(struct fuse_req *r)
{
	struct fuse_mkdir_in in;
	struct fuse_inode *parent;
	const char *name;
	int ret = fuse_arg_parent_name(r, &in, sizeof(in), &parent, &name, NULL);
	if (ret < 0)
		return ret;
	if (mkdirat(parent->fd, name, in.mode & 07777) < 0)
		return -errno;
	return fuse_reply_new_entry(r, parent, name, in.mode);
}

int fuse_op_symlink(struct fuse_req *r)
{
	struct fuse_inode *parent;
	const char *name;
	size_t next;
	int ret = fuse_arg_parent_name(r, NULL, 0, &parent, &name, &next);
	if (ret < 0)
		return ret;
	/* The target is data, never resolved on the host: any bytes, absolute or "..". */
	const char *target = fuse_arg_str(r, next, FUSE_SYMLINK_MAX - 1, false, NULL);
	if (!target)
		return -EINVAL;
	if (symlinkat(target, parent->fd, name) < 0)
		return -errno;
	return fuse_reply_new_entry(r, parent, name, 0777);
}

int fuse_op_link(struct fuse_req *r)
{
	struct fuse_link_in in;
	struct fuse_inode *parent;
	const char *name;
	int ret = fuse_arg_parent_name(r, &in, sizeof(in), &parent, &name, NULL);
	if (ret < 0)
		return ret;
	struct fuse_inode *old = fuse_inode_get(r->s, in.oldnodeid);
	if (!old)
		return -ESTALE;
	if (old->type == S_IFDIR || old->fd < 0)
		return -EPERM;
	if (old->share != parent->share)
		return -EXDEV;
	/*
	 * The inode itself: AT_EMPTY_PATH (CAP_DAC_READ_SEARCH, kept by the
	 * worker), else through its magic link, which lands on exactly that
	 * inode. Never the magic link for a symlink: there a linkat that
	 * followed one more link would reach the symlink's target.
	 */
	if (linkat(old->fd, "", parent->fd, name, AT_EMPTY_PATH) < 0) {
		if ((errno != ENOENT && errno != EPERM) || old->type == S_IFLNK)
			return -errno;
		char proc[16];
		snprintf(proc, sizeof(proc), "%d", old->fd);
		if (linkat(r->s->proc_fd, proc, parent->fd, name, AT_SYMLINK_FOLLOW) < 0)
			return -errno;
	}
	return fuse_lookup_reply(r, parent, name);
}

/* ------------------------------------------------------ removal, rename */

static int fuse_remove(struct fuse_req *r, int flags)
{
	struct fuse_inode *parent;
	const char *name;
	int ret = fuse_arg_parent_name(r, NULL, 0, &parent, &name, NULL);
	if (ret < 0)
		return ret;
	if (unlinkat(parent->fd, name, flags) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

int fuse_op_unlink(struct fuse_req *r)
{
	return fuse_remove(r, 0);
}

int fuse_op_rmdir(struct fuse_req *r)
{
	return fuse_remove(r, AT_REMOVEDIR);
}

static int fuse_do_rename(struct fuse_req *r, uint64_t newdir, uint32_t flags, size_t off)
{
	struct fuse_inode *parent, *np;
	size_t next;
	int ret = fuse_parent_writable(r, &parent);
	if (ret < 0)
		return ret;
	const char *oldname = fuse_arg_str(r, off, FUSE_NAME_MAX, true, &next);
	const char *newname = oldname ? fuse_arg_str(r, next, FUSE_NAME_MAX, true, NULL) : NULL;
	if (!newname)
		return -EINVAL;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return -EINVAL;
	if (!(np = fuse_inode_get(r->s, newdir)))
		return -ESTALE;
	if (fuse_inode_is_synthetic_root(r->s, np))
		return -EPERM;
	if (np->type != S_IFDIR)
		return -ENOTDIR;
	if (np->share != parent->share)
		return -EXDEV;
	/* The syscall itself: glibc turns flags 0 into renameat, which seccomp does not list. */
	if (syscall(SYS_renameat2, (long)parent->fd, oldname, (long)np->fd, newname, flags) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

int fuse_op_rename(struct fuse_req *r)
{
	struct fuse_rename_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	return fuse_do_rename(r, in.newdir, 0, sizeof(in));
}

int fuse_op_rename2(struct fuse_req *r)
{
	struct fuse_rename2_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	return fuse_do_rename(r, in.newdir, in.flags, sizeof(in));
}

/* ------------------------------------------------------- statfs, access */

/* The file system of the synthetic root: its first share's; an empty one's is empty. */
static int fuse_statfs_root(struct fuse_server *s, struct statfs *sf)
{
	for (unsigned i = 0; i < s->nshares; i++)
		if (fuse_share_used(&s->shares[i]))
			return fstatfs(s->shares[i].fd, sf) < 0 ? -errno : 0;
	memset(sf, 0, sizeof(*sf));
	sf->f_bsize = sf->f_frsize = 4096;
	sf->f_namelen = FUSE_NAME_MAX;
	return 0;
}

int fuse_op_statfs(struct fuse_req *r)
{
	struct fuse_inode *ino = fuse_req_inode(r);
	if (!ino)
		return -ESTALE;
	struct statfs sf;
	int ret =
	    ino->fd >= 0 ? (fstatfs(ino->fd, &sf) < 0 ? -errno : 0) : fuse_statfs_root(r->s, &sf);
	if (ret < 0)
		return ret;
	struct fuse_statfs_out out = {.st = {
					  .blocks = sf.f_blocks,
					  .bfree = sf.f_bfree,
					  .bavail = sf.f_bavail,
					  .files = sf.f_files,
					  .ffree = sf.f_ffree,
					  .bsize = sf.f_bsize,
					  .namelen = sf.f_namelen,
					  .frsize = sf.f_frsize,
				      }};
	return fuse_reply(r, &out, sizeof(out));
}

/* The guest checks permissions itself (default_permissions); this answers alike. */
int fuse_op_access(struct fuse_req *r)
{
	struct fuse_access_in in;
	struct fuse_inode *ino;
	struct stat st;
	int ret = fuse_arg_inode(r, &in, sizeof(in), &ino);
	if (ret < 0 || (ret = fuse_inode_stat(r->s, ino, &st)) < 0)
		return ret;
	uint32_t mask = in.mask & 7; /* R_OK | W_OK | X_OK */
	if ((mask & W_OK) && fuse_share_of(r->s, ino)->ro)
		return -EROFS;
	mode_t bits = st.st_mode;
	if (r->in.uid == 0) {
		/* Root: anything, but executing needs some x bit on a non-directory. */
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) && !(bits & 0111))
			return -EACCES;
		return fuse_reply(r, NULL, 0);
	}
	mode_t have = r->in.uid == st.st_uid   ? bits >> 6
		      : r->in.gid == st.st_gid ? bits >> 3
					       : bits;
	if ((have & 7 & mask) != mask)
		return -EACCES;
	return fuse_reply(r, NULL, 0);
}
