/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun ps [--format|-f table|json] <container-id> [ps options]: the
 * processes are in the guest, so the agent lists them (backend). */
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>

static const struct option ps_opts[] = {
    {"format", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int print_pids(char **pids, size_t n, bool json)
{
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%s", i ? "," : "", pids[i]);
		printf("]\n");
	} else {
		printf("PID\n");
		for (size_t i = 0; i < n; i++)
			printf("%s\n", pids[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(pids[i]);
	free(pids);
	return fflush(stdout) == 0 ? 0 : 1;
}

KVRUN_CMD(ps)
{
	const char *format = "table";
	int c;
	while ((c = getopt_long(argc, argv, "+f:h", ps_opts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'h': cli_print_cmd_help("ps"); return 0;
		default: return cli_usage_error("ps", "invalid flag");
		}
	}
	if (cli_min_args("ps", argc - optind, 1))
		return 1;
	if (strcmp(format, "table") && strcmp(format, "json"))
		return cli_failf("invalid format option");
	struct kv_err *err = NULL;
	cleanup_container struct container *ct = NULL;
	if (container_load(g->root, argv[optind], &ct, &err) < 0)
		return cli_fail(err);
	if (ct->status == OCI_STATUS_STOPPED)
		return cli_failf("container not running");
	char **pids = NULL;
	size_t n = 0;
	if (runtime_backend_ps(ct, &pids, &n, &err) < 0)
		return cli_fail(err);
	return print_pids(pids, n, strcmp(format, "json") == 0);
}
