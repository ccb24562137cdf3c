/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image store without an archive tool (rootfs-tools/image/): sha256,
 * the entry name checks, digests.
 */
#include "rootfs-tools/image/internal.h"
#include "rootfs-tools/image/store.h"
#include "tap.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static const char *hash(const char *s, size_t n, char out[SHA256_HEX_LEN + 1])
{
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, s, n);
	sha256_hex(&h, out);
	return out;
}

static void test_sha256(void)
{
	char out[SHA256_HEX_LEN + 1];
	is_str(hash("", 0, out), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	       "sha256 of nothing");
	is_str(hash("abc", 3, out),
	       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 abc");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	is_str(hash(two, strlen(two), out),
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	       "sha256 of two blocks");
	/* A million 'a's, fed in odd pieces: the buffering across calls. */
	struct sha256 h;
	sha256_init(&h);
	char a[997];
	memset(a, 'a', sizeof(a));
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof(a) ? left : sizeof(a);
		sha256_update(&h, a, n);
		left -= n;
	}
	sha256_hex(&h, out);
	is_str(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
	       "sha256 of a million a's in pieces");
}

static void clean_ok(const char *name, const char *want)
{
	char *out = NULL;
	struct kv_err *err = NULL;
	int r = img_entry_path_clean(name, strlen(name), &out, &err);
	ok(r == 0 && out && strcmp(out, want) == 0, "\"%s\" is \"%s\"", name, want);
	if (r < 0)
		diag("%s", err->msg);
	free(out);
	kv_err_free(err);
}

static void clean_bad(const char *name, size_t len, const char *want_msg, const char *what)
{
	char *out = NULL;
	struct kv_err *err = NULL;
	int r = img_entry_path_clean(name, len, &out, &err);
	ok(r < 0 && !out && err && strstr(err->msg, want_msg), "refused: %s", what);
	if (err && !strstr(err->msg, want_msg))
		diag("got \"%s\"", err->msg);
	kv_err_free(err);
	free(out);
}

static void test_paths(void)
{
	clean_ok("etc/passwd", "etc/passwd");
	clean_ok("./etc//passwd", "etc/passwd");
	clean_ok("./", "");
	clean_ok(".", "");
	clean_ok("a/./b/", "a/b");
	clean_ok("..a/b..", "..a/b..");
	clean_ok(".wh..wh..opq", ".wh..wh..opq");
	clean_bad("../escape", 9, "escapes the layer", "..");
	clean_bad("a/../../b", 9, "escapes the layer", "a/../../b");
	clean_bad("a/..", 4, "escapes the layer", "a trailing ..");
	clean_bad("/abs", 4, "absolute path", "absolute");
	clean_bad("//x", 3, "absolute path", "//x");
	clean_bad("", 0, "empty name", "empty");
	clean_bad("a\0/../b", 7, "NUL", "a NUL inside");
	char *lng = kv_malloc0(PATH_MAX + 1);
	for (size_t i = 0; i < PATH_MAX; i++)
		lng[i] = i % 100 == 99 ? '/' : 'x';
	clean_bad(lng, PATH_MAX, "longer than PATH_MAX", "PATH_MAX bytes");
	memset(lng, 'y', NAME_MAX + 1);
	lng[NAME_MAX + 1] = '\0';
	clean_bad(lng, NAME_MAX + 1, "longer than NAME_MAX", "a component over NAME_MAX");
	free(lng);
}

static void test_digests(void)
{
	const char *good =
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	ok(img_digest_valid(good), "a sha256 digest");
	ok(!img_digest_valid(
	       "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
	   "upper case refused");
	ok(!img_digest_valid("sha256:../../../../etc/passwd"), "a path refused");
	ok(!img_digest_valid("sha512:e3b0"), "another algorithm refused");
	setenv(IMG_STORE_ENV, "/tmp/s", 1);
	is_str(img_store_path(NULL), "/tmp/s", "the store from the environment");
	is_str(img_store_path("/x"), "/x", "the flag first");
	unsetenv(IMG_STORE_ENV);
	is_str(img_store_path(NULL), IMG_STORE_DEFAULT, "the default store");
}

/* ------------------------------------------------- User through /etc */

static struct img_etc etc_of(const char *passwd, const char *group)
{
	struct img_etc e = {{IMG_ETC_NONE, NULL, 0}, {IMG_ETC_NONE, NULL, 0}, IMG_ETC_DIR_SAME};
	if (passwd)
		e.passwd = (struct img_etc_file){IMG_ETC_FILE, kv_strdup(passwd), strlen(passwd)};
	if (group)
		e.group = (struct img_etc_file){IMG_ETC_FILE, kv_strdup(group), strlen(group)};
	return e;
}

/* user resolves to want ("uid:gid[:g1,g2...]"), or is refused with want_msg. */
static void user_is(const struct img_etc *e, const char *user, const char *want)
{
	uint32_t uid, gid, *gids = NULL;
	size_t n = 0;
	struct kv_err *err = NULL;
	char got[256] = "";
	if (img_user_resolve(user, e, &uid, &gid, &gids, &n, &err) < 0) {
		snprintf(got, sizeof(got), "%s", err->msg);
		ok(strstr(got, want) != NULL, "User \"%.40s\" refused: %s", user, want);
	} else {
		int o = snprintf(got, sizeof(got), "%u:%u", uid, gid);
		for (size_t i = 0; i < n && o < (int)sizeof(got); i++)
			o += snprintf(got + o, sizeof(got) - (size_t)o, "%s%u", i ? "," : ":",
				      gids[i]);
		ok(strcmp(got, want) == 0, "User \"%.40s\" is %s", user, want);
	}
	if (!strstr(got, want))
		diag("got \"%s\"", got);
	free(gids);
	kv_err_free(err);
}

static const char passwd_text[] = "root:x:0:0:root:/root:/bin/sh\n"
				  "app:x:1000:1000:App:/home/app:/bin/sh\n"
				  "# a comment\n"
				  "\n"
				  "short:x:5\n"
				  "nonum:x:12a:1::/:/bin/sh\n"
				  "neg:x:-1:1::/:/bin/sh\n"
				  "big:x:4294967296:1::/:/bin/sh\n"
				  "max:x:4294967295:1::/:/bin/sh\n"
				  "biggid:x:8:99999999999::/:/bin/sh\n"
				  "+nis:x:9:9::/:/bin/sh\n"
				  "min:x:7:7\n"
				  "app:x:2000:2000:a second app:/:/bin/sh\n"
				  "long:x:123456789012345678901234567890:1::/:/bin/sh\n"
				  "last:x:8:8::/:/bin/sh";
static const char group_text[] = "root:x:0:\n"
				 "grp:x:2000:\n"
				 "wheel:x:10:root,app\n"
				 "audio:x:29:other,app,x\n"
				 "bad:x:abc:app\n"
				 "huge:x:4294967295:min\n"
				 "grp:x:3000:\n";

static void test_users(void)
{
	struct img_etc e = etc_of(passwd_text, group_text);
	user_is(&e, "", "0:0");
	user_is(&e, "app", "1000:1000:10,29");
	user_is(&e, "app:grp", "1000:2000");
	user_is(&e, "app:77", "1000:77");
	user_is(&e, "1000", "1000:1000:10,29");
	user_is(&e, "1000:grp", "1000:2000");
	user_is(&e, "4242", "4242:0");
	user_is(&e, "4242:5", "4242:5");
	user_is(&e, "0", "0:0:10");
	user_is(&e, "last", "8:8");
	user_is(&e, "nobody", "User nobody: no such user in the image's /etc/passwd");
	user_is(&e, "app:nogrp", "User app:nogrp: no such group nogrp in the image's /etc/group");
	user_is(&e, "short", "line 5: too few fields");
	user_is(&e, "nonum", "line 6: uid \"12a\" is not a number");
	user_is(&e, "neg", "line 7: uid \"-1\" is not a number");
	user_is(&e, "big", "line 8: uid 4294967296 out of range");
	user_is(&e, "max", "/etc/passwd line 9: uid out of range");
	user_is(&e, "biggid", "line 10: gid 99999999999 out of range");
	/* A number too long to show whole is still a number, out of range. */
	user_is(&e, "long", "line 14: uid 123456789012345678901234... out of range");
	user_is(&e, "+nis", "no such user");
	user_is(&e, "min", "/etc/group line 6: gid out of range");
	user_is(&e, "4294967295", "uid 4294967295 out of range");
	user_is(&e, "1:4294967295", "gid 4294967295 out of range");
	user_is(&e, ":grp", "want user[:group]");
	user_is(&e, "app:", "want user[:group]");
	img_etc_free(&e);

	/* A long line (glibc grows nothing: the buffer holds the whole file). */
	size_t big = 200000;
	char *lng = kv_malloc0(big + 64);
	int o = snprintf(lng, 64, "long:x:7:7:");
	memset(lng + o, 'g', big);
	strcpy(lng + o + big, ":/:/bin/sh\n");
	char *grp = kv_malloc0(big * 2 + 64);
	o = snprintf(grp, 64, "many:x:44:");
	for (size_t i = 0; i < big; i++)
		memcpy(grp + o + 2 * i, i + 1 < big ? "a," : "a\n", 2);
	strcat(grp, "long2:x:45:long\n");
	e = etc_of(lng, grp);
	user_is(&e, "long", "7:7:45");
	free(lng);
	free(grp);
	img_etc_free(&e);

	e = etc_of("a:x:1:1::/:/bin/sh\nb\0:x:2:2\n", NULL);
	e.passwd.len = 30;
	user_is(&e, "a", "has a NUL byte");
	img_etc_free(&e);
	e = etc_of(NULL, NULL);
	user_is(&e, "app", "no such user in the image's /etc/passwd");
	user_is(&e, "1000:7", "1000:7");
	e.passwd =
	    (struct img_etc_file){IMG_ETC_BAD, kv_strdup("the image's /etc/passwd is odd"), 0};
	user_is(&e, "app", "User app: the image's /etc/passwd is odd");
	user_is(&e, "12", "12:0");
	img_etc_free(&e);
	/* A record from before kvrun kept /etc: ids only. */
	user_is(NULL, "5:6", "5:6");
	user_is(NULL, "5", "5:0");
	user_is(NULL, "app", "User app: the image was imported before kvrun kept");
	user_is(NULL, "5:grp", "import it again");
	user_is(NULL, "99999999999", "uid 99999999999 out of range");
}

/* A layer's /etc as img_layer_extract leaves it: the delta, folded. */
static void test_etc_scan(void)
{
	char dir[] = "/tmp/kvrun-test-etc.XXXXXX";
	if (!tap_tmpdir(dir))
		return;
	int root = open(dir, O_RDONLY | O_DIRECTORY);
	struct img_etc acc = {{IMG_ETC_NONE, NULL, 0}, {IMG_ETC_NONE, NULL, 0}, IMG_ETC_DIR_SAME},
		       d;
	struct kv_err *err = NULL;
	ok(img_etc_scan(root, &d, &err) == 0 && d.passwd.state == IMG_ETC_SAME &&
	       d.group.state == IMG_ETC_SAME,
	   "a layer without /etc changes nothing");
	img_etc_free(&d);
	mkdirat(root, "etc", 0755);
	int etc = openat(root, "etc", O_RDONLY | O_DIRECTORY);
	int fd = openat(etc, "passwd", O_WRONLY | O_CREAT, 0644);
	ok(write(fd, "a:x:1:1::/:/bin/sh\n", 19) == 19, "write passwd");
	close(fd);
	ok(img_etc_scan(root, &d, &err) == 0 && d.passwd.state == IMG_ETC_FILE &&
	       d.passwd.len == 19 && d.group.state == IMG_ETC_SAME,
	   "a regular /etc/passwd is read");
	img_etc_apply(&acc, &d);
	img_etc_free(&d);
	ok(acc.passwd.state == IMG_ETC_FILE && strcmp(acc.passwd.text, "a:x:1:1::/:/bin/sh\n") == 0,
	   "folded: the file");
	unlinkat(etc, "passwd", 0);
	if (mknodat(etc, "passwd", S_IFCHR | 0, makedev(0, 0)) == 0) {
		ok(img_etc_scan(root, &d, &err) == 0 && d.passwd.state == IMG_ETC_NONE,
		   "a whiteout removes it");
		img_etc_apply(&acc, &d);
		img_etc_free(&d);
		ok(acc.passwd.state == IMG_ETC_NONE && !acc.passwd.text, "folded: gone");
		unlinkat(etc, "passwd", 0);
	} else {
		skip("mknod a whiteout: not root");
		skip("mknod a whiteout: not root");
	}
	ok(symlinkat("/usr/lib/passwd", etc, "passwd") == 0, "symlink passwd");
	ok(img_etc_scan(root, &d, &err) == 0 && d.passwd.state == IMG_ETC_BAD &&
	       strstr(d.passwd.text, "a symlink"),
	   "a symlink is not followed: unusable");
	img_etc_free(&d);
	unlinkat(etc, "passwd", 0);
	fd = openat(etc, "group", O_WRONLY | O_CREAT, 0644);
	ok(ftruncate(fd, IMG_ETC_MAX + 1) == 0, "a big group");
	close(fd);
	ok(img_etc_scan(root, &d, &err) == 0 && d.group.state == IMG_ETC_BAD &&
	       strstr(d.group.text, "more than kvrun reads"),
	   "over IMG_ETC_MAX: unusable");
	img_etc_free(&d);
	unlinkat(etc, "group", 0);
	if (fsetxattr(etc, "trusted.overlay.opaque", "y", 1, 0) == 0) {
		ok(img_etc_scan(root, &d, &err) == 0 && d.passwd.state == IMG_ETC_NONE &&
		       d.group.state == IMG_ETC_NONE,
		   "an opaque /etc hides both");
		img_etc_free(&d);
	} else {
		skip("trusted xattr: not root");
	}
	close(etc);
	unlinkat(root, "etc", AT_REMOVEDIR);
	ok(symlinkat("usr/etc", root, "etc") == 0, "symlink etc");
	ok(img_etc_scan(root, &d, &err) == 0 && d.passwd.state == IMG_ETC_BAD &&
	       strstr(d.passwd.text, "/etc is not a directory (a symlink)"),
	   "/etc a symlink: unusable");
	/* A higher layer's /etc directory over it hides it whole, as overlayfs
	 * does (a directory merges only with a directory): its passwd counts,
	 * and the group it does not have is none, not unusable. */
	struct img_etc low = {{IMG_ETC_NONE, NULL, 0}, {IMG_ETC_NONE, NULL, 0}, IMG_ETC_DIR_SAME};
	img_etc_apply(&low, &d);
	img_etc_free(&d);
	struct img_etc up = {{IMG_ETC_FILE, (char *)"u:x:7:7::/:/bin/sh\n", 19},
			     {IMG_ETC_SAME, NULL, 0},
			     IMG_ETC_DIR_DIR};
	img_etc_apply(&low, &up);
	ok(low.passwd.state == IMG_ETC_FILE && low.group.state == IMG_ETC_NONE,
	   "an /etc directory over a symlinked /etc: its files alone (group none, not unusable)");
	img_etc_free(&low);
	img_etc_free(&acc);
	unlinkat(root, "etc", 0);
	close(root);
	rmdir(dir);
	kv_err_free(err);
}

/* The record and layer-etc/ keep the files' bytes (base64: not UTF-8 is fine). */
static void test_etc_store(void)
{
	char dir[] = "/tmp/kvrun-test-store.XXXXXX";
	if (!tap_tmpdir(dir))
		return;
	struct kv_err *err = NULL;
	int lock = store_open(dir, LOCK_EX, &err);
	ok(lock >= 0, "store_open");
	static const char text[] = "r\xff\xfe:x:0:0:L\xe4tin-1:/:/bin/sh\n";
	struct store_record r = {0};
	memset(r.info.id, 'a', IMG_ID_LEN);
	r.info.name = kv_strdup("n");
	r.info.created = kv_strdup("");
	r.config = kv_strdup("{}");
	r.manifest = kv_strdup("{}");
	r.has_etc = true;
	r.etc = etc_of(text, NULL);
	r.etc.group = (struct img_etc_file){IMG_ETC_BAD, kv_strdup("why not"), 0};
	ok(store_record_write(dir, &r, &err) == 0, "record written");
	struct store_record back;
	ok(store_record_read(dir, r.info.id, &back, &err) == 0 && back.has_etc &&
	       back.etc.passwd.state == IMG_ETC_FILE && back.etc.passwd.len == strlen(text) &&
	       memcmp(back.etc.passwd.text, text, strlen(text)) == 0 &&
	       back.etc.group.state == IMG_ETC_BAD && strcmp(back.etc.group.text, "why not") == 0,
	   "record read back: the bytes, the reason");
	store_record_free(&back);
	/* A layer's delta, SAME kept apart from NONE. */
	const char *diff =
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	struct img_etc d = etc_of(text, NULL), got;
	d.group.state = IMG_ETC_SAME;
	ok(store_layer_etc_write(dir, diff, &d, &err) == 0, "delta written");
	ok(store_layer_etc_read(dir, diff, &got) == 0 && got.passwd.state == IMG_ETC_FILE &&
	       got.passwd.len == strlen(text) && got.group.state == IMG_ETC_SAME,
	   "delta read back");
	img_etc_free(&got);
	img_etc_free(&d);
	/* A delta that is not one: read as none, so the layer is read again. */
	static const char *const bad[] = {
	    "",
	    "{",
	    "[]",
	    "{\"passwd\":{\"state\":\"file\"},\"group\":{\"state\":\"none\"}}",
	    "{\"passwd\":{\"state\":\"file\",\"base64\":\"!!\"},\"group\":{\"state\":\"none\"}}",
	    "{\"passwd\":{\"state\":\"odd\"},\"group\":{\"state\":\"none\"}}",
	    "{\"passwd\":{\"state\":\"none\"}}"};
	char *path = kv_asprintf("%s/%s/%s.json", dir, STORE_ETC, diff + 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ok(fd >= 0 && write(fd, bad[i], strlen(bad[i])) == (ssize_t)strlen(bad[i]),
		   "write bad delta %zu", i);
		close(fd);
		ok(store_layer_etc_read(dir, diff, &got) < 0 && !got.passwd.text,
		   "bad delta %zu: none", i);
	}
	/* prune: no image references the layer, so its delta goes. */
	close(lock);
	store_record_free(&r);
	char *rec = kv_asprintf("%s/%s/%s.json", dir, STORE_IMAGES,
				"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	unlink(rec);
	ok(img_prune(dir, NULL, NULL, &err) == 0 && access(path, F_OK) < 0,
	   "prune removes the delta");
	free(rec);
	free(path);
	struct kv_err *rm = NULL;
	ok(img_rm_tree(AT_FDCWD, dir, &rm) == 0, "remove the store");
	kv_err_free(rm);
	kv_err_free(err);
}

int main(void)
{
	test_sha256();
	test_paths();
	test_digests();
	test_users();
	test_etc_scan();
	test_etc_store();
	return tap_done();
}
