/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun list [-q|--quiet] [--format|-f table|json]: every container under
 * --root, sorted by id as runc lists them. A directory that fails to load
 * is reported and skipped, as runc does. Table: runc's columns; JSON: one
 * line, "null" when empty (Go's encoding of runc's nil slice). */
#include "runtime/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

static const struct option list_opts[] = {
    {"format", required_argument, NULL, 'f'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static char *owner_of(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	return pw ? kv_strdup(pw->pw_name) : kv_asprintf("#%u", (unsigned)uid);
}

struct list_out {
	bool quiet, json;
	size_t n;
	struct kv_json *j;
	struct table *t;
};

static void list_one(struct list_out *o, const struct kvrun_globals *g, const char *name, uid_t uid)
{
	cleanup_container struct container *c = NULL;
	struct kv_err *err = NULL;
	if (container_load(g->root, name, &c, &err) < 0) {
		fprintf(stderr, "load container %s: %s\n", name, err->msg);
		kv_err_free(err);
		return;
	}
	o->n++;
	cleanup_free char *owner = owner_of(uid);
	if (o->quiet) {
		printf("%s\n", c->id);
	} else if (o->json) {
		oci_state_to_runc_json(c->st, c->status, c->pid, owner, o->j);
	} else {
		char pid[16], created[64];
		snprintf(pid, sizeof(pid), "%d", (int)c->pid);
		oci_time_format(&c->st->created, created);
		const char *row[] = {c->id,	    pid,     oci_status_name(c->status),
				     c->st->bundle, created, owner};
		table_add_row(o->t, row);
	}
}

struct list_entry {
	char *name;
	uid_t uid;
};

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->name, ((const struct list_entry *)b)->name);
}

/* The state directories under root, sorted by name as runc's os.ReadDir. */
static int list_read(const char *root, struct list_entry **out, size_t *n, struct kv_err **err)
{
	DIR *d = opendir(root);
	if (!d) {
		/* No root yet: no containers yet. */
		return errno == ENOENT ? 0 : kv_err_make(err, errno, "open %s", root);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat sb;
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sb.st_mode))
			continue;
		*out = realloc(*out, (*n + 1) * sizeof(**out));
		if (!*out)
			abort();
		(*out)[(*n)++] = (struct list_entry){kv_strdup(de->d_name), sb.st_uid};
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), entry_cmp);
	return 0;
}

static int list_dir(struct list_out *o, const struct kvrun_globals *g, struct kv_err **err)
{
	struct list_entry *v = NULL;
	size_t n = 0;
	int r = list_read(g->root, &v, &n, err);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			list_one(o, g, v[i].name, v[i].uid);
		free(v[i].name);
	}
	free(v);
	return r;
}

static int list_print(struct list_out *o, struct kv_err **err)
{
	if (o->quiet)
		return 0;
	if (!o->json) {
		table_print(o->t, stdout);
		return 0;
	}
	kv_json_array_close(o->j);
	const char *text;
	size_t len;
	if (kv_json_finish(o->j, &text, &len, err) < 0)
		return -1;
	printf("%s\n", o->n ? text : "null");
	return 0;
}

KVRUN_CMD(list)
{
	struct list_out o = {0};
	const char *format = "table";
	int c;
	while ((c = getopt_long(argc, argv, "+f:qh", list_opts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'q': o.quiet = true; break;
		case 'h': cli_print_cmd_help("list"); return 0;
		default: return cli_usage_error("list", "invalid flag");
		}
	}
	if (cli_exact_args("list", argc - optind, 0))
		return 1;
	if (strcmp(format, "table") && strcmp(format, "json"))
		return cli_failf("invalid format option");
	o.json = strcmp(format, "json") == 0;
	cleanup_json struct kv_json *j = kv_json_new(false);
	o.j = j;
	kv_json_array_open(j);
	static const char *const header[] = {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"};
	o.t = table_new(KV_ARRAY_SIZE(header));
	table_add_row(o.t, header);
	struct kv_err *err = NULL;
	int r = list_dir(&o, g, &err) < 0 || list_print(&o, &err) < 0 ? cli_fail(err) : 0;
	table_free(o.t);
	return r;
}
