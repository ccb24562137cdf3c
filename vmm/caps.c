/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capabilities: after setup the VMM needs none (it has its fds), so all are
 * dropped, the bounding set emptied, and no_new_privs set (which seccomp
 * also requires of an unprivileged process). virtio-fs worker threads are
 * the exception: they keep the few file system capabilities they need
 * (sandbox_fs_thread_confine, below).
 */
#include <sys/capability.h>
#include <sys/prctl.h>

#include "vmm/sandbox.h"

/*
 * Empty the bounding set but for what keep() says. One prctl per capability
 * the kernel knows, no read before it: dropping one that is not in the set
 * succeeds and does nothing (halves the ~80 calls, 0.5-0.7 ms where system
 * calls are slow). Needs CAP_SETPCAP in the effective set, which dropping
 * it from the bounding set does not take away; without it (a VMM started
 * by a user) nothing is tried.
 */
static int caps_drop_bounding(bool (*keep)(cap_value_t), struct kv_err **err)
{
	if (!CAP_IS_SUPPORTED(CAP_SETPCAP) || cap_get_bound(CAP_SETPCAP) != 1)
		return 0;
	cap_value_t max = (cap_value_t)cap_max_bits();
	for (cap_value_t c = 0; c < max; c++)
		if (!(keep && keep(c)) && prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0 &&
		    errno != EPERM && errno != EINVAL)
			return kv_err_make(err, errno, "drop bounding capability %d", c);
	return 0;
}

int sandbox_caps_drop(const struct sandbox_ids *ids, struct kv_err **err)
{
	if (caps_drop_bounding(NULL, err) < 0)
		return -1;
	if (cap_reset_ambient() < 0 && errno != EINVAL && errno != EPERM)
		return kv_err_make(err, errno, "clear ambient capabilities");
	/* Taking non-zero ids clears the permitted and effective sets (no keepcaps). */
	if (ids && sandbox_jail_ids(ids, err) < 0)
		return -1;
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

/* ------------------------------------------------ virtio-fs worker threads */

/* What a virtio-fs worker keeps (sandbox.h); the guest checks permissions itself. */
static const cap_value_t sandbox_fs_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_MKNOD,
};

static bool sandbox_fs_cap_kept(cap_value_t c)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(sandbox_fs_caps); i++)
		if (sandbox_fs_caps[i] == c)
			return true;
	return false;
}

/* The calling thread keeps sandbox_fs_caps (those of them it has) and nothing else. */
static int sandbox_caps_keep_fs(struct kv_err **err)
{
	if (caps_drop_bounding(sandbox_fs_cap_kept, err) < 0)
		return -1;
	if (cap_reset_ambient() < 0 && errno != EINVAL && errno != EPERM)
		return kv_err_make(err, errno, "clear ambient capabilities");
	cap_t cur = cap_get_proc(), keep = cap_init();
	if (!cur || !keep) {
		cap_free(cur);
		cap_free(keep);
		return kv_err_make(err, errno, "cap_get_proc");
	}
	for (size_t i = 0; i < KV_ARRAY_SIZE(sandbox_fs_caps); i++) {
		cap_flag_value_t have = CAP_CLEAR;
		cap_value_t c = sandbox_fs_caps[i];
		if (cap_get_flag(cur, c, CAP_PERMITTED, &have) == 0 && have == CAP_SET) {
			cap_set_flag(keep, CAP_PERMITTED, 1, &c, CAP_SET);
			cap_set_flag(keep, CAP_EFFECTIVE, 1, &c, CAP_SET);
		}
	}
	int r = cap_set_proc(keep), e = errno;
	cap_free(cur);
	cap_free(keep);
	if (r < 0)
		return kv_err_make(err, e, "set virtio-fs worker capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kv_err_make(err, errno, "PR_SET_NO_NEW_PRIVS");
	return 0;
}

int sandbox_fs_thread_confine(const struct vmm_config *cfg, struct kv_err **err)
{
	if (cfg->drop_caps && sandbox_caps_keep_fs(err) < 0)
		return -1;
	return sandbox_seccomp_load(SANDBOX_FS, cfg->seccomp, err);
}
