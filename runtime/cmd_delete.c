/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun delete [--force|-f] <container-id> */
#include "runtime/runtime.h"

#include <getopt.h>

static const struct option delete_opts[] = {
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

KVRUN_CMD(delete)
{
	bool force = false;
	int c;
	while ((c = getopt_long(argc, argv, "+fh", delete_opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = true; break;
		case 'h': cli_print_cmd_help("delete"); return 0;
		default: return cli_usage_error("delete", "invalid flag");
		}
	}
	if (cli_exact_args("delete", argc - optind, 1))
		return 1;
	struct kv_err *err = NULL;
	if (runtime_delete(g, argv[optind], force, &err) < 0)
		return cli_fail(err);
	return 0;
}
