/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The environment a container process execs with: process.env, and HOME
 * from the container's passwd file where process.env has none (runc's rule:
 * for init and exec alike; an empty HOME counts as none, as os.Getenv
 * sees it). Runs in the child, as root, inside the container's root.
 */
#include "agent/internal.h"

#include <pwd.h>
#include <string.h>

/* The home directory of uid in the passwd file at path, or NULL. */
static char *passwd_home(const char *path, uid_t uid)
{
	cleanup_fclose FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	/* fgetpwent() parses the file itself (no NSS) and skips bad lines. */
	for (struct passwd *pw; (pw = fgetpwent(f));)
		if (pw->pw_uid == uid)
			return kv_strdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
	return NULL;
}

char **agent_env_with_home(char **env, uid_t uid, const char *passwd)
{
	size_t n = 0, home = SIZE_MAX;
	for (; env[n]; n++)
		if (home == SIZE_MAX && strncmp(env[n], "HOME=", 5) == 0)
			home = n; /* the one getenv() finds */
	if (home != SIZE_MAX && env[home][5])
		return env;
	cleanup_free char *dir = passwd_home(passwd, uid);
	char **out = kv_malloc0((n + 2) * sizeof(char *));
	memcpy(out, env, n * sizeof(char *));
	out[home != SIZE_MAX ? home : n] = kv_asprintf("HOME=%s", dir ? dir : "/");
	return out;
}
