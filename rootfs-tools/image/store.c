/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's records (images/<id>.json), its lock, ls, rm and prune. The
 * import itself is in import.c.
 */
#include "rootfs-tools/image/internal.h"
#include "rootfs-tools/image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

#define RECORD_MAX (16u << 20)

int store_open(const char *store, int lock, struct kv_err **err)
{
	if (kv_mkdir_p(store, 0755, err) < 0)
		return kv_err_wrap(err, "image store");
	static const char *const dirs[] = {STORE_LAYERS, STORE_IMAGES, STORE_TMP, STORE_ETC};
	for (size_t i = 0; i < KV_ARRAY_SIZE(dirs); i++) {
		cleanup_free char *d = kv_asprintf("%s/%s", store, dirs[i]);
		int mode = strcmp(dirs[i], STORE_TMP) == 0 ? 0700 : 0755;
		if (mkdir(d, mode) < 0 && errno != EEXIST)
			return kv_err_make(err, errno, "image store: mkdir %s", d);
		/* Staging holds device nodes and set-id files: nobody else may reach it. */
		if (mode == 0700 && chmod(d, 0700) < 0)
			return kv_err_make(err, errno, "image store: chmod %s", d);
	}
	cleanup_free char *path = kv_asprintf("%s/lock", store);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return kv_err_make(err, errno, "image store: open %s", path);
	if (flock(fd, lock) < 0) {
		close(fd);
		return kv_err_make(err, errno, "image store: lock %s", path);
	}
	return fd;
}

char *store_layer_path(const char *store, const char *diff_id)
{
	return kv_asprintf("%s/%s/%s.erofs", store, STORE_LAYERS, diff_id + 7);
}

void store_record_free(struct store_record *r)
{
	img_info_free(&r->info, 1);
	free(r->config);
	free(r->manifest);
	img_etc_free(&r->etc);
	memset(r, 0, sizeof(*r));
}

/* "passwd": {"state": "same"|"none"|"file"|"unusable", "base64": text | "why": reason} */
static void etc_file_write(struct kv_json *j, const char *key, const struct img_etc_file *f)
{
	kv_json_key(j, key);
	kv_json_map_open(j);
	if (f->state == IMG_ETC_FILE) {
		/* base64: the bytes as they are, UTF-8 or not (the writer wants UTF-8). */
		cleanup_free char *b = kv_malloc0(KV_B64_LEN(f->len));
		kv_b64_encode((const uint8_t *)f->text, f->len, b);
		kv_json_kstr(j, "state", "file");
		kv_json_kstr(j, "base64", b);
	} else if (f->state == IMG_ETC_BAD) {
		kv_json_kstr(j, "state", "unusable");
		kv_json_kstr(j, "why", f->text);
	} else {
		kv_json_kstr(j, "state", f->state == IMG_ETC_SAME ? "same" : "none");
	}
	kv_json_map_close(j);
}

static void etc_write(struct kv_json *j, const struct img_etc *e)
{
	kv_json_map_open(j);
	etc_file_write(j, "passwd", &e->passwd);
	etc_file_write(j, "group", &e->group);
	/* "dir" (a directory) or "other"; absent: the layer has no /etc (and a
	 * delta written before kvrun kept it: read as before). */
	if (e->dir != IMG_ETC_DIR_SAME)
		kv_json_kstr(j, "etc", e->dir == IMG_ETC_DIR_DIR ? "dir" : "other");
	kv_json_map_close(j);
}

static void etc_dir_read(yajl_val etc, struct img_etc *e)
{
	const char *d = kv_jstr(etc, "etc");
	e->dir = !d			 ? IMG_ETC_DIR_SAME
		 : strcmp(d, "dir") == 0 ? IMG_ETC_DIR_DIR
					 : IMG_ETC_DIR_OTHER;
}

static int etc_file_read(yajl_val etc, const char *key, struct img_etc_file *f)
{
	yajl_val v = kv_jget(etc, key);
	const char *st = v ? kv_jstr(v, "state") : NULL;
	if (!st)
		return -1;
	if (strcmp(st, "none") == 0 || strcmp(st, "same") == 0) {
		f->state = strcmp(st, "none") == 0 ? IMG_ETC_NONE : IMG_ETC_SAME;
		return 0;
	}
	const char *text = kv_jstr(v, strcmp(st, "file") == 0 ? "base64" : "why");
	if (!text || (strcmp(st, "file") != 0 && strcmp(st, "unusable") != 0))
		return -1;
	if (strcmp(st, "unusable") == 0) {
		f->state = IMG_ETC_BAD;
		f->text = kv_strdup(text);
		return 0;
	}
	f->text = kv_malloc0(IMG_ETC_MAX + 1);
	ssize_t n = kv_b64_decode(text, (uint8_t *)f->text, IMG_ETC_MAX);
	if (n < 0)
		return -1;
	f->state = IMG_ETC_FILE;
	f->len = (size_t)n;
	return 0;
}

int store_record_write(const char *store, const struct store_record *r, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(true);
	kv_json_map_open(j);
	kv_json_kstr(j, "id", r->info.id);
	kv_json_kstr(j, "name", r->info.name);
	kv_json_kstr(j, "created", r->info.created);
	kv_json_kint(j, "imported", r->imported);
	kv_json_key(j, "layers");
	kv_json_array_open(j);
	for (size_t i = 0; i < r->info.nlayers; i++)
		kv_json_str(j, r->info.layers[i]);
	kv_json_array_close(j);
	if (r->info.flat) {
		kv_json_key(j, "flat");
		kv_json_map_open(j);
		kv_json_kstr(j, "digest", r->info.flat);
		kv_json_kint(j, "layers", (long long)r->info.nflat);
		kv_json_map_close(j);
	}
	kv_json_kstr(j, "config", r->config);
	kv_json_kstr(j, "manifest", r->manifest);
	if (r->has_etc) {
		kv_json_key(j, "etc");
		etc_write(j, &r->etc);
	}
	kv_json_map_close(j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, err) < 0)
		return -1;
	cleanup_free char *path = kv_asprintf("%s/%s/%s.json", store, STORE_IMAGES, r->info.id);
	return kv_write_file_atomic(path, text, len, 0644, err);
}

static char *layer_etc_path(const char *store, const char *diff_id)
{
	return kv_asprintf("%s/%s/%s.json", store, STORE_ETC, diff_id + 7);
}

int store_layer_etc_read(const char *store, const char *diff_id, struct img_etc *d)
{
	memset(d, 0, sizeof(*d));
	cleanup_free char *path = layer_etc_path(store, diff_id);
	cleanup_free char *text = NULL;
	size_t len;
	struct kv_err *err = NULL;
	cleanup_yajl_val yajl_val root = NULL;
	if (kv_read_file(path, 4 * IMG_ETC_MAX, &text, &len, &err) == 0)
		root = kv_json_parse(text, path, &err);
	kv_err_free(err);
	if (root && YAJL_IS_OBJECT(root))
		etc_dir_read(root, d);
	if (root && YAJL_IS_OBJECT(root) && etc_file_read(root, "passwd", &d->passwd) == 0 &&
	    etc_file_read(root, "group", &d->group) == 0)
		return 0;
	img_etc_free(d);
	return -1;
}

int store_layer_etc_write(const char *store, const char *diff_id, const struct img_etc *d,
			  struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	etc_write(j, d);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, err) < 0)
		return -1;
	cleanup_free char *path = layer_etc_path(store, diff_id);
	return kv_write_file_atomic(path, text, len, 0644, err);
}

static const char *get_str(yajl_val v, const char *k)
{
	const char *path[] = {k, NULL};
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);
	return s ? YAJL_GET_STRING(s) : NULL;
}

int store_record_read(const char *store, const char *id, struct store_record *r,
		      struct kv_err **err)
{
	memset(r, 0, sizeof(*r));
	cleanup_free char *path = kv_asprintf("%s/%s/%s.json", store, STORE_IMAGES, id);
	cleanup_free char *text = NULL;
	size_t len;
	if (kv_read_file(path, RECORD_MAX, &text, &len, err) < 0)
		return -1;
	cleanup_yajl_val yajl_val root = kv_json_parse(text, path, err);
	if (!root)
		return -1;
	const char *rid = get_str(root, "id"), *path_l[] = {"layers", NULL};
	yajl_val layers = yajl_tree_get(root, path_l, yajl_t_array);
	if (!rid || strcmp(rid, id) != 0 || !layers)
		return kv_err_plain(err, EINVAL, "%s: not an image record", path);
	snprintf(r->info.id, sizeof(r->info.id), "%s", rid);
	r->info.name = kv_strdup(get_str(root, "name") ?: "");
	r->info.created = kv_strdup(get_str(root, "created") ?: "");
	r->config = kv_strdup(get_str(root, "config") ?: "");
	r->manifest = kv_strdup(get_str(root, "manifest") ?: "");
	const char *ip[] = {"imported", NULL};
	yajl_val imp = yajl_tree_get(root, ip, yajl_t_number);
	r->imported = imp && YAJL_IS_INTEGER(imp) ? YAJL_GET_INTEGER(imp) : 0;
	r->info.nlayers = YAJL_GET_ARRAY(layers)->len;
	r->info.layers = kv_malloc0((r->info.nlayers + 1) * sizeof(char *));
	for (size_t i = 0; i < r->info.nlayers; i++) {
		yajl_val l = YAJL_GET_ARRAY(layers)->values[i];
		if (!YAJL_IS_STRING(l) || !img_digest_valid(YAJL_GET_STRING(l)))
			return kv_err_plain(err, EINVAL, "%s: layers[%zu] is not a digest", path,
					    i);
		r->info.layers[i] = kv_strdup(YAJL_GET_STRING(l));
	}
	yajl_val flat = kv_jget(root, "flat");
	if (flat) {
		const char *d = kv_jstr(flat, "digest");
		long long k = 0;
		if (!d || !img_digest_valid(d) || !kv_jint(flat, "layers", &k) || k < 2 ||
		    (size_t)k > r->info.nlayers)
			return kv_err_plain(err, EINVAL, "%s: flat: not a flattened layer", path);
		r->info.flat = kv_strdup(d);
		r->info.nflat = (size_t)k;
	}
	yajl_val etc = kv_jget(root, "etc");
	if (etc) {
		r->has_etc = true;
		if (etc_file_read(etc, "passwd", &r->etc.passwd) < 0 ||
		    etc_file_read(etc, "group", &r->etc.group) < 0) {
			store_record_free(r);
			return kv_err_plain(err, EINVAL, "%s: etc: not the image's /etc files",
					    path);
		}
	}
	return 0;
}

/* Every record's id (the file names of images/, sorted). */
int store_ids(const char *store, char ***ids, size_t *n, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/%s", store, STORE_IMAGES);
	struct dirent **list = NULL;
	int cnt = scandir(path, &list, NULL, alphasort);
	if (cnt < 0)
		return kv_err_make(err, errno, "image store: %s", path);
	*ids = kv_malloc0(((size_t)cnt + 1) * sizeof(char *));
	*n = 0;
	for (int i = 0; i < cnt; i++) {
		const char *d = list[i]->d_name;
		size_t l = strlen(d);
		if (l == IMG_ID_LEN + 5 && strcmp(d + IMG_ID_LEN, ".json") == 0)
			(*ids)[(*n)++] = kv_asprintf("%.*s", IMG_ID_LEN, d);
		free(list[i]);
	}
	free(list);
	return 0;
}

void store_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void img_info_free(struct img_info *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].created);
		for (size_t k = 0; k < v[i].nlayers; k++)
			free(v[i].layers[k]);
		free(v[i].layers);
		free(v[i].flat);
	}
}

int img_list(const char *store, struct img_info **out, size_t *n, struct kv_err **err)
{
	*out = NULL;
	*n = 0;
	cleanup_close int lock = store_open(store, LOCK_SH, err);
	char **ids = NULL;
	size_t nids = 0;
	if (lock < 0 || store_ids(store, &ids, &nids, err) < 0)
		return -1;
	struct img_info *v = kv_malloc0((nids + 1) * sizeof(*v));
	int rc = 0;
	for (size_t i = 0; i < nids && rc == 0; i++) {
		struct store_record r;
		rc = store_record_read(store, ids[i], &r, err);
		if (rc < 0)
			break;
		v[i] = r.info;
		r.info = (struct img_info){0};
		store_record_free(&r);
		*n = i + 1;
		for (size_t k = 0; k < v[i].nlayers; k++) {
			cleanup_free char *p = store_layer_path(store, v[i].layers[k]);
			struct stat st;
			if (stat(p, &st) == 0)
				v[i].size += (uint64_t)st.st_size;
		}
	}
	store_ids_free(ids, nids);
	if (rc < 0) {
		img_info_free(v, *n);
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}

int store_resolve(const char *store, const char *ref, char id[IMG_ID_LEN + 1], struct kv_err **err)
{
	char **ids = NULL;
	size_t nids = 0;
	if (store_ids(store, &ids, &nids, err) < 0)
		return -1;
	const char *want = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
	int found = -1, prefix = -1, nprefix = 0;
	for (size_t i = 0; i < nids && found < 0; i++) {
		struct store_record r;
		if (store_record_read(store, ids[i], &r, err) < 0) {
			store_ids_free(ids, nids);
			return -1;
		}
		if (*r.info.name && strcmp(r.info.name, ref) == 0)
			found = (int)i;
		else if (*want && strncmp(ids[i], want, strlen(want)) == 0)
			prefix = (int)i, nprefix++;
		store_record_free(&r);
	}
	if (found < 0 && nprefix == 1)
		found = prefix;
	int rc = 0;
	if (found < 0)
		rc = nprefix > 1
			 ? kv_err_plain(err, EINVAL, "image %s: more than one image matches", ref)
			 : kv_err_plain(err, ENOENT, "image %s: no such image", ref);
	else
		snprintf(id, IMG_ID_LEN + 1, "%s", ids[found]);
	store_ids_free(ids, nids);
	return rc;
}

int img_remove(const char *store, const char *ref, char id[IMG_ID_LEN + 1], struct kv_err **err)
{
	cleanup_close int lock = store_open(store, LOCK_EX, err);
	if (lock < 0 || store_resolve(store, ref, id, err) < 0)
		return -1;
	cleanup_free char *p = kv_asprintf("%s/%s/%s.json", store, STORE_IMAGES, id);
	if (unlink(p) < 0)
		return kv_err_make(err, errno, "image %s: remove %s", ref, p);
	return 0;
}

static bool referenced(char **refs, size_t n, const char *hex)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(refs[i] + 7, hex) == 0)
			return true;
	return false;
}

static int prune_layers(const char *store, char **refs, size_t nrefs, img_prune_cb cb, void *ctx,
			struct kv_err **err)
{
	cleanup_free char *dir = kv_asprintf("%s/%s", store, STORE_LAYERS);
	struct dirent **list = NULL;
	int cnt = scandir(dir, &list, NULL, alphasort);
	if (cnt < 0)
		return kv_err_make(err, errno, "image store: %s", dir);
	int rc = 0;
	for (int i = 0; i < cnt; i++) {
		const char *d = list[i]->d_name;
		cleanup_free char *hex = kv_strdup(d), *digest = NULL;
		char *dot = strrchr(hex, '.');
		if (dot)
			*dot = '\0';
		digest = kv_asprintf("sha256:%s", hex);
		if (rc == 0 && dot && strcmp(dot + 1, "erofs") == 0 && img_digest_valid(digest) &&
		    !referenced(refs, nrefs, hex)) {
			cleanup_free char *p = kv_asprintf("%s/%s", dir, d);
			struct stat st;
			uint64_t size = stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
			if (unlink(p) < 0)
				rc = kv_err_make(err, errno, "prune: remove %s", p);
			else if (cb)
				cb(digest, size, ctx);
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

/* The /etc deltas of layers no image references (and leftovers: *.tmp). */
static int prune_etc(const char *store, char **refs, size_t nrefs, struct kv_err **err)
{
	cleanup_free char *dir = kv_asprintf("%s/%s", store, STORE_ETC);
	struct dirent **list = NULL;
	int cnt = scandir(dir, &list, NULL, alphasort);
	if (cnt < 0)
		return kv_err_make(err, errno, "image store: %s", dir);
	int rc = 0;
	for (int i = 0; i < cnt; i++) {
		const char *d = list[i]->d_name;
		size_t l = strlen(d);
		bool keep = strcmp(d, ".") == 0 || strcmp(d, "..") == 0;
		if (!keep && l == SHA256_HEX_LEN + 5 && strcmp(d + SHA256_HEX_LEN, ".json") == 0) {
			cleanup_free char *hex = kv_asprintf("%.*s", SHA256_HEX_LEN, d);
			keep = referenced(refs, nrefs, hex);
		}
		cleanup_free char *p = kv_asprintf("%s/%s", dir, d);
		if (rc == 0 && !keep && unlink(p) < 0 && errno != ENOENT)
			rc = kv_err_make(err, errno, "prune: remove %s", p);
		free(list[i]);
	}
	free(list);
	return rc;
}

int img_prune(const char *store, img_prune_cb cb, void *ctx, struct kv_err **err)
{
	cleanup_close int lock = store_open(store, LOCK_EX, err);
	char **ids = NULL;
	size_t nids = 0;
	if (lock < 0 || store_ids(store, &ids, &nids, err) < 0)
		return -1;
	char **refs = NULL;
	size_t nrefs = 0;
	int rc = 0;
	for (size_t i = 0; i < nids && rc == 0; i++) {
		struct store_record r;
		rc = store_record_read(store, ids[i], &r, err);
		if (rc < 0)
			break;
		refs = realloc(refs, (nrefs + r.info.nlayers + 2) * sizeof(char *));
		if (!refs)
			abort();
		for (size_t k = 0; k < r.info.nlayers; k++)
			refs[nrefs++] = steal_ptr(r.info.layers[k]);
		if (r.info.flat)
			refs[nrefs++] = steal_ptr(r.info.flat);
		store_record_free(&r);
	}
	if (rc == 0)
		rc = prune_layers(store, refs, nrefs, cb, ctx, err);
	if (rc == 0)
		rc = prune_etc(store, refs, nrefs, err);
	/* What a killed import left (no import runs: the lock is ours). */
	cleanup_free char *tmp = kv_asprintf("%s/%s", store, STORE_TMP);
	cleanup_close int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rc == 0 && tfd >= 0) {
		rc = img_rm_tree(AT_FDCWD, tmp, err);
		if (rc == 0 && mkdir(tmp, 0700) < 0)
			rc = kv_err_make(err, errno, "image store: mkdir %s", tmp);
	}
	for (size_t i = 0; i < nrefs; i++)
		free(refs[i]);
	free(refs);
	store_ids_free(ids, nids);
	return rc;
}
