/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest CPUID: KVM_GET_SUPPORTED_CPUID (asked once per process and cached:
 * it is what KVM can really run, which on a PVM host already hides what its
 * emulator cannot execute), then a pure per-vCPU filter: APIC ids and
 * topology, the hypervisor bit, no PMU. Unit-tested on hand-built tables.
 */
#ifndef KV_VMM_X86_CPUID_H
#define KV_VMM_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "lib/kv.h"

#define CPUID_MAX_ENTRIES 256

struct cpuid_opts {
	unsigned cpu; /* vCPU index == APIC id */
	unsigned ncpus;
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER: advertise it */
};

/* CPUID leaf/bit names used by the filters. */
#define CPUID_1_ECX_CX16	 (1u << 13)
#define CPUID_1_ECX_XSAVE	 (1u << 26)
#define CPUID_1_ECX_OSXSAVE	 (1u << 27)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR	 (1u << 31)
#define CPUID_1_EDX_HTT		 (1u << 28)
#define CPUID_7_EBX_CLFLUSHOPT	 (1u << 23)
#define CPUID_7_ECX_UMIP	 (1u << 2)

/* A copy of the supported table (cached after the first call). Caller frees. */
struct kvm_cpuid2 *cpuid_supported_get(int kvm_fd, struct kv_err **err) KV_WUR;
/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);
/* Per-vCPU filter, in place. */
void cpuid_filter(struct kvm_cpuid2 *c, const struct cpuid_opts *o);

#endif
