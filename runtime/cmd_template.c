/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun template create [--cpus N] [--memory SIZE] [--force]
 * kvrun template list [--format table|json]
 * kvrun template rm ID... | --all
 *
 * VM templates (runtime/template.h): create boots a VM of the given shape
 * (the config's defaults otherwise) to agent-ready and snapshots it; create
 * and run then clone VMs of that shape from it. Every VM (a pod's sandbox's
 * too) has the same devices, so the shape is vCPUs and memory.
 */
#include "runtime/runtime.h"
#include "runtime/template.h"

#include <getopt.h>
#include <string.h>

#define MIB (1ull << 20)

static const struct option create_opts[] = {
    {"cpus", required_argument, NULL, 'c'},
    {"memory", required_argument, NULL, 'm'},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option list_opts[] = {
    {"format", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option rm_opts[] = {
    {"all", no_argument, NULL, 'a'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void template_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: kvrun template create [--cpus N] [--memory SIZE] [--force]\n"
	    "       kvrun template list [--format table|json]\n"
	    "       kvrun template rm ID... | --all\n"
	    "\n"
	    "VM templates: a VM booted once to agent-ready and snapshotted. create and run\n"
	    "clone a VM of a template's shape (vCPUs, memory, kernel, image, command line)\n"
	    "from it instead of booting; other VMs boot cold. The config's \"templates\": false\n"
	    "or the annotation io.kvrun.template=false turns this off (clones share the\n"
	    "template's unwritten memory pages: a side channel between tenants).\n");
}

static int template_create(int argc, char **argv)
{
	cleanup_vm_conf struct vm_conf *vc = NULL;
	cleanup_err struct kv_err *err = NULL;
	if (vm_conf_load(&vc, &err) < 0)
		return cli_fail(steal_ptr(err));
	struct tmpl_shape sh = {.cpus = vc->cpus, .mem = vc->memory, .rootfs_dax = vc->rootfs_dax};
	bool force = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", create_opts, NULL)) != -1) {
		unsigned long v;
		char *end;
		switch (c) {
		case 'c':
			v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v == 0 || v > 64)
				return cli_failf("template create: --cpus %s: want 1..64", optarg);
			sh.cpus = (unsigned)v;
			break;
		case 'm':
			if (kv_parse_size(optarg, &sh.mem) < 0 || sh.mem < vc->min_memory)
				return cli_failf("template create: --memory %s: want a size of at "
						 "least %llu MiB",
						 optarg,
						 (unsigned long long)(vc->min_memory >> 20));
			break;
		case 'f': force = true; break;
		case 'h': template_usage(stdout); return 0;
		default: return cli_failf("template create: unknown option (see --help)");
		}
	}
	if (optind < argc)
		return cli_failf("template create: unexpected argument %s", argv[optind]);
	sh.mem = (sh.mem + 2 * MIB - 1) & ~(2 * MIB - 1);
	char id[TEMPLATE_ID_LEN + 1];
	if (tmpl_create(vc, &sh, force, id, &err) < 0)
		return cli_fail(steal_ptr(err));
	cleanup_free char *root = tmpl_root(vc);
	printf("%s %s/%s (%u vCPUs, %llu MiB)\n", id, root, id, sh.cpus,
	       (unsigned long long)(sh.mem >> 20));
	return fflush(stdout) == 0 ? 0 : 1;
}

static int template_list(int argc, char **argv)
{
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:", list_opts, NULL)) != -1) {
		if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0))
			json = strcmp(optarg, "json") == 0;
		else if (c == 'h') {
			template_usage(stdout);
			return 0;
		} else
			return cli_failf("template list: --format table|json");
	}
	cleanup_vm_conf struct vm_conf *vc = NULL;
	cleanup_err struct kv_err *err = NULL;
	if (vm_conf_load(&vc, &err) < 0 || tmpl_list(vc, json, stdout, &err) < 0)
		return cli_fail(steal_ptr(err));
	return 0;
}

static int template_rm(int argc, char **argv)
{
	bool all = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", rm_opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'h') {
			template_usage(stdout);
			return 0;
		} else
			return cli_failf("template rm: ID... or --all");
	}
	if (all == (optind < argc))
		return cli_failf("template rm: give template ids or --all (not both)");
	cleanup_vm_conf struct vm_conf *vc = NULL;
	cleanup_err struct kv_err *err = NULL;
	if (vm_conf_load(&vc, &err) < 0)
		return cli_fail(steal_ptr(err));
	if (all)
		return tmpl_remove(vc, NULL, &err) < 0 ? cli_fail(steal_ptr(err)) : 0;
	for (int i = optind; i < argc; i++)
		if (tmpl_remove(vc, argv[i], &err) < 0)
			return cli_fail(steal_ptr(err));
	return 0;
}

KVRUN_CMD(template)
{
	(void)g;
	if (argc < 2) {
		template_usage(stderr);
		return 1;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "create") == 0)
		return template_create(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return template_list(argc - 1, argv + 1);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return template_rm(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		template_usage(stdout);
		return 0;
	}
	return cli_failf("template: unknown command %s (create, list, rm)", sub);
}
