/* SPDX-License-Identifier: Apache-2.0 */
/* test-init: virtio-fs: fs, fs-ro, fs-file, fs-binds, fs-escape and fsbench. */
#include "test-init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

bool fsck_step(struct fsck *c, bool cond, const char *fmt, ...)
{
	int e = errno;
	c->steps++;
	/* kvrun.fsverbose=1: each step as it ends (where a guest that dies stopped). */
	if (strcmp(arg("fsverbose", "0"), "1") == 0) {
		char what[140];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		say("KVRUN-TEST-STEP %d %s: %s", c->steps, what, cond ? "ok" : "failed");
	}
	if (!cond && c->ok) {
		char what[140];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		c->ok = false;
		snprintf(c->why, sizeof(c->why), "step %d %s: %s", c->steps, what, strerror(e));
	}
	return cond;
}

bool fs_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return false;
	bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	return close(fd) == 0 && ok;
}

ssize_t fs_read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t got = read(fd, buf, n - 1);
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
	return got;
}

bool fs_mount(const char *tag, bool dax, char *mnt, size_t n)
{
	snprintf(mnt, n, "/mnt/%s", tag);
	mkdir("/mnt", 0755);
	mkdir(mnt, 0755);
	return mount(tag, mnt, "virtiofs", 0, dax ? "dax" : NULL) == 0;
}

/* Whether the mount at mnt shows `opt` in /proc/mounts. */
static bool fs_mount_has(const char *mnt, const char *opt)
{
	char mounts[8192], pat[160];
	if (fs_read_file("/proc/mounts", mounts, sizeof(mounts)) < 0)
		return false;
	snprintf(pat, sizeof(pat), " %s virtiofs ", mnt);
	char *line = strstr(mounts, pat);
	if (!line)
		return false;
	char *end = strchrnul(line, '\n'), *o = strstr(line, opt);
	return o && o < end;
}

static uint32_t fs_pattern(uint64_t word)
{
	return (uint32_t)(word * 2654435761u) ^ 0x6b76726e;
}

/* 3 MiB of pattern: crosses DAX's 2 MiB ranges; read back and compared. */
static void fs_big_file(struct fsck *c, const char *path)
{
	static uint32_t buf[16384];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!fsck_step(c, fd >= 0, "create %s", path))
		return;
	bool ok = true;
	for (uint64_t chunk = 0; ok && chunk < 48; chunk++) {
		for (size_t i = 0; i < 16384; i++)
			buf[i] = fs_pattern(chunk * 16384 + i);
		ok = pwrite(fd, buf, sizeof(buf), chunk * sizeof(buf)) == sizeof(buf);
	}
	fsck_step(c, ok && fsync(fd) == 0, "write %s", path);
	for (uint64_t chunk = 0; ok && chunk < 48; chunk++) {
		ok = pread(fd, buf, sizeof(buf), chunk * sizeof(buf)) == sizeof(buf);
		for (size_t i = 0; ok && i < 16384; i++)
			ok = buf[i] == fs_pattern(chunk * 16384 + i);
	}
	fsck_step(c, ok, "read back %s", path);
	close(fd);
}

/* A shared writable mapping: the host sees what the guest stored. */
static void fs_mmap_file(struct fsck *c, const char *path)
{
	static const char msg[] = "mmap from the guest\n";
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!fsck_step(c, fd >= 0 && ftruncate(fd, 8192) == 0, "create %s", path))
		return;
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fsck_step(c, p != MAP_FAILED, "mmap %s", path)) {
		memcpy(p + 4096, msg, sizeof(msg) - 1);
		fsck_step(c, msync(p, 8192, MS_SYNC) == 0, "msync");
		munmap(p, 8192);
	}
	char back[64] = "";
	fsck_step(
	    c, pread(fd, back, sizeof(msg) - 1, 4096) == sizeof(msg) - 1 && strcmp(back, msg) == 0,
	    "read back the mapping");
	close(fd);
}

int fs_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void fs_namespace_ops(struct fsck *c, const char *mnt)
{
	char p[300], q[300], buf[256];
	struct stat st;
	snprintf(p, sizeof(p), "%s/guest", mnt);
	fsck_step(c, mkdir(p, 0750) == 0, "mkdir guest");
	snprintf(p, sizeof(p), "%s/guest/file.txt", mnt);
	fsck_step(c, fs_write_file(p, "written by the guest\n", 21, 0640), "write file.txt");
	fsck_step(c,
		  fs_read_file(p, buf, sizeof(buf)) == 21 &&
		      strcmp(buf, "written by the guest\n") == 0,
		  "read file.txt back");
	snprintf(q, sizeof(q), "%s/guest/renamed.txt", mnt);
	fsck_step(c, rename(p, q) == 0 && stat(p, &st) < 0 && errno == ENOENT, "rename");
	snprintf(p, sizeof(p), "%s/guest/hardlink.txt", mnt);
	fsck_step(c, link(q, p) == 0 && stat(q, &st) == 0 && st.st_nlink == 2, "link");
	snprintf(p, sizeof(p), "%s/guest/sym", mnt);
	ssize_t n = -1;
	if (fsck_step(c, symlink("renamed.txt", p) == 0, "symlink"))
		n = readlink(p, buf, sizeof(buf));
	fsck_step(c, n == 11 && memcmp(buf, "renamed.txt", 11) == 0, "readlink");
	fsck_step(c, fs_read_file(p, buf, sizeof(buf)) == 21, "read through the symlink");
	fsck_step(c, chmod(q, 0604) == 0 && stat(q, &st) == 0 && (st.st_mode & 07777) == 0604,
		  "chmod 0604");
	fsck_step(c,
		  chown(q, 1234, 5678) == 0 && stat(q, &st) == 0 && st.st_uid == 1234 &&
		      st.st_gid == 5678,
		  "chown 1234:5678");
	fsck_step(c,
		  truncate(q, 7) == 0 && stat(q, &st) == 0 && st.st_size == 7 &&
		      fs_read_file(q, buf, sizeof(buf)) == 7 && strcmp(buf, "written") == 0,
		  "truncate to 7");
	fsck_step(c,
		  setxattr(q, "user.kvrun", "yes", 3, 0) == 0 &&
		      getxattr(q, "user.kvrun", buf, sizeof(buf)) == 3,
		  "user xattr");
	snprintf(p, sizeof(p), "%s/guest", mnt);
	int entries = fs_count_entries(p);
	fsck_step(c, entries == 3, "list guest/ (%d entries, want 3)", entries);
	snprintf(p, sizeof(p), "%s/guest/delete-me", mnt);
	fsck_step(c, fs_write_file(p, "x", 1, 0600) && unlink(p) == 0 && stat(p, &st) < 0,
		  "create and unlink");
	snprintf(p, sizeof(p), "%s/guest/rmdir-me", mnt);
	fsck_step(c, mkdir(p, 0700) == 0 && rmdir(p) == 0 && stat(p, &st) < 0, "mkdir and rmdir");
}

/* In a child with uid/gid: 0 when open(path, flags) succeeds, else its errno. */
static int fs_open_as(uid_t uid, gid_t gid, const char *path, int flags)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(gid) < 0 || setuid(uid) < 0)
			_exit(255);
		int fd = open(path, flags, 0644);
		_exit(fd < 0 ? errno : 0);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 254;
}

/*
 * Permissions as the host has them (the guest checks them on the attributes
 * the host reports): another user may read the host's 0644 file but not
 * write it, nor create in the 0755 root; the owner of a 0604 file may write
 * it, a stranger not.
 */
static void fs_permissions(struct fsck *c, const char *mnt)
{
	char host[300], perm[300], newf[300];
	snprintf(host, sizeof(host), "%s/from-host.txt", mnt);
	snprintf(perm, sizeof(perm), "%s/perm.txt", mnt);
	snprintf(newf, sizeof(newf), "%s/user-file", mnt);
	int e;
	e = fs_open_as(1000, 1000, host, O_RDONLY);
	fsck_step(c, e == 0, "uid 1000 reads 0644 (%d)", e);
	e = fs_open_as(1000, 1000, host, O_WRONLY);
	fsck_step(c, e == EACCES, "uid 1000 may not write 0644 root:root (%d)", e);
	e = fs_open_as(1000, 1000, newf, O_WRONLY | O_CREAT);
	fsck_step(c, e == EACCES, "uid 1000 may not create in 0755 root:root (%d)", e);
	fsck_step(c, fs_write_file(perm, "p\n", 2, 0604) && chown(perm, 1234, 5678) == 0,
		  "perm.txt 0604 1234:5678");
	e = fs_open_as(1234, 5678, perm, O_WRONLY);
	fsck_step(c, e == 0, "the owner writes its 0604 file (%d)", e);
	e = fs_open_as(1000, 1000, perm, O_WRONLY);
	fsck_step(c, e == EACCES, "a stranger may not (%d)", e);
	fsck_step(c, unlink(perm) == 0, "unlink perm.txt");
}

/* rename2(EXCHANGE), fallocate, SEEK_DATA and copy_file_range, through the guest kernel. */
static void fs_more_ops(struct fsck *c, const char *mnt)
{
	char a[300], b[300], d[300], buf[64];
	snprintf(a, sizeof(a), "%s/guest/a.txt", mnt);
	snprintf(b, sizeof(b), "%s/guest/b.txt", mnt);
	snprintf(d, sizeof(d), "%s/guest/copy.txt", mnt);
	fsck_step(c, fs_write_file(a, "AAAA", 4, 0644) && fs_write_file(b, "BB", 2, 0644),
		  "a.txt, b.txt");
	fsck_step(c,
		  renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0 &&
		      fs_read_file(a, buf, sizeof(buf)) == 2 && strcmp(buf, "BB") == 0,
		  "rename2 RENAME_EXCHANGE");
	int fd = open(b, O_RDWR);
	fsck_step(c, fd >= 0 && fallocate(fd, 0, 0, 1 << 20) == 0, "fallocate 1 MiB");
	struct stat st;
	fsck_step(c, fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 1 << 20, "size 1 MiB");
	fsck_step(c, fd >= 0 && lseek(fd, 0, SEEK_DATA) == 0, "SEEK_DATA");
	int out = open(d, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	loff_t off_in = 0, off_out = 0;
	fsck_step(c, fd >= 0 && out >= 0 && copy_file_range(fd, &off_in, out, &off_out, 4, 0) == 4,
		  "copy_file_range");
	if (out >= 0)
		close(out);
	if (fd >= 0)
		close(fd);
	fsck_step(c, fs_read_file(d, buf, sizeof(buf)) == 4 && strcmp(buf, "AAAA") == 0,
		  "copied bytes");
	fsck_step(c, unlink(a) == 0 && unlink(b) == 0 && unlink(d) == 0, "clean up");
}

static void fs_workload(struct fsck *c, const char *mnt)
{
	char p[300], buf[256];
	snprintf(p, sizeof(p), "%s/from-host.txt", mnt);
	fsck_step(
	    c, fs_read_file(p, buf, sizeof(buf)) > 0 && strcmp(buf, "hello from the host\n") == 0,
	    "read from-host.txt");
	snprintf(p, sizeof(p), "%s/hostdir", mnt);
	int entries = fs_count_entries(p);
	fsck_step(c, entries == 3, "list hostdir (%d entries, want 3)", entries);
	fs_namespace_ops(c, mnt);
	fs_more_ops(c, mnt);
	fs_permissions(c, mnt);
	snprintf(p, sizeof(p), "%s/big.bin", mnt);
	fs_big_file(c, p);
	snprintf(p, sizeof(p), "%s/mmap.bin", mnt);
	fs_mmap_file(c, p);
	struct statfs sf;
	fsck_step(c, statfs(mnt, &sf) == 0 && sf.f_bsize > 0, "statfs");
}

/*
 * Let the host look at the running VMM (its DAX mappings) before we go on:
 * say so on the console, then wait for the host's answer in the share.
 */
static void fs_host_handshake(struct fsck *c, const char *tag, const char *mnt)
{
	char p[300];
	struct stat st;
	snprintf(p, sizeof(p), "%s/host-checked", mnt);
	say("KVRUN-TEST-FS-WAIT %s", tag);
	bool seen = false;
	for (int i = 0; i < 600 && !seen; i++) {
		seen = stat(p, &st) == 0;
		if (!seen)
			usleep(200000);
	}
	char buf[32];
	fsck_step(c,
		  seen && fs_read_file(p, buf, sizeof(buf)) == 8 && strcmp(buf, "checked\n") == 0,
		  "host handshake %s (a file the host wrote while we run)", p);
}

static bool fs_in_list(const char *list, const char *tag)
{
	size_t n = strlen(tag);
	for (const char *p = list; (p = strstr(p, tag)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

void check_fs(void)
{
	char tags[256], dax_tags[256], wait_tags[256];
	snprintf(tags, sizeof(tags), "%s", arg("fstags", "fs"));
	snprintf(dax_tags, sizeof(dax_tags), "%s", arg("fsdax", ""));
	snprintf(wait_tags, sizeof(wait_tags), "%s", arg("fswait", ""));
	for (char *save = NULL, *t = strtok_r(tags, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		struct fsck c = {.ok = true};
		char mnt[128], name[64];
		bool dax = fs_in_list(dax_tags, t);
		snprintf(name, sizeof(name), "fs:%s", t);
		if (!fsck_step(&c, fs_mount(t, dax, mnt, sizeof(mnt)), "mount %s", t)) {
			result(name, false, "%s", c.why);
			continue;
		}
		fsck_step(&c, fs_mount_has(mnt, "dax") == dax, "dax in /proc/mounts");
		fs_workload(&c, mnt);
		if (fs_in_list(wait_tags, t))
			fs_host_handshake(&c, t, mnt);
		/* Leave it mounted: fsbench may use it; power-off syncs. */
		result(name, c.ok, "dax=%s steps=%d %s", dax ? "yes" : "no", c.steps, c.why);
	}
}

void check_fs_ro(void)
{
	struct fsck c = {.ok = true};
	char mnt[128], p[300], buf[64];
	const char *tag = arg("fsro", "ro");
	if (fsck_step(&c, fs_mount(tag, false, mnt, sizeof(mnt)), "mount")) {
		snprintf(p, sizeof(p), "%s/from-host.txt", mnt);
		fsck_step(&c, fs_read_file(p, buf, sizeof(buf)) > 0, "read");
		int fd = open(p, O_WRONLY);
		fsck_step(&c, fd < 0 && errno == EROFS, "open for writing: EROFS");
		snprintf(p, sizeof(p), "%s/new", mnt);
		fsck_step(&c, mkdir(p, 0755) < 0 && errno == EROFS, "mkdir: EROFS");
		fsck_step(&c, open(p, O_CREAT | O_WRONLY, 0644) < 0 && errno == EROFS,
			  "create: EROFS");
		snprintf(p, sizeof(p), "%s/from-host.txt", mnt);
		fsck_step(&c, unlink(p) < 0 && errno == EROFS, "unlink: EROFS");
		fsck_step(&c, chmod(p, 0777) < 0 && errno == EROFS, "chmod: EROFS");
	}
	result("fs-ro", c.ok, "steps=%d %s", c.steps, c.why);
}

void check_fs_file(void)
{
	struct fsck c = {.ok = true};
	char mnt[128], src[400], buf[256];
	char tag[64], file[64];
	snprintf(tag, sizeof(tag), "%s", arg("fsfile", "hosts"));
	snprintf(file, sizeof(file), "%s", arg("fsfilename", "hosts"));
	if (fsck_step(&c, fs_mount(tag, false, mnt, sizeof(mnt)), "mount")) {
		fsck_step(&c, fs_count_entries(mnt) == 1, "one entry in the root");
		snprintf(src, sizeof(src), "%s/%s", mnt, file);
		const char *target = "/hosts-target";
		fsck_step(&c, fs_write_file(target, "", 0, 0644), "bind target");
		fsck_step(&c, mount(src, target, NULL, MS_BIND, NULL) == 0, "bind mount");
		fsck_step(&c,
			  fs_read_file(target, buf, sizeof(buf)) > 0 &&
			      strstr(buf, "127.0.0.1") != NULL,
			  "read through the bind mount");
		int fd = open(target, O_WRONLY | O_APPEND);
		fsck_step(
		    &c, fd >= 0 && write(fd, "10.0.0.2 guest-added\n", 21) == 21 && fsync(fd) == 0,
		    "append through the bind mount");
		if (fd >= 0)
			close(fd);
		char other[400];
		snprintf(other, sizeof(other), "%s/other", mnt);
		fsck_step(&c, mkdir(other, 0755) < 0, "no new entries in the synthetic root");
		umount(target);
	}
	result("fs-file", c.ok, "steps=%d %s", c.steps, c.why);
}

/*
 * Named shares of one tag (the runtime's bind mounts through one device):
 * the root lists them; vol (rw dir) is bind-mounted and written through,
 * conf (ro dir) refuses writes, hosts (rw file) takes an append.
 */
void check_fs_binds(void)
{
	struct fsck c = {.ok = true};
	char mnt[128], p[300], buf[64];
	char tag[64];
	snprintf(tag, sizeof(tag), "%s", arg("fsbinds", "binds"));
	if (fsck_step(&c, fs_mount(tag, false, mnt, sizeof(mnt)), "mount")) {
		int n = fs_count_entries(mnt);
		fsck_step(&c, n == 3, "three shares in the root (%d)", n);
		snprintf(p, sizeof(p), "%s/vol", mnt);
		fsck_step(&c,
			  mkdir("/vol-target", 0755) == 0 &&
			      mount(p, "/vol-target", NULL, MS_BIND, NULL) == 0,
			  "bind-mount vol");
		fsck_step(&c, fs_write_file("/vol-target/from-guest", "vol\n", 4, 0644),
			  "write into the bound volume");
		snprintf(p, sizeof(p), "%s/conf/setting", mnt);
		fsck_step(&c, fs_read_file(p, buf, sizeof(buf)) > 0 && strcmp(buf, "on\n") == 0,
			  "read conf/setting");
		fsck_step(&c, open(p, O_WRONLY) < 0 && errno == EROFS, "conf is read-only");
		snprintf(p, sizeof(p), "%s/hosts", mnt);
		int fd = open(p, O_WRONLY | O_APPEND);
		fsck_step(&c, fd >= 0 && write(fd, "10.0.0.3 binds\n", 15) == 15,
			  "append to hosts");
		if (fd >= 0)
			close(fd);
		snprintf(p, sizeof(p), "%s/vol/../conf/setting", mnt);
		fsck_step(&c, fs_read_file(p, buf, sizeof(buf)) > 0,
			  "'..' between shares, guest-side");
		umount("/vol-target");
	}
	result("fs-binds", c.ok, "steps=%d %s", c.steps, c.why);
}

/* Read path; true unless it yields the host's secret. */
static bool fs_not_secret(const char *path)
{
	char buf[128];
	return fs_read_file(path, buf, sizeof(buf)) < 0 || strstr(buf, "KVRUN-SECRET") == NULL;
}

/* A child swaps inside/ for a symlink to the host's outside dir while we look up through it. */
static void fs_swap_race(struct fsck *c, const char *mnt, const char *outside)
{
	char dir[300], real[300], file[320], secret[320];
	snprintf(dir, sizeof(dir), "%s/swap", mnt);
	snprintf(real, sizeof(real), "%s/swap.real", mnt);
	snprintf(file, sizeof(file), "%s/file.txt", dir);
	snprintf(secret, sizeof(secret), "%s/secret.txt", dir);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 40; i++) {
			if (rename(dir, real) < 0 || symlink(outside, dir) < 0)
				_exit(1);
			if (unlink(dir) < 0 || rename(real, dir) < 0)
				_exit(1);
		}
		_exit(0);
	}
	int reads = 0, leaks = 0, status = 0;
	char buf[64];
	for (int i = 0; i < 80; i++) {
		if (fs_read_file(file, buf, sizeof(buf)) > 0) {
			reads++;
			leaks += strcmp(buf, "inside\n") != 0;
		}
		leaks += !fs_not_secret(secret);
	}
	waitpid(pid, &status, 0);
	fsck_step(c, WIFEXITED(status) && WEXITSTATUS(status) == 0, "swapper ran");
	fsck_step(c, leaks == 0, "swap race: %d leaks in %d reads", leaks, reads);
}

void check_fs_escape(void)
{
	struct fsck c = {.ok = true};
	char mnt[128], p[400], outside[256];
	const char *tag = arg("fsescape", "escape");
	char tagbuf[64];
	snprintf(tagbuf, sizeof(tagbuf), "%s", tag);
	snprintf(outside, sizeof(outside), "%s", arg("fsoutside", "/nonexistent"));
	if (!fsck_step(&c, fs_mount(tagbuf, false, mnt, sizeof(mnt)), "mount")) {
		result("fs-escape", false, "%s", c.why);
		return;
	}
	snprintf(p, sizeof(p), "%s/escape/secret.txt", mnt);
	fsck_step(&c, fs_not_secret(p), "relative symlink out");
	snprintf(p, sizeof(p), "%s/abs/secret.txt", mnt);
	fsck_step(&c, fs_not_secret(p), "absolute symlink out");
	snprintf(p, sizeof(p), "%s/inside/../../outside/secret.txt", mnt);
	fsck_step(&c, fs_not_secret(p), "'..' out");
	snprintf(p, sizeof(p), "%s/inside", mnt);
	fsck_step(&c, chdir(p) == 0 && fs_not_secret("../../../outside/secret.txt"),
		  "'..' from a cwd inside");
	(void)!chdir("/");
	snprintf(p, sizeof(p), "%s/escape/victim.txt", mnt);
	fsck_step(&c, !fs_write_file(p, "pwned\n", 6, 0644), "create through a symlink out");
	snprintf(p, sizeof(p), "%s/evil", mnt);
	char target[300];
	snprintf(target, sizeof(target), "%s/victim.txt", outside);
	fsck_step(&c, symlink(target, p) == 0, "guest symlink to the host path");
	fsck_step(&c, !fs_write_file(p, "pwned\n", 6, 0644), "write through the guest symlink");
	snprintf(p, sizeof(p), "%s/initlink", mnt);
	fsck_step(&c, link("/init", p) < 0 && errno == EXDEV, "hard link across: EXDEV");
	snprintf(p, sizeof(p), "%s/sda", mnt);
	fsck_step(&c, mknod(p, S_IFBLK | 0666, makedev(8, 0)) < 0 && errno == EPERM,
		  "mknod block device: EPERM");
	snprintf(p, sizeof(p), "%s/mem", mnt);
	fsck_step(&c, mknod(p, S_IFCHR | 0666, makedev(1, 1)) < 0 && errno == EPERM,
		  "mknod char device: EPERM");
	fs_swap_race(&c, mnt, outside);
	result("fs-escape", c.ok, "steps=%d %s", c.steps, c.why);
}

/* --------------------------------------------------------------- fsbench */

static double fs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sequential write (fsync'd) and read of kvrun.fsbenchmb MiB, then small files. */
static bool fs_bench_dir(const char *target, const char *dir)
{
	static char buf[1 << 17];
	int mb = atoi(arg("fsbenchmb", "16")), files = atoi(arg("fsbenchfiles", "200"));
	char p[400];
	snprintf(p, sizeof(p), "%s/bench.bin", dir);
	memset(buf, 0x5a, sizeof(buf));
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		say("KVRUN-BENCH target=%s ok=0 open %s: %s", target, p, strerror(errno));
		return false;
	}
	double t0 = fs_now();
	bool ok = true;
	for (int i = 0; ok && i < mb * 8; i++)
		ok = write(fd, buf, sizeof(buf)) == sizeof(buf);
	ok = ok && fsync(fd) == 0;
	double t1 = fs_now();
	/* Drop the guest's cached copy so the read goes to the device (no-op under DAX). */
	(void)!posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	for (int i = 0; ok && i < mb * 8; i++)
		ok = pread(fd, buf, sizeof(buf), (off_t)i * sizeof(buf)) == sizeof(buf);
	double t2 = fs_now();
	close(fd);
	unlink(p);
	snprintf(p, sizeof(p), "%s/small", dir);
	mkdir(p, 0755);
	double t3 = fs_now();
	for (int i = 0; ok && i < files; i++) {
		snprintf(p, sizeof(p), "%s/small/f%d", dir, i);
		ok = fs_write_file(p, "x", 1, 0644);
	}
	double t4 = fs_now();
	struct stat st;
	for (int i = 0; ok && i < files; i++) {
		snprintf(p, sizeof(p), "%s/small/f%d", dir, i);
		ok = stat(p, &st) == 0;
	}
	double t5 = fs_now();
	say("KVRUN-BENCH target=%s ok=%d mb=%d seqwrite_mbs=%.3f seqread_mbs=%.3f files=%d "
	    "create_per_s=%.2f stat_per_s=%.2f",
	    target, ok, mb, mb / (t1 - t0), mb / (t2 - t1), files, files / (t4 - t3),
	    files / (t5 - t4));
	return ok;
}

/* Mount one bench target: "blk" (/dev/vda, ext4), "TAG" or "TAG:dax" (virtiofs). */
static bool fs_bench_mount(const char *item, char *mnt, size_t n)
{
	char tag[64];
	snprintf(tag, sizeof(tag), "%s", item);
	char *colon = strchr(tag, ':');
	bool dax = colon && strcmp(colon + 1, "dax") == 0;
	if (colon)
		*colon = '\0';
	if (strcmp(tag, "blk") == 0) {
		snprintf(mnt, n, "/mnt/blk");
		mkdir("/mnt", 0755);
		mkdir(mnt, 0755);
		return mount("/dev/vda", mnt, "ext4", 0, NULL) == 0;
	}
	return fs_mount(tag, dax, mnt, n);
}

void check_fsbench(void)
{
	char items[256];
	bool ok = true;
	snprintf(items, sizeof(items), "%s", arg("fsbench", ""));
	for (char *save = NULL, *t = strtok_r(items, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char mnt[128];
		if (!fs_bench_mount(t, mnt, sizeof(mnt))) {
			result("fsbench", false, "mount %s: %s", t, strerror(errno));
			return;
		}
		ok &= fs_bench_dir(t, mnt);
	}
	result("fsbench", ok, "%s", arg("fsbench", ""));
}
