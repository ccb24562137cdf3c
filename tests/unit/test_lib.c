/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/kv.h"
#include "tap.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <yajl/yajl_tree.h>

static void test_errors(void)
{
	struct kv_err *err = NULL;
	int r = kv_err_make(&err, ENOENT, "open %s", "config.json");
	is_int(r, -ENOENT, "kv_err_make returns -errno");
	is_str(err->msg, "open config.json: No such file or directory", "message has strerror");
	kv_err_make(&err, EPERM, "second");
	is_int(err->errnum, ENOENT, "the first error is kept");
	kv_err_wrap(&err, "create container %s", "c1");
	is_str(err->msg, "create container c1: open config.json: No such file or directory",
	       "wrap prefixes context");
	kv_err_free(err);
	err = NULL;
	is_int(kv_err_make(&err, 0, "plain"), -1, "errnum 0 returns -1");
	is_str(err->msg, "plain", "no strerror for errnum 0");
	kv_err_free(err);
	err = NULL;
	is_int(kv_err_plain(&err, EINVAL, "%s: bad field %s", "config.json", "process"), -EINVAL,
	       "kv_err_plain returns -errno");
	is_str(err->msg, "config.json: bad field process", "kv_err_plain: message as written");
	is_int(err->errnum, EINVAL, "kv_err_plain keeps errnum");
	kv_err_plain(&err, ENOENT, "second");
	is_str(err->msg, "config.json: bad field process", "kv_err_plain keeps the first error");
	is_int(err->errnum, EINVAL, "and its errnum");
	kv_err_free(err);
	err = NULL;
	is_int(kv_err_plain(&err, 0, "verdict"), -1, "kv_err_plain: errnum 0 returns -1");
	is_int(err->errnum, 0, "with errnum 0");
	kv_err_free(err);
	is_int(kv_err_plain(NULL, EPERM, "nobody listens"), -EPERM, "kv_err_plain with no err");
	is_str(kv_errno_name(ENOENT), "ENOENT", "errno name");
	is_int(kv_errno_from_name("EACCES"), EACCES, "errno from name");
	is_int(kv_errno_from_name("nope"), 0, "unknown errno name");
}

static void test_json(void)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "a", "x\"y");
	kv_json_kint(j, "n", -3);
	kv_json_key(j, "big");
	kv_json_uint(j, 18446744073709551615ull);
	kv_json_key(j, "l");
	kv_json_array_open(j);
	kv_json_bool(j, true);
	kv_json_null(j);
	kv_json_array_close(j);
	kv_json_map_close(j);
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	ok(kv_json_finish(j, &out, &len, &err) == 0, "balanced document finishes");
	is_str(out, "{\"a\":\"x\\\"y\",\"n\":-3,\"big\":18446744073709551615,\"l\":[true,null]}",
	       "writer output");
	size_t dup_len = 0;
	cleanup_free char *dup = kv_json_finish_dup(j, &dup_len, &err);
	ok(dup && dup_len == len && strlen(dup) == len && memcmp(dup, out, len) == 0,
	   "finish_dup: a NUL-terminated copy and its length");

	cleanup_json struct kv_json *bad = kv_json_new(false);
	kv_json_map_open(bad);
	kv_json_kstr(bad, "a", "b");
	ok(kv_json_finish(bad, &out, &len, &err) < 0, "unbalanced document is refused");
	ok(err && strstr(err->msg, "unbalanced"), "error says unbalanced");
	kv_err_free(err);
	err = NULL;
	ok(kv_json_finish_dup(bad, NULL, &err) == NULL && err, "  and no copy of it");
	kv_err_free(err);
	err = NULL;

	cleanup_json struct kv_json *bad2 = kv_json_new(false);
	kv_json_map_open(bad2);
	kv_json_int(bad2, 1);
	kv_json_map_close(bad2);
	ok(kv_json_finish(bad2, &out, &len, &err) < 0, "non-string key is refused");
	kv_err_free(err);
	err = NULL;

	cleanup_json struct kv_json *bad3 = kv_json_new(false);
	kv_json_str(bad3, "\xff\xfe");
	ok(kv_json_finish(bad3, &out, &len, &err) < 0, "invalid UTF-8 is refused");
	kv_err_free(err);
	err = NULL;

	cleanup_yajl_val struct yajl_val_s *v = kv_json_parse("{\"k\": [1,2", "t.json", &err);
	ok(v == NULL && err && strstr(err->msg, "t.json: invalid JSON"), "parse error names file");
	kv_err_free(err);
	err = NULL;
	cleanup_yajl_val struct yajl_val_s *v2 = kv_json_parse("{\"k\": 1}", "t.json", &err);
	const char *path[] = {"k", NULL};
	yajl_val k = yajl_tree_get(v2, path, yajl_t_number);
	ok(k && YAJL_GET_INTEGER(k) == 1, "parse reads a value");
}

/* kv_json_raw: a checked value copied as it is; the typed readers (lib now). */
static void test_json_raw_and_readers(void)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_array_open(j);
	const char *obj = "{\"a\": [1, 2.50]}";
	kv_json_raw(j, obj, strlen(obj));
	kv_json_raw(j, "\"s\"", 3);
	kv_json_array_close(j);
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	ok(kv_json_finish(j, &out, &len, &err) == 0, "raw values finish");
	is_str(out, "[{\"a\": [1, 2.50]},\"s\"]", "raw values copied as they are, separated");
	cleanup_json struct kv_json *key = kv_json_new(false);
	kv_json_map_open(key);
	kv_json_raw(key, "\"k\"", 3);
	kv_json_int(key, 1);
	kv_json_map_close(key);
	ok(kv_json_finish(key, &out, &len, &err) < 0, "a raw value where a key belongs is refused");
	kv_err_free(steal_ptr(err));
	cleanup_json struct kv_json *bad = kv_json_new(false);
	kv_json_raw(bad, "[1] [2]", 7);
	ok(kv_json_finish(bad, &out, &len, &err) < 0 && strstr(err->msg, "not one JSON value"),
	   "two values in one raw text are refused");
	kv_err_free(steal_ptr(err));

	cleanup_yajl_val struct yajl_val_s *v =
	    kv_json_parse("{\"s\":\"x\",\"i\":-4,\"b\":true,\"f\":1.5}", "t", &err);
	long long i = 0;
	bool b = false;
	ok(v && kv_jget(v, "s") && strcmp(kv_jstr(v, "s"), "x") == 0 && kv_jint(v, "i", &i) &&
	       i == -4 && kv_jbool(v, "b", &b) && b,
	   "readers: string, integer, bool");
	ok(!kv_jstr(v, "i") && !kv_jint(v, "f", &i) && !kv_jbool(v, "s", &b) && !kv_jget(v, "no") &&
	       !kv_jget(NULL, "s"),
	   "readers: another type or absent is NULL/false");
}

static void test_files(void)
{
	char dir[] = "/tmp/kvlibtestXXXXXX";
	ok(mkdtemp(dir) != NULL, "mkdtemp");
	cleanup_free char *deep = kv_asprintf("%s/a/b/c", dir);
	struct kv_err *err = NULL;
	ok(kv_mkdir_p(deep, 0700, &err) == 0, "mkdir -p");
	cleanup_free char *f = kv_asprintf("%s/a/state.json", dir);
	ok(kv_write_file_atomic(f, "hello", 5, 0600, &err) == 0, "atomic write");
	char *buf = NULL;
	size_t n;
	ok(kv_read_file(f, 100, &buf, &n, &err) == 0 && n == 5 && strcmp(buf, "hello") == 0,
	   "read back");
	free(buf);
	ok(kv_read_file(f, 3, &buf, &n, &err) == -EFBIG, "size limit enforced");
	kv_err_free(err);
	err = NULL;
	struct stat st;
	ok(stat(f, &st) == 0 && (st.st_mode & 0777) == 0600, "mode kept");
	ok(kv_write_file_volatile(f, "again", 5, 0644, &err) == 0, "volatile write replaces it");
	ok(kv_read_file(f, 100, &buf, &n, &err) == 0 && strcmp(buf, "again") == 0, "  read back");
	free(buf);
	ok(stat(f, &st) == 0 && (st.st_mode & 0777) == 0644, "  with its mode");
	cleanup_free char *tmp = kv_asprintf("%s.tmp.%d", f, (int)getpid());
	ok(access(tmp, F_OK) < 0, "  and no temporary file left");
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", dir);
	ok(system(cmd) == 0, "cleanup");
}

static void test_sizes(void)
{
	uint64_t v = 0;
	ok(kv_parse_size("256M", &v) == 0 && v == 256ull << 20, "256M");
	ok(kv_parse_size("1G", &v) == 0 && v == 1ull << 30, "1G");
	ok(kv_parse_size("4096", &v) == 0 && v == 4096, "plain bytes");
	ok(kv_parse_size("2KiB", &v) == 0 && v == 2048, "KiB suffix");
	ok(kv_parse_size("12X", &v) < 0, "bad suffix refused");
	ok(kv_parse_size("-1", &v) < 0, "negative refused");
	ok(kv_parse_size("99999999999999999999G", &v) < 0, "overflow refused");
	struct kv_ratelimit rl = KV_RATELIMIT_INIT(60000, 2);
	int n = 0;
	for (int i = 0; i < 10; i++)
		n += kv_ratelimit_ok(&rl);
	is_int(n, 2, "rate limit passes the burst only");
}

/* The published FNV-1a 64 test vectors: template ids and agent names on
 * disk stay what they were. */
static void test_fnv(void)
{
	ok(kv_fnv1a64("") == 0xcbf29ce484222325ull, "FNV-1a of \"\" is the offset basis");
	ok(kv_fnv1a64("a") == 0xaf63dc4c8601ec8cull, "FNV-1a of \"a\"");
	ok(kv_fnv1a64("foobar") == 0x85944171f73967e8ull, "FNV-1a of \"foobar\"");
}

/* Clock ticks since boot now: no process can have started later. */
static uint64_t boot_ticks_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);
	return (uint64_t)ts.tv_sec * hz + (uint64_t)ts.tv_nsec / (1000000000ull / hz);
}

static void test_proc(void)
{
	uint64_t mine = 0, child_start = 0, again = 0;
	ok(kv_pid_start_time(getpid(), &mine) == 0 && mine > 0, "our own start time");

	/* A child whose name holds ") (": the parser must skip to the last ')'. */
	int ready[2], hold[2];
	if (pipe(ready) < 0 || pipe(hold) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(hold[1]);
		prctl(PR_SET_NAME, "a) b (c");
		if (write(ready[1], "r", 1) != 1 || read(hold[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	char c;
	ok(read(ready[0], &c, 1) == 1, "child is up");
	ok(kv_pid_start_time(pid, &child_start) == 0, "a live child has a start time");
	ok(child_start >= mine && child_start <= boot_ticks_now() + 1,
	   "it is field 22, past a name with ') (' (%llu)", (unsigned long long)child_start);
	ok(kv_pid_start_time(pid, &again) == 0 && again == child_start, "it is stable");

	/* Let it exit, wait for the zombie without reaping it. */
	close(hold[1]);
	siginfo_t si;
	ok(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0, "child exited");
	ok(kv_pid_start_time(pid, &again) < 0, "a zombie has none");
	waitpid(pid, NULL, 0);
	ok(kv_pid_start_time(pid, &again) < 0, "a reaped process has none");
	ok(kv_pid_start_time(0, &again) < 0 && kv_pid_start_time(-1, &again) < 0,
	   "pid 0 and -1 have none");
	close(ready[0]);
	close(ready[1]);
	close(hold[0]);
}

static void test_timing(void)
{
	kv_timing_start();
	kv_timing_mark("one");
	kv_timing_part("vm", 1500000);
	kv_timing_part("agent", 250000);
	kv_timing_mark("shim");
	kv_timing_mark("three");
	cleanup_free char *line = kv_timing_line();
	diag("%s", line);
	ok(line && strncmp(line, "one ", 4) == 0, "a phase: its name, then its time");
	ok(line && strstr(line, ", shim ") &&
	       strstr(line, " ms [vm 1.50 ms, agent 0.25 ms], three "),
	   "parts measured elsewhere follow the phase they were marked in");
	ok(line && strstr(line, " = "), "the total last");
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_timing_json(j);
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	ok(kv_json_finish(j, &out, &len, &err) == 0 && strncmp(out, "[[\"one\",", 8) == 0 &&
	       strstr(out, "[\"vm\",1500000]"),
	   "as JSON: [name, ns] pairs");
	kv_err_free(err);
	kv_timing_start();
	for (int i = 0; i < KV_TIMING_MAX + 5; i++)
		kv_timing_mark("x");
	cleanup_free char *full = kv_timing_line();
	size_t marks = 0;
	for (const char *p = full; p && (p = strstr(p, "x ")); p++)
		marks++;
	is_int((int)marks, KV_TIMING_MAX, "marks past the table are dropped");
	setenv("KVRUN_TIMINGS", "0", 1);
	ok(!kv_timing_wanted(), "KVRUN_TIMINGS=0: not wanted");
	setenv("KVRUN_TIMINGS", "1", 1);
	ok(kv_timing_wanted(), "KVRUN_TIMINGS=1: wanted");
	unsetenv("KVRUN_TIMINGS");
}

int main(void)
{
	test_errors();
	test_json();
	test_json_raw_and_readers();
	test_files();
	test_sizes();
	test_fnv();
	test_proc();
	test_timing();
	return tap_done();
}
