/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun resume <container-id> */
#include "runtime/runtime.h"

KVRUN_CMD(resume)
{
	const char *id;
	int r = cli_id_only("resume", argc, argv, &id);
	if (r >= 0)
		return r;
	struct kv_err *err = NULL;
	if (runtime_pause(g, id, false, &err) < 0)
		return cli_fail(err);
	return 0;
}
