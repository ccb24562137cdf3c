/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp allow-lists, one per thread category (sandbox.h), and their
 * compilation to BPF with libseccomp. The VMM does not call this at run
 * time: vmm/tools/seccomp_gen.c compiles every category for both modes at
 * build time (build/gen/vmm/seccomp_bpf.c), and a thread attaches its
 * program with one seccomp(2) call (seccomp.c). A libseccomp context, its
 * rules and the code generation cost ~0.2 ms of CPU per filter, paid by
 * each thread before, three or four times on the way to a restored VM's
 * first KVM_RUN.
 *
 * What stays allowed is what the event loop, the device models and the
 * vCPU loop do on already-open fds: no open, no exec, no clone; sockets
 * only AF_UNIX (hybrid vsock); ioctl only the requests listed (a tap's
 * readv/writev/fcntl and the eventfd writes of virtio-net are plain I/O). Anything
 * else kills the process (or, with --seccomp=trap, reports the syscall
 * number and exits).
 */
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

#include "vmm/sandbox.h"

/* Both categories. */
static const int seccomp_common[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    SCMP_SYS(close),
    SCMP_SYS(fstat),
    SCMP_SYS(lseek),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(fallocate),
    SCMP_SYS(msync),
    SCMP_SYS(madvise),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(mprotect),
    SCMP_SYS(brk),
    SCMP_SYS(futex),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(tgkill),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(getrandom),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(connect),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(eventfd2),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(fcntl),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(sched_yield),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(splice),
    SCMP_SYS(ftruncate),
};

/* The event loop thread only. */
static const int seccomp_main[] = {
    SCMP_SYS(accept4),
    SCMP_SYS(unlink), /* the API socket, at exit */
    SCMP_SYS(unlinkat),
};

/*
 * virtio-fs worker threads only (vmm/virtio/fuse_*.c): the file system calls
 * of the FUSE server, all relative to fds it holds, O_PATH fds beneath the
 * shares (openat through /proc/self/fd to re-open one of them for I/O).
 * Those that take a directory fd take only an fd: never AT_FDCWD (a cwd
 * is a path, and a chroot's cwd can lie outside it), allowed where each
 * dirfd argument is below 2^31 (seccomp sees the whole register; the
 * kernel reads an int, which is then >= 0). The index of each dirfd
 * argument, -1 for none; seccomp cannot read a path or open_how (a
 * pointer): the chroot, Landlock and RESOLVE_BENEATH bound those.
 */
static const struct {
	int nr;
	int dirfd[2];
} seccomp_fs[] = {
    {SCMP_SYS(newfstatat), {0, -1}}, /* glibc fstat(): fstatat(fd, "", AT_EMPTY_PATH) */
    {SCMP_SYS(openat), {0, -1}},      {SCMP_SYS(openat2), {0, -1}},
    {SCMP_SYS(mkdirat), {0, -1}},     {SCMP_SYS(mknodat), {0, -1}},
    {SCMP_SYS(symlinkat), {1, -1}},   {SCMP_SYS(readlinkat), {0, -1}},
    {SCMP_SYS(unlinkat), {0, -1}},    {SCMP_SYS(renameat2), {0, 2}},
    {SCMP_SYS(linkat), {0, 2}},	      {SCMP_SYS(fchownat), {0, -1}},
    {SCMP_SYS(fchmodat), {0, -1}},    {SCMP_SYS(utimensat), {0, -1}},
    {SCMP_SYS(getdents64), {-1, -1}}, {SCMP_SYS(fstatfs), {-1, -1}},
    {SCMP_SYS(syncfs), {-1, -1}},     {SCMP_SYS(copy_file_range), {-1, -1}},
    {SCMP_SYS(fgetxattr), {-1, -1}},  {SCMP_SYS(fsetxattr), {-1, -1}},
    {SCMP_SYS(flistxattr), {-1, -1}}, {SCMP_SYS(fremovexattr), {-1, -1}},
};

/* KVM_GET_REGS: the loop logs where each vCPU stopped (debug), after join. */
static const unsigned long seccomp_ioctl_common[] = {
    FIONBIO, FIONREAD, TCGETS, TCSETS, KVM_IRQ_LINE, KVM_GET_REGS,
};

/* The event loop saves snapshots (snapshot_save.c) of the paused vCPUs: reads only. */
static const unsigned long seccomp_ioctl_snapshot[] = {
    KVM_GET_REGS,	 KVM_GET_SREGS,	      KVM_GET_FPU,	 KVM_GET_XSAVE,
    KVM_GET_XSAVE2,	 KVM_GET_XCRS,	      KVM_GET_DEBUGREGS, KVM_GET_LAPIC,
    KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE,    KVM_GET_MSRS,	 KVM_GET_MSR_INDEX_LIST,
    KVM_GET_CPUID2,	 KVM_GET_TSC_KHZ,     KVM_GET_IRQCHIP,	 KVM_GET_PIT2,
    KVM_GET_CLOCK,	 KVM_CHECK_EXTENSION,
};

/*
 * virtio-net: the loop attaches a tap handed over through the API (check it,
 * set its vnet header size); offloads follow the driver's features at
 * attach (the loop) and at DRIVER_OK or reset (a vCPU's MMIO write).
 */
static const unsigned long seccomp_ioctl_net_attach[] = {TUNGETIFF, TUNSETVNETHDRSZ};
static const unsigned long seccomp_ioctl_net_offload[] = {TUNSETOFFLOAD};

static const unsigned long seccomp_ioctl_vcpu[] = {
    KVM_RUN,	   KVM_GET_REGS,	KVM_SET_REGS,	     KVM_GET_SREGS,
    KVM_SET_SREGS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_TRANSLATE,
    KVM_GET_MSRS,  KVM_GET_MP_STATE,
};

static int seccomp_rules_add(scmp_filter_ctx ctx, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nrs[i], 0) < 0)
			return -1;
	return 0;
}

static int seccomp_ioctls_add(scmp_filter_ctx ctx, const unsigned long *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* Compare the low 32 bits: the request is an unsigned int in the kernel. */
		struct scmp_arg_cmp cmp = {
		    .arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = reqs[i]};
		if (seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &cmp) < 0)
			return -1;
	}
	return 0;
}

static int seccomp_fs_add(scmp_filter_ctx ctx)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(seccomp_fs); i++) {
		struct scmp_arg_cmp fd[2];
		unsigned n = 0;
		for (unsigned j = 0; j < 2; j++)
			if (seccomp_fs[i].dirfd[j] >= 0)
				fd[n++] =
				    (struct scmp_arg_cmp){.arg = (unsigned)seccomp_fs[i].dirfd[j],
							  .op = SCMP_CMP_LT,
							  .datum_a = 0x80000000u};
		if (seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, seccomp_fs[i].nr, n, fd) < 0)
			return -1;
	}
	return 0;
}

static int seccomp_build(scmp_filter_ctx ctx, enum sandbox_thread kind, uint32_t def)
{
	if (seccomp_rules_add(ctx, seccomp_common, KV_ARRAY_SIZE(seccomp_common)) < 0 ||
	    seccomp_ioctls_add(ctx, seccomp_ioctl_common, KV_ARRAY_SIZE(seccomp_ioctl_common)) < 0)
		return -1;
	/* New sockets: AF_UNIX only (hybrid vsock dials <uds>_<port>). */
	struct scmp_arg_cmp unix_only = {
	    .arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_UNIX, .datum_b = 0};
	if (seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, &unix_only) < 0)
		return -1;
	if (kind == SANDBOX_FS)
		return seccomp_fs_add(ctx);
	/* Not in seccomp_common: a worker's takes a directory fd only. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 0) < 0)
		return -1;
	/* Opening a file: trapped (seccomp.c fails it with EACCES and reports
	 * the caller), not fatal, in every mode: none of our code here opens
	 * one, but a library may on a rare path, and that must not kill the VM.
	 * (--seccomp trap traps every call off the list anyway.) */
	if (def != SCMP_ACT_TRAP &&
	    (seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(openat), 0) < 0 ||
	     seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(open), 0) < 0))
		return -1;
	if (seccomp_ioctls_add(ctx, seccomp_ioctl_net_offload,
			       KV_ARRAY_SIZE(seccomp_ioctl_net_offload)) < 0)
		return -1;
	if (kind == SANDBOX_MAIN)
		return seccomp_rules_add(ctx, seccomp_main, KV_ARRAY_SIZE(seccomp_main)) < 0 ||
			       seccomp_ioctls_add(ctx, seccomp_ioctl_snapshot,
						  KV_ARRAY_SIZE(seccomp_ioctl_snapshot)) < 0 ||
			       seccomp_ioctls_add(ctx, seccomp_ioctl_net_attach,
						  KV_ARRAY_SIZE(seccomp_ioctl_net_attach)) < 0
			   ? -1
			   : 0;
	return seccomp_ioctls_add(ctx, seccomp_ioctl_vcpu, KV_ARRAY_SIZE(seccomp_ioctl_vcpu));
}

/* libseccomp's BPF for ctx, through a memfd (libseccomp 2.5 exports to an fd only). */
int sandbox_seccomp_export(void *ctx, struct sock_filter **prog, unsigned short *len)
{
	cleanup_close int fd = memfd_create("kvrun-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	size_t n = st.st_size / sizeof(struct sock_filter);
	if (n == 0 || n > BPF_MAXINSNS || st.st_size % sizeof(struct sock_filter))
		return -EINVAL;
	struct sock_filter *p = kv_malloc0(st.st_size);
	if (pread(fd, p, st.st_size, 0) != st.st_size) {
		free(p);
		return -EIO;
	}
	*prog = p;
	*len = n;
	return 0;
}

int sandbox_seccomp_compile(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			    struct sock_filter **prog, unsigned short *len)
{
	uint32_t def = mode == VMM_SECCOMP_TRAP ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx)
		return -ENOMEM;
	int r = seccomp_build(ctx, kind, def);
	if (r == 0)
		r = sandbox_seccomp_export(ctx, prog, len);
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
