/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state.json: kvrun's own record of one container, and the two OCI state
 * shapes printed from it (runc's `state` output; the runtime-spec state that
 * hooks read on stdin).
 *
 * On disk:
 *   {"kvrunState":1,"id":"c1","ociVersion":"1.1.0","bundle":"/b",
 *    "rootfs":"/b/rootfs","status":"created","pid":4242,
 *    "pidStartTime":123456,"created":"2024-01-02T03:04:05.123456789Z",
 *    "sandboxId":"c1","annotations":{...}}
 * Writes go through kv_write_file_volatile(), so a reader sees the old file
 * or the new one, never half of one.
 */
#include "oci/internal.h"

#include <limits.h>
#include <string.h>

/* A state file is small; anything bigger is not ours. */
#define OCI_STATE_MAX_SIZE (1u << 20)

void oci_state_free(struct oci_state *st)
{
	if (!st)
		return;
	free(st->id);
	free(st->oci_version);
	free(st->bundle);
	free(st->rootfs);
	free(st->sandbox_id);
	for (size_t i = 0; i < st->annotations.n; i++) {
		free(st->annotations.v[i].key);
		free(st->annotations.v[i].value);
	}
	free(st->annotations.v);
	free(st);
}

static void put_annotations(struct kv_json *j, const struct oci_map *m)
{
	kv_json_key(j, "annotations");
	kv_json_map_open(j);
	for (size_t i = 0; i < m->n; i++)
		kv_json_kstr(j, m->v[i].key, m->v[i].value);
	kv_json_map_close(j);
}

int oci_state_save(const char *path, const struct oci_state *st, struct kv_err **err)
{
	char created[64];
	oci_time_format(&st->created, created);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kint(j, "kvrunState", OCI_STATE_VERSION);
	kv_json_kstr(j, "id", st->id);
	kv_json_kstr(j, "ociVersion", st->oci_version);
	kv_json_kstr(j, "bundle", st->bundle);
	kv_json_kstr(j, "rootfs", st->rootfs);
	kv_json_kstr(j, "status", oci_status_name(st->status));
	kv_json_kint(j, "pid", st->pid);
	kv_json_key(j, "pidStartTime");
	kv_json_uint(j, st->pid_start);
	kv_json_kstr(j, "created", created);
	kv_json_kstr(j, "sandboxId", st->sandbox_id ? st->sandbox_id : st->id);
	put_annotations(j, &st->annotations);
	kv_json_map_close(j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, err) < 0)
		return kv_err_wrap(err, "write %s", path);
	return kv_write_file_volatile(path, text, len, 0600, err);
}

static int state_fields(struct pctx *c, yajl_val top, struct oci_state *st)
{
	uint64_t version = 0;
	int64_t pid = 0;
	char *id = NULL, *ver = NULL, *bundle = NULL, *rootfs = NULL, *status = NULL,
	     *created = NULL, *sandbox = NULL;
	struct oci_map ann = {0};
	if (!YAJL_IS_OBJECT(top))
		return pc_fail(c, "must be a JSON object");
	if (pc_u64(c, top, "kvrunState", true, UINT32_MAX, &version, NULL) < 0)
		return -1;
	if (version != OCI_STATE_VERSION)
		return pc_fail_at(c, "kvrunState", "unsupported version %llu",
				  (unsigned long long)version);
	if (pc_str(c, top, "id", true, &id) < 0 || pc_str(c, top, "ociVersion", true, &ver) < 0 ||
	    pc_str(c, top, "bundle", true, &bundle) < 0 ||
	    pc_str(c, top, "rootfs", true, &rootfs) < 0 ||
	    pc_str(c, top, "status", true, &status) < 0 ||
	    pc_i64(c, top, "pid", true, 0, INT_MAX, &pid, NULL) < 0 ||
	    pc_u64(c, top, "pidStartTime", true, UINT64_MAX, &st->pid_start, NULL) < 0 ||
	    pc_str(c, top, "created", true, &created) < 0 ||
	    pc_str(c, top, "sandboxId", true, &sandbox) < 0 ||
	    pc_map(c, top, "annotations", &ann) < 0)
		return -1;
	int s = oci_status_from_name(status);
	if (s < 0)
		return pc_fail_at(c, "status", "unknown status \"%s\"", status);
	if (!oci_path_is_abs(bundle))
		return pc_fail_at(c, "bundle", "must be an absolute path");
	if (oci_time_parse(created, &st->created) < 0)
		return pc_fail_at(c, "created", "not an RFC 3339 UTC time: \"%s\"", created);
	st->status = s;
	st->pid = (pid_t)pid;
	st->id = kv_strdup(id);
	st->oci_version = kv_strdup(ver);
	st->bundle = kv_strdup(bundle);
	st->rootfs = kv_strdup(rootfs);
	st->sandbox_id = kv_strdup(sandbox);
	st->annotations.v = kv_malloc0(ann.n * sizeof(*ann.v));
	for (size_t i = 0; i < ann.n; i++) {
		st->annotations.v[i].key = kv_strdup(ann.v[i].key);
		st->annotations.v[i].value = kv_strdup(ann.v[i].value);
	}
	st->annotations.n = ann.n;
	return 0;
}

int oci_state_parse(const char *text, size_t len, const char *what, struct oci_state **out,
		    struct kv_err **err)
{
	if (len > OCI_STATE_MAX_SIZE)
		return kv_err_plain(err, EFBIG, "%s: corrupt state: larger than %u bytes", what,
				    OCI_STATE_MAX_SIZE);
	cleanup_yajl_val yajl_val top = oci_tree_parse(text, len, "corrupt state", err);
	if (!top)
		return kv_err_wrap(err, "%s", what);
	struct oci_alloc *scratch = NULL;
	struct pctx c = {.owner = &scratch, .err = err};
	struct oci_state *st = kv_malloc0(sizeof(*st));
	int r = state_fields(&c, top, st);
	oci_alloc_free(scratch);
	if (r < 0) {
		oci_state_free(st);
		kv_err_wrap(err, "corrupt state");
		return kv_err_wrap(err, "%s", what);
	}
	*out = st;
	return 0;
}

int oci_state_load(const char *path, struct oci_state **out, struct kv_err **err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (kv_read_file(path, OCI_STATE_MAX_SIZE, &text, &len, err) < 0)
		return -1;
	return oci_state_parse(text, len, path, out, err);
}

void oci_state_to_runc_json(const struct oci_state *st, enum oci_status status, pid_t pid,
			    const char *owner, struct kv_json *j)
{
	char created[64];
	oci_time_format(&st->created, created);
	kv_json_map_open(j);
	kv_json_kstr(j, "ociVersion", st->oci_version);
	kv_json_kstr(j, "id", st->id);
	kv_json_kint(j, "pid", pid);
	kv_json_kstr(j, "status", oci_status_name(status));
	kv_json_kstr(j, "bundle", st->bundle);
	kv_json_kstr(j, "rootfs", st->rootfs);
	kv_json_kstr(j, "created", created);
	if (st->annotations.n)
		put_annotations(j, &st->annotations);
	kv_json_kstr(j, "owner", owner ? owner : "");
	kv_json_map_close(j);
}

void oci_state_to_spec_json(const struct oci_state *st, enum oci_status status, pid_t pid,
			    struct kv_json *j)
{
	kv_json_map_open(j);
	kv_json_kstr(j, "ociVersion", st->oci_version);
	kv_json_kstr(j, "id", st->id);
	kv_json_kstr(j, "status", oci_status_name(status));
	if (pid > 0)
		kv_json_kint(j, "pid", pid);
	kv_json_kstr(j, "bundle", st->bundle);
	if (st->annotations.n)
		put_annotations(j, &st->annotations);
	kv_json_map_close(j);
}
