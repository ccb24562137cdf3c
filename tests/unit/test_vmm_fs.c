/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs (vmm/virtio/fs.c, fuse_*.c): the device through its virtio-mmio
 * window, FUSE requests built by hand, a temporary export on the host.
 * Decoding with hostile inputs (truncated headers, lengths past the chain,
 * names with '/' or "..", huge counts), the operations a Linux guest uses,
 * and confinement (symlinks out of the export, special files, forged ids).
 */
#include "tap.h"
#include "fs_helpers.h"

#include <seccomp.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* ---------------------------------------------------------- transport */

static void test_device(void)
{
	struct fsdev d;
	struct virtio_fs_share sh = {.path = exp_dir};
	struct virtio_fs_params p = {.tag = "testfs", .shares = &sh, .nshares = 1};
	ok(fs_open_dev(&d, &p), "device up (2 queues)");
	is_int(vdrv_r32(&d.bd, VIRTIO_MMIO_DEVICE_ID), 26, "device id 26 (virtio-fs)");
	char tag[37] = {0};
	vdrv_config(&d.bd, 0, tag, 36);
	is_str(tag, "testfs", "config: tag");
	uint32_t nq;
	vdrv_config(&d.bd, 36, &nq, 4);
	is_int(nq, 1, "config: one request queue");
	vdrv_w32(&d.bd, VIRTIO_MMIO_SHM_SEL, 0);
	is_int(vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff, "no DAX: region 0 absent");
	is_int(vdrv_r32(&d.bd, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff, "no DAX: length -1");

	struct fuse_attr_out a;
	is_int(fs_getattr(&d, FUSE_ROOT_ID, &a), -EIO, "request before INIT: EIO");
	struct freq r;
	freq_init(&r);
	struct fuse_init_in bad = {.major = 8, .minor = 0};
	freq_add(&r, &bad, sizeof(bad));
	is_int(fs_call(&d, FUSE_INIT, 0, &r, NULL, 0, NULL), -EINVAL,
	       "INIT with a reply buffer too small: EINVAL");
	struct fuse_init_out io;
	is_int(fs_call(&d, FUSE_INIT, 0, &r, &io, sizeof(io), NULL), -EPROTO,
	       "INIT major 8: EPROTO");
	is_int(fs_init(&d, FUSE_DO_READDIRPLUS | FUSE_POSIX_LOCKS | FUSE_MAX_PAGES, &io), 0,
	       "INIT 7.37");
	is_int(io.major, 7, "INIT: major 7");
	is_int(io.minor, 37, "INIT: minor as the guest's");
	ok(io.max_write >= 4096 && io.max_write <= (64u << 12), "INIT: max_write %u", io.max_write);
	ok(io.flags & FUSE_DO_READDIRPLUS, "INIT: readdirplus granted");
	ok(!(io.flags & FUSE_POSIX_LOCKS), "INIT: POSIX locks stay in the guest");
	ok(!(io.flags & FUSE_MAP_ALIGNMENT), "INIT: no map alignment without DAX");
	is_int(fs_getattr(&d, FUSE_ROOT_ID, &a), 0, "GETATTR root");
	ok(S_ISDIR(a.attr.mode), "root is a directory");
	fs_close_dev(&d);
}

/* ---------------------------------------------------------- decoding */

static void test_hostile_decoding(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fuse_in_header h = {.len = 40, .opcode = FUSE_GETATTR, .unique = 77, .nodeid = 1};
	uint32_t wl = 256;
	uint64_t w;
	struct fuse_out_header oh;

	is_int(fs_raw(&d, 1, &h, 20, &wl, 1, &w), 16, "truncated header: an error reply");
	memcpy(&oh, vqb_ptr(&fs_mem, w), sizeof(oh));
	is_int(oh.error, -EINVAL, "truncated header: EINVAL");

	uint8_t big[64] = {0};
	h.len = 4096; /* more than the chain holds */
	memcpy(big, &h, sizeof(h));
	is_int(fs_raw(&d, 1, big, 64, &wl, 1, &w), 16, "len past the chain: error reply");
	memcpy(&oh, vqb_ptr(&fs_mem, w), sizeof(oh));
	is_int(oh.error, -EINVAL, "len past the chain: EINVAL");
	is_int(oh.unique, 77, "error reply echoes unique");

	h.len = 8; /* shorter than the header itself */
	memcpy(big, &h, sizeof(h));
	fs_raw(&d, 1, big, 64, &wl, 1, &w);
	memcpy(&oh, vqb_ptr(&fs_mem, w), sizeof(oh));
	is_int(oh.error, -EINVAL, "len shorter than the header: EINVAL");

	h.len = 40;
	memcpy(big, &h, sizeof(h));
	uint32_t tiny = 8;
	is_int(fs_raw(&d, 1, big, 40, &tiny, 1, NULL), 0, "no room for an out header: used 0");
	is_int(fs_raw(&d, 1, big, 40, NULL, 0, NULL), 0, "no writable part: used 0");
	is_int(fs_raw(&d, 1, NULL, 0, &wl, 1, &w), 16, "no readable part: error reply");

	struct freq r;
	freq_init(&r);
	is_int(fs_call(&d, 9999, 1, &r, NULL, 0, NULL), -ENOSYS, "unknown opcode: ENOSYS");
	is_int(fs_call(&d, FUSE_GETLK, 1, &r, NULL, 0, NULL), -ENOSYS,
	       "GETLK: ENOSYS (guest-local)");
	is_int(fs_call(&d, FUSE_GETATTR, 1, &r, NULL, 0, NULL), -EINVAL,
	       "GETATTR without room for attr_out: EINVAL");
	struct fuse_entry_out a;
	is_int(fs_call(&d, FUSE_GETATTR, 1, &r, &a, sizeof(a), NULL), -EINVAL,
	       "GETATTR without its argument: EINVAL");
	is_int(fs_call(&d, FUSE_READ, 1, &r, &a, sizeof(a), NULL), -EINVAL,
	       "READ without its argument: EINVAL");

	/* Arguments bigger than the server copies. */
	static struct freq huge;
	freq_init(&huge);
	static uint8_t junk[FS_REQ_MAX - 64];
	memset(junk, 'a', sizeof(junk));
	freq_add(&huge, junk, sizeof(junk));
	is_int(fs_call(&d, FUSE_LOOKUP, 1, &huge, &a, sizeof(a), NULL), -E2BIG,
	       "90 KiB of arguments: E2BIG");

	/* The same request split over many small descriptors still decodes. */
	freq_init(&r);
	freq_str(&r, "hello.txt");
	struct fuse_in_header lh = {
	    .len = (uint32_t)r.len, .opcode = FUSE_LOOKUP, .unique = 5, .nodeid = 1};
	memcpy(r.buf, &lh, sizeof(lh));
	fs_mem.next = d.mark;
	struct vqb_buf b[6];
	for (unsigned i = 0; i < 5; i++) {
		size_t part = r.len / 5 + (i == 4 ? r.len % 5 : 0);
		b[i] = (struct vqb_buf){vqb_put(&fs_mem, r.buf + i * (r.len / 5), part),
					(uint32_t)part, false};
	}
	uint64_t wg = vqb_alloc(&fs_mem, 16 + sizeof(struct fuse_entry_out), 8);
	b[5] = (struct vqb_buf){wg, 16 + sizeof(struct fuse_entry_out), true};
	vqb_add_chain(&d.q[1], b, 6);
	vdrv_kick(&d.bd, 1);
	uint32_t id, used;
	ok(vqb_next_used(&d.q[1], &id, &used) && used == 16 + sizeof(struct fuse_entry_out),
	   "request over 5 readable descriptors: full entry reply");
	memcpy(&oh, vqb_ptr(&fs_mem, wg), sizeof(oh));
	is_int(oh.error, 0, "split request: LOOKUP ok");
	fs_close_dev(&d);
}

static void test_names(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fuse_entry_out e, e2;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP hello.txt");
	ok(S_ISREG(e.attr.mode) && e.attr.size == 12, "regular file of 12 bytes");
	is_int(fs_lookup(&d, 1, "hello.txt", &e2), 0, "LOOKUP again");
	is_int(e2.nodeid, e.nodeid, "same inode, same nodeid");
	is_int(fs_lookup(&d, 1, "nope", NULL), -ENOENT, "missing name: ENOENT");
	is_int(fs_lookup(&d, 1, "..", NULL), -EINVAL, "'..': EINVAL");
	is_int(fs_lookup(&d, 1, ".", NULL), -EINVAL, "'.': EINVAL");
	is_int(fs_lookup(&d, 1, "sub/inner.txt", NULL), -EINVAL, "name with '/': EINVAL");
	is_int(fs_lookup(&d, 1, "../outside/secret.txt", NULL), -EINVAL, "'../x': EINVAL");
	is_int(fs_lookup(&d, 1, "", NULL), -EINVAL, "empty name: EINVAL");
	char longname[300];
	memset(longname, 'n', 256);
	longname[256] = '\0';
	is_int(fs_lookup(&d, 1, longname, NULL), -EINVAL, "256-byte name: EINVAL");

	struct freq r;
	freq_init(&r);
	freq_add(&r, "hello.txt", 9); /* no NUL */
	is_int(fs_call(&d, FUSE_LOOKUP, 1, &r, &e, sizeof(e), NULL), -EINVAL,
	       "name without NUL: EINVAL");

	is_int(fs_lookup(&d, e.nodeid, "x", NULL), -ENOTDIR, "LOOKUP under a file: ENOTDIR");
	is_int(fs_lookup(&d, 0, "hello.txt", NULL), -ESTALE, "nodeid 0: ESTALE");
	is_int(fs_lookup(&d, 123456, "hello.txt", NULL), -ESTALE, "never issued nodeid: ESTALE");
	is_int(fs_getattr(&d, e.nodeid ^ (1ull << 40), NULL), -ESTALE,
	       "nodeid with a forged generation: ESTALE");
	is_int(fs_getattr(&d, UINT64_MAX, NULL), -ESTALE, "nodeid 2^64-1: ESTALE");
	fs_close_dev(&d);
}

/* ------------------------------------------------------- confinement */

static void test_symlinks_out(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "escape", &e), 0, "LOOKUP of a symlink pointing out");
	ok(S_ISLNK(e.attr.mode), "it is the symlink itself, not followed");
	is_int(fs_lookup(&d, e.nodeid, "secret.txt", NULL), -ENOTDIR,
	       "LOOKUP through the symlink: ENOTDIR");
	uint64_t fh;
	is_int(fs_open(&d, e.nodeid, O_RDONLY, &fh, false), -ENXIO, "OPEN of the symlink: ENXIO");
	is_int(fs_open(&d, e.nodeid, O_RDONLY, &fh, true), -ENOTDIR,
	       "OPENDIR of the symlink: ENOTDIR");
	struct freq r;
	freq_init(&r);
	char target[256];
	uint32_t got;
	is_int(fs_call(&d, FUSE_READLINK, e.nodeid, &r, target, sizeof(target), &got), 0,
	       "READLINK");
	ok(got == 10 && memcmp(target, "../outside", 10) == 0, "target is data: ../outside");

	struct fuse_entry_out a;
	is_int(fs_lookup(&d, 1, "abs", &a), 0, "LOOKUP of an absolute symlink out");
	ok(S_ISLNK(a.attr.mode), "a symlink too");
	is_int(fs_lookup(&d, a.nodeid, "secret.txt", NULL), -ENOTDIR, "not a way out either");

	/* Swap a directory the guest knows for a symlink out: its nodeid stays inside. */
	struct fuse_entry_out sub;
	is_int(fs_lookup(&d, 1, "sub", &sub), 0, "LOOKUP sub");
	char p1[256], p2[256], p3[256];
	path_of(p1, sizeof(p1), "sub");
	path_of(p2, sizeof(p2), "sub.moved");
	path_of(p3, sizeof(p3), "sub");
	ok(rename(p1, p2) == 0 && symlink(outside, p3) == 0, "host swapped sub for a symlink out");
	is_int(fs_lookup(&d, sub.nodeid, "inner.txt", &e), 0, "old sub nodeid: still the real dir");
	is_int(fs_lookup(&d, sub.nodeid, "secret.txt", NULL), -ENOENT,
	       "and never the outside directory");
	struct fuse_entry_out now;
	is_int(fs_lookup(&d, 1, "sub", &now), 0, "LOOKUP sub again");
	ok(S_ISLNK(now.attr.mode), "now a symlink, returned as one");
	is_int(fs_lookup(&d, now.nodeid, "secret.txt", NULL), -ENOTDIR, "not followed");
	unlink(p3);
	ok(rename(p2, p1) == 0, "host swapped back");

	/* Special files are the guest's own: never opened on the host. */
	struct fuse_entry_out f;
	is_int(fs_lookup(&d, 1, "fifo", &f), 0, "LOOKUP fifo");
	ok(S_ISFIFO(f.attr.mode), "a FIFO");
	is_int(fs_open(&d, f.nodeid, O_RDONLY, &fh, false), -ENXIO,
	       "OPEN of a FIFO: ENXIO (would block the VMM)");
	is_int(fs_create(&d, 1, "fifo", O_RDWR, 0644, NULL), -ENXIO,
	       "CREATE over an existing FIFO: ENXIO, not opened");
	is_int(fs_create(&d, 1, "escape", O_RDWR, 0644, NULL), -ENXIO,
	       "CREATE over a symlink out: refused, nothing created outside");
	char sp[256];
	snprintf(sp, sizeof(sp), "%s/outside-created", top);
	struct stat st;
	ok(stat(sp, &st) < 0, "nothing appeared outside");

	/* Hard links: only between inodes the guest reached inside. */
	freq_init(&r);
	struct fuse_link_in li = {.oldnodeid = 0xdead00000005ull};
	freq_add(&r, &li, sizeof(li));
	freq_str(&r, "stolen");
	is_int(fs_call(&d, FUSE_LINK, 1, &r, &e, sizeof(e), NULL), -ESTALE,
	       "LINK of a forged nodeid: ESTALE");
	freq_init(&r);
	li.oldnodeid = a.nodeid;
	freq_add(&r, &li, sizeof(li));
	freq_str(&r, "abs-link");
	is_int(fs_call(&d, FUSE_LINK, 1, &r, &e, sizeof(e), NULL), 0,
	       "LINK of the symlink out: links the symlink");
	ok(S_ISLNK(e.attr.mode), "the new name is a symlink too (nothing followed)");
	path_of(p1, sizeof(p1), "abs-link");
	ok(lstat(p1, &st) == 0 && S_ISLNK(st.st_mode), "on the host: a symlink");
	unlink(p1);
	fs_close_dev(&d);
}

static void test_special_nodes(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct freq r;
	struct fuse_entry_out e;
	struct fuse_mknod_in mk = {.mode = S_IFBLK | 0666, .rdev = (8 << 8) | 0};
	freq_init(&r);
	freq_add(&r, &mk, sizeof(mk));
	freq_str(&r, "sda");
	is_int(fs_call(&d, FUSE_MKNOD, 1, &r, &e, sizeof(e), NULL), -EPERM,
	       "MKNOD block device: EPERM");
	mk.mode = S_IFCHR | 0666;
	mk.rdev = (1 << 8) | 1; /* /dev/mem */
	freq_init(&r);
	freq_add(&r, &mk, sizeof(mk));
	freq_str(&r, "mem");
	is_int(fs_call(&d, FUSE_MKNOD, 1, &r, &e, sizeof(e), NULL), -EPERM,
	       "MKNOD char device 1:1: EPERM");
	char p[256];
	struct stat st;
	path_of(p, sizeof(p), "mem");
	ok(lstat(p, &st) < 0, "no device node on the host");
	mk.mode = S_IFIFO | 0640;
	freq_init(&r);
	freq_add(&r, &mk, sizeof(mk));
	freq_str(&r, "newfifo");
	is_int(fs_call(&d, FUSE_MKNOD, 1, &r, &e, sizeof(e), NULL), 0, "MKNOD fifo");
	ok(S_ISFIFO(e.attr.mode) && (e.attr.mode & 07777) == 0640, "fifo 0640");
	if (is_root) {
		mk.mode = S_IFCHR | 0000;
		mk.rdev = 0;
		freq_init(&r);
		freq_add(&r, &mk, sizeof(mk));
		freq_str(&r, "whiteout");
		is_int(fs_call(&d, FUSE_MKNOD, 1, &r, &e, sizeof(e), NULL), 0,
		       "MKNOD overlayfs whiteout (char 0:0)");
	} else {
		skip("whiteout needs CAP_MKNOD (not root)");
	}
	fs_close_dev(&d);

	if (!is_root) {
		skip("device nodes need CAP_MKNOD (not root)");
		return;
	}
	ok(open_export(&d, false, true), "export with dev allowed");
	mk.mode = S_IFCHR | 0600;
	mk.rdev = (1 << 8) | 3; /* /dev/null */
	freq_init(&r);
	freq_add(&r, &mk, sizeof(mk));
	freq_str(&r, "null");
	is_int(fs_call(&d, FUSE_MKNOD, 1, &r, &e, sizeof(e), NULL), 0, "dev: MKNOD char 1:3");
	path_of(p, sizeof(p), "null");
	ok(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
	   "host has char 1:3");
	uint64_t fh;
	is_int(fs_open(&d, e.nodeid, O_RDWR, &fh, false), -ENXIO,
	       "OPEN of a device node: ENXIO even when allowed");
	unlink(p);
	fs_close_dev(&d);
}

static void test_batch_forget(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	struct freq r;
	freq_init(&r);
	struct fuse_batch_forget_in bf = {.count = 0xffffffff};
	freq_add(&r, &bf, sizeof(bf));
	struct fuse_forget_one one = {.nodeid = e.nodeid, .nlookup = 1};
	freq_add(&r, &one, sizeof(one));
	struct fuse_in_header h = {.len = (uint32_t)r.len, .opcode = FUSE_BATCH_FORGET};
	memcpy(r.buf, &h, sizeof(h));
	is_int(fs_raw(&d, 0, r.buf, r.len, NULL, 0, NULL), 0,
	       "BATCH_FORGET count 2^32-1 with one entry: completed, no reply");
	is_int(fs_getattr(&d, e.nodeid, NULL), 0, "and ignored: the inode lives");
	bf.count = 1;
	freq_init(&r);
	freq_add(&r, &bf, sizeof(bf));
	freq_add(&r, &one, sizeof(one));
	h.len = (uint32_t)r.len;
	memcpy(r.buf, &h, sizeof(h));
	is_int(fs_raw(&d, 0, r.buf, r.len, NULL, 0, NULL), 0, "BATCH_FORGET of 1");
	is_int(fs_getattr(&d, e.nodeid, NULL), -ESTALE, "forgotten: ESTALE");
	fs_forget(&d, 1, 1000);
	is_int(fs_getattr(&d, 1, NULL), 0, "FORGET of the root is ignored");
	fs_forget(&d, 0xabcdef, 1);
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP again after a forged FORGET");
	fs_forget(&d, e.nodeid, UINT64_MAX);
	is_int(fs_getattr(&d, e.nodeid, NULL), -ESTALE, "FORGET 2^64-1: gone, no underflow");
	fs_close_dev(&d);
}

/*
 * Where openat2 answers ENOSYS (an old kernel, an outer seccomp profile), the
 * server falls back to openat(O_NOFOLLOW) of the same checked names. In a
 * child with such a filter: lookups, symlinks out, CREATE; the exit status
 * is a bitmask of failed checks.
 */
static void test_no_openat2(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(255);
		struct fsdev d;
		struct fuse_entry_out e;
		int bad = 0;
		if (!open_export(&d, false, false))
			_exit(254);
		bad |= !(syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) < 0 && errno == ENOSYS) << 6;
		bad |= (fs_lookup(&d, 1, "hello.txt", &e) != 0 || !S_ISREG(e.attr.mode)) << 0;
		bad |= (fs_lookup(&d, 1, "escape", &e) != 0 || !S_ISLNK(e.attr.mode)) << 1;
		bad |= (fs_lookup(&d, e.nodeid, "secret.txt", NULL) != -ENOTDIR) << 2;
		bad |= (fs_lookup(&d, 1, "..", NULL) != -EINVAL) << 3;
		bad |= (fs_create(&d, 1, "escape", O_RDWR, 0644, NULL) != -ENXIO) << 4;
		bad |= (fs_create(&d, 1, "fresh", O_RDWR, 0644, NULL) != 0) << 5;
		char p[256];
		path_of(p, sizeof(p), "fresh");
		unlink(p);
		fs_close_dev(&d);
		_exit(bad);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "without openat2 (ENOSYS): lookups, symlinks out, CREATE as before (status %#x)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* As root the server raises both fd limits to fs.nr_open (virtiofsd's
 * way): a hard limit of 4096 (the kernel's default) would fill the inode
 * table after 2048 entries of a guest's walk. */
static void test_limit_raised(void)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t have = CAP_CLEAR;
	if (caps)
		cap_get_flag(caps, CAP_SYS_RESOURCE, CAP_EFFECTIVE, &have);
	cap_free(caps);
	if (have != CAP_SET) {
		skip("raising the hard fd limit needs CAP_SYS_RESOURCE, which this process lacks");
		return;
	}
	struct rlimit rl = {4096, 4096};
	ok(setrlimit(RLIMIT_NOFILE, &rl) == 0, "RLIMIT_NOFILE 4096");
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	int got = getrlimit(RLIMIT_NOFILE, &rl);
	ok(got == 0 && rl.rlim_max > 4096 && rl.rlim_cur == rl.rlim_max,
	   "the server raised the fd limit: %llu (hard %llu)", (unsigned long long)rl.rlim_cur,
	   (unsigned long long)rl.rlim_max);
	fs_close_dev(&d);
}

/* Last: it lowers this process's fd limit for good, without the capability
 * to raise it again. */
static void test_table_limits(void)
{
	cap_t caps = cap_get_proc();
	cap_value_t res = CAP_SYS_RESOURCE;
	ok(caps && cap_set_flag(caps, CAP_EFFECTIVE, 1, &res, CAP_CLEAR) == 0 &&
	       cap_set_proc(caps) == 0,
	   "CAP_SYS_RESOURCE dropped (the hard limit stays)");
	cap_free(caps);
	char p[256];
	path_of(p, sizeof(p), "many");
	ok(mkdir(p, 0755) == 0, "host: many/");
	for (int i = 0; i < 600; i++) {
		snprintf(p, sizeof(p), "%s/many/f%d", exp_dir, i);
		close(open(p, O_WRONLY | O_CREAT, 0644));
	}
	struct rlimit rl = {700, 700};
	ok(setrlimit(RLIMIT_NOFILE, &rl) == 0, "RLIMIT_NOFILE 700");
	struct fsdev d;
	ok(open_export(&d, false, false), "export up: tables sized from the fd limit");
	struct fuse_entry_out dir, e;
	is_int(fs_lookup(&d, 1, "many", &dir), 0, "LOOKUP many");
	int first_err = 0, n = 0;
	for (int i = 0; i < 600 && !first_err; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		first_err = fs_lookup(&d, dir.nodeid, name, &e);
		n += first_err == 0;
	}
	is_int(first_err, -ENFILE, "the inode table fills up: ENFILE");
	ok(n >= 300 && n < 600, "after %d inodes (the fd limit's half)", n);
	fs_forget(&d, e.nodeid, 1);
	fs_forget(&d, dir.nodeid, 1);
	is_int(fs_getattr(&d, 1, NULL), 0, "the device still serves");
	fs_close_dev(&d);
}

int main(void)
{
	struct kv_err *lerr = NULL;
	if (kv_log_init("test", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &lerr) < 0)
		return 1;
	fs_test_setup();
	test_device();
	test_hostile_decoding();
	test_names();
	test_symlinks_out();
	test_special_nodes();
	test_batch_forget();
	test_no_openat2();
	test_limit_raised();
	test_table_limits();
	fs_test_cleanup();
	return tap_done();
}
