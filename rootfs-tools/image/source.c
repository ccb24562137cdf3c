/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where an image comes from: an archive (docker-archive or oci-archive, any
 * filter libarchive knows) read in passes, or a directory (an OCI layout)
 * whose members are opened beneath it (openat2 RESOLVE_BENEATH). Member
 * names are cleaned (img_entry_path_clean) on both sides before comparing.
 */
#include "rootfs-tools/image/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static ssize_t archive_member_read(void *ctx, void *buf, size_t n)
{
	la_ssize_t r = archive_read_data(ctx, buf, n);
	if (r < 0)
		errno = EIO;
	return r;
}

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
	ssize_t r;
	while ((r = read(*(int *)ctx, buf, n)) < 0 && errno == EINTR)
		;
	return r;
}

static int open_beneath(const struct img_src *s, const char *name, struct kv_err **err)
{
	cleanup_close int dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kv_err_make(err, errno, "open %s", s->path);
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	int fd = (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
	if (fd < 0)
		return kv_err_make(err, errno, "%s: %s", s->path, name);
	return fd;
}

static struct archive *archive_open_src(const struct img_src *s, struct kv_err **err)
{
	struct archive *a = archive_read_new();
	if (!a) {
		kv_err_plain(err, ENOMEM, "archive_read_new");
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, s->path, 64 * 1024) != ARCHIVE_OK) {
		kv_err_plain(err, EINVAL, "%s: %s", s->path, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define cleanup_archive __attribute__((cleanup(archive_freep)))

static int read_whole(img_read_fn rd, void *ctx, const char *name, size_t max, char **buf,
		      size_t *len, struct kv_err **err)
{
	size_t cap = 4096, n = 0;
	cleanup_free char *b = kv_malloc0(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap >= max)
				return kv_err_plain(err, EFBIG, "%s: over %zu bytes", name, max);
			cap *= 2;
			b = realloc(b, cap + 1);
			if (!b)
				abort();
		}
		ssize_t r = rd(ctx, b + n, cap - n);
		if (r < 0)
			return kv_err_make(err, errno, "reading %s", name);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max)
		return kv_err_plain(err, EFBIG, "%s: over %zu bytes", name, max);
	b[n] = '\0';
	*len = n;
	*buf = steal_ptr(b);
	return 0;
}

static int read_one(size_t i, img_read_fn rd, void *rdctx, void *ctx, struct kv_err **err)
{
	void **a = ctx; /* name, max, buf, len */
	return read_whole(rd, rdctx, a[0], *(size_t *)a[1], a[2], a[3], err);
}

int img_src_read(const struct img_src *s, const char *name, size_t max, char **buf, size_t *len,
		 struct kv_err **err)
{
	char *names[] = {(char *)name};
	void *args[] = {(void *)name, &max, buf, len};
	return img_src_each(s, names, 1, read_one, args, err);
}

static int dir_each(const struct img_src *s, char *const *names, size_t n, img_member_fn fn,
		    void *ctx, struct kv_err **err)
{
	for (size_t i = 0; i < n; i++) {
		cleanup_close int fd = open_beneath(s, names[i], err);
		if (fd < 0 || fn(i, fd_read, &fd, ctx, err) < 0)
			return -1;
	}
	return 0;
}

int img_src_each(const struct img_src *s, char *const *names, size_t n, img_member_fn fn, void *ctx,
		 struct kv_err **err)
{
	if (s->is_dir)
		return dir_each(s, names, n, fn, ctx, err);
	cleanup_archive struct archive *a = archive_open_src(s, err);
	if (!a)
		return -1;
	cleanup_free bool *done = kv_malloc0(n * sizeof(bool) + 1);
	size_t left = n;
	struct archive_entry *e;
	int r;
	while (left && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return kv_err_plain(err, EINVAL, "%s: %s", s->path,
					    archive_error_string(a));
		const char *raw = archive_entry_pathname(e);
		cleanup_free char *clean = NULL;
		struct kv_err *ignored = NULL;
		if (!raw || img_entry_path_clean(raw, strlen(raw), &clean, &ignored) < 0) {
			kv_err_free(ignored); /* never a member we look for */
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (done[i] || strcmp(names[i], clean) != 0)
				continue;
			if (fn(i, archive_member_read, a, ctx, err) < 0)
				return -1;
			done[i] = true;
			left--;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (!done[i])
			return kv_err_plain(err, ENOENT, "%s: no member %s", s->path, names[i]);
	return 0;
}
