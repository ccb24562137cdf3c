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
 */
#include "shim/internal.h"

#include <sys/capability.h>
#include <sys/prctl.h>

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

int shim_confine(const struct shim *s, struct kv_err **err)
{
	bool keep_net = s->net_index != 0, keep_kill = s->req.owner;
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
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = kv_err_make(err, errno, "PR_SET_NO_NEW_PRIVS");
	return r;
}
