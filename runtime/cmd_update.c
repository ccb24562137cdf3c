/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun update [-r file|-] [--memory ...] <container-id>. The flags are
 * turned into a linux.resources document, so both ways in meet the same
 * validator (oci_resources_parse) before the backend applies them in the
 * guest.
 */
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>

enum {
	U_BLKIO = 256,
	U_CPU_PERIOD,
	U_CPU_QUOTA,
	U_CPU_SHARE,
	U_CPU_RT_PERIOD,
	U_CPU_RT_RUNTIME,
	U_CPUS,
	U_MEMS,
	U_KMEM,
	U_KMEM_TCP,
	U_MEMORY,
	U_MEM_RES,
	U_MEM_SWAP,
	U_PIDS,
	U_L3,
	U_MEMBW,
	U_COUNT
};

static const struct option update_opts[] = {
    {"resources", required_argument, NULL, 'r'},
    {"blkio-weight", required_argument, NULL, U_BLKIO},
    {"cpu-period", required_argument, NULL, U_CPU_PERIOD},
    {"cpu-quota", required_argument, NULL, U_CPU_QUOTA},
    {"cpu-share", required_argument, NULL, U_CPU_SHARE},
    {"cpu-rt-period", required_argument, NULL, U_CPU_RT_PERIOD},
    {"cpu-rt-runtime", required_argument, NULL, U_CPU_RT_RUNTIME},
    {"cpuset-cpus", required_argument, NULL, U_CPUS},
    {"cpuset-mems", required_argument, NULL, U_MEMS},
    {"kernel-memory", required_argument, NULL, U_KMEM},
    {"kernel-memory-tcp", required_argument, NULL, U_KMEM_TCP},
    {"memory", required_argument, NULL, U_MEMORY},
    {"memory-reservation", required_argument, NULL, U_MEM_RES},
    {"memory-swap", required_argument, NULL, U_MEM_SWAP},
    {"pids-limit", required_argument, NULL, U_PIDS},
    {"l3-cache-schema", required_argument, NULL, U_L3},
    {"mem-bw-schema", required_argument, NULL, U_MEMBW},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* An integer flag; memory flags also take "512M"-style sizes and -1. */
static int flag_int(const char *name, const char *v, bool size, long long *out)
{
	uint64_t sz;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (*v && !*end && !errno) {
		*out = n;
		return 0;
	}
	if (size && kv_parse_size(v, &sz) == 0 && sz <= INT64_MAX) {
		*out = (long long)sz;
		return 0;
	}
	return cli_usage_error("update", "invalid value for --%s: %s", name, v);
}

static void put(struct kv_json *j, const char *key, const char *v, bool is_str)
{
	if (!v)
		return;
	kv_json_key(j, key);
	if (is_str) {
		kv_json_str(j, v);
		return;
	}
	long long n = strtoll(v, NULL, 10);
	kv_json_int(j, n);
}

static void section(struct kv_json *j, const char *name, const char *const *keys, const int *ids,
		    size_t n, char **vals)
{
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= vals[ids[i]] != NULL;
	if (!any)
		return;
	kv_json_key(j, name);
	kv_json_map_open(j);
	for (size_t i = 0; i < n; i++)
		put(j, keys[i], vals[ids[i]], ids[i] == U_CPUS || ids[i] == U_MEMS);
	kv_json_map_close(j);
}

/* Flag values (already normalised to decimal) -> resources JSON text. */
static char *flags_to_json(char **vals)
{
	static const char *const mem_keys[] = {"limit", "reservation", "swap"};
	static const int mem_ids[] = {U_MEMORY, U_MEM_RES, U_MEM_SWAP};
	static const char *const cpu_keys[] = {
	    "shares", "quota", "period", "realtimePeriod", "realtimeRuntime", "cpus", "mems"};
	static const int cpu_ids[] = {U_CPU_SHARE,	U_CPU_QUOTA, U_CPU_PERIOD, U_CPU_RT_PERIOD,
				      U_CPU_RT_RUNTIME, U_CPUS,	     U_MEMS};
	static const char *const pid_keys[] = {"limit"};
	static const int pid_ids[] = {U_PIDS};
	static const char *const blk_keys[] = {"weight"};
	static const int blk_ids[] = {U_BLKIO};
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	section(j, "memory", mem_keys, mem_ids, 3, vals);
	section(j, "cpu", cpu_keys, cpu_ids, 7, vals);
	section(j, "pids", pid_keys, pid_ids, 1, vals);
	section(j, "blockIO", blk_keys, blk_ids, 1, vals);
	kv_json_map_close(j);
	struct kv_err *err = NULL;
	char *text = kv_json_finish_dup(j, NULL, &err);
	kv_err_free(err);
	return text;
}

static int read_resources(const char *path, char **text, size_t *len, struct kv_err **err)
{
	if (strcmp(path, "-") == 0)
		path = "/dev/stdin";
	return kv_read_file(path, OCI_CONFIG_MAX_SIZE, text, len, err);
}

static int apply(struct kvrun_globals *g, const char *id, const char *text, size_t len,
		 const char *what)
{
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *res = NULL;
	cleanup_container struct container *c = NULL;
	if (oci_resources_parse(text, len, what, &res, &err) < 0 ||
	    container_load(g->root, id, &c, &err) < 0 || container_lock(c, &err) < 0)
		return cli_fail(err);
	if (c->status == OCI_STATUS_STOPPED)
		return cli_failf("container not running");
	if (runtime_backend_update(c, res->linux_->resources, &err) < 0)
		return cli_fail(err);
	return 0;
}

static int parse_update_flag(int c, char **vals)
{
	long long n = 0;
	const char *name = update_opts[c - U_BLKIO + 1].name;
	bool size =
	    c == U_MEMORY || c == U_MEM_RES || c == U_MEM_SWAP || c == U_KMEM || c == U_KMEM_TCP;
	if (c == U_L3 || c == U_MEMBW)
		return cli_failf("--%s: Intel RDT is not supported by kvrun", name);
	if (c == U_KMEM || c == U_KMEM_TCP) {
		kv_warn("--%s is deprecated and ignored", name);
		return -1;
	}
	if (c != U_CPUS && c != U_MEMS) {
		int r = flag_int(name, optarg, size, &n);
		if (r)
			return r;
		free(vals[c]);
		vals[c] = kv_asprintf("%lld", n);
		return -1;
	}
	free(vals[c]);
	vals[c] = kv_strdup(optarg);
	return -1;
}

KVRUN_CMD(update)
{
	char *vals[U_COUNT] = {0};
	const char *resources = NULL;
	int c, r = -1;
	while (r < 0 && (c = getopt_long(argc, argv, "+r:h", update_opts, NULL)) != -1) {
		if (c == 'r')
			resources = optarg;
		else if (c == 'h')
			r = (cli_print_cmd_help("update"), 0);
		else if (c >= U_BLKIO && c < U_COUNT)
			r = parse_update_flag(c, vals);
		else
			r = cli_usage_error("update", "invalid flag");
	}
	if (r < 0 && cli_exact_args("update", argc - optind, 1))
		r = 1;
	if (r < 0) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		struct kv_err *err = NULL;
		if (resources && read_resources(resources, &text, &len, &err) < 0)
			r = cli_fail(err);
		else if (!resources && !(text = flags_to_json(vals)))
			r = cli_failf("cannot build the resources document");
		else
			r = apply(g, argv[optind], text, resources ? len : strlen(text),
				  resources ? resources : "update flags");
	}
	for (int i = 0; i < U_COUNT; i++)
		free(vals[i]);
	return r;
}
