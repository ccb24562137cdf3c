/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Landlock for a virtio-fs worker thread (issue 16): before it serves the
 * guest, the worker restricts itself (Landlock rules are per thread) to its
 * device's shares. Beneath a read-write share it may do every file system
 * access Landlock knows but execute; beneath a read-only one, read files
 * and list directories; anywhere else on the host, nothing: an open, a
 * create, an unlink or a rename outside the shares is EACCES whatever path
 * or fd it goes through (a `..` out of a share, the host's /, an O_PATH fd
 * to anything), so a FUSE server bug that makes the worker open a host file
 * by name gets nothing. The server itself never goes outside (RESOLVE_BENEATH);
 * this is the barrier behind it.
 *
 * What Landlock does not cover (ABI 1-7): metadata changes (chmod, chown,
 * utimes, xattrs) and O_PATH opens; the worker's capabilities and seccomp
 * list bound those. A live device (a pod's, whose shares come later) is not
 * restricted: a Landlock domain cannot grow once applied. Without Landlock
 * in the host kernel (before 5.13, or not in its LSM list) the worker runs
 * as before, and says so at debug level.
 */
#include "vmm/virtio/fuse.h"

#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13) /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
/* ABI 1's rights: execute .. make_sym. */
#define LL_FS_V1 ((1ULL << 13) - 1)
/* What a rule on a file (not a directory) may name. */
#define LL_FS_FILE                                                                                 \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
#define LL_FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

int fuse_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? -errno : (int)abi;
}

int fuse_landlock(const struct fuse_server *s, struct kv_err **err)
{
	if (s->live) {
		kv_debug("virtio-fs %s: live device: no Landlock (its shares come later)", s->tag);
		return 0;
	}
	int abi = fuse_landlock_abi();
	if (abi == -ENOSYS || abi == -EOPNOTSUPP) {
		kv_debug(
		    "virtio-fs %s: no Landlock in this kernel: the worker is not restricted to "
		    "its shares",
		    s->tag);
		return 0;
	}
	if (abi < 0)
		return kv_err_make(err, -abi, "virtio-fs %s: Landlock ABI", s->tag);
	uint64_t handled = LL_FS_V1;
	if (abi >= 2)
		handled |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
	struct landlock_ruleset_attr attr = {.handled_access_fs = handled};
	int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return kv_err_make(err, errno, "virtio-fs %s: landlock_create_ruleset", s->tag);
	int rc = 0;
	for (unsigned i = 0; i < s->nshares && rc == 0; i++) {
		const struct fuse_share *sh = &s->shares[i];
		if (sh->fd < 0)
			continue;
		uint64_t allow = sh->ro ? LL_FS_READ : handled & ~LANDLOCK_ACCESS_FS_EXECUTE;
		if (!S_ISDIR(sh->type))
			allow &= LL_FS_FILE;
		struct landlock_path_beneath_attr pb = {.allowed_access = allow & handled,
							.parent_fd = sh->fd};
		if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			rc = kv_err_make(err, errno, "virtio-fs %s: landlock_add_rule for share %u",
					 s->tag, i);
	}
	/* Without CAP_SYS_ADMIN, restricting takes no_new_privs (the worker sets it anyway). */
	if (rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		rc = kv_err_make(err, errno, "virtio-fs %s: PR_SET_NO_NEW_PRIVS", s->tag);
	if (rc == 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		rc = kv_err_make(err, errno, "virtio-fs %s: landlock_restrict_self", s->tag);
	close(rs);
	return rc;
}
