/* SPDX-License-Identifier: Apache-2.0 */
/* shim/: kvrun's request to the shim (every field checked), the agent
 * address of a sandbox directory, the pid files delete relies on, and the
 * capabilities a confined shim keeps, and the committed shim's seccomp
 * filter (in children). */
#include "shim/internal.h"
#include "shim/seccomp_bpf.h"
#include "tap.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

static const char good_create[] =
    "{\"op\":\"create\",\"sandbox_dir\":\"/run/kvrun/c1\",\"owner\":true,"
    "\"vmm_argv\":[\"/bin/kvrun-vmm\",\"--kernel\",\"k\"],\"container\":\"c1\","
    "\"body\":\"{}\",\"rootfs\":\"{\\\"type\\\":\\\"virtiofs\\\"}\",\"terminal\":true,"
    "\"console_socket\":\"/tmp/s\",\"boot_timeout_ms\":5000,\"set_time\":true,"
    "\"mount_shared\":[\"binds\"]}";

static void test_request_good(void)
{
	struct shim_req r = {0};
	struct kv_err *err = NULL;
	ok(shim_req_parse(good_create, &r, &err) == 0, "a full create request parses");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	is_str(r.op, "create", "op");
	ok(r.owner && r.terminal && r.set_time, "flags");
	is_str(r.vmm_argv[0], "/bin/kvrun-vmm", "vmm_argv[0]");
	ok(r.vmm_argv[3] == NULL, "vmm_argv NULL-terminated");
	is_str(r.rootfs, "{\"type\":\"virtiofs\"}", "rootfs kept as text");
	is_int(r.boot_timeout_ms, 5000, "boot timeout");
	ok(r.shares && strcmp(r.shares[0], "binds") == 0 && !r.shares[1], "mount_shared");
	shim_req_free(&r);
}

static void expect_bad(const char *text, const char *want, const char *name)
{
	struct shim_req r = {0};
	struct kv_err *err = NULL;
	int rc = shim_req_parse(text, &r, &err);
	ok(rc < 0 && err && strstr(err->msg, want), "%s", name);
	if (rc >= 0 || !err || !strstr(err->msg, want))
		diag("  got \"%s\", want \"...%s...\"", err ? err->msg : "(none)", want);
	kv_err_free(err);
	shim_req_free(&r);
}

static void test_request_bad(void)
{
	expect_bad("[]", "not an object", "not an object");
	expect_bad("{\"op\":\"run\"}", "op: want create or exec", "unknown op");
	expect_bad(
	    "{\"op\":\"create\",\"sandbox_dir\":\"rel\",\"container\":\"c\",\"body\":\"{}\"}",
	    "sandbox_dir", "relative sandbox dir");
	expect_bad("{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"body\":\"{}\"}",
		   "container and body are required", "no container");
	expect_bad("{\"op\":\"exec\",\"sandbox_dir\":\"/d\",\"container\":\"c\",\"body\":\"{}\"}",
		   "exec wants exec_id", "exec without exec_id");
	expect_bad(
	    "{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"container\":\"a\\\"b\",\"body\":\"{}\"}",
	    "container, exec_id", "a name that would need escaping");
	expect_bad("{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"container\":\"c\",\"body\":\"{}\","
		   "\"owner\":true}",
		   "vmm_argv", "owner without vmm_argv");
	expect_bad("{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"container\":\"c\",\"body\":\"{}\","
		   "\"mount_shared\":[\"../x\"]}",
		   "mount_shared: bad tag", "bad share tag");
	expect_bad("{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"container\":\"c\",\"body\":\"{}\","
		   "\"boot_timeout_ms\":0}",
		   "boot_timeout_ms", "zero timeout");
}

static void test_addr(void)
{
	struct kv_err *err = NULL;
	char *a = shim_agent_addr("/run/kvrun/c1", &err);
	is_str(a, "hvsock:/run/kvrun/c1/vsock.sock", "short path: the socket itself");
	free(a);
	char dir[] = "/tmp/test_shim.XXXXXX";
	if (!mkdtemp(dir))
		return;
	char longdir[200];
	snprintf(longdir, sizeof(longdir), "%s/%0120d", dir, 0);
	mkdir(longdir, 0700);
	a = shim_agent_addr(longdir, &err);
	ok(a && strncmp(a, "hvsock:/proc/self/fd/", 21) == 0 &&
	       strlen(a) - 7 < sizeof(((struct sockaddr_un *)0)->sun_path),
	   "long path: through /proc/self/fd (%s)", a ? a : "NULL");
	free(a);
	rmdir(longdir);
	rmdir(dir);
}

static void test_pidfile(void)
{
	char path[] = "/tmp/test_shim_pid.XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	struct kv_err *err = NULL;
	pid_t pid = 0;
	uint64_t start = 0, mine = 0;
	ok(shim_pidfile_write(path, getpid(), &err) == 0, "write a pid file");
	ok(shim_pidfile_read(path, &pid, &start) == 0 && pid == getpid(), "read it back");
	ok(kv_pid_start_time(getpid(), &mine) == 0 && mine == start, "with our start time");
	if (kv_write_file_atomic(path, "garbage", 7, 0600, &err) < 0)
		diag("%s", err->msg);
	ok(shim_pidfile_read(path, &pid, &start) < 0, "garbage is no pid");
	unlink(path);
	ok(shim_pidfile_read(path, &pid, &start) < 0, "no file, no pid");
	kv_err_free(err);
}

/* The CapEff and CapBnd lines of /proc/self/status (f, opened before the
 * shim's filter, which allows no open), as "EFF BND". */
static void caps_read(FILE *f, char *out, size_t n)
{
	char line[128], eff[32] = "?", bnd[32] = "?";
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %31s", eff) != 1)
			(void)sscanf(line, "CapBnd: %31s", bnd);
	if (f)
		fclose(f);
	snprintf(out, n, "%s %s", eff, bnd);
}

/* shim_confine() in a child: what it keeps, as "EFF BND". */
static void confined_caps(bool owner, int net_index, char *out, size_t n)
{
	int p[2];
	out[0] = '\0';
	if (pipe(p) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		struct shim s;
		memset(&s, 0, sizeof(s));
		s.req.owner = owner;
		s.net_index = net_index;
		struct kv_err *err = NULL;
		char caps[80] = "confine failed";
		FILE *f = fopen("/proc/self/status", "r");
		static char buf[4096]; /* stdio's own would fstat at the first read */
		if (f)
			setvbuf(f, buf, _IOFBF, sizeof(buf));
		if (shim_confine(&s, &err) == 0)
			caps_read(f, caps, sizeof(caps));
		(void)!write(p[1], caps, strlen(caps) + 1);
		/* Not _exit(): ASan's interceptor runs the leak check, which clones. */
		syscall(SYS_exit_group, 0);
	}
	close(p[1]);
	ssize_t r = read(p[0], out, n - 1);
	out[r > 0 ? r : 0] = '\0';
	close(p[0]);
	waitpid(pid, NULL, 0);
}

static void test_confine(void)
{
	if (geteuid() != 0) {
		skip("shim_confine: needs root (capabilities to drop)");
		return;
	}
	char caps[80];
	confined_caps(false, 0, caps, sizeof(caps));
	is_str(caps, "0000000000000000 0000000000000000", "a member's shim keeps nothing");
	confined_caps(true, 0, caps, sizeof(caps));
	is_str(caps, "0000000000000020 0000000000000020",
	       "the VM owner's shim keeps CAP_KILL (its VMM runs as the jail's uid)");
	confined_caps(true, 3, caps, sizeof(caps));
	is_str(caps, "0000000000001020 0000000000001020",
	       "with an interface carried into the VM, CAP_NET_ADMIN too");
}

enum filtered_op { OP_ALLOWED, OP_OPEN, OP_NETLINK, OP_INET, OP_NET_RELEASE };

/* A child loads the filter and does op: how it ended (a wait status). */
static int filtered(bool net, enum filtered_op op)
{
	char dir[] = "/tmp/test_shim.XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		struct kv_err *err = NULL;
		/* The ingress qdisc's removal, in a network namespace of its own. */
		if (op == OP_NET_RELEASE && unshare(CLONE_NEWNET) < 0)
			syscall(SYS_exit_group, 102);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || shim_seccomp_load(net, &err) < 0)
			_exit(100);
		int fd = 0;
		switch (op) {
		case OP_ALLOWED: /* the relay's and the log's calls */
			fd = write(2, "", 0) < 0 || getpid() < 0 ? -1 : 0;
			break;
		case OP_OPEN: fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY); break;
		case OP_NETLINK: fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0); break;
		case OP_INET: fd = socket(AF_INET, SOCK_STREAM, 0); break;
		case OP_NET_RELEASE: {
			struct shim s = {.net_index = 1, .req.sandbox_dir = dir}; /* lo */
			shim_net_release(&s); /* tc, then its record's unlink */
			break;
		}
		}
		/* Not _exit(): ASan's exit path calls sigaltstack, the shim's does not. */
		syscall(SYS_exit_group, fd < 0 ? 101 : 0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rmdir(dir);
	return st;
}

static bool killed_by_sys(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static void test_seccomp(void)
{
	int st = filtered(false, OP_ALLOWED);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "seccomp: write, getpid, exit allowed");
	ok(killed_by_sys(filtered(false, OP_OPEN)), "seccomp: openat kills the shim");
	ok(killed_by_sys(filtered(false, OP_NETLINK)), "seccomp: no socket without an interface");
	st = filtered(true, OP_NETLINK);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "seccomp: a netlink socket with one");
	ok(killed_by_sys(filtered(true, OP_INET)), "seccomp: an inet socket kills it");
	st = filtered(true, OP_NET_RELEASE);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 102)
		skip("seccomp: no network namespace of our own here (unshare)");
	else
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "seccomp: the ingress qdisc's removal");
}

/* The programs compiled at build time are what the rules give now. */
static void test_seccomp_built(void)
{
	for (int net = 0; net < 2; net++) {
		struct sock_filter *p = NULL;
		unsigned short n = 0;
		int r = shim_seccomp_compile(net, &p, &n);
		ok(r == 0 && n == shim_bpf[net].len &&
		       memcmp(p, shim_bpf[net].insns, n * sizeof(*p)) == 0,
		   "the build-time filter %s a network interface is seccomp_rules.c's (%u insns)",
		   net ? "with" : "without", (unsigned)n);
		free(p);
	}
}

int main(void)
{
	test_request_good();
	test_request_bad();
	test_addr();
	test_pidfile();
	test_confine();
	test_seccomp();
	test_seccomp_built();
	return tap_done();
}
