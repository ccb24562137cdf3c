/* SPDX-License-Identifier: Apache-2.0 */
/* PVM compatibility mode; see pvm.h and docs/pvm-host.md. */
#include "vmm/x86/pvm.h"

#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "vmm/vmm.h"
#include "vmm/x86/cpuid.h"

#define PVM_KVM_ENOSYS 1000 /* include/uapi/linux/kvm_para.h KVM_ENOSYS */

#define PVM_SYSFS "/sys/module/kvm_pvm"

#define KVM_CPUID_FEATURES_LEAF 0x40000001
/* asm/kvm_para.h feature bits (EAX of 0x40000001). */
#define KVM_FEATURE_BIT_PV_UNHALT      7
#define KVM_FEATURE_BIT_PV_SEND_IPI    11
#define KVM_FEATURE_BIT_PV_SCHED_YIELD 13
#define PVM_KVM_HYPERCALL_FEATURES                                                                 \
	((1u << KVM_FEATURE_BIT_PV_UNHALT) | (1u << KVM_FEATURE_BIT_PV_SEND_IPI) |                 \
	 (1u << KVM_FEATURE_BIT_PV_SCHED_YIELD))

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
 * On this PVM the CPUID a guest sees is not only what KVM_SET_CPUID2 says:
 * the host's own feature bits show through (POPCNT, XSAVE, SMAP... even when
 * the table clears them), so hiding features takes the kernel's own
 * switches. The list is rootfs-tools/guest/pvm.cmdline's (QEMU-based tests
 * read that file):
 *   kvrun.pvm          the guest kernel's PVM switch (no INT3 self-test, no
 *                      FWAIT in fpu__drop: fewer fixups needed)
 *   noxsave            xsave/xrstor(s) in FPU init and context switch
 *   clearcpuid=        cmpxchg16b (SLUB), clac/stac (SMAP on every entry),
 *                      popcnt (hweight), CR4 features (smep, pku, umip,
 *                      fsgsbase, pcid), rdpid, invpcid, rdrand/rdseed. Linux
 *                      6.1 copies it into a 128-byte buffer: keep it short.
 *   mitigations=off    no speculation workarounds: every emulated instruction
 *                      counts
 */
static const char *const pvm_params[] = {
    "kvrun.pvm",
    "noxsave",
    "clearcpuid=cx16,smap,smep,popcnt,pku,umip,fsgsbase,rdpid,invpcid,pcid,rdrand,rdseed",
    "mitigations=off",
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
	/* KVM paravirt features that are hypercalls: on PVM a VMCALL from the
	 * guest kernel never returns (see pvm_hang_probe for the ones left). */
	e = cpuid_entry(c, KVM_CPUID_FEATURES_LEAF, 0);
	if (e)
		e->eax &= ~PVM_KVM_HYPERCALL_FEATURES;
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

/* vmcall (Intel) and vmmcall (AMD). */
static bool pvm_insn_is_hypercall(const uint8_t *b)
{
	return b[0] == 0x0f && b[1] == 0x01 && (b[2] == 0xc1 || b[2] == 0xd9);
}

int pvm_hang_probe(int vcpu_fd, const struct gm *gm, struct kv_err **err)
{
	struct kvm_regs regs;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return kv_err_make(err, errno, "PVM probe: KVM_GET_REGS");
	struct kvm_translation t = {.linear_address = regs.rip};
	if (ioctl(vcpu_fd, KVM_TRANSLATE, &t) < 0 || !t.valid)
		return 0;
	/* The instruction may straddle a page: only look within this one. */
	if ((t.physical_address & 0xfff) > 0xffd)
		return 0;
	const uint8_t *insn = gm_ptr(gm, t.physical_address, 3);
	if (!insn || !pvm_insn_is_hypercall(insn))
		return 0;
	regs.rax = (uint64_t)-PVM_KVM_ENOSYS;
	regs.rip += 3;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return kv_err_make(err, errno, "PVM probe: KVM_SET_REGS");
	return 1;
}
