/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Templates without asking (runtime/template.h): a VM that boots cold for a
 * shape that has no template leaves one behind. Once its agent answers, and
 * before anything of the container enters the guest (time, identity,
 * shares, the create), the shim snapshots it into the temporary directory
 * kvrun named, writes template.json beside the snapshot and renames the
 * directory into place: the next container of that shape is a clone. The
 * cold VM's devices are the template's (runtime/sandbox.c gives it the
 * template's layout); its shares are not mounted yet. Nothing here can fail
 * the container: a template that cannot be made is logged and left out.
 */
#include "shim/internal.h"
#include "vmm/vmm.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* For the guest to be done with our connection before the snapshot (the
 * clones must not find it half-served), as kvrun template create waits. */
#define TMPL_SETTLE_MS 500

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int tmpl_write(const struct shim_req *r, struct kv_err **err)
{
	cleanup_free char *api = kv_asprintf("%s/%s", r->sandbox_dir, SHIM_API_NAME);
	cleanup_free char *resp = NULL;
	if (mkdir(r->tmpl_tmp, 0700) < 0)
		return kv_err_make(err, errno, "mkdir %s", r->tmpl_tmp);
	if (vmm_snapshot(api, r->tmpl_tmp, "resume", &resp, err) < 0)
		return -1;
	cleanup_free char *info = kv_asprintf("%s/template.json", r->tmpl_tmp);
	if (kv_write_file_atomic(info, r->tmpl_info, strlen(r->tmpl_info), 0644, err) < 0)
		return -1;
	/* Another VM of this shape may have left one first: theirs stays. */
	if (rename(r->tmpl_tmp, r->tmpl_final) < 0)
		return kv_err_make(err, errno, "rename %s to %s", r->tmpl_tmp, r->tmpl_final);
	return 0;
}

void shim_template_out(struct shim *s)
{
	const struct shim_req *r = &s->req;
	if (!r->tmpl_tmp || !r->tmpl_final || !r->tmpl_info)
		return;
	kv_agent_client_free(steal_ptr(s->agent));
	usleep(TMPL_SETTLE_MS * 1000);
	uint64_t t0 = kv_now_ms();
	cleanup_err struct kv_err *e = NULL;
	if (tmpl_write(r, &e) < 0) {
		kv_warn("no template of this VM's shape: %s", e->msg);
		(void)nftw(r->tmpl_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		return;
	}
	kv_debug("left template %s behind in %llu ms", r->tmpl_final,
		 (unsigned long long)(kv_now_ms() - t0));
}
