/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's filesystem view, built by the child in its own mount
 * namespace, so that whatever it mounts disappears with it: nothing to undo
 * when setup fails. Order: make "/" private, mount the rootfs source, take
 * the bind sources (open_tree) while the agent's tree is still visible,
 * pivot_root, then every spec mount with paths inside the new root (a
 * symlink in the image resolves inside the container, never outside).
 * readonlyPaths, maskedPaths and the read-only root come last, in
 * mounts_finish_rootfs(), once the child has written hostname and sysctl.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define ERR(e, ...) kv_err_make(err, (e), __VA_ARGS__)

static int mount_block(const char *dev, const char *target, const char *fstype, const char *options,
		       unsigned long extra, struct kv_err **err)
{
	unsigned long set = extra, clear = 0, prop = 0;
	bool bind = false, rec = false;
	cleanup_free char *data = kv_malloc0(options ? strlen(options) + 1 : 1);
	cleanup_free char *opts = kv_strdup(options ? options : "");
	size_t dlen = 0;
	for (char *save = NULL, *o = strtok_r(opts, ",", &save); o;
	     o = strtok_r(NULL, ",", &save)) {
		if (kv_mount_option(o, &set, &clear, &prop, &bind, &rec))
			continue;
		dlen += sprintf(data + dlen, "%s%s", dlen ? "," : "", o);
	}
	if (mount(dev, target, fstype, set & ~clear, data) < 0)
		return ERR(errno, "mount %s (%s) on %s", dev, fstype, target);
	return 0;
}

/*
 * A layer's block device may have been probed in a template, whose buffer
 * cache kept what the slot's placeholder held (the partition scan reads the
 * first blocks): drop it before the file system reads its superblock.
 */
static void block_flush(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)ioctl(fd, BLKFLSBUF, 0);
	close(fd);
}

/*
 * A pod's layer slot is bound to another member's layer once the member
 * before it is deleted; that member's mount of the device goes with its
 * mount namespace, a moment after its last process. Until then a new
 * erofs mount of the device would share the old superblock and its cached
 * metadata: wait for it to go (up to 2 s; the runtime deletes first).
 */
static int layer_device_free(const char *dev, const char *fstype, struct kv_err **err)
{
	if (!fstype || strcmp(fstype, "erofs") != 0)
		return 0;
	const char *base = strrchr(dev, '/');
	cleanup_free char *sb = kv_asprintf("/sys/fs/erofs/%s", base ? base + 1 : dev);
	for (int i = 0; i < 100; i++) {
		if (access(sb, F_OK) < 0)
			return 0;
		usleep(20000);
	}
	return ERR(EBUSY, "%s is still mounted by an earlier container", dev);
}

/* A layer or the upper: its device or virtio-fs tag mounted on dir. */
static int layer_mount(const struct kv_layer *l, const char *dir, unsigned long extra,
		       struct kv_err **err)
{
	if (l->tag) {
		if (mount(l->tag, dir, "virtiofs", extra, l->options) < 0)
			return ERR(errno, "mount virtiofs %s on %s", l->tag, dir);
		return 0;
	}
	if (layer_device_free(l->device, l->fstype, err) < 0)
		return -1;
	block_flush(l->device);
	return mount_block(l->device, dir, l->fstype, l->options, extra, err);
}

static int rootfs_overlay(const struct kv_rootfs *r, const char *mnt, char **root,
			  struct kv_err **err)
{
	if (mount("tmpfs", mnt, "tmpfs", 0, "mode=0755") < 0)
		return ERR(errno, "mount scratch tmpfs on %s", mnt);
	size_t cap = 4096, len = 0;
	cleanup_free char *lower = kv_malloc0(cap);
	for (size_t i = r->nlayers; i-- > 0;) {
		const struct kv_layer *l = &r->layers[i];
		cleanup_free char *dir = NULL;
		if (!l->path) {
			dir = kv_asprintf("%s/l%zu", mnt, i);
			if (mkdir(dir, 0755) < 0)
				return ERR(errno, "mkdir %s", dir);
			if (layer_mount(l, dir, MS_RDONLY, err) < 0)
				return kv_err_wrap(err, "layers[%zu]", i);
		}
		const char *p = l->path ? l->path : dir;
		if (len + strlen(p) + 2 > cap)
			return ERR(E2BIG, "layers: lowerdir longer than %zu bytes", cap);
		len += sprintf(lower + len, "%s%s", len ? ":" : "", p);
	}
	/* The upper's upper/ and work/: on its device or share, in a directory
	 * given as a path, or on the scratch tmpfs (no upper given). */
	cleanup_free char *updir =
	    r->upper.path ? kv_strdup(r->upper.path) : kv_asprintf("%s/u", mnt);
	if (!r->upper.path && mkdir(updir, 0755) < 0)
		return ERR(errno, "mkdir %s", updir);
	if ((r->upper.device || r->upper.tag) && layer_mount(&r->upper, updir, 0, err) < 0)
		return kv_err_wrap(err, "upper");
	cleanup_free char *upper = kv_asprintf("%s/upper", updir);
	cleanup_free char *work = kv_asprintf("%s/work", updir);
	*root = kv_asprintf("%s/root", mnt);
	if ((mkdir(upper, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(work, 0755) < 0 && errno != EEXIST) || mkdir(*root, 0755) < 0)
		return ERR(errno, "mkdir overlay directories in %s", mnt);
	cleanup_free char *data =
	    kv_asprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (mount("overlay", *root, "overlay", 0, data) < 0)
		return ERR(errno, "mount overlay (%s)", data);
	return 0;
}

/* Mount the rootfs source; *root is where it is now. */
static int rootfs_mount(const struct kv_rootfs *r, const char *state_dir, char **root,
			struct kv_err **err)
{
	cleanup_free char *mnt = kv_asprintf("%s/mnt", state_dir);
	const char *t = r->type;
	if (strcmp(t, "dir") == 0) {
		/* pivot_root wants a mount point. */
		if (mount(r->path, r->path, NULL, MS_BIND | MS_REC, NULL) < 0)
			return ERR(errno, "bind %s", r->path);
		*root = kv_strdup(r->path);
		return 0;
	}
	if (strcmp(t, "overlay") == 0)
		return rootfs_overlay(r, mnt, root, err);
	if (strcmp(t, "block") == 0) {
		if (mount_block(r->device, mnt, r->fstype, r->options, 0, err) < 0)
			return -1;
	} else if (strcmp(t, "virtiofs") == 0) {
		if (mount(r->tag, mnt, "virtiofs", 0, r->options) < 0)
			return ERR(errno, "mount virtiofs %s", r->tag);
	} else {
		cleanup_free char *data =
		    kv_asprintf("trans=virtio,version=9p2000.L,cache=mmap%s%s",
				r->options ? "," : "", r->options ? r->options : "");
		if (mount(r->tag, mnt, "9p", 0, data) < 0)
			return ERR(errno, "mount 9p %s", r->tag);
	}
	*root = steal_ptr(mnt);
	return 0;
}

static int do_pivot(const char *root, struct kv_err **err)
{
	if (chdir(root) < 0)
		return ERR(errno, "chdir %s", root);
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		/* An initramfs root cannot be pivoted away: move over it. */
		if (errno != EINVAL)
			return ERR(errno, "pivot_root %s", root);
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0)
			return ERR(errno, "move %s to /", root);
	} else if (umount2(".", MNT_DETACH) < 0) {
		return ERR(errno, "detach the old root");
	}
	if (chdir("/") < 0)
		return ERR(errno, "chdir /");
	return 0;
}

/* Create a missing mount target: a directory, or a file for a file bind. */
static int make_target(const char *dest, bool file, struct kv_err **err)
{
	cleanup_free char *dir = kv_strdup(dest);
	char *slash = strrchr(dir, '/');
	if (file && slash && slash != dir) {
		*slash = '\0';
		if (kv_mkdir_p(dir, 0755, err) < 0)
			return -1;
	}
	if (!file)
		return mkdir(dest, 0755) == 0 || errno == EEXIST ? 0 : kv_mkdir_p(dest, 0755, err);
	int fd = open(dest, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return ERR(errno, "create %s", dest);
	close(fd);
	return 0;
}

/*
 * A bind mount gets exactly the per-mount flags its options give, none kept
 * from its source (in the guest, a virtio-fs share mounted nosuid,nodev): as
 * runc's bind remount does, with mount_setattr() on the detached tree, so
 * nothing looks the path up again. atime is kept unless an option sets it.
 */
static int bind_set_flags(const struct kv_mount *m, int tree, struct kv_err **err)
{
	static const struct {
		unsigned long ms;
		uint64_t attr;
	} map[] = {
	    {MS_RDONLY, MOUNT_ATTR_RDONLY},	    {MS_NOSUID, MOUNT_ATTR_NOSUID},
	    {MS_NODEV, MOUNT_ATTR_NODEV},	    {MS_NOEXEC, MOUNT_ATTR_NOEXEC},
	    {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME}, {MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW},
	};
	struct mount_attr attr = {0};
	for (size_t i = 0; i < KV_ARRAY_SIZE(map); i++) {
		if (m->flags & map[i].ms)
			attr.attr_set |= map[i].attr;
		else
			attr.attr_clr |= map[i].attr;
	}
	if (m->flags & (MS_STRICTATIME | MS_NOATIME | MS_RELATIME)) {
		/* mount(2)'s precedence: strictatime, then noatime. */
		attr.attr_clr |= MOUNT_ATTR__ATIME;
		attr.attr_set |= m->flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME
				 : m->flags & MS_NOATIME   ? MOUNT_ATTR_NOATIME
							   : MOUNT_ATTR_RELATIME;
	}
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		return ERR(errno, "set the options of the bind of %s", m->source);
	return 0;
}

/*
 * A bind's destination, looked up from the container's root (we have
 * pivoted): ".." and absolute symlinks stay inside it, a trailing symlink
 * is followed as mount(2) follows it, and magic links (/proc/<pid>/root,
 * /proc/self/fd/N), which could lead out of it, are refused.
 */
static int bind_target_open(const char *dest)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS};
	return syscall(SYS_openat2, AT_FDCWD, dest, &how, sizeof(how));
}

static int spec_mount_bind(const struct kv_mount *m, int tree, struct kv_err **err)
{
	if (bind_set_flags(m, tree, err) < 0)
		return -1;
	cleanup_close int target = bind_target_open(m->destination);
	if (target < 0 && errno == ENOENT) {
		struct stat st;
		if (fstat(tree, &st) < 0)
			return ERR(errno, "stat %s", m->source);
		if (make_target(m->destination, !S_ISDIR(st.st_mode), err) < 0)
			return -1;
		target = bind_target_open(m->destination);
	}
	if (target < 0 || syscall(SYS_move_mount, tree, "", target, "",
				  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return ERR(errno, "bind %s on %s", m->source, m->destination);
	return 0;
}

/*
 * True when dest's parent directory is a tmpfs this setup mounted a moment
 * ago: it is empty, so mkdir first instead of a mount that must fail.
 */
static bool parent_is_fresh_tmpfs(const struct kv_spec *s, size_t n)
{
	const char *dest = s->mounts[n].destination, *slash = strrchr(dest, '/');
	size_t plen = slash ? (size_t)(slash - dest) : 0;
	for (size_t i = 0; i < n && plen; i++) {
		const struct kv_mount *m = &s->mounts[i];
		if (!m->bind && strcmp(m->type, "tmpfs") == 0 && strlen(m->destination) == plen &&
		    strncmp(m->destination, dest, plen) == 0)
			return true;
	}
	return false;
}

/*
 * A tmpfs gets the mode its mount point had, as in runc, which puts
 * "mode=<old mode>" before the options: a mode= in them still wins. A mount
 * point made for it keeps tmpfs's default, 1777.
 */
static char *tmpfs_data(const char *dest, const char *data)
{
	struct stat st;
	if (stat(dest, &st) < 0)
		return NULL;
	return kv_asprintf("mode=%04o%s%s", (unsigned)(st.st_mode & 07777), data ? "," : "",
			   data ? data : "");
}

/*
 * runc mounts a read-only tmpfs, and a read-only /dev, writable, and makes
 * them read-only at the end (its finalizeRootfs, our mounts_finish_rootfs()):
 * /dev still has to get its device nodes and the mounts under it (/dev/pts,
 * /dev/shm), and any tmpfs the mount points of the mounts below it.
 */
static bool ro_at_finish(const struct kv_mount *m)
{
	return !m->bind && (m->flags & MS_RDONLY) &&
	       (strcmp(m->type, "tmpfs") == 0 || strcmp(m->destination, "/dev") == 0);
}

/* A filesystem mount (not a bind). had_target: dest existed before setup. */
static int spec_mount_fs(const struct kv_mount *m, bool had_target, struct kv_err **err)
{
	/* The guest is cgroup v2 only: a "cgroup" mount is the v2 hierarchy. */
	const char *type = strcmp(m->type, "cgroup") == 0 ? "cgroup2" : m->type;
	const char *data = m->data && *m->data ? m->data : NULL;
	if (strcmp(type, "cgroup2") == 0)
		data = NULL;
	cleanup_free char *tmpfs =
	    had_target && strcmp(type, "tmpfs") == 0 ? tmpfs_data(m->destination, data) : NULL;
	if (tmpfs)
		data = tmpfs;
	unsigned long flags = ro_at_finish(m) ? m->flags & ~MS_RDONLY : m->flags;
	int r = mount(m->source, m->destination, type, flags, data);
	if (r < 0 && errno == ENOENT) {
		if (make_target(m->destination, false, err) < 0)
			return -1;
		r = mount(m->source, m->destination, type, flags, data);
	}
	if (r < 0)
		return ERR(errno, "mount %s (%s) on %s", m->source, type, m->destination);
	return 0;
}

static int spec_mount_one(const struct kv_mount *m, int tree, bool fresh_parent,
			  struct kv_err **err)
{
	if (fresh_parent && mkdir(m->destination, 0755) < 0 && errno != EEXIST)
		return ERR(errno, "mkdir %s", m->destination);
	int r = m->bind ? spec_mount_bind(m, tree, err) : spec_mount_fs(m, !fresh_parent, err);
	if (r < 0)
		return -1;
	if (m->propagation && mount(NULL, m->destination, NULL, m->propagation, NULL) < 0)
		return ERR(errno, "set propagation of %s", m->destination);
	return 0;
}

/* A /dev tmpfs from the spec gets the standard devices (runc's list). */
static int dev_populate(struct kv_err **err)
{
	static const struct {
		const char *path;
		unsigned major, minor;
	} devs[] = {
	    {"/dev/null", 1, 3},   {"/dev/zero", 1, 5},	   {"/dev/full", 1, 7},
	    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
	};
	static const struct {
		const char *target, *link;
	} links[] = {
	    {"/proc/self/fd", "/dev/fd"},	{"/proc/self/fd/0", "/dev/stdin"},
	    {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	    {"pts/ptmx", "/dev/ptmx"},
	};
	mode_t old = umask(0);
	for (size_t i = 0; i < KV_ARRAY_SIZE(devs); i++)
		if (mknod(devs[i].path, S_IFCHR | 0666, makedev(devs[i].major, devs[i].minor)) <
			0 &&
		    errno != EEXIST) {
			umask(old);
			return ERR(errno, "mknod %s", devs[i].path);
		}
	umask(old);
	for (size_t i = 0; i < KV_ARRAY_SIZE(links); i++)
		if (symlink(links[i].target, links[i].link) < 0 && errno != EEXIST)
			return ERR(errno, "symlink %s", links[i].link);
	return 0;
}

/* linux.readonlyPaths: each a read-only bind of itself (absent ones are skipped). */
static int readonly_paths(const struct kv_spec *s, struct kv_err **err)
{
	for (size_t i = 0; i < s->nreadonly; i++) {
		const char *p = s->readonly_paths[i];
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return ERR(errno, "linux.readonlyPaths[%zu]: bind %s", i, p);
		}
		if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
			return ERR(errno, "linux.readonlyPaths[%zu]: remount %s", i, p);
	}
	return 0;
}

/* linux.maskedPaths: /dev/null over a file, an empty read-only tmpfs over a directory. */
static int mask_paths(const struct kv_spec *s, struct kv_err **err)
{
	for (size_t i = 0; i < s->nmasked; i++) {
		const char *p = s->masked_paths[i];
		if (mount("/dev/null", p, NULL, MS_BIND, NULL) == 0 || errno == ENOENT)
			continue;
		if (errno != ENOTDIR ||
		    mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0,mode=0555") < 0)
			return ERR(errno, "linux.maskedPaths[%zu]: mask %s", i, p);
	}
	return 0;
}

/* Take every bind source before the agent's tree goes out of reach. */
static int open_bind_sources(const struct kv_spec *s, int *trees, struct kv_err **err)
{
	for (size_t i = 0; i < s->nmounts; i++) {
		const struct kv_mount *m = &s->mounts[i];
		trees[i] = -1;
		if (!m->bind)
			continue;
		unsigned flags =
		    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m->recursive ? AT_RECURSIVE : 0);
		trees[i] = syscall(SYS_open_tree, AT_FDCWD, m->source, flags);
		if (trees[i] < 0)
			return ERR(errno, "mounts[%zu].source: open %s", i, m->source);
	}
	return 0;
}

int mounts_setup_rootfs(const struct kv_spec *s, const char *state_dir, struct kv_err **err)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return ERR(errno, "make / private");
	cleanup_free char *root = NULL;
	if (rootfs_mount(&s->rootfs, state_dir, &root, err) < 0)
		return -1;
	cleanup_free int *trees = kv_malloc0((s->nmounts + 1) * sizeof(int));
	if (open_bind_sources(s, trees, err) < 0)
		return -1;
	if (do_pivot(root, err) < 0)
		return -1;
	bool dev_tmpfs = false;
	for (size_t i = 0; i < s->nmounts; i++) {
		const struct kv_mount *m = &s->mounts[i];
		if (spec_mount_one(m, trees[i], parent_is_fresh_tmpfs(s, i), err) < 0)
			return kv_err_wrap(err, "mounts[%zu]", i);
		if (trees[i] >= 0)
			close(trees[i]);
		if (!m->bind && strcmp(m->destination, "/dev") == 0 &&
		    strcmp(m->type, "tmpfs") == 0)
			dev_tmpfs = true;
	}
	if (dev_tmpfs && dev_populate(err) < 0)
		return kv_err_wrap(err, "/dev");
	return 0;
}

/*
 * After hostname and sysctl (runc's order: a sysctl is written while /proc/sys
 * is still writable; Docker and Podman list it in readonlyPaths).
 */
int mounts_finish_rootfs(const struct kv_spec *s, struct kv_err **err)
{
	if (readonly_paths(s, err) < 0 || mask_paths(s, err) < 0)
		return -1;
	for (size_t i = 0; i < s->nmounts; i++) {
		const struct kv_mount *m = &s->mounts[i];
		if (ro_at_finish(m) &&
		    mount(NULL, m->destination, NULL, m->flags | MS_REMOUNT, NULL) < 0)
			return ERR(errno, "mounts[%zu]: remount %s read-only", i, m->destination);
	}
	if (s->root_readonly && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		return ERR(errno, "root.readonly: remount / read-only");
	if (s->rootfs_propagation && mount(NULL, "/", NULL, s->rootfs_propagation, NULL) < 0)
		return ERR(errno, "linux.rootfsPropagation");
	return 0;
}
