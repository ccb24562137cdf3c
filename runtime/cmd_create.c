/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun create [--bundle|-b dir] [--console-socket path] [--pid-file path]
 *              [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id> */
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>

enum {
	OPT_CONSOLE = 256,
	OPT_PIDFILE,
	OPT_NOPIVOT,
	OPT_NOKEYRING,
	OPT_PRESERVE,
	OPT_KEEP,
	OPT_IGNORED
};

static const struct option create_opts[] = {
    {"bundle", required_argument, NULL, 'b'},
    {"console-socket", required_argument, NULL, OPT_CONSOLE},
    {"pid-file", required_argument, NULL, OPT_PIDFILE},
    {"no-pivot", no_argument, NULL, OPT_NOPIVOT},
    {"no-new-keyring", no_argument, NULL, OPT_NOKEYRING},
    {"preserve-fds", required_argument, NULL, OPT_PRESERVE},
    {"detach", no_argument, NULL, 'd'},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"no-subreaper", no_argument, NULL, OPT_IGNORED},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cli_parse_create_opts(const char *cmd, int argc, char **argv, bool is_run,
			  struct create_opts *o, int *first)
{
	int c;
	o->detach = !is_run;
	while ((c = getopt_long(argc, argv, is_run ? "+b:dh" : "+b:h", create_opts, NULL)) != -1) {
		switch (c) {
		case 'b': o->bundle = optarg; break;
		case OPT_CONSOLE: o->console_socket = optarg; break;
		case OPT_PIDFILE: o->pid_file = optarg; break;
		case OPT_NOPIVOT: o->no_pivot = true; break;
		case OPT_NOKEYRING: o->no_new_keyring = true; break;
		case OPT_PRESERVE: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || n < 0 || n > 1024)
				return cli_usage_error(cmd, "invalid --preserve-fds value: %s",
						       optarg);
			o->preserve_fds = (int)n;
			break;
		}
		case 'd':
		case OPT_KEEP:
		case OPT_IGNORED:
			if (!is_run)
				return cli_usage_error(cmd, "flag provided but not defined: %s",
						       argv[optind - 1]);
			o->detach |= c == 'd';
			o->keep |= c == OPT_KEEP;
			break;
		case 'h': cli_print_cmd_help(cmd); return 0;
		default: return cli_usage_error(cmd, "invalid flag");
		}
	}
	*first = optind;
	return -1;
}

KVRUN_CMD(create)
{
	struct create_opts o = {0};
	int first, r = cli_parse_create_opts("create", argc, argv, false, &o, &first);
	if (r >= 0)
		return r;
	if (cli_exact_args("create", argc - first, 1))
		return 1;
	struct kv_err *err = NULL;
	if (runtime_create(g, argv[first], &o, &err) < 0)
		return cli_fail(err);
	return 0;
}
