/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp-cost CONFIG.JSON: what a container's seccomp filter costs the
 * guest kernel per system call, counted in BPF instructions executed (on
 * PVM hosts every guest kernel instruction is emulated, ~1000x slower: the
 * count is what matters; the guest kernel interprets classic BPF, it has
 * no JIT). The filter is the agent's own (kv_seccomp_decode and
 * agent_seccomp_compile, as for a container), exported as BPF twice: as
 * libseccomp builds it by default (a linear list of syscall compares) and
 * with its binary-tree optimisation (SCMP_FLTATR_CTL_OPTIMIZE 2, what the
 * agent asks for). Each program runs here, in a small classic-BPF
 * interpreter, for every x86-64 syscall number 0..SECCOMP_COST_NR_MAX and
 * for the calls a shell's fork+exec makes (a typical mix); prints the mean
 * instructions per call for each, and the ratio.
 */
#include "agent/internal.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define SECCOMP_COST_NR_MAX 450
#define BPF_MAX		    65536

struct prog {
	struct sock_filter *ins;
	size_t n;
};

/* Classic BPF over a seccomp_data; returns instructions executed, 0 on a bad program. */
static unsigned long run(const struct prog *p, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
	unsigned long steps = 0;
	for (size_t pc = 0; pc < p->n;) {
		const struct sock_filter *f = &p->ins[pc++];
		steps++;
		uint32_t k = f->k;
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (k + 4 > sizeof(*d))
				return 0;
			memcpy(&a, (const uint8_t *)d + k, 4);
			break;
		case BPF_LD | BPF_IMM: a = k; break;
		case BPF_LDX | BPF_IMM: x = k; break;
		case BPF_LD | BPF_MEM: a = mem[k % BPF_MEMWORDS]; break;
		case BPF_LDX | BPF_MEM: x = mem[k % BPF_MEMWORDS]; break;
		case BPF_ST: mem[k % BPF_MEMWORDS] = a; break;
		case BPF_STX: mem[k % BPF_MEMWORDS] = x; break;
		case BPF_ALU | BPF_AND | BPF_K: a &= k; break;
		case BPF_ALU | BPF_OR | BPF_K: a |= k; break;
		case BPF_MISC | BPF_TAX: x = a; break;
		case BPF_MISC | BPF_TXA: a = x; break;
		case BPF_JMP | BPF_JA: pc += k; break;
		case BPF_JMP | BPF_JEQ | BPF_K: pc += a == k ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGT | BPF_K: pc += a > k ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGE | BPF_K: pc += a >= k ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JSET | BPF_K: pc += (a & k) ? f->jt : f->jf; break;
		case BPF_RET | BPF_K: return steps;
		case BPF_RET | BPF_A: return steps;
		default:
			fprintf(stderr, "seccomp-cost: BPF op %#x not handled\n", f->code);
			return 0;
		}
	}
	return 0;
}

static int export(void *ctx, int level, struct prog *p)
{
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, (uint32_t)level) < 0)
		return -1;
	int fd = memfd_create("bpf", MFD_CLOEXEC);
	if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0)
		return -1;
	off_t len = lseek(fd, 0, SEEK_END);
	p->ins = malloc((size_t)len);
	p->n = (size_t)len / sizeof(struct sock_filter);
	int r = p->ins && pread(fd, p->ins, (size_t)len, 0) == len ? 0 : -1;
	close(fd);
	return r;
}

/* What `sh -c true` under busybox makes (strace -f, by frequency). */
static const int typical[] = {
    SYS_rt_sigprocmask,
    SYS_rt_sigprocmask,
    SYS_rt_sigaction,
    SYS_rt_sigaction,
    SYS_getpid,
    SYS_getppid,
    SYS_getuid,
    SYS_geteuid,
    SYS_brk,
    SYS_mmap,
    SYS_munmap,
    SYS_read,
    SYS_write,
    SYS_openat,
    SYS_close,
    SYS_fstat,
    SYS_newfstatat,
    SYS_ioctl,
    SYS_fcntl,
    SYS_execve,
    SYS_arch_prctl,
    SYS_set_tid_address,
    SYS_wait4,
    SYS_clone,
    SYS_exit_group,
    SYS_getcwd,
    SYS_stat,
    SYS_access,
    SYS_dup2,
    SYS_uname,
};

static double mean(const struct prog *p, const int *nrs, size_t n, bool all)
{
	unsigned long total = 0;
	size_t count = all ? SECCOMP_COST_NR_MAX + 1 : n;
	for (size_t i = 0; i < count; i++) {
		struct seccomp_data d = {.nr = all ? (int)i : nrs[i], .arch = AUDIT_ARCH_X86_64};
		total += run(p, &d);
	}
	return (double)total / (double)count;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seccomp-cost CONFIG.JSON (its linux.seccomp)\n");
		return 2;
	}
	struct kv_err *err = NULL;
	char *text = NULL;
	if (kv_read_file(argv[1], 16 << 20, &text, NULL, &err) < 0) {
		fprintf(stderr, "seccomp-cost: %s\n", err->msg);
		return 1;
	}
	yajl_val root = kv_json_parse(text, argv[1], &err);
	const char *path[] = {"linux", "seccomp", NULL};
	yajl_val sv = root ? yajl_tree_get(root, path, yajl_t_object) : NULL;
	struct kv_seccomp *s = NULL;
	void *ctx = NULL;
	if (!sv || kv_seccomp_decode(sv, &s, &err) < 0 ||
	    agent_seccomp_compile(s, true, &ctx, &err) < 0) {
		fprintf(stderr, "seccomp-cost: %s\n", err ? err->msg : "no linux.seccomp");
		return 1;
	}
	struct prog lin = {0}, tree = {0};
	if (export(agent_seccomp_ctx(ctx), 1, &lin) < 0 ||
	    export(agent_seccomp_ctx(ctx), 2, &tree) < 0) {
		fprintf(stderr, "seccomp-cost: exporting the filter failed\n");
		return 1;
	}
	size_t nt = KV_ARRAY_SIZE(typical);
	double la = mean(&lin, NULL, 0, true), ta = mean(&tree, NULL, 0, true);
	double lt = mean(&lin, typical, nt, false), tt = mean(&tree, typical, nt, false);
	printf("seccomp  filter: %zu rules; BPF program: %zu instructions linear, %zu as a tree\n",
	       s->nrules, lin.n, tree.n);
	printf("seccomp  BPF instructions per syscall, every syscall 0..%d: linear %.1f, tree %.1f "
	       "(tree/linear %.2f)\n",
	       SECCOMP_COST_NR_MAX, la, ta, ta / la);
	printf("seccomp  BPF instructions per syscall, a shell's fork+exec mix: linear %.1f, tree "
	       "%.1f (tree/linear %.2f)\n",
	       lt, tt, tt / lt);
	free(lin.ins);
	free(tree.ins);
	agent_seccomp_release(ctx);
	kv_seccomp_free(s);
	yajl_tree_free(root);
	free(text);
	return 0;
}
