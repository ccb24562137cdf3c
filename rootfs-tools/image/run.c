/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What running an image takes: its command, environment, working
 * directory, user and ports from the image config's "config" object (the
 * OCI image spec's conversion to a runtime config), the user resolved in
 * the image's /etc/passwd and /etc/group (user.c), and its layer images in
 * the store, base first. The config was checked at import (its digest is
 * the image id); here only the fields used are read, each checked for type.
 */
#include "rootfs-tools/image/store.h"

#include <string.h>
#include <sys/file.h>
#include <yajl/yajl_tree.h>

static int strv_of(yajl_val cfg, const char *key, char ***v, size_t *n, struct kv_err **err)
{
	yajl_val a = kv_jget(cfg, key);
	if (!a || YAJL_IS_NULL(a))
		return 0;
	if (!YAJL_IS_ARRAY(a))
		return kv_err_plain(err, EINVAL, "image config: config.%s is not an array", key);
	size_t len = YAJL_GET_ARRAY(a)->len;
	*v = realloc(*v, (*n + len + 1) * sizeof(char *));
	if (!*v)
		abort();
	for (size_t i = 0; i < len; i++) {
		yajl_val s = YAJL_GET_ARRAY(a)->values[i];
		if (!YAJL_IS_STRING(s))
			return kv_err_plain(err, EINVAL,
					    "image config: config.%s[%zu] is not a string", key, i);
		(*v)[(*n)++] = kv_strdup(YAJL_GET_STRING(s));
		(*v)[*n] = NULL;
	}
	return 0;
}

static int str_of(yajl_val cfg, const char *key, char **out, struct kv_err **err)
{
	yajl_val s = kv_jget(cfg, key);
	if (!s || YAJL_IS_NULL(s))
		return 0;
	if (!YAJL_IS_STRING(s))
		return kv_err_plain(err, EINVAL, "image config: config.%s is not a string", key);
	if (*YAJL_GET_STRING(s))
		*out = kv_strdup(YAJL_GET_STRING(s));
	return 0;
}

/* ExposedPorts {"80/tcp": {}, ...}: the keys, joined by ",". */
static int ports_of(yajl_val cfg, char **out, struct kv_err **err)
{
	yajl_val p = kv_jget(cfg, "ExposedPorts");
	if (!p || YAJL_IS_NULL(p))
		return 0;
	if (!YAJL_IS_OBJECT(p))
		return kv_err_plain(err, EINVAL,
				    "image config: config.ExposedPorts is not an object");
	size_t len = YAJL_GET_OBJECT(p)->len, sz = 1;
	for (size_t i = 0; i < len; i++)
		sz += strlen(YAJL_GET_OBJECT(p)->keys[i]) + 1;
	if (!len)
		return 0;
	char *s = kv_malloc0(sz);
	for (size_t i = 0; i < len; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, YAJL_GET_OBJECT(p)->keys[i]);
	}
	*out = s;
	return 0;
}

static int run_fill(const char *store, const struct store_record *rec, struct img_run *r,
		    struct kv_err **err)
{
	snprintf(r->id, sizeof(r->id), "%s", rec->info.id);
	r->name = kv_strdup(rec->info.name);
	cleanup_yajl_val yajl_val root = kv_json_parse(rec->config, "image config", err);
	if (!root)
		return -1;
	yajl_val cfg = kv_jget(root, "config");
	if (cfg && !YAJL_IS_NULL(cfg) && !YAJL_IS_OBJECT(cfg))
		return kv_err_plain(err, EINVAL, "image config: config is not an object");
	if (cfg && YAJL_IS_OBJECT(cfg) &&
	    (strv_of(cfg, "Entrypoint", &r->args, &r->nargs, err) < 0 ||
	     strv_of(cfg, "Cmd", &r->args, &r->nargs, err) < 0 ||
	     strv_of(cfg, "Env", &r->env, &r->nenv, err) < 0 ||
	     str_of(cfg, "WorkingDir", &r->cwd, err) < 0 ||
	     str_of(cfg, "User", &r->user, err) < 0 ||
	     str_of(cfg, "StopSignal", &r->stop_signal, err) < 0 ||
	     ports_of(cfg, &r->exposed_ports, err) < 0))
		return -1;
	if (!r->cwd)
		r->cwd = kv_strdup("/");
	if (!r->user)
		r->user = kv_strdup("");
	if (img_user_resolve(r->user, rec->has_etc ? &rec->etc : NULL, &r->uid, &r->gid, &r->gids,
			     &r->ngids, err) < 0)
		return -1;
	/* The flat image of the lowest layers, where the image has one, then the rest. */
	r->layers = kv_malloc0((rec->info.nlayers + 2) * sizeof(char *));
	size_t from = 0;
	if (rec->info.flat) {
		r->layers[r->nlayers++] = store_layer_path(store, rec->info.flat);
		from = rec->info.nflat;
	}
	for (size_t i = from; i < rec->info.nlayers; i++)
		r->layers[r->nlayers++] = store_layer_path(store, rec->info.layers[i]);
	return 0;
}

int img_run_info(const char *store, const char *ref, struct img_run *r, struct kv_err **err)
{
	memset(r, 0, sizeof(*r));
	char id[IMG_ID_LEN + 1];
	cleanup_close int lock = store_open(store, LOCK_SH, err);
	if (lock < 0 || store_resolve(store, ref, id, err) < 0)
		return -1;
	struct store_record rec;
	if (store_record_read(store, id, &rec, err) < 0)
		return -1;
	int rc = run_fill(store, &rec, r, err);
	store_record_free(&rec);
	if (rc < 0)
		img_run_free(r);
	return rc;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void img_run_free(struct img_run *r)
{
	free(r->name);
	strv_free(r->args, r->nargs);
	strv_free(r->env, r->nenv);
	free(r->cwd);
	free(r->user);
	free(r->gids);
	free(r->exposed_ports);
	free(r->stop_signal);
	strv_free(r->layers, r->nlayers);
	memset(r, 0, sizeof(*r));
}
