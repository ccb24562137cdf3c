/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linux.seccomp: read with oci/'s parser, as the host reads config.json (one
 * schema, one message for one mistake), its names resolved to libseccomp's
 * values once, then compiled with libseccomp before the container's process
 * is cloned, so the child only loads a ready filter.
 */
#include "agent/internal.h"
#include "oci/oci.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

/*
 * libseccomp's values for oci's names (oci/names.c), entry for entry in the
 * same order: one list of names on both sides, what `kvrun features` says.
 */
static const uint32_t scmp_actions[] = {
    SCMP_ACT_ALLOW,	   /* SCMP_ACT_ALLOW */
    SCMP_ACT_ERRNO(0),	   /* SCMP_ACT_ERRNO: errnoRet added */
    SCMP_ACT_KILL_THREAD,  /* SCMP_ACT_KILL */
    SCMP_ACT_KILL_PROCESS, /* SCMP_ACT_KILL_PROCESS */
    SCMP_ACT_KILL_THREAD,  /* SCMP_ACT_KILL_THREAD */
    SCMP_ACT_LOG,	   /* SCMP_ACT_LOG */
    SCMP_ACT_KILL_THREAD,  /* SCMP_ACT_NOTIFY: oci_parse_seccomp refuses it */
    SCMP_ACT_TRACE(0),	   /* SCMP_ACT_TRACE: errnoRet added */
    SCMP_ACT_TRAP,	   /* SCMP_ACT_TRAP */
};
_Static_assert(KV_ARRAY_SIZE(scmp_actions) == OCI_SECCOMP_ACTION_COUNT, "oci_seccomp_actions");

static const enum scmp_compare scmp_operators[] = {
    [OCI_SCMP_CMP_NE] = SCMP_CMP_NE,
    [OCI_SCMP_CMP_LT] = SCMP_CMP_LT,
    [OCI_SCMP_CMP_LE] = SCMP_CMP_LE,
    [OCI_SCMP_CMP_EQ] = SCMP_CMP_EQ,
    [OCI_SCMP_CMP_GE] = SCMP_CMP_GE,
    [OCI_SCMP_CMP_GT] = SCMP_CMP_GT,
    [OCI_SCMP_CMP_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
};
_Static_assert(KV_ARRAY_SIZE(scmp_operators) == OCI_SECCOMP_OPERATOR_COUNT,
	       "oci_seccomp_operators");

static const uint32_t scmp_archs[] = {
    SCMP_ARCH_X86,    /* SCMP_ARCH_X86 */
    SCMP_ARCH_X86_64, /* SCMP_ARCH_X86_64 */
    SCMP_ARCH_X32,    /* SCMP_ARCH_X32 */
};
_Static_assert(KV_ARRAY_SIZE(scmp_archs) == OCI_SECCOMP_ARCH_COUNT, "oci_seccomp_archs");

/* The index of name in an oci table, n when not there. oci_parse_seccomp has
 * checked actions and operators against these very tables, so only an
 * architecture (another host's, accepted) or a kvrunBpf flag can miss. */
static size_t name_index(const char *name, const char *const *names, size_t n)
{
	size_t i = 0;
	while (i < n && strcmp(names[i], name) != 0)
		i++;
	return i;
}

/* ERRNO and TRACE carry errnoRet (EPERM when absent) in SECCOMP_RET_DATA. */
static int action_of(struct pctx *c, const char *name, const char *errno_key, bool has_ret,
		     uint32_t ret, uint32_t *out)
{
	uint32_t a = scmp_actions[name_index(name, oci_seccomp_actions, OCI_SECCOMP_ACTION_COUNT)];
	if (a == SCMP_ACT_ERRNO(0) || a == SCMP_ACT_TRACE(0)) {
		if (has_ret && ret > 4095)
			return pc_fail_at(c, errno_key, "out of range (maximum 4095)");
		uint32_t e = has_ret ? ret : EPERM;
		a = a == SCMP_ACT_ERRNO(0) ? SCMP_ACT_ERRNO(e) : SCMP_ACT_TRACE(e);
	}
	*out = a;
	return 0;
}

static int rule_of(struct pctx *c, const struct oci_seccomp_syscall *y, struct kv_seccomp_rule *r)
{
	r->syscalls = pc_alloc(c, y->names.n * sizeof(int));
	for (size_t i = 0; i < y->names.n; i++) {
		int nr = seccomp_syscall_resolve_name(y->names.v[i]);
		/* Like runc: a name this kernel/libseccomp does not know is skipped. */
		if (nr != __NR_SCMP_ERROR)
			r->syscalls[r->nsyscalls++] = nr;
	}
	if (action_of(c, y->action, "errnoRet", y->has_errno_ret, y->errno_ret, &r->action) < 0)
		return -1;
	/* libseccomp compares at most six arguments in one rule. */
	if (y->n_args > 6)
		return pc_fail_at(c, "args", "must be an array of at most 6");
	r->args = pc_alloc(c, y->n_args * sizeof(*r->args));
	for (size_t i = 0; i < y->n_args; i++) {
		const struct oci_seccomp_arg *a = &y->args[i];
		size_t op = name_index(a->op, oci_seccomp_operators, OCI_SECCOMP_OPERATOR_COUNT);
		r->args[i] =
		    (struct kv_seccomp_arg){a->index, a->value, a->value_two, scmp_operators[op]};
	}
	r->nargs = y->n_args;
	return 0;
}

static void flags_of(const struct oci_strv *f, struct kv_seccomp *s)
{
	/* TSYNC: the agent's child has one thread; WAIT_KILLABLE_RECV: only
	 * for a notify listener, which kvrun refuses. */
	for (size_t i = 0; i < f->n; i++) {
		s->flag_log |= strcmp(f->v[i], "SECCOMP_FILTER_FLAG_LOG") == 0;
		s->flag_spec_allow |= strcmp(f->v[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0;
	}
}

/* The OCI object as oci/ read it, resolved for libseccomp. */
static int resolve_oci(struct pctx *c, const struct oci_seccomp *y, struct kv_seccomp *s)
{
	if (action_of(c, y->default_action, "defaultErrnoRet", y->has_default_errno_ret,
		      y->default_errno_ret, &s->default_action) < 0)
		return -1;
	s->arches = pc_alloc(c, y->architectures.n * sizeof(uint32_t));
	for (size_t i = 0; i < y->architectures.n; i++) {
		size_t k =
		    name_index(y->architectures.v[i], oci_seccomp_archs, OCI_SECCOMP_ARCH_COUNT);
		/* Another host's (aarch64...): no x86_64 guest process makes its
		 * calls, so its branch would never be reached. */
		if (k < OCI_SECCOMP_ARCH_COUNT)
			s->arches[s->narches++] = scmp_archs[k];
	}
	flags_of(&y->flags, s);
	s->rules = pc_alloc(c, y->n_syscalls * sizeof(*s->rules));
	size_t old = pc_push_key(c, "syscalls");
	for (size_t i = 0; i < y->n_syscalls; i++) {
		size_t o2 = pc_push_idx(c, i);
		int r = rule_of(c, &y->syscalls[i], &s->rules[i]);
		pc_pop(c, o2);
		if (r < 0) {
			pc_pop(c, old);
			return -1;
		}
		s->nrules++;
	}
	pc_pop(c, old);
	return 0;
}

/* The OCI object: read by oci/ as on the host, then resolved. */
static int decode_oci(struct pctx *c, yajl_val v, struct kv_seccomp *s)
{
	struct oci_seccomp *y;
	return oci_parse_seccomp(c, v, &y) < 0 ? -1 : resolve_oci(c, y, s);
}

/* "kvrunBpf": base64 of whole sock_filter instructions, at most BPF_MAXINSNS,
 * and the flags to load it with. */
static int decode_bpf(struct pctx *c, yajl_val v, struct kv_seccomp *s)
{
	char *b64 = NULL;
	if (pc_str(c, v, "kvrunBpf", true, &b64) < 0)
		return -1;
	size_t max = BPF_MAXINSNS * sizeof(struct sock_filter);
	s->bpf = pc_alloc(c, max);
	ssize_t n = kv_b64_decode(b64, s->bpf, max);
	if (n <= 0 || n % sizeof(struct sock_filter))
		return pc_fail_at(c, "kvrunBpf", "not base64 of 1..%d BPF instructions",
				  BPF_MAXINSNS);
	s->bpf_len = n;
	struct oci_strv flags;
	if (pc_strv(c, v, "flags", &flags) < 0)
		return -1;
	for (size_t i = 0; i < flags.n; i++)
		if (name_index(flags.v[i], oci_seccomp_flags, oci_seccomp_flag_count) ==
		    oci_seccomp_flag_count)
			return pc_fail_idx(c, "flags", i, "unknown flag \"%s\"", flags.v[i]);
	flags_of(&flags, s);
	return 0;
}

int kv_seccomp_decode(yajl_val v, struct kv_seccomp **out, struct kv_err **err)
{
	struct kv_seccomp *s = kv_malloc0(sizeof(*s));
	*out = s; /* freed with the spec, also on error */
	struct pctx c = {.owner = &s->owned, .err = err};
	pc_push_key(&c, "linux.seccomp");
	return pc_get(v, "kvrunBpf") ? decode_bpf(&c, v, s) : decode_oci(&c, v, s);
}

void kv_seccomp_free(struct kv_seccomp *s)
{
	if (!s)
		return;
	oci_alloc_free(s->owned);
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

int agent_seccomp_guest_bpf(const struct oci_seccomp *seccomp, char **b64, struct kv_err **err)
{
	struct kv_seccomp *s = kv_malloc0(sizeof(*s));
	struct pctx c = {.owner = &s->owned, .err = err};
	pc_push_key(&c, "linux.seccomp");
	scmp_filter_ctx ctx = NULL;
	int rc = resolve_oci(&c, seccomp, s) < 0 || compile_ctx(s, false, false, &ctx, err) < 0
		     ? -EINVAL
		     : export_b64(ctx, b64, err);
	if (ctx)
		seccomp_release(ctx);
	kv_seccomp_free(s);
	return rc;
}
