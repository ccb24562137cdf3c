/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs live devices (params.live, `--fs TAG/`): shares added and
 * removed while the guest runs (virtio_fs_share_add/remove). An empty
 * synthetic root; shares used through it with a boot-time share's rules
 * (ro, confinement); removal while the guest holds nodeids and open files
 * (every host fd closed at once, errors afterwards, slots kept until
 * FORGET/RELEASE, a reused name never reaching the old share's nodes);
 * limits and bad requests; the threaded worker (changes between batches,
 * a busy worker, one that never started).
 */
#include "tap.h"
#include "fs_helpers.h"

#include <dirent.h>
#include <sys/socket.h>

static struct kv_err *err;

static void err_reset(void)
{
	kv_err_free(err);
	err = NULL;
}

/* How many fds this process holds, and how many of them lead into the test tree. */
static int fds_open(int *in_tree)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0, tree = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[300], target[300] = {0};
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		n++;
		if (readlink(p, target, sizeof(target) - 1) > 0 &&
		    strncmp(target, top, strlen(top)) == 0)
			tree++;
	}
	if (d)
		closedir(d);
	if (in_tree)
		*in_tree = tree;
	return n - 1; /* the DIR's own */
}

static bool open_live(struct fsdev *d)
{
	struct virtio_fs_params p = {.tag = "live", .live = true};
	return fs_open_dev(d, &p) && fs_init(d, FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES, NULL) == 0;
}

/* Share host path rel (relative to the export; "" for itself) as name. */
static int add(struct fsdev *d, const char *name, const char *rel, bool ro, int flags)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	int fd = open(p, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err_reset();
	int r = virtio_fs_share_add(d->dev, name, fd, ro, false, &err);
	close(fd); /* the caller's: the device has its own */
	return r < 0 ? -(err ? err->errnum : EIO) : 0;
}

static int del(struct fsdev *d, const char *name)
{
	err_reset();
	int r = virtio_fs_share_remove(d->dev, name, &err);
	return r < 0 ? -(err ? err->errnum : EIO) : 0;
}

/* The root's entries, space-separated (READDIR: names only). */
static int list_root(struct fsdev *d, char *names, size_t n)
{
	uint64_t fh;
	int e = fs_open(d, 1, O_RDONLY, &fh, true);
	if (e)
		return e;
	struct freq r;
	freq_init(&r);
	struct fuse_read_in in = {.fh = fh, .size = 8192};
	freq_add(&r, &in, sizeof(in));
	static uint8_t buf[8192];
	uint32_t got;
	e = fs_call(d, FUSE_READDIR, 1, &r, buf, sizeof(buf), &got);
	names[0] = '\0';
	for (uint32_t pos = 0; e == 0 && pos < got;) {
		struct fuse_dirent de;
		memcpy(&de, buf + pos, sizeof(de));
		size_t len = strlen(names);
		snprintf(names + len, n - len, "%.*s ", (int)de.namelen,
			 (const char *)buf + pos + FUSE_NAME_OFFSET);
		pos += FUSE_DIRENT_SIZE(&de);
	}
	fs_release(d, 1, fh, true);
	return e;
}

static int fs_statfs(struct fsdev *d, uint64_t node, struct fuse_statfs_out *so)
{
	struct freq r;
	freq_init(&r);
	return fs_call(d, FUSE_STATFS, node, &r, so, sizeof(*so), NULL);
}

static bool host_has(const char *rel, const char *want)
{
	char p[256], buf[128] = {0};
	path_of(p, sizeof(p), rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 0 && strcmp(buf, want) == 0;
}

/* -------------------------------------------------------------- empty */

static void test_empty(void)
{
	struct fsdev d;
	char names[512];
	ok(open_live(&d), "live device up, INIT");
	char tag[37] = {0};
	vdrv_config(&d.bd, 0, tag, 36);
	is_str(tag, "live", "config: tag");
	is_str(virtio_fs_tag(d.dev), "live", "virtio_fs_tag");
	is_int(list_root(&d, names, sizeof(names)), 0, "READDIR of the empty root");
	is_str(names, ". .. ", "nothing but . and ..");
	struct fuse_attr_out a;
	is_int(fs_getattr(&d, 1, &a), 0, "GETATTR root");
	is_int(a.attr.mode, S_IFDIR | 0555, "a read-only directory");
	struct fuse_statfs_out so;
	is_int(fs_statfs(&d, 1, &so), 0, "STATFS of an empty root (no share to ask)");
	is_int(so.st.namelen, 255, "namelen 255");
	is_int(fs_lookup(&d, 1, "vol", NULL), -ENOENT, "LOOKUP: ENOENT");
	is_int(fs_mkdir(&d, 1, "x", 0755, NULL), -EPERM, "MKDIR in the root: EPERM");
	is_int(fs_create(&d, 1, "x", O_RDWR, 0644, NULL), -EPERM, "CREATE in the root: EPERM");
	is_int(virtio_fs_live_shares(d.dev), 0, "no shares");
	ok(virtio_fs_snapshot_check(d.dev, &err) == 0, "an empty live device can be snapshotted");
	fs_close_dev(&d);

	struct virtio_env env = {.gm = &fs_mem.gm, .irq = {irq_count_raise, &fs_irqs}};
	struct virtio_fs_share sh = {.name = "x", .path = exp_dir};
	struct virtio_fs_params p = {.tag = "live", .live = true, .shares = &sh, .nshares = 1};
	err_reset();
	struct virtio_mmio *dev = virtio_fs_new(&env, &p, &err);
	ok(!dev && err && strstr(err->msg, "starts empty"), "refused: live with boot shares (%s)",
	   err ? err->msg : "no error");
	static uint8_t win[4096] __attribute__((aligned(4096)));
	p = (struct virtio_fs_params){
	    .tag = "live", .live = true, .dax_gpa = 1ull << 32, .dax_size = 4096, .dax_hva = win};
	err_reset();
	dev = virtio_fs_new(&env, &p, &err);
	ok(!dev && err && strstr(err->msg, "no DAX"), "refused: live with a DAX window (%s)",
	   err ? err->msg : "no error");
	err_reset();
}

/* ------------------------------------------------------ add, use them */

/* vol: the export (rw); conf: export/sub (ro); hosts: export/hello.txt (rw file). */
static void live_use(struct fsdev *d)
{
	struct fuse_entry_out vol, conf, hosts, e;
	uint64_t fh;
	is_int(fs_lookup(d, 1, "vol", &vol), 0, "LOOKUP vol");
	ok(S_ISDIR(vol.attr.mode), "vol: a directory");
	is_int(fs_lookup(d, vol.nodeid, "hello.txt", &e), 0, "LOOKUP vol/hello.txt");
	char buf[64] = {0};
	uint32_t got;
	is_int(fs_open(d, e.nodeid, O_RDONLY, &fh, false), 0, "OPEN it");
	is_int(fs_read(d, e.nodeid, fh, 0, buf, sizeof(buf), &got), 0, "READ");
	is_str(buf, "hello world\n", "the host's bytes");
	fs_release(d, e.nodeid, fh, false);
	struct fs_created c;
	is_int(fs_create(d, vol.nodeid, "live.txt", O_RDWR, 0644, &c), 0, "CREATE vol/live.txt");
	is_int(fs_write(d, c.e.nodeid, c.o.fh, 0, "from the guest\n", 15, NULL), 0, "WRITE");
	fs_release(d, c.e.nodeid, c.o.fh, false);
	ok(host_has("live.txt", "from the guest\n"), "host sees the write (rw share)");

	is_int(fs_lookup(d, 1, "conf", &conf), 0, "LOOKUP conf");
	is_int(fs_lookup(d, conf.nodeid, "inner.txt", &e), 0, "LOOKUP conf/inner.txt");
	is_int(fs_open(d, e.nodeid, O_RDWR, &fh, false), -EROFS, "OPEN rw in conf: EROFS");
	is_int(fs_open(d, e.nodeid, O_RDONLY | O_TRUNC, &fh, false), -EROFS, "O_TRUNC: EROFS");
	is_int(fs_create(d, conf.nodeid, "n", O_RDWR, 0644, NULL), -EROFS, "CREATE: EROFS");
	is_int(fs_mkdir(d, conf.nodeid, "n", 0755, NULL), -EROFS, "MKDIR: EROFS");
	is_int(fs_name_op(d, FUSE_UNLINK, conf.nodeid, "inner.txt"), -EROFS, "UNLINK: EROFS");
	is_int(fs_open(d, e.nodeid, O_RDONLY, &fh, false), 0, "OPEN read-only in conf");
	fs_release(d, e.nodeid, fh, false);

	is_int(fs_lookup(d, 1, "hosts", &hosts), 0, "LOOKUP hosts (a file share)");
	ok(S_ISREG(hosts.attr.mode), "a regular file");
	is_int(fs_open(d, hosts.nodeid, O_WRONLY, &fh, false), 0, "OPEN it for writing");
	is_int(fs_write(d, hosts.nodeid, fh, 12, "more\n", 5, NULL), 0, "WRITE");
	fs_release(d, hosts.nodeid, fh, false);
	ok(host_has("hello.txt", "hello world\nmore\n"), "host sees it");
	char p[256];
	path_of(p, sizeof(p), "hello.txt");
	write_host(p, "hello world\n");
	path_of(p, sizeof(p), "live.txt");
	unlink(p);
}

/* The share's top is as far as the guest gets: the boot-time confinement. */
static void live_escapes(struct fsdev *d)
{
	struct fuse_entry_out vol, esc, conf;
	is_int(fs_lookup(d, 1, "vol", &vol), 0, "LOOKUP vol");
	is_int(fs_lookup(d, vol.nodeid, "..", NULL), -EINVAL, "LOOKUP vol/..: EINVAL");
	is_int(fs_lookup(d, vol.nodeid, "sub/inner.txt", NULL), -EINVAL, "a name with '/'");
	is_int(fs_lookup(d, vol.nodeid, "escape", &esc), 0, "LOOKUP vol/escape (-> ../outside)");
	ok(S_ISLNK(esc.attr.mode), "a symlink, not followed");
	is_int(fs_lookup(d, esc.nodeid, "secret.txt", NULL), -ENOTDIR,
	       "LOOKUP through the symlink: ENOTDIR");
	uint64_t fh;
	is_int(fs_open(d, esc.nodeid, O_RDONLY, &fh, false), -ENXIO, "OPEN the symlink: ENXIO");
	struct fuse_entry_out ff;
	is_int(fs_lookup(d, vol.nodeid, "fifo", &ff), 0, "LOOKUP vol/fifo");
	is_int(fs_open(d, ff.nodeid, O_RDONLY, &fh, false), -ENXIO, "OPEN a FIFO: ENXIO");
	is_int(fs_lookup(d, 1, "conf", &conf), 0, "LOOKUP conf");
	struct freq r;
	freq_init(&r);
	struct fuse_rename2_in rn = {.newdir = conf.nodeid};
	freq_add(&r, &rn, sizeof(rn));
	freq_str(&r, "hello.txt");
	freq_str(&r, "moved.txt");
	is_int(fs_call(d, FUSE_RENAME2, vol.nodeid, &r, NULL, 0, NULL), -EXDEV,
	       "RENAME across live shares: EXDEV");
}

static void test_add(void)
{
	struct fsdev d;
	char names[512];
	int base = fds_open(NULL);
	ok(open_live(&d), "live device up");
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol (an O_PATH fd of a directory)");
	is_int(add(&d, "conf", "sub", true, O_RDONLY | O_DIRECTORY), 0,
	       "add conf, ro (an O_RDONLY fd)");
	is_int(add(&d, "hosts", "hello.txt", false, O_PATH), 0, "add hosts (a regular file)");
	is_int(virtio_fs_live_shares(d.dev), 3, "three shares");
	is_int(list_root(&d, names, sizeof(names)), 0, "READDIR");
	is_str(names, ". .. vol conf hosts ", "lists them");
	live_use(&d);
	live_escapes(&d);
	err_reset();
	int r = virtio_fs_snapshot_check(d.dev, &err);
	ok(r < 0 && err && err->errnum == EBUSY && strstr(err->msg, "3 live shares"),
	   "no snapshot with shares attached (%s)", err ? err->msg : "no error");
	fs_close_dev(&d);
	is_int(fds_open(NULL), base, "device freed: every fd closed");
	err_reset();
}

/* ------------------------------------------------------------ errors */

static void test_errors(void)
{
	struct fsdev d;
	int base = fds_open(NULL);
	ok(open_live(&d), "live device up");
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol");
	is_int(add(&d, "vol", "sub", false, O_PATH), -EEXIST, "the same name again: EEXIST");
	ok(err && strstr(err->msg, "live") && strstr(err->msg, "'vol' exists"),
	   "the message names tag and share (%s)", err ? err->msg : "");
	static const char *const bad[] = {
	    "",
	    ".",
	    "..",
	    "a/b",
	    "a b",
	    "ü",
	    "x:y",
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "4"};
	for (unsigned i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		int r = add(&d, bad[i], "", false, O_PATH);
		ok(r == -EINVAL && err && strstr(err->msg, "bad share name"),
		   "bad name %u: EINVAL (%s)", i, err ? err->msg : "");
	}
	is_int(add(&d, "lnk", "escape", false, O_PATH | O_NOFOLLOW), -EINVAL,
	       "an fd of a symlink: EINVAL");
	ok(err && strstr(err->msg, "not a directory or regular file"), "  says so (%s)",
	   err ? err->msg : "");
	is_int(add(&d, "fifo", "fifo", false, O_PATH), -EINVAL, "an fd of a FIFO: EINVAL");
	int sv[2];
	ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	err_reset();
	ok(virtio_fs_share_add(d.dev, "sock", sv[0], false, false, &err) < 0 && err &&
	       err->errnum == EINVAL,
	   "a socket: EINVAL");
	close(sv[0]);
	close(sv[1]);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	err_reset();
	ok(virtio_fs_share_add(d.dev, "null", devnull, false, false, &err) < 0 && err &&
	       err->errnum == EINVAL,
	   "a device node: EINVAL");
	close(devnull);
	err_reset();
	int r = virtio_fs_share_add(d.dev, "closed", 999, false, false, &err);
	ok(r < 0 && err && err->errnum == EBADF, "an fd that is not open: EBADF (%s)",
	   err ? err->msg : "");
	is_int(del(&d, "nope"), -ENOENT, "remove an unknown name: ENOENT");
	ok(err && strstr(err->msg, "no share 'nope'"), "  says so (%s)", err ? err->msg : "");
	is_int(del(&d, ".."), -EINVAL, "remove '..': EINVAL");
	is_int(virtio_fs_live_shares(d.dev), 1, "still one share");
	fs_close_dev(&d);
	is_int(fds_open(NULL), base, "device freed: every fd closed");
	err_reset();
}

/* The limit, and a freed slot taken again; a device that is not live. */
static void test_limits(void)
{
	struct fsdev d;
	char names[4096];
	int base = fds_open(NULL);
	ok(open_live(&d), "live device up");
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol");
	char name[16];
	bool all = true;
	for (int i = 1; i < VIRTIO_FS_LIVE_MAX; i++) {
		snprintf(name, sizeof(name), "s%02d", i);
		all = all && add(&d, name, "sub", i % 2, O_PATH) == 0;
	}
	ok(all, "%d shares in all", VIRTIO_FS_LIVE_MAX);
	is_int(add(&d, "one-more", "sub", false, O_PATH), -ENOSPC, "one more: ENOSPC");
	ok(err && strstr(err->msg, "64 live shares"), "  says so (%s)", err ? err->msg : "");
	is_int(del(&d, "s10"), 0, "remove s10");
	is_int(add(&d, "one-more", "sub", false, O_PATH), 0, "then one more fits");
	is_int(list_root(&d, names, sizeof(names)), 0, "READDIR of 64 shares");
	ok(strstr(names, " one-more ") && !strstr(names, " s10 ") && strstr(names, " s63 "),
	   "the new one in the freed slot, s10 gone");
	is_int(fs_lookup(&d, 1, "s63", NULL), 0, "LOOKUP the last one");
	fs_close_dev(&d);
	is_int(fds_open(NULL), base, "device freed: every fd closed");

	/* A device that is not live. */
	struct virtio_fs_share sh = {.path = exp_dir};
	struct virtio_fs_params p = {.tag = "boot", .shares = &sh, .nshares = 1};
	ok(fs_open_dev(&d, &p), "a boot-time device");
	is_int(add(&d, "vol", "", false, O_PATH), -EINVAL, "add to it: EINVAL");
	ok(err && strstr(err->msg, "not a live device (start it with --fs boot/)"),
	   "  says so (%s)", err ? err->msg : "");
	is_int(del(&d, "vol"), -EINVAL, "remove from it: EINVAL");
	is_int(virtio_fs_snapshot_check(d.dev, &err), 0, "its snapshots are not affected");
	fs_close_dev(&d);
	err_reset();
}

/* -------------------------------------------------- remove while held */

struct held {
	struct fuse_entry_out vol, sub, file;
	uint64_t fh, dfh;
};

static void held_take(struct fsdev *d, struct held *h)
{
	is_int(fs_lookup(d, 1, "vol", &h->vol), 0, "LOOKUP vol");
	is_int(fs_lookup(d, h->vol.nodeid, "sub", &h->sub), 0, "LOOKUP vol/sub");
	is_int(fs_lookup(d, h->vol.nodeid, "hello.txt", &h->file), 0, "LOOKUP vol/hello.txt");
	is_int(fs_open(d, h->file.nodeid, O_RDWR, &h->fh, false), 0, "OPEN it");
	is_int(fs_open(d, h->sub.nodeid, O_RDONLY, &h->dfh, true), 0, "OPENDIR vol/sub");
}

/* Everything the guest held through a removed share fails; nothing reaches a file. */
static void held_fail(struct fsdev *d, const struct held *h)
{
	char buf[64];
	uint32_t got;
	is_int(fs_getattr(d, h->vol.nodeid, NULL), -ESTALE, "GETATTR vol: ESTALE");
	is_int(fs_getattr(d, h->file.nodeid, NULL), -ESTALE, "GETATTR the file: ESTALE");
	is_int(fs_lookup(d, h->sub.nodeid, "inner.txt", NULL), -ESTALE, "LOOKUP in sub: ESTALE");
	uint64_t fh;
	is_int(fs_open(d, h->file.nodeid, O_RDONLY, &fh, false), -ESTALE, "OPEN: ESTALE");
	is_int(fs_create(d, h->vol.nodeid, "n", O_RDWR, 0644, NULL), -ESTALE, "CREATE: ESTALE");
	is_int(fs_mkdir(d, h->vol.nodeid, "n", 0755, NULL), -ESTALE, "MKDIR: ESTALE");
	is_int(fs_read(d, h->file.nodeid, h->fh, 0, buf, sizeof(buf), &got), -EIO,
	       "READ the open file: EIO");
	is_int(fs_write(d, h->file.nodeid, h->fh, 0, "x", 1, NULL), -EIO, "WRITE: EIO");
	struct freq r;
	freq_init(&r);
	struct fuse_flush_in fl = {.fh = h->fh};
	freq_add(&r, &fl, sizeof(fl));
	is_int(fs_call(d, FUSE_FLUSH, h->file.nodeid, &r, NULL, 0, NULL), -EIO, "FLUSH: EIO");
	freq_init(&r);
	struct fuse_read_in rd = {.fh = h->dfh, .size = 4096};
	freq_add(&r, &rd, sizeof(rd));
	is_int(fs_call(d, FUSE_READDIR, h->sub.nodeid, &r, buf, sizeof(buf), NULL), -EIO,
	       "READDIR the open directory: EIO");
	freq_init(&r);
	struct fuse_copy_file_range_in cr = {
	    .fh_in = h->fh, .nodeid_out = h->file.nodeid, .fh_out = h->fh, .len = 4};
	freq_add(&r, &cr, sizeof(cr));
	is_int(fs_call(d, FUSE_COPY_FILE_RANGE, h->file.nodeid, &r, buf, 24, NULL), -EIO,
	       "COPY_FILE_RANGE: EIO");
	is_int(fs_lookup(d, 1, "vol", NULL), -ENOENT, "LOOKUP vol: ENOENT");
}

static uint32_t slot_of(uint64_t nodeid)
{
	return (uint32_t)nodeid;
}

static void test_remove_held(void)
{
	struct fsdev d;
	struct held h;
	char names[512];
	int tree0, tree;
	int base = fds_open(&tree0);
	ok(open_live(&d), "live device up");
	int up = fds_open(NULL);
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol");
	is_int(add(&d, "keep", "sub", false, O_PATH), 0, "add keep");
	held_take(&d, &h);
	is_int(fds_open(&tree), up + 7, "2 shares, 3 inodes, 2 open files: 7 fds");
	is_int(tree - tree0, 7, "all of them into the export");
	is_int(del(&d, "vol"), 0, "remove vol while the guest holds all that");
	is_int(fds_open(&tree), up + 1, "only keep's fd is left");
	is_int(tree - tree0, 1, "no fd of vol stays open");
	held_fail(&d, &h);
	is_int(list_root(&d, names, sizeof(names)), 0, "READDIR");
	is_str(names, ". .. keep ", "vol is gone from the root");
	struct fuse_entry_out k;
	is_int(fs_lookup(&d, 1, "keep", &k), 0, "the other share still works");

	/* The same name again, the same directory: new nodeids, the old ones stay dead. */
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol again (the same directory)");
	struct fuse_entry_out vol2, file2;
	is_int(fs_lookup(&d, 1, "vol", &vol2), 0, "LOOKUP vol");
	is_int(fs_lookup(&d, vol2.nodeid, "hello.txt", &file2), 0, "LOOKUP vol/hello.txt");
	ok(slot_of(vol2.nodeid) != slot_of(h.vol.nodeid) &&
	       slot_of(file2.nodeid) != slot_of(h.file.nodeid) &&
	       slot_of(file2.nodeid) != slot_of(h.sub.nodeid),
	   "no slot the guest still holds is reused");
	is_int(fs_getattr(&d, h.file.nodeid, NULL), -ESTALE, "the old file's nodeid: ESTALE");
	is_int(fs_getattr(&d, file2.nodeid, NULL), 0, "the new one works");

	/* The guest lets go: RELEASE and FORGET free the slots. */
	is_int(fs_release(&d, h.file.nodeid, h.fh, false), 0, "RELEASE the dead handle");
	is_int(fs_release(&d, h.sub.nodeid, h.dfh, true), 0, "RELEASEDIR the dead handle");
	is_int(fs_release(&d, h.file.nodeid, h.fh, false), -EBADF, "RELEASE again: EBADF");
	fs_forget(&d, h.vol.nodeid, 1);
	fs_forget(&d, h.sub.nodeid, 1);
	fs_forget(&d, h.file.nodeid, 1);
	struct fuse_entry_out again;
	is_int(fs_lookup(&d, vol2.nodeid, "sub", &again), 0, "LOOKUP vol/sub after the FORGETs");
	ok(again.nodeid != h.sub.nodeid && again.nodeid != h.vol.nodeid &&
	       again.nodeid != h.file.nodeid,
	   "a freed slot comes back with a new generation");
	is_int(fs_getattr(&d, h.sub.nodeid, NULL), -ESTALE, "the old nodeid stays stale");
	fs_close_dev(&d);
	is_int(fds_open(NULL), base, "device freed: every fd closed");
}

/* DESTROY and a new INIT: the live shares are the device's, they stay. */
static void test_reset(void)
{
	struct fsdev d;
	ok(open_live(&d), "live device up");
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "vol", &e), 0, "LOOKUP vol");
	struct freq r;
	freq_init(&r);
	is_int(fs_call(&d, FUSE_DESTROY, 0, &r, NULL, 0, NULL), 0, "DESTROY");
	is_int(fs_init(&d, 0, NULL), 0, "INIT again");
	is_int(fs_getattr(&d, e.nodeid, NULL), -ESTALE, "the old session's nodeid: ESTALE");
	is_int(fs_lookup(&d, 1, "vol", NULL), 0, "vol is still there");
	is_int(del(&d, "vol"), 0, "and can be removed");
	fs_close_dev(&d);
}

/* ----------------------------------------------------------- threaded */

static int confine_ok(void *ctx, struct kv_err **e)
{
	return 0;
}

static int gate; /* 0: a worker confining itself waits, 1: goes on */

static int confine_slow(void *ctx, struct kv_err **e)
{
	while (!__atomic_load_n(&gate, __ATOMIC_SEQ_CST))
		usleep(1000);
	return 0;
}

static int confine_fail(void *ctx, struct kv_err **e)
{
	return kv_err_make(e, EPERM, "no seccomp for you");
}

static void confine_failed_note(void *ctx, const struct kv_err *e) {}

static void test_threaded(void)
{
	struct fsdev d;
	struct virtio_fs_params p = {
	    .tag = "thr", .live = true, .threaded = true, .thread_confine = confine_ok};
	ok(fs_open_dev(&d, &p) && fs_init(&d, 0, NULL) == 0, "threaded live device up");
	is_int(add(&d, "vol", "", false, O_PATH), 0, "add vol through the worker");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "vol", &e), 0, "LOOKUP vol (served by the worker)");
	is_int(fs_lookup(&d, e.nodeid, "hello.txt", NULL), 0, "LOOKUP vol/hello.txt");
	is_int(virtio_fs_live_shares(d.dev), 1, "one share");
	is_int(del(&d, "vol"), 0, "remove vol through the worker");
	is_int(fs_getattr(&d, e.nodeid, NULL), -ESTALE, "its nodeid: ESTALE");
	is_int(del(&d, "vol"), -ENOENT, "again: ENOENT, from the worker");
	fs_close_dev(&d);

	/* A worker that does not get to it: the change is taken back, bounded. */
	int base = fds_open(NULL);
	p.thread_confine = confine_slow;
	p.confine_failed = confine_failed_note;
	p.ctl_timeout_ms = 200;
	__atomic_store_n(&gate, 0, __ATOMIC_SEQ_CST);
	ok(fs_open_dev(&d, &p), "a device whose worker is held up");
	int before = fds_open(NULL);
	is_int(add(&d, "vol", "", false, O_PATH), -ETIMEDOUT, "add: ETIMEDOUT after 200 ms");
	ok(err && strstr(err->msg, "nothing changed"), "  nothing changed (%s)",
	   err ? err->msg : "");
	is_int(fds_open(NULL), before, "  and its duplicate of the fd is closed");
	__atomic_store_n(&gate, 1, __ATOMIC_SEQ_CST);
	is_int(add(&d, "vol", "", false, O_PATH), 0, "once the worker runs: added");
	is_int(virtio_fs_live_shares(d.dev), 1, "one share");
	fs_close_dev(&d);
	is_int(fds_open(NULL), base, "device freed: every fd closed");

	p.thread_confine = confine_fail;
	ok(fs_open_dev(&d, &p), "a device whose worker cannot confine itself");
	usleep(50 * 1000);
	is_int(add(&d, "vol", "", false, O_PATH), -EIO, "add: EIO, at once");
	ok(err && strstr(err->msg, "not running"), "  the worker is not running (%s)",
	   err ? err->msg : "");
	fs_close_dev(&d);
	err_reset();
}

int main(void)
{
	struct kv_err *lerr = NULL;
	if (kv_log_init("test", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &lerr) < 0)
		return 1;
	fs_test_setup();
	test_empty();
	test_add();
	test_errors();
	test_limits();
	test_remove_held();
	test_reset();
	test_threaded();
	fs_test_cleanup();
	return tap_done();
}
