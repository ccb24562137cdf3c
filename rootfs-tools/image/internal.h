/* SPDX-License-Identifier: Apache-2.0 */
/* rootfs-tools/image/: what the library's files share (and its unit tests use). */
#ifndef KV_IMAGE_INTERNAL_H
#define KV_IMAGE_INTERNAL_H

#include "rootfs-tools/image/image.h"

#include <sys/types.h>

/* ---------------------------------------------------------------- sha256 */
#define SHA256_HEX_LEN 64
struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Finish and write the digest as lowercase hex (the state is spent). */
void sha256_hex(struct sha256 *s, char out[SHA256_HEX_LEN + 1]);

/* "sha256:<64 lowercase hex>" */
bool img_digest_valid(const char *digest);

/* ---------------------------------------------------------------- layers */

/* What one import may use, counted across all of its layers. */
struct img_limits {
	uint64_t max_size, max_entries;
	uint64_t size;	   /* uncompressed bytes read */
	uint64_t declared; /* sum of the entries' declared sizes */
	uint64_t entries;
};

/* The layer blob's bytes as stored (maybe compressed): like read(2). */
typedef ssize_t (*img_read_fn)(void *ctx, void *buf, size_t n);

/*
 * Decompress (gzip, zstd, ... or none) and extract one layer tar into the
 * directory stagefd, hashing the uncompressed stream; fails unless its
 * sha256 is diff_id. Whiteouts become overlayfs whiteouts (0/0 character
 * devices) and opaque directories (trusted.overlay.opaque=y). Errors name
 * the layer and the entry.
 */
int img_layer_extract(img_read_fn rd, void *rdctx, const char *diff_id, int stagefd,
		      struct img_limits *lim, struct kv_err **err) KV_WUR;

/* mkfs.erofs OUT DIR, uncompressed (for DAX), times and owners kept. */
int img_mkfs_erofs(const char *dir, const char *out, const char *diff_id,
		   struct kv_err **err) KV_WUR;

/* rm -rf NAME under dirfd, never following a symlink; ENOENT is success. */
int img_rm_tree(int dirfd, const char *name, struct kv_err **err) KV_WUR;

/* flatten.c: merge the extracted layer in layer into the tree flat (overlay
 * rules: whiteouts remove, opaque directories replace; entries are moved). */
int img_tree_merge(int flat, int layer, struct kv_err **err) KV_WUR;
/* The flat image's name: sha256 of the diff_ids it holds, in order. */
void img_chain_id(char *const *diff_ids, size_t n, char out[SHA256_HEX_LEN + 1]);

/* ------------------------------------------------------- /etc (etc.c, user.c) */

/* /etc/passwd or /etc/group: what a layer does to it (a delta), or what the
 * image has (the layers folded, base first; SAME there means NONE). */
enum img_etc_state {
	IMG_ETC_SAME, /* a delta leaving the file as the layers below have it */
	IMG_ETC_NONE, /* no such file (or a whiteout, an opaque /etc) */
	IMG_ETC_FILE, /* a regular file: text (NUL-terminated), len bytes */
	IMG_ETC_BAD,  /* there, but not one kvrun reads: text says why */
};
#define IMG_ETC_MAX (256u << 10)
struct img_etc_file {
	enum img_etc_state state;
	char *text;
	size_t len;
};
/* What a layer's /etc is: none (the layers below decide), a directory
 * (merged with a directory below, hiding anything else), or not a directory. */
enum img_etc_dir { IMG_ETC_DIR_SAME, IMG_ETC_DIR_DIR, IMG_ETC_DIR_OTHER };
struct img_etc {
	struct img_etc_file passwd, group;
	enum img_etc_dir dir; /* a delta's /etc; folded, the image's so far */
};
/* What the extracted layer in stagefd (overlay form) does to the two files. */
int img_etc_scan(int stagefd, struct img_etc *delta, struct kv_err **err) KV_WUR;
/* delta (one layer's) over acc (the layers below it). */
void img_etc_apply(struct img_etc *acc, const struct img_etc *delta);
void img_etc_free(struct img_etc *e);

/*
 * The image config's User ("", uid, uid:gid, name, name:group, uid:group,
 * name:gid) resolved through the image's /etc/passwd and /etc/group as
 * Docker does: a name's uid and primary gid from passwd, a group's gid
 * from group; with no group given, the gids of the groups listing the
 * user by name in *gids (n of them, malloc'd). etc NULL: an image record
 * from before kvrun kept them; a name is refused, asking for a re-import.
 */
int img_user_resolve(const char *user, const struct img_etc *etc, uint32_t *uid, uint32_t *gid,
		     uint32_t **gids, size_t *ngids, struct kv_err **err) KV_WUR;

/* --------------------------------------------------------------- sources */

/* An archive file (any libarchive filter, tar format) or a directory. */
struct img_src {
	char *path;
	bool is_dir;
};
/* Read the member NAME (a cleaned relative path) whole, at most max bytes. */
int img_src_read(const struct img_src *s, const char *name, size_t max, char **buf, size_t *len,
		 struct kv_err **err) KV_WUR;
/* Call fn once for each member in names[0..n) (cleaned relative paths), in
 * the source's order, with a reader for its bytes; fails if one is missing. */
typedef int (*img_member_fn)(size_t i, img_read_fn rd, void *rdctx, void *ctx, struct kv_err **err);
int img_src_each(const struct img_src *s, char *const *names, size_t n, img_member_fn fn, void *ctx,
		 struct kv_err **err) KV_WUR;

/* -------------------------------------------------------------- manifest */

/* An image as its archive describes it. */
struct img_manifest {
	char *name;	     /* tag or ref name, NULL if none */
	char *config_path;   /* member holding the config */
	char *config_digest; /* expected sha256 of the config, NULL if none given */
	size_t nlayers;
	char **layer_paths; /* members holding the layer blobs, lowest first */
	char *manifest;	    /* the manifest text as found (JSON) */
};
void img_manifest_free(struct img_manifest *m);
/* manifest.json (docker-archive) if there is one, else index.json (OCI). */
int img_manifest_load(const struct img_src *s, struct img_manifest *m, struct kv_err **err) KV_WUR;

struct img_config {
	size_t ndiff;
	char **diff_ids;
	char *created;
};
void img_config_free(struct img_config *c);
int img_config_parse(const char *text, struct img_config *c, struct kv_err **err) KV_WUR;

#endif
