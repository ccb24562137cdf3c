/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to vmm/virtio/: the FUSE server behind virtio-fs (fs.c). It
 * decodes one FUSE request from a popped descriptor chain (readable part:
 * fuse_in_header + arguments [+ write data]; writable part: fuse_out_header
 * + reply [+ read data]) and answers it on the host file system, confined
 * beneath the exported directories. No virtio state, no locks: fs.c calls
 * fuse_server_handle() on whichever thread it serves the queues from, one
 * request at a time.
 *
 * The wire format is the kernel's (<linux/fuse.h>, protocol 7.31 and
 * later); virtio-fs carries it in the guest's byte order, which on x86_64
 * is the host's.
 *
 * Confinement (the guest is hostile):
 *  - Every inode the guest names is an O_PATH|O_NOFOLLOW fd in the inode
 *    table, reached from its parent by openat2(RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) of one name that is
 *    checked first (no '/', not "." or "..", at most NAME_MAX bytes). A
 *    symlink is never followed on the host: it is an inode like any other.
 *  - Files are opened for I/O by re-opening the O_PATH fd through
 *    /proc/self/fd (which lands on that very inode), and only regular files
 *    and directories are ever opened: a device node, FIFO or socket in the
 *    export stays a guest-side special file.
 *  - Device nodes are created only when the share allows them (`dev`);
 *    overlayfs whiteouts (char 0:0) always.
 *  - Every length and count from the guest is bounded before use.
 *
 * Ownership: the server creates as itself and gives the new inode to the
 * requester's uid/gid (in setgid directories the group is inherited). The
 * guest mounts virtio-fs with default_permissions, so it checks access
 * itself; the host keeps its own ownership and modes as they are.
 */
#ifndef KV_VMM_VIRTIO_FUSE_H
#define KV_VMM_VIRTIO_FUSE_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/kv.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

/* What we speak: 7.31 (virtio-fs, DAX) up to the header's minor. */
#define FUSE_MIN_MINOR 31

#define FUSE_NAME_MAX	    255	  /* one path component */
#define FUSE_SYMLINK_MAX    4096  /* PATH_MAX, NUL included */
#define FUSE_XATTR_NAME_MAX 255	  /* XATTR_NAME_MAX */
#define FUSE_XATTR_SIZE_MAX 65536 /* XATTR_SIZE_MAX */
#define FUSE_MAX_PAGES_REQ  64	  /* per READ/WRITE: fits a 256-entry chain */
#define FUSE_MAX_WRITE	    (FUSE_MAX_PAGES_REQ * 4096u)
#define FUSE_ARGS_MAX	    (80u << 10) /* copied request arguments (setxattr is the biggest) */
#define FUSE_REPLY_MAX	    (80u << 10) /* replies built in a buffer (getxattr, readdir) */
#define FUSE_DAX_ALIGN_LOG2 12		/* SETUPMAPPING: 4 KiB aligned offsets and lengths */
#define FUSE_COPY_MAX	    (16u << 20) /* copy_file_range per request */
#define FUSE_FORGET_MAX	    4096	/* entries of one BATCH_FORGET */
#define FUSE_ATTR_TIMEOUT_S 1		/* the host may change the export behind the guest */

/* Limits of the tables (the guest cannot grow them past these). */
#define FUSE_INODES_MAX	 (1u << 20)
#define FUSE_HANDLES_MAX (1u << 16)

/* Share slots: a live device's (VIRTIO_FS_LIVE_MAX) or the boot-time ones (fewer). */
#define FUSE_SHARES_MAX VIRTIO_FS_LIVE_MAX

/* One exported host path; a free slot (live devices) has fd -1 and no name. */
struct fuse_share {
	char *name; /* entry under a synthetic root; NULL: this share is the root */
	char *path; /* NULL for a live share (the API passed an fd) */
	bool ro;    /* every change is EROFS */
	bool dev;   /* device nodes may be created */
	int fd;	    /* O_PATH of the share's top (directory or file) */
	mode_t type;
};

struct fuse_inode {
	int fd;	       /* O_PATH|O_NOFOLLOW; -1 for a synthetic root or a gone inode */
	uint32_t slot; /* index in the table (0: the root) */
	uint32_t gen;  /* slot generation: part of the nodeid */
	bool used;
	bool gone;     /* its share was removed: fd closed, slot kept until the guest forgets it */
	uint8_t share; /* the share it was reached through (ro, dev) */
	mode_t type;   /* S_IFMT: an inode never changes type */
	uint64_t nlookup; /* the guest's references (LOOKUP/CREATE... minus FORGET) */
	dev_t dev;
	ino_t ino;
	uint32_t hnext; /* hash chain: slot + 1, 0 ends */
};

struct fuse_handle {
	int fd; /* -1 for the synthetic root's directory handle, or a gone handle */
	uint32_t slot, gen;
	bool used, dir;
	bool gone;     /* its share was removed: fd closed, slot kept until the guest releases it */
	uint8_t share; /* of the inode it was opened from */
	uint32_t inode; /* that inode's slot and generation (it may be forgotten since) */
	uint32_t inode_gen;
};

/* The DAX window: host VA [hva, hva+size) backs guest physical [gpa, ...). */
struct fuse_dax {
	uint8_t *hva; /* NULL: no window */
	uint64_t size;
};

struct fuse_server {
	struct fuse_share shares[FUSE_SHARES_MAX];
	unsigned nshares;    /* slots in use are below this (a live device's may have holes) */
	bool synthetic_root; /* the root lists the named shares */
	bool live;	     /* shares come and go at run time (fuse_live.c) */
	unsigned nlive;	     /* a live device's shares now */
	int proc_fd;	     /* /proc/self/fd, to re-open O_PATH fds */
	int proc_mnt; /* a proc of its own that proc_fd is in (fuse_server_proc_own), or -1 */
	struct fuse_dax dax;
	uint64_t dax_maps, dax_unmaps; /* SETUPMAPPING / REMOVEMAPPING ranges served */

	bool initialized;
	uint32_t minor; /* negotiated protocol minor */

	/*
	 * Tables in fixed chunks, so that a pointer to an entry stays valid
	 * while the table grows (a handler holds the parent while it adds the
	 * child). Slots are reused through a free list (slot + 1, 0 ends).
	 */
	struct fuse_inode **inode_chunks;
	uint32_t ninodes, free_inode, live_inodes, max_inodes;
	uint32_t *hash; /* FUSE_HASH_SIZE chains (slot + 1), by (dev, ino, share) */
	struct fuse_handle **handle_chunks;
	uint32_t nhandles, free_handle, live_handles, max_handles;

	uint8_t *argbuf;   /* FUSE_ARGS_MAX */
	uint8_t *replybuf; /* FUSE_REPLY_MAX */
	struct kv_ratelimit rl;
	const char *tag; /* for log lines */
};

/* One request being served. */
struct fuse_req {
	struct fuse_server *s;
	const struct vq_chain *c;
	struct fuse_in_header in;
	const uint8_t *arg; /* the arguments after the header (copied, bounded) */
	size_t arg_len;
	uint32_t used; /* bytes written to the writable part */
};

/* ------------------------------------------------------------- server */

/*
 * Open the shares and set up the tables. One share without a name is the
 * root (a directory, or a single file under a synthetic root named after
 * it); named shares sit under a synthetic root. A live server starts with
 * an empty synthetic root (n 0) and takes shares at run time. dax may be
 * {NULL, 0}.
 */
int fuse_server_init(struct fuse_server *s, const char *tag, const struct virtio_fs_share *specs,
		     unsigned n, bool live, struct fuse_dax dax, struct kv_err **err) KV_WUR;
/* The fd of the one directory a server exports as its root, or -1 (named
 * shares, a single file, a live device). */
int fuse_server_root_share(const struct fuse_server *s);
/*
 * proc_fd from a proc of the server's own, attached nowhere, that holds
 * only the pid directories (subset=pid), for a worker about to confine
 * itself in a root of its own (sandbox_fs_thread_jail): from the host's
 * /proc a ".." walked from proc_fd leads out of any chroot, to the host's /
 * (until the VMM pivots) and to /proc/sys (for good); from this one it
 * stops at the top of that proc. Needs CAP_SYS_ADMIN and Linux 5.8; where
 * it cannot, the host's stays (said at debug level). On the serving thread.
 */
void fuse_server_proc_own(struct fuse_server *s);
/*
 * How a serving thread confines itself before it serves, in this order:
 * its own fs struct with umask 0 (created modes are exactly the guest's);
 * jail (an empty root or the one share: sandbox_fs_thread_jail), with a
 * proc of its own (fuse_server_proc_own); Landlock beneath the shares
 * (mounting needs what Landlock and seccomp take); then confine (the
 * capabilities and the seccomp list, from the core: last, as the list has
 * no landlock calls). A VMM worker (fs.c) and tests/fuse-devhost.c both
 * go through fuse_server_confine(), so the tool serves as a worker does.
 */
struct fuse_confine {
	int (*jail)(void *ctx, int share_fd, int *keep_fd, struct kv_err **err); /* or NULL */
	int *jail_fd; /* where jail's keep_fd goes (closed by the caller, after the thread) */
	bool landlock;
	int (*confine)(void *ctx, struct kv_err **err); /* or NULL */
	void *ctx;
};
int fuse_server_confine(struct fuse_server *s, const struct fuse_confine *c,
			struct kv_err **err) KV_WUR;
/* fuse_landlock.c: restrict the calling thread to the server's shares
 * (Landlock; nothing where the kernel has none, or for a live device). */
int fuse_landlock(const struct fuse_server *s, struct kv_err **err) KV_WUR;
/* The kernel's Landlock ABI version, or -errno. */
int fuse_landlock_abi(void);
void fuse_server_destroy(struct fuse_server *s);
/* Drop every inode but the root, every handle and every DAX mapping (DESTROY, reset). */
void fuse_server_reset(struct fuse_server *s);
/*
 * Serve the request in chain c. Returns the number of bytes written to the
 * chain's writable part (the used length to complete it with); 0 for
 * requests without a reply (FORGET) or a chain with no room for a header.
 */
uint32_t fuse_server_handle(struct fuse_server *s, const struct vq_chain *c);
/* A share name: 1..VIRTIO_FS_NAME_MAX bytes, no '/', not "." or "..". */
bool fuse_share_name_ok(const char *name);

/* ----------------------------------------- live shares (fuse_live.c) */

/*
 * Add share `name` (virtio_fs_name_ok()) to a live server's root: `fd` (a
 * directory or regular file, consumed on failure too) is re-opened O_PATH
 * and confined like a boot-time share's top.
 */
int fuse_server_share_add(struct fuse_server *s, const char *name, int fd, bool ro, bool dev,
			  struct kv_err **err) KV_WUR;
/*
 * Take share `name` off the root and close every fd reached through it at
 * once: its inodes and handles are "gone" (ESTALE, EIO) and keep their
 * slots until the guest forgets and releases them.
 */
int fuse_server_share_remove(struct fuse_server *s, const char *name, struct kv_err **err) KV_WUR;

/* ------------------------------------------------- inodes (fuse_inode.c) */

#define FUSE_SYNTH_ROOT_INO 1

#define FUSE_CHUNK     1024u
#define FUSE_HASH_SIZE (1u << 16)

/* The inode for a guest nodeid, or NULL (stale, gone or never issued). */
struct fuse_inode *fuse_inode_get(struct fuse_server *s, uint64_t nodeid);
/* The same, gone inodes included: for FORGET, which frees their slots. */
struct fuse_inode *fuse_inode_find(struct fuse_server *s, uint64_t nodeid);
static inline uint64_t fuse_inode_nodeid(const struct fuse_inode *ino)
{
	return (uint64_t)ino->gen << 32 | (ino->slot + 1);
}
static inline struct fuse_inode *fuse_inode_root(struct fuse_server *s)
{
	return &s->inode_chunks[0][0];
}
/*
 * Take `fd` (consumed) for the inode described by st, reached through
 * `share`: an existing inode with the same (dev, ino, share) gets another
 * reference (and fd is closed); otherwise a new slot. NULL when full.
 */
struct fuse_inode *fuse_inode_ref(struct fuse_server *s, int fd, const struct stat *st,
				  unsigned share);
/* Drop n references; the last one closes the fd and frees the slot. */
void fuse_inode_unref(struct fuse_server *s, struct fuse_inode *ino, uint64_t n);
/* The tables, with the root in slot 0 (root_fd consumed; -1 for a synthetic root). */
int fuse_tables_init(struct fuse_server *s, int root_fd, const struct stat *root_st,
		     struct kv_err **err) KV_WUR;
/* Close every handle and every inode but the root (keep_root) or all. */
void fuse_tables_clear(struct fuse_server *s, bool keep_root);
/*
 * Close the fds of every inode and handle reached through `share` and mark
 * them gone (their slots stay taken); *ninodes, *nhandles: how many.
 */
void fuse_tables_drop_share(struct fuse_server *s, unsigned share, unsigned *ninodes,
			    unsigned *nhandles);
void fuse_tables_free(struct fuse_server *s);

/* Handles (FUSE fh) for open files and directories; NULL when stale or gone. */
struct fuse_handle *fuse_handle_get(struct fuse_server *s, uint64_t fh, bool dir);
/* The same, gone handles included: for RELEASE, which frees their slots. */
struct fuse_handle *fuse_handle_find(struct fuse_server *s, uint64_t fh, bool dir);
/* Take fd (consumed, on failure too) opened from ino; returns the fh, or 0 when full. */
uint64_t fuse_handle_new(struct fuse_server *s, int fd, bool dir, const struct fuse_inode *ino);
/* The inode a handle was opened from, or NULL when the guest forgot it since. */
struct fuse_inode *fuse_handle_inode(struct fuse_server *s, const struct fuse_handle *h);
static inline uint64_t fuse_handle_fh(const struct fuse_handle *h)
{
	return (uint64_t)h->gen << 32 | (h->slot + 1);
}
void fuse_handle_close(struct fuse_server *s, struct fuse_handle *h);

/* ------------------------------------------------ helpers (fuse_ops.c) */

/* Reply with a header and `len` bytes of argument; returns 0. */
int fuse_reply(struct fuse_req *r, const void *arg, size_t len);
/* Reply with a header then `len` bytes already written after it (read, readdir). */
int fuse_reply_written(struct fuse_req *r, size_t len);
/*
 * Copy the fixed argument struct of `size` bytes at `off` (copied: some sit
 * unaligned, REMOVEMAPPING's entries after a 4-byte count). Returns 0, or
 * -EINVAL when the request is too short for it.
 */
int fuse_arg_copy(const struct fuse_req *r, size_t off, void *dst, size_t size) KV_WUR;
/*
 * A NUL-terminated name at `off` in the arguments: 1..max bytes, and when
 * `component`, no '/' and not "." or "..". *next is the offset after the
 * NUL. NULL when it does not qualify.
 */
const char *fuse_arg_str(const struct fuse_req *r, size_t off, size_t max, bool component,
			 size_t *next);
/*
 * The fixed part of a request on an inode (open, getattr, ...): the inode
 * its nodeid names (-ESTALE when none), then the part copied into `in`
 * (-EINVAL when the request is short).
 */
int fuse_arg_inode(struct fuse_req *r, void *in, size_t len, struct fuse_inode **ino) KV_WUR;
/*
 * The fixed part of a request on an open handle (read, write, flush, ...):
 * copied into *in (-EINVAL when the request is short), then the handle
 * that its `fh` field names (-EBADF when no such handle is open, -EIO when
 * its share was removed).
 */
#define fuse_arg_handle(r, in, dir, h)                                                             \
	fuse_arg_handle_at((r), (in), sizeof(*(in)), offsetof(__typeof__(*(in)), fh), (dir), (h))
int fuse_arg_handle_at(struct fuse_req *r, void *in, size_t len, size_t fh_off, bool dir,
		       struct fuse_handle **h) KV_WUR;
/* The share an inode belongs to. */
static inline const struct fuse_share *fuse_share_of(struct fuse_server *s,
						     const struct fuse_inode *ino)
{
	return &s->shares[ino->share];
}
/* Whether a share slot holds a share (a live device's may be free). */
static inline bool fuse_share_used(const struct fuse_share *sh)
{
	return sh->fd >= 0;
}
/* Re-open an inode for I/O (regular files and directories only); fd or -errno. */
int fuse_inode_open(struct fuse_server *s, const struct fuse_inode *ino, int flags);
/* The same for any O_PATH fd of the given type. */
int fuse_reopen(struct fuse_server *s, int path_fd, mode_t type, int flags);
/* openat2() of one name beneath dirfd, never through a symlink; fd or -errno. */
int fuse_openat_beneath(int dirfd, const char *name, int flags, mode_t mode);
/* stat of an inode (never follows). */
int fuse_inode_stat(struct fuse_server *s, const struct fuse_inode *ino, struct stat *st);
void fuse_fill_attr(struct fuse_attr *a, const struct stat *st);
/* Look `name` up beneath `parent` and reply with its entry (a new reference). */
int fuse_lookup_reply(struct fuse_req *r, struct fuse_inode *parent, const char *name);
/* Look `name` up and fill an entry (a new reference); negative errno on failure. */
int fuse_lookup_entry(struct fuse_server *s, struct fuse_inode *parent, const char *name,
		      struct fuse_entry_out *e);
/*
 * After creating `name` in `parent`: look it up (a new reference), give it
 * to the requester's uid/gid, restore the mode asked for, fill the entry.
 */
int fuse_new_entry(struct fuse_req *r, struct fuse_inode *parent, const char *name, mode_t mode,
		   struct fuse_entry_out *e);
bool fuse_inode_is_synthetic_root(struct fuse_server *s, const struct fuse_inode *ino);

/* Operation handlers: 0 when they replied, else a negative errno to reply with. */
typedef int (*fuse_op_fn)(struct fuse_req *r);
/* Node operations (fuse_ops.c). */
int fuse_op_lookup(struct fuse_req *r);
int fuse_op_forget(struct fuse_req *r);
int fuse_op_batch_forget(struct fuse_req *r);
int fuse_op_getattr(struct fuse_req *r);
int fuse_op_setattr(struct fuse_req *r);
int fuse_op_readlink(struct fuse_req *r);
int fuse_op_symlink(struct fuse_req *r);
int fuse_op_mknod(struct fuse_req *r);
int fuse_op_mkdir(struct fuse_req *r);
int fuse_op_unlink(struct fuse_req *r);
int fuse_op_rmdir(struct fuse_req *r);
int fuse_op_rename(struct fuse_req *r);
int fuse_op_rename2(struct fuse_req *r);
int fuse_op_link(struct fuse_req *r);
int fuse_op_statfs(struct fuse_req *r);
int fuse_op_access(struct fuse_req *r);
/* File and directory I/O (fuse_io.c). */
int fuse_op_open(struct fuse_req *r);
int fuse_op_create(struct fuse_req *r);
int fuse_op_read(struct fuse_req *r);
int fuse_op_write(struct fuse_req *r);
int fuse_op_flush(struct fuse_req *r);
int fuse_op_release(struct fuse_req *r);
int fuse_op_fsync(struct fuse_req *r);
int fuse_op_opendir(struct fuse_req *r);
int fuse_op_readdir(struct fuse_req *r);
int fuse_op_readdirplus(struct fuse_req *r);
int fuse_op_releasedir(struct fuse_req *r);
int fuse_op_fsyncdir(struct fuse_req *r);
int fuse_op_fallocate(struct fuse_req *r);
int fuse_op_lseek(struct fuse_req *r);
int fuse_op_copy_file_range(struct fuse_req *r);
int fuse_op_syncfs(struct fuse_req *r);
/* Extended attributes (fuse_xattr.c). */
/*
 * The host name for a guest's xattr name (the mapping at the top of
 * fuse_xattr.c): 0, or -EPERM (changing a reserved name), -ENODATA (reading
 * one), -EOPNOTSUPP (a namespace not passed), -ERANGE (too long once mapped).
 */
int fuse_xattr_host_name(const char *guest, bool change, char host[FUSE_XATTR_NAME_MAX + 1]);
/* The guest's name for a host xattr name, or NULL when the guest must not see it. */
const char *fuse_xattr_guest_name(const char *host);
/* Map a host listxattr result into out (room bytes; NULL: count); length or -ERANGE. */
ssize_t fuse_xattr_list_map(const char *list, size_t len, char *out, size_t room);
int fuse_op_setxattr(struct fuse_req *r);
int fuse_op_getxattr(struct fuse_req *r);
int fuse_op_listxattr(struct fuse_req *r);
int fuse_op_removexattr(struct fuse_req *r);
/* The DAX window (fuse_dax.c). */
int fuse_op_setupmapping(struct fuse_req *r);
int fuse_op_removemapping(struct fuse_req *r);
void fuse_dax_unmap_all(struct fuse_server *s);

#endif
