/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's seccomp filter compiled on the host (agent_seccomp_guest_bpf,
 * as kvrun create does) and loaded as it came in the guest (kvrunBpf): the
 * base64 both ways, no i386 branch, the agent's decoding of the program and
 * its refusals, and the program loaded into a real process.
 */
#include "agent/agent.h"
#include "agent/internal.h"
#include "oci/oci.h"
#include "tap.h"

#include <errno.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

static void clear(struct kv_err **e)
{
	kv_err_free(*e);
	*e = NULL;
}

static void test_b64(void)
{
	char out[KV_B64_LEN(5)];
	kv_b64_encode((const uint8_t *)"hello", 5, out);
	is_str(out, "aGVsbG8=", "base64 of hello");
	uint8_t back[8];
	ssize_t n = kv_b64_decode(out, back, sizeof(back));
	ok(n == 5 && memcmp(back, "hello", 5) == 0, "decoded back");
	is_int(kv_b64_decode("aGVsbG8", back, sizeof(back)), -1, "a length not a multiple of 4");
	is_int(kv_b64_decode("aG@sbG8=", back, sizeof(back)), -1, "a bad character");
	is_int(kv_b64_decode("aGVsbG8=", back, 4), -1, "more bytes than room");
	is_int(kv_b64_decode("", back, sizeof(back)), 0, "empty is empty");
}

/* The host's program for a profile with ARCHES (JSON array text). */
static char *guest_bpf(const char *arches, const char *syscalls, struct kv_err **err)
{
	char *text = kv_asprintf("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
				 "\"architectures\":%s,\"syscalls\":%s}",
				 arches, syscalls);
	yajl_val v = yajl_tree_parse(text, NULL, 0);
	free(text);
	/* As kvrun has it: config.json's object as oci/ parsed it. */
	struct oci_alloc *owned = NULL;
	struct pctx c = {.owner = &owned, .err = err};
	pc_push_key(&c, "linux.seccomp");
	struct oci_seccomp *y = NULL;
	char *b64 = NULL;
	int r = oci_parse_seccomp(&c, v, &y);
	if (r == 0)
		r = agent_seccomp_guest_bpf(y, &b64, err);
	oci_alloc_free(owned);
	yajl_tree_free(v);
	return r < 0 ? NULL : b64;
}

#define ALLOW_FEW                                                                                  \
	"[{\"names\":[\"read\",\"write\",\"exit\",\"exit_group\",\"rt_sigreturn\"],"               \
	"\"action\":\"SCMP_ACT_ALLOW\"}]"

static void test_guest_bpf(void)
{
	struct kv_err *err = NULL;
	char *all = guest_bpf("[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]",
			      ALLOW_FEW, &err);
	char *no_i386 = guest_bpf("[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X32\"]", ALLOW_FEW, &err);
	char *only64 = guest_bpf("[\"SCMP_ARCH_X86_64\"]", ALLOW_FEW, &err);
	ok(all && no_i386 && only64, "compiled");
	ok(all && no_i386 && strcmp(all, no_i386) == 0,
	   "the i386 branch is left out: the same program as without SCMP_ARCH_X86");
	ok(all && only64 && strcmp(all, only64) != 0, "x32 is kept");
	uint8_t buf[BPF_MAXINSNS * 8];
	ssize_t n = all ? kv_b64_decode(all, buf, sizeof(buf)) : -1;
	ok(n > 0 && n % 8 == 0, "whole BPF instructions (%zd bytes)", n);
	free(no_i386);
	free(only64);

	char *bad = guest_bpf("[\"SCMP_ARCH_X86_64\"]",
			      "[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_NOPE\"}]", &err);
	ok(!bad && err &&
	       strcmp(err->msg,
		      "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_NOPE\"") == 0,
	   "a bad profile is refused on the host, naming the field: %s", err ? err->msg : "");
	clear(&err);
	free(all);
}

static struct kv_seccomp *decode(const char *text, struct kv_err **err)
{
	yajl_val v = yajl_tree_parse(text, NULL, 0);
	struct kv_seccomp *s = NULL;
	int r = kv_seccomp_decode(v, &s, err);
	yajl_tree_free(v);
	if (r < 0) {
		kv_seccomp_free(s);
		return NULL;
	}
	return s;
}

/* Refused with exactly this verdict: no strerror, the errno the agent answers
 * is EINVAL. */
static void refused(const char *text, const char *want)
{
	struct kv_err *err = NULL;
	struct kv_seccomp *s = decode(text, &err);
	ok(!s && err && strcmp(err->msg, want) == 0 && (err->errnum == 0 || err->errnum == EINVAL),
	   "refused: %s", err ? err->msg : "(accepted)");
	kv_seccomp_free(s);
	kv_err_free(err);
}

static void test_decode(void)
{
	struct kv_err *err = NULL;
	/* What the test's process needs under ASan, and not getppid. */
	char *b64 = guest_bpf("[\"SCMP_ARCH_X86_64\"]",
			      "[{\"names\":[\"read\",\"write\",\"exit\",\"exit_group\","
			      "\"rt_sigreturn\",\"sigaltstack\",\"mmap\",\"munmap\",\"mprotect\","
			      "\"madvise\",\"rt_sigprocmask\",\"rt_sigaction\",\"getpid\","
			      "\"gettid\",\"tgkill\",\"prctl\",\"futex\",\"sched_yield\"],"
			      "\"action\":\"SCMP_ACT_ALLOW\"}]",
			      &err);
	char *text =
	    kv_asprintf("{\"kvrunBpf\":\"%s\",\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"]}", b64);
	struct kv_seccomp *s = decode(text, &err);
	ok(s && s->bpf && s->bpf_len > 0 && s->bpf_len % 8 == 0 && s->nrules == 0,
	   "kvrunBpf: the program, nothing to compile");
	ok(s && s->flag_log, "its flags");
	void *f = NULL;
	ok(s && agent_seccomp_compile(s, true, &f, &err) == 0 && f && !agent_seccomp_ctx(f),
	   "no libseccomp context for it");

	/* Loaded as it came: read/write/exit allowed, anything else EPERM. */
	pid_t pid = fork();
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || agent_seccomp_load(f) < 0)
			_exit(2);
		long r = syscall(SYS_getppid);
		_exit(r == -1 && errno == EPERM ? 0 : 1);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "loaded: getppid gets EPERM (status %d)", st);
	agent_seccomp_release(f);
	kv_seccomp_free(s);
	free(text);
	free(b64);

	const char *bad[][2] = {
	    {"{\"kvrunBpf\":1}", "linux.seccomp.kvrunBpf: must be a string"},
	    {"{\"kvrunBpf\":\"@@@@\"}",
	     "linux.seccomp.kvrunBpf: not base64 of 1..4096 BPF instructions"},
	    {"{\"kvrunBpf\":\"\"}",
	     "linux.seccomp.kvrunBpf: not base64 of 1..4096 BPF instructions"},
	    {"{\"kvrunBpf\":\"aGVsbG8=\"}",
	     "linux.seccomp.kvrunBpf: not base64 of 1..4096 BPF instructions"},
	    {"{\"kvrunBpf\":\"AAAAAAAAAAA=\",\"flags\":[\"X\"]}",
	     "linux.seccomp.flags[0]: unknown flag \"X\""},
	    {"{\"kvrunBpf\":\"AAAAAAAAAAA=\",\"flags\":\"X\"}",
	     "linux.seccomp.flags: must be an array"},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad); i++)
		refused(bad[i][0], bad[i][1]);
}

/* The OCI object, read with oci/'s readers and names as on the host. */
#define RULE(args)                                                                                 \
	"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"               \
	"\"action\":\"SCMP_ACT_ERRNO\",\"args\":[" args "]}]}"

static void test_decode_oci(void)
{
	struct kv_err *err = NULL;
	struct kv_seccomp *s = decode(
	    "{\"defaultAction\":\"SCMP_ACT_KILL\",\"defaultErrnoRet\":3,"
	    "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_X32\"],"
	    "\"flags\":[\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\",\"SECCOMP_FILTER_FLAG_TSYNC\"],"
	    "\"syscalls\":[{\"names\":[\"read\",\"no_such_call\",\"write\"],"
	    "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":5,"
	    "\"value\":18446744073709551615,\"valueTwo\":7,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},"
	    "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":4095},"
	    "{\"names\":[\"close\"],\"action\":\"SCMP_ACT_LOG\"}]}",
	    &err);
	ok(s != NULL, "decoded (%s)", err ? err->msg : "ok");
	if (s) {
		ok(s->default_action == SCMP_ACT_KILL_THREAD, "SCMP_ACT_KILL: the thread");
		ok(s->narches == 2 && s->arches[0] == SCMP_ARCH_X86_64 &&
		       s->arches[1] == SCMP_ARCH_X32,
		   "architectures: x86_64 and x32; aarch64 (another host's) left out");
		ok(s->flag_spec_allow && !s->flag_log, "flags");
		ok(s->nrules == 3 && s->rules[0].nsyscalls == 2, "an unknown name is skipped");
		ok(s->rules[0].action == SCMP_ACT_ERRNO(EPERM), "ERRNO without errnoRet: EPERM");
		ok(s->rules[0].nargs == 1 && s->rules[0].args[0].index == 5 &&
		       s->rules[0].args[0].value == UINT64_MAX &&
		       s->rules[0].args[0].value_two == 7 &&
		       s->rules[0].args[0].op == SCMP_CMP_MASKED_EQ,
		   "an argument: 2^64-1 read exactly, the operator");
		ok(s->rules[1].action == SCMP_ACT_TRACE(4095), "TRACE with errnoRet 4095");
		ok(s->rules[2].action == SCMP_ACT_LOG, "LOG");
	}
	kv_seccomp_free(s);
	kv_err_free(err);

	const char *bad[][2] = {
	    {"[]", "linux.seccomp: must be an object"},
	    {"{}", "linux.seccomp.defaultAction: required field is missing"},
	    {"{\"defaultAction\":\"SCMP_ACT_NOPE\"}",
	     "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\""},
	    {"{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}",
	     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY is not supported by kvrun"},
	    {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":4096}",
	     "linux.seccomp.defaultErrnoRet: out of range (maximum 4095)"},
	    {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\","
	     "\"SCMP_ARCH_PDP11\"]}",
	     "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_PDP11\""},
	    {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_X\"]}",
	     "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_X\""},
	    {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[],"
	     "\"action\":\"SCMP_ACT_ALLOW\"}]}",
	     "linux.seccomp.syscalls[0].names: must be a non-empty array"},
	    {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
	     "\"action\":\"SCMP_ACT_FLY\"}]}",
	     "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_FLY\""},
	    {RULE("{\"index\":0,\"value\":-1,\"op\":\"SCMP_CMP_EQ\"}"),
	     "linux.seccomp.syscalls[0].args[0].value: must not be negative"},
	    {RULE("{\"index\":0,\"value\":1.5,\"op\":\"SCMP_CMP_EQ\"}"),
	     "linux.seccomp.syscalls[0].args[0].value: must be an integer"},
	    {RULE("{\"index\":0,\"value\":1,\"valueTwo\":-1,\"op\":\"SCMP_CMP_MASKED_EQ\"}"),
	     "linux.seccomp.syscalls[0].args[0].valueTwo: must not be negative"},
	    {RULE("{\"index\":0,\"value\":18446744073709551616,\"op\":\"SCMP_CMP_EQ\"}"),
	     "linux.seccomp.syscalls[0].args[0].value: out of range (maximum "
	     "18446744073709551615)"},
	    {RULE("{\"index\":-1,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}"),
	     "linux.seccomp.syscalls[0].args[0].index: must not be negative"},
	    {RULE("{\"index\":6,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}"),
	     "linux.seccomp.syscalls[0].args[0].index: out of range (maximum 5)"},
	    {RULE("{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_ABOUT\"}"),
	     "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\""},
	    {RULE("{\"index\":0,\"value\":1}"),
	     "linux.seccomp.syscalls[0].args[0].op: required field is missing"},
	    {RULE("{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		  "{\"index\":1,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		  "{\"index\":2,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		  "{\"index\":3,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		  "{\"index\":4,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		  "{\"index\":5,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		  "{\"index\":0,\"value\":2,\"op\":\"SCMP_CMP_EQ\"}"),
	     "linux.seccomp.syscalls[0].args: must be an array of at most 6"},
	    {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
	     "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":4096}]}",
	     "linux.seccomp.syscalls[0].errnoRet: out of range (maximum 4095)"},
	    {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
	     "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1.5}]}",
	     "linux.seccomp.syscalls[0].errnoRet: must be an integer"},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad); i++)
		refused(bad[i][0], bad[i][1]);
}

int main(void)
{
	test_b64();
	test_guest_bpf();
	test_decode();
	test_decode_oci();
	return tap_done();
}
