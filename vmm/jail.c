/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jail: namespaces, an empty root and the jail's ids (sandbox.h says
 * what and when). The root is a tmpfs made with the new mount API, so no
 * directory on the host is needed for it and nothing is left there when a
 * VMM dies: it is attached over / in the VMM's own mount namespace (seen
 * by nobody until the pivot), filled, made read-only, and pivoted into as
 * runc does (pivot_root(".", "."), then the old root detached).
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "vmm/sandbox.h"

#define JAIL_TMPFS_SIZE	  "64k"
#define JAIL_TMPFS_INODES "16"

int sandbox_jail_unshare(struct kv_err **err)
{
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return kv_err_make(
		    err, errno,
		    "jail: unshare the mount, ipc and uts namespaces (--no-jail runs "
		    "without the jail)");
	/* Nothing mounted here propagates to the host; the host's unmounts still reach us. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return kv_err_make(err, errno, "jail: make the mounts slaves of the host's");
	return 0;
}

int sandbox_jail_default_id(uid_t *id, struct kv_err **err)
{
	pid_t pid = getpid();
	if (pid != 1) {
		*id = SANDBOX_JAIL_ID_BASE + (uid_t)pid;
		return 0;
	}
	*id = vmm_jail_ns_id();
	if (!*id)
		return kv_err_make(err, errno,
				   "jail: the VM's id from its pid namespace (/proc/self/ns/pid; "
				   "--jail-uid picks one)");
	return 0;
}

/* An empty tmpfs (nosuid, nodev, noexec, and attr), attached nowhere: its
 * mount fd; what names it in the errors. */
static int jail_tmpfs(const char *what, const char *mode, const char *size, const char *inodes,
		      unsigned attr, struct kv_err **err)
{
	cleanup_close int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return kv_err_make(err, errno, "jail: fsopen tmpfs");
	if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", inodes, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return kv_err_make(err, errno, "jail: configure %s tmpfs", what);
	int root = fsmount(fs, FSMOUNT_CLOEXEC,
			   attr | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (root < 0)
		return kv_err_make(err, errno, "jail: fsmount %s tmpfs", what);
	return root;
}

/* The jail's root: an empty tmpfs, attached over /. */
static int jail_root_make(struct kv_err **err)
{
	int root = jail_tmpfs("the root", "0755", JAIL_TMPFS_SIZE, JAIL_TMPFS_INODES, 0, err);
	if (root < 0)
		return -1;
	if (move_mount(root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int e = errno;
		close(root);
		return kv_err_make(err, e, "jail: attach the root tmpfs");
	}
	return root;
}

/*
 * A detached read-only bind mount of dial_dir in *tree; -1 for the host's /
 * (that would show it to the jail: a socket there gets no guest->host
 * connections).
 */
static int jail_dial_tree(const char *dial_dir, int *tree, struct kv_err **err)
{
	*tree = -1;
	struct stat d, host;
	if (stat(dial_dir, &d) == 0 && stat("/", &host) == 0 && d.st_dev == host.st_dev &&
	    d.st_ino == host.st_ino) {
		kv_warn("jail: the vsock socket is in /: guest->host connections will be refused");
		return 0;
	}
	cleanup_close int fd = open_tree(AT_FDCWD, dial_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
	if (fd < 0 || mount_setattr(fd, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return kv_err_make(err, errno, "jail: bind %s", dial_dir);
	*tree = steal_fd(fd);
	return 0;
}

int sandbox_jail_pivot(const char *dial_dir, struct kv_err **err)
{
	cleanup_close int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old < 0)
		return kv_err_make(err, errno, "jail: open /");
	cleanup_close int tree = -1;
	if (dial_dir && jail_dial_tree(dial_dir, &tree, err) < 0)
		return -1;
	cleanup_close int root = jail_root_make(err);
	if (root < 0)
		return -1;
	const char *name = SANDBOX_JAIL_DIAL_DIR + 1;
	if (tree >= 0 && (mkdirat(root, name, 0755) < 0 ||
			  move_mount(tree, "", root, name, MOVE_MOUNT_F_EMPTY_PATH) < 0))
		return kv_err_make(err, errno, "jail: bind %s at %s", dial_dir,
				   SANDBOX_JAIL_DIAL_DIR);
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	if (mount_setattr(root, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return kv_err_make(err, errno, "jail: make the root read-only");
	/* runc's way: the old root ends up stacked on the new one, and is detached. */
	if (fchdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		return kv_err_make(err, errno,
				   "jail: pivot_root (a root that is no mount point, as in a "
				   "chroot, cannot pivot: --no-jail runs without the jail)");
	if (fchdir(old) < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return kv_err_make(err, errno, "jail: detach the host's root");
	return 0;
}

int sandbox_jail_ids(const struct sandbox_ids *ids, struct kv_err **err)
{
	/* Raw system calls: glibc's setresuid() and friends change every thread. */
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		return kv_err_make(err, errno, "jail: drop supplementary groups");
	if (syscall(SYS_setresgid, ids->gid, ids->gid, ids->gid) < 0)
		return kv_err_make(err, errno, "jail: gid %u", (unsigned)ids->gid);
	if (syscall(SYS_setresuid, ids->uid, ids->uid, ids->uid) < 0)
		return kv_err_make(err, errno, "jail: uid %u", (unsigned)ids->uid);
	return 0;
}

int sandbox_fs_thread_jail(int share_fd, int *keep_fd, struct kv_err **err)
{
	/*
	 * A chroot, not a mount namespace of the worker's own (virtiofsd's
	 * --sandbox=namespace): copying the host's mount tree and detaching it
	 * again costs milliseconds (an RCU grace period), this microseconds.
	 * Into the one directory the worker exports, where it has one: then a
	 * ".." walked from any fd beneath it stops at its top, for every call
	 * (Landlock does not cover chmod, chown or xattrs). Else into a tmpfs
	 * attached nowhere: absolute paths lead into it, and Landlock keeps
	 * the fd-relative ones beneath the shares.
	 */
	*keep_fd = -1;
	if (share_fd >= 0) {
		if (fchdir(share_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
			return kv_err_make(err, errno, "jail: chroot into the share");
		return 0;
	}
	/* Kept open: closing the last fd of a mount attached nowhere unmounts
	 * it, and that waits for an RCU grace period (milliseconds). */
	cleanup_close int root =
	    jail_tmpfs("the worker's root", "0555", "4k", "1", MOUNT_ATTR_RDONLY, err);
	if (root < 0)
		return -1;
	if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return kv_err_make(err, errno, "jail: chroot into the worker's root");
	*keep_fd = steal_fd(root);
	return 0;
}
