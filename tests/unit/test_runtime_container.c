/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container state machine and create's all-or-nothing rule, driven
 * through the library: a sleeping child process stands in for the shim
 * (state.json written by hand), and create reaches the microVM backend,
 * which refuses for want of a guest kernel (a config file points at none).
 */
#include "runtime/runtime.h"
#include "tap.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char tmp[] = "/tmp/test_runtime_container.XXXXXX";
static char *root, *bundle;
static struct kvrun_globals g;

static void write_text(const char *path, const char *text)
{
	struct kv_err *err = NULL;
	if (kv_write_file_atomic(path, text, strlen(text), 0644, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
}

static const char config_fmt[] =
    "{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":%s,\"args\":[\"sh\"],\"cwd\":\"/\"},"
    "\"root\":{\"path\":\"rootfs\"},\"hooks\":{\"poststop\":[{\"path\":\"/bin/sh\","
    "\"args\":[\"sh\",\"-c\",\"/bin/cat > %s/poststop.json\"]}]}}";

static void write_config(const char *dir, bool terminal)
{
	cleanup_free char *text = kv_asprintf(config_fmt, terminal ? "true" : "false", tmp);
	cleanup_free char *path = kv_asprintf("%s/config.json", dir);
	write_text(path, text);
}

static pid_t spawn_shim(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "100", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* A container as the backend would leave it, with `pid` as its shim. */
static void fake_container(const char *id, enum oci_status s, pid_t pid, bool right_start)
{
	cleanup_free char *dir = container_dir(root, id);
	mkdir(dir, 0711);
	write_config(dir, false);
	struct oci_state st = {.id = (char *)id,
			       .oci_version = "1.0.2",
			       .bundle = bundle,
			       .rootfs = "/r",
			       .status = s,
			       .pid = pid,
			       .sandbox_id = (char *)id};
	clock_gettime(CLOCK_REALTIME, &st.created);
	for (int i = 0; i < 100 && pid > 0 && kv_pid_start_time(pid, &st.pid_start) < 0; i++)
		usleep(1000);
	if (!right_start)
		st.pid_start += 12345;
	cleanup_free char *path = kv_asprintf("%s/state.json", dir);
	struct kv_err *err = NULL;
	if (oci_state_save(path, &st, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
}

static bool exists(const char *id)
{
	cleanup_free char *dir = container_dir(root, id);
	return access(dir, F_OK) == 0;
}

/* Takes &err: the call in the first argument fills it (argument order
 * is unspecified, so the value cannot be passed). */
static void expect_err(int r, struct kv_err **errp, const char *msg, const char *name)
{
	struct kv_err *err = *errp;
	ok(r < 0 && err && strcmp(err->msg, msg) == 0, "%s", name);
	if (r >= 0 || !err || strcmp(err->msg, msg) != 0)
		diag("  got \"%s\", want \"%s\"", err ? err->msg : "(no error)", msg);
	kv_err_free(err);
	*errp = NULL;
}

/* The same, for messages whose tail names host paths. */
static void expect_err_prefix(int r, struct kv_err **errp, const char *prefix, const char *name)
{
	struct kv_err *err = *errp;
	bool good = r < 0 && err && strncmp(err->msg, prefix, strlen(prefix)) == 0;
	ok(good, "%s", name);
	if (!good)
		diag("  got \"%s\", want \"%s...\"", err ? err->msg : "(no error)", prefix);
	kv_err_free(err);
	*errp = NULL;
}

static void test_create(void)
{
	struct create_opts o = {.bundle = bundle, .detach = true};
	struct kv_err *err = NULL;
	cleanup_free char *conf = kv_asprintf("%s/kvrun.json", tmp);
	write_text(conf, "{\"kernel\": \"/nonexistent/vmlinux\"}");
	setenv("KVRUN_CONFIG", conf, 1);
	expect_err_prefix(runtime_create(&g, "c1", &o, &err), &err,
			  "guest kernel /nonexistent/vmlinux or image ",
			  "create reaches the backend seam and reports it");
	ok(!exists("c1"), "a failed create leaves no state directory");
	err = NULL;
	expect_err(runtime_create(&g, "a/b", &o, &err), &err, "invalid container ID format",
		   "invalid id refused");
	fake_container("dup", OCI_STATUS_STOPPED, 0, true);
	err = NULL;
	expect_err(runtime_create(&g, "dup", &o, &err), &err, "container with id exists: dup",
		   "duplicate id refused");
	ok(exists("dup"), "the existing container is untouched");
	struct create_opts nob = {.bundle = "/nonexistent/bundle", .detach = true};
	err = NULL;
	expect_err(runtime_create(&g, "c2", &nob, &err), &err,
		   "bundle /nonexistent/bundle: No such file or directory", "missing bundle");
	write_config(bundle, true);
	err = NULL;
	expect_err(runtime_create(&g, "c3", &o, &err), &err,
		   "cannot allocate tty if kvrun will detach without setting console socket",
		   "terminal without --console-socket (runc's rule)");
	cleanup_free char *cfg = kv_asprintf("%s/config.json", bundle);
	write_text(cfg, "{\"ociVersion\":\"1.0.2\"");
	err = NULL;
	int r = runtime_create(&g, "c4", &o, &err);
	ok(r < 0 && err && strstr(err->msg, "config.json: invalid JSON"), "bad JSON: %s",
	   err ? err->msg : "");
	kv_err_free(err);
	ok(!exists("c2") && !exists("c3") && !exists("c4"), "no state left by any failure");
	write_config(bundle, false);
}

static void test_status(void)
{
	pid_t pid = spawn_shim();
	fake_container("live", OCI_STATUS_CREATED, pid, true);
	fake_container("reused", OCI_STATUS_RUNNING, pid, false);
	struct kv_err *err = NULL;
	cleanup_container struct container *c = NULL;
	ok(container_load(root, "live", &c, &err) == 0 && c->status == OCI_STATUS_CREATED &&
	       c->pid == pid,
	   "created while the shim lives");
	cleanup_container struct container *r = NULL;
	ok(container_load(root, "reused", &r, &err) == 0 && r->status == OCI_STATUS_STOPPED &&
	       r->pid == 0,
	   "a reused pid (other start time) reads as stopped");
	err = NULL;
	expect_err_prefix(runtime_start(&g, "live", &err), &err,
			  "container live: its VM does not answer",
			  "start of a created container goes to the backend");
	err = NULL;
	expect_err(runtime_start(&g, "reused", &err), &err,
		   "cannot start a container that has stopped", "start of a stopped container");
	ok(runtime_kill(&g, "live", 0, false, &err) == 0, "signal 0: the container lives");
	ok(kv_pid_start_time(pid, &(uint64_t){0}) == 0, "  and signal 0 did not end the shim");
	ok(runtime_kill(&g, "live", SIGTERM, false, &err) == 0, "kill signals the shim");
	int status = 0;
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "the shim got SIGTERM");
	cleanup_container struct container *c2 = NULL;
	ok(container_load(root, "live", &c2, &err) == 0 && c2->status == OCI_STATUS_STOPPED,
	   "stopped once the shim is gone");
	err = NULL;
	expect_err(runtime_kill(&g, "live", SIGKILL, false, &err), &err, "container not running",
		   "kill of a stopped container");
	err = NULL;
	expect_err(runtime_kill(&g, "live", 0, false, &err), &err, "container not running",
		   "signal 0 to a stopped container");
	err = NULL;
	ok(runtime_kill(&g, "live", SIGKILL, true, &err) == 0 && !err,
	   "kill --all of a stopped container succeeds, as runc's");
	err = NULL;
	expect_err(runtime_pause(&g, "live", true, &err), &err, "container not running",
		   "pause of a stopped container");
}

static void test_delete(void)
{
	pid_t pid = spawn_shim();
	fake_container("run1", OCI_STATUS_RUNNING, pid, true);
	struct kv_err *err = NULL;
	expect_err(runtime_delete(&g, "run1", false, &err), &err,
		   "cannot delete container run1 that is not stopped: running",
		   "delete of a running container needs --force");
	err = NULL;
	expect_err(runtime_pause(&g, "run1", false, &err), &err, "container not paused",
		   "resume of a running container");
	cleanup_free char *post = kv_asprintf("%s/poststop.json", tmp);
	unlink(post);
	ok(runtime_delete(&g, "run1", true, &err) == 0, "delete --force");
	int status = 0;
	ok(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "the shim was killed with SIGKILL");
	ok(!exists("run1"), "state directory removed");
	char *state = NULL;
	ok(kv_read_file(post, 4096, &state, NULL, NULL) == 0 && strstr(state, "\"id\":\"run1\"") &&
	       strstr(state, "\"status\":\"stopped\""),
	   "poststop hook ran with the stopped state: %s", state ? state : "");
	free(state);
	err = NULL;
	expect_err(runtime_delete(&g, "nope", false, &err), &err,
		   "container \"nope\" does not exist",
		   "delete of a missing container fails like runc");
	ok(runtime_delete(&g, "nope", true, &err) == 0, "delete --force of a missing one succeeds");
	cleanup_free char *half = container_dir(root, "half");
	mkdir(half, 0711);
	ok(runtime_delete(&g, "half", true, &err) == 0 && !exists("half"),
	   "a half-created directory (no state.json) is cleaned up");
	fake_container("stopped1", OCI_STATUS_STOPPED, 0, true);
	ok(runtime_delete(&g, "stopped1", false, &err) == 0 && !exists("stopped1"),
	   "delete of a stopped container");
}

static void test_abandoned_create(void)
{
	fake_container("half1", OCI_STATUS_CREATING, 0, true);
	cleanup_free char *dir = container_dir(root, "half1");
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY);
	struct kv_err *err = NULL;
	ok(fd >= 0 && flock(fd, LOCK_EX) == 0, "a create holds the directory lock");
	cleanup_container struct container *c = NULL;
	ok(container_load(root, "half1", &c, &err) == 0 && c->status == OCI_STATUS_CREATING,
	   "creating while the create holds its lock");
	close(steal_fd(fd));
	cleanup_container struct container *c2 = NULL;
	ok(container_load(root, "half1", &c2, &err) == 0 && c2->status == OCI_STATUS_STOPPED,
	   "stopped once the create is gone (it died half way)");
	ok(runtime_delete(&g, "half1", false, &err) == 0 && !exists("half1"),
	   "an abandoned create is deleted without --force");
	kv_err_free(err);
}

static void test_corrupt(void)
{
	cleanup_free char *dir = container_dir(root, "bad");
	mkdir(dir, 0711);
	cleanup_free char *path = kv_asprintf("%s/state.json", dir);
	write_text(path, "{\"kvrunState\":1,\"id\":");
	struct kv_err *err = NULL;
	cleanup_container struct container *c = NULL;
	int r = container_load(root, "bad", &c, &err);
	cleanup_free char *want = kv_asprintf("%s: corrupt state: invalid JSON", path);
	ok(r < 0 && err && strncmp(err->msg, want, strlen(want)) == 0, "corrupt state: %s",
	   err ? err->msg : "");
	kv_err_free(err);
}

int main(void)
{
	if (!tap_tmpdir(tmp))
		return tap_done();
	root = kv_asprintf("%s/root", tmp);
	bundle = kv_asprintf("%s/bundle", tmp);
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", bundle);
	struct kv_err *err = NULL;
	if (kv_mkdir_p(rootfs, 0755, &err) < 0 || kv_mkdir_p(root, 0700, &err) < 0)
		diag("%s", err->msg);
	write_config(bundle, false);
	g.root = root;
	test_create();
	test_status();
	test_delete();
	test_abandoned_create();
	test_corrupt();
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", tmp);
	free(root);
	free(bundle);
	return tap_done();
}
