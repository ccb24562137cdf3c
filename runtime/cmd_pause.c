/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun pause <container-id> */
#include "runtime/runtime.h"

KVRUN_CMD(pause)
{
	const char *id;
	int r = cli_id_only("pause", argc, argv, &id);
	if (r >= 0)
		return r;
	struct kv_err *err = NULL;
	if (runtime_pause(g, id, true, &err) < 0)
		return cli_fail(err);
	return 0;
}
