/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun image import [--store DIR] [--max-size SIZE] [--max-entries N] FILE|DIR [NAME]
 * kvrun image ls [--store DIR] [--format table|json]
 * kvrun image rm [--store DIR] NAME|ID...
 * kvrun image prune [--store DIR]
 * kvrun image bundle [--store DIR] NAME|ID DIR
 *
 * The image store (rootfs-tools/image/image.h). Linked into kvrun-image
 * alone (kvrun's CLI with this command), not libruntime.a or kvrun, so
 * that -larchive goes to this one program; kvrun execs it
 * (cmd_image_exec.c).
 */
#include "rootfs-tools/image/image.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
		"       kvrun image bundle [--store DIR] NAME|ID DIR\n"
		"\n"
		"OCI images as erofs layer images: import a docker-archive, an oci-archive or an\n"
		"OCI layout directory; each layer is stored once, named by its diff_id, under\n"
		"the store (--store, $%s, default %s). prune drops layers no image uses.\n"
		"bundle makes DIR an OCI bundle of the image: config.json from the image's\n"
		"config, the layers as the root's read-only lower layers (hard links in\n"
		"DIR/layers), DIR/rootfs the writable layer (upper/, work/) that persists.\n",
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

/* ------------------------------------------------------------- bundle */

/* Layer i in DIR/layers: a hard link to the store's image (the same inode, so
 * the same page cache; a store prune cannot take it away), or the store's
 * path where the two are on different file systems. The annotation's entry. */
static char *bundle_layer(const char *dir, size_t i, const char *store_path, struct kv_err **err)
{
	cleanup_free char *rel = kv_asprintf("layers/%zu.erofs", i);
	cleanup_free char *link_path = kv_asprintf("%s/%s", dir, rel);
	if (link(store_path, link_path) == 0)
		return steal_ptr(rel);
	if (errno != EXDEV && errno != EPERM) {
		kv_err_make(err, errno, "link %s to %s", link_path, store_path);
		return NULL;
	}
	char abs[PATH_MAX];
	if (!realpath(store_path, abs)) {
		kv_err_make(err, errno, "%s", store_path);
		return NULL;
	}
	return kv_strdup(abs);
}

static int bundle_write(const char *dir, const struct img_run *r, struct kv_err **err)
{
	_Static_assert(IMG_VM_LAYERS == VM_LAYERS_MAX, "image.h and backend.h disagree");
	if (r->nlayers > VM_LAYERS_MAX) /* an import before flattening existed */
		return kv_err_plain(err, E2BIG,
				    "image %s: %zu layers; a VM takes %d: import it again to "
				    "have the lowest ones flattened",
				    r->name, r->nlayers, VM_LAYERS_MAX);
	if (!r->nargs)
		return kv_err_plain(err, EINVAL,
				    "image %s: no Entrypoint or Cmd in its config; nothing to run",
				    r->name);
	/* User was resolved in the image's /etc/passwd and /etc/group (img_run_info). */
	struct spec_image im = {.args = r->args,
				.nargs = r->nargs,
				.cwd = r->cwd,
				.uid = r->uid,
				.gid = r->gid,
				.gids = r->gids,
				.ngids = r->ngids};
	/* Env, with Docker's default PATH when the image has none. */
	char *path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	cleanup_free char **env = kv_malloc0((r->nenv + 2) * sizeof(char *));
	bool has_path = false;
	for (size_t i = 0; i < r->nenv; i++) {
		env[im.nenv++] = r->env[i];
		has_path |= strncmp(r->env[i], "PATH=", 5) == 0;
	}
	if (!has_path)
		env[im.nenv++] = path_env;
	im.env = env;
	if (mkdir(dir, 0755) < 0)
		return kv_err_make(err, errno, "mkdir %s", dir);
	cleanup_free char *layers_dir = kv_asprintf("%s/layers", dir);
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", dir);
	if (mkdir(layers_dir, 0755) < 0 || mkdir(rootfs, 0755) < 0)
		return kv_err_make(err, errno, "mkdir in %s", dir);
	/* The annotation's list: each layer linked (or named) in turn. */
	cleanup_free char *list = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&list, &len);
	if (!f)
		abort();
	int rc = 0;
	for (size_t i = 0; i < r->nlayers && rc == 0; i++) {
		cleanup_free char *entry = bundle_layer(dir, i, r->layers[i], err);
		if (!entry)
			rc = -1;
		else if (strchr(entry, ','))
			rc = kv_err_plain(err, EINVAL, "layer path %s: has a comma", entry);
		else
			fprintf(f, "%s%s", i ? "," : "", entry);
	}
	if (fclose(f) != 0)
		abort();
	if (rc < 0)
		return -1;
	cleanup_free char *ref = kv_asprintf("%s@sha256:%s", *r->name ? r->name : "", r->id);
	const char *ann[4][2] = {{IMAGE_LAYERS_ANNOTATION, list}, {"io.kvrun.image", ref}};
	im.nann = 2;
	if (r->exposed_ports) {
		ann[im.nann][0] = "org.opencontainers.image.exposedPorts";
		ann[im.nann++][1] = r->exposed_ports;
	}
	if (r->stop_signal) {
		ann[im.nann][0] = "org.opencontainers.image.stopSignal";
		ann[im.nann++][1] = r->stop_signal;
	}
	im.ann = ann;
	cleanup_free char *text = spec_image_json(&im);
	cleanup_free char *cfg = kv_asprintf("%s/config.json", dir);
	if (!text)
		return kv_err_plain(err, EINVAL, "cannot build the bundle's config.json");
	cleanup_close int fd = open(cfg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || kv_write_all(fd, text, strlen(text)) < 0)
		return kv_err_make(err, errno, "write %s", cfg);
	return 0;
}

/* Remove what a failed bundle_write made (DIR was new; it links at most n layers). */
static void bundle_undo(const char *dir, size_t n)
{
	cleanup_free char *cfg = kv_asprintf("%s/config.json", dir);
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", dir);
	cleanup_free char *layers = kv_asprintf("%s/layers", dir);
	unlink(cfg);
	rmdir(rootfs);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *l = kv_asprintf("%s/%zu.erofs", layers, i);
		unlink(l);
	}
	rmdir(layers);
	rmdir(dir);
}

static int image_bundle(int argc, char **argv, struct image_args *a)
{
	if (argc - optind != 2)
		return cli_failf("image bundle: NAME|ID DIR");
	const char *dir = argv[optind + 1];
	struct img_run r;
	cleanup_err struct kv_err *err = NULL;
	if (img_run_info(a->store, argv[optind], &r, &err) < 0)
		return cli_fail(steal_ptr(err));
	struct stat sb;
	int rc = 0;
	if (lstat(dir, &sb) == 0)
		rc = kv_err_plain(&err, EEXIST, "image bundle: %s exists; give a new directory",
				  dir);
	else if (bundle_write(dir, &r, &err) < 0) {
		rc = -1;
		bundle_undo(dir, r.nlayers);
	}
	img_run_free(&r);
	if (rc < 0)
		return cli_fail(steal_ptr(err));
	printf("%s\n", dir);
	return fflush(stdout) == 0 ? 0 : 1;
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
	if (strcmp(sub, "bundle") == 0)
		return image_bundle(argc - 1, argv + 1, &a);
	return cli_failf("image: unknown command %s (import, ls, rm, prune, bundle)", sub);
}
