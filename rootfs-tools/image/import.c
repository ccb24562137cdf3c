/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun image import: manifest and config, then each layer not yet in the
 * store extracted into tmp/import.XXXXXX/layer-N, read for what it does to
 * /etc/passwd and /etc/group (etc.c) and made an erofs image there; only
 * when every layer has passed are the images renamed into layers/, their
 * /etc deltas written to layer-etc/, and the record written (with the two
 * files as the image's top shows them), so a failed import leaves nothing.
 * A stored layer with no delta in layer-etc/ (stored by a kvrun before
 * there were deltas) is extracted again for its /etc alone. An
 * image of more layers than a VM takes also gets its lowest layers as one
 * image (import_flatten, flatten.c), staged first and renamed into
 * layers/ with the others.
 */
#include "rootfs-tools/image/internal.h"
#include "rootfs-tools/image/store.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define CONFIG_MAX (4u << 20)

struct import {
	const char *store;
	char *tmp; /* tmp/import.XXXXXX */
	int tmpfd;
	struct img_limits lim;
	struct img_config cfg;
	size_t *job_layer; /* job -> layer index */
	bool *job_stored;  /* the job's layer is in the store: /etc only */
	bool *job_known;   /* ... and so is its /etc delta: not read at all */
	struct img_etc *job_etc;
	size_t njobs;
	size_t *x_job;	  /* the layers read from the source -> job */
	size_t flat_next; /* flatten: the layer being merged */
};

static int build_layer(size_t x, img_read_fn rd, void *rdctx, void *ctx, struct kv_err **err)
{
	struct import *im = ctx;
	size_t job = im->x_job[x];
	const char *diff = im->cfg.diff_ids[im->job_layer[job]];
	char stage[32];
	snprintf(stage, sizeof(stage), "layer-%zu", job);
	if (mkdirat(im->tmpfd, stage, 0755) < 0)
		return kv_err_make(err, errno, "mkdir %s/%s", im->tmp, stage);
	cleanup_close int sfd = openat(im->tmpfd, stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return kv_err_make(err, errno, "open %s/%s", im->tmp, stage);
	if (img_layer_extract(rd, rdctx, diff, sfd, &im->lim, err) < 0)
		return -1;
	if (img_etc_scan(sfd, &im->job_etc[job], err) < 0)
		return kv_err_wrap(err, "layer %.19s", diff);
	if (im->job_stored[job])
		return img_rm_tree(im->tmpfd, stage, err);
	cleanup_free char *dir = kv_asprintf("%s/%s", im->tmp, stage);
	cleanup_free char *out = kv_asprintf("%s/%s.erofs", im->tmp, diff + 7);
	if (img_mkfs_erofs(dir, out, diff, err) < 0)
		return kv_err_wrap(err, "layer %.19s", diff);
	return img_rm_tree(im->tmpfd, stage, err);
}

/*
 * The layers, once each (a job), and which are stored; the members to read
 * in the source (*names, the count returned): every layer but those stored
 * with their /etc delta (store_layer_etc_read).
 */
static size_t layer_jobs(struct import *im, const struct img_manifest *m, char ***names)
{
	size_t n = 0, nx = 0;
	cleanup_free char **paths = kv_malloc0((m->nlayers + 1) * sizeof(char *));
	*names = kv_malloc0((m->nlayers + 1) * sizeof(char *));
	im->job_layer = kv_malloc0((m->nlayers + 1) * sizeof(size_t));
	im->job_stored = kv_malloc0((m->nlayers + 1) * sizeof(bool));
	im->job_known = kv_malloc0((m->nlayers + 1) * sizeof(bool));
	im->job_etc = kv_malloc0((m->nlayers + 1) * sizeof(struct img_etc));
	im->x_job = kv_malloc0((m->nlayers + 1) * sizeof(size_t));
	for (size_t i = 0; i < m->nlayers; i++) {
		const char *diff = im->cfg.diff_ids[i];
		cleanup_free char *p = store_layer_path(im->store, diff);
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(im->cfg.diff_ids[im->job_layer[k]], diff) == 0 ||
			      strcmp(paths[k], m->layer_paths[i]) == 0;
		if (dup)
			continue;
		paths[n] = m->layer_paths[i];
		im->job_stored[n] = access(p, F_OK) == 0;
		im->job_known[n] = im->job_stored[n] &&
				   store_layer_etc_read(im->store, diff, &im->job_etc[n]) == 0;
		if (!im->job_known[n]) {
			(*names)[nx] = m->layer_paths[i];
			im->x_job[nx++] = n;
		}
		im->job_layer[n++] = i;
	}
	im->njobs = n;
	return nx;
}

/* The image's /etc files: each layer's, base first, over none. */
static int etc_fold(struct import *im, struct img_etc *out, struct kv_err **err)
{
	*out = (struct img_etc){{IMG_ETC_NONE, NULL, 0}, {IMG_ETC_NONE, NULL, 0}, IMG_ETC_DIR_SAME};
	for (size_t i = 0; i < im->cfg.ndiff; i++) {
		size_t k = 0;
		while (k < im->njobs &&
		       strcmp(im->cfg.diff_ids[im->job_layer[k]], im->cfg.diff_ids[i]) != 0)
			k++;
		if (k == im->njobs) {
			img_etc_free(out);
			return kv_err_plain(err, EINVAL,
					    "layer %zu (%.19s): its member is another layer's", i,
					    im->cfg.diff_ids[i]);
		}
		img_etc_apply(out, &im->job_etc[k]);
	}
	return 0;
}

/* A name belongs to one image: a later import takes it from an earlier one. */
static int take_name(const char *store, const char *name, const char *id, struct kv_err **err)
{
	char **ids = NULL;
	size_t n = 0;
	if (store_ids(store, &ids, &n, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct store_record r;
		if (strcmp(ids[i], id) == 0)
			continue;
		if (store_record_read(store, ids[i], &r, err) < 0) {
			kv_err_free(*err); /* a broken record holds no name to take */
			*err = NULL;
			continue;
		}
		if (strcmp(r.info.name, name) == 0) {
			r.info.name[0] = '\0';
			rc = store_record_write(store, &r, err);
		}
		store_record_free(&r);
	}
	store_ids_free(ids, n);
	return rc;
}

/* Config, layers (staged), then into place. */
static int import_layers(struct import *im, const struct img_src *src, const struct img_manifest *m,
			 struct kv_err **err)
{
	cleanup_free char **names = NULL;
	size_t n = layer_jobs(im, m, &names);
	if (img_src_each(src, names, n, build_layer, im, err) < 0)
		return -1;
	for (size_t x = 0; x < n; x++) {
		size_t k = im->x_job[x];
		const char *diff = im->cfg.diff_ids[im->job_layer[k]];
		cleanup_free char *from = kv_asprintf("%s/%s.erofs", im->tmp, diff + 7);
		cleanup_free char *to = store_layer_path(im->store, diff);
		if (!im->job_stored[k] && rename(from, to) < 0)
			return kv_err_make(err, errno, "rename %s to %s", from, to);
		/* After the image: a delta without its layer would be taken for one. */
		if (store_layer_etc_write(im->store, diff, &im->job_etc[k], err) < 0)
			return kv_err_wrap(err, "layer %.19s", diff);
	}
	return 0;
}

/* ------------------------------------------------------------- flatten */

/* One lower layer: extracted into flat-layer, merged into flat, removed. */
static int flatten_layer(size_t job, img_read_fn rd, void *rdctx, void *ctx, struct kv_err **err)
{
	struct import *im = ctx;
	const char *diff = im->cfg.diff_ids[im->flat_next];
	if (mkdirat(im->tmpfd, "flat-layer", 0755) < 0)
		return kv_err_make(err, errno, "mkdir %s/flat-layer", im->tmp);
	cleanup_close int lfd = openat(im->tmpfd, "flat-layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_close int ffd = openat(im->tmpfd, "flat", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || ffd < 0)
		return kv_err_make(err, errno, "open %s/flat", im->tmp);
	/* The layers were counted once already: limits of their own here. */
	struct img_limits lim = {.max_size = im->lim.max_size, .max_entries = im->lim.max_entries};
	if (img_layer_extract(rd, rdctx, diff, lfd, &lim, err) < 0 ||
	    img_tree_merge(ffd, lfd, err) < 0)
		return kv_err_wrap(err, "flattening layer %.19s", diff);
	return img_rm_tree(im->tmpfd, "flat-layer", err);
}

/*
 * More layers than a VM takes: the lowest ones (all but the top
 * IMG_VM_LAYERS - 1) as one erofs image, named by their chain, made once
 * and shared by every image with that base. *flat gets its digest.
 */
static int import_flatten(struct import *im, const struct img_src *src,
			  const struct img_manifest *m, char **flat, size_t *nflat,
			  struct kv_err **err)
{
	size_t k = m->nlayers - (IMG_VM_LAYERS - 1);
	char chain[SHA256_HEX_LEN + 1];
	img_chain_id(im->cfg.diff_ids, k, chain);
	*flat = kv_asprintf("sha256:%s", chain);
	*nflat = k;
	cleanup_free char *to = store_layer_path(im->store, *flat);
	if (access(to, F_OK) == 0)
		return 0;
	if (mkdirat(im->tmpfd, "flat", 0755) < 0)
		return kv_err_make(err, errno, "mkdir %s/flat", im->tmp);
	for (size_t i = 0; i < k; i++) {
		im->flat_next = i;
		char *name = m->layer_paths[i];
		if (img_src_each(src, &name, 1, flatten_layer, im, err) < 0)
			return -1;
	}
	cleanup_free char *dir = kv_asprintf("%s/flat", im->tmp);
	cleanup_free char *out = kv_asprintf("%s/%s.erofs", im->tmp, chain);
	if (img_mkfs_erofs(dir, out, *flat, err) < 0)
		return kv_err_wrap(err, "the flattened layers");
	return img_rm_tree(im->tmpfd, "flat", err);
}

/* The flat image import_flatten made (if it made one) into the store. */
static int flat_commit(struct import *im, const char *flat, struct kv_err **err)
{
	cleanup_free char *from = kv_asprintf("%s/%s.erofs", im->tmp, flat + 7);
	cleanup_free char *to = store_layer_path(im->store, flat);
	if (access(from, F_OK) == 0 && rename(from, to) < 0)
		return kv_err_make(err, errno, "rename %s to %s", from, to);
	return 0;
}

static int import_config(struct import *im, const struct img_src *src, const struct img_manifest *m,
			 char **config, char id[IMG_ID_LEN + 1], struct kv_err **err)
{
	size_t len;
	if (img_src_read(src, m->config_path, CONFIG_MAX, config, &len, err) < 0)
		return -1;
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, *config, len);
	sha256_hex(&h, id);
	if (m->config_digest && strcmp(m->config_digest + 7, id) != 0)
		return kv_err_plain(err, EINVAL, "config %s: its content is sha256:%s",
				    m->config_digest, id);
	if (img_config_parse(*config, &im->cfg, err) < 0)
		return -1;
	if (im->cfg.ndiff != m->nlayers)
		return kv_err_plain(err, EINVAL,
				    "the manifest has %zu layers, the config %zu diff_ids",
				    m->nlayers, im->cfg.ndiff);
	return 0;
}

static int import_run(struct import *im, const char *path, const struct img_import_opts *o,
		      char id[IMG_ID_LEN + 1], char **name_out, struct kv_err **err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return kv_err_make(err, errno, "%s", path);
	struct img_src src = {(char *)path, S_ISDIR(st.st_mode)};
	struct img_manifest m;
	struct store_record r = {0};
	int rc = img_manifest_load(&src, &m, err);
	if (rc == 0)
		rc = import_config(im, &src, &m, &r.config, id, err);
	if (rc == 0 && m.nlayers > IMG_VM_LAYERS)
		rc = import_flatten(im, &src, &m, &r.info.flat, &r.info.nflat, err);
	if (rc == 0)
		rc = import_layers(im, &src, &m, err);
	if (rc == 0 && r.info.flat)
		rc = flat_commit(im, r.info.flat, err);
	if (rc == 0)
		rc = etc_fold(im, &r.etc, err);
	r.has_etc = rc == 0;
	if (rc == 0) {
		snprintf(r.info.id, sizeof(r.info.id), "%s", id);
		r.info.name = kv_strdup(o->name ?: m.name ?: "");
		if (!*r.info.name) {
			free(r.info.name);
			r.info.name = kv_asprintf("%.12s", id);
		}
		r.info.created = kv_strdup(im->cfg.created);
		r.info.nlayers = im->cfg.ndiff;
		r.info.layers = im->cfg.diff_ids;
		r.manifest = steal_ptr(m.manifest);
		r.imported = (long long)time(NULL);
		rc = take_name(im->store, r.info.name, id, err);
		if (rc == 0)
			rc = store_record_write(im->store, &r, err);
		if (rc == 0 && name_out)
			*name_out = kv_strdup(r.info.name);
		r.info.layers = NULL;
		r.info.nlayers = 0;
	}
	store_record_free(&r);
	img_manifest_free(&m);
	return rc;
}

int img_import(const char *store, const char *src, const struct img_import_opts *o,
	       char id[IMG_ID_LEN + 1], char **name_out, struct kv_err **err)
{
	cleanup_close int lock = store_open(store, LOCK_EX, err);
	if (lock < 0)
		return -1;
	struct import im = {.store = store, .tmpfd = -1};
	im.lim.max_size = o->max_size ?: IMG_MAX_SIZE_DEFAULT;
	im.lim.max_entries = o->max_entries ?: IMG_MAX_ENTRIES_DEFAULT;
	im.tmp = kv_asprintf("%s/%s/import.XXXXXX", store, STORE_TMP);
	if (!mkdtemp(im.tmp)) {
		int e = errno;
		free(im.tmp);
		return kv_err_make(err, e, "image store: mkdtemp");
	}
	im.tmpfd = open(im.tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = im.tmpfd < 0 ? kv_err_make(err, errno, "open %s", im.tmp)
			      : import_run(&im, src, o, id, name_out, err);
	if (rc < 0)
		kv_err_wrap(err, "import %s", src);
	if (im.tmpfd >= 0)
		close(im.tmpfd);
	struct kv_err *rm_err = NULL;
	if (img_rm_tree(AT_FDCWD, im.tmp, &rm_err) < 0) {
		kv_warn("image store: removing %s: %s", im.tmp, rm_err->msg);
		kv_err_free(rm_err);
	}
	free(im.tmp);
	free(im.job_layer);
	free(im.job_stored);
	free(im.job_known);
	free(im.x_job);
	for (size_t k = 0; im.job_etc && k < im.njobs; k++)
		img_etc_free(&im.job_etc[k]);
	free(im.job_etc);
	img_config_free(&im.cfg);
	return rc;
}
