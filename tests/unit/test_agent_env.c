/* SPDX-License-Identifier: Apache-2.0 */
/* agent_env_with_home(): HOME from a passwd file where process.env has none. */
#include "agent/internal.h"
#include "tap.h"

static char passwd[] = "/tmp/kv-test-passwd.XXXXXX";

static void check(char **env, uid_t uid, const char *want, const char *name)
{
	char **out = agent_env_with_home(env, uid, passwd);
	const char *home = NULL;
	for (size_t i = 0; out[i]; i++)
		if (!home && strncmp(out[i], "HOME=", 5) == 0)
			home = out[i] + 5;
	is_str(home, want, name);
	if (out == env)
		return;
	/* A copy: env's strings, and a HOME= of its own. */
	size_t n = 0;
	while (env[n])
		n++;
	for (size_t i = 0; out[i]; i++)
		if (i >= n || out[i] != env[i])
			free(out[i]);
	free(out);
}

int main(void)
{
	int fd = mkstemp(passwd);
	static const char text[] = "root:x:0:0:root:/root:/bin/sh\n"
				   "this line is not an entry\n"
				   "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
				   "nohome:x:7:7:::/bin/sh\n"
				   "app:x:1000:1000:App:/home/app:/bin/sh\n";
	if (fd < 0 || write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1)) {
		ok(0, "write a passwd file");
		return tap_done();
	}
	close(fd);
	check((char *[]){"PATH=/bin", NULL}, 0, "/root", "root's home");
	check((char *[]){"PATH=/bin", NULL}, 1000, "/home/app", "uid 1000 past a bad line");
	check((char *[]){"PATH=/bin", NULL}, 4242, "/", "a uid without an entry: /");
	check((char *[]){"PATH=/bin", NULL}, 7, "/", "an entry with an empty home: /");
	check((char *[]){"HOME=/given", "PATH=/bin", NULL}, 0, "/given", "a HOME given is kept");
	check((char *[]){"A=1", "HOME=", NULL}, 1000, "/home/app",
	      "an empty HOME counts as none (as runc's os.Getenv)");
	check((char *[]){NULL}, 0, "/root", "an empty env");
	unlink(passwd);
	char *env[] = {"PATH=/bin", NULL};
	check(env, 0, "/", "no passwd file: /");
	return tap_done();
}
