/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The committed shim's seccomp allow-list (confine.c says what and why),
 * compiled with libseccomp by the build tool shim/tools/seccomp_gen.c into
 * build/gen/shim/seccomp_bpf.c, and by the unit tests to compare. Not in
 * kvrun-shim itself: it loads the compiled programs.
 */
#include "shim/seccomp_bpf.h"

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <termios.h>

#include "lib/kv.h"
#include "vmm/sandbox.h"

#ifndef SHIM_SECCOMP_ACTION
#define SHIM_SECCOMP_ACTION SCMP_ACT_KILL_PROCESS
#endif

static const int shim_syscalls[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(writev), /* agent frames: kill, resize */
    SCMP_SYS(close),
    SCMP_SYS(poll),
    SCMP_SYS(recvfrom), /* the relays' recv and send */
    SCMP_SYS(sendto),
    SCMP_SYS(shutdown),
    SCMP_SYS(dup2),
    SCMP_SYS(wait4),
    SCMP_SYS(kill),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid), /* abort() */
    SCMP_SYS(tgkill),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(brk),
    SCMP_SYS(munmap), /* frames over malloc's mmap threshold */
    SCMP_SYS(mremap),
    SCMP_SYS(clock_gettime), /* when the vDSO falls back */
    SCMP_SYS(exit_group),
};

/* The ingress qdisc's removal (net.c): netlink, and its record in the sandbox directory. */
static const int shim_net_syscalls[] = {
    SCMP_SYS(bind),
    SCMP_SYS(getsockname),
    SCMP_SYS(recvmsg), /* mnl_socket_recvfrom */
    SCMP_SYS(unlink),
};

/* isatty/tcgetattr, tcsetattr(TCSANOW) of the restore, the window size. */
static const unsigned long shim_ioctls[] = {TCGETS, TCSETS, TIOCGWINSZ};

static int rule(scmp_filter_ctx ctx, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
}

static int rules_add(scmp_filter_ctx ctx, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rule(ctx, nrs[i], 0, NULL) < 0)
			return -1;
	return 0;
}

static int seccomp_build(scmp_filter_ctx ctx, bool net)
{
	if (rules_add(ctx, shim_syscalls, KV_ARRAY_SIZE(shim_syscalls)) < 0)
		return -1;
	for (size_t i = 0; i < KV_ARRAY_SIZE(shim_ioctls); i++) {
		/* The low 32 bits: the request is an unsigned int in the kernel. */
		struct scmp_arg_cmp req = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, shim_ioctls[i]);
		if (rule(ctx, SCMP_SYS(ioctl), 1, &req) < 0)
			return -1;
	}
	/* malloc's memory, never executable. */
	struct scmp_arg_cmp no_exec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (rule(ctx, SCMP_SYS(mmap), 1, &no_exec) < 0)
		return -1;
	/* leave(): setrlimit(RLIMIT_CORE) of ourselves, before dying by a signal. */
	struct scmp_arg_cmp core[] = {SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A1(SCMP_CMP_EQ, RLIMIT_CORE)};
	if (rule(ctx, SCMP_SYS(prlimit64), 2, core) < 0)
		return -1;
	if (!net)
		return 0;
	struct scmp_arg_cmp netlink = SCMP_A0(SCMP_CMP_EQ, AF_NETLINK);
	if (rule(ctx, SCMP_SYS(socket), 1, &netlink) < 0)
		return -1;
	return rules_add(ctx, shim_net_syscalls, KV_ARRAY_SIZE(shim_net_syscalls));
}

int shim_seccomp_compile(bool net, struct sock_filter **prog, unsigned short *len)
{
	scmp_filter_ctx ctx = seccomp_init(SHIM_SECCOMP_ACTION);
	if (!ctx)
		return -ENOMEM;
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r == 0)
		r = seccomp_build(ctx, net);
	if (r == 0)
		r = sandbox_seccomp_export(ctx, prog, len);
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
