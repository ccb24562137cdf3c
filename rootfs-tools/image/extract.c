/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One layer tar into a staging directory, as hostile input.
 *
 * Two libarchive readers: `dec` takes the blob (raw format, every filter:
 * gzip, zstd, ...) and yields the uncompressed stream; `tar` parses that
 * stream. Every byte handed from dec to tar is hashed and counted, so the
 * diff_id covers the whole stream (the end-of-archive padding included:
 * dec is drained after tar stops) and a decompression bomb stops at the
 * size limit, whatever the entries declare.
 *
 * Nothing is written through libarchive's disk writer: each name is
 * cleaned (img_entry_path_clean: no "..", not absolute, no NUL, bounded),
 * its parent reached one component at a time with O_NOFOLLOW|O_DIRECTORY
 * from the staging root (what openat2's RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
 * does, and it creates missing parents on the way), so a symlink the layer
 * made earlier is never followed; the last component is created with
 * O_EXCL/O_NOFOLLOW or an *at call that does not follow. The staging
 * directory lies in the store's private 0700 tmp/, written by this process
 * alone, so a device node in it (kept because the erofs image must hold
 * it) is reachable by nobody else and goes with the staging directory.
 */
#include "rootfs-tools/image/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define XBUF_SIZE     (64 * 1024)
#define WHITEOUT      ".wh."
#define WHITEOUT_META ".wh..wh."
#define WHITEOUT_OPQ  ".wh..wh..opq"
#define OVL_OPAQUE    "trusted.overlay.opaque"
#define OVL_PREFIX    "trusted.overlay."

struct dirtime {
	char *path;
	struct timespec mtime;
};

struct xctx {
	img_read_fn rd;
	void *rdctx;
	struct archive *dec, *tar;
	struct sha256 h;
	struct img_limits *lim;
	char layer[32]; /* "sha256:<12 hex>" for messages */
	char *stream_err;
	int root;
	struct dirtime *times;
	size_t ntimes;
	char inbuf[XBUF_SIZE], outbuf[XBUF_SIZE];
};

static la_ssize_t dec_read(struct archive *a, void *data, const void **buf)
{
	struct xctx *x = data;
	*buf = x->inbuf;
	ssize_t n = x->rd(x->rdctx, x->inbuf, sizeof(x->inbuf));
	if (n < 0)
		archive_set_error(a, errno, "reading the layer blob");
	return n;
}

/* The uncompressed stream: hashed and counted here, the only way in. */
static la_ssize_t tar_read(struct archive *a, void *data, const void **buf)
{
	struct xctx *x = data;
	*buf = x->outbuf;
	la_ssize_t n = archive_read_data(x->dec, x->outbuf, sizeof(x->outbuf));
	if (n < 0) {
		free(x->stream_err);
		x->stream_err = kv_asprintf("decompressing: %s", archive_error_string(x->dec));
		archive_set_error(a, EIO, "%s", x->stream_err);
		return -1;
	}
	x->lim->size += (uint64_t)n;
	if (x->lim->size > x->lim->max_size) {
		free(x->stream_err);
		x->stream_err = kv_asprintf("uncompressed layer data is over the size limit "
					    "(--max-size %llu bytes for the image)",
					    (unsigned long long)x->lim->max_size);
		archive_set_error(a, EFBIG, "%s", x->stream_err);
		return -1;
	}
	sha256_update(&x->h, x->outbuf, (size_t)n);
	return n;
}

static int tar_fail(struct xctx *x, struct kv_err **err)
{
	if (x->stream_err)
		return kv_err_plain(err, EINVAL, "%s", x->stream_err);
	return kv_err_plain(err, EINVAL, "reading the tar: %s", archive_error_string(x->tar));
}

/* The directory at rel (cleaned) under the staging root, reached without
 * following a symlink; created (0755) where missing if create. */
static int walk(struct xctx *x, const char *rel, bool create, const char *entry,
		struct kv_err **err)
{
	int fd = dup(x->root);
	if (fd < 0)
		return kv_err_make(err, errno, "dup");
	cleanup_free char *copy = kv_strdup(rel);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
				close(fd);
				return kv_err_make(err, errno, "entry \"%s\": mkdir", entry);
			}
			next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		struct stat st;
		int e = errno;
		if (next < 0 && fstatat(fd, c, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode)) {
			close(fd);
			size_t plen = (size_t)(c - copy) + strlen(c);
			return kv_err_plain(err, ELOOP,
					    "entry \"%s\": path escapes the layer through "
					    "symlink \"%.*s\"",
					    entry, (int)plen, rel);
		}
		close(fd);
		if (next < 0)
			return kv_err_make(err, e, "entry \"%s\": parent \"%s\"", entry, c);
		fd = next;
	}
	return fd;
}

/* Split a cleaned path into its parent (in place) and last component. */
static const char *split_last(char *path, const char **parent)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*parent = "";
		return path;
	}
	*slash = '\0';
	*parent = path;
	return slash + 1;
}

/* Make room for a new non-directory (or directory, when dir) at pfd/base. */
static int make_room(int pfd, const char *base, bool dir, const char *entry, struct kv_err **err)
{
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : kv_err_make(err, errno, "entry \"%s\": stat", entry);
	if (S_ISDIR(st.st_mode))
		return dir ? 1
			   : kv_err_plain(err, EEXIST, "entry \"%s\": replaces a directory", entry);
	if (unlinkat(pfd, base, 0) < 0)
		return kv_err_make(err, errno, "entry \"%s\": replacing", entry);
	return 0;
}

/* Owner, mode, xattrs, mtime of pfd/base (just created by us: a private
 * directory, so naming it again is safe; symlinks are never followed). */
static int apply_meta(struct xctx *x, int pfd, const char *base, struct archive_entry *e,
		      const char *entry, const char *clean, struct kv_err **err)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
		return kv_err_plain(err, EINVAL, "entry \"%s\": owner %lld:%lld out of range",
				    entry, (long long)uid, (long long)gid);
	bool link = archive_entry_filetype(e) == AE_IFLNK;
	const char *at = *base ? base : ".";
	if (fchownat(pfd, at, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		return kv_err_make(err, errno, "entry \"%s\": chown", entry);
	/* After chown, which clears set-id bits. */
	if (!link && fchmodat(pfd, at, archive_entry_perm(e) & 07777, 0) < 0)
		return kv_err_make(err, errno, "entry \"%s\": chmod", entry);
	char proc[64 + NAME_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", pfd, at);
	const char *name;
	const void *val;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK) {
		/* Overlay's own attributes come from whiteouts only, never from the tar. */
		if (strncmp(name, OVL_PREFIX, strlen(OVL_PREFIX)) == 0)
			continue;
		if (lsetxattr(proc, name, val, size, 0) < 0)
			return kv_err_make(err, errno, "entry \"%s\": xattr %s", entry, name);
	}
	struct timespec ts[2] = {{0, 0}, {0, 0}};
	if (archive_entry_mtime_is_set(e))
		ts[1] = (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
	ts[0] = ts[1];
	if (archive_entry_filetype(e) == AE_IFDIR) {
		/* Later entries change a directory's mtime: set it at the end. */
		x->times = realloc(x->times, (x->ntimes + 1) * sizeof(*x->times));
		if (!x->times)
			abort();
		x->times[x->ntimes++] = (struct dirtime){kv_strdup(clean), ts[1]};
		return 0;
	}
	if (utimensat(pfd, at, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return kv_err_make(err, errno, "entry \"%s\": utimensat", entry);
	return 0;
}

static int write_full_at(int fd, const char *p, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n, len -= (size_t)n, off += n;
	}
	return 0;
}

/* A regular file's data: every block inside the declared size. */
static int write_data(struct xctx *x, int fd, struct archive_entry *e, const char *entry,
		      struct kv_err **err)
{
	la_int64_t declared = archive_entry_size(e);
	uint64_t got = 0;
	const void *blk;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(x->tar, &blk, &len, &off)) == ARCHIVE_OK) {
		if (off < 0 || (uint64_t)off + len > (uint64_t)declared)
			return kv_err_plain(err, EINVAL,
					    "entry \"%s\": data past its declared size %lld", entry,
					    (long long)declared);
		if (write_full_at(fd, blk, len, off) < 0)
			return kv_err_make(err, errno, "entry \"%s\": write", entry);
		got += len;
	}
	if (r != ARCHIVE_EOF) {
		struct kv_err *inner = NULL;
		tar_fail(x, &inner);
		int rc = kv_err_plain(err, EINVAL, "entry \"%s\": %s", entry, inner->msg);
		kv_err_free(inner);
		return rc;
	}
	if (ftruncate(fd, declared) < 0)
		return kv_err_make(err, errno, "entry \"%s\": truncate", entry);
	if (archive_entry_sparse_count(e) == 0 && got != (uint64_t)declared)
		return kv_err_plain(err, EINVAL, "entry \"%s\": %llu bytes of data, %lld declared",
				    entry, (unsigned long long)got, (long long)declared);
	return 0;
}

/* .wh.NAME: a 0/0 character device NAME; .wh..wh..opq: the directory is opaque. */
static int whiteout(struct xctx *x, const char *parent, const char *base, const char *entry,
		    struct kv_err **err)
{
	cleanup_close int pfd = walk(x, parent, true, entry, err);
	if (pfd < 0)
		return pfd;
	if (strcmp(base, WHITEOUT_OPQ) == 0) {
		if (fsetxattr(pfd, OVL_OPAQUE, "y", 1, 0) < 0)
			return kv_err_make(err, errno, "entry \"%s\": setting %s", entry,
					   OVL_OPAQUE);
		return 0;
	}
	if (strncmp(base, WHITEOUT_META, strlen(WHITEOUT_META)) == 0)
		return 0; /* aufs bookkeeping (.wh..wh.plnk, ...): not content */
	const char *name = base + strlen(WHITEOUT);
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return kv_err_plain(err, EINVAL, "entry \"%s\": a whiteout of no name", entry);
	int r = make_room(pfd, name, false, entry, err);
	if (r < 0)
		return r;
	if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return kv_err_make(err, errno, "entry \"%s\": whiteout", entry);
	return 0;
}

static int hardlink(struct xctx *x, int pfd, const char *base, const char *target,
		    const char *entry, struct kv_err **err)
{
	cleanup_free char *t = NULL;
	if (img_entry_path_clean(target, strlen(target), &t, err) < 0)
		return kv_err_wrap(err, "entry \"%s\": hard link target \"%s\"", entry, target);
	const char *tparent, *tbase = split_last(t, &tparent);
	cleanup_close int tfd = -1;
	struct stat st;
	if (*tbase)
		tfd = walk(x, tparent, false, entry, err);
	if (tfd < 0 || fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode)) {
		kv_err_free(*err);
		*err = NULL;
		return kv_err_plain(err, ENOENT,
				    "entry \"%s\": hard link target \"%s\" is not a file "
				    "earlier in the layer",
				    entry, target);
	}
	int r = make_room(pfd, base, false, entry, err);
	if (r < 0)
		return r;
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return kv_err_make(err, errno, "entry \"%s\": link to \"%s\"", entry, target);
	return 0;
}

/* Create pfd/base as the entry says (not a hard link, not a whiteout). */
static int create_node(struct xctx *x, int pfd, const char *base, struct archive_entry *e,
		       const char *entry, struct kv_err **err)
{
	unsigned type = archive_entry_filetype(e);
	if (type == AE_IFDIR) {
		if (!*base)
			return 0; /* the layer's root: exists */
		int r = make_room(pfd, base, true, entry, err);
		if (r < 0)
			return r;
		if (r == 0 && mkdirat(pfd, base, 0700) < 0)
			return kv_err_make(err, errno, "entry \"%s\": mkdir", entry);
		return 0;
	}
	if (!*base)
		return kv_err_plain(err, EINVAL,
				    "entry \"%s\": the layer's root is not a directory", entry);
	int r = make_room(pfd, base, false, entry, err);
	if (r < 0)
		return r;
	if (type == AE_IFREG) {
		cleanup_close int fd =
		    openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return kv_err_make(err, errno, "entry \"%s\": create", entry);
		return write_data(x, fd, e, entry, err);
	}
	if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target || strlen(target) >= PATH_MAX)
			return kv_err_plain(err, EINVAL, "entry \"%s\": bad symlink target", entry);
		if (symlinkat(target, pfd, base) < 0)
			return kv_err_make(err, errno, "entry \"%s\": symlink", entry);
		return 0;
	}
	if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO) {
		/* A node in the erofs image; here only inside the private staging directory. */
		dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
		if (mknodat(pfd, base, type | 0600, type == AE_IFIFO ? 0 : dev) < 0)
			return kv_err_make(err, errno, "entry \"%s\": mknod", entry);
		return 0;
	}
	return kv_err_plain(err, EINVAL, "entry \"%s\": unsupported file type 0%o", entry, type);
}

static int entry_apply(struct xctx *x, struct archive_entry *e, struct kv_err **err)
{
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		return kv_err_plain(err, EINVAL, "an entry with no name");
	cleanup_free char *clean = NULL;
	if (img_entry_path_clean(raw, strlen(raw), &clean, err) < 0)
		return kv_err_wrap(err, "entry \"%s\"", raw);
	if (++x->lim->entries > x->lim->max_entries)
		return kv_err_plain(err, EFBIG, "entry \"%s\": more than %llu entries in the image",
				    raw, (unsigned long long)x->lim->max_entries);
	la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0 || (x->lim->declared += (uint64_t)size) > x->lim->max_size)
		return kv_err_plain(err, EFBIG,
				    "entry \"%s\": declared size %lld is over the size limit "
				    "(--max-size %llu bytes for the image)",
				    raw, (long long)size, (unsigned long long)x->lim->max_size);
	cleanup_free char *path = kv_strdup(clean);
	const char *parent, *base = split_last(path, &parent);
	if (strncmp(base, WHITEOUT, strlen(WHITEOUT)) == 0)
		return whiteout(x, parent, base, raw, err);
	cleanup_close int pfd = walk(x, parent, true, raw, err);
	if (pfd < 0)
		return pfd;
	const char *hl = archive_entry_hardlink(e);
	if (hl)
		return *base ? hardlink(x, pfd, base, hl, raw, err)
			     : kv_err_plain(err, EINVAL, "entry \"%s\": a hard link as root", raw);
	if (create_node(x, pfd, base, e, raw, err) < 0)
		return -1;
	return apply_meta(x, pfd, base, e, raw, clean, err);
}

static int set_dir_times(struct xctx *x, struct kv_err **err)
{
	for (size_t i = x->ntimes; i-- > 0;) {
		struct timespec ts[2] = {x->times[i].mtime, x->times[i].mtime};
		cleanup_close int fd = walk(x, x->times[i].path, false, x->times[i].path, err);
		if (fd < 0)
			return fd;
		if (futimens(fd, ts) < 0)
			return kv_err_make(err, errno, "entry \"%s\": utimensat", x->times[i].path);
	}
	return 0;
}

static int open_readers(struct xctx *x, struct kv_err **err)
{
	x->dec = archive_read_new();
	x->tar = archive_read_new();
	if (!x->dec || !x->tar)
		return kv_err_plain(err, ENOMEM, "archive_read_new");
	archive_read_support_filter_all(x->dec);
	archive_read_support_format_raw(x->dec);
	if (archive_read_open(x->dec, x, NULL, dec_read, NULL) != ARCHIVE_OK)
		return kv_err_plain(err, EINVAL, "opening the blob: %s",
				    archive_error_string(x->dec));
	struct archive_entry *e;
	if (archive_read_next_header(x->dec, &e) != ARCHIVE_OK)
		return kv_err_plain(err, EINVAL, "reading the blob: %s",
				    archive_error_string(x->dec));
	archive_read_support_format_tar(x->tar);
	if (archive_read_open(x->tar, x, NULL, tar_read, NULL) != ARCHIVE_OK)
		return tar_fail(x, err);
	return 0;
}

static int extract_all(struct xctx *x, struct kv_err **err)
{
	if (open_readers(x, err) < 0)
		return -1;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(x->tar, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return tar_fail(x, err);
		if (entry_apply(x, e, err) < 0)
			return -1;
	}
	/* The rest of the stream (end-of-archive blocks, padding) is in the diff_id too. */
	la_ssize_t n;
	while ((n = tar_read(x->tar, x, &(const void *){NULL})) > 0)
		;
	if (n < 0)
		return tar_fail(x, err);
	return set_dir_times(x, err);
}

int img_layer_extract(img_read_fn rd, void *rdctx, const char *diff_id, int stagefd,
		      struct img_limits *lim, struct kv_err **err)
{
	struct xctx *x = kv_malloc0(sizeof(*x));
	x->rd = rd;
	x->rdctx = rdctx;
	x->lim = lim;
	x->root = stagefd;
	snprintf(x->layer, sizeof(x->layer), "%.19s", diff_id);
	sha256_init(&x->h);
	int rc = extract_all(x, err);
	if (rc == 0) {
		char hex[SHA256_HEX_LEN + 1];
		sha256_hex(&x->h, hex);
		if (strcmp(diff_id + 7, hex) != 0)
			rc = kv_err_plain(err, EINVAL,
					  "diff_id mismatch: the uncompressed layer is sha256:%s, "
					  "the config says %s",
					  hex, diff_id);
	}
	if (rc < 0)
		kv_err_wrap(err, "layer %s", x->layer);
	if (x->tar)
		archive_read_free(x->tar);
	if (x->dec)
		archive_read_free(x->dec);
	for (size_t i = 0; i < x->ntimes; i++)
		free(x->times[i].path);
	free(x->times);
	free(x->stream_err);
	free(x);
	return rc < 0 ? rc : 0;
}
