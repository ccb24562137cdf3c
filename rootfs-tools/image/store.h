/* SPDX-License-Identifier: Apache-2.0 */
/* rootfs-tools/image/store.c: the store's layout, lock and records. */
#ifndef KV_IMAGE_STORE_H
#define KV_IMAGE_STORE_H

#include "rootfs-tools/image/internal.h"

#define STORE_LAYERS "layers"
#define STORE_IMAGES "images"
#define STORE_TMP    "tmp"
#define STORE_ETC    "layer-etc" /* <diff_id hex>.json: what the layer does to /etc */

/* Create the layout where missing and take its lock (LOCK_EX or LOCK_SH): the fd. */
int store_open(const char *store, int lock, struct kv_err **err) KV_WUR;
char *store_layer_path(const char *store, const char *diff_id);

/* A layer's /etc delta (img_etc_scan), kept beside its erofs image so that
 * an import of an image on a stored layer need not extract it again. read:
 * 0, or -1 (no err) when there is none or it is not one (extract again). */
int store_layer_etc_read(const char *store, const char *diff_id, struct img_etc *d);
int store_layer_etc_write(const char *store, const char *diff_id, const struct img_etc *d,
			  struct kv_err **err) KV_WUR;

struct store_record {
	struct img_info info;
	char *config;	/* the image config, as imported */
	char *manifest; /* the manifest it came with */
	long long imported;
	bool has_etc;	    /* records before kvrun kept /etc lack it */
	struct img_etc etc; /* the image's /etc/passwd and /etc/group */
};
void store_record_free(struct store_record *r);
int store_record_write(const char *store, const struct store_record *r, struct kv_err **err) KV_WUR;
int store_record_read(const char *store, const char *id, struct store_record *r,
		      struct kv_err **err) KV_WUR;
/* The image ref names (name, id, or unique id prefix); the store locked by the caller. */
int store_resolve(const char *store, const char *ref, char id[IMG_ID_LEN + 1],
		  struct kv_err **err) KV_WUR;
int store_ids(const char *store, char ***ids, size_t *n, struct kv_err **err) KV_WUR;
void store_ids_free(char **ids, size_t n);

#endif
