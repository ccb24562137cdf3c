/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun run [-d] [--keep] [create's options] <container-id>: create, start,
 * and unless detached wait and exit with the container's status. */
#include "runtime/runtime.h"

/* runc destroys what run created, on failure and after a foreground run,
 * unless --keep (its runner's shouldDestroy is !keep). */
static void discard(const struct kvrun_globals *g, const struct create_opts *o, const char *id)
{
	struct kv_err *err = NULL;
	if (o->keep)
		return;
	if (runtime_delete(g, id, true, &err) < 0) {
		kv_warn("%s", err->msg);
		kv_err_free(err);
	}
}

KVRUN_CMD(run)
{
	struct create_opts o = {0};
	int first, r = cli_parse_create_opts("run", argc, argv, true, &o, &first);
	if (r >= 0)
		return r;
	if (cli_exact_args("run", argc - first, 1))
		return 1;
	const char *id = argv[first];
	struct kv_err *err = NULL;
	if (runtime_create(g, id, &o, &err) < 0)
		return cli_fail(err);
	cleanup_container struct container *c = NULL;
	int status = 0;
	if (runtime_start(g, id, &err) < 0 ||
	    (!o.detach && (container_load(g->root, id, &c, &err) < 0 ||
			   runtime_backend_wait(c, &status, &err) < 0))) {
		discard(g, &o, id);
		return cli_fail(err);
	}
	if (!o.detach)
		discard(g, &o, id);
	return status;
}
