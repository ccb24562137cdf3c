/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container state machine (created -> running <-> paused -> stopped)
 * with runc's refusals in runc's words, and delete's cleanup: kill what
 * is left, run poststop hooks, remove the state directory.
 */
#include "runtime/runtime.h"

#include <string.h>
#include <sys/stat.h>

static int set_status(struct container *c, enum oci_status s, struct kv_err **err)
{
	c->st->status = s;
	c->status = s;
	return container_save(c, err);
}

int runtime_start(const struct kvrun_globals *g, const char *id, struct kv_err **err)
{
	cleanup_container struct container *c = NULL;
	if (container_load(g->root, id, &c, err) < 0 || container_lock(c, err) < 0)
		return -1;
	switch (c->status) {
	case OCI_STATUS_CREATED: break;
	case OCI_STATUS_STOPPED:
		return kv_err_plain(err, EINVAL, "cannot start a container that has stopped");
	case OCI_STATUS_RUNNING:
		return kv_err_plain(err, EINVAL, "cannot start an already running container");
	default:
		return kv_err_plain(err, EINVAL, "cannot start a container in the %s state",
				    oci_status_name(c->status));
	}
	if (runtime_backend_start(c, err) < 0) {
		/* A start killed between the agent releasing the process and the
		 * state saying so (tests/integration/crash.bats): the agent knows
		 * it runs. Say so from now on, and refuse as runc would. */
		if (*err && (*err)->errnum == EBUSY &&
		    strstr((*err)->msg, "is running, not created")) {
			kv_err_free(*err);
			*err = NULL;
			if (set_status(c, OCI_STATUS_RUNNING, err) < 0)
				return -1;
			return kv_err_plain(err, EINVAL,
					    "cannot start an already running container");
		}
		return -1;
	}
	if (set_status(c, OCI_STATUS_RUNNING, err) < 0)
		return -1;
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (container_config(c, &cfg, err) < 0)
		return -1;
	cleanup_free char *state = container_spec_state_json(c);
	return runtime_hooks_run(&cfg->hooks, OCI_HOOK_POSTSTART, state, err);
}

int runtime_kill(const struct kvrun_globals *g, const char *id, int sig, bool all,
		 struct kv_err **err)
{
	cleanup_container struct container *c = NULL;
	/* No lock: kill must get through even while another command is stuck. */
	if (container_load(g->root, id, &c, err) < 0)
		return -1;
	bool stopped = c->status == OCI_STATUS_STOPPED || c->pid <= 0;
	/* runc: --all on a stopped container has nothing to signal, and succeeds. */
	if (stopped && all)
		return 0;
	if (stopped)
		return kv_err_plain(err, ESRCH, "container not running");
	return runtime_backend_kill(c, sig, all, err);
}

int runtime_pause(const struct kvrun_globals *g, const char *id, bool pause, struct kv_err **err)
{
	cleanup_container struct container *c = NULL;
	if (container_load(g->root, id, &c, err) < 0 || container_lock(c, err) < 0)
		return -1;
	if (pause && c->status == OCI_STATUS_PAUSED)
		return kv_err_plain(err, EINVAL, "container already paused");
	if (pause && c->status != OCI_STATUS_RUNNING && c->status != OCI_STATUS_CREATED)
		return kv_err_plain(err, EINVAL, "container not running");
	if (!pause && c->status != OCI_STATUS_PAUSED)
		return kv_err_plain(err, EINVAL, "container not paused");
	enum oci_status before = c->st->status;
	if (runtime_backend_pause(c, pause, err) < 0)
		return -1;
	return set_status(c,
			  pause ? OCI_STATUS_PAUSED
				: (before == OCI_STATUS_CREATED ? before : OCI_STATUS_RUNNING),
			  err);
}

static void run_poststop(struct container *c)
{
	struct kv_err *e = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (container_config(c, &cfg, &e) < 0) {
		kv_warn("poststop hooks not run: %s", e->msg);
		kv_err_free(e);
		return;
	}
	cleanup_free char *state = container_spec_state_json(c);
	if (runtime_hooks_run(&cfg->hooks, OCI_HOOK_POSTSTOP, state, &e) < 0) {
		kv_warn("%s", e->msg);
		kv_err_free(e);
	}
}

static int destroy(struct container *c, struct kv_err **err)
{
	kv_timing_mark("load");
	if (runtime_backend_destroy(c, err) < 0)
		return -1;
	c->status = OCI_STATUS_STOPPED;
	c->pid = 0;
	run_poststop(c);
	kv_timing_mark("poststop");
	return container_remove_dir(c->dir, err);
}

/* A directory without a readable state.json: a create that died half way. */
static void remove_leftover(const char *root, const char *id)
{
	cleanup_free char *dir = container_dir(root, id);
	cleanup_free char *state = kv_asprintf("%s/state.json", dir);
	struct stat sb;
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode) || access(state, F_OK) == 0)
		return;
	struct kv_err *e = NULL;
	if (container_remove_dir(dir, &e) < 0) {
		kv_warn("%s", e->msg);
		kv_err_free(e);
	}
}

int runtime_delete(const struct kvrun_globals *g, const char *id, bool force, struct kv_err **err)
{
	cleanup_container struct container *c = NULL;
	struct kv_err *e = NULL;
	if (container_load(g->root, id, &c, &e) < 0) {
		bool missing = e->errnum == ENOENT;
		if (missing)
			remove_leftover(g->root, id);
		/* runc: delete --force of a container that does not exist succeeds. */
		if (missing && force) {
			kv_err_free(e);
			return 0;
		}
		return err_pass(err, e);
	}
	if (container_lock(c, err) < 0)
		return -1;
	switch (c->status) {
	case OCI_STATUS_STOPPED:
	case OCI_STATUS_CREATED: /* runc kills a created container without --force */
		return destroy(c, err);
	default:
		if (force)
			return destroy(c, err);
		return kv_err_plain(err, EINVAL,
				    "cannot delete container %s that is not stopped: %s", id,
				    oci_status_name(c->status));
	}
}
