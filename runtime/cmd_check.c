/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun check: can this host run kvrun's microVMs, and in which mode?
 * One line per finding; exit status 1 when something blocks. */
#include "runtime/backend.h"

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

/* The programs and guest artifacts kvrun would use (README: Configuration). */
static int check_artifacts(void)
{
	cleanup_vm_conf struct vm_conf *vc = NULL;
	struct kv_err *err = NULL;
	if (vm_conf_load(&vc, &err) < 0) {
		printf("FAIL  config: %s\n", err->msg);
		kv_err_free(err);
		return 1;
	}
	printf("ok    config: %s\n",
	       vc->path ? vc->path : "no file, defaults (" KVRUN_CONFIG_PATH ")");
	const struct {
		const char *what, *path;
		int mode;
	} a[] = {{"guest kernel", vc->kernel, R_OK},
		 {"guest image", vc->image, R_OK},
		 {"kvrun-vmm", vc->vmm, X_OK},
		 {"kvrun-shim", vc->shim, X_OK}};
	int failures = 0;
	for (size_t i = 0; i < KV_ARRAY_SIZE(a); i++) {
		bool good = access(a[i].path, a[i].mode) == 0;
		printf("%-5s %s: %s%s\n", good ? "ok" : "FAIL", a[i].what, a[i].path,
		       good ? "" : ": missing (make; make install; or set it in the config)");
		failures += !good;
	}
	return failures;
}

KVRUN_CMD(check)
{
	int r = cli_no_args("check", argc, argv);
	if (r >= 0)
		return r;
	bool pvm = false;
	int failures = runtime_host_check("", vmm_host_check, print_finding, &pvm);
	failures += check_root(g);
	failures += check_artifacts();
	if (failures) {
		printf("kvrun cannot run microVMs on this host: %d problem(s) above\n", failures);
		fflush(stdout);
		return 1;
	}
	printf("kvrun can run microVMs on this host%s\n", pvm ? " (PVM compatibility mode)" : "");
	return fflush(stdout) == 0 ? 0 : 1;
}
