/* SPDX-License-Identifier: Apache-2.0 */
/* PVM compatibility mode; see pvm.h and docs/pvm-host.md. */
#include "vmm/x86/pvm.h"

#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "vmm/vmm.h"
#include "vmm/x86/cpuid.h"

#define PVM_SYSFS "/sys/module/kvm_pvm"

bool pvm_cpuinfo_has_flag(const char *cpuinfo, const char *flag)
{
	size_t fl = strlen(flag);
	const char *line = cpuinfo;
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		if (strncmp(line, "flags", 5) == 0) {
			for (const char *p = line; p + fl <= line + ll; p++)
				if ((p == line || p[-1] == ' ' || p[-1] == ':') &&
				    memcmp(p, flag, fl) == 0 &&
				    (p + fl == line + ll || p[fl] == ' '))
					return true;
		}
		line = eol ? eol + 1 : NULL;
	}
	return false;
}

bool pvm_detect_from(bool kvm_pvm_loaded, const char *cpuinfo)
{
	if (!kvm_pvm_loaded)
		return false;
	return !pvm_cpuinfo_has_flag(cpuinfo, "vmx") && !pvm_cpuinfo_has_flag(cpuinfo, "svm");
}

bool pvm_detect(void)
{
	struct stat st;
	if (stat(PVM_SYSFS, &st) < 0)
		return false;
	cleanup_free char *cpuinfo = NULL;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_read_file("/proc/cpuinfo", 16 << 20, &cpuinfo, &len, &err) < 0) {
		kv_err_free(err);
		return false;
	}
	return pvm_detect_from(true, cpuinfo);
}

bool vmm_pvm_detect(void)
{
	return pvm_detect();
}

/*
 * noxsave: the emulator cannot execute xsave/xrstor, and the FPU code uses
 * them whenever XSAVE is enumerated (KVM_GET_SUPPORTED_CPUID hides it here,
 * but the kernel's own fallback decisions still want the switch).
 */
static const char *const pvm_params[] = {
    "noxsave",
    NULL,
};

const char *const *pvm_cmdline_params(void)
{
	return pvm_params;
}

void pvm_cpuid_filter(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, 1, 0);
	if (e) /* cmpxchg16b is not emulated (SLUB uses it when CX16 is set) */
		e->ecx &= ~(CPUID_1_ECX_CX16 | CPUID_1_ECX_XSAVE | CPUID_1_ECX_OSXSAVE);
	e = cpuid_entry(c, 7, 0);
	if (e) {
		e->ecx &= ~CPUID_7_ECX_UMIP;
		e->ebx &= ~CPUID_7_EBX_CLFLUSHOPT;
	}
}

enum pvm_fixup pvm_fixup_classify(const uint8_t *insn, unsigned n, unsigned *len)
{
	*len = 0;
	if (n < 1)
		return PVM_FIXUP_NONE;
	switch (insn[0]) {
	case X86_INSN_INT3: *len = 1; return PVM_FIXUP_BP;
	case X86_INSN_FWAIT: *len = 1; return PVM_FIXUP_SKIP;
	default: return PVM_FIXUP_NONE;
	}
}

const char *pvm_fixup_name(enum pvm_fixup f)
{
	switch (f) {
	case PVM_FIXUP_BP: return "int3->#BP";
	case PVM_FIXUP_SKIP: return "skip";
	default: return "none";
	}
}

int pvm_fixup_apply(int vcpu_fd, enum pvm_fixup f, unsigned len, struct kv_err **err)
{
	struct kvm_regs regs;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return kv_err_make(err, errno, "PVM fixup: KVM_GET_REGS");
	regs.rip += len;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return kv_err_make(err, errno, "PVM fixup: KVM_SET_REGS");
	if (f != PVM_FIXUP_BP)
		return 0;
	/* int3 is a trap: the #BP frame's RIP is the next instruction. */
	struct kvm_vcpu_events ev;
	if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return kv_err_make(err, errno, "PVM fixup: KVM_GET_VCPU_EVENTS");
	ev.exception.injected = 1;
	ev.exception.nr = X86_VEC_BP;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return kv_err_make(err, errno, "PVM fixup: KVM_SET_VCPU_EVENTS");
	return 0;
}
