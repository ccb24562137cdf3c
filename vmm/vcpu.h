/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vCPUs: creation and boot state (applying what x86/regs.c and x86/cpuid.c
 * computed), the per-vCPU thread, exit handling, and the state a snapshot
 * saves (vcpu_save/vcpu_restore). vcpu_exit_handle() is a pure function of
 * (struct kvm_run, buses): tests feed it by hand.
 */
#ifndef KV_VMM_VCPU_H
#define KV_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/bus.h"
#include "vmm/mem.h"

#define VCPU_EXIT_REASONS 40
#define VCPU_PROBE_MS	  1000
#define VCPU_MSG_MAX	  256

struct machine;
struct vm;

struct vcpu {
	unsigned index;
	int fd;
	struct kvm_run *run;
	int run_size;
	pthread_t thread;
	bool thread_started;
	struct machine *m;
	/* Written by the vCPU's own thread only; read after join or racily for stats. */
	uint64_t exits[VCPU_EXIT_REASONS];
	uint64_t fixups;
	/* Idle probe (machine.c): the loop's view of the exit count, the request,
	 * and what the last probe found (reset by any exit). */
	uint64_t probe_seen;
	int probe_req;
	bool dead;
};

enum vcpu_action {
	VCPU_CONTINUE,
	VCPU_RESET,	      /* triple fault or reset event: status VMM_EXIT_RESET */
	VCPU_POWEROFF,	      /* KVM shutdown system event: status 0 */
	VCPU_EMULATION_ERROR, /* internal error, emulation failure: a PVM fixup may apply */
	VCPU_FATAL,	      /* anything else: stop with VMM_EXIT_ERROR and msg */
};

struct vcpu_outcome {
	enum vcpu_action action;
	char msg[VCPU_MSG_MAX];
};

void vcpu_exit_handle(struct kvm_run *run, size_t run_size, struct bus *pio, struct bus *mmio,
		      struct vcpu_outcome *out);
/* Bytes of the instruction that failed emulation, from the exit (0 if none). */
unsigned vcpu_insn_bytes(const struct kvm_run *run, uint8_t *buf, unsigned max);
/* "KVM internal error ... at RIP 0x...: bytes cc 90 ..." */
void vcpu_internal_error_format(const struct kvm_run *run, uint64_t rip, const uint8_t *insn,
				unsigned n, char *buf, size_t len);

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned index, struct kv_err **err) KV_WUR;
void vcpu_destroy(struct vcpu *v);
/* CPUID (filtered for this vCPU; PVM bits hidden when pvm), MSRs, FPU. */
int vcpu_arch_setup(struct vcpu *v, struct vm *vm, unsigned ncpus, bool pvm,
		    struct kv_err **err) KV_WUR;
/* The boot CPU's registers for the 64-bit entry. */
int vcpu_boot_regs_set(struct vcpu *v, uint64_t entry, uint64_t zero_page,
		       struct kv_err **err) KV_WUR;
/* Thread body: runs until the machine stops. */
void *vcpu_thread_main(void *arg);
/* Total exits of this vCPU (a racy read from another thread is fine). */
uint64_t vcpu_exits_total(struct vcpu *v);
/* From the vCPU's thread, out of KVM_RUN: complete the last exit's pending I/O. */
void vcpu_settle(struct vcpu *v);
/* Make a running KVM_RUN return (immediate_exit + signal). */
void vcpu_kick(struct vcpu *v);
/* Install the kick signal's handler (once per process). */
int vcpu_signals_init(struct kv_err **err) KV_WUR;
const char *vcpu_exit_reason_name(unsigned reason);

/* ------------------------------------------------------------ snapshots */

#define VCPU_STATE_MAX_MSRS  1024
#define VCPU_STATE_MAX_CPUID 256

/*
 * A vCPU's state as KVM gives it (vcpu_save) and takes it back
 * (vcpu_restore): the per-vCPU sections of a snapshot (snapshot.h), KVM's
 * own structs. xsave, msrs and cpuid are malloc'd and owned by the state
 * (vcpu_state_free).
 */
struct vcpu_state {
	uint32_t tsc_khz;
	uint32_t xsave_size; /* bytes at xsave; 0: no XSAVE on this host, fpu instead */
	bool has_xcrs;	     /* KVM_CAP_XCRS: xcrs is part of the state */
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	void *xsave;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_msr_entry *msrs; /* every MSR of KVM_GET_MSR_INDEX_LIST the vCPU has */
	unsigned nmsrs;
	struct kvm_cpuid_entry2 *cpuid; /* as the guest sees it (KVM_GET_CPUID2) */
	unsigned ncpuid;
	struct kvm_vcpu_events events;
};

/* The XSAVE state's size on this host (KVM_CAP_XSAVE2, else 4096), 0 without XSAVE. */
uint32_t vcpu_xsave_size(struct vm *vm);
/* Read the state of a vCPU that is not running (parked after vcpu_settle). */
int vcpu_save(struct vcpu *v, struct vm *vm, struct vcpu_state *st, struct kv_err **err) KV_WUR;
/* Into a new vCPU (vcpu_create, not run yet). st's sizes must fit this host's. */
int vcpu_restore(struct vcpu *v, const struct vcpu_state *st, struct kv_err **err) KV_WUR;
void vcpu_state_free(struct vcpu_state *st);

#endif
