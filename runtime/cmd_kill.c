/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun kill [--all|-a] <container-id> [signal]   (default SIGTERM) */
#include "runtime/runtime.h"

#include <getopt.h>

static const struct option kill_opts[] = {
    {"all", no_argument, NULL, 'a'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

KVRUN_CMD(kill)
{
	bool all = false;
	int c;
	while ((c = getopt_long(argc, argv, "+ah", kill_opts, NULL)) != -1) {
		switch (c) {
		case 'a': all = true; break;
		case 'h': cli_print_cmd_help("kill"); return 0;
		default: return cli_usage_error("kill", "invalid flag");
		}
	}
	int nargs = argc - optind;
	if (cli_min_args("kill", nargs, 1))
		return 1;
	if (nargs > 2)
		return cli_usage_error("kill", "\"kill\" requires a maximum of 2 argument(s)");
	const char *name = nargs == 2 ? argv[optind + 1] : "SIGTERM";
	int sig = signal_parse(name);
	if (sig < 0)
		return cli_failf("unknown signal \"%s\"", name);
	struct kv_err *err = NULL;
	if (runtime_kill(g, argv[optind], sig, all, &err) < 0)
		return cli_fail(err);
	return 0;
}
