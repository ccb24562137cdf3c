/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE extended attributes. Only regular files and directories have them
 * here: the others would have to be reached by path, and a symlink must
 * never be followed on the host (EOPNOTSUPP, as for symlinks on many file
 * systems). Namespaces the VMM may not touch (trusted.*, security.capability
 * without CAP_SETFCAP) fail on the host with EPERM, as they should.
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <string.h>
#include <sys/xattr.h>

#define FUSE_OUT_HDR sizeof(struct fuse_out_header)
/* struct fuse_setxattr_in without FUSE_SETXATTR_EXT, which we do not grant. */
#define FUSE_SETXATTR_IN_SIZE FUSE_COMPAT_SETXATTR_IN_SIZE

/* An fd to work on the request inode's attributes, or -errno. */
static int fuse_xattr_fd(struct fuse_req *r, bool change)
{
	struct fuse_inode *ino = fuse_inode_get(r->s, r->in.nodeid);
	if (!ino)
		return -ESTALE;
	if (fuse_inode_is_synthetic_root(r->s, ino) ||
	    (ino->type != S_IFREG && ino->type != S_IFDIR))
		return -EOPNOTSUPP;
	if (change && fuse_share_of(r->s, ino)->ro)
		return -EROFS;
	return fuse_inode_open(r->s, ino, O_RDONLY | O_NONBLOCK);
}

int fuse_op_setxattr(struct fuse_req *r)
{
	uint32_t in[2]; /* size, flags */
	size_t next;
	if (fuse_arg_copy(r, 0, in, FUSE_SETXATTR_IN_SIZE) < 0)
		return -EINVAL;
	const char *name =
	    fuse_arg_str(r, FUSE_SETXATTR_IN_SIZE, FUSE_XATTR_NAME_MAX, false, &next);
	if (!name || in[0] > FUSE_XATTR_SIZE_MAX || in[0] > r->arg_len - next)
		return -EINVAL;
	if (in[1] & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	cleanup_close int fd = fuse_xattr_fd(r, true);
	if (fd < 0)
		return fd;
	if (fsetxattr(fd, name, r->arg + next, in[0], (int)in[1]) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

/* GETXATTR and LISTXATTR: size 0 asks for the size, else the value (ERANGE if bigger). */
static int fuse_xattr_get(struct fuse_req *r, bool list)
{
	struct fuse_getxattr_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	const char *name = NULL;
	if (!list && !(name = fuse_arg_str(r, sizeof(in), FUSE_XATTR_NAME_MAX, false, NULL)))
		return -EINVAL;
	size_t room = r->c->in_len - FUSE_OUT_HDR, size = in.size;
	if (size > FUSE_XATTR_SIZE_MAX)
		size = FUSE_XATTR_SIZE_MAX;
	if (in.size && size > room)
		return -EINVAL; /* a buffer the reply cannot fill */
	cleanup_close int fd = fuse_xattr_fd(r, false);
	if (fd < 0)
		return fd;
	void *buf = size ? r->s->replybuf : NULL;
	ssize_t n = list ? flistxattr(fd, buf, size) : fgetxattr(fd, name, buf, size);
	if (n < 0)
		return -errno;
	if (in.size == 0) {
		struct fuse_getxattr_out out = {.size = (uint32_t)n};
		if (room < sizeof(out))
			return -EINVAL;
		return fuse_reply(r, &out, sizeof(out));
	}
	return fuse_reply(r, buf, n);
}

int fuse_op_getxattr(struct fuse_req *r)
{
	return fuse_xattr_get(r, false);
}

int fuse_op_listxattr(struct fuse_req *r)
{
	return fuse_xattr_get(r, true);
}

int fuse_op_removexattr(struct fuse_req *r)
{
	const char *name = fuse_arg_str(r, 0, FUSE_XATTR_NAME_MAX, false, NULL);
	if (!name)
		return -EINVAL;
	cleanup_close int fd = fuse_xattr_fd(r, true);
	if (fd < 0)
		return fd;
	if (fremovexattr(fd, name) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}
