/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-init: PID 1 of the test initramfs used by the VMM tests.
 *
 * Prints KVRUN-TEST-INIT on the console, runs the checks named by
 * `kvrun.test=a,b,c` on the kernel command line, prints one line per check
 *     KVRUN-TEST <name> PASS|FAIL <detail>
 * then `KVRUN-TEST-DONE <failures>` and powers off. Linked statically; it
 * needs nothing in the initramfs but itself.
 *
 * Checks (arguments come from the command line as kvrun.<key>=<value>):
 *   cpus        sysconf(_SC_NPROCESSORS_ONLN) == kvrun.cpus (default 1)
 *   rng         /dev/hwrng yields 64 bytes that are not all equal
 *   pmem        mount /dev/pmem0 (kvrun.pmemfs, default ext4) with -o dax,
 *               the mount shows dax, and /mnt/pmem/<kvrun.pmemfile> starts
 *               with kvrun.pmemexpect
 *   blk         /dev/vda begins with kvrun.blkexpect; writes
 *               "KVRUN-BLK-WRITTEN\n" at offset 4096 and reads it back
 *   vsock       connects to host CID 2 port kvrun.vsockport (default 1234),
 *               sends "ping <n>\n" and expects it echoed; then listens on
 *               kvrun.vsocklisten (default 1235) for one host connection and
 *               echoes what it receives until EOF
 *   syscalls    fork + wait + a few hundred syscalls from a child
 *   serve       forks a child that echoes every connection to vsock port
 *               kvrun.serveport (default 1236), one at a time, for the rest
 *               of the VM's life (host->guest traffic across snapshots);
 *               prints KVRUN-TEST-SERVING <port> once it listens
 *   sleep       sleeps kvrun.sleep seconds (default 1000): a VM kept busy for
 *               snapshot and API tests, printing a counter every second
 *               (with kvrun.tickblk=1, and /dev/vda's size in sectors)
 *   idle        waits forever without a sound (benchmarks' idle VMs)
 *   panic       PID 1 exits: the kernel panics ("Attempted to kill init")
 *   fs          virtio-fs: for each tag in kvrun.fstags (default "fs"), mount it
 *               at /mnt/<tag> (-o dax for the tags in kvrun.fsdax), read what the
 *               host left (from-host.txt, hostdir/), then create, write, read,
 *               rename, link, symlink, chmod, chown, truncate, list and delete
 *               under guest/, check permissions as other users (forked children),
 *               write big.bin (3 MiB pattern) and mmap.bin (through a shared
 *               mapping); the host checks what is left. For the tags
 *               in kvrun.fswait, print KVRUN-TEST-FS-WAIT <tag> and wait (up
 *               to 120 s) for <mnt>/host-checked: the host looks at the
 *               running VMM meanwhile
 *   fs-ro       mount kvrun.fsro: reads work, every change is EROFS
 *   fs-file     mount kvrun.fsfile (a single-file share of file kvrun.fsfilename),
 *               bind-mount the file elsewhere (Docker's /etc/hosts) and append
 *   fs-binds    mount kvrun.fsbinds (named shares vol, conf (ro), hosts): bind
 *               vol elsewhere and write, conf refuses writes, hosts appends
 *   fs-escape   mount kvrun.fsescape and try to get out: "..", symlinks out
 *               (relative, absolute, kvrun.fsoutside swapped in during lookups),
 *               hard links across, device nodes; none may reach the host
 *   fsbench     kvrun.fsbench=T1,T2...: sequential write/read (kvrun.fsbenchmb
 *               MiB) and small-file create/stat rates (kvrun.fsbenchfiles) on
 *               each target: "blk" (/dev/vda as ext4), "TAG" or "TAG:dax"
 *               (virtiofs); one KVRUN-BENCH line each
 *
 * Power-off: reboot(RB_POWER_OFF). The kvrun guest kernel (kvrun.exit= on
 * its command line) turns that into a write to the VMM's exit port.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char cmdline[4096];
static int failures;

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(1, buf, n);
}

static void result(const char *name, bool pass, const char *fmt, ...)
{
	char detail[256] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (!pass)
		failures++;
	say("KVRUN-TEST %s %s %s", name, pass ? "PASS" : "FAIL", detail);
}

/* Value of kvrun.<key>= on the command line, or def. */
static const char *arg(const char *key, const char *def)
{
	static char val[256];
	char pat[64];
	snprintf(pat, sizeof(pat), "kvrun.%s=", key);
	for (char *p = cmdline; (p = strstr(p, pat)) != NULL; p++) {
		if (p != cmdline && !isspace((unsigned char)p[-1]))
			continue;
		p += strlen(pat);
		size_t n = strcspn(p, " \n");
		if (n >= sizeof(val))
			n = sizeof(val) - 1;
		memcpy(val, p, n);
		val[n] = '\0';
		return val;
	}
	return def;
}

static void check_cpus(void)
{
	long want = atol(arg("cpus", "1"));
	long got = sysconf(_SC_NPROCESSORS_ONLN);
	result("cpus", got == want, "online=%ld want=%ld", got, want);
}

static void check_rng(void)
{
	unsigned char b[64];
	int fd = open("/dev/hwrng", O_RDONLY);
	if (fd < 0) {
		result("rng", false, "open /dev/hwrng: %s", strerror(errno));
		return;
	}
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	bool varied = false;
	for (ssize_t i = 1; i < n; i++)
		varied |= b[i] != b[0];
	result("rng", n == (ssize_t)sizeof(b) && varied, "read %zd bytes", n);
}

static bool file_starts_with(const char *path, const char *want, char *got, size_t gotsz)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		snprintf(got, gotsz, "open %s: %s", path, strerror(errno));
		return false;
	}
	ssize_t n = read(fd, got, gotsz - 1);
	close(fd);
	got[n > 0 ? n : 0] = '\0';
	return n >= 0 && strncmp(got, want, strlen(want)) == 0;
}

static void check_pmem(void)
{
	const char *fs = arg("pmemfs", "ext4");
	mkdir("/mnt", 0755);
	mkdir("/mnt/pmem", 0755);
	if (mount("/dev/pmem0", "/mnt/pmem", fs, MS_RDONLY, "dax") < 0) {
		result("pmem", false, "mount /dev/pmem0 (%s, dax): %s", fs, strerror(errno));
		return;
	}
	char mounts[4096] = "";
	int fd = open("/proc/mounts", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, mounts, sizeof(mounts) - 1);
		mounts[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	char *line = strstr(mounts, "/mnt/pmem");
	bool dax = line && strstr(line, "dax") && strstr(line, "dax") < strchrnul(line, '\n');
	char path[300], got[256];
	snprintf(path, sizeof(path), "/mnt/pmem/%s", arg("pmemfile", "hello.txt"));
	bool same = file_starts_with(path, arg("pmemexpect", "hello"), got, sizeof(got));
	got[strcspn(got, "\n")] = '\0';
	result("pmem", dax && same, "dax=%s content=\"%s\"", dax ? "yes" : "no", got);
	umount("/mnt/pmem");
}

static void check_blk(void)
{
	char got[256];
	bool same = file_starts_with("/dev/vda", arg("blkexpect", "KVRUN-BLK"), got, sizeof(got));
	static const char msg[] = "KVRUN-BLK-WRITTEN\n";
	char back[sizeof(msg)] = "";
	int fd = open("/dev/vda", O_RDWR | O_SYNC);
	bool wrote =
	    fd >= 0 && pwrite(fd, msg, sizeof(msg) - 1, 4096) == sizeof(msg) - 1 && fsync(fd) == 0;
	if (fd >= 0) {
		/* Drop the page cache copy so the read goes to the device. */
		(void)!posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		(void)!pread(fd, back, sizeof(msg) - 1, 4096);
		close(fd);
	}
	got[strcspn(got, "\n")] = '\0';
	result("blk", same && wrote && strcmp(back, msg) == 0, "read=\"%.32s\" wrote=%s", got,
	       wrote ? "yes" : "no");
}

static int vsock_io_timeout(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms);
}

static bool vsock_echo_out(char *detail, size_t dsz)
{
	int port = atoi(arg("vsockport", "1234"));
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(detail, dsz, "connect host:%d: %s", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	char msg[64], back[64] = "";
	int n = snprintf(msg, sizeof(msg), "ping %d\n", getpid());
	size_t got = 0;
	bool ok = write(fd, msg, n) == n;
	while (ok && got < (size_t)n && vsock_io_timeout(fd, 10000) > 0) {
		ssize_t r = read(fd, back + got, n - got);
		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	ok = ok && got == (size_t)n && memcmp(msg, back, n) == 0;
	snprintf(detail, dsz, "out:%s", ok ? "echoed" : "no echo");
	return ok;
}

static bool vsock_echo_in(char *detail, size_t dsz)
{
	int port = atoi(arg("vsocklisten", "1235"));
	int l = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0) {
		snprintf(detail, dsz, "listen %d: %s", port, strerror(errno));
		return false;
	}
	say("KVRUN-TEST-VSOCK-LISTENING %d", port);
	if (vsock_io_timeout(l, 60000) <= 0) {
		close(l);
		snprintf(detail, dsz, "no host connection on %d", port);
		return false;
	}
	int c = accept(l, NULL, NULL);
	close(l);
	size_t total = 0;
	char buf[4096];
	for (;;) {
		if (c < 0 || vsock_io_timeout(c, 30000) <= 0)
			break;
		ssize_t r = read(c, buf, sizeof(buf));
		if (r <= 0 || write(c, buf, r) != r)
			break;
		total += r;
	}
	if (c >= 0)
		close(c);
	snprintf(detail, dsz, "in:%zu bytes echoed", total);
	return total > 0;
}

static void check_vsock(void)
{
	char d1[128], d2[128];
	bool out = vsock_echo_out(d1, sizeof(d1));
	bool in = vsock_echo_in(d2, sizeof(d2));
	result("vsock", out && in, "%s %s", d1, d2);
}

static void check_syscalls(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 300; i++)
			(void)getppid();
		_exit(42);
	}
	int st = 0;
	bool ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 42;
	result("syscalls", ok, "fork/wait status=%d", st);
}

static void serve_loop(int l)
{
	char buf[4096];
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			sleep(1);
			continue;
		}
		ssize_t r;
		while ((r = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, r) != r)
				break;
		close(c);
	}
}

static void check_serve(void)
{
	int port = atoi(arg("serveport", "1236"));
	int l = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0) {
		result("serve", false, "listen %d: %s", port, strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		serve_loop(l);
	close(l);
	say("KVRUN-TEST-SERVING %d", port);
	result("serve", pid > 0, "port %d", port);
}

/* With kvrun.tickblk=1, each tick also shows /dev/vda's size in sectors
 * (a disk that grows under a restored VM: a capacity change). */
static void tick(int i)
{
	char size[32] = "";
	int fd = *arg("tickblk", "") ? open("/sys/block/vda/size", O_RDONLY) : -1;
	if (fd >= 0) {
		ssize_t n = read(fd, size, sizeof(size) - 1);
		size[n > 0 ? n : 0] = '\0';
		size[strcspn(size, "\n")] = '\0';
		close(fd);
	}
	if (*size)
		say("KVRUN-TEST-TICK %d vda=%s", i, size);
	else
		say("KVRUN-TEST-TICK %d", i);
}

static void check_sleep(void)
{
	int secs = atoi(arg("sleep", "1000"));
	for (int i = 0; i < secs; i++) {
		tick(i);
		sleep(1);
	}
	result("sleep", true, "%d s", secs);
}

static void check_idle(void)
{
	say("KVRUN-TEST-IDLE");
	for (;;)
		pause();
}

/* ------------------------------------------------------------- virtio-fs */

/* One fs check: the first failed step is its detail. */
struct fsck {
	bool ok;
	int steps;
	char why[200];
};

__attribute__((format(printf, 3, 4))) static bool fsck_step(struct fsck *c, bool cond,
							    const char *fmt, ...)
{
	int e = errno;
	c->steps++;
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

static bool fs_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return false;
	bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	return close(fd) == 0 && ok;
}

/* Read up to n-1 bytes, NUL-terminated; -1 on error. */
static ssize_t fs_read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t got = read(fd, buf, n - 1);
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
	return got;
}

static bool fs_mount(const char *tag, bool dax, char *mnt, size_t n)
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

static int fs_count_entries(const char *dir)
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

static void check_fs(void)
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

static void check_fs_ro(void)
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

static void check_fs_file(void)
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
static void check_fs_binds(void)
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

static void check_fs_escape(void)
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

static void check_fsbench(void)
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

static void setup(void)
{
	mkdir("/dev", 0755);
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	int fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
		cmdline[n > 0 ? n : 0] = '\0';
		close(fd);
	}
}

static const struct {
	const char *name;
	void (*fn)(void);
} checks[] = {
    {"cpus", check_cpus},	    {"rng", check_rng},
    {"pmem", check_pmem},	    {"blk", check_blk},
    {"vsock", check_vsock},	    {"syscalls", check_syscalls},
    {"sleep", check_sleep},	    {"fs", check_fs},
    {"fs-ro", check_fs_ro},	    {"fs-file", check_fs_file},
    {"fs-escape", check_fs_escape}, {"fsbench", check_fsbench},
    {"fs-binds", check_fs_binds},   {"serve", check_serve},
    {"idle", check_idle},
};

static void run_check(const char *name)
{
	if (strcmp(name, "panic") == 0) {
		say("KVRUN-TEST panic: PID 1 exits now");
		exit(1);
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (strcmp(checks[i].name, name) == 0) {
			checks[i].fn();
			return;
		}
	}
	result(name, false, "unknown check");
}

int main(void)
{
	setup();
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	say("KVRUN-TEST-INIT uptime=%ld.%03ld", (long)ts.tv_sec, ts.tv_nsec / 1000000);
	char list[512];
	snprintf(list, sizeof(list), "%s", arg("test", ""));
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
		run_check(t);
	say("KVRUN-TEST-DONE %d", failures);
	sync();
	reboot(RB_POWER_OFF);
	/* Only reached when power-off failed: keep PID 1 alive, do not panic. */
	for (;;)
		pause();
}
