/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun state <container-id>: runc's JSON, two-space indented, no newline
 * at the end, "owner" empty (runc fills it only in `list`). */
#include "runtime/runtime.h"

#include <string.h>

KVRUN_CMD(state)
{
	const char *id;
	int r = cli_id_only("state", argc, argv, &id);
	if (r >= 0)
		return r;
	struct kv_err *err = NULL;
	cleanup_container struct container *c = NULL;
	if (container_load(g->root, id, &c, &err) < 0)
		return cli_fail(err);
	cleanup_json struct kv_json *j = kv_json_new(false);
	oci_state_to_runc_json(c->st, c->status, c->pid, "", j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, &err) < 0)
		return cli_fail(err);
	cleanup_free char *pretty = oci_json_indent(text, len, "  ");
	fputs(pretty, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
