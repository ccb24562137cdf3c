/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rootfs-tools/image/ — the OCI image store (`kvrun image`): import a
 * docker-archive, an oci-archive or an OCI image layout; each layer becomes
 * one uncompressed erofs image named after its verified diff_id, stored
 * once and shared by every image that has it.
 *
 * The store (IMG_STORE_DEFAULT, --store, $KVRUN_IMAGE_STORE):
 *   layers/<diff_id hex>.erofs   one per layer, read-only once in place
 *   layers/<chain hex>.erofs     an image's lowest layers flattened (IMG_VM_LAYERS)
 *   images/<image id hex>.json   one per image: name, config, manifest, layers,
 *                                its /etc/passwd and /etc/group (for a named User)
 *   layer-etc/<diff_id hex>.json what the layer does to /etc/passwd, /etc/group
 *   tmp/                         0700: staging of imports in progress
 *   lock                         flock: import, rm and prune exclusive, ls shared
 * A file in layers/ or images/ is complete: it is renamed into place only
 * when all of an import has succeeded.
 */
#ifndef KV_IMAGE_H
#define KV_IMAGE_H

#include "lib/kv.h"

#define IMG_STORE_DEFAULT	"/var/lib/kvrun/images"
#define IMG_STORE_ENV		"KVRUN_IMAGE_STORE"
#define IMG_MAX_SIZE_DEFAULT	(8ull << 30) /* uncompressed layer data per image */
#define IMG_MAX_ENTRIES_DEFAULT 2000000ull   /* tar entries per image */
#define IMG_ID_LEN		64	     /* sha256 hex */
/* The layers a VM takes (the runtime's VM_LAYERS_MAX): an image with more has
 * its lowest layers flattened into one erofs image at import, so that it runs
 * with this many (the flat image, then the image's top IMG_VM_LAYERS - 1). */
#define IMG_VM_LAYERS 7

/* The store directory: flag if given, else $KVRUN_IMAGE_STORE, else the default. */
const char *img_store_path(const char *flag);

struct img_import_opts {
	const char *name; /* NULL: the archive's tag, else the short id */
	uint64_t max_size;
	uint64_t max_entries;
};

/* Import FILE (an archive) or DIR (an OCI layout or an unpacked docker-archive).
 * id gets the image id (sha256 of its config), *name_out (if asked) its name. */
int img_import(const char *store, const char *src, const struct img_import_opts *o,
	       char id[IMG_ID_LEN + 1], char **name_out, struct kv_err **err) KV_WUR;

struct img_info {
	char id[IMG_ID_LEN + 1];
	char *name;    /* "" when a later import took the name */
	char *created; /* the config's "created", or "" */
	size_t nlayers;
	char **layers; /* "sha256:<hex>" diff_ids, lowest first */
	uint64_t size; /* bytes of its layer images */
	char *flat;    /* "sha256:<chain hex>": layers[0..nflat) as one image, or NULL */
	size_t nflat;
};
int img_list(const char *store, struct img_info **out, size_t *n, struct kv_err **err) KV_WUR;
void img_info_free(struct img_info *v, size_t n);

/* Remove an image by name, id or unique id prefix (its layers stay until prune). */
int img_remove(const char *store, const char *ref, char id[IMG_ID_LEN + 1],
	       struct kv_err **err) KV_WUR;

/* Remove layers no image references (and leftovers of crashed imports);
 * cb (may be NULL) hears of each layer removed. */
typedef void (*img_prune_cb)(const char *diff_id, uint64_t bytes, void *ctx);
int img_prune(const char *store, img_prune_cb cb, void *ctx, struct kv_err **err) KV_WUR;

/* What running an image takes (kvrun image bundle), from its record and config. */
struct img_run {
	char id[IMG_ID_LEN + 1];
	char *name;
	char **args; /* Entrypoint then Cmd */
	size_t nargs;
	char **env; /* Env */
	size_t nenv;
	char *cwd;	   /* WorkingDir, "/" when unset */
	char *user;	   /* User, "" when unset */
	uint32_t uid, gid; /* User resolved in the image's /etc/passwd, /etc/group */
	uint32_t *gids;	   /* additionalGids: the groups listing a User given alone */
	size_t ngids;
	char *exposed_ports; /* ExposedPorts' keys joined by ",", or NULL */
	char *stop_signal;   /* StopSignal, or NULL */
	char **layers;	     /* the layer images' paths in the store, base first */
	size_t nlayers;
};
/* Fails (before anything is made) on a User that does not resolve, naming it. */
int img_run_info(const char *store, const char *ref, struct img_run *r, struct kv_err **err) KV_WUR;
void img_run_free(struct img_run *r);

/*
 * The check every tar entry name (and hard link target) passes before it is
 * used: a name of len bytes with no NUL, at most PATH_MAX - 1 bytes, no
 * component over NAME_MAX, not absolute, no "..". *out gets it normalized
 * (no "./", no empty components; "" for the layer's root).
 */
int img_entry_path_clean(const char *name, size_t len, char **out, struct kv_err **err) KV_WUR;

#endif
