/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp: each thread loads its category's filter itself after setup
 * (filters are per thread; none is synchronised across threads). The
 * programs were compiled at build time from seccomp_rules.c
 * (build/gen/vmm/seccomp_bpf.c, vmm/tools/seccomp_gen.c): loading one is
 * no_new_privs and one seccomp(2) call, as libseccomp's seccomp_load()
 * would make after generating it.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "vmm/sandbox.h"
#include "vmm/seccomp_bpf.h"

static void seccomp_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[96];
	int n =
	    snprintf(msg, sizeof(msg), "kvrun-vmm: seccomp: syscall %d is not on the allow-list\n",
		     si->si_syscall);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, n);
	_exit(VMM_EXIT_ERROR);
}

static const char *seccomp_kind_name(enum sandbox_thread kind)
{
	return kind == SANDBOX_MAIN ? "event loop" : kind == SANDBOX_FS ? "virtio-fs" : "vCPU";
}

int sandbox_seccomp_load(enum sandbox_thread kind, enum vmm_seccomp_mode mode, struct kv_err **err)
{
	if (mode == VMM_SECCOMP_OFF)
		return 0;
	if (mode == VMM_SECCOMP_TRAP) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = seccomp_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSYS, &sa, NULL);
	}
	const struct sandbox_bpf *b = &sandbox_bpf[mode == VMM_SECCOMP_TRAP][kind];
	struct sock_fprog prog = {.len = b->len, .filter = (struct sock_filter *)b->insns};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return kv_err_make(err, errno, "seccomp: load the %s filter",
				   seccomp_kind_name(kind));
	return 0;
}
