/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs operations end to end on a temporary export: what a guest does
 * to a shared root file system (create, write, read, rename, link, chmod,
 * chown, truncate, list, remove, xattrs, fallocate, lseek, copy_file_range)
 * and what the host sees of it; read-only shares; DESTROY.
 */
#include "tap.h"
#include "fs_helpers.h"

#include <sys/xattr.h>

#include "vmm/virtio/fuse.h"

static bool host_has(const char *rel, const char *content)
{
	char p[256], buf[256] = {0};
	path_of(p, sizeof(p), rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 0 && strcmp(buf, content) == 0;
}

static int host_stat(const char *rel, struct stat *st)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	return lstat(p, st);
}

static int fs_setattr(struct fsdev *d, uint64_t node, struct fuse_setattr_in *in,
		      struct fuse_attr_out *out)
{
	struct freq r;
	freq_init(&r);
	freq_add(&r, in, sizeof(*in));
	struct fuse_attr_out tmp;
	return fs_call(d, FUSE_SETATTR, node, &r, out ? out : &tmp, sizeof(tmp), NULL);
}

static int fs_rename(struct fsdev *d, uint64_t olddir, const char *oldname, uint64_t newdir,
		     const char *newname, uint32_t flags)
{
	struct freq r;
	freq_init(&r);
	struct fuse_rename2_in in = {.newdir = newdir, .flags = flags};
	freq_add(&r, &in, sizeof(in));
	freq_str(&r, oldname);
	freq_str(&r, newname);
	return fs_call(d, FUSE_RENAME2, olddir, &r, NULL, 0, NULL);
}

/* Create, write, read, setattr, release: what the host sees. */
static void files_data(struct fsdev *d, struct fs_created *c)
{
	d->uid = 1234;
	d->gid = 5678;
	is_int(fs_create(d, 1, "new.txt", O_RDWR, 0640, c), 0, "CREATE new.txt 0640");
	ok(c->e.nodeid > 1 && c->o.fh != 0, "entry and handle");
	is_int(c->e.attr.mode, S_IFREG | 0640, "mode exactly 0640 (no umask of ours)");
	struct stat st;
	ok(host_stat("new.txt", &st) == 0 && (st.st_mode & 07777) == 0640, "host: 0640");
	if (is_root) {
		ok(st.st_uid == 1234 && st.st_gid == 5678,
		   "host: owned by the requester 1234:5678");
		is_int(c->e.attr.uid, 1234, "entry: uid 1234");
	} else {
		skip("ownership needs CAP_CHOWN");
		skip("ownership needs CAP_CHOWN");
	}
	d->uid = d->gid = 0;
	uint32_t n;
	is_int(fs_write(d, c->e.nodeid, c->o.fh, 0, "written by the guest\n", 21, &n), 0, "WRITE");
	is_int(n, 21, "21 bytes written");
	ok(host_has("new.txt", "written by the guest\n"), "host sees the data");
	char buf[64] = {0};
	uint32_t got;
	is_int(fs_read(d, c->e.nodeid, c->o.fh, 11, buf, sizeof(buf), &got), 0, "READ at 11");
	ok(got == 10 && memcmp(buf, "the guest\n", 10) == 0, "read 'the guest\\n'");
	is_int(fs_read(d, c->e.nodeid, c->o.fh, 1000, buf, sizeof(buf), &got), 0, "READ past EOF");
	is_int(got, 0, "0 bytes");
	is_int(fs_write(d, c->e.nodeid, c->o.fh ^ (1ull << 33), 0, "x", 1, NULL), -EBADF,
	       "WRITE with a forged fh: EBADF");

	/* A WRITE whose size claims more data than the request carries. */
	struct freq r;
	freq_init(&r);
	struct fuse_write_in wi = {.fh = c->o.fh, .size = 4096};
	freq_add(&r, &wi, sizeof(wi));
	freq_add(&r, "short", 5);
	struct fuse_write_out wo;
	is_int(fs_call(d, FUSE_WRITE, c->e.nodeid, &r, &wo, sizeof(wo), NULL), -EINVAL,
	       "WRITE size past the data: EINVAL");
	freq_init(&r);
	wi.size = 0xffffffff;
	freq_add(&r, &wi, sizeof(wi));
	is_int(fs_call(d, FUSE_WRITE, c->e.nodeid, &r, &wo, sizeof(wo), NULL), -EINVAL,
	       "WRITE size 2^32-1: EINVAL");
	ok(host_has("new.txt", "written by the guest\n"), "file unchanged");

	/* The host writes; the guest reads it. */
	char p[256];
	path_of(p, sizeof(p), "new.txt");
	int fd = open(p, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "host\n", 5) == 5, "host appends");
	close(fd);
	is_int(fs_read(d, c->e.nodeid, c->o.fh, 21, buf, sizeof(buf), &got), 0, "guest READ");
	ok(got == 5 && memcmp(buf, "host\n", 5) == 0, "guest sees the host's write");

	struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 7};
	struct fuse_attr_out ao;
	is_int(fs_setattr(d, c->e.nodeid, &sa, &ao), 0, "SETATTR size 7 (truncate)");
	is_int(ao.attr.size, 7, "attr: size 7");
	ok(host_has("new.txt", "written"), "host: truncated");
	sa = (struct fuse_setattr_in){.valid = FATTR_MODE, .mode = 0604};
	is_int(fs_setattr(d, c->e.nodeid, &sa, &ao), 0, "SETATTR mode 0604 (chmod)");
	ok(host_stat("new.txt", &st) == 0 && (st.st_mode & 07777) == 0604, "host: 0604");
	if (is_root) {
		sa = (struct fuse_setattr_in){.valid = FATTR_UID | FATTR_GID, .uid = 42, .gid = 43};
		is_int(fs_setattr(d, c->e.nodeid, &sa, &ao), 0, "SETATTR uid/gid (chown)");
		ok(host_stat("new.txt", &st) == 0 && st.st_uid == 42 && st.st_gid == 43,
		   "host: 42:43");
	} else {
		skip("chown needs CAP_CHOWN");
		skip("chown needs CAP_CHOWN");
	}
	sa = (struct fuse_setattr_in){.valid = FATTR_MTIME, .mtime = 1000000000, .mtimensec = 5};
	is_int(fs_setattr(d, c->e.nodeid, &sa, &ao), 0, "SETATTR mtime");
	ok(host_stat("new.txt", &st) == 0 && st.st_mtime == 1000000000, "host: mtime");
	sa = (struct fuse_setattr_in){.valid = FATTR_MTIME, .mtimensec = 2000000000};
	is_int(fs_setattr(d, c->e.nodeid, &sa, &ao), -EINVAL, "SETATTR nsec 2e9: EINVAL");
	sa = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = UINT64_MAX};
	is_int(fs_setattr(d, c->e.nodeid, &sa, &ao), -EFBIG, "SETATTR size 2^64-1: EFBIG");
	is_int(fs_release(d, c->e.nodeid, c->o.fh, false), 0, "RELEASE");
	is_int(fs_release(d, c->e.nodeid, c->o.fh, false), -EBADF, "RELEASE twice: EBADF");
}

/* Directories, rename, link, unlink, symlinks. */
static void files_namespace(struct fsdev *d, const struct fs_created *c)
{
	struct stat st;
	struct freq r;
	char p[256];
	struct fuse_entry_out dir, e;
	is_int(fs_mkdir(d, 1, "dir", 0750, &dir), 0, "MKDIR dir 0750");
	ok(host_stat("dir", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750,
	   "host: dir 0750");
	is_int(fs_mkdir(d, 1, "dir", 0750, NULL), -EEXIST, "MKDIR again: EEXIST");
	is_int(fs_rename(d, 1, "new.txt", dir.nodeid, "moved.txt", 0), 0, "RENAME into dir");
	ok(host_has("dir/moved.txt", "written"), "host: dir/moved.txt");
	is_int(fs_rename(d, 1, "hello.txt", dir.nodeid, "moved.txt", RENAME_NOREPLACE), -EEXIST,
	       "RENAME2 NOREPLACE onto a name: EEXIST");
	is_int(fs_rename(d, 1, "hello.txt", dir.nodeid, "../x", 0), -EINVAL,
	       "RENAME to '../x': EINVAL");
	is_int(fs_rename(d, 1, "hello.txt", dir.nodeid, "x", 0x80), -EINVAL,
	       "RENAME2 unknown flag: EINVAL");
	freq_init(&r);
	struct fuse_link_in li = {.oldnodeid = c->e.nodeid};
	freq_add(&r, &li, sizeof(li));
	freq_str(&r, "hardlink");
	is_int(fs_call(d, FUSE_LINK, 1, &r, &e, sizeof(e), NULL), 0, "LINK");
	is_int(e.nodeid, c->e.nodeid, "same inode, same nodeid");
	is_int(e.attr.nlink, 2, "nlink 2");
	ok(host_has("hardlink", "written"), "host: hard link");
	freq_init(&r);
	li.oldnodeid = dir.nodeid;
	freq_add(&r, &li, sizeof(li));
	freq_str(&r, "dirlink");
	is_int(fs_call(d, FUSE_LINK, 1, &r, &e, sizeof(e), NULL), -EPERM, "LINK of a dir: EPERM");
	is_int(fs_name_op(d, FUSE_RMDIR, 1, "dir"), -ENOTEMPTY, "RMDIR non-empty: ENOTEMPTY");
	is_int(fs_name_op(d, FUSE_UNLINK, dir.nodeid, "moved.txt"), 0, "UNLINK");
	is_int(fs_name_op(d, FUSE_UNLINK, 1, "hardlink"), 0, "UNLINK the link");
	is_int(fs_name_op(d, FUSE_RMDIR, 1, "dir"), 0, "RMDIR");
	ok(host_stat("dir", &st) < 0 && host_stat("hardlink", &st) < 0, "host: gone");
	is_int(fs_getattr(d, c->e.nodeid, NULL), 0,
	       "an unlinked inode the guest holds: GETATTR ok");

	/* Symlinks. */
	freq_init(&r);
	freq_str(&r, "link");
	freq_str(&r, "../../../etc/passwd");
	is_int(fs_call(d, FUSE_SYMLINK, 1, &r, &e, sizeof(e), NULL), 0,
	       "SYMLINK with a target out (just data)");
	char target[64] = {0};
	ok(S_ISLNK(e.attr.mode), "a symlink");
	path_of(p, sizeof(p), "link");
	ok(readlink(p, target, sizeof(target)) == 19 && strcmp(target, "../../../etc/passwd") == 0,
	   "host: the target as given");
	freq_init(&r);
	freq_str(&r, "link2");
	is_int(fs_call(d, FUSE_SYMLINK, 1, &r, &e, sizeof(e), NULL), -EINVAL,
	       "SYMLINK without a target: EINVAL");
	unlink(p);
}

static void test_files(void)
{
	struct fsdev d;
	struct fs_created c;
	ok(open_export(&d, false, false), "export up");
	files_data(&d, &c);
	files_namespace(&d, &c);
	fs_close_dev(&d);
}

/* Ownership details: setuid kept across the chown, setgid directories' groups. */
static void test_ownership(void)
{
	if (!is_root) {
		skip("ownership needs CAP_CHOWN (not root)");
		return;
	}
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	d.uid = 1234;
	d.gid = 5678;
	struct fs_created c;
	struct stat st;
	is_int(fs_create(&d, 1, "suid", O_WRONLY, 04755, &c), 0, "CREATE 04755 as 1234:5678");
	is_int(c.e.attr.mode, S_IFREG | 04755, "entry: 04755 (chown took it, it was put back)");
	ok(host_stat("suid", &st) == 0 && st.st_mode == (S_IFREG | 04755) && st.st_uid == 1234,
	   "host: 04755 1234");
	fs_release(&d, c.e.nodeid, c.o.fh, false);
	char p[256];
	path_of(p, sizeof(p), "sgid");
	ok(mkdir(p, 0775) == 0 && chown(p, 0, 4242) == 0 && chmod(p, 02775) == 0,
	   "host: sgid/ 02775 group 4242");
	struct fuse_entry_out sg, sub;
	is_int(fs_lookup(&d, 1, "sgid", &sg), 0, "LOOKUP sgid");
	is_int(fs_mkdir(&d, sg.nodeid, "sub", 0755, &sub), 0, "MKDIR sgid/sub as 1234:5678");
	is_int(sub.attr.gid, 4242, "the group is the directory's");
	is_int(sub.attr.mode, S_IFDIR | 02755, "and the new directory is setgid too");
	is_int(sub.attr.uid, 1234, "owned by the requester");
	is_int(fs_create(&d, sg.nodeid, "f", O_WRONLY, 0640, &c), 0, "CREATE sgid/f");
	is_int(c.e.attr.gid, 4242, "a file there: the directory's group");
	fs_release(&d, c.e.nodeid, c.o.fh, false);
	d.uid = d.gid = 0;
	is_int(fs_create(&d, 1, "rootfile", O_WRONLY, 0600, &c), 0, "CREATE as root: no chown");
	ok(c.e.attr.uid == 0 && c.e.attr.mode == (S_IFREG | 0600), "root's 0600");
	fs_release(&d, c.e.nodeid, c.o.fh, false);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/suid' '%s/sgid' '%s/rootfile'", exp_dir, exp_dir,
		 exp_dir);
	ok(system(cmd) == 0, "cleaned up");
	fs_close_dev(&d);
}

static void test_readdir(bool plus)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	uint64_t fh;
	is_int(fs_open(&d, 1, O_RDONLY, &fh, true), 0, "OPENDIR root");
	char seen[512] = "";
	uint64_t off = 0;
	unsigned entries = 0, rounds = 0;
	uint8_t buf[4096];
	for (;;) {
		struct freq r;
		freq_init(&r);
		/* A small buffer: the listing takes several rounds and resumes at offsets. */
		struct fuse_read_in in = {.fh = fh, .offset = off, .size = plus ? 300 : 64};
		freq_add(&r, &in, sizeof(in));
		uint32_t got;
		int e = fs_call(&d, plus ? FUSE_READDIRPLUS : FUSE_READDIR, 1, &r, buf, sizeof(buf),
				&got);
		if (e || got == 0)
			break;
		rounds++;
		for (uint32_t pos = 0; pos < got;) {
			struct fuse_entry_out eo;
			struct fuse_dirent de;
			if (plus) {
				memcpy(&eo, buf + pos, sizeof(eo));
				pos += sizeof(eo);
			}
			memcpy(&de, buf + pos, sizeof(de));
			char name[256] = {0};
			memcpy(name, buf + pos + FUSE_NAME_OFFSET, de.namelen);
			if (plus && strcmp(name, "hello.txt") == 0)
				ok(eo.nodeid > 1 && S_ISREG(eo.attr.mode) && eo.attr.size == 12,
				   "READDIRPLUS: hello.txt with its entry");
			if (plus && strcmp(name, ".") == 0)
				is_int(eo.nodeid, 0, "READDIRPLUS: no entry for '.'");
			strcat(seen, name);
			strcat(seen, " ");
			entries++;
			off = de.off;
			pos += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
		}
		if (rounds > 50)
			break;
	}
	diag("listing: %s", seen);
	ok(rounds > 1, "%s took %u rounds", plus ? "READDIRPLUS" : "READDIR", rounds);
	ok(strstr(seen, "hello.txt ") && strstr(seen, "sub ") && strstr(seen, "escape ") &&
	       strstr(seen, "fifo ") && strstr(seen, ". ") && strstr(seen, ".. "),
	   "every entry listed");
	is_int(entries, 7, "7 entries, none twice");
	is_int(fs_release(&d, 1, fh, true), 0, "RELEASEDIR");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	is_int(fs_open(&d, e.nodeid, O_RDONLY, &fh, true), -ENOTDIR, "OPENDIR of a file: ENOTDIR");
	fs_close_dev(&d);
}

/* Every other request that changes the export, on a read-only share: EROFS, nothing done. */
static void read_only_more(struct fsdev *d, const struct fuse_entry_out *e, uint64_t fh)
{
	struct freq r;
	struct fuse_entry_out out;
	is_int(fs_name_op(d, FUSE_RMDIR, 1, "sub"), -EROFS, "RMDIR: EROFS");
	is_int(fs_rename(d, 1, "hello.txt", 1, "x", 0), -EROFS, "RENAME2: EROFS");
	freq_init(&r);
	struct fuse_rename_in rn = {.newdir = 1};
	freq_add(&r, &rn, sizeof(rn));
	freq_str(&r, "hello.txt");
	freq_str(&r, "x");
	is_int(fs_call(d, FUSE_RENAME, 1, &r, NULL, 0, NULL), -EROFS, "RENAME: EROFS");
	freq_init(&r);
	struct fuse_link_in li = {.oldnodeid = e->nodeid};
	freq_add(&r, &li, sizeof(li));
	freq_str(&r, "x");
	is_int(fs_call(d, FUSE_LINK, 1, &r, &out, sizeof(out), NULL), -EROFS, "LINK: EROFS");
	freq_init(&r);
	freq_str(&r, "x");
	freq_str(&r, "hello.txt");
	is_int(fs_call(d, FUSE_SYMLINK, 1, &r, &out, sizeof(out), NULL), -EROFS, "SYMLINK: EROFS");
	freq_init(&r);
	struct fuse_mknod_in mk = {.mode = S_IFIFO | 0644};
	freq_add(&r, &mk, sizeof(mk));
	freq_str(&r, "x");
	is_int(fs_call(d, FUSE_MKNOD, 1, &r, &out, sizeof(out), NULL), -EROFS, "MKNOD: EROFS");
	is_int(fs_name_op(d, FUSE_REMOVEXATTR, e->nodeid, "user.x"), -EROFS, "REMOVEXATTR: EROFS");
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
	is_int(fs_setattr(d, e->nodeid, &sa, NULL), -EROFS, "SETATTR size: EROFS");
	sa = (struct fuse_setattr_in){.valid = FATTR_MTIME_NOW};
	is_int(fs_setattr(d, e->nodeid, &sa, NULL), -EROFS, "SETATTR times: EROFS");
	sa = (struct fuse_setattr_in){.valid = FATTR_UID, .uid = 1};
	is_int(fs_setattr(d, e->nodeid, &sa, NULL), -EROFS, "SETATTR owner: EROFS");
	freq_init(&r);
	struct fuse_fallocate_in fa = {.fh = fh, .offset = 0, .length = 1 << 20};
	freq_add(&r, &fa, sizeof(fa));
	is_int(fs_call(d, FUSE_FALLOCATE, e->nodeid, &r, NULL, 0, NULL), -EROFS,
	       "FALLOCATE: EROFS");
	freq_init(&r);
	struct fuse_copy_file_range_in cf = {
	    .fh_in = fh, .nodeid_out = e->nodeid, .fh_out = fh, .off_out = 100, .len = 12};
	freq_add(&r, &cf, sizeof(cf));
	struct fuse_write_out wo;
	is_int(fs_call(d, FUSE_COPY_FILE_RANGE, e->nodeid, &r, &wo, sizeof(wo), NULL), -EROFS,
	       "COPY_FILE_RANGE: EROFS");
	freq_init(&r);
	struct fuse_access_in ai = {.mask = W_OK};
	freq_add(&r, &ai, sizeof(ai));
	is_int(fs_call(d, FUSE_ACCESS, e->nodeid, &r, NULL, 0, NULL), -EROFS, "ACCESS W_OK: EROFS");
	is_int(fs_open(d, e->nodeid, O_WRONLY, &(uint64_t){0}, false), -EROFS,
	       "OPEN O_WRONLY: EROFS");
}

static void test_read_only(void)
{
	struct fsdev d;
	ok(open_export(&d, true, false), "read-only export up");
	struct fuse_entry_out e;
	uint64_t fh;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	is_int(fs_open(&d, e.nodeid, O_RDONLY, &fh, false), 0, "OPEN O_RDONLY");
	char buf[32];
	uint32_t got;
	is_int(fs_read(&d, e.nodeid, fh, 0, buf, sizeof(buf), &got), 0, "READ");
	is_int(fs_write(&d, e.nodeid, fh, 0, "x", 1, NULL), -EROFS, "WRITE: EROFS");
	is_int(fs_open(&d, e.nodeid, O_RDWR, &fh, false), -EROFS, "OPEN O_RDWR: EROFS");
	is_int(fs_open(&d, e.nodeid, O_RDONLY | O_TRUNC, &fh, false), -EROFS, "O_TRUNC: EROFS");
	is_int(fs_create(&d, 1, "x", O_RDWR, 0644, NULL), -EROFS, "CREATE: EROFS");
	is_int(fs_mkdir(&d, 1, "x", 0755, NULL), -EROFS, "MKDIR: EROFS");
	is_int(fs_name_op(&d, FUSE_UNLINK, 1, "hello.txt"), -EROFS, "UNLINK: EROFS");
	struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 0777};
	struct freq r;
	freq_init(&r);
	freq_add(&r, &sa, sizeof(sa));
	struct fuse_attr_out ao;
	is_int(fs_call(&d, FUSE_SETATTR, e.nodeid, &r, &ao, sizeof(ao), NULL), -EROFS,
	       "SETATTR: EROFS");
	freq_init(&r);
	uint32_t sx[2] = {1, 0};
	freq_add(&r, sx, sizeof(sx));
	freq_str(&r, "user.x");
	freq_add(&r, "v", 1);
	is_int(fs_call(&d, FUSE_SETXATTR, e.nodeid, &r, NULL, 0, NULL), -EROFS, "SETXATTR: EROFS");
	is_int(fs_open(&d, e.nodeid, O_RDONLY, &fh, false), 0, "OPEN O_RDONLY again");
	read_only_more(&d, &e, fh);
	struct stat st;
	ok(host_has("hello.txt", "hello world\n") && host_stat("x", &st) < 0, "host unchanged");
	ok(host_stat("sub/inner.txt", &st) == 0 && host_stat("sub", &st) == 0, "host: sub kept");
	fs_close_dev(&d);
}

static void test_xattrs(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	struct freq r;
	freq_init(&r);
	uint32_t sx[2] = {5, 0};
	freq_add(&r, sx, sizeof(sx));
	freq_str(&r, "user.kvrun");
	freq_add(&r, "value", 5);
	int ret = fs_call(&d, FUSE_SETXATTR, e.nodeid, &r, NULL, 0, NULL);
	if (ret == -EOPNOTSUPP) {
		skip("no user xattrs on the file system of /tmp");
		fs_close_dev(&d);
		return;
	}
	is_int(ret, 0, "SETXATTR user.kvrun");
	char p[256], v[16] = {0};
	path_of(p, sizeof(p), "hello.txt");
	ok(getxattr(p, "user.kvrun", v, sizeof(v)) == 5 && memcmp(v, "value", 5) == 0,
	   "host sees the xattr");
	freq_init(&r);
	struct fuse_getxattr_in gi = {.size = 0};
	freq_add(&r, &gi, sizeof(gi));
	freq_str(&r, "user.kvrun");
	struct fuse_getxattr_out go;
	is_int(fs_call(&d, FUSE_GETXATTR, e.nodeid, &r, &go, sizeof(go), NULL), 0,
	       "GETXATTR size 0");
	is_int(go.size, 5, "asks the size: 5");
	freq_init(&r);
	gi.size = 2;
	freq_add(&r, &gi, sizeof(gi));
	freq_str(&r, "user.kvrun");
	is_int(fs_call(&d, FUSE_GETXATTR, e.nodeid, &r, v, 16, NULL), -ERANGE,
	       "GETXATTR into 2 bytes: ERANGE");
	freq_init(&r);
	gi.size = 16;
	freq_add(&r, &gi, sizeof(gi));
	freq_str(&r, "user.kvrun");
	uint32_t got;
	memset(v, 0, sizeof(v));
	is_int(fs_call(&d, FUSE_GETXATTR, e.nodeid, &r, v, 16, &got), 0, "GETXATTR value");
	ok(got == 5 && memcmp(v, "value", 5) == 0, "value read");
	freq_init(&r);
	gi.size = 1 << 20;
	freq_add(&r, &gi, sizeof(gi));
	freq_str(&r, "user.kvrun");
	is_int(fs_call(&d, FUSE_GETXATTR, e.nodeid, &r, v, 16, NULL), -EINVAL,
	       "GETXATTR asking 1 MiB into 16 bytes: EINVAL");
	freq_init(&r);
	gi.size = 256;
	freq_add(&r, &gi, sizeof(gi));
	char list[256] = {0};
	is_int(fs_call(&d, FUSE_LISTXATTR, e.nodeid, &r, list, sizeof(list), &got), 0, "LISTXATTR");
	ok(memmem(list, got, "user.kvrun", 11) != NULL, "lists user.kvrun");
	freq_init(&r);
	sx[0] = 100000;
	freq_add(&r, sx, sizeof(sx));
	freq_str(&r, "user.big");
	freq_add(&r, "v", 1);
	is_int(fs_call(&d, FUSE_SETXATTR, e.nodeid, &r, NULL, 0, NULL), -EINVAL,
	       "SETXATTR size past the request: EINVAL");
	is_int(fs_name_op(&d, FUSE_REMOVEXATTR, e.nodeid, "user.kvrun"), 0, "REMOVEXATTR");
	ok(getxattr(p, "user.kvrun", v, sizeof(v)) < 0, "host: removed");
	struct fuse_entry_out l;
	is_int(fs_lookup(&d, 1, "escape", &l), 0, "LOOKUP symlink");
	freq_init(&r);
	gi.size = 0;
	freq_add(&r, &gi, sizeof(gi));
	freq_str(&r, "user.kvrun");
	is_int(fs_call(&d, FUSE_GETXATTR, l.nodeid, &r, &go, sizeof(go), NULL), -EOPNOTSUPP,
	       "xattrs of a symlink: EOPNOTSUPP (never followed)");
	fs_close_dev(&d);
}

/* The name mapping on its own: guest names to host names and back, lists. */
static void test_xattr_names(void)
{
	char h[FUSE_XATTR_NAME_MAX + 1];
	is_int(fuse_xattr_host_name("security.capability", true, h), 0, "security.*: mapped");
	is_str(h, "user.kvrun.security.capability", "into user.kvrun.security.*");
	is_int(fuse_xattr_host_name("trusted.overlay.opaque", false, h), 0, "trusted.*: mapped");
	is_str(h, "user.kvrun.trusted.overlay.opaque", "into user.kvrun.trusted.*");
	is_int(fuse_xattr_host_name("user.mime", true, h), 0, "user.*: as is");
	is_str(h, "user.mime", "the same name");
	is_int(fuse_xattr_host_name("system.posix_acl_access", true, h), 0, "ACLs: as is");
	is_int(fuse_xattr_host_name("user.kvrun.security.x", true, h), -EPERM,
	       "setting the mapping's own names: EPERM");
	is_int(fuse_xattr_host_name("user.kvrun.x", false, h), -ENODATA, "reading them: ENODATA");
	is_int(fuse_xattr_host_name("system.nfs4_acl", true, h), -EOPNOTSUPP,
	       "other system.*: EOPNOTSUPP");
	is_int(fuse_xattr_host_name("bogus", false, h), -EOPNOTSUPP, "no namespace: EOPNOTSUPP");
	char longname[FUSE_XATTR_NAME_MAX + 1];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memcpy(longname, "security.", 9);
	is_int(fuse_xattr_host_name(longname, true, h), -ERANGE, "too long once mapped: ERANGE");

	static const char host[] =
	    "security.selinux\0trusted.host\0user.kvrun.security.capability\0"
	    "user.kvrun.other\0user.a\0system.posix_acl_default\0"
	    "system.nfs4_acl\0user.kvrun.trusted.overlay.origin\0";
	static const char want[] = "security.capability\0user.a\0system.posix_acl_default\0"
				   "trusted.overlay.origin\0";
	char out[256];
	ssize_t n = fuse_xattr_list_map(host, sizeof(host) - 1, NULL, 0);
	is_int(n, sizeof(want) - 1, "list: the guest's length");
	n = fuse_xattr_list_map(host, sizeof(host) - 1, out, sizeof(out));
	ok(n == (ssize_t)sizeof(want) - 1 && memcmp(out, want, n) == 0,
	   "list: host labels and other names hidden, mapped ones shown as the guest set them");
	is_int(fuse_xattr_list_map(host, sizeof(host) - 1, out, 10), -ERANGE,
	       "list into too small a buffer: ERANGE");
	is_int(fuse_xattr_list_map("user.a\0user.b", 13, out, sizeof(out)), 7,
	       "an unterminated tail is dropped");
}

static int fs_setxattr(struct fsdev *d, uint64_t node, const char *name, const char *value)
{
	struct freq r;
	freq_init(&r);
	uint32_t sx[2] = {(uint32_t)strlen(value), 0};
	freq_add(&r, sx, sizeof(sx));
	freq_str(&r, name);
	freq_add(&r, value, strlen(value));
	return fs_call(d, FUSE_SETXATTR, node, &r, NULL, 0, NULL);
}

static int fs_getxattr(struct fsdev *d, uint64_t node, const char *name, char *v, size_t n,
		       uint32_t *got)
{
	struct freq r;
	freq_init(&r);
	struct fuse_getxattr_in gi = {.size = (uint32_t)n};
	freq_add(&r, &gi, sizeof(gi));
	if (name)
		freq_str(&r, name);
	return fs_call(d, name ? FUSE_GETXATTR : FUSE_LISTXATTR, node, &r, v, n, got);
}

/* A guest's security.* and trusted.* never become host labels. */
static void test_xattr_map(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fuse_entry_out e;
	is_int(fs_lookup(&d, 1, "hello.txt", &e), 0, "LOOKUP");
	int ret = fs_setxattr(&d, e.nodeid, "security.capability", "caps");
	if (ret == -EOPNOTSUPP) {
		skip("no user xattrs on the file system of /tmp");
		fs_close_dev(&d);
		return;
	}
	is_int(ret, 0, "SETXATTR security.capability (setcap in the guest)");
	char p[256], v[64] = {0};
	path_of(p, sizeof(p), "hello.txt");
	ok(getxattr(p, "security.capability", v, sizeof(v)) < 0, "host: no security.capability");
	ok(getxattr(p, "user.kvrun.security.capability", v, sizeof(v)) == 4 &&
	       memcmp(v, "caps", 4) == 0,
	   "host: user.kvrun.security.capability");
	is_int(fs_setxattr(&d, e.nodeid, "trusted.overlay.opaque", "y"), 0,
	       "SETXATTR trusted.overlay.opaque");
	ok(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) < 0 &&
	       getxattr(p, "user.kvrun.trusted.overlay.opaque", v, sizeof(v)) == 1,
	   "host: user.kvrun.trusted.overlay.opaque only");
	uint32_t got = 0;
	memset(v, 0, sizeof(v));
	is_int(fs_getxattr(&d, e.nodeid, "security.capability", v, sizeof(v), &got), 0,
	       "GETXATTR security.capability");
	ok(got == 4 && memcmp(v, "caps", 4) == 0, "the guest reads back what it set");
	/* Names the host set itself: hidden (or reserved), whatever they are. */
	ok(setxattr(p, "user.kvrun.note", "h", 1, 0) == 0, "host: user.kvrun.note");
	bool host_label = is_root && setxattr(p, "trusted.hostlabel", "h", 1, 0) == 0;
	is_int(fs_getxattr(&d, e.nodeid, "user.kvrun.note", v, sizeof(v), NULL), -ENODATA,
	       "GETXATTR user.kvrun.note: ENODATA");
	is_int(fs_setxattr(&d, e.nodeid, "user.kvrun.security.capability", "forged"), -EPERM,
	       "SETXATTR user.kvrun.*: EPERM");
	is_int(fs_name_op(&d, FUSE_REMOVEXATTR, e.nodeid, "user.kvrun.note"), -EPERM,
	       "REMOVEXATTR user.kvrun.*: EPERM");
	is_int(fs_setxattr(&d, e.nodeid, "system.nfs4_acl", "x"), -EOPNOTSUPP,
	       "SETXATTR system.nfs4_acl: EOPNOTSUPP");
	char list[512] = {0};
	is_int(fs_getxattr(&d, e.nodeid, NULL, list, sizeof(list), &got), 0, "LISTXATTR");
	ok(memmem(list, got, "security.capability", 20) == list ||
	       memmem(list, got, "\0security.capability", 21),
	   "lists security.capability");
	ok(memmem(list, got, "trusted.overlay.opaque", 23) != NULL, "lists trusted.overlay.opaque");
	ok(!memmem(list, got, "user.kvrun.", 11), "no user.kvrun.* name listed");
	if (host_label) {
		ok(!memmem(list, got, "trusted.hostlabel", 17), "the host's trusted.* hidden");
		is_int(fs_getxattr(&d, e.nodeid, "trusted.hostlabel", v, sizeof(v), NULL), -ENODATA,
		       "GETXATTR of the host's trusted.hostlabel: ENODATA");
	} else {
		skip("not root: no host trusted.* label to hide");
		skip("not root: no host trusted.* label to read");
	}
	struct freq r;
	freq_init(&r);
	struct fuse_getxattr_in gi = {.size = 0};
	freq_add(&r, &gi, sizeof(gi));
	struct fuse_getxattr_out go;
	is_int(fs_call(&d, FUSE_LISTXATTR, e.nodeid, &r, &go, sizeof(go), NULL), 0,
	       "LISTXATTR size 0");
	is_int(go.size, got, "the size of the guest's list");
	is_int(fs_name_op(&d, FUSE_REMOVEXATTR, e.nodeid, "security.capability"), 0,
	       "REMOVEXATTR security.capability");
	ok(getxattr(p, "user.kvrun.security.capability", v, sizeof(v)) < 0,
	   "host: the mapped name removed");
	fs_close_dev(&d);
}

static void test_misc(void)
{
	struct fsdev d;
	ok(open_export(&d, false, false), "export up");
	struct fs_created c;
	is_int(fs_create(&d, 1, "sparse", O_RDWR, 0644, &c), 0, "CREATE sparse");
	struct freq r;
	freq_init(&r);
	struct fuse_fallocate_in fa = {.fh = c.o.fh, .offset = 1 << 20, .length = 4096};
	freq_add(&r, &fa, sizeof(fa));
	is_int(fs_call(&d, FUSE_FALLOCATE, c.e.nodeid, &r, NULL, 0, NULL), 0, "FALLOCATE");
	struct stat st;
	ok(host_stat("sparse", &st) == 0 && st.st_size == (1 << 20) + 4096, "host: size grew");
	freq_init(&r);
	fa.mode = 0x80; /* unknown */
	freq_add(&r, &fa, sizeof(fa));
	is_int(fs_call(&d, FUSE_FALLOCATE, c.e.nodeid, &r, NULL, 0, NULL), -EOPNOTSUPP,
	       "FALLOCATE unknown mode: EOPNOTSUPP");
	freq_init(&r);
	fa = (struct fuse_fallocate_in){.fh = c.o.fh, .offset = INT64_MAX, .length = 10};
	freq_add(&r, &fa, sizeof(fa));
	is_int(fs_call(&d, FUSE_FALLOCATE, c.e.nodeid, &r, NULL, 0, NULL), -EINVAL,
	       "FALLOCATE past 2^63: EINVAL");

	struct fuse_entry_out h;
	uint64_t hfh;
	is_int(fs_lookup(&d, 1, "hello.txt", &h), 0, "LOOKUP hello.txt");
	is_int(fs_open(&d, h.nodeid, O_RDONLY, &hfh, false), 0, "OPEN hello.txt");
	freq_init(&r);
	struct fuse_copy_file_range_in cf = {.fh_in = hfh,
					     .nodeid_out = c.e.nodeid,
					     .fh_out = c.o.fh,
					     .off_out = 0,
					     .len = UINT64_MAX};
	freq_add(&r, &cf, sizeof(cf));
	struct fuse_write_out wo;
	is_int(fs_call(&d, FUSE_COPY_FILE_RANGE, c.e.nodeid, &r, &wo, sizeof(wo), NULL), 0,
	       "COPY_FILE_RANGE len 2^64-1");
	is_int(wo.size, 12, "12 bytes copied");
	freq_init(&r);
	cf.nodeid_out = h.nodeid; /* a handle of another inode */
	freq_add(&r, &cf, sizeof(cf));
	is_int(fs_call(&d, FUSE_COPY_FILE_RANGE, c.e.nodeid, &r, &wo, sizeof(wo), NULL), -EBADF,
	       "COPY_FILE_RANGE fh_out not of nodeid_out: EBADF");

	freq_init(&r);
	struct fuse_lseek_in ls = {.fh = c.o.fh, .offset = 0, .whence = SEEK_DATA};
	freq_add(&r, &ls, sizeof(ls));
	struct fuse_lseek_out lo;
	is_int(fs_call(&d, FUSE_LSEEK, c.e.nodeid, &r, &lo, sizeof(lo), NULL), 0,
	       "LSEEK SEEK_DATA");
	is_int(lo.offset, 0, "data at 0");
	freq_init(&r);
	ls.whence = SEEK_HOLE;
	freq_add(&r, &ls, sizeof(ls));
	is_int(fs_call(&d, FUSE_LSEEK, c.e.nodeid, &r, &lo, sizeof(lo), NULL), 0,
	       "LSEEK SEEK_HOLE");
	ok(lo.offset >= 12, "a hole after the data, at %llu", (unsigned long long)lo.offset);
	freq_init(&r);
	ls.whence = SEEK_END;
	freq_add(&r, &ls, sizeof(ls));
	is_int(fs_call(&d, FUSE_LSEEK, c.e.nodeid, &r, &lo, sizeof(lo), NULL), -EINVAL,
	       "LSEEK SEEK_END: EINVAL (the guest's business)");

	freq_init(&r);
	struct fuse_fsync_in fsi = {.fh = c.o.fh, .fsync_flags = FUSE_FSYNC_FDATASYNC};
	freq_add(&r, &fsi, sizeof(fsi));
	is_int(fs_call(&d, FUSE_FSYNC, c.e.nodeid, &r, NULL, 0, NULL), 0, "FSYNC");
	freq_init(&r);
	struct fuse_flush_in fl = {.fh = c.o.fh};
	freq_add(&r, &fl, sizeof(fl));
	is_int(fs_call(&d, FUSE_FLUSH, c.e.nodeid, &r, NULL, 0, NULL), 0, "FLUSH");

	freq_init(&r);
	struct fuse_statfs_out so;
	is_int(fs_call(&d, FUSE_STATFS, 1, &r, &so, sizeof(so), NULL), 0, "STATFS");
	ok(so.st.bsize > 0 && so.st.namelen == 255, "statfs: bsize %u namelen %u", so.st.bsize,
	   so.st.namelen);
	freq_init(&r);
	struct fuse_access_in ai = {.mask = W_OK};
	freq_add(&r, &ai, sizeof(ai));
	d.uid = 4321;
	d.gid = 4321;
	is_int(fs_call(&d, FUSE_ACCESS, h.nodeid, &r, NULL, 0, NULL), -EACCES,
	       "ACCESS W_OK by another user on 0644: EACCES");
	d.uid = d.gid = 0;
	is_int(fs_call(&d, FUSE_ACCESS, h.nodeid, &r, NULL, 0, NULL), 0, "ACCESS W_OK by root");

	/* DESTROY drops every inode and handle; a new INIT starts afresh. */
	freq_init(&r);
	is_int(fs_call(&d, FUSE_DESTROY, 1, &r, NULL, 0, NULL), 0, "DESTROY");
	is_int(fs_getattr(&d, 1, NULL), -EIO, "after DESTROY: EIO until INIT");
	is_int(fs_init(&d, 0, NULL), 0, "INIT again");
	is_int(fs_getattr(&d, h.nodeid, NULL), -ESTALE, "old nodeids: ESTALE");
	is_int(fs_read(&d, h.nodeid, hfh, 0, &wo, 4, NULL), -EBADF, "old handles: EBADF");
	is_int(fs_getattr(&d, 1, NULL), 0, "root still there");
	fs_close_dev(&d);
}

int main(void)
{
	struct kv_err *lerr = NULL;
	if (kv_log_init("test", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &lerr) < 0)
		return 1;
	fs_test_setup();
	test_files();
	test_ownership();
	test_readdir(false);
	test_readdir(true);
	test_read_only();
	test_xattrs();
	test_xattr_names();
	test_xattr_map();
	test_misc();
	fs_test_cleanup();
	return tap_done();
}
