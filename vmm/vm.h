/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM VM: /dev/kvm, the VM fd, memslots, the in-kernel irqchip (PIC,
 * IOAPIC, LAPICs) and PIT, the interrupt sink devices raise (irqfd per GSI,
 * else KVM_IRQ_LINE), ioeventfds, and the VM-wide state snapshots save
 * (vm_save/vm_restore). The thin layer between pure setup code and the
 * ioctls.
 */
#ifndef KV_VMM_VM_H
#define KV_VMM_VM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/bus.h"

#define VM_MAX_GSI	  24
#define VM_MAX_SLOTS	  32
#define VM_MAX_IOEVENTFDS 64
#define VM_IRQCHIPS	  3 /* KVM's chip ids: 0 PIC master, 1 PIC slave, 2 IOAPIC */

/* An ioeventfd waiting for vm_irqchip_create() (the fd is the caller's). */
struct vm_ioeventfd {
	uint64_t addr;
	uint32_t data;
	int fd;
};

struct vm {
	int kvm_fd, vm_fd;
	int run_size; /* KVM_GET_VCPU_MMAP_SIZE */
	unsigned nslots;
	bool readonly_mem; /* KVM_CAP_READONLY_MEM */
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER */
	bool irqchip;	   /* created: irqfds and ioeventfds are registered at once, else then */
	bool pit;	   /* an in-kernel PIT exists (vm_irqchip_create) */
	struct vm_ioeventfd ioev_pending[VM_MAX_IOEVENTFDS];
	unsigned nioev_pending;
	int irqfd[VM_MAX_GSI]; /* -1: use KVM_IRQ_LINE */
	struct bus pio, mmio;
	/* A VM restored without a PIT (pit false) saves the PIT state it was restored with. */
	struct kvm_pit_state2 pit_restored;
};

/* Empty VM (no fds): vm_destroy() is then a no-op. */
void vm_init(struct vm *vm);
int vm_create(struct vm *vm, struct kv_err **err) KV_WUR;
/*
 * vm_create() in two steps: the VM without, then with its irqchip and,
 * with `pit`, the PIT (which registers the irqfds and ioeventfds made
 * meanwhile). Memslots added before the irqchip and any ioeventfd exist are
 * much cheaper on some hosts (measured on PVM: ~0.1-0.5 ms instead of 5-10
 * ms each; snapshot_restore.c). A PIT costs a kernel thread per VM, whose
 * creation takes 0.1-8 ms on a loaded host: a restore whose guest has shut
 * its PIT down does without (snap_pit_idle()).
 */
int vm_open(struct vm *vm, struct kv_err **err) KV_WUR;
/*
 * The next vm_open() takes fd (an open /dev/kvm, close-on-exec from then
 * on) instead of opening /dev/kvm: the caller opened it before it joined a
 * cgroup whose device policy (a container's, a pod's) may deny it.
 */
void vm_kvm_fd_use(int fd);
int vm_irqchip_create(struct vm *vm, bool pit, struct kv_err **err) KV_WUR;
void vm_destroy(struct vm *vm);
int vm_memslot_add(struct vm *vm, uint64_t gpa, uint64_t size, void *hva, bool readonly,
		   struct kv_err **err) KV_WUR;
/* An irqfd for gsi (edge: KVM pulses the line on every eventfd write). */
int vm_irqfd_add(struct vm *vm, unsigned gsi, struct kv_err **err) KV_WUR;
/* irq_sink.raise with ctx = struct vm *. */
void vm_irq_raise(void *ctx, unsigned gsi);
/* An ioeventfd on a 4-byte MMIO write of `data` at addr; returns the eventfd. */
int vm_ioeventfd_add(struct vm *vm, uint64_t addr, uint32_t data, struct kv_err **err) KV_WUR;
int vm_check_extension(struct vm *vm, long cap);

/*
 * Snapshot state of the VM-wide devices KVM emulates: the irqchips, the PIT
 * and kvmclock, the KVM structs as a snapshot stores them (snapshot.h). The
 * vCPUs' own state is vcpu_save's (vcpu.h), the devices' their own.
 */
struct vm_state {
	struct kvm_irqchip irqchip[VM_IRQCHIPS];
	struct kvm_pit_state2 pit; /* without a PIT: the state it was restored with */
	struct kvm_clock_data clock;
};
int vm_save(struct vm *vm, struct vm_state *st, struct kv_err **err) KV_WUR;
/* After the vCPUs' (vcpu_restore), before any device raises an interrupt. */
int vm_restore(struct vm *vm, const struct vm_state *st, struct kv_err **err) KV_WUR;

#endif
