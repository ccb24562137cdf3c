/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun image import [--store DIR] [--max-size SIZE] [--max-entries N] FILE|DIR [NAME]
 * kvrun image ls [--store DIR] [--format table|json]
 * kvrun image rm [--store DIR] NAME|ID...
 * kvrun image prune [--store DIR]
 *
 * The image store (rootfs-tools/image/image.h). Linked into kvrun alone,
 * not libruntime.a, so that -larchive goes to this one program.
 */
#include "rootfs-tools/image/image.h"
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>

enum { OPT_STORE = 256, OPT_MAX_SIZE, OPT_MAX_ENTRIES, OPT_FORMAT };

static const struct option image_opts[] = {
    {"store", required_argument, NULL, OPT_STORE},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct image_args {
	const char *store;
	struct img_import_opts imp;
	bool json;
};

static void image_usage(FILE *out)
{
	fprintf(out,
		"Usage: kvrun image import [--store DIR] [--max-size SIZE] [--max-entries N] "
		"FILE|DIR [NAME]\n"
		"       kvrun image ls [--store DIR] [--format table|json]\n"
		"       kvrun image rm [--store DIR] NAME|ID...\n"
		"       kvrun image prune [--store DIR]\n"
		"\n"
		"OCI images as erofs layer images: import a docker-archive, an oci-archive or an\n"
		"OCI layout directory; each layer is stored once, named by its diff_id, under\n"
		"the store (--store, $%s, default %s). prune drops layers no image uses.\n",
		IMG_STORE_ENV, IMG_STORE_DEFAULT);
}

/* Parse the flags: 1 when done (help), -1 on a usage error (reported), 0 to go on. */
static int image_flags(const char *verb, int argc, char **argv, struct image_args *a)
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", image_opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case OPT_STORE: a->store = optarg; break;
		case OPT_MAX_SIZE:
			if (kv_parse_size(optarg, &a->imp.max_size) < 0 || a->imp.max_size == 0)
				return cli_failf("image %s: --max-size %s: want a size", verb,
						 optarg),
				       -1;
			break;
		case OPT_MAX_ENTRIES:
			a->imp.max_entries = strtoull(optarg, &end, 10);
			if (!*optarg || *end || a->imp.max_entries == 0)
				return cli_failf("image %s: --max-entries %s: want a count", verb,
						 optarg),
				       -1;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0)
				return cli_failf("image %s: --format table|json", verb), -1;
			a->json = strcmp(optarg, "json") == 0;
			break;
		case 'h': image_usage(stdout); return 1;
		default: return cli_failf("image %s: unknown option (see --help)", verb), -1;
		}
	}
	a->store = img_store_path(a->store);
	return 0;
}

static int image_import(int argc, char **argv, struct image_args *a)
{
	if (argc - optind < 1 || argc - optind > 2)
		return cli_failf("image import: FILE|DIR [NAME]");
	a->imp.name = argc - optind == 2 ? argv[optind + 1] : NULL;
	char id[IMG_ID_LEN + 1];
	cleanup_free char *name = NULL;
	cleanup_err struct kv_err *err = NULL;
	if (img_import(a->store, argv[optind], &a->imp, id, &name, &err) < 0)
		return cli_fail(steal_ptr(err));
	printf("%s sha256:%s\n", name, id);
	return fflush(stdout) == 0 ? 0 : 1;
}

static char *human_size(uint64_t b)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)b;
	size_t u = 0;
	while (v >= 1000 && u + 1 < KV_ARRAY_SIZE(units))
		v /= 1000, u++;
	return u ? kv_asprintf("%.3g%s", v, units[u]) : kv_asprintf("%lluB", (unsigned long long)b);
}

static int print_list(const struct img_info *v, size_t n, bool json)
{
	if (json) {
		cleanup_json struct kv_json *j = kv_json_new(false);
		kv_json_array_open(j);
		for (size_t i = 0; i < n; i++) {
			kv_json_map_open(j);
			kv_json_kstr(j, "name", v[i].name);
			kv_json_kstr(j, "id", v[i].id);
			kv_json_kstr(j, "created", v[i].created);
			kv_json_kint(j, "size", (long long)v[i].size);
			kv_json_key(j, "layers");
			kv_json_array_open(j);
			for (size_t k = 0; k < v[i].nlayers; k++)
				kv_json_str(j, v[i].layers[k]);
			kv_json_array_close(j);
			kv_json_map_close(j);
		}
		kv_json_array_close(j);
		cleanup_err struct kv_err *err = NULL;
		const char *text;
		size_t len;
		if (kv_json_finish(j, &text, &len, &err) < 0)
			return cli_fail(steal_ptr(err));
		printf("%s\n", text);
		return 0;
	}
	struct table *t = table_new(5);
	table_add_row(t, (const char *const[]){"NAME", "ID", "LAYERS", "SIZE", "CREATED"});
	for (size_t i = 0; i < n; i++) {
		char id[13], nl[24];
		snprintf(id, sizeof(id), "%.12s", v[i].id);
		snprintf(nl, sizeof(nl), "%zu", v[i].nlayers);
		cleanup_free char *size = human_size(v[i].size);
		table_add_row(t, (const char *const[]){*v[i].name ? v[i].name : "<none>", id, nl,
						       size, *v[i].created ? v[i].created : "-"});
	}
	table_print(t, stdout);
	table_free(t);
	return 0;
}

static int image_ls(int argc, char **argv, struct image_args *a)
{
	if (optind < argc)
		return cli_failf("image ls: unexpected argument %s", argv[optind]);
	struct img_info *v = NULL;
	size_t n = 0;
	cleanup_err struct kv_err *err = NULL;
	if (img_list(a->store, &v, &n, &err) < 0)
		return cli_fail(steal_ptr(err));
	int rc = print_list(v, n, a->json);
	img_info_free(v, n);
	free(v);
	return rc ? rc : (fflush(stdout) == 0 ? 0 : 1);
}

static void pruned(const char *diff_id, uint64_t bytes, void *ctx)
{
	cleanup_free char *size = human_size(bytes);
	printf("removed layer %s (%s)\n", diff_id, size);
}

static int image_rm_prune(bool rm, int argc, char **argv, struct image_args *a)
{
	cleanup_err struct kv_err *err = NULL;
	if (!rm) {
		if (optind < argc)
			return cli_failf("image prune: unexpected argument %s", argv[optind]);
		return img_prune(a->store, pruned, NULL, &err) < 0 ? cli_fail(steal_ptr(err)) : 0;
	}
	if (optind >= argc)
		return cli_failf("image rm: NAME|ID...");
	for (int i = optind; i < argc; i++) {
		char id[IMG_ID_LEN + 1];
		if (img_remove(a->store, argv[i], id, &err) < 0)
			return cli_fail(steal_ptr(err));
		printf("removed image %s sha256:%s\n", argv[i], id);
	}
	return 0;
}

KVRUN_CMD(image)
{
	(void)g;
	if (argc < 2) {
		image_usage(stderr);
		return 1;
	}
	const char *sub = argv[1];
	struct image_args a = {0};
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		image_usage(stdout);
		return 0;
	}
	int r = image_flags(sub, argc - 1, argv + 1, &a);
	if (r)
		return r < 0 ? 1 : 0;
	if (strcmp(sub, "import") == 0)
		return image_import(argc - 1, argv + 1, &a);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return image_ls(argc - 1, argv + 1, &a);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return image_rm_prune(true, argc - 1, argv + 1, &a);
	if (strcmp(sub, "prune") == 0)
		return image_rm_prune(false, argc - 1, argv + 1, &a);
	return cli_failf("image: unknown command %s (import, ls, rm, prune)", sub);
}
