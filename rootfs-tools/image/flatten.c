/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flattening: the lowest layers of an image with more than a VM takes
 * (IMG_VM_LAYERS) merged into one tree, as overlayfs would show them, for
 * one erofs image. Each layer is extracted as usual (img_layer_extract: the
 * overlay form, whiteouts as 0/0 character devices, opaque directories
 * marked trusted.overlay.opaque) and then merged into the flat tree:
 *  - a whiteout removes what the tree has under its name, and is dropped;
 *  - an opaque directory replaces the tree's directory of that name;
 *  - a directory over a directory is merged into it (its owner, mode and
 *    mtime win); anything else replaces what the tree has.
 * Entries move by rename (the staging directories are on one file system),
 * so the hard links of a layer stay links. A subtree moved whole keeps no
 * whiteout and no opaque mark: nothing lies beneath it in the flat image.
 * Nothing here follows a symlink: every name is looked up with *at() calls
 * and O_NOFOLLOW beneath the two staging directories.
 */
#include "rootfs-tools/image/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define OVL_OPAQUE "trusted.overlay.opaque"

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

static bool is_opaque(int fd)
{
	char v = 0;
	return fgetxattr(fd, OVL_OPAQUE, &v, 1) == 1 && v == 'y';
}

static int open_dir(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The names in dfd (a snapshot: the directory changes as we go). */
static char **dir_names(int dfd, size_t *n, struct kv_err **err)
{
	int fd = dup(dfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		kv_err_make(err, errno, "flatten: opendir");
		return NULL;
	}
	rewinddir(d);
	char **v = NULL;
	*n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		v = realloc(v, (*n + 2) * sizeof(char *));
		if (!v)
			abort();
		v[(*n)++] = kv_strdup(de->d_name);
		v[*n] = NULL;
	}
	closedir(d);
	if (!v)
		v = kv_malloc0(sizeof(char *));
	return v;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Every child of dfd removed. */
static int clear_dir(int dfd, struct kv_err **err)
{
	size_t n;
	char **v = dir_names(dfd, &n, err);
	if (!v)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = img_rm_tree(dfd, v[i], err);
	names_free(v, n);
	return rc;
}

/* A subtree moved whole: no whiteouts, no opaque marks left in it. */
static int scrub(int dfd, struct kv_err **err)
{
	(void)fremovexattr(dfd, OVL_OPAQUE);
	size_t n;
	char **v = dir_names(dfd, &n, err);
	if (!v)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat st;
		if (fstatat(dfd, v[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = kv_err_make(err, errno, "flatten: stat %s", v[i]);
		} else if (is_whiteout(&st)) {
			if (unlinkat(dfd, v[i], 0) < 0)
				rc = kv_err_make(err, errno, "flatten: remove %s", v[i]);
		} else if (S_ISDIR(st.st_mode)) {
			int fd = open_dir(dfd, v[i]);
			rc = fd < 0 ? kv_err_make(err, errno, "flatten: open %s", v[i])
				    : scrub(fd, err);
			if (fd >= 0)
				close(fd);
		}
	}
	names_free(v, n);
	return rc;
}

static int move_in(int flat, int layer, const char *name, bool dir, struct kv_err **err)
{
	if (img_rm_tree(flat, name, err) < 0)
		return -1;
	if (renameat(layer, name, flat, name) < 0)
		return kv_err_make(err, errno, "flatten: move %s", name);
	if (!dir)
		return 0;
	int fd = open_dir(flat, name);
	if (fd < 0)
		return kv_err_make(err, errno, "flatten: open %s", name);
	int rc = scrub(fd, err);
	close(fd);
	return rc;
}

/* The layer directory's owner, mode and mtime on the flat tree's. */
static int dir_meta(int flat, int layer, struct kv_err **err)
{
	struct stat st;
	if (fstat(layer, &st) < 0)
		return kv_err_make(err, errno, "flatten: stat");
	struct timespec ts[2] = {st.st_mtim, st.st_mtim};
	if (fchown(flat, st.st_uid, st.st_gid) < 0 || fchmod(flat, st.st_mode & 07777) < 0 ||
	    futimens(flat, ts) < 0)
		return kv_err_make(err, errno, "flatten: directory metadata");
	return 0;
}

int img_tree_merge(int flat, int layer, struct kv_err **err)
{
	if (is_opaque(layer) && clear_dir(flat, err) < 0)
		return -1;
	size_t n;
	char **v = dir_names(layer, &n, err);
	if (!v)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *name = v[i];
		struct stat st, fst;
		if (fstatat(layer, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = kv_err_make(err, errno, "flatten: stat %s", name);
			break;
		}
		if (is_whiteout(&st)) {
			rc = img_rm_tree(flat, name, err);
			continue;
		}
		bool both_dirs = S_ISDIR(st.st_mode) &&
				 fstatat(flat, name, &fst, AT_SYMLINK_NOFOLLOW) == 0 &&
				 S_ISDIR(fst.st_mode);
		if (!both_dirs) {
			rc = move_in(flat, layer, name, S_ISDIR(st.st_mode), err);
			continue;
		}
		int lfd = open_dir(layer, name), ffd = open_dir(flat, name);
		if (lfd < 0 || ffd < 0)
			rc = kv_err_make(err, errno, "flatten: open %s", name);
		else if (is_opaque(lfd))
			rc = move_in(flat, layer, name, true, err);
		else if ((rc = img_tree_merge(ffd, lfd, err)) == 0)
			rc = dir_meta(ffd, lfd, err);
		if (lfd >= 0)
			close(lfd);
		if (ffd >= 0)
			close(ffd);
		if (rc < 0)
			kv_err_wrap(err, "%s", name);
	}
	names_free(v, n);
	return rc;
}

void img_chain_id(char *const *diff_ids, size_t n, char out[SHA256_HEX_LEN + 1])
{
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, "kvrun-flat\n", 11);
	for (size_t i = 0; i < n; i++) {
		sha256_update(&h, diff_ids[i], strlen(diff_ids[i]));
		sha256_update(&h, "\n", 1);
	}
	sha256_hex(&h, out);
}
