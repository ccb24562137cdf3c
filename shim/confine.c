/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim once kvrun committed: from then on it relays stdio, forwards
 * signals to the guest, waits for the exit and stops its VM. It keeps
 * CAP_NET_ADMIN when it carried a network interface into the VM (it
 * removes the interface's ingress qdisc at exit, in the container's
 * network namespace), CAP_KILL when it owns the VM (its kvrun-vmm runs as
 * the jail's uid, vmm/sandbox.h: without CAP_KILL neither the shim's
 * SIGKILL nor the parent-death signal its exit sends would reach it), and
 * no other capability: every other one leaves its
 * bounding, permitted, effective and inheritable sets, and no_new_privs is
 * set. A shim that parses what a hostile guest sends holds no more than it
 * uses (issue 16).
 *
 * Then a seccomp allow-list of what the committed shim does, all on fds it
 * already holds: the poll loop (loop.c: signalfd, agent connection,
 * relays; agent frames go out with writev), the relays and the /dev/null
 * put on released stdio (stdio.c: opened before, shim_stdio_null()),
 * resize and restore of a terminal (tty.c: three ioctls), forwarding
 * signals and stopping the VMM (vm.c: kill, wait4), the log (lib/log.c:
 * write, getpid), dying by the guest process's signal (shim.c's leave():
 * prlimit64 of RLIMIT_CORE, rt_sigaction, rt_sigprocmask, kill), and, with
 * an interface carried into the VM, the ingress qdisc's removal (net.c: a
 * netlink socket, its record's unlink). No open, exec, clone, executable
 * mapping, or socket of another family. The template snapshot (tmpl.c),
 * the net wiring and the rest of the set-up come before the commit.
 * Anything else kills the shim, and with it the VMM it owns (which set
 * PR_SET_PDEATHSIG): the container is stopped, as after a SIGKILL.
 *
 * The list is what strace showed of shims driven through create, start,
 * stdin, exit code, SIGTERM forwarded, exec with and without a terminal
 * (console socket, resize), a foreground terminal, a VM owner stopping its
 * VMM and seeing it die, the agent going away (kvrun-agent on the host
 * behind a hybrid vsock stand-in), and the qdisc removal (test_shim).
 * Building with -DSHIM_SECCOMP_ACTION=SCMP_ACT_LOG logs a miss to the
 * kernel log instead of killing.
 */
#include "shim/internal.h"

#include <seccomp.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>

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

int shim_seccomp_load(bool net, struct kv_err **err)
{
	scmp_filter_ctx ctx = seccomp_init(SHIM_SECCOMP_ACTION);
	if (!ctx)
		return kv_err_make(err, ENOMEM, "seccomp_init");
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r == 0)
		r = seccomp_build(ctx, net);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r < 0 ? kv_err_make(err, -r, "load the shim's seccomp filter") : 0;
}

static int drop_bounding(bool keep_net, bool keep_kill, struct kv_err **err)
{
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		if ((keep_net && c == CAP_NET_ADMIN) || (keep_kill && c == CAP_KILL))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return kv_err_make(err, errno, "drop capability %d from the bounding set",
					   c);
	}
	return 0;
}

static int caps_drop(bool keep_net, bool keep_kill, struct kv_err **err)
{
	if (drop_bounding(keep_net, keep_kill, err) < 0)
		return -1;
	cap_t caps = cap_init();
	if (!caps)
		return kv_err_make(err, errno, "cap_init");
	cap_value_t keep[2];
	int n = 0, r = 0;
	if (keep_net)
		keep[n++] = CAP_NET_ADMIN;
	if (keep_kill)
		keep[n++] = CAP_KILL;
	if (n && (cap_set_flag(caps, CAP_PERMITTED, n, keep, CAP_SET) < 0 ||
		  cap_set_flag(caps, CAP_EFFECTIVE, n, keep, CAP_SET) < 0))
		r = kv_err_make(err, errno, "cap_set_flag");
	if (r == 0 && cap_set_proc(caps) < 0)
		r = kv_err_make(err, errno, "set the shim's capabilities");
	cap_free(caps);
	return r;
}

int shim_confine(const struct shim *s, struct kv_err **err)
{
	bool keep_net = s->net_index != 0, keep_kill = s->req.owner;
	/* Without capabilities to drop (rootless, say) the rest still applies. */
	cleanup_err struct kv_err *caps_err = NULL;
	(void)caps_drop(keep_net, keep_kill, &caps_err);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kv_err_make(err, errno, "PR_SET_NO_NEW_PRIVS");
	if (shim_stdio_null() < 0)
		return kv_err_make(err, errno, "open /dev/null");
	/* The log's first timestamp would read /etc/localtime (glibc's gmtime_r
	 * sets the time zone up once, for UTC too): now, before the filter. */
	tzset();
	if (shim_seccomp_load(keep_net, err) < 0)
		return -1;
	if (caps_err) {
		*err = steal_ptr(caps_err);
		return -1;
	}
	return 0;
}
