/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PVM compatibility mode (docs: pvm-host.md). On a host whose /dev/kvm is
 * the kvm_pvm module, guest kernel mode is emulated instruction by
 * instruction and some instructions stop the vCPU with an emulation
 * failure. This module, and only it, knows about that:
 *  - detection: /sys/module/kvm_pvm exists and /proc/cpuinfo has no vmx/svm;
 *  - the kernel command line and CPUID changes the guest needs there;
 *  - fixups for the known unemulated instructions: int3 becomes an injected
 *    #BP, fwait is skipped (a no-op with no pending x87 exception);
 *  - a VMCALL from the guest kernel neither completes nor exits: KVM_RUN
 *    just spins. The VMM samples vCPUs that made no exit for a while
 *    (VCPU_PROBE_MS) and completes a VMCALL found at RIP as "no such
 *    hypercall" (-KVM_ENOSYS), which is what the guest handles (ptp_kvm's
 *    clock-pairing call at boot). Hypercall-based paravirt features are
 *    hidden from CPUID so that nothing else relies on one.
 * On VT-x/AMD-V hosts the mode is off and none of this runs.
 */
#ifndef KV_VMM_X86_PVM_H
#define KV_VMM_X86_PVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/mem.h"

#define X86_INSN_INT3  0xcc
#define X86_INSN_FWAIT 0x9b
#define X86_VEC_BP     3

enum pvm_fixup {
	PVM_FIXUP_NONE, /* not one we know: the VM stops */
	PVM_FIXUP_BP,	/* advance RIP by len, inject #BP (a trap) */
	PVM_FIXUP_SKIP, /* advance RIP by len */
};

/* Whether a "flags" line of /proc/cpuinfo text names `flag` as a whole word. */
bool pvm_cpuinfo_has_flag(const char *cpuinfo, const char *flag);
/* Detection from the two host facts (testable), and on this host. */
bool pvm_detect_from(bool kvm_pvm_loaded, const char *cpuinfo);
bool pvm_detect(void);
/* Kernel parameters PVM guests need (appended unless already present). */
const char *const *pvm_cmdline_params(void);
/* CPUID bits to hide on PVM beyond KVM_GET_SUPPORTED_CPUID. */
void pvm_cpuid_filter(struct kvm_cpuid2 *c);
/* Which fixup applies to the failed instruction's bytes; *len = bytes to skip. */
enum pvm_fixup pvm_fixup_classify(const uint8_t *insn, unsigned n, unsigned *len);
const char *pvm_fixup_name(enum pvm_fixup f);
/* A vCPU was kicked after VCPU_PROBE_MS without exits: complete a VMCALL at
 * its RIP. Returns 1 when it did, 0 when RIP is elsewhere, <0 on error. */
int pvm_hang_probe(int vcpu_fd, const struct gm *gm, struct kv_err **err) KV_WUR;
/* Apply a fixup to the vCPU with ioctls. */
int pvm_fixup_apply(int vcpu_fd, enum pvm_fixup f, unsigned len, struct kv_err **err) KV_WUR;

#endif
