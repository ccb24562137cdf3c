/* SPDX-License-Identifier: Apache-2.0 */
/* Guest CPUID from KVM_GET_SUPPORTED_CPUID, filtered per vCPU. */
#include "vmm/x86/cpuid.h"

#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_LEAF_FEATURES 0x1
#define CPUID_LEAF_CACHE    0x4
#define CPUID_LEAF_PMU	    0xa
#define CPUID_LEAF_TOPO	    0xb
#define CPUID_LEAF_TOPO2    0x1f
#define CPUID_LEAF_AMD_SIZE 0x80000008
#define TOPO_TYPE_SMT	    1
#define TOPO_TYPE_CORE	    2

static pthread_mutex_t cpuid_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvm_cpuid2 *cpuid_cache;

static size_t cpuid_bytes(unsigned n)
{
	return sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2);
}

static struct kvm_cpuid2 *cpuid_query(int kvm_fd, struct kv_err **err)
{
	struct kvm_cpuid2 *c = kv_malloc0(cpuid_bytes(CPUID_MAX_ENTRIES));
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		kv_err_make(err, errno, "KVM_GET_SUPPORTED_CPUID");
		free(c);
		return NULL;
	}
	return c;
}

struct kvm_cpuid2 *cpuid_supported_get(int kvm_fd, struct kv_err **err)
{
	pthread_mutex_lock(&cpuid_lock);
	if (!cpuid_cache)
		cpuid_cache = cpuid_query(kvm_fd, err);
	struct kvm_cpuid2 *copy = NULL;
	if (cpuid_cache) {
		size_t len = cpuid_bytes(cpuid_cache->nent);
		copy = kv_malloc0(len);
		memcpy(copy, cpuid_cache, len);
	}
	pthread_mutex_unlock(&cpuid_lock);
	return copy;
}

struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

static unsigned cpuid_order(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

static void cpuid_features_filter(struct kvm_cpuid_entry2 *e, const struct cpuid_opts *o)
{
	/* EBX[31:24] initial APIC id, [23:16] logical processors per package. */
	e->ebx = (e->ebx & 0x0000ffffu) | (o->cpu << 24) | ((o->ncpus & 0xff) << 16);
	e->ecx |= CPUID_1_ECX_HYPERVISOR;
	if (o->tsc_deadline)
		e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
	if (o->ncpus > 1)
		e->edx |= CPUID_1_EDX_HTT;
	else
		e->edx &= ~CPUID_1_EDX_HTT;
}

/* Leaf 4: one core per vCPU, one thread per core; the last level is shared. */
static void cpuid_cache_filter(struct kvm_cpuid_entry2 *e, const struct cpuid_opts *o)
{
	unsigned level = (e->eax >> 5) & 7;
	unsigned cores = o->ncpus > 64 ? 63 : o->ncpus - 1;
	unsigned sharing = level >= 3 ? o->ncpus - 1 : 0;
	e->eax &= 0x3fff;
	if (e->eax & 0x1f) /* a cache, not the terminating null entry */
		e->eax |= (cores << 26) | ((sharing & 0xfff) << 14);
}

/* Leaves 0xb/0x1f: x2APIC topology, SMT level (1 thread) then core level. */
static void cpuid_topo_filter(struct kvm_cpuid_entry2 *e, const struct cpuid_opts *o)
{
	e->edx = o->cpu;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (TOPO_TYPE_SMT << 8) | e->index;
		break;
	case 1:
		e->eax = cpuid_order(o->ncpus);
		e->ebx = o->ncpus;
		e->ecx = (TOPO_TYPE_CORE << 8) | e->index;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
		break;
	}
}

void cpuid_filter(struct kvm_cpuid2 *c, const struct cpuid_opts *o)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case CPUID_LEAF_FEATURES: cpuid_features_filter(e, o); break;
		case CPUID_LEAF_CACHE: cpuid_cache_filter(e, o); break;
		case CPUID_LEAF_TOPO:
		case CPUID_LEAF_TOPO2: cpuid_topo_filter(e, o); break;
		case CPUID_LEAF_PMU:
			/* No PMU: a microVM has no use for it, and the guest skips perf setup. */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case CPUID_LEAF_AMD_SIZE:
			e->ecx = (e->ecx & ~0xffu) | ((o->ncpus - 1) & 0xff);
			break;
		default: break;
		}
	}
}
