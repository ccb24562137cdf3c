/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp: each thread loads its category's filter itself after setup
 * (filters are per thread; none is synchronised across threads). The
 * programs were compiled at build time from seccomp_rules.c
 * (build/gen/vmm/seccomp_bpf.c, vmm/tools/seccomp_gen.c): loading one is
 * no_new_privs and one seccomp(2) call, as libseccomp's seccomp_load()
 * would make after generating it.
 */
#include <errno.h>
#include <execinfo.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "vmm/sandbox.h"
#include "vmm/seccomp_bpf.h"

static const char *seccomp_kind_name(enum sandbox_thread kind)
{
	return kind == SANDBOX_MAIN ? "event loop" : kind == SANDBOX_FS ? "virtio-fs" : "vCPU";
}

/* si_code of a SIGSYS from a filter (asm-generic/siginfo.h; glibc lacks it) */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

/*
 * SIGSYS: which thread made the call, and from where. Two cases reach it:
 *  - open/openat on the event loop's or a vCPU's thread, in every mode:
 *    no kvrun code there opens a file, but a library may on a rare path
 *    (glibc reads files for a few of its answers). The call fails with
 *    EACCES instead of killing the VM, and the first few are reported
 *    with the path and a backtrace, so that the caller can be found;
 *  - with --seccomp trap (debugging), any other call off the list: the
 *    report, then exit.
 * The handler makes no call of its own but write(2) (on every list) and
 * exit_group(2); backtrace() is loaded before the filter (it dlopens
 * libgcc_s), and backtrace_symbols_fd() writes without allocating. Offsets
 * of PIE frames (`kvrun-vmm(+0x...)`) map to lines with addr2line -e
 * kvrun-vmm.
 */
static __thread enum sandbox_thread seccomp_kind = SANDBOX_FS;
static __thread bool seccomp_loaded;
static unsigned seccomp_reports;
static bool seccomp_unwinder; /* libgcc_s loaded: backtrace() opens nothing */

static void seccomp_say(const char *msg, int n)
{
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
}

static void seccomp_sigsys(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	if (si->si_code != SYS_SECCOMP)
		return; /* sent by a process (kill, sigqueue), not by our filter */
	greg_t *r = ((ucontext_t *)ucv)->uc_mcontext.gregs;
	const char *who = seccomp_loaded ? seccomp_kind_name(seccomp_kind) : "?";
	bool open_call = si->si_syscall == SYS_openat || si->si_syscall == SYS_open;
	bool refuse = seccomp_loaded && seccomp_kind != SANDBOX_FS && open_call;
	bool report = !refuse || __atomic_fetch_add(&seccomp_reports, 1, __ATOMIC_RELAXED) < 4;
	char msg[512];
	int n = 0;
	if (refuse && report) {
		const char *path =
		    (const char *)(si->si_syscall == SYS_open ? r[REG_RDI] : r[REG_RSI]);
		n = snprintf(msg, sizeof(msg),
			     "kvrun-vmm: seccomp: the %s thread tried to open %.200s (syscall %d); "
			     "refused with EACCES. A defect of kvrun-vmm: please report it with "
			     "this backtrace:\n",
			     who, path ? path : "(null)", si->si_syscall);
	} else if (!refuse) {
		n = snprintf(msg, sizeof(msg),
			     "kvrun-vmm: seccomp: syscall %d is not on the %s thread's allow-list "
			     "(args %#llx %#llx %#llx, call at %p)\n",
			     si->si_syscall, who, (unsigned long long)r[REG_RDI],
			     (unsigned long long)r[REG_RSI], (unsigned long long)r[REG_RDX],
			     si->si_call_addr);
	}
	seccomp_say(msg, n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1);
	if (report && seccomp_unwinder) {
		void *frames[32];
		int depth = backtrace(frames, 32);
		backtrace_symbols_fd(frames, depth, STDERR_FILENO);
	}
	if (refuse) {
		r[REG_RAX] = -EACCES; /* the call's result, as if the kernel refused it */
		return;
	}
	syscall(SYS_exit_group, VMM_EXIT_ERROR); /* not _exit(): ASan's hook clones */
}

static void seccomp_prepare_once(void)
{
	/* backtrace() dlopens libgcc_s on its first call: now, before the
	 * jail (where it could not be opened) and before any filter (where the
	 * open would be trapped inside the handler, and kill). */
	void *frame;
	seccomp_unwinder = backtrace(&frame, 1) > 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = seccomp_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
}

void sandbox_seccomp_prepare(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, seccomp_prepare_once);
}

int sandbox_seccomp_load(enum sandbox_thread kind, enum vmm_seccomp_mode mode, struct kv_err **err)
{
	if (mode == VMM_SECCOMP_OFF)
		return 0;
	/* Every mode traps open calls (above): the handler first (main() has
	 * set it up before the jail; this is for the tests and other callers). */
	sandbox_seccomp_prepare();
	seccomp_kind = kind;
	seccomp_loaded = true;
	const struct sandbox_bpf *b = &sandbox_bpf[mode == VMM_SECCOMP_TRAP][kind];
	struct sock_fprog prog = {.len = b->len, .filter = (struct sock_filter *)b->insns};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return kv_err_make(err, errno, "seccomp: load the %s filter",
				   seccomp_kind_name(kind));
	return 0;
}
