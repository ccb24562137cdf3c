/* SPDX-License-Identifier: Apache-2.0 */
/* CPUID filtering on hand-built tables, and the PVM extras. */
#include <string.h>

#include "tap.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/pvm.h"

static struct kvm_cpuid2 *table(void)
{
	struct kvm_cpuid2 *c = kv_malloc0(sizeof(*c) + 16 * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 e[] = {
	    {.function = 0, .eax = 0x1f},
	    {.function = 1,
	     .eax = 0x806f8,
	     .ebx = 0x00010800,
	     .ecx = CPUID_1_ECX_CX16,
	     .edx = CPUID_1_EDX_HTT},
	    {.function = 4,
	     .index = 0,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	     .eax = 0x121 | (1 << 5)},
	    {.function = 4,
	     .index = 3,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	     .eax = 0x163 | (3 << 5)},
	    {.function = 7,
	     .index = 0,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	     .ebx = CPUID_7_EBX_CLFLUSHOPT,
	     .ecx = CPUID_7_ECX_UMIP},
	    {.function = 0xa, .eax = 0x07300805, .ebx = 0, .edx = 0x603},
	    {.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b},
	};
	memcpy(c->entries, e, sizeof(e));
	c->nent = KV_ARRAY_SIZE(e);
	return c;
}

int main(void)
{
	cleanup_free struct kvm_cpuid2 *c = table();
	struct cpuid_opts o = {.cpu = 1, .ncpus = 2, .tsc_deadline = true};
	cpuid_filter(c, &o);
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, 1, 0);
	is_int(e->ebx >> 24, 1, "leaf 1: APIC id = vCPU index");
	is_int((e->ebx >> 16) & 0xff, 2, "leaf 1: logical processor count");
	is_int(e->ebx & 0xffff, 0x0800, "leaf 1: CLFLUSH size kept");
	ok(e->ecx & CPUID_1_ECX_HYPERVISOR, "leaf 1: hypervisor bit");
	ok(e->ecx & CPUID_1_ECX_TSC_DEADLINE, "leaf 1: TSC deadline when KVM has it");
	ok(e->edx & CPUID_1_EDX_HTT, "leaf 1: HTT with 2 vCPUs");
	ok(e->ecx & CPUID_1_ECX_CX16, "leaf 1: CX16 kept outside PVM mode");
	is_int(cpuid_entry(c, 4, 0)->eax >> 26, 1, "leaf 4: cores per package - 1");
	is_int((cpuid_entry(c, 4, 0)->eax >> 14) & 0xfff, 0, "leaf 4: L1 per core");
	is_int((cpuid_entry(c, 4, 3)->eax >> 14) & 0xfff, 1, "leaf 4: L3 shared by both");
	e = cpuid_entry(c, 0xa, 0);
	ok(e->eax == 0 && e->edx == 0, "leaf 0xa: no PMU");
	ok(cpuid_entry(c, 0xb, 0)->edx == 1 && cpuid_entry(c, 0xb, 1)->edx == 1,
	   "leaf 0xb: x2APIC id in every subleaf");
	ok(cpuid_entry(c, 0xb, 0)->ebx == 1 && (cpuid_entry(c, 0xb, 0)->ecx >> 8) == 1,
	   "leaf 0xb.0: SMT level, one thread");
	ok(cpuid_entry(c, 0xb, 1)->ebx == 2 && cpuid_entry(c, 0xb, 1)->eax == 1 &&
	       (cpuid_entry(c, 0xb, 1)->ecx >> 8) == 2,
	   "leaf 0xb.1: core level, 2 vCPUs, shift 1");
	is_int(cpuid_entry(c, 0xb, 2)->ecx >> 8, 0, "leaf 0xb.2: invalid level ends the list");
	is_int(cpuid_entry(c, 0x40000000, 0)->ebx, 0x4b4d564b, "KVM leaves kept");

	cleanup_free struct kvm_cpuid2 *one = table();
	struct cpuid_opts o1 = {.cpu = 0, .ncpus = 1};
	cpuid_filter(one, &o1);
	ok(!(cpuid_entry(one, 1, 0)->edx & CPUID_1_EDX_HTT), "leaf 1: no HTT with 1 vCPU");
	ok(!(cpuid_entry(one, 1, 0)->ecx & CPUID_1_ECX_TSC_DEADLINE),
	   "leaf 1: no TSC deadline unless KVM has it");

	pvm_cpuid_filter(one);
	ok(!(cpuid_entry(one, 1, 0)->ecx & CPUID_1_ECX_CX16), "PVM: CX16 hidden (cmpxchg16b)");
	ok(!(cpuid_entry(one, 7, 0)->ecx & CPUID_7_ECX_UMIP), "PVM: UMIP hidden");
	ok(cpuid_entry(one, 5, 0) == NULL, "lookup of a missing leaf is NULL");
	return tap_done();
}
