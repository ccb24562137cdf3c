/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun features: what this kvrun supports, in runc's JSON shape. */
#include "runtime/runtime.h"

KVRUN_CMD(features)
{
	int r = cli_no_args("features", argc, argv);
	if (r >= 0)
		return r;
	cleanup_free char *text = features_json();
	if (!text)
		return cli_failf("cannot build the features document");
	fputs(text, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
