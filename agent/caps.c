/* SPDX-License-Identifier: Apache-2.0 */
/*
 * process.capabilities, all five sets, with libcap. Runs in the child:
 * the bounding set is cut while CAP_SETPCAP is still held, the other sets
 * are set after the uid change (PR_SET_KEEPCAPS keeps the permitted set
 * across it), ambient last since it needs permitted and inheritable.
 */
#include "agent/internal.h"

#include <sys/capability.h>
#include <sys/prctl.h>

/* The kernel's highest capability number, learned once in the agent. */
static int last_cap = -1;

static int cap_last(void)
{
	if (last_cap < 0) {
		/* libcap probes the kernel; the result is inherited by every child. */
		last_cap = (int)cap_max_bits() - 1;
		if (last_cap < 0 || last_cap > 63)
			last_cap = CAP_LAST_CAP;
	}
	return last_cap;
}

void caps_init(void)
{
	(void)cap_last();
}

int caps_drop_bounding(const struct kv_process *p, struct kv_err **err)
{
	if (!p->has_caps)
		return 0;
	int last = cap_last();
	for (int c = 0; c <= last; c++) {
		if (p->caps[KV_CAP_BOUNDING] & (1ull << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return kv_err_make(err, errno, "drop capability %d from the bounding set",
					   c);
	}
	return 0;
}

/* -1, or the capability libcap refused (one it does not know; no syscall involved). */
static int set_flags(cap_t caps, cap_flag_t flag, uint64_t mask, int last)
{
	for (int c = 0; c <= last; c++) {
		if (!(mask & (1ull << c)))
			continue;
		cap_value_t v = c;
		if (cap_set_flag(caps, flag, 1, &v, CAP_SET) < 0)
			return c;
	}
	return -1;
}

int caps_apply(const struct kv_process *p, struct kv_err **err)
{
	if (!p->has_caps)
		return 0;
	int last = cap_last();
	cap_t caps = cap_init();
	if (!caps)
		return kv_err_make(err, ENOMEM, "cap_init");
	int r = 0, bad = set_flags(caps, CAP_EFFECTIVE, p->caps[KV_CAP_EFFECTIVE], last);
	if (bad < 0)
		bad = set_flags(caps, CAP_PERMITTED, p->caps[KV_CAP_PERMITTED], last);
	if (bad < 0)
		bad = set_flags(caps, CAP_INHERITABLE, p->caps[KV_CAP_INHERITABLE], last);
	if (bad >= 0)
		r = kv_err_plain(err, EINVAL,
				 "build the capability sets: libcap refuses capability %d", bad);
	else if (cap_set_proc(caps) < 0)
		r = kv_err_make(err, errno, "capset (effective %#llx, permitted %#llx)",
				(unsigned long long)p->caps[KV_CAP_EFFECTIVE],
				(unsigned long long)p->caps[KV_CAP_PERMITTED]);
	cap_free(caps);
	if (r < 0)
		return r;
	for (int c = 0; c <= last; c++) {
		if (!(p->caps[KV_CAP_AMBIENT] & (1ull << c)))
			continue;
		/* Only a capability both permitted and inheritable can be ambient;
		 * runc ignores the others (`exec --cap` asks for ambient ones that
		 * the default spec's empty inheritable set cannot hold). */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM)
			return kv_err_make(err, errno, "raise ambient capability %d", c);
	}
	return 0;
}
