/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capabilities: after setup the VMM needs none (it has its fds), so all are
 * dropped, the bounding set emptied, and no_new_privs set (which seccomp
 * also requires of an unprivileged process).
 */
#include <sys/capability.h>
#include <sys/prctl.h>

#include "vmm/sandbox.h"

int sandbox_caps_drop(struct kv_err **err)
{
	/* The bounding set needs CAP_SETPCAP: drop it first, while we have it. */
	if (CAP_IS_SUPPORTED(CAP_SETPCAP) && cap_get_bound(CAP_SETPCAP) == 1) {
		for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
			if (cap_get_bound(c) == 1 && cap_drop_bound(c) < 0 && errno != EPERM)
				return kv_err_make(err, errno, "drop bounding capability %d", c);
	}
	if (cap_reset_ambient() < 0 && errno != EINVAL && errno != EPERM)
		return kv_err_make(err, errno, "clear ambient capabilities");
	cap_t none = cap_init();
	if (!none)
		return kv_err_make(err, errno, "cap_init");
	int r = cap_set_proc(none);
	int e = errno;
	cap_free(none);
	if (r < 0)
		return kv_err_make(err, e, "drop capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kv_err_make(err, errno, "PR_SET_NO_NEW_PRIVS");
	return 0;
}
