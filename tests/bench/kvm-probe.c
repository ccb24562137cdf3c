/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LD_PRELOAD probe for the VMM benchmark, the same for every VMM measured:
 * it records CLOCK_MONOTONIC at the first KVM_RUN and counts KVM_RUN calls
 * (each return is one exit to user space). The output fd is opened in the
 * constructor, before any seccomp filter the VMM installs, and written
 * with write() only. Output: "first_run_ns <t>\nkvm_runs <n>\n" and
 * "first_run_cpu_ns <t>" (the process's CPU time by then, which other
 * tenants of a loaded host do not inflate) to $KVM_PROBE_OUT.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int probe_fd = -1;
static unsigned long long first_run_ns, first_run_cpu_ns;
static unsigned long long runs;
static int (*real_ioctl)(int, unsigned long, ...);

__attribute__((constructor)) static void probe_init(void)
{
	const char *out = getenv("KVM_PROBE_OUT");
	if (out)
		probe_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
}

static void probe_write(void)
{
	char buf[128];
	int n =
	    snprintf(buf, sizeof(buf), "first_run_ns %llu\nkvm_runs %llu\nfirst_run_cpu_ns %llu\n",
		     first_run_ns, __atomic_load_n(&runs, __ATOMIC_RELAXED), first_run_cpu_ns);
	if (probe_fd >= 0 && n > 0) {
		(void)!pwrite(probe_fd, buf, n, 0);
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (req == KVM_RUN) {
		if (__atomic_fetch_add(&runs, 1, __ATOMIC_RELAXED) == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			first_run_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
			first_run_cpu_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
			probe_write();
		}
	}
	return real_ioctl(fd, req, arg);
}

__attribute__((destructor)) static void probe_fini(void)
{
	probe_write();
}
