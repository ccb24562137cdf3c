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
 *   idle        waits forever without a sound (benchmarks' idle VMs)
 *   panic       PID 1 exits: the kernel panics ("Attempted to kill init")
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
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

static void check_sleep(void)
{
	int secs = atoi(arg("sleep", "1000"));
	for (int i = 0; i < secs; i++) {
		say("KVRUN-TEST-TICK %d", i);
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
    {"cpus", check_cpus},   {"rng", check_rng},	    {"pmem", check_pmem},
    {"blk", check_blk},	    {"vsock", check_vsock}, {"syscalls", check_syscalls},
    {"sleep", check_sleep}, {"serve", check_serve}, {"idle", check_idle},
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
