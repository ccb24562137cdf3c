/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image's /etc/passwd and /etc/group as its container sees them, for a
 * named User (kvrun image bundle; user.c parses them). At import each
 * layer's staging tree (the overlay form img_layer_extract makes) is read
 * for what it does to the two files, and the layers are folded base first,
 * as overlayfs would show them:
 *  - etc/passwd a regular file: it replaces what the layers below had;
 *  - etc/passwd a whiteout, /etc whited out or opaque: the file is gone
 *    (unless this layer has it again);
 *  - etc/passwd anything else (a symlink, a directory, a device) or over
 *    IMG_ETC_MAX bytes, or /etc not a directory (a symlink to usr/etc): the
 *    file is there but unusable, and a name needing it is refused with why.
 * Nothing is followed: every name is opened with O_NOFOLLOW beneath the
 * staging root, so a symlink never leads out of the layer.
 */
#include "rootfs-tools/image/internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define OVL_OPAQUE "trusted.overlay.opaque"

static void etc_file_set(struct img_etc_file *f, enum img_etc_state st, char *text, size_t len)
{
	free(f->text);
	f->state = st;
	f->text = text;
	f->len = len;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* etcfd/name (a layer's etc/passwd or etc/group) into f; ENOENT leaves f. */
static int etc_file_scan(int etcfd, const char *name, struct img_etc_file *f, struct kv_err **err)
{
	struct stat st;
	if (fstatat(etcfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : kv_err_make(err, errno, "stat etc/%s", name);
	if (is_whiteout(&st)) {
		etc_file_set(f, IMG_ETC_NONE, NULL, 0);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		etc_file_set(f, IMG_ETC_BAD,
			     kv_asprintf("the image's /etc/%s is not a regular file (%s)", name,
					 S_ISLNK(st.st_mode) ? "a symlink" : "of another type"),
			     0);
		return 0;
	}
	if (st.st_size > IMG_ETC_MAX) {
		etc_file_set(
		    f, IMG_ETC_BAD,
		    kv_asprintf("the image's /etc/%s is %lld bytes, more than kvrun reads (%u)",
				name, (long long)st.st_size, IMG_ETC_MAX),
		    0);
		return 0;
	}
	cleanup_close int fd = openat(etcfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "open etc/%s", name);
	char *buf = kv_malloc0((size_t)st.st_size + 1);
	ssize_t n = kv_read_all(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		free(buf);
		return kv_err_make(err, n < 0 ? errno : EIO, "read etc/%s", name);
	}
	etc_file_set(f, IMG_ETC_FILE, buf, (size_t)n);
	return 0;
}

int img_etc_scan(int stagefd, struct img_etc *delta, struct kv_err **err)
{
	memset(delta, 0, sizeof(*delta));
	struct img_etc_file *files[] = {&delta->passwd, &delta->group};
	static const char *const names[] = {"passwd", "group"};
	struct stat st;
	if (fstatat(stagefd, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : kv_err_make(err, errno, "stat etc");
	if (!S_ISDIR(st.st_mode)) {
		delta->dir = IMG_ETC_DIR_OTHER;
		for (size_t i = 0; i < 2; i++)
			etc_file_set(files[i], is_whiteout(&st) ? IMG_ETC_NONE : IMG_ETC_BAD,
				     is_whiteout(&st)
					 ? NULL
					 : kv_asprintf("the image's /etc is not a directory (%s)",
						       S_ISLNK(st.st_mode) ? "a symlink"
									   : "of another type"),
				     0);
		return 0;
	}
	delta->dir = IMG_ETC_DIR_DIR;
	cleanup_close int etcfd =
	    openat(stagefd, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (etcfd < 0)
		return kv_err_make(err, errno, "open etc");
	char v = 0;
	bool opaque = fgetxattr(etcfd, OVL_OPAQUE, &v, 1) == 1 && v == 'y';
	for (size_t i = 0; i < 2; i++) {
		if (opaque)
			etc_file_set(files[i], IMG_ETC_NONE, NULL, 0);
		if (etc_file_scan(etcfd, names[i], files[i], err) < 0) {
			img_etc_free(delta);
			return -1;
		}
	}
	return 0;
}

/* A copy, not a move: a layer an image has twice applies twice. */
static void etc_file_apply(struct img_etc_file *acc, const struct img_etc_file *d)
{
	if (d->state == IMG_ETC_SAME)
		return;
	char *text = NULL;
	if (d->text) {
		size_t n = d->state == IMG_ETC_FILE ? d->len : strlen(d->text);
		text = kv_malloc0(n + 1);
		memcpy(text, d->text, n);
	}
	etc_file_set(acc, d->state, text, d->len);
}

void img_etc_apply(struct img_etc *acc, const struct img_etc *delta)
{
	/* overlayfs merges a directory only with a directory below: over a
	 * symlink or a file /etc, this layer's /etc is all there is. */
	if (delta->dir == IMG_ETC_DIR_DIR && acc->dir == IMG_ETC_DIR_OTHER) {
		static const struct img_etc_file none = {IMG_ETC_NONE, NULL, 0};
		etc_file_apply(&acc->passwd, &none);
		etc_file_apply(&acc->group, &none);
	}
	etc_file_apply(&acc->passwd, &delta->passwd);
	etc_file_apply(&acc->group, &delta->group);
	if (delta->dir != IMG_ETC_DIR_SAME)
		acc->dir = delta->dir;
}

void img_etc_free(struct img_etc *e)
{
	free(e->passwd.text);
	free(e->group.text);
	memset(e, 0, sizeof(*e));
}
