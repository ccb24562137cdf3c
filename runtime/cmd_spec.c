/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun spec [--bundle|-b dir] [--rootless]: write runc's starter
 * config.json; never over an existing one. */
#include "runtime/runtime.h"

#include <fcntl.h>
#include <getopt.h>
#include <string.h>

enum { OPT_ROOTLESS = 256 };

static const struct option spec_opts[] = {
    {"bundle", required_argument, NULL, 'b'},
    {"rootless", no_argument, NULL, OPT_ROOTLESS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int write_spec(const char *bundle, bool rootless, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/config.json", bundle ? bundle : ".");
	cleanup_free char *text = spec_default_json(rootless);
	if (!text)
		return kv_err_plain(err, EINVAL, "cannot build the default spec");
	if (bundle && access(bundle, F_OK) < 0)
		return kv_err_make(err, errno, "chdir %s", bundle);
	/* O_EXCL: runc's "exists" check, without its race. Mode as runc: 0666 & ~umask. */
	cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0 && errno == EEXIST)
		return kv_err_plain(err, EEXIST, "File config.json exists. Remove it first");
	if (fd < 0)
		return kv_err_make(err, errno, "create %s", path);
	if (kv_write_all(fd, text, strlen(text)) < 0) {
		int e = errno;
		unlink(path);
		return kv_err_make(err, e, "write %s", path);
	}
	return 0;
}

KVRUN_CMD(spec)
{
	const char *bundle = NULL;
	bool rootless = false;
	int c;
	while ((c = getopt_long(argc, argv, "+b:h", spec_opts, NULL)) != -1) {
		switch (c) {
		case 'b': bundle = optarg; break;
		case OPT_ROOTLESS: rootless = true; break;
		case 'h': cli_print_cmd_help("spec"); return 0;
		default: return cli_usage_error("spec", "invalid flag");
		}
	}
	if (cli_exact_args("spec", argc - optind, 0))
		return 1;
	struct kv_err *err = NULL;
	if (write_spec(bundle && *bundle ? bundle : NULL, rootless, &err) < 0)
		return cli_fail(err);
	return 0;
}
