/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun start <container-id> */
#include "runtime/runtime.h"

KVRUN_CMD(start)
{
	const char *id;
	int r = cli_id_only("start", argc, argv, &id);
	if (r >= 0)
		return r;
	struct kv_err *err = NULL;
	if (runtime_start(g, id, &err) < 0)
		return cli_fail(err);
	return 0;
}
