/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE extended attributes. Only regular files and directories have them
 * here: the others would have to be reached by path, and a symlink must
 * never be followed on the host (EOPNOTSUPP, as for symlinks on many file
 * systems).
 *
 * Names are mapped (virtiofsd's xattrmap, in spirit): nothing the guest
 * sets may become a host security label. In guest terms:
 *  - security.* and trusted.* live on the host as user.kvrun.<name> (the
 *    guest's security.capability from setcap, security.selinux, overlayfs'
 *    trusted.overlay.*): they keep working in the guest, and the host
 *    kernel and LSMs never read them;
 *  - user.* and system.posix_acl_{access,default} pass as they are (ACLs are
 *    permission checks the host applies anyway), but user.kvrun.* is
 *    reserved for the mapping: setting or removing it is EPERM, reading it
 *    ENODATA;
 *  - any other name (other system.*, unknown namespaces) is EOPNOTSUPP.
 * LISTXATTR shows the guest names of what the host has: user.kvrun.security.*
 * and user.kvrun.trusted.* without their prefix, user.* and the two ACLs as
 * they are; the host's own labels (security.*, trusted.*), other
 * user.kvrun.* names and other system.* names are hidden.
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <string.h>
#include <sys/xattr.h>

#define FUSE_OUT_HDR sizeof(struct fuse_out_header)
/* struct fuse_setxattr_in without FUSE_SETXATTR_EXT, which we do not grant. */
#define FUSE_SETXATTR_IN_SIZE FUSE_COMPAT_SETXATTR_IN_SIZE

#define XATTR_MAP_PREFIX "user.kvrun."
#define XATTR_LIST_MAX_	 65536 /* XATTR_LIST_MAX: the most a host listxattr returns */

static bool xattr_has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

static bool xattr_is_acl(const char *name)
{
	return strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}

int fuse_xattr_host_name(const char *guest, bool change, char host[FUSE_XATTR_NAME_MAX + 1])
{
	if (xattr_has_prefix(guest, "security.") || xattr_has_prefix(guest, "trusted.")) {
		if (strlen(XATTR_MAP_PREFIX) + strlen(guest) > FUSE_XATTR_NAME_MAX)
			return -ERANGE; /* as the kernel answers a name over XATTR_NAME_MAX */
		snprintf(host, FUSE_XATTR_NAME_MAX + 1, "%s%s", XATTR_MAP_PREFIX, guest);
		return 0;
	}
	if (xattr_has_prefix(guest, XATTR_MAP_PREFIX))
		return change ? -EPERM : -ENODATA;
	if (xattr_has_prefix(guest, "user.") || xattr_is_acl(guest)) {
		snprintf(host, FUSE_XATTR_NAME_MAX + 1, "%s", guest);
		return 0;
	}
	return -EOPNOTSUPP;
}

const char *fuse_xattr_guest_name(const char *host)
{
	if (xattr_has_prefix(host, XATTR_MAP_PREFIX)) {
		const char *g = host + strlen(XATTR_MAP_PREFIX);
		return xattr_has_prefix(g, "security.") || xattr_has_prefix(g, "trusted.") ? g
											   : NULL;
	}
	return xattr_has_prefix(host, "user.") || xattr_is_acl(host) ? host : NULL;
}

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
	char host[FUSE_XATTR_NAME_MAX + 1];
	int ret = fuse_xattr_host_name(name, true, host);
	if (ret < 0)
		return ret;
	cleanup_close int fd = fuse_xattr_fd(r, true);
	if (fd < 0)
		return fd;
	if (fsetxattr(fd, host, r->arg + next, in[0], (int)in[1]) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}

/*
 * The host's list as the guest sees it (see the top), written to out (room
 * bytes; NULL to count only). Returns the guest list's length, or -ERANGE
 * when it does not fit.
 */
ssize_t fuse_xattr_list_map(const char *list, size_t len, char *out, size_t room)
{
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		const char *h = list + i;
		size_t hl = strnlen(h, len - i);
		if (hl == len - i)
			break; /* not NUL-terminated: ignore the tail */
		i += hl + 1;
		const char *g = hl ? fuse_xattr_guest_name(h) : NULL;
		if (!g)
			continue;
		size_t gl = strlen(g) + 1;
		if (out && n + gl > room)
			return -ERANGE;
		if (out)
			memcpy(out + n, g, gl);
		n += gl;
	}
	return (ssize_t)n;
}

/* GETXATTR and LISTXATTR: size 0 asks for the size, else the value (ERANGE if bigger). */
static int fuse_xattr_get(struct fuse_req *r, bool list)
{
	struct fuse_getxattr_in in;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	char host[FUSE_XATTR_NAME_MAX + 1];
	if (!list) {
		const char *name = fuse_arg_str(r, sizeof(in), FUSE_XATTR_NAME_MAX, false, NULL);
		if (!name)
			return -EINVAL;
		int ret = fuse_xattr_host_name(name, false, host);
		if (ret < 0)
			return ret;
	}
	size_t room = r->c->in_len - FUSE_OUT_HDR, size = in.size;
	if (size > FUSE_XATTR_SIZE_MAX)
		size = FUSE_XATTR_SIZE_MAX;
	if (in.size && size > room)
		return -EINVAL; /* a buffer the reply cannot fill */
	cleanup_close int fd = fuse_xattr_fd(r, false);
	if (fd < 0)
		return fd;
	void *buf = size ? r->s->replybuf : NULL;
	ssize_t n;
	if (list) {
		/* The whole host list, then the guest's view of it (never longer). */
		cleanup_free char *all = kv_malloc0(XATTR_LIST_MAX_);
		ssize_t hn = flistxattr(fd, all, XATTR_LIST_MAX_);
		if (hn < 0)
			return -errno;
		n = fuse_xattr_list_map(all, hn, buf, size);
	} else {
		n = fgetxattr(fd, host, buf, size);
		if (n < 0)
			n = -errno;
	}
	if (n < 0)
		return (int)n;
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
	char host[FUSE_XATTR_NAME_MAX + 1];
	int ret = fuse_xattr_host_name(name, true, host);
	if (ret < 0)
		return ret;
	cleanup_close int fd = fuse_xattr_fd(r, true);
	if (fd < 0)
		return fd;
	if (fremovexattr(fd, host) < 0)
		return -errno;
	return fuse_reply(r, NULL, 0);
}
