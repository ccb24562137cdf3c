/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linux.seccomp: decoded and checked in the agent (names resolved once), then
 * compiled with libseccomp before the container's process is cloned, so the
 * child only loads a ready filter.
 */
#include "agent/internal.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

static const struct {
	const char *name;
	uint32_t action; /* ERRNO/TRACE get their data later */
} actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG},
};

static const struct {
	const char *name;
	enum scmp_compare op;
} compare_ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static const struct {
	const char *name;
	const char *libname;
} arch_names[] = {
    {"SCMP_ARCH_X86", "x86"}, {"SCMP_ARCH_X86_64", "x86_64"},	{"SCMP_ARCH_X32", "x32"},
    {"SCMP_ARCH_ARM", "arm"}, {"SCMP_ARCH_AARCH64", "aarch64"}, {"SCMP_ARCH_RISCV64", "riscv64"},
};

static int decode_action(yajl_val v, const char *what, yajl_val errno_ret, uint32_t *out,
			 struct kv_err **err)
{
	const char *name = v && YAJL_IS_STRING(v) ? v->u.string : NULL;
	size_t i = 0;
	while (name && i < KV_ARRAY_SIZE(actions) && strcmp(actions[i].name, name))
		i++;
	if (!name || i == KV_ARRAY_SIZE(actions))
		return kv_err_make(err, EINVAL, "%s: unknown action %s", what,
				   name ? name : "(missing)");
	uint32_t a = actions[i].action;
	if (a == SCMP_ACT_ERRNO(0) || a == SCMP_ACT_TRACE(0)) {
		long long e = EPERM;
		if (errno_ret && !YAJL_IS_NULL(errno_ret)) {
			if (!YAJL_IS_INTEGER(errno_ret) || YAJL_GET_INTEGER(errno_ret) < 0 ||
			    YAJL_GET_INTEGER(errno_ret) > 4095)
				return kv_err_make(err, EINVAL, "%s: errnoRet must be in 0..4095",
						   what);
			e = YAJL_GET_INTEGER(errno_ret);
		}
		a = a == SCMP_ACT_ERRNO(0) ? SCMP_ACT_ERRNO(e) : SCMP_ACT_TRACE(e);
	}
	*out = a;
	return 0;
}

static int decode_arg(yajl_val v, const char *path, struct kv_seccomp_arg *a, struct kv_err **err)
{
	long long idx;
	if (!kv_jint(v, "index", &idx) || idx < 0 || idx > 5)
		return kv_err_make(err, EINVAL, "%s.index: must be in 0..5", path);
	a->index = idx;
	yajl_val val = kv_jget(v, "value"), two = kv_jget(v, "valueTwo");
	if (!val || !YAJL_IS_NUMBER(val))
		return kv_err_make(err, EINVAL, "%s.value: must be an integer", path);
	/* Values may exceed INT64_MAX: take the integer text. */
	a->value = strtoull(val->u.number.r, NULL, 0);
	a->value_two = two && YAJL_IS_NUMBER(two) ? strtoull(two->u.number.r, NULL, 0) : 0;
	const char *op = kv_jstr(v, "op");
	size_t i = 0;
	while (op && i < KV_ARRAY_SIZE(compare_ops) && strcmp(compare_ops[i].name, op))
		i++;
	if (!op || i == KV_ARRAY_SIZE(compare_ops))
		return kv_err_make(err, EINVAL, "%s.op: unknown operator %s", path,
				   op ? op : "(missing)");
	a->op = compare_ops[i].op;
	return 0;
}

static int decode_rule(yajl_val v, size_t n, struct kv_seccomp_rule *r, struct kv_err **err)
{
	char path[80];
	snprintf(path, sizeof(path), "linux.seccomp.syscalls[%zu]", n);
	yajl_val names = kv_jget(v, "names");
	if (!names || !YAJL_IS_ARRAY(names) || names->u.array.len == 0)
		return kv_err_make(err, EINVAL, "%s.names: must be a non-empty array", path);
	r->syscalls = kv_malloc0(names->u.array.len * sizeof(int));
	for (size_t i = 0; i < names->u.array.len; i++) {
		yajl_val e = names->u.array.values[i];
		if (!YAJL_IS_STRING(e))
			return kv_err_make(err, EINVAL, "%s.names[%zu]: must be a string", path, i);
		int nr = seccomp_syscall_resolve_name(e->u.string);
		/* Like runc: a name this kernel/libseccomp does not know is skipped. */
		if (nr != __NR_SCMP_ERROR)
			r->syscalls[r->nsyscalls++] = nr;
	}
	char sub[192];
	snprintf(sub, sizeof(sub), "%s.action", path);
	if (decode_action(kv_jget(v, "action"), sub, kv_jget(v, "errnoRet"), &r->action, err) < 0)
		return -EINVAL;
	yajl_val args = kv_jget(v, "args");
	if (!args || YAJL_IS_NULL(args))
		return 0;
	if (!YAJL_IS_ARRAY(args) || args->u.array.len > 6)
		return kv_err_make(err, EINVAL, "%s.args: must be an array of at most 6", path);
	r->args = kv_malloc0((args->u.array.len + 1) * sizeof(*r->args));
	for (size_t i = 0; i < args->u.array.len; i++) {
		snprintf(sub, sizeof(sub), "%s.args[%zu]", path, i);
		if (decode_arg(args->u.array.values[i], sub, &r->args[i], err) < 0)
			return -EINVAL;
		r->nargs++;
	}
	return 0;
}

static int decode_flags(yajl_val v, struct kv_seccomp *s, struct kv_err **err)
{
	yajl_val f = kv_jget(v, "flags");
	for (size_t i = 0; f && YAJL_IS_ARRAY(f) && i < f->u.array.len; i++) {
		yajl_val e = f->u.array.values[i];
		const char *name = YAJL_IS_STRING(e) ? e->u.string : "";
		if (strcmp(name, "SECCOMP_FILTER_FLAG_LOG") == 0)
			s->flag_log = true;
		else if (strcmp(name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
			s->flag_spec_allow = true;
		else if (strcmp(name, "SECCOMP_FILTER_FLAG_TSYNC") != 0)
			return kv_err_make(err, EINVAL, "linux.seccomp.flags[%zu]: unknown flag %s",
					   i, name);
	}
	return 0;
}

/* "kvrunBpf": base64 of whole sock_filter instructions, at most BPF_MAXINSNS. */
static int decode_bpf(yajl_val b, struct kv_seccomp *s, struct kv_err **err)
{
	if (!YAJL_IS_STRING(b))
		return kv_err_plain(err, EINVAL, "linux.seccomp.kvrunBpf: must be a string");
	size_t max = BPF_MAXINSNS * sizeof(struct sock_filter);
	s->bpf = kv_malloc0(max);
	ssize_t n = kv_b64_decode(b->u.string, s->bpf, max);
	if (n <= 0 || n % sizeof(struct sock_filter))
		return kv_err_plain(err, EINVAL,
				    "linux.seccomp.kvrunBpf: not base64 of 1..%d BPF instructions",
				    BPF_MAXINSNS);
	s->bpf_len = n;
	return 0;
}

static int decode_header(yajl_val v, struct kv_seccomp *s, struct kv_err **err)
{
	if (decode_action(kv_jget(v, "defaultAction"), "linux.seccomp.defaultAction",
			  kv_jget(v, "defaultErrnoRet"), &s->default_action, err) < 0)
		return -EINVAL;
	yajl_val a = kv_jget(v, "architectures");
	if (a && YAJL_IS_ARRAY(a)) {
		s->arches = kv_malloc0((a->u.array.len + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < a->u.array.len; i++) {
			yajl_val e = a->u.array.values[i];
			const char *name = YAJL_IS_STRING(e) ? e->u.string : "";
			size_t k = 0;
			while (k < KV_ARRAY_SIZE(arch_names) && strcmp(arch_names[k].name, name))
				k++;
			uint32_t arch = k < KV_ARRAY_SIZE(arch_names)
					    ? seccomp_arch_resolve_name(arch_names[k].libname)
					    : 0;
			if (!arch)
				return kv_err_make(err, EINVAL,
						   "linux.seccomp.architectures[%zu]: unknown %s",
						   i, name);
			s->arches[s->narches++] = arch;
		}
	} else if (a && !YAJL_IS_NULL(a)) {
		return kv_err_make(err, EINVAL, "linux.seccomp.architectures: must be an array");
	}
	return decode_flags(v, s, err);
}

int kv_seccomp_decode(yajl_val v, struct kv_seccomp **out, struct kv_err **err)
{
	if (!YAJL_IS_OBJECT(v))
		return kv_err_make(err, EINVAL, "linux.seccomp: must be an object");
	struct kv_seccomp *s = kv_malloc0(sizeof(*s));
	*out = s; /* freed with the spec, also on error */
	yajl_val bpf = kv_jget(v, "kvrunBpf");
	if (bpf)
		return decode_bpf(bpf, s, err) < 0 || decode_flags(v, s, err) < 0 ? -EINVAL : 0;
	if (decode_header(v, s, err) < 0)
		return -EINVAL;
	yajl_val sc = kv_jget(v, "syscalls");
	if (!sc || YAJL_IS_NULL(sc))
		return 0;
	if (!YAJL_IS_ARRAY(sc))
		return kv_err_make(err, EINVAL, "linux.seccomp.syscalls: must be an array");
	s->rules = kv_malloc0((sc->u.array.len + 1) * sizeof(*s->rules));
	for (size_t i = 0; i < sc->u.array.len; i++) {
		s->nrules++;
		if (decode_rule(sc->u.array.values[i], i, &s->rules[i], err) < 0)
			return -EINVAL;
	}
	return 0;
}

void kv_seccomp_free(struct kv_seccomp *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nrules; i++) {
		free(s->rules[i].syscalls);
		free(s->rules[i].args);
	}
	free(s->rules);
	free(s->arches);
	free(s->bpf);
	free(s);
}

static int add_rule(scmp_filter_ctx ctx, const struct kv_seccomp *s, size_t n, struct kv_err **err)
{
	const struct kv_seccomp_rule *r = &s->rules[n];
	struct scmp_arg_cmp cmps[6];
	for (size_t i = 0; i < r->nargs; i++)
		cmps[i] = (struct scmp_arg_cmp){r->args[i].index, r->args[i].op, r->args[i].value,
						r->args[i].value_two};
	if (r->action == s->default_action)
		return 0; /* libseccomp refuses rules equal to the default */
	for (size_t i = 0; i < r->nsyscalls; i++) {
		int rc = seccomp_rule_add_array(ctx, r->action, r->syscalls[i], r->nargs, cmps);
		if (rc < 0)
			return kv_err_make(err, -rc, "linux.seccomp.syscalls[%zu]: add rule for %d",
					   n, r->syscalls[i]);
	}
	return 0;
}

/* A container's filter, ready before its process is cloned: libseccomp's
 * (compiled in the guest) or the host's program as it came. */
struct agent_filter {
	scmp_filter_ctx ctx;
	struct sock_fprog prog;
	unsigned int flags;
};

/*
 * Whether this kernel runs i386 system calls at all. kvrun's guest kernel is
 * built without IA32_EMULATION: no process in it can make an i386 call
 * (int $0x80 faults), so a filter's i386 branch is never reached, and
 * leaving it out is exact. It is most of a profile's size: Docker's default
 * with x86_64, x86 and x32 is 1408 BPF instructions, 880 without x86
 * (tests/bench/seccomp.sh), and the guest kernel checks and converts each
 * one when the filter is loaded, libseccomp builds each one before. The
 * sysctl abi.vsyscall32 exists exactly when IA32_EMULATION is built in;
 * without /proc/sys we cannot tell, and keep the filter whole.
 */
static bool kernel_runs_i386(void)
{
	return access("/proc/sys/abi/vsyscall32", F_OK) == 0 ||
	       access("/proc/sys/kernel", F_OK) != 0;
}

static int compile_ctx(const struct kv_seccomp *s, bool no_new_privs, bool i386,
		       scmp_filter_ctx *out, struct kv_err **err)
{
	scmp_filter_ctx ctx = seccomp_init(s->default_action);
	if (!ctx)
		return kv_err_make(err, EINVAL, "linux.seccomp: seccomp_init failed");
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < s->narches; i++) {
		if (s->arches[i] == SCMP_ARCH_X86 && !i386)
			continue;
		rc = seccomp_arch_add(ctx, s->arches[i]);
		if (rc == -EEXIST)
			rc = 0;
	}
	if (rc < 0) {
		seccomp_release(ctx);
		return kv_err_make(err, -rc, "linux.seccomp.architectures: add");
	}
	/* libseccomp's binary tree of syscall numbers instead of its linear
	 * list: Docker's default profile costs ~14 BPF instructions per call
	 * instead of ~70 (tests/bench/seccomp.sh); the guest kernel interprets
	 * them (no JIT), on PVM hosts at ~1/1000 of native speed. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
		kv_debug("seccomp: no binary-tree optimisation in this libseccomp");
	/* Like runc: NO_NEW_PRIVS only when the spec asks for it. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, no_new_privs ? 1 : 0);
	if (s->flag_log)
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	if (s->flag_spec_allow)
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
	for (size_t i = 0; i < s->nrules; i++)
		if (add_rule(ctx, s, i, err) < 0) {
			seccomp_release(ctx);
			return -EINVAL;
		}
	*out = ctx;
	return 0;
}

int agent_seccomp_compile(const struct kv_seccomp *s, bool no_new_privs, void **out,
			  struct kv_err **err)
{
	struct agent_filter *f = kv_malloc0(sizeof(*f));
	if (s->bpf) {
		f->prog.len = s->bpf_len / sizeof(struct sock_filter);
		f->prog.filter = (struct sock_filter *)s->bpf;
		f->flags = (s->flag_log ? SECCOMP_FILTER_FLAG_LOG : 0) |
			   (s->flag_spec_allow ? SECCOMP_FILTER_FLAG_SPEC_ALLOW : 0);
	} else if (compile_ctx(s, no_new_privs, kernel_runs_i386(), &f->ctx, err) < 0) {
		free(f);
		return -EINVAL;
	}
	*out = f;
	return 0;
}

void *agent_seccomp_ctx(void *filter)
{
	return filter ? ((struct agent_filter *)filter)->ctx : NULL;
}

void agent_seccomp_release(void *filter)
{
	struct agent_filter *f = filter;
	if (!f)
		return;
	if (f->ctx)
		seccomp_release(f->ctx);
	free(f);
}

/* In the child, right before execve (or before dropping privileges). A
 * host-compiled program borrows the spec's bytes (the spec outlives it). */
int agent_seccomp_load(void *filter)
{
	struct agent_filter *f = filter;
	if (!f)
		return 0;
	if (f->ctx)
		return seccomp_load(f->ctx);
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f->flags, &f->prog) < 0 ? -errno : 0;
}

static int export_b64(scmp_filter_ctx ctx, char **b64, struct kv_err **err)
{
	cleanup_close int fd = memfd_create("kvrun-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "linux.seccomp: memfd_create");
	if (seccomp_export_bpf(ctx, fd) < 0)
		return kv_err_plain(err, EINVAL,
				    "linux.seccomp: libseccomp could not export the filter");
	off_t n = lseek(fd, 0, SEEK_END);
	if (n <= 0 || n > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter)))
		return kv_err_plain(err, E2BIG,
				    "linux.seccomp: the filter is %lld BPF instructions, more than "
				    "the kernel's %d",
				    (long long)n / 8, BPF_MAXINSNS);
	cleanup_free uint8_t *buf = kv_malloc0(n);
	if (pread(fd, buf, n, 0) != n)
		return kv_err_make(err, errno, "linux.seccomp: read the exported filter");
	*b64 = kv_malloc0(KV_B64_LEN((size_t)n));
	kv_b64_encode(buf, n, *b64);
	return 0;
}

int agent_seccomp_guest_bpf(struct yajl_val_s *seccomp, char **b64, struct kv_err **err)
{
	struct kv_seccomp *s = NULL;
	scmp_filter_ctx ctx = NULL;
	int rc =
	    kv_seccomp_decode(seccomp, &s, err) < 0 || compile_ctx(s, false, false, &ctx, err) < 0
		? -EINVAL
		: export_b64(ctx, b64, err);
	if (ctx)
		seccomp_release(ctx);
	kv_seccomp_free(s);
	return rc;
}
