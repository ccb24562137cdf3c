/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun ps [--format|-f table|json] <container-id> [ps options].
 *
 * json: the container's host processes (its shims, its VM's VMM), the pids
 * a client may look up on the host, as runc's are the host pids of the
 * container's cgroup (containerd's task Pids, docker top).
 * table: runc runs `ps` (default -ef) and keeps the container's lines; the
 * container's processes are in the guest, so kvrun runs `ps` with the
 * options given inside the container instead (an exec of `ps`, which the
 * container's image must have).
 */
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>

static const struct option ps_opts[] = {
    {"format", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What `ps -ef` prints first: runc prints it alone for a stopped container. */
#define PS_EF_HEADER "UID          PID    PPID  C STIME TTY          TIME CMD"

static int print_json(struct container *ct)
{
	struct kv_err *err = NULL;
	pid_t *pids = NULL;
	size_t n = 0;
	if (ct->status != OCI_STATUS_STOPPED && runtime_backend_ps(ct, &pids, &n, &err) < 0)
		return cli_fail(err);
	printf("[");
	for (size_t i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", (int)pids[i]);
	printf("]\n");
	free(pids);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* `ps OPTIONS` (or -ef) in the container, its output on our stdout. */
static int ps_in_guest(struct container *ct, char **opts, size_t nopts)
{
	struct kv_err *err = NULL;
	if (ct->status == OCI_STATUS_STOPPED) {
		if (nopts == 0)
			printf("%s\n", PS_EF_HEADER);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (container_config(ct, &cfg, &err) < 0)
		return cli_fail(err);
	cleanup_free char **args = kv_malloc0((nopts + 3) * sizeof(char *));
	size_t n = 0;
	args[n++] = "ps";
	if (nopts == 0)
		args[n++] = "-ef";
	for (size_t i = 0; i < nopts; i++)
		args[n++] = opts[i];
	struct oci_process p = *cfg->process;
	p.args = (struct oci_strv){.v = args, .n = n};
	p.terminal = false;
	struct create_opts o = {0};
	int status = runtime_backend_exec(ct, &p, &o, &err);
	if (status < 0) {
		kv_err_wrap(&err, "ps in container %s", ct->id);
		return cli_fail(err);
	}
	return status;
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
	if (strcmp(format, "json") == 0)
		return print_json(ct);
	return ps_in_guest(ct, argv + optind + 1, (size_t)(argc - optind - 1));
}
