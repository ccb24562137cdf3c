/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the image importer's own entry handling
 * (rootfs-tools/image/extract.c, path.c): the input is a layer blob (a tar
 * stream, compressed by any filter libarchive reads or not at all) given to
 * img_layer_extract() with a fresh staging directory. The diff_id never
 * matches, so every import fails at its very end, after every entry was
 * applied; what is checked is what the entries did on the way.
 *
 * An input that starts with "KVE1" is instead a list of entries, written
 * into a valid (pax) tar with libarchive's writer before the extraction:
 * libarchive is not instrumented, so a mutated raw tar rarely gets past its
 * header checksums, while these always reach kvrun's own entry handling
 * (names, types, link targets, owners, xattrs, order). Each record:
 *
 *   u8 type | u8 name length | u8 target length | u8 data length |
 *   u16 mode | u8 owner and xattr selector | name | target | data
 *
 * Beyond "no crash, no leak" (ASan, UBSan, LeakSanitizer), after each input:
 *   - nothing was created outside the staging directory: the process runs
 *     in a mount namespace of its own, chrooted into TOP, a private tmpfs
 *     holding stage/ (the staging directory), canary/ (empty) and proc/ (a
 *     bind of /proc: apply_meta() sets xattrs through /proc/self/fd). "/"
 *     is TOP, so a write through an absolute symlink, an escaping ".." or a
 *     hard link lands in TOP, where it is seen: TOP must hold exactly those
 *     three and canary/ must stay empty, else abort();
 *   - the staging directory can be removed (img_rm_tree) and no fd leaked.
 * The working directory stays outside the chroot, so corpus and artifact
 * paths relative to it keep working (make fuzz-image-run's are); absolute
 * ones do not. A regular file or a device node never reaches the host's
 * filesystems, and the tmpfs goes with the process.
 *
 * Needs root (chown, mknod, the namespace), as the importer does.
 * KVRUN_FUZZ_NO_CHROOT=1 skips the namespace and chroot (TOP is then a
 * mkdtemp directory in /tmp, removed at exit): to reproduce a crash with a
 * symbolized stack, which llvm-symbolizer cannot give inside the chroot.
 *
 * Build: make fuzz; run: make fuzz-image-run (FUZZ_SECONDS), seeds from
 * tests/fuzz/image_seeds.py.
 */
#include "rootfs-tools/image/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define NO_CHROOT_ENV "KVRUN_FUZZ_NO_CHROOT"
#define TMPFS_OPTS    "size=64m,mode=0700"
#define MAX_SIZE      (1u << 20) /* uncompressed bytes per input: bombs stop early */
#define MAX_ENTRIES   256
#define DIFF_ID	      "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define ENTRIES_MAGIC "KVE1"
#define ENTRIES_MAX   64
#define TAR_MAX	      (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int top = -1;	  /* TOP: the chroot's root, or the mkdtemp directory */
static char top_path[64]; /* for the atexit cleanup, without the chroot */
static int fd_watermark;  /* the lowest free fd after set-up */

static const char *const expected[] = {"stage", "canary", "proc"};

static void fail(const char *what)
{
	perror(what);
	abort();
}

static int lowest_free_fd(void)
{
	int fd = dup(0);
	if (fd < 0)
		fail("dup");
	close(fd);
	return fd;
}

static void top_mkdirs(const char *root)
{
	char p[96];
	for (size_t i = 0; i < sizeof(expected) / sizeof(*expected); i++) {
		snprintf(p, sizeof(p), "%s/%s", root, expected[i]);
		if (mkdir(p, 0755) < 0)
			fail(p);
	}
}

static void remove_top(void)
{
	struct kv_err *err = NULL;
	if (img_rm_tree(top, "stage", &err) < 0 || img_rm_tree(top, "canary", &err) < 0 ||
	    img_rm_tree(top, "proc", &err) < 0)
		fprintf(stderr, "fuzz_image_entry: cleaning %s: %s\n", top_path, err->msg);
	kv_err_free(err);
	rmdir(top_path);
}

/*
 * A tmpfs of our own (in a private mount namespace, over /tmp: nothing of it
 * is seen outside or stays behind), TOP in it, then chroot(TOP) without
 * chdir: the working directory keeps the corpus paths reachable.
 */
static void jail(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		fail("unshare(CLONE_NEWNS) (run as root, or set " NO_CHROOT_ENV "=1)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail("making / private");
	if (mount("kvrun-fuzz", "/tmp", "tmpfs", MS_NOSUID, TMPFS_OPTS) < 0)
		fail("mount tmpfs");
	if (mkdir("/tmp/top", 0755) < 0)
		fail("mkdir /tmp/top");
	top_mkdirs("/tmp/top");
	if (mount("/proc", "/tmp/top/proc", NULL, MS_BIND | MS_REC, NULL) < 0)
		fail("bind /proc");
	if (chroot("/tmp/top") < 0)
		fail("chroot");
	top = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		fail("open /");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *no = getenv(NO_CHROOT_ENV);
	if (no && *no && strcmp(no, "0") != 0) {
		snprintf(top_path, sizeof(top_path), "/tmp/kvrun-fuzz-image.XXXXXX");
		if (!mkdtemp(top_path))
			fail("mkdtemp");
		top_mkdirs(top_path);
		top = open(top_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (top < 0)
			fail(top_path);
		atexit(remove_top);
	} else {
		jail();
	}
	fd_watermark = lowest_free_fd();
	return 0;
}

struct blob {
	const uint8_t *p;
	size_t len, off;
};

static ssize_t blob_read(void *ctx, void *buf, size_t n)
{
	struct blob *b = ctx;
	if (n > b->len - b->off)
		n = b->len - b->off;
	memcpy(buf, b->p + b->off, n);
	b->off += n;
	return (ssize_t)n;
}

/* The record's type: what the layer says the entry is. */
static const unsigned entry_types[] = {AE_IFREG, AE_IFDIR, AE_IFLNK, 0 /* hard link */,
				       AE_IFCHR, AE_IFBLK, AE_IFIFO};
static const char *const xattr_names[] = {NULL, "user.kvrun", "trusted.overlay.opaque",
					  "security.capability"};

static char *field(const uint8_t **p, size_t *left, size_t n)
{
	if (n > *left)
		n = *left;
	char *s = kv_malloc0(n + 1);
	memcpy(s, *p, n);
	*p += n;
	*left -= n;
	return s;
}

/* The entries of a "KVE1" input as a tar in buf; its length, or 0. */
static size_t entries_tar(const uint8_t *p, size_t left, uint8_t *buf, size_t cap)
{
	struct archive *w = archive_write_new();
	size_t used = 0;
	if (!w || archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w, 512) != ARCHIVE_OK ||
	    archive_write_open_memory(w, buf, cap, &used) != ARCHIVE_OK)
		abort();
	bool ok = true;
	for (unsigned n = 0; ok && left >= 7 && n < ENTRIES_MAX; n++) {
		unsigned type = entry_types[p[0] % KV_ARRAY_SIZE(entry_types)];
		size_t nlen = p[1], tlen = p[2], dlen = p[3];
		unsigned mode = (unsigned)(p[4] | p[5] << 8) & 07777, sel = p[6];
		p += 7, left -= 7;
		cleanup_free char *name = field(&p, &left, nlen);
		cleanup_free char *target = field(&p, &left, tlen);
		cleanup_free char *data = field(&p, &left, dlen);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, name);
		archive_entry_set_filetype(e, type ? type : AE_IFREG);
		archive_entry_set_perm(e, mode);
		archive_entry_set_uid(e, (sel & 3) * 1000);
		archive_entry_set_gid(e, (sel >> 2 & 3) * 100);
		archive_entry_set_mtime(e, 1000000000, 0);
		if (type == AE_IFLNK)
			archive_entry_set_symlink(e, target);
		if (type == 0)
			archive_entry_set_hardlink(e, target);
		if (type == AE_IFCHR || type == AE_IFBLK)
			archive_entry_set_rdev(e, makedev(sel >> 6, sel & 7));
		const char *x = xattr_names[sel >> 4 & 3];
		if (x)
			archive_entry_xattr_add_entry(e, x, data, strlen(data));
		archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)strlen(data) : 0);
		ok = archive_write_header(w, e) >= ARCHIVE_WARN;
		if (ok && type == AE_IFREG)
			ok = archive_write_data(w, data, strlen(data)) >= 0;
		archive_entry_free(e);
	}
	ok = archive_write_close(w) == ARCHIVE_OK && ok;
	archive_write_free(w);
	return ok ? used : 0;
}

static bool is_expected(const char *name)
{
	for (size_t i = 0; i < sizeof(expected) / sizeof(*expected); i++)
		if (strcmp(name, expected[i]) == 0)
			return true;
	return false;
}

/* TOP holds stage/, canary/ and proc/, nothing else; canary/ is empty. */
static void check_top(void)
{
	int fd = dup(top);
	if (fd < 0)
		fail("dup");
	DIR *d = fdopendir(fd);
	if (!d)
		fail("fdopendir TOP");
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    !is_expected(de->d_name)) {
			fprintf(stderr,
				"fuzz_image_entry: \"%s\" created outside the staging "
				"directory\n",
				de->d_name);
			abort();
		}
	closedir(d);

	int cfd = openat(top, "canary", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0)
		fail("canary is no longer a directory");
	d = fdopendir(cfd);
	if (!d)
		fail("fdopendir canary");
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			fprintf(stderr,
				"fuzz_image_entry: \"canary/%s\" created outside the "
				"staging directory\n",
				de->d_name);
			abort();
		}
	closedir(d);
	struct stat st;
	if (fstatat(top, "proc", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		fail("proc is no longer a directory");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_err *err = NULL;
	if (img_rm_tree(top, "stage", &err) < 0 || mkdirat(top, "stage", 0700) < 0) {
		fprintf(stderr, "fuzz_image_entry: fresh stage: %s\n", err ? err->msg : "mkdir");
		abort();
	}
	int stage = openat(top, "stage", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (stage < 0)
		fail("open stage");

	static uint8_t tar[TAR_MAX];
	size_t magic = strlen(ENTRIES_MAGIC);
	if (size >= magic && memcmp(data, ENTRIES_MAGIC, magic) == 0) {
		size = entries_tar(data + magic, size - magic, tar, sizeof(tar));
		data = tar;
	}
	struct blob b = {data, size, 0};
	struct img_limits lim = {.max_size = MAX_SIZE, .max_entries = MAX_ENTRIES};
	if (img_layer_extract(blob_read, &b, DIFF_ID, stage, &lim, &err) == 0) {
		fprintf(stderr, "fuzz_image_entry: a layer matched an all-zero diff_id\n");
		abort();
	}
	if (!err || !err->msg || strncmp(err->msg, "layer sha256:", 13) != 0) {
		fprintf(stderr, "fuzz_image_entry: an error not naming the layer: %s\n",
			err && err->msg ? err->msg : "(none)");
		abort();
	}
	kv_err_free(err);
	err = NULL;
	close(stage);

	check_top();
	if (img_rm_tree(top, "stage", &err) < 0) {
		fprintf(stderr, "fuzz_image_entry: removing the staging directory: %s\n", err->msg);
		abort();
	}
	if (lowest_free_fd() != fd_watermark) {
		fprintf(stderr, "fuzz_image_entry: an fd leaked (lowest free %d, was %d)\n",
			lowest_free_fd(), fd_watermark);
		abort();
	}
	return 0;
}
