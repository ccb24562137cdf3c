/* SPDX-License-Identifier: Apache-2.0 */
/* The OCI hook runner, with small shell scripts as hooks: argv, env and
 * stdin exactly as given, order, failure messages, timeouts (the whole
 * process group), the environment of a hook without env, and the
 * warn-only kinds. */
#include "runtime/runtime.h"
#include "tap.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char dir[] = "/tmp/test_runtime_hooks.XXXXXX";

static char *script(const char *name, const char *body)
{
	char *path = kv_asprintf("%s/%s", dir, name);
	cleanup_free char *text = kv_asprintf("#!/bin/sh\nD=%s\n%s\n", dir, body);
	struct kv_err *err = NULL;
	if (kv_write_file_atomic(path, text, strlen(text), 0755, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
	return path;
}

static char *slurp(const char *name)
{
	cleanup_free char *path = kv_asprintf("%s/%s", dir, name);
	char *text = NULL;
	if (kv_read_file(path, 1 << 20, &text, NULL, NULL) < 0)
		return kv_strdup("");
	return text;
}

static void test_argv_env_stdin(void)
{
	cleanup_free char *p = script("h.sh", "/bin/cat > $D/stdin\n"
					      "echo \"$@\" > $D/args\n"
					      "/usr/bin/env > $D/env\n");
	char *args[] = {"the-hook", "one", "two words", NULL};
	char *env[] = {"A=1", "B=x y", NULL};
	struct oci_hook h = {.path = p, .args = {args, 3}, .env = {env, 2}, .has_env = true};
	struct kv_err *err = NULL;
	const char *state = "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"creating\"}";
	ok(runtime_hook_run(&h, state, &err) == 0, "hook runs");
	kv_err_free(err);
	cleanup_free char *in = slurp("stdin");
	is_str(in, state, "state JSON on stdin");
	cleanup_free char *a = slurp("args");
	is_str(a, "one two words\n", "args as given (args[0] is argv[0])");
	cleanup_free char *e = slurp("env");
	ok(strstr(e, "A=1\n") && strstr(e, "B=x y\n"), "env as given");
	ok(!strstr(e, "HOME="), "nothing inherited from kvrun's environment");
}

/* runc's hooks are exec.Cmds whose Env is the hook's: nil (no env) runs the
 * hook with the runtime's environment, an empty one with none at all. */
static void test_env_absent_or_empty(void)
{
	cleanup_free char *p = script("env.sh", "/usr/bin/env > $D/env");
	setenv("KVRUN_HOOK_TEST", "from-kvrun", 1);
	struct oci_hook h = {.path = p};
	struct kv_err *err = NULL;
	ok(runtime_hook_run(&h, "{}", &err) == 0, "hook without env runs");
	cleanup_free char *e1 = slurp("env");
	ok(strstr(e1, "KVRUN_HOOK_TEST=from-kvrun\n") != NULL,
	   "without env: kvrun's own environment, as runc's");
	h.has_env = true; /* "env": [] */
	ok(runtime_hook_run(&h, "{}", &err) == 0, "hook with an empty env runs");
	cleanup_free char *e2 = slurp("env");
	ok(!strstr(e2, "KVRUN_HOOK_TEST"), "with \"env\": []: an empty environment");
	unsetenv("KVRUN_HOOK_TEST");
	kv_err_free(err);
}

static void test_failure(void)
{
	cleanup_free char *p = script("fail.sh", "echo out; echo boom >&2; exit 3");
	struct oci_hook h = {.path = p};
	struct kv_err *err = NULL;
	ok(runtime_hook_run(&h, "{}", &err) < 0, "failing hook fails");
	cleanup_free char *want = kv_asprintf("%s: exit status 3, stdout: out, stderr: boom", p);
	is_str(err ? err->msg : NULL, want, "message quotes the hook's output");
	kv_err_free(err);
	err = NULL;
	struct oci_hook missing = {.path = "/nonexistent/hook"};
	ok(runtime_hook_run(&missing, "{}", &err) < 0 && err &&
	       strstr(err->msg, "exit status 127") &&
	       strstr(err->msg, "exec /nonexistent/hook: No such file or directory"),
	   "missing hook binary: %s", err ? err->msg : "");
	kv_err_free(err);
}

static void test_timeout(void)
{
	cleanup_free char *p = script("slow.sh", "/bin/sleep 30 &\necho $! > $D/child\nwait");
	struct oci_hook h = {.path = p, .timeout = 1};
	struct kv_err *err = NULL;
	uint64_t t0 = kv_now_ms();
	int r = runtime_hook_run(&h, "{}", &err);
	uint64_t took = kv_now_ms() - t0;
	ok(r < 0 && err && strstr(err->msg, "timed out after 1 second(s)"), "timeout: %s",
	   err ? err->msg : "");
	ok(took >= 900 && took < 5000, "killed after about a second (%llu ms)",
	   (unsigned long long)took);
	kv_err_free(err);
	cleanup_free char *child = slurp("child");
	pid_t pid = atoi(child);
	/* The grandchild was in the hook's process group: killed too (reaped by init). */
	bool gone = false;
	for (int i = 0; i < 100 && !gone; i++) {
		gone = pid > 0 && !pid_alive(pid, 0);
		if (!gone)
			usleep(20000);
	}
	ok(gone, "the hook's own child was killed with it");
}

static void test_order_and_kinds(void)
{
	cleanup_free char *h1 = script("o1.sh", "echo 1 >> $D/order");
	cleanup_free char *h2 = script("o2.sh", "echo 2 >> $D/order; exit 1");
	cleanup_free char *h3 = script("o3.sh", "echo 3 >> $D/order");
	struct oci_hook list[] = {{.path = h1}, {.path = h2}, {.path = h3}};
	struct oci_hooks hooks = {0};
	hooks.list[OCI_HOOK_PRESTART] = list;
	hooks.n[OCI_HOOK_PRESTART] = 3;
	hooks.list[OCI_HOOK_POSTSTOP] = list;
	hooks.n[OCI_HOOK_POSTSTOP] = 3;
	struct kv_err *err = NULL;
	ok(runtime_hooks_run(&hooks, OCI_HOOK_PRESTART, "{}", &err) < 0,
	   "prestart failure is fatal");
	cleanup_free char *want =
	    kv_asprintf("error running prestart hook #1: %s: exit status 1", h2);
	ok(err && strncmp(err->msg, want, strlen(want)) == 0, "names kind and index: %s",
	   err ? err->msg : "");
	kv_err_free(err);
	err = NULL;
	cleanup_free char *o1 = slurp("order");
	is_str(o1, "1\n2\n", "in order, stopping at the failure");
	cleanup_free char *order = kv_asprintf("%s/order", dir);
	unlink(order);
	ok(runtime_hooks_run(&hooks, OCI_HOOK_POSTSTOP, "{}", &err) == 0,
	   "poststop failure is only a warning");
	cleanup_free char *o2 = slurp("order");
	is_str(o2, "1\n2\n3\n", "poststop runs every hook");
	kv_err_free(err);
}

static void test_big_state_unread(void)
{
	/* Larger than a pipe buffer and never read: must not block. */
	size_t n = 1 << 20;
	char *big = kv_malloc0(n + 1);
	memset(big, 'x', n);
	struct oci_hook h = {.path = "/bin/true"};
	struct kv_err *err = NULL;
	ok(runtime_hook_run(&h, big, &err) == 0, "1 MiB of state, unread, no deadlock");
	kv_err_free(err);
	free(big);
}

int main(void)
{
	if (!tap_tmpdir(dir))
		return tap_done();
	/* Must not leak into hooks (checked above). */
	setenv("HOME", "/root", 1);
	test_argv_env_stdin();
	test_env_absent_or_empty();
	test_failure();
	test_timeout();
	test_order_and_kinds();
	test_big_state_unread();
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", dir);
	return tap_done();
}
