/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs: the DAX window (shared memory region 0; SETUPMAPPING maps host
 * file ranges into a reserved host VA range, REMOVEMAPPING takes them back;
 * hostile offsets, lengths and counts), synthetic roots (a single file;
 * named shares), share configuration errors, and the threaded device (the
 * worker thread, its confinement hook, reset while it runs).
 */
#include "tap.h"
#include "fs_helpers.h"

#include <sys/mman.h>

#define WIN_GPA	 0x200000000ull
#define WIN_SIZE (8ull << 20)
#define MB2	 (2ull << 20)

static uint8_t *win;

static int fs_setupmapping(struct fsdev *d, uint64_t node, uint64_t foff, uint64_t len,
			   uint64_t flags, uint64_t moff)
{
	struct freq r;
	freq_init(&r);
	struct fuse_setupmapping_in in = {
	    .fh = UINT64_MAX, .foffset = foff, .len = len, .flags = flags, .moffset = moff};
	freq_add(&r, &in, sizeof(in));
	return fs_call(d, FUSE_SETUPMAPPING, node, &r, NULL, 0, NULL);
}

static int fs_removemapping(struct fsdev *d, uint32_t count,
			    const struct fuse_removemapping_one *one, unsigned n)
{
	struct freq r;
	freq_init(&r);
	struct fuse_removemapping_in in = {.count = count};
	freq_add(&r, &in, sizeof(in));
	freq_add(&r, one, n * sizeof(*one));
	return fs_call(d, FUSE_REMOVEMAPPING, 1, &r, NULL, 0, NULL);
}

/* The protection of the mapping at p ("r--s", "---p"...), from /proc/self/maps. */
static bool map_perms(const void *p, char perms[5], char *file, size_t fsz)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char path[256] = "";
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %255s", &lo, &hi, perms, path) >= 3 &&
		    (uintptr_t)p >= lo && (uintptr_t)p < hi) {
			found = true;
			snprintf(file, fsz, "%s", path);
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* Hostile ranges and files: nothing is mapped, the window stays as it was. */
static void dax_hostile_ranges(struct fsdev *d, uint64_t node)
{
	struct fuse_entry_out dir;
	uint64_t rd = FUSE_SETUPMAPPING_FLAG_READ;
	is_int(fs_setupmapping(d, node, 0, MB2, rd, WIN_SIZE), -EINVAL,
	       "moffset at the end: EINVAL");
	is_int(fs_setupmapping(d, node, 0, MB2, rd, WIN_SIZE - 4096), -EINVAL,
	       "range past the end: EINVAL");
	is_int(fs_setupmapping(d, node, 0, UINT64_MAX - 4095, rd, 4096), -EINVAL,
	       "len 2^64-4096 (moffset+len overflows): EINVAL");
	is_int(fs_setupmapping(d, node, 0, 0, rd, 0), -EINVAL, "len 0: EINVAL");
	is_int(fs_setupmapping(d, node, 0, 4096, rd, 100), -EINVAL, "unaligned moffset");
	is_int(fs_setupmapping(d, node, 1, 4096, rd, 0), -EINVAL, "unaligned foffset");
	is_int(fs_setupmapping(d, node, 0, 100, rd, 0), -EINVAL, "unaligned len");
	is_int(fs_setupmapping(d, node, UINT64_MAX & ~4095ull, 4096, rd, 0), -EINVAL,
	       "foffset 2^64-4096: EINVAL");
	is_int(fs_setupmapping(d, node, 0, 4096, 0x100, 0), -EINVAL, "unknown flag: EINVAL");
	is_int(fs_lookup(d, 1, "sub", &dir), 0, "LOOKUP sub");
	is_int(fs_setupmapping(d, dir.nodeid, 0, 4096, rd, 0), -EINVAL, "a directory: EINVAL");
	is_int(fs_setupmapping(d, 0xbad00000007ull, 0, 4096, rd, 0), -ESTALE, "stale nodeid");
	struct fuse_entry_out f;
	is_int(fs_lookup(d, 1, "fifo", &f), 0, "LOOKUP fifo");
	is_int(fs_setupmapping(d, f.nodeid, 0, 4096, rd, 0), -EINVAL, "a FIFO: EINVAL");
}

static bool open_dax(struct fsdev *d, bool ro, uint32_t *flags_out)
{
	struct virtio_fs_share sh = {.path = exp_dir, .ro = ro};
	struct virtio_fs_params p = {.tag = "daxfs",
				     .shares = &sh,
				     .nshares = 1,
				     .dax_gpa = WIN_GPA,
				     .dax_size = WIN_SIZE,
				     .dax_hva = win};
	if (!fs_open_dev(d, &p))
		return false;
	struct fuse_init_out io;
	if (fs_init(d, FUSE_MAP_ALIGNMENT | FUSE_MAX_PAGES, &io) != 0)
		return false;
	if (flags_out)
		*flags_out = io.flags;
	return io.map_alignment == 12;
}

static void test_dax_window(void)
{
	struct fsdev d;
	uint32_t flags;
	ok(open_dax(&d, false, &flags), "DAX device up, map_alignment 12");
	ok(flags & FUSE_MAP_ALIGNMENT, "INIT grants FUSE_MAP_ALIGNMENT");
	vdrv_w32(&d.bd, VIRTIO_MMIO_SHM_SEL, 0);
	uint64_t len = vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_LEN_LOW) |
		       (uint64_t)vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_LEN_HIGH) << 32;
	uint64_t base = vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_BASE_LOW) |
			(uint64_t)vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_BASE_HIGH) << 32;
	is_int(len, WIN_SIZE, "SHM region 0: length of the window");
	is_int(base, WIN_GPA, "SHM region 0: its guest physical base");
	vdrv_w32(&d.bd, VIRTIO_MMIO_SHM_SEL, 1);
	is_int(vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff, "SHM region 1: absent");

	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP hello.txt");
	is_int(fs_setupmapping(&d, e.nodeid, 0, MB2, FUSE_SETUPMAPPING_FLAG_READ, MB2), 0,
	       "SETUPMAPPING 2 MiB read-only at window offset 2 MiB");
	ok(memcmp(win + MB2, "hello world\n", 12) == 0, "the file's bytes are in the window");
	char perms[5], file[256];
	ok(map_perms(win + MB2, perms, file, sizeof(file)) && strcmp(perms, "r--s") == 0 &&
	       strstr(file, "hello.txt"),
	   "a shared read-only mapping of hello.txt (%s %s)", perms, file);
	char p[256];
	path_of(p, sizeof(p), "hello.txt");
	int fd = open(p, O_WRONLY);
	ok(fd >= 0 && pwrite(fd, "HELLO", 5, 0) == 5, "host writes the file");
	close(fd);
	ok(memcmp(win + MB2, "HELLO world\n", 12) == 0,
	   "the guest's window sees it: one page cache");
	fd = open(p, O_WRONLY);
	ok(fd >= 0 && pwrite(fd, "hello", 5, 0) == 5, "host restores it");
	close(fd);

	struct fs_created c;
	is_int(fs_create(&d, 1, "dax.bin", O_RDWR, 0644, &c), 0, "CREATE dax.bin");
	path_of(p, sizeof(p), "dax.bin");
	ok(truncate(p, 8192) == 0, "8 KiB on the host");
	is_int(fs_setupmapping(&d, c.e.nodeid, 4096, 4096,
			       FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE,
			       4 * MB2 / 2),
	       0, "SETUPMAPPING writable, file offset 4096");
	memcpy(win + 4 * MB2 / 2, "through the window", 18);
	char back[32] = {0};
	fd = open(p, O_RDONLY);
	ok(fd >= 0 && pread(fd, back, 18, 4096) == 18 && strcmp(back, "through the window") == 0,
	   "a store into the window lands in the host file");
	close(fd);

	dax_hostile_ranges(&d, e.nodeid);
	ok(map_perms(win, perms, file, sizeof(file)) && strcmp(perms, "---p") == 0,
	   "window offset 0 still reserved (%s)", perms);

	struct fuse_removemapping_one one[2] = {{.moffset = MB2, .len = MB2},
						{.moffset = WIN_SIZE, .len = 4096}};
	is_int(fs_removemapping(&d, 0xffffffff, one, 1), -EINVAL, "REMOVEMAPPING count 2^32-1");
	is_int(fs_removemapping(&d, 2, one, 1), -EINVAL, "REMOVEMAPPING count past the entries");
	is_int(fs_removemapping(&d, 2, one, 2), -EINVAL,
	       "REMOVEMAPPING with one range out of the window: EINVAL");
	ok(memcmp(win + MB2, "hello world\n", 12) == 0, "all or nothing: the first range stays");
	is_int(fs_removemapping(&d, 1, one, 1), 0, "REMOVEMAPPING 2 MiB");
	ok(map_perms(win + MB2, perms, file, sizeof(file)) && strcmp(perms, "---p") == 0,
	   "the range is reserved again (%s)", perms);

	struct freq r;
	freq_init(&r);
	is_int(fs_call(&d, FUSE_DESTROY, 1, &r, NULL, 0, NULL), 0, "DESTROY");
	ok(map_perms(win + 2 * MB2, perms, file, sizeof(file)) && strcmp(perms, "---p") == 0,
	   "DESTROY takes back every mapping (%s)", perms);
	unlink(p);
	fs_close_dev(&d);

	ok(open_dax(&d, true, NULL), "read-only DAX device");
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	is_int(fs_setupmapping(&d, e.nodeid, 0, 4096,
			       FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE, 0),
	       -EROFS, "writable mapping of a read-only share: EROFS");
	is_int(fs_setupmapping(&d, e.nodeid, 0, 4096, FUSE_SETUPMAPPING_FLAG_READ, 0), 0,
	       "read-only mapping: fine");
	fs_close_dev(&d);
	ok(map_perms(win, perms, file, sizeof(file)) && strcmp(perms, "---p") == 0,
	   "freeing the device leaves the window reserved (%s)", perms);

	ok(open_export(&d, false, false), "device without a window");
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	is_int(fs_setupmapping(&d, e.nodeid, 0, 4096, FUSE_SETUPMAPPING_FLAG_READ, 0), -EOPNOTSUPP,
	       "SETUPMAPPING without a window: EOPNOTSUPP");
	fs_close_dev(&d);
}

/* ---------------------------------------------------- synthetic roots */

static int list_root(struct fsdev *d, char *names, size_t n)
{
	uint64_t fh;
	int e = fs_open(d, 1, O_RDONLY, &fh, true);
	if (e)
		return e;
	struct freq r;
	freq_init(&r);
	struct fuse_read_in in = {.fh = fh, .size = 4096};
	freq_add(&r, &in, sizeof(in));
	uint8_t buf[4096];
	uint32_t got;
	e = fs_call(d, FUSE_READDIRPLUS, 1, &r, buf, sizeof(buf), &got);
	names[0] = '\0';
	for (uint32_t pos = 0; e == 0 && pos < got;) {
		struct fuse_direntplus de;
		memcpy(&de, buf + pos, sizeof(de));
		size_t len = strlen(names);
		snprintf(names + len, n - len, "%.*s ", (int)de.dirent.namelen,
			 (const char *)buf + pos + FUSE_NAME_OFFSET_DIRENTPLUS);
		pos += FUSE_DIRENTPLUS_SIZE(&de);
	}
	fs_release(d, 1, fh, true);
	return e;
}

static void test_single_file(void)
{
	char file[256], names[256];
	path_of(file, sizeof(file), "hello.txt");
	struct virtio_fs_share sh = {.path = file};
	struct virtio_fs_params p = {.tag = "hosts", .shares = &sh, .nshares = 1};
	struct fsdev d;
	ok(fs_open_dev(&d, &p) && fs_init(&d, 0, NULL) == 0, "single-file share up");
	struct fuse_attr_out a;
	is_int(fs_getattr(&d, 1, &a), 0, "GETATTR root");
	is_int(a.attr.mode, S_IFDIR | 0555, "a synthetic read-only directory");
	is_int(list_root(&d, names, sizeof(names)), 0, "READDIRPLUS of the root");
	is_str(names, ". .. hello.txt ", "lists the one file");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP hello.txt");
	ok(S_ISREG(e.attr.mode) && e.attr.size == 12, "the host file");
	is_int(fs_lookup(&d, 1, "sub", NULL), -ENOENT, "its siblings are not there");
	uint64_t fh;
	is_int(fs_open(&d, e.nodeid, O_RDWR, &fh, false), 0, "OPEN read-write");
	is_int(fs_write(&d, e.nodeid, fh, 12, "more\n", 5, NULL), 0, "WRITE (append)");
	char p2[256], buf[64] = {0};
	int fd = open(file, O_RDONLY);
	ok(fd >= 0 && read(fd, buf, sizeof(buf)) == 17 && strcmp(buf, "hello world\nmore\n") == 0,
	   "host sees the write");
	close(fd);
	ok(truncate(file, 12) == 0, "host restores it");
	is_int(fs_mkdir(&d, 1, "x", 0755, NULL), -EPERM, "MKDIR in the synthetic root: EPERM");
	is_int(fs_create(&d, 1, "x", O_RDWR, 0644, NULL), -EPERM, "CREATE there: EPERM");
	is_int(fs_name_op(&d, FUSE_UNLINK, 1, "hello.txt"), -EPERM, "UNLINK the share: EPERM");
	struct freq r;
	freq_init(&r);
	struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 0777};
	freq_add(&r, &sa, sizeof(sa));
	is_int(fs_call(&d, FUSE_SETATTR, 1, &r, &a, sizeof(a), NULL), -EPERM,
	       "SETATTR of the root: EPERM");
	freq_init(&r);
	struct fuse_statfs_out so;
	is_int(fs_call(&d, FUSE_STATFS, 1, &r, &so, sizeof(so), NULL), 0, "STATFS of the root");
	path_of(p2, sizeof(p2), "x");
	struct stat st;
	ok(stat(p2, &st) < 0, "nothing created next to the file");
	fs_close_dev(&d);
}

static void test_named_shares(void)
{
	char sub[256], hosts[256], names[256];
	path_of(sub, sizeof(sub), "sub");
	path_of(hosts, sizeof(hosts), "hello.txt");
	struct virtio_fs_share sh[] = {
	    {.name = "rootfs", .path = sub},
	    {.name = "etc-hosts", .path = hosts, .ro = true},
	    {.name = "data", .path = exp_dir},
	};
	struct virtio_fs_params p = {.tag = "binds", .shares = sh, .nshares = 3};
	struct fsdev d;
	ok(fs_open_dev(&d, &p) && fs_init(&d, 0, NULL) == 0, "three named shares up");
	is_int(list_root(&d, names, sizeof(names)), 0, "READDIRPLUS of the root");
	is_str(names, ". .. rootfs etc-hosts data ", "lists the shares");
	struct fuse_entry_out rootfs, eh, data, inner;
	is_int(fs_lookup(&d, 1, "rootfs", &rootfs), 0, "LOOKUP rootfs");
	ok(S_ISDIR(rootfs.attr.mode), "a directory");
	is_int(fs_lookup(&d, rootfs.nodeid, "inner.txt", &inner), 0, "LOOKUP rootfs/inner.txt");
	is_int(fs_lookup(&d, 1, "etc-hosts", &eh), 0, "LOOKUP etc-hosts");
	uint64_t fh;
	is_int(fs_open(&d, eh.nodeid, O_RDWR, &fh, false), -EROFS, "etc-hosts is read-only");
	is_int(fs_lookup(&d, 1, "data", &data), 0, "LOOKUP data");
	struct fuse_entry_out dsub;
	is_int(fs_lookup(&d, data.nodeid, "sub", &dsub), 0, "LOOKUP data/sub");
	ok(dsub.nodeid != rootfs.nodeid,
	   "the same host directory through another share: its own nodeid");
	struct freq r;
	freq_init(&r);
	struct fuse_rename2_in rn = {.newdir = data.nodeid};
	freq_add(&r, &rn, sizeof(rn));
	freq_str(&r, "inner.txt");
	freq_str(&r, "moved.txt");
	is_int(fs_call(&d, FUSE_RENAME2, rootfs.nodeid, &r, NULL, 0, NULL), -EXDEV,
	       "RENAME across shares: EXDEV");
	freq_init(&r);
	struct fuse_link_in li = {.oldnodeid = inner.nodeid};
	freq_add(&r, &li, sizeof(li));
	freq_str(&r, "linked");
	struct fuse_entry_out e;
	is_int(fs_call(&d, FUSE_LINK, data.nodeid, &r, &e, sizeof(e), NULL), -EXDEV,
	       "LINK across shares: EXDEV");
	fs_close_dev(&d);

	struct kv_err *err = NULL;
	struct virtio_env env = {.gm = &fs_mem.gm, .irq = {irq_count_raise, &fs_irqs}};
	struct {
		struct virtio_fs_share sh[2];
		unsigned n;
		const char *tag, *what, *msg;
	} bad[] = {
	    {{{.path = exp_dir}, {.path = sub}}, 2, "t", "two unnamed shares", "needs a name"},
	    {{{.name = "a/b", .path = exp_dir}}, 1, "t", "a name with '/'", "bad share name"},
	    {{{.name = "..", .path = exp_dir}}, 1, "t", "name '..'", "bad share name"},
	    {{{.name = "x", .path = exp_dir}, {.name = "x", .path = sub}},
	     2,
	     "t",
	     "a name twice",
	     "twice"},
	    {{{.path = "/nonexistent/kvrun"}}, 1, "t", "a missing path", "open"},
	    {{{.path = exp_dir}},
	     1,
	     "0123456789012345678901234567890123456",
	     "a 37-byte tag",
	     "tag"},
	    {{{.path = exp_dir}}, 0, "t", "no share", "shares"},
	};
	for (unsigned i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		struct virtio_fs_params bp = {
		    .tag = bad[i].tag, .shares = bad[i].sh, .nshares = bad[i].n};
		struct virtio_mmio *dev = virtio_fs_new(&env, &bp, &err);
		ok(!dev && err && strstr(err->msg, bad[i].msg), "refused: %s (%s)", bad[i].what,
		   err ? err->msg : "no error");
		virtio_mmio_free(dev);
		kv_err_free(err);
		err = NULL;
	}
	char fifo[256];
	path_of(fifo, sizeof(fifo), "fifo");
	struct virtio_fs_share fs_fifo = {.path = fifo};
	struct virtio_fs_params fp = {.tag = "t", .shares = &fs_fifo, .nshares = 1};
	struct virtio_mmio *dev = virtio_fs_new(&env, &fp, &err);
	ok(!dev && err && strstr(err->msg, "not a directory or file"), "refused: a FIFO share");
	kv_err_free(err);
}

/* ----------------------------------------------------------- threaded */

static int confined_calls;

static int confine_ok(void *ctx, struct kv_err **err)
{
	confined_calls++;
	return 0;
}

static int confine_fail(void *ctx, struct kv_err **err)
{
	return kv_err_make(err, EPERM, "no seccomp for you");
}

static int confine_failures;

static void confine_failed_note(void *ctx, const struct kv_err *err)
{
	if (strstr(err->msg, "no seccomp for you"))
		__atomic_fetch_add((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

/* Queue a GETATTR, kick, wait 50 ms: how many requests completed (0 or 1). */
static int fs_getattr_nowait(struct fsdev *d)
{
	fs_mem.next = d->mark;
	struct freq r;
	freq_init(&r);
	struct fuse_getattr_in gi = {0};
	freq_add(&r, &gi, sizeof(gi));
	struct fuse_in_header h = {.len = (uint32_t)r.len, .opcode = FUSE_GETATTR, .nodeid = 1};
	memcpy(r.buf, &h, sizeof(h));
	struct vqb_buf b[2] = {{vqb_put(&fs_mem, r.buf, r.len), (uint32_t)r.len, false},
			       {vqb_alloc(&fs_mem, 16 + sizeof(struct fuse_attr_out), 8),
				16 + sizeof(struct fuse_attr_out), true}};
	vqb_add_chain(&d->q[1], b, 2);
	vdrv_kick(&d->bd, 1);
	usleep(50 * 1000);
	uint32_t id, used;
	int n = 0;
	while (vqb_next_used(&d->q[1], &id, &used))
		n++;
	return n;
}

static void test_threaded(void)
{
	struct virtio_fs_share sh = {.path = exp_dir};
	struct virtio_fs_params p = {.tag = "thr",
				     .shares = &sh,
				     .nshares = 1,
				     .threaded = true,
				     .thread_confine = confine_ok};
	struct fsdev d;
	ok(fs_open_dev(&d, &p), "threaded device up");
	is_int(confined_calls, 1, "the worker confined itself first");
	is_int(fs_init(&d, 0, NULL), 0, "INIT served by the worker");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	struct fs_created c;
	is_int(fs_create(&d, 1, "thr.txt", O_RDWR, 0666, &c), 0, "CREATE thr.txt 0666");
	is_int(c.e.attr.mode, S_IFREG | 0666, "the worker's umask is 0: mode exactly 0666");
	is_int(fs_write(&d, c.e.nodeid, c.o.fh, 0, "threaded\n", 9, NULL), 0, "WRITE");
	char p2[256];
	path_of(p2, sizeof(p2), "thr.txt");
	unlink(p2);
	/* Many requests at once: the worker takes them in batches. */
	fs_mem.next = d.mark;
	struct freq r;
	freq_init(&r);
	struct fuse_getattr_in gi = {0};
	freq_add(&r, &gi, sizeof(gi));
	struct fuse_in_header h = {.len = (uint32_t)r.len, .opcode = FUSE_GETATTR, .nodeid = 1};
	memcpy(r.buf, &h, sizeof(h));
	uint64_t req = vqb_put(&fs_mem, r.buf, r.len);
	for (unsigned i = 0; i < 40; i++) {
		struct vqb_buf b[2] = {{req, (uint32_t)r.len, false},
				       {vqb_alloc(&fs_mem, 16 + sizeof(struct fuse_attr_out), 8),
					16 + sizeof(struct fuse_attr_out), true}};
		vqb_add_chain(&d.q[1], b, 2);
	}
	vdrv_kick(&d.bd, 1);
	unsigned done = 0;
	for (int i = 0; i < 5000 && done < 40; i++) {
		uint32_t id, used;
		while (vqb_next_used(&d.q[1], &id, &used))
			done += used == 16 + sizeof(struct fuse_attr_out);
		if (done < 40)
			usleep(1000);
	}
	is_int(done, 40, "40 queued GETATTRs all completed");

	/* A driver reset while the worker runs: its tables go, a new INIT starts afresh. */
	vdrv_w32(&d.bd, VIRTIO_MMIO_STATUS, 0);
	vqb_init(&d.q[0], &fs_mem, FS_QSIZE);
	vqb_init(&d.q[1], &fs_mem, FS_QSIZE);
	d.mark = fs_mem.next;
	uint64_t feat = vdrv_device_features(&d.bd);
	ok(vdrv_bringup(&d.bd, feat, d.q, 2) & VIRTIO_STATUS_DRIVER_OK, "bring-up after reset");
	is_int(fs_init(&d, 0, NULL), 0, "INIT after reset");
	is_int(fs_getattr(&d, e.nodeid, NULL), -ESTALE, "nodeids from before the reset: ESTALE");
	fs_close_dev(&d);

	p.thread_confine = confine_fail;
	struct kv_err *err = NULL;
	struct virtio_env env = {.gm = &fs_mem.gm, .irq = {irq_count_raise, &fs_irqs}};
	struct virtio_mmio *dev = virtio_fs_new(&env, &p, &err);
	ok(!dev && err && strstr(err->msg, "no seccomp for you"),
	   "a worker that cannot confine itself: no device (%s)", err ? err->msg : "no error");
	kv_err_free(err);

	/* Not waited for (the VMM's way): the failure comes through the callback. */
	p.confine_failed = confine_failed_note;
	p.confine_ctx = &confine_failures;
	ok(fs_open_dev(&d, &p), "device up at once, its worker still starting");
	for (int i = 0; i < 5000 && !__atomic_load_n(&confine_failures, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	is_int(__atomic_load_n(&confine_failures, __ATOMIC_SEQ_CST), 1,
	       "the worker reported that it cannot confine itself");
	is_int(fs_getattr_nowait(&d), 0, "and served nothing: the request stays pending");
	fs_close_dev(&d);

	p.thread_confine = confine_ok;
	confined_calls = 0;
	ok(fs_open_dev(&d, &p), "not waited for, confinement succeeds");
	is_int(fs_init(&d, 0, NULL), 0, "INIT served once the worker is confined");
	is_int(confined_calls, 1, "confined once");
	is_int(__atomic_load_n(&confine_failures, __ATOMIC_SEQ_CST), 1, "no failure reported");
	fs_close_dev(&d);
}

int main(void)
{
	struct kv_err *lerr = NULL;
	if (kv_log_init("test", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &lerr) < 0)
		return 1;
	fs_test_setup();
	win = mmap(NULL, WIN_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ok(win != MAP_FAILED, "window reserved");
	test_dax_window();
	test_single_file();
	test_named_shares();
	test_threaded();
	munmap(win, WIN_SIZE);
	fs_test_cleanup();
	return tap_done();
}
