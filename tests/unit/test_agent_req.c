/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent request builders (agent/request.c): the wire text of each
 * operation as the host sends it, names that need escaping, embedded JSON
 * texts, and the one name check.
 */
#include "agent/protocol.h"
#include "tap.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

#define HOSTILE "a\"b\\c"

/* Check a builder's text, then free it. */
static void expect(char *got, const char *want, const char *name)
{
	is_str(got, want, name);
	free(got);
}

static void test_name_ok(void)
{
	char long_name[66];
	memset(long_name, 'x', 65);
	long_name[65] = '\0';
	ok(kv_agent_name_ok("my-ctr_1.2") && kv_agent_name_ok("A") && kv_agent_name_ok("..."),
	   "name: letters, digits, _ . - (and \"...\")");
	ok(!kv_agent_name_ok(NULL) && !kv_agent_name_ok("") && !kv_agent_name_ok(".") &&
	       !kv_agent_name_ok(".."),
	   "name: NULL, empty, . and .. refused");
	ok(!kv_agent_name_ok(long_name) && kv_agent_name_ok(long_name + 1), "name: 64 at most");
	ok(!kv_agent_name_ok(HOSTILE) && !kv_agent_name_ok("a/b") && !kv_agent_name_ok("a b") &&
	       !kv_agent_name_ok("a+b"),
	   "name: quote, backslash, slash, space, plus refused");
}

/* The wire text of every request the host sends, as it was before the builders. */
static void test_wire_text(void)
{
	struct kv_err *err = NULL;
	bool yes = true, no = false;
	expect(kv_req_version(&err), "{\"version\":1}", "version");
	expect(kv_req_container("c1", NULL, &err), "{\"container\":\"c1\"}", "start/wait/...");
	expect(kv_req_container("c1", "e1", &err), "{\"container\":\"c1\",\"exec_id\":\"e1\"}",
	       "... of an exec");
	expect(kv_req_create("c1", false, "{\"process\":{}}", NULL, &err),
	       "{\"container\":\"c1\",\"stdin\":false,\"spec\":{\"process\":{}}}", "create");
	expect(kv_req_create("c1", true, "{}", "{\"type\":\"dir\",\"path\":\"/r\"}", &err),
	       "{\"container\":\"c1\",\"stdin\":true,\"spec\":{},"
	       "\"rootfs\":{\"type\":\"dir\",\"path\":\"/r\"}}",
	       "create with a rootfs and stdin");
	expect(kv_req_exec("c1", "e1", true, "{\"args\":[\"sh\"]}", &err),
	       "{\"container\":\"c1\",\"exec_id\":\"e1\",\"stdin\":true,"
	       "\"process\":{\"args\":[\"sh\"]}}",
	       "exec");
	expect(kv_req_kill("c1", NULL, 15, NULL, &err), "{\"container\":\"c1\",\"signal\":15}",
	       "kill (the shim's)");
	expect(kv_req_kill("c1", "e1", 9, NULL, &err),
	       "{\"container\":\"c1\",\"exec_id\":\"e1\",\"signal\":9}", "kill of an exec");
	expect(kv_req_kill("c1", NULL, 2, &no, &err),
	       "{\"container\":\"c1\",\"signal\":2,\"all\":false}", "kill (kvrun kill)");
	expect(kv_req_kill("c1", NULL, 2, &yes, &err),
	       "{\"container\":\"c1\",\"signal\":2,\"all\":true}", "kill --all");
	expect(kv_req_delete("c1", true, &err), "{\"container\":\"c1\",\"force\":true}",
	       "delete force");
	expect(kv_req_delete("c1", false, &err), "{\"container\":\"c1\"}", "delete");
	expect(kv_req_update("c1", "{\"pids\":{\"limit\":5}}", &err),
	       "{\"container\":\"c1\",\"resources\":{\"pids\":{\"limit\":5}}}", "update");
	expect(kv_req_resize("c1", NULL, 24, 80, &err),
	       "{\"container\":\"c1\",\"rows\":24,\"cols\":80}", "resize");
	expect(kv_req_resize("c1", "e1", 50, 132, &err),
	       "{\"container\":\"c1\",\"exec_id\":\"e1\",\"rows\":50,\"cols\":132}",
	       "resize of an exec");
	expect(kv_req_set_hostname("h", &err), "{\"hostname\":\"h\"}", "set_hostname");
	expect(kv_req_set_time(1700000000, 123456789, &err),
	       "{\"sec\":1700000000,\"nsec\":123456789}", "set_time");
	expect(kv_req_add_entropy("QUJD", 256, &err), "{\"data\":\"QUJD\",\"credit_bits\":256}",
	       "add_entropy");
	expect(kv_req_mount_shared("s0", "virtiofs", &err),
	       "{\"tag\":\"s0\",\"type\":\"virtiofs\"}", "mount_shared");
	ok(err == NULL, "no builder failed");
	kv_err_free(err);
}

/* A string field of a builder's text, parsed back. */
static bool parses_back(const char *text, const char *key, const char *want)
{
	struct kv_err *err = NULL;
	cleanup_yajl_val struct yajl_val_s *v = text ? kv_json_parse(text, "req", &err) : NULL;
	kv_err_free(err);
	const char *got = kv_jstr(v, key);
	return got && strcmp(got, want) == 0;
}

static void test_escaping(void)
{
	struct kv_err *err = NULL;
	char *t = kv_req_kill(HOSTILE, HOSTILE, 9, NULL, &err);
	is_str(t, "{\"container\":\"a\\\"b\\\\c\",\"exec_id\":\"a\\\"b\\\\c\",\"signal\":9}",
	       "a quote and a backslash come out escaped");
	ok(parses_back(t, "container", HOSTILE) && parses_back(t, "exec_id", HOSTILE),
	   "  and parse back as themselves");
	free(t);
	/* What a name spliced into sprintf could do: close the string, add a key. */
	const char *inject = "c\",\"force\":true,\"x\":\"";
	t = kv_req_delete(inject, false, &err);
	cleanup_yajl_val struct yajl_val_s *v = t ? kv_json_parse(t, "req", &err) : NULL;
	bool force = false;
	ok(v && !kv_jbool(v, "force", &force) && parses_back(t, "container", inject),
	   "a name cannot add a key to the request");
	free(t);
	t = kv_req_set_hostname("h\n\x01", &err);
	ok(parses_back(t, "hostname", "h\n\x01"), "control characters escaped");
	free(t);
	t = kv_req_mount_shared("t\\", "virtiofs", &err);
	ok(parses_back(t, "tag", "t\\"), "a trailing backslash stays inside the string");
	free(t);
	ok(err == NULL, "no builder failed");
	kv_err_free(err);
}

static void test_refused(void)
{
	struct kv_err *err = NULL;
	ok(kv_req_set_hostname("bad \xff byte", &err) == NULL && err &&
	       strstr(err->msg, "set_hostname") && strstr(err->msg, "UTF-8"),
	   "a string that is not UTF-8 is refused, naming the operation: %s", err ? err->msg : "");
	kv_err_free(steal_ptr(err));
	const char *bad[] = {"{\"a\":",	   "{} {}",   "{}x",	 "",
			     "{\"a\":1}]", "{'a':1}", "/*c*/{}", "{\"a\":\"\xff\"}"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		char *t = kv_req_exec("c", "e", false, bad[i], &err);
		ok(t == NULL && err && strstr(err->msg, "not one JSON value"),
		   "embedded text %zu refused: %s", i, err ? err->msg : "(accepted)");
		free(t);
		kv_err_free(steal_ptr(err));
	}
	char *t = kv_req_update("c", NULL, &err);
	is_str(t, "{\"container\":\"c\",\"resources\":null}", "no embedded text: null");
	free(t);
	kv_err_free(err);
}

/* A fake agent: read one request, check what the builder's params became. */
static void fake_agent(int lfd)
{
	int fd = accept(lfd, NULL, NULL);
	char *req;
	size_t len;
	struct kv_err *err = NULL;
	struct kv_msg m;
	int64_t bad_id;
	if (kv_frame_read(fd, &req, &len, &err) != 1 ||
	    kv_msg_decode(req, len, &m, &bad_id, &err) < 0)
		_exit(3);
	const char *c = kv_jstr(m.params, "container");
	if (m.kind != KV_MSG_REQUEST || strcmp(m.op, KV_OP_KILL) || !c || strcmp(c, HOSTILE))
		_exit(4);
	const char *ans = "{\"id\":1,\"result\":{}}";
	if (kv_frame_write(fd, ans, strlen(ans), &err) < 0)
		_exit(5);
	_exit(0);
}

static void test_client(void)
{
	char dir[] = "/tmp/kv-test-req-XXXXXX";
	if (!tap_tmpdir(dir))
		return;
	cleanup_free char *sock = kv_asprintf("%s/agent.sock", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ok(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0,
	   "fake agent listens");
	pid_t pid = fork();
	if (pid == 0)
		fake_agent(lfd);
	close(lfd);
	cleanup_free char *addr = kv_asprintf("unix:%s", sock);
	struct kv_err *err = NULL;
	struct kv_agent_client *c = kv_agent_client_connect(addr, &err);
	cleanup_free char *p = kv_req_kill(HOSTILE, NULL, 15, NULL, &err);
	struct kv_msg resp = {0};
	ok(c && p && kv_agent_client_call(c, KV_OP_KILL, p, &resp, &err) == 0,
	   "a request with a hostile name goes through the client");
	kv_msg_free(&resp);
	int st = -1;
	waitpid(pid, &st, 0);
	is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 100, 0, "the agent decoded the name as sent");
	ok(c && kv_agent_client_call(c, KV_OP_PING, "[1]", &resp, &err) < 0 && err &&
	       strstr(err->msg, "must be an object"),
	   "params that are not an object are refused");
	kv_err_free(steal_ptr(err));
	ok(c && kv_agent_client_call(c, KV_OP_PING, "{\"a\":", &resp, &err) < 0 && err &&
	       strstr(err->msg, "request params"),
	   "params that are not JSON are refused: %s", err ? err->msg : "");
	kv_err_free(err);
	kv_agent_client_free(c);
	unlink(sock);
	rmdir(dir);
}

int main(void)
{
	test_name_ok();
	test_wire_text();
	test_escaping();
	test_refused();
	test_client();
	return tap_done();
}
