/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live shares: named shares added to and removed from a live device's
 * synthetic root while the guest runs (a container joining a running pod
 * VM). Called on the thread that serves the device (fs.c), between
 * requests: the tables are that thread's alone.
 *
 * An added share is what a boot-time TAG/NAME=PATH share is: its top is an
 * O_PATH fd (re-opened from the caller's fd through /proc/self/fd, which
 * lands on that very inode), everything beneath it is reached by
 * fuse_openat_beneath(), `ro` and `dev` apply as at boot.
 *
 * A removed share leaves no host fd behind: its inodes and handles are
 * closed at once and marked gone (fuse_tables_drop_share). The guest learns
 * of it through errors: LOOKUP of the name is ENOENT, its nodeids ESTALE,
 * its handles EIO. Its dentries stay cached for up to FUSE_ATTR_TIMEOUT_S
 * (Linux's virtio-fs has no notifications to drop them sooner); within that
 * time a path through the old name reaches the gone nodeid and fails. A
 * share added later under the same name gets new nodeids (gone inodes are
 * off the hash, their slots not reused before FORGET), so a cached dentry
 * never leads into it.
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <string.h>

static int fuse_live_find(struct fuse_server *s, const char *name)
{
	for (unsigned i = 0; i < s->nshares; i++)
		if (s->shares[i].name && strcmp(s->shares[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int fuse_live_slot(struct fuse_server *s)
{
	for (unsigned i = 0; i < FUSE_SHARES_MAX; i++)
		if (!fuse_share_used(&s->shares[i]) && !s->shares[i].name)
			return (int)i;
	return -1;
}

static int fuse_live_check(struct fuse_server *s, const char *name, struct kv_err **err)
{
	if (!s->live)
		return kv_err_plain(err, EINVAL,
				    "virtio-fs %s: not a live device (start it with --fs %s/)",
				    s->tag, s->tag);
	if (!virtio_fs_name_ok(name, VIRTIO_FS_NAME_MAX))
		return kv_err_plain(err, EINVAL,
				    "virtio-fs %s: bad share name '%s' (1-%d of A-Z a-z 0-9 . _ -, "
				    "not . or ..)",
				    s->tag, name, VIRTIO_FS_NAME_MAX);
	return 0;
}

/* The caller's fd as the share's top: an O_PATH fd of a directory or regular file. */
static int fuse_live_top(struct fuse_server *s, const char *name, int fd, mode_t *type,
			 struct kv_err **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kv_err_make(err, errno, "virtio-fs %s: share '%s': the fd", s->tag, name);
	*type = st.st_mode & S_IFMT;
	if (*type != S_IFDIR && *type != S_IFREG)
		return kv_err_plain(
		    err, EINVAL,
		    "virtio-fs %s: share '%s': the fd is not a directory or regular "
		    "file (mode %#o)",
		    s->tag, name, (unsigned)st.st_mode);
	int top = fuse_reopen(s, fd, *type, O_PATH);
	if (top < 0)
		return kv_err_make(err, -top, "virtio-fs %s: share '%s': re-open the fd O_PATH",
				   s->tag, name);
	return top;
}

int fuse_server_share_add(struct fuse_server *s, const char *name, int fd, bool ro, bool dev,
			  struct kv_err **err)
{
	cleanup_close int owned = fd;
	if (fuse_live_check(s, name, err) < 0)
		return -1;
	if (fuse_live_find(s, name) >= 0)
		return kv_err_plain(err, EEXIST, "virtio-fs %s: share '%s' exists", s->tag, name);
	int slot = fuse_live_slot(s);
	if (slot < 0)
		return kv_err_plain(err, ENOSPC, "virtio-fs %s: share '%s': %d live shares already",
				    s->tag, name, FUSE_SHARES_MAX);
	mode_t type = 0;
	int top = fuse_live_top(s, name, owned, &type, err);
	if (top < 0)
		return -1;
	s->shares[slot] = (struct fuse_share){
	    .name = kv_strdup(name), .ro = ro, .dev = dev, .fd = top, .type = type};
	if ((unsigned)slot >= s->nshares)
		s->nshares = slot + 1;
	s->nlive++;
	kv_info("virtio-fs %s: share '%s' added (%s%s%s)", s->tag, name,
		type == S_IFDIR ? "directory" : "file", ro ? ", ro" : "", dev ? ", dev" : "");
	return 0;
}

int fuse_server_share_remove(struct fuse_server *s, const char *name, struct kv_err **err)
{
	if (fuse_live_check(s, name, err) < 0)
		return -1;
	int slot = fuse_live_find(s, name);
	if (slot < 0)
		return kv_err_plain(err, ENOENT, "virtio-fs %s: no share '%s'", s->tag, name);
	unsigned ninodes, nhandles;
	fuse_tables_drop_share(s, slot, &ninodes, &nhandles);
	struct fuse_share *sh = &s->shares[slot];
	close(sh->fd);
	free(sh->name);
	free(sh->path);
	*sh = (struct fuse_share){.fd = -1};
	while (s->nshares && !fuse_share_used(&s->shares[s->nshares - 1]))
		s->nshares--;
	s->nlive--;
	kv_info("virtio-fs %s: share '%s' removed (%u inodes, %u open files closed)", s->tag, name,
		ninodes, nhandles);
	return 0;
}
