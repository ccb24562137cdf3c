/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE server: shares, request decoding and dispatch, replies, INIT and
 * DESTROY. See fuse.h for the confinement rules the handlers follow.
 *
 * Decoding (the guest is hostile): the fuse_in_header must be complete and
 * its len must lie within the chain's readable part; the arguments after it
 * are copied into a bounded buffer (for WRITE only the fixed part: the data
 * is written to the file straight from guest memory). An opcode's fixed
 * reply must fit the writable part before the handler runs, so a handler
 * never takes a reference (LOOKUP, CREATE, OPEN) it then cannot report.
 * Anything malformed is answered with an error; only a chain with no room
 * for a fuse_out_header completes with length 0.
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

/* INIT flags we grant when the guest offers them. */
#define FUSE_SERVER_FLAGS                                                                          \
	(FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_AUTO_INVAL_DATA |          \
	 FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS |     \
	 FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS)
#define FUSE_MAX_BACKGROUND 64

/* A log line the guest can cause: rate-limited (style.md), naming the tag. */
KV_PRINTF(3, 4)
static void fuse_log(struct fuse_server *s, enum kv_log_level level, const char *fmt, ...)
{
	if (!kv_log_enabled(level) || !kv_ratelimit_ok(&s->rl))
		return;
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kv_log(level, "virtio-fs %s: %s", s->tag, buf);
}

/* ------------------------------------------------------------ replies */

static uint32_t fuse_reply_error(struct fuse_req *r, int errnum)
{
	struct fuse_out_header h = {
	    .len = sizeof(h), .error = -(errnum > 0 ? errnum : EIO), .unique = r->in.unique};
	if (r->c->in_len < sizeof(h))
		return 0;
	vq_chain_write(r->c, 0, &h, sizeof(h));
	return sizeof(h);
}

int fuse_reply(struct fuse_req *r, const void *arg, size_t len)
{
	struct fuse_out_header h = {.len = sizeof(h) + len, .unique = r->in.unique};
	if (r->c->in_len < sizeof(h) + len)
		return -EINVAL; /* the dispatcher checked fixed replies; variable ones bound by
				   in_len */
	vq_chain_write(r->c, 0, &h, sizeof(h));
	if (len)
		vq_chain_write(r->c, sizeof(h), arg, len);
	r->used = sizeof(h) + len;
	return 0;
}

int fuse_reply_written(struct fuse_req *r, size_t len)
{
	struct fuse_out_header h = {.len = sizeof(h) + len, .unique = r->in.unique};
	vq_chain_write(r->c, 0, &h, sizeof(h));
	r->used = sizeof(h) + len;
	return 0;
}

/* ---------------------------------------------------------- arguments */

int fuse_arg_copy(const struct fuse_req *r, size_t off, void *dst, size_t size)
{
	if (off > r->arg_len || size > r->arg_len - off)
		return -EINVAL;
	memcpy(dst, r->arg + off, size);
	return 0;
}

const char *fuse_arg_str(const struct fuse_req *r, size_t off, size_t max, bool component,
			 size_t *next)
{
	if (off >= r->arg_len)
		return NULL;
	const char *p = (const char *)r->arg + off;
	size_t room = r->arg_len - off, len = strnlen(p, room);
	if (len == room || len == 0 || len > max)
		return NULL; /* no NUL inside the request, empty, or too long */
	if (component && (memchr(p, '/', len) || strcmp(p, ".") == 0 || strcmp(p, "..") == 0))
		return NULL;
	if (next)
		*next = off + len + 1;
	return p;
}

int fuse_arg_inode(struct fuse_req *r, void *in, size_t len, struct fuse_inode **ino)
{
	*ino = fuse_inode_get(r->s, r->in.nodeid);
	if (!*ino)
		return -ESTALE;
	return fuse_arg_copy(r, 0, in, len) < 0 ? -EINVAL : 0;
}

int fuse_arg_handle_at(struct fuse_req *r, void *in, size_t len, size_t fh_off, bool dir,
		       struct fuse_handle **h)
{
	uint64_t fh;
	if (fuse_arg_copy(r, 0, in, len) < 0)
		return -EINVAL;
	memcpy(&fh, (const uint8_t *)in + fh_off, sizeof(fh));
	*h = fuse_handle_find(r->s, fh, dir);
	if (!*h)
		return -EBADF;
	return (*h)->gone ? -EIO : 0;
}

/* --------------------------------------------------------- INIT/DESTROY */

static int fuse_op_init(struct fuse_req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_init_in in = {0};
	/* The 7.31+ base (16 bytes); flags2 follows only with FUSE_INIT_EXT. */
	if (fuse_arg_copy(r, 0, &in, offsetof(struct fuse_init_in, flags2)) < 0)
		return -EINVAL;
	uint64_t flags = in.flags;
	if ((in.flags & FUSE_INIT_EXT) && fuse_arg_copy(r, offsetof(struct fuse_init_in, flags2),
							&in.flags2, sizeof(in.flags2)) == 0)
		flags |= (uint64_t)in.flags2 << 32;
	if (in.major != FUSE_KERNEL_VERSION || in.minor < FUSE_MIN_MINOR) {
		fuse_log(s, KV_LOG_WARN, "guest speaks FUSE %u.%u, need 7.%u or later", in.major,
			 in.minor, FUSE_MIN_MINOR);
		return -EPROTO;
	}
	if (s->initialized)
		fuse_server_reset(s); /* a new mount without a DESTROY */
	uint64_t grant = FUSE_SERVER_FLAGS;
	if (s->dax.hva)
		grant |= FUSE_MAP_ALIGNMENT;
	grant &= flags;
	struct fuse_init_out out = {
	    .major = FUSE_KERNEL_VERSION,
	    .minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION,
	    .max_readahead = in.max_readahead,
	    .flags = (uint32_t)grant | (flags & FUSE_INIT_EXT ? FUSE_INIT_EXT : 0),
	    .flags2 = grant >> 32,
	    .max_background = FUSE_MAX_BACKGROUND,
	    .congestion_threshold = FUSE_MAX_BACKGROUND * 3 / 4,
	    .max_write = FUSE_MAX_WRITE,
	    .time_gran = 1,
	    .max_pages = FUSE_MAX_PAGES_REQ,
	    .map_alignment = s->dax.hva ? FUSE_DAX_ALIGN_LOG2 : 0,
	};
	s->minor = out.minor;
	s->initialized = true;
	fuse_log(s, KV_LOG_DEBUG, "FUSE 7.%u, flags %#llx", out.minor, (unsigned long long)grant);
	return fuse_reply(r, &out, sizeof(out));
}

static int fuse_op_destroy(struct fuse_req *r)
{
	fuse_server_reset(r->s);
	return fuse_reply(r, NULL, 0);
}

static int fuse_op_enosys(struct fuse_req *r)
{
	return -ENOSYS;
}

/* -------------------------------------------------------------- dispatch */

struct fuse_op {
	fuse_op_fn fn;
	uint32_t reply; /* fixed reply size that must fit the writable part */
	bool no_reply;	/* FORGET, BATCH_FORGET */
};

#define OP(f, size)                                                                                \
	{                                                                                          \
		.fn = (f), .reply = (size)                                                         \
	}
#define OP_NOREPLY(f)                                                                              \
	{                                                                                          \
		.fn = (f), .no_reply = true                                                        \
	}
#define ENTRY_OUT sizeof(struct fuse_entry_out)
#define ATTR_OUT  sizeof(struct fuse_attr_out)
#define OPEN_OUT  sizeof(struct fuse_open_out)
#define WRITE_OUT sizeof(struct fuse_write_out)

static const struct fuse_op fuse_ops[] = {
    [FUSE_LOOKUP] = OP(fuse_op_lookup, ENTRY_OUT),
    [FUSE_FORGET] = OP_NOREPLY(fuse_op_forget),
    [FUSE_GETATTR] = OP(fuse_op_getattr, ATTR_OUT),
    [FUSE_SETATTR] = OP(fuse_op_setattr, ATTR_OUT),
    [FUSE_READLINK] = OP(fuse_op_readlink, 0),
    [FUSE_SYMLINK] = OP(fuse_op_symlink, ENTRY_OUT),
    [FUSE_MKNOD] = OP(fuse_op_mknod, ENTRY_OUT),
    [FUSE_MKDIR] = OP(fuse_op_mkdir, ENTRY_OUT),
    [FUSE_UNLINK] = OP(fuse_op_unlink, 0),
    [FUSE_RMDIR] = OP(fuse_op_rmdir, 0),
    [FUSE_RENAME] = OP(fuse_op_rename, 0),
    [FUSE_LINK] = OP(fuse_op_link, ENTRY_OUT),
    [FUSE_OPEN] = OP(fuse_op_open, OPEN_OUT),
    [FUSE_READ] = OP(fuse_op_read, 0),
    [FUSE_WRITE] = OP(fuse_op_write, WRITE_OUT),
    [FUSE_STATFS] = OP(fuse_op_statfs, sizeof(struct fuse_statfs_out)),
    [FUSE_RELEASE] = OP(fuse_op_release, 0),
    [FUSE_FSYNC] = OP(fuse_op_fsync, 0),
    [FUSE_SETXATTR] = OP(fuse_op_setxattr, 0),
    [FUSE_GETXATTR] = OP(fuse_op_getxattr, 0),
    [FUSE_LISTXATTR] = OP(fuse_op_listxattr, 0),
    [FUSE_REMOVEXATTR] = OP(fuse_op_removexattr, 0),
    [FUSE_FLUSH] = OP(fuse_op_flush, 0),
    [FUSE_INIT] = OP(fuse_op_init, sizeof(struct fuse_init_out)),
    [FUSE_OPENDIR] = OP(fuse_op_opendir, OPEN_OUT),
    [FUSE_READDIR] = OP(fuse_op_readdir, 0),
    [FUSE_RELEASEDIR] = OP(fuse_op_releasedir, 0),
    [FUSE_FSYNCDIR] = OP(fuse_op_fsyncdir, 0),
    [FUSE_GETLK] = OP(fuse_op_enosys, 0),
    [FUSE_SETLK] = OP(fuse_op_enosys, 0),
    [FUSE_SETLKW] = OP(fuse_op_enosys, 0),
    [FUSE_ACCESS] = OP(fuse_op_access, 0),
    [FUSE_CREATE] = OP(fuse_op_create, ENTRY_OUT + OPEN_OUT),
    [FUSE_INTERRUPT] = OP(fuse_op_enosys, 0),
    [FUSE_BMAP] = OP(fuse_op_enosys, 0),
    [FUSE_DESTROY] = OP(fuse_op_destroy, 0),
    [FUSE_IOCTL] = OP(fuse_op_enosys, 0),
    [FUSE_POLL] = OP(fuse_op_enosys, 0),
    [FUSE_BATCH_FORGET] = OP_NOREPLY(fuse_op_batch_forget),
    [FUSE_FALLOCATE] = OP(fuse_op_fallocate, 0),
    [FUSE_READDIRPLUS] = OP(fuse_op_readdirplus, 0),
    [FUSE_RENAME2] = OP(fuse_op_rename2, 0),
    [FUSE_LSEEK] = OP(fuse_op_lseek, sizeof(struct fuse_lseek_out)),
    [FUSE_COPY_FILE_RANGE] = OP(fuse_op_copy_file_range, WRITE_OUT),
    [FUSE_SETUPMAPPING] = OP(fuse_op_setupmapping, 0),
    [FUSE_REMOVEMAPPING] = OP(fuse_op_removemapping, 0),
    [FUSE_SYNCFS] = OP(fuse_op_syncfs, 0),
};

/* Copy the arguments in; WRITE keeps its data in guest memory. */
static int fuse_req_args(struct fuse_req *r)
{
	struct fuse_server *s = r->s;
	size_t len = r->in.len - sizeof(r->in);
	if (r->in.opcode == FUSE_WRITE && len > sizeof(struct fuse_write_in))
		len = sizeof(struct fuse_write_in);
	if (len > FUSE_ARGS_MAX)
		return -E2BIG;
	if (vq_chain_read(r->c, sizeof(r->in), s->argbuf, len) != len)
		return -EINVAL;
	r->arg = s->argbuf;
	r->arg_len = len;
	return 0;
}

uint32_t fuse_server_handle(struct fuse_server *s, const struct vq_chain *c)
{
	struct fuse_req r = {.s = s, .c = c};
	if (vq_chain_read(c, 0, &r.in, sizeof(r.in)) != sizeof(r.in)) {
		memset(&r.in, 0, sizeof(r.in));
		return fuse_reply_error(&r, EINVAL);
	}
	if (r.in.len < sizeof(r.in) || r.in.len > c->out_len) {
		fuse_log(s, KV_LOG_WARN, "request len %u, chain holds %llu", r.in.len,
			 (unsigned long long)c->out_len);
		return fuse_reply_error(&r, EINVAL);
	}
	const struct fuse_op *op =
	    r.in.opcode < KV_ARRAY_SIZE(fuse_ops) ? &fuse_ops[r.in.opcode] : NULL;
	if (!op || !op->fn) {
		fuse_log(s, KV_LOG_DEBUG, "opcode %u not implemented", r.in.opcode);
		return fuse_reply_error(&r, ENOSYS);
	}
	if (!s->initialized && r.in.opcode != FUSE_INIT)
		return op->no_reply ? 0 : fuse_reply_error(&r, EIO);
	if (!op->no_reply && c->in_len < sizeof(struct fuse_out_header) + op->reply)
		return fuse_reply_error(&r, EINVAL);
	int e = fuse_req_args(&r);
	if (e == 0)
		e = op->fn(&r);
	if (op->no_reply)
		return 0;
	if (e < 0)
		return fuse_reply_error(&r, -e);
	return r.used;
}

/* ------------------------------------------------------------- shares */

static int fuse_share_open(struct fuse_server *s, struct fuse_share *sh,
			   const struct virtio_fs_share *spec, struct kv_err **err)
{
	sh->path = kv_strdup(spec->path);
	sh->name = spec->name ? kv_strdup(spec->name) : NULL;
	sh->ro = spec->ro;
	sh->dev = spec->dev;
	/* The operator's path: symlinks in it are theirs to follow. */
	sh->fd = open(spec->path, O_PATH | O_CLOEXEC);
	if (sh->fd < 0)
		return kv_err_make(err, errno, "virtio-fs %s: open %s", s->tag, spec->path);
	struct stat st;
	if (fstat(sh->fd, &st) < 0)
		return kv_err_make(err, errno, "virtio-fs %s: stat %s", s->tag, spec->path);
	sh->type = st.st_mode & S_IFMT;
	if (sh->type != S_IFDIR && sh->type != S_IFREG)
		return kv_err_plain(err, EINVAL, "virtio-fs %s: %s is not a directory or file",
				    s->tag, spec->path);
	return 0;
}

bool fuse_share_name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > VIRTIO_FS_NAME_MAX || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return false;
	return strchr(n, '/') == NULL;
}

static int fuse_shares_check(struct fuse_server *s, const struct virtio_fs_share *specs, unsigned n,
			     struct kv_err **err)
{
	if (n == 0 || n > VIRTIO_FS_SHARES_MAX)
		return kv_err_plain(err, EINVAL, "virtio-fs %s: %u shares (1..%d)", s->tag, n,
				    VIRTIO_FS_SHARES_MAX);
	for (unsigned i = 0; i < n; i++) {
		if (n > 1 && !specs[i].name)
			return kv_err_plain(
			    err, EINVAL, "virtio-fs %s: %s: with several shares each needs a name",
			    s->tag, specs[i].path);
		if (specs[i].name && !fuse_share_name_ok(specs[i].name))
			return kv_err_plain(err, EINVAL, "virtio-fs %s: bad share name '%s'",
					    s->tag, specs[i].name);
		for (unsigned j = 0; j < i; j++)
			if (specs[i].name && strcmp(specs[i].name, specs[j].name) == 0)
				return kv_err_plain(err, EEXIST,
						    "virtio-fs %s: share name '%s' twice", s->tag,
						    specs[i].name);
	}
	return 0;
}

/* fs.nr_open, the most RLIMIT_NOFILE may be (1048576 unless set); read
 * once per process (devices are made on the set-up thread). */
static rlim_t fuse_nr_open(void)
{
	static rlim_t nr_open;
	if (nr_open)
		return nr_open;
	cleanup_free char *text = NULL;
	unsigned long long v = 0;
	if (kv_read_file("/proc/sys/fs/nr_open", 32, &text, NULL, NULL) == 0)
		v = strtoull(text, NULL, 10);
	nr_open = v ? (rlim_t)v : 1048576;
	return nr_open;
}

/*
 * Every inode the guest holds is an open O_PATH fd, and a guest that walks
 * a big tree (find /usr) holds one for each entry in its dentry cache: so,
 * as virtiofsd does, raise RLIMIT_NOFILE to fs.nr_open (both limits, where
 * we may: a VMM started as root, during set-up; a hard limit of 4096, the
 * kernel's default where no service manager raised it, answered ENFILE
 * after 2048 entries), or else the soft limit to the hard one, and size
 * the tables from it, leaving the other devices headroom. A full table
 * answers ENFILE; the guest forgets and retries.
 */
static void fuse_server_limits(struct fuse_server *s)
{
	struct rlimit rl;
	rlim_t want = fuse_nr_open();
	if (want > 2 * (rlim_t)FUSE_INODES_MAX)
		want = 2 * (rlim_t)FUSE_INODES_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		rl.rlim_cur = 1024;
	} else if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		struct rlimit up = {want, want};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	uint64_t fds = rl.rlim_cur == RLIM_INFINITY ? FUSE_INODES_MAX : rl.rlim_cur;
	uint64_t inodes = fds / 2, handles = fds / 8;
	s->max_inodes = inodes < 512 ? 512 : inodes > FUSE_INODES_MAX ? FUSE_INODES_MAX : inodes;
	s->max_handles = handles < 128		      ? 128
			 : handles > FUSE_HANDLES_MAX ? FUSE_HANDLES_MAX
						      : handles;
}

int fuse_server_init(struct fuse_server *s, const char *tag, const struct virtio_fs_share *specs,
		     unsigned n, bool live, struct fuse_dax dax, struct kv_err **err)
{
	memset(s, 0, sizeof(*s));
	s->tag = tag;
	s->proc_fd = -1;
	s->proc_mnt = -1;
	s->dax = dax;
	s->live = live;
	s->rl = (struct kv_ratelimit)KV_RATELIMIT_INIT(5000, 10);
	fuse_server_limits(s);
	for (unsigned i = 0; i < FUSE_SHARES_MAX; i++)
		s->shares[i].fd = -1;
	if (live && n)
		return kv_err_plain(err, EINVAL,
				    "virtio-fs %s: a live device starts empty (shares come later)",
				    tag);
	if (!live && fuse_shares_check(s, specs, n, err) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++, s->nshares++)
		if (fuse_share_open(s, &s->shares[i], &specs[i], err) < 0)
			return -1;
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0)
		return kv_err_make(err, errno, "virtio-fs %s: open /proc/self/fd", tag);
	s->argbuf = kv_malloc0(FUSE_ARGS_MAX);
	s->replybuf = kv_malloc0(FUSE_REPLY_MAX);
	struct fuse_share *sh = &s->shares[0];
	if (n == 1 && !sh->name && sh->type == S_IFREG) {
		/* A single file: the only entry of a synthetic root, named after it. */
		const char *base = strrchr(sh->path, '/');
		base = base ? base + 1 : sh->path;
		if (!fuse_share_name_ok(base))
			return kv_err_plain(err, EINVAL, "virtio-fs %s: bad file name %s", tag,
					    sh->path);
		sh->name = kv_strdup(base);
	}
	s->synthetic_root = live || sh->name != NULL;
	struct stat st;
	int root_fd = -1;
	if (s->synthetic_root) {
		memset(&st, 0, sizeof(st));
		st.st_mode = S_IFDIR | 0555;
		st.st_ino = FUSE_SYNTH_ROOT_INO;
	} else {
		root_fd = fcntl(sh->fd, F_DUPFD_CLOEXEC, 0);
		if (root_fd < 0 || fstat(root_fd, &st) < 0)
			return kv_err_make(err, errno, "virtio-fs %s: %s", tag, sh->path);
	}
	return fuse_tables_init(s, root_fd, &st, err);
}

int fuse_server_root_share(const struct fuse_server *s)
{
	const struct fuse_share *sh = &s->shares[0];
	if (s->live || s->synthetic_root || s->nshares != 1 || sh->type != S_IFDIR)
		return -1;
	return sh->fd;
}

void fuse_server_proc_own(struct fuse_server *s)
{
	cleanup_close int fs = fsopen("proc", FSOPEN_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "subset", "pid", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		kv_debug("virtio-fs %s: a proc of its own: %s; the host's /proc stays", s->tag,
			 strerror(errno));
		return;
	}
	/* Kept open until the server is destroyed: closing the last fd of a
	 * mount attached nowhere unmounts it, and that waits for an RCU grace
	 * period. */
	cleanup_close int mnt =
	    fsmount(fs, FSMOUNT_CLOEXEC,
		    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	char self[32];
	snprintf(self, sizeof(self), "%d/fd", (int)getpid());
	int fd = mnt < 0 ? -1 : openat(mnt, self, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		kv_debug("virtio-fs %s: a proc of its own: %s; the host's /proc stays", s->tag,
			 strerror(errno));
		return;
	}
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	if (s->proc_mnt >= 0)
		close(s->proc_mnt);
	s->proc_fd = fd;
	s->proc_mnt = steal_fd(mnt);
}

int fuse_server_confine(struct fuse_server *s, const struct fuse_confine *c, struct kv_err **err)
{
	if (unshare(CLONE_FS) < 0)
		return kv_err_make(err, errno, "virtio-fs %s: unshare(CLONE_FS)", s->tag);
	umask(0);
	if (c->jail) {
		if (c->jail(c->ctx, fuse_server_root_share(s), c->jail_fd, err) < 0)
			return kv_err_wrap(err, "virtio-fs %s: jail worker", s->tag);
		/* And a /proc whose ".." does not lead out of that root. */
		fuse_server_proc_own(s);
	}
	if (c->landlock && fuse_landlock(s, err) < 0)
		return -1;
	if (c->confine && c->confine(c->ctx, err) < 0)
		return kv_err_wrap(err, "virtio-fs %s: confine worker", s->tag);
	return 0;
}

void fuse_server_reset(struct fuse_server *s)
{
	fuse_tables_clear(s, true);
	fuse_dax_unmap_all(s);
	s->initialized = false;
}

void fuse_server_destroy(struct fuse_server *s)
{
	fuse_tables_free(s);
	if (s->dax.hva) {
		kv_debug("virtio-fs dax: %llu DAX mappings set up, %llu removed (tag %s)",
			 (unsigned long long)s->dax_maps, (unsigned long long)s->dax_unmaps,
			 s->tag ? s->tag : "?");
		fuse_dax_unmap_all(s);
	}
	for (unsigned i = 0; i < FUSE_SHARES_MAX; i++) {
		if (s->shares[i].fd >= 0)
			close(s->shares[i].fd);
		free(s->shares[i].name);
		free(s->shares[i].path);
	}
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	if (s->proc_mnt >= 0)
		close(s->proc_mnt);
	free(s->argbuf);
	free(s->replybuf);
	memset(s, 0, sizeof(*s));
}
