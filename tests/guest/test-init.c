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
 *   fs-live     mount kvrun.fslive (a live device, --fs TAG/) and follow the
 *               host adding, removing and re-adding shares through the API
 *               (test-init-live.c has the protocol)
 *   fsbench     kvrun.fsbench=T1,T2...: sequential write/read (kvrun.fsbenchmb
 *               MiB) and small-file create/stat rates (kvrun.fsbenchfiles) on
 *               each target: "blk" (/dev/vda as ext4), "TAG" or "TAG:dax"
 *               (virtiofs); one KVRUN-BENCH line each
 *
 * Power-off: reboot(RB_POWER_OFF). The kvrun guest kernel (kvrun.exit= on
 * its command line) turns that into a write to the VMM's exit port.
 *
 * The files: test-init.c (this one: boot, the command line, the result
 * lines, the check table, power-off), test-init-devices.c (cpus, rng, pmem,
 * blk, vsock, syscalls), test-init-vm.c (serve, sleep, idle: VMs kept alive
 * for snapshots and benchmarks), test-init-fs.c (the virtio-fs checks and
 * fsbench), test-init-live.c (fs-live); test-init.h declares what they share.
 */
#include "test-init.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char cmdline[4096];
static int failures;

void say(const char *fmt, ...)
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

void result(const char *name, bool pass, const char *fmt, ...)
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
const char *arg(const char *key, const char *def)
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
    {"idle", check_idle},	    {"fs-live", check_fs_live},
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
