/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names from an archive: the checks every entry name and hard link target
 * passes (pure functions: unit-tested and fuzzed), and digests.
 */
#include "rootfs-tools/image/internal.h"

#include <limits.h>
#include <string.h>

int img_entry_path_clean(const char *name, size_t len, char **out, struct kv_err **err)
{
	*out = NULL;
	if (len == 0)
		return kv_err_plain(err, EINVAL, "empty name");
	if (memchr(name, '\0', len))
		return kv_err_plain(err, EINVAL, "name contains a NUL byte");
	if (len >= PATH_MAX)
		return kv_err_plain(err, ENAMETOOLONG, "name longer than PATH_MAX (%zu bytes)",
				    len);
	if (name[0] == '/')
		return kv_err_plain(err, EPERM, "absolute path escapes the layer");
	cleanup_free char *clean = kv_malloc0(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && name[j] != '/')
			j++;
		size_t n = j - i;
		if (n == 2 && name[i] == '.' && name[i + 1] == '.')
			return kv_err_plain(err, EPERM, "path escapes the layer (..)");
		if (n > NAME_MAX)
			return kv_err_plain(err, ENAMETOOLONG,
					    "a component longer than NAME_MAX (%zu bytes)", n);
		if (n > 0 && !(n == 1 && name[i] == '.')) {
			if (o)
				clean[o++] = '/';
			memcpy(clean + o, name + i, n);
			o += n;
		}
		i = j + 1;
	}
	clean[o] = '\0';
	*out = steal_ptr(clean);
	return 0;
}

bool img_digest_valid(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + SHA256_HEX_LEN)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

const char *img_store_path(const char *flag)
{
	if (flag && *flag)
		return flag;
	const char *env = getenv(IMG_STORE_ENV);
	return env && *env ? env : IMG_STORE_DEFAULT;
}
