/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-fs DAX window (shared memory region 0, the "cache"). The VMM
 * core reserved host VA for it (anonymous PROT_NONE) and made it a KVM
 * memslot; FUSE_SETUPMAPPING maps a file range over part of it with
 * MAP_SHARED | MAP_FIXED, so the guest reads and writes the host page cache
 * directly; FUSE_REMOVEMAPPING puts anonymous PROT_NONE back. KVM follows
 * the host mapping changes through its MMU notifiers.
 *
 * Every offset and length is checked against the window and the alignment
 * we announced in INIT (map_alignment = FUSE_DAX_ALIGN_LOG2). A guest that
 * touches a part of the window with nothing mapped, or a page past the end
 * of a file, faults its own vCPU: that hurts no one but itself.
 */
#include "vmm/virtio/fuse.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#define FUSE_DAX_ALIGN	       (1ull << FUSE_DAX_ALIGN_LOG2)
#define FUSE_REMOVEMAPPING_MAX 256 /* a page of fuse_removemapping_one, as Linux sends */

static bool fuse_dax_range_ok(const struct fuse_server *s, uint64_t moffset, uint64_t len)
{
	return len && !(moffset & (FUSE_DAX_ALIGN - 1)) && !(len & (FUSE_DAX_ALIGN - 1)) &&
	       moffset <= s->dax.size && len <= s->dax.size - moffset;
}

/* Back to reserved, inaccessible address space. */
static int fuse_dax_reserve(struct fuse_server *s, uint64_t moffset, uint64_t len)
{
	void *p = mmap(s->dax.hva + moffset, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? -errno : 0;
}

void fuse_dax_unmap_all(struct fuse_server *s)
{
	if (s->dax.hva && fuse_dax_reserve(s, 0, s->dax.size) < 0)
		kv_warn("virtio-fs %s: DAX window reset: %s", s->tag, strerror(errno));
}

int fuse_op_setupmapping(struct fuse_req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_setupmapping_in in;
	if (!s->dax.hva)
		return -EOPNOTSUPP;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	/* Linux sends fh = -1 and names the file by nodeid. */
	struct fuse_inode *ino = fuse_inode_get(s, r->in.nodeid);
	if (!ino)
		return -ESTALE;
	if (ino->type != S_IFREG)
		return -EINVAL;
	if (in.flags & ~(uint64_t)(FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE))
		return -EINVAL;
	if (!fuse_dax_range_ok(s, in.moffset, in.len) || (in.foffset & (FUSE_DAX_ALIGN - 1)) ||
	    in.foffset > (uint64_t)INT64_MAX - in.len)
		return -EINVAL;
	bool writable = in.flags & FUSE_SETUPMAPPING_FLAG_WRITE;
	if (writable && fuse_share_of(s, ino)->ro)
		return -EROFS;
	int fd = fuse_inode_open(s, ino, writable ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return fd;
	void *p = mmap(s->dax.hva + in.moffset, in.len, PROT_READ | (writable ? PROT_WRITE : 0),
		       MAP_SHARED | MAP_FIXED, fd, (off_t)in.foffset);
	int e = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (e < 0) {
		/* A failed MAP_FIXED may have unmapped the range: reserve it again. */
		fuse_dax_reserve(s, in.moffset, in.len);
		return e;
	}
	s->dax_maps++;
	return fuse_reply(r, NULL, 0);
}

int fuse_op_removemapping(struct fuse_req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_removemapping_in in;
	struct fuse_removemapping_one one;
	if (!s->dax.hva)
		return -EOPNOTSUPP;
	if (fuse_arg_copy(r, 0, &in, sizeof(in)) < 0)
		return -EINVAL;
	if (in.count > FUSE_REMOVEMAPPING_MAX || in.count > (r->arg_len - sizeof(in)) / sizeof(one))
		return -EINVAL;
	/* All or nothing: check every entry before changing any mapping. */
	for (uint32_t i = 0; i < in.count; i++) {
		if (fuse_arg_copy(r, sizeof(in) + i * sizeof(one), &one, sizeof(one)) < 0 ||
		    !fuse_dax_range_ok(s, one.moffset, one.len))
			return -EINVAL;
	}
	for (uint32_t i = 0; i < in.count; i++) {
		if (fuse_arg_copy(r, sizeof(in) + i * sizeof(one), &one, sizeof(one)) < 0)
			return -EINVAL;
		int e = fuse_dax_reserve(s, one.moffset, one.len);
		if (e < 0)
			return e;
		s->dax_unmaps++;
	}
	return fuse_reply(r, NULL, 0);
}
