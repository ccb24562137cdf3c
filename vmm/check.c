/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host check: can this host run kvrun microVMs? Each item reports one
 * line saying what is wrong and what to do about it.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "vmm/vmm.h"
#include "vmm/x86/pvm.h"

#define CHECK_MSG_MAX 320

struct check_cap {
	long cap;
	const char *name;
	const char *why;
	const char *without; /* NULL: required; else what happens without it */
};

static const struct check_cap check_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM", NULL},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC", NULL},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT", NULL},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID", NULL},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts without exits", NULL},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtqueue kicks without exits", NULL},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping and pausing vCPUs", NULL},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 VM setup", NULL},
    {KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM", "read-only pmem disks",
     "read-only pmem disks are mapped copy-on-write instead"},
};

static void check_cpu_virt(vmm_check_report_fn report, void *ctx, int *failed)
{
	cleanup_free char *cpuinfo = NULL;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_read_file("/proc/cpuinfo", 16 << 20, &cpuinfo, &len, &err) < 0) {
		report(ctx, "cpu", false, err->msg);
		kv_err_free(err);
		(*failed)++;
		return;
	}
	struct stat st;
	bool pvm_loaded = stat("/sys/module/kvm_pvm", &st) == 0;
	if (pvm_detect_from(pvm_loaded, cpuinfo)) {
		report(ctx, "cpu", true,
		       "no VT-x/AMD-V, but KVM is provided by PVM (kvm_pvm): compatibility mode, "
		       "guest kernel code runs ~1000x slower");
		return;
	}
	bool vmx = pvm_cpuinfo_has_flag(cpuinfo, "vmx"), svm = pvm_cpuinfo_has_flag(cpuinfo, "svm");
	if (vmx || svm) {
		report(ctx, "cpu", true, vmx ? "Intel VT-x" : "AMD-V");
		return;
	}
	report(ctx, "cpu", false,
	       "no VT-x/AMD-V flag in /proc/cpuinfo and no kvm_pvm module: enable virtualization "
	       "in the firmware (or nested virtualization for this VM), or load kvm_pvm");
	(*failed)++;
}

static int check_kvm_open(vmm_check_report_fn report, void *ctx, int *failed)
{
	char msg[CHECK_MSG_MAX];
	struct stat st;
	if (stat("/dev/kvm", &st) < 0) {
		report(ctx, "/dev/kvm", false,
		       "missing: load kvm_intel, kvm_amd or kvm_pvm (modprobe), or pass /dev/kvm "
		       "into this container");
		(*failed)++;
		return -1;
	}
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, sizeof(msg),
			 "cannot open read-write (%s): add this user to the group owning /dev/kvm "
			 "(usually 'kvm') or run as root",
			 strerror(errno));
		report(ctx, "/dev/kvm", false, msg);
		(*failed)++;
		return -1;
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != 12) {
		snprintf(msg, sizeof(msg),
			 "KVM API version %d, need 12: the host kernel is too old", v);
		report(ctx, "/dev/kvm", false, msg);
		(*failed)++;
		close(fd);
		return -1;
	}
	report(ctx, "/dev/kvm", true, "read-write, API version 12");
	return fd;
}

static void check_kvm_caps(int fd, vmm_check_report_fn report, void *ctx, int *failed)
{
	char msg[CHECK_MSG_MAX];
	for (size_t i = 0; i < KV_ARRAY_SIZE(check_caps); i++) {
		const struct check_cap *c = &check_caps[i];
		int r = ioctl(fd, KVM_CHECK_EXTENSION, c->cap);
		if (r > 0 || c->without) {
			if (r > 0)
				snprintf(msg, sizeof(msg), "%s", c->why);
			else
				snprintf(msg, sizeof(msg), "missing (optional): %s", c->without);
			report(ctx, c->name, true, msg);
			continue;
		}
		snprintf(msg, sizeof(msg),
			 "missing (needed for %s): the host kernel's KVM is too old "
			 "or restricted; use Linux >= 5.10",
			 c->why);
		report(ctx, c->name, false, msg);
		(*failed)++;
	}
	int n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	snprintf(msg, sizeof(msg), "%d recommended vCPUs per VM", n > 0 ? n : 0);
	report(ctx, "KVM_CAP_NR_VCPUS", n > 0, msg);
	if (n <= 0)
		(*failed)++;
}

/* The capabilities say what KVM offers; creating a VM says it lets us. */
static void check_kvm_create_vm(int fd, vmm_check_report_fn report, void *ctx, int *failed)
{
	char msg[CHECK_MSG_MAX];
	int vm;
	do
		vm = ioctl(fd, KVM_CREATE_VM, 0);
	while (vm < 0 && errno == EINTR);
	if (vm < 0) {
		snprintf(
		    msg, sizeof(msg),
		    "KVM_CREATE_VM failed (%s): another hypervisor may hold VT-x/AMD-V, or the "
		    "host is out of memory",
		    strerror(errno));
		report(ctx, "create VM", false, msg);
		(*failed)++;
		return;
	}
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		snprintf(msg, sizeof(msg), "KVM_CREATE_VCPU failed (%s)", strerror(errno));
		report(ctx, "create VM", false, msg);
		(*failed)++;
	} else {
		report(ctx, "create VM", true, "a VM with one vCPU was created and destroyed");
		close(vcpu);
	}
	close(vm);
}

int vmm_host_check(vmm_check_report_fn report, void *ctx)
{
	int failed = 0;
	check_cpu_virt(report, ctx, &failed);
	int fd = check_kvm_open(report, ctx, &failed);
	if (fd >= 0) {
		check_kvm_caps(fd, report, ctx, &failed);
		check_kvm_create_vm(fd, report, ctx, &failed);
		close(fd);
	}
	return failed;
}

static void check_print_one(void *ctx, const char *item, bool ok, const char *message)
{
	fprintf(ctx, "%-4s %s: %s\n", ok ? "ok" : "FAIL", item, message);
}

int vmm_host_check_print(FILE *out)
{
	int failed = vmm_host_check(check_print_one, out);
	if (failed)
		fprintf(out, "%d check(s) failed: kvrun cannot run microVMs on this host\n",
			failed);
	else
		fprintf(out, "this host can run kvrun microVMs\n");
	return failed;
}
