/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an archive says it holds: docker-archive's manifest.json (the first
 * image in it), or an OCI layout's index.json, its manifest and config
 * blobs (blobs/sha256/<hex>, each checked against its digest); the image
 * config's rootfs.diff_ids. Every name taken from these files is cleaned
 * before it is looked up.
 */
#include "rootfs-tools/image/internal.h"

#include <string.h>
#include <yajl/yajl_tree.h>

#define JSON_MAX       (4u << 20)
#define ANN_REF_NAME   "org.opencontainers.image.ref.name"
#define MT_OCI_INDEX   "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

void img_manifest_free(struct img_manifest *m)
{
	free(m->name);
	free(m->config_path);
	free(m->config_digest);
	for (size_t i = 0; i < m->nlayers; i++)
		free(m->layer_paths[i]);
	free(m->layer_paths);
	free(m->manifest);
	memset(m, 0, sizeof(*m));
}

void img_config_free(struct img_config *c)
{
	for (size_t i = 0; i < c->ndiff; i++)
		free(c->diff_ids[i]);
	free(c->diff_ids);
	free(c->created);
	memset(c, 0, sizeof(*c));
}

static const char *str_at(yajl_val v, const char *k1, const char *k2)
{
	const char *path[] = {k1, k2, NULL};
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);
	return s ? YAJL_GET_STRING(s) : NULL;
}

static yajl_val arr_at(yajl_val v, const char *k1, const char *k2)
{
	const char *path[] = {k1, k2, NULL};
	return yajl_tree_get(v, path, yajl_t_array);
}

static int member_name(const char *what, const char *name, char **out, struct kv_err **err)
{
	if (!name)
		return kv_err_plain(err, EINVAL, "%s: missing", what);
	if (img_entry_path_clean(name, strlen(name), out, err) < 0 || !**out)
		return kv_err_wrap(err, "%s \"%s\"", what, name);
	return 0;
}

static int blob_path(const char *what, const char *digest, char **out, struct kv_err **err)
{
	if (!digest || !img_digest_valid(digest))
		return kv_err_plain(err, EINVAL, "%s: digest \"%s\" is not sha256:<hex>", what,
				    digest ? digest : "");
	*out = kv_asprintf("blobs/sha256/%s", digest + 7);
	return 0;
}

/* Read a blob and check it against its digest. */
static int blob_read(const struct img_src *s, const char *what, const char *digest, char **text,
		     struct kv_err **err)
{
	cleanup_free char *path = NULL;
	size_t len;
	if (blob_path(what, digest, &path, err) < 0 ||
	    img_src_read(s, path, JSON_MAX, text, &len, err) < 0)
		return -1;
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1];
	sha256_init(&h);
	sha256_update(&h, *text, len);
	sha256_hex(&h, hex);
	if (strcmp(hex, digest + 7) != 0)
		return kv_err_plain(err, EINVAL, "%s %s: its content is sha256:%s", what, digest,
				    hex);
	return 0;
}

static int docker_manifest(const char *text, struct img_manifest *m, struct kv_err **err)
{
	cleanup_yajl_val yajl_val root = kv_json_parse(text, "manifest.json", err);
	if (!root)
		return -1;
	if (!YAJL_IS_ARRAY(root) || YAJL_GET_ARRAY(root)->len == 0)
		return kv_err_plain(err, EINVAL, "manifest.json: not an array of images");
	yajl_val img = YAJL_GET_ARRAY(root)->values[0];
	if (member_name("manifest.json: Config", str_at(img, "Config", NULL), &m->config_path,
			err) < 0)
		return -1;
	yajl_val tags = arr_at(img, "RepoTags", NULL);
	if (tags && YAJL_GET_ARRAY(tags)->len && YAJL_IS_STRING(YAJL_GET_ARRAY(tags)->values[0]))
		m->name = kv_strdup(YAJL_GET_STRING(YAJL_GET_ARRAY(tags)->values[0]));
	yajl_val layers = arr_at(img, "Layers", NULL);
	if (!layers)
		return kv_err_plain(err, EINVAL, "manifest.json: no Layers");
	m->nlayers = YAJL_GET_ARRAY(layers)->len;
	m->layer_paths = kv_malloc0((m->nlayers + 1) * sizeof(char *));
	for (size_t i = 0; i < m->nlayers; i++) {
		yajl_val l = YAJL_GET_ARRAY(layers)->values[i];
		if (member_name("manifest.json: Layers",
				YAJL_IS_STRING(l) ? YAJL_GET_STRING(l) : NULL, &m->layer_paths[i],
				err) < 0)
			return -1;
	}
	m->manifest = kv_strdup(text);
	return 0;
}

static int oci_image_manifest(const struct img_src *s, const char *digest, struct img_manifest *m,
			      struct kv_err **err)
{
	cleanup_free char *text = NULL;
	if (blob_read(s, "manifest", digest, &text, err) < 0)
		return -1;
	cleanup_yajl_val yajl_val root = kv_json_parse(text, "the image manifest", err);
	if (!root)
		return -1;
	if (blob_path("manifest: config", str_at(root, "config", "digest"), &m->config_path, err) <
	    0)
		return -1;
	m->config_digest = kv_strdup(str_at(root, "config", "digest"));
	yajl_val layers = arr_at(root, "layers", NULL);
	if (!layers)
		return kv_err_plain(err, EINVAL, "manifest %s: no layers", digest);
	m->nlayers = YAJL_GET_ARRAY(layers)->len;
	m->layer_paths = kv_malloc0((m->nlayers + 1) * sizeof(char *));
	for (size_t i = 0; i < m->nlayers; i++)
		if (blob_path("manifest: layer",
			      str_at(YAJL_GET_ARRAY(layers)->values[i], "digest", NULL),
			      &m->layer_paths[i], err) < 0)
			return -1;
	m->manifest = steal_ptr(text);
	return 0;
}

/* index.json, and nested indexes (one image per platform) to the first image. */
static int oci_manifest(const struct img_src *s, const char *text, struct img_manifest *m,
			struct kv_err **err)
{
	cleanup_free char *owned = NULL;
	for (int depth = 0; depth < 4; depth++) {
		cleanup_yajl_val yajl_val root = kv_json_parse(text, "index.json", err);
		if (!root)
			return -1;
		yajl_val mans = arr_at(root, "manifests", NULL);
		if (!mans || YAJL_GET_ARRAY(mans)->len == 0)
			return kv_err_plain(err, EINVAL, "index.json: no manifests");
		yajl_val d = YAJL_GET_ARRAY(mans)->values[0];
		const char *ref = str_at(d, "annotations", ANN_REF_NAME);
		if (ref && !m->name)
			m->name = kv_strdup(ref);
		const char *mt = str_at(d, "mediaType", NULL);
		cleanup_free char *digest = kv_strdup(str_at(d, "digest", NULL) ?: "");
		if (!mt || (strcmp(mt, MT_OCI_INDEX) != 0 && strcmp(mt, MT_DOCKER_LIST) != 0))
			return oci_image_manifest(s, digest, m, err);
		free(owned);
		owned = NULL;
		if (blob_read(s, "index", digest, &owned, err) < 0)
			return -1;
		text = owned;
	}
	return kv_err_plain(err, ELOOP, "index.json: indexes nested too deep");
}

int img_manifest_load(const struct img_src *s, struct img_manifest *m, struct kv_err **err)
{
	memset(m, 0, sizeof(*m));
	cleanup_free char *text = NULL;
	size_t len;
	cleanup_err struct kv_err *first = NULL;
	if (img_src_read(s, "manifest.json", JSON_MAX, &text, &len, &first) == 0)
		return docker_manifest(text, m, err);
	if (img_src_read(s, "index.json", JSON_MAX, &text, &len, err) < 0)
		return kv_err_wrap(err, "%s: neither a docker-archive (%s) nor an OCI layout",
				   s->path, first->msg);
	return oci_manifest(s, text, m, err);
}

int img_config_parse(const char *text, struct img_config *c, struct kv_err **err)
{
	memset(c, 0, sizeof(*c));
	cleanup_yajl_val yajl_val root = kv_json_parse(text, "the image config", err);
	if (!root)
		return -1;
	yajl_val ids = arr_at(root, "rootfs", "diff_ids");
	if (!ids)
		return kv_err_plain(err, EINVAL, "the image config: no rootfs.diff_ids");
	c->ndiff = YAJL_GET_ARRAY(ids)->len;
	c->diff_ids = kv_malloc0((c->ndiff + 1) * sizeof(char *));
	for (size_t i = 0; i < c->ndiff; i++) {
		yajl_val v = YAJL_GET_ARRAY(ids)->values[i];
		const char *d = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "";
		if (!img_digest_valid(d))
			return kv_err_plain(err, EINVAL,
					    "the image config: rootfs.diff_ids[%zu] \"%s\" is not "
					    "sha256:<hex>",
					    i, d);
		c->diff_ids[i] = kv_strdup(d);
	}
	c->created = kv_strdup(str_at(root, "created", NULL) ?: "");
	return 0;
}
