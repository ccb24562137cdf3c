/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun check: can this host run kvrun's microVMs, and in which mode?
 * One line per finding; exit status 1 when something blocks. */
#include "runtime/runtime.h"

#include <string.h>
#include <sys/stat.h>

static const char *const level_names[] = {"ok", "info", "warn", "FAIL"};

static void print_finding(void *ctx, enum host_check_level level, const char *what,
			  const char *detail)
{
	bool *pvm = ctx;
	if (strcmp(what, "kvm_pvm") == 0)
		*pvm = true;
	printf("%-5s %s: %s\n", level_names[level], what, detail);
}

/* The state root: kvrun create needs to make directories there. */
static int check_root(const struct kvrun_globals *g)
{
	struct stat sb;
	if (stat(g->root, &sb) == 0) {
		bool w = access(g->root, W_OK | X_OK) == 0;
		printf("%-5s state root: %s %s\n", w ? "ok" : "FAIL", g->root,
		       w ? "is writable" : "is not writable: run as root or pass --root");
		return w ? 0 : 1;
	}
	printf("ok    state root: %s will be created on first use\n", g->root);
	return 0;
}

KVRUN_CMD(check)
{
	int r = cli_no_args("check", argc, argv);
	if (r >= 0)
		return r;
	bool pvm = false;
	int failures = runtime_host_check("", print_finding, &pvm);
	failures += check_root(g);
	if (failures) {
		printf("kvrun cannot run microVMs on this host: %d problem(s) above\n", failures);
		fflush(stdout);
		return 1;
	}
	printf("kvrun can run microVMs on this host%s\n", pvm ? " (PVM compatibility mode)" : "");
	return fflush(stdout) == 0 ? 0 : 1;
}
