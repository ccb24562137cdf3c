/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the image config's User resolved through the
 * image's /etc/passwd and /etc/group (rootfs-tools/image/user.c): the input
 * is USER NUL PASSWD NUL GROUP (a part missing is an empty one; PASSWD and
 * GROUP may hold NULs of their own past the split, as a file can).
 * Beyond "no crash, no leak": a User that resolves has ids at most
 * 4294967294 ((uid_t)-1 is "no id" to the kernel), and one that does not
 * is refused with a message naming the field ("image config: User ...").
 *
 * Build: make fuzz; run: make fuzz-image-user-run (FUZZ_SECONDS).
 */
#include "rootfs-tools/image/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *part(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
	const uint8_t *stop = nul ? nul : end;
	char *s = kv_malloc0((size_t)(stop - *p) + 1);
	memcpy(s, *p, (size_t)(stop - *p));
	*len = (size_t)(stop - *p);
	*p = nul ? nul + 1 : end;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	size_t ulen, plen, glen;
	char *user = (char *)part(&p, end, &ulen);
	char *passwd = (char *)part(&p, end, &plen);
	/* The rest, NULs and all, is /etc/group. */
	char *group = kv_malloc0((size_t)(end - p) + 1);
	memcpy(group, p, (size_t)(end - p));
	glen = (size_t)(end - p);
	struct img_etc e = {
	    {IMG_ETC_FILE, passwd, plen}, {IMG_ETC_FILE, group, glen}, IMG_ETC_DIR_DIR};
	if (plen > IMG_ETC_MAX || glen > IMG_ETC_MAX)
		goto out;
	uint32_t uid, gid, *gids = NULL;
	size_t n = 0;
	struct kv_err *err = NULL;
	if (img_user_resolve(user, &e, &uid, &gid, &gids, &n, &err) == 0) {
		if (uid == UINT32_MAX || gid == UINT32_MAX)
			abort();
		for (size_t i = 0; i < n; i++)
			if (gids[i] == UINT32_MAX)
				abort();
	} else if (!err || strncmp(err->msg, "image config: User ", 19) != 0 || gids || n) {
		abort();
	}
	free(gids);
	kv_err_free(err);
out:
	img_etc_free(&e);
	free(user);
	return 0;
}
