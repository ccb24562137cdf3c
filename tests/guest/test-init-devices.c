/* SPDX-License-Identifier: Apache-2.0 */
/* test-init: the machine and its devices: cpus, rng, pmem, blk, vsock, syscalls. */
#include "test-init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void check_cpus(void)
{
	long want = atol(arg("cpus", "1"));
	long got = sysconf(_SC_NPROCESSORS_ONLN);
	result("cpus", got == want, "online=%ld want=%ld", got, want);
}

void check_rng(void)
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

void check_pmem(void)
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

void check_blk(void)
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

void check_vsock(void)
{
	char d1[128], d2[128];
	bool out = vsock_echo_out(d1, sizeof(d1));
	bool in = vsock_echo_in(d2, sizeof(d2));
	result("vsock", out && in, "%s %s", d1, d2);
}

void check_syscalls(void)
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
