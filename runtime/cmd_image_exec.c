/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun image ...: run by kvrun-image, the same CLI linked with the image
 * store and libarchive (runtime/cmd_image.c), found next to kvrun or where
 * `make install` put it. kvrun itself then loads 6 shared libraries instead
 * of 20: libarchive pulls in libxml2, ICU and libstdc++, and the dynamic
 * loader's relocations for them cost every kvrun call (containerd makes
 * five per container) about 14 million cycles, for a command that only
 * `kvrun image` needs.
 */
#include "runtime/backend.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMAGE_PROG "kvrun-image"

int cmd_image(struct kvrun_globals *g, int argc, char **argv)
{
	cleanup_free char *prog = vm_conf_artifact(IMAGE_PROG, "bin/" IMAGE_PROG);
	/* The global options kvrun took, then "image" and its own arguments. */
	char **args = kv_malloc0((size_t)(argc + 10) * sizeof(*args));
	int n = 0;
	args[n++] = (char *)IMAGE_PROG;
	args[n++] = (char *)"--root";
	args[n++] = (char *)g->root;
	if (g->debug)
		args[n++] = (char *)"--debug";
	if (g->log_path) {
		args[n++] = (char *)"--log";
		args[n++] = (char *)g->log_path;
	}
	if (g->log_format == KV_LOG_JSON) {
		args[n++] = (char *)"--log-format";
		args[n++] = (char *)"json";
	}
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	execv(prog, args);
	kv_error("kvrun image: cannot run %s: %s (build it with make, or make install)", prog,
		 strerror(errno));
	free(args);
	return 1;
}
