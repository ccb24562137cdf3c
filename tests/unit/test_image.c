/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image store without an archive tool (rootfs-tools/image/): sha256,
 * the entry name checks, digests.
 */
#include "rootfs-tools/image/internal.h"
#include "tap.h"

#include <limits.h>
#include <string.h>

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

int main(void)
{
	test_sha256();
	test_paths();
	test_digests();
	return tap_done();
}
