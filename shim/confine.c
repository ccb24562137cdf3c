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
 * The list itself is in seccomp_rules.c, compiled to BPF at build time.
 * Building with SHIM_SECCOMP_ACTION=SCMP_ACT_LOG (make) logs a miss to the
 * kernel log instead of killing.
 */
#include "shim/internal.h"
#include "shim/seccomp_bpf.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

/* The filter, compiled at build time from seccomp_rules.c
 * (build/gen/shim/seccomp_bpf.c, shim/tools/seccomp_gen.c): loading it is
 * one seccomp(2) call, and the shim does not load libseccomp. */
int shim_seccomp_load(bool net, struct kv_err **err)
{
	const struct shim_bpf *b = &shim_bpf[net];
	struct sock_fprog prog = {.len = b->len, .filter = (struct sock_filter *)b->insns};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return kv_err_make(err, errno, "load the shim's seccomp filter");
	return 0;
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
