/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM's seccomp programs: those compiled at build time
 * (build/gen/vmm/seccomp_bpf.c) are what libseccomp makes of the rules now,
 * and a loaded filter allows its list and kills the process otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "vmm/sandbox.h"
#include "vmm/seccomp_bpf.h"

static const enum vmm_seccomp_mode modes[SANDBOX_BPF_MODES] = {VMM_SECCOMP_KILL, VMM_SECCOMP_TRAP};
static const char *const kinds[SANDBOX_BPF_KINDS] = {"event loop", "vCPU", "virtio-fs"};

static void test_built_in(void)
{
	for (unsigned m = 0; m < SANDBOX_BPF_MODES; m++)
		for (unsigned k = 0; k < SANDBOX_BPF_KINDS; k++) {
			struct sock_filter *p = NULL;
			unsigned short n = 0;
			int r = sandbox_seccomp_compile(k, modes[m], &p, &n);
			const struct sandbox_bpf *b = &sandbox_bpf[m][k];
			ok(r == 0 && n == b->len && memcmp(p, b->insns, n * sizeof(*p)) == 0,
			   "%s filter, %s: the built-in program is libseccomp's (%u instructions)",
			   kinds[k], m ? "trap" : "kill", b->len);
			free(p);
		}
}

/* In a child: load the vCPU filter, then `forbidden` or not. Returns the wait status. */
static int child_run(bool forbidden)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct kv_err *err = NULL;
		if (sandbox_seccomp_load(SANDBOX_VCPU, VMM_SECCOMP_KILL, &err) < 0)
			_exit(2);
		if (getpid() <= 0) /* allowed */
			_exit(3);
		if (forbidden)
			(void)mkdir("/nonexistent-kvrun-test", 0700); /* not on the vCPU list */
		/* Not _exit(): ASan's interceptor runs the leak check, which clones. */
		syscall(SYS_exit_group, 0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

static void test_load(void)
{
	int st = child_run(false);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vCPU filter loaded: allowed calls run (%d)", st);
	st = child_run(true);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "mkdir() under the vCPU filter: killed (%d)",
	   st);
	struct kv_err *err = NULL;
	ok(sandbox_seccomp_load(SANDBOX_VCPU, VMM_SECCOMP_OFF, &err) == 0 && !err,
	   "--seccomp=off loads nothing");
}

/* In a child: the virtio-fs filter, then openat() and fstat() beneath a
 * directory fd (0), openat(AT_FDCWD) (1), or stat() of a path (2). */
static int fs_child_run(int what)
{
	int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	pid_t pid = fork();
	if (pid == 0) {
		struct kv_err *err = NULL;
		if (dir < 0 || sandbox_seccomp_load(SANDBOX_FS, VMM_SECCOMP_KILL, &err) < 0)
			_exit(2);
		struct stat st;
		int r = -1;
		if (what == 0)
			r = (int)syscall(SYS_openat, dir, ".", O_PATH | O_CLOEXEC) >= 0 &&
				    fstat(dir, &st) == 0
				? 0
				: -1;
		else if (what == 1)
			r = (int)syscall(SYS_openat, AT_FDCWD, ".", O_PATH | O_CLOEXEC);
		else
			r = stat("/", &st);
		syscall(SYS_exit_group, r >= 0 ? 0 : 4);
	}
	if (dir >= 0)
		close(dir);
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

static void test_fs_dirfd(void)
{
	int st = fs_child_run(0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "virtio-fs filter: openat() and fstat() beneath a directory fd run (%d)", st);
	st = fs_child_run(1);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "  openat(AT_FDCWD, ...): killed (%d)", st);
	st = fs_child_run(2);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "  stat() of a path: killed (%d)", st);
}

/* A child with stderr on a pipe: loads `kind`'s filter in `mode`, then runs
 * what(); returns the wait status and what it wrote in buf. */
static int report_run(enum sandbox_thread kind, enum vmm_seccomp_mode mode, int (*what)(void),
		      char *buf, size_t size)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		struct kv_err *err = NULL;
		if (sandbox_seccomp_load(kind, mode, &err) < 0)
			_exit(2);
		syscall(SYS_exit_group, what());
	}
	close(p[1]);
	size_t len = 0;
	ssize_t got;
	while (len < size - 1 && (got = read(p[0], buf + len, size - 1 - len)) > 0)
		len += (size_t)got;
	buf[len] = '\0';
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

/* openat(AT_FDCWD): 0 when it failed with EACCES. */
static int open_refused(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/trap-test", O_RDONLY | O_CLOEXEC);
	return fd < 0 && errno == EACCES ? 0 : 3;
}

/* Six refused opens: 0 when each failed with EACCES. */
static int open_six(void)
{
	for (int i = 0; i < 6; i++)
		if (open_refused() != 0)
			return 3;
	return 0;
}

/* A SIGSYS sent by a process, not by the filter: ignored by the handler. */
static int sigsys_sent(void)
{
	syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGSYS);
	return 0;
}

static int mkdir_call(void)
{
	(void)mkdir("/nonexistent-kvrun-test", 0700);
	return 3;
}

/* An open on the loop's or a vCPU's thread fails with EACCES, reported with
 * the path and a backtrace, and the VM goes on; --seccomp trap reports any
 * other call off the list, then exits VMM_EXIT_ERROR. */
static void test_trap_report(void)
{
	char buf[8192];
	int st = report_run(SANDBOX_VCPU, VMM_SECCOMP_KILL, open_refused, buf, sizeof(buf));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "open on a vCPU thread: EACCES, and the process goes on (%d)", st);
	ok(strstr(buf, "the vCPU thread tried to open /trap-test (syscall 257)") != NULL,
	   "  reported with the thread and the path");
	ok(strstr(buf, "test_vmm_seccomp") != NULL, "  and a backtrace");
	if (!strstr(buf, "test_vmm_seccomp"))
		diag("%s", buf);
	st = report_run(SANDBOX_MAIN, VMM_SECCOMP_TRAP, open_refused, buf, sizeof(buf));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(buf, "the event loop thread tried"),
	   "  the same under --seccomp trap, on the event loop (%d)", st);
	st = report_run(SANDBOX_VCPU, VMM_SECCOMP_KILL, open_six, buf, sizeof(buf));
	unsigned reports = 0;
	for (const char *q = buf; (q = strstr(q, "tried to open")); q++)
		reports++;
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && reports == 4,
	   "  six refused: the first four reported (%u)", reports);
	st = report_run(SANDBOX_VCPU, VMM_SECCOMP_KILL, sigsys_sent, buf, sizeof(buf));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && buf[0] == '\0',
	   "  a SIGSYS another process sends: ignored, nothing reported (%d)", st);
	st = report_run(SANDBOX_VCPU, VMM_SECCOMP_TRAP, mkdir_call, buf, sizeof(buf));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == VMM_EXIT_ERROR, "trap mode: exits %d (%d)",
	   VMM_EXIT_ERROR, st);
	ok(strstr(buf, "syscall 83 is not on the vCPU thread's allow-list") != NULL,
	   "  names the call and the thread's list");
	ok(strstr(buf, "test_vmm_seccomp") != NULL, "  and gives a backtrace");
}

int main(void)
{
	test_built_in();
	test_load();
	test_fs_dirfd();
	test_trap_report();
	return tap_done();
}
