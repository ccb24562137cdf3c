/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A running microVM: the VM, its RAM, devices, vCPU threads and the event
 * loop, plus the run state (stopping, exit status, pause) the vCPU threads,
 * the devices and the API share. vmm_run() (machine.c) builds and runs one.
 */
#ifndef KV_VMM_MACHINE_H
#define KV_VMM_MACHINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "vmm/console.h"
#include "vmm/power.h"
#include "vmm/ram.h"
#include "vmm/serial.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#define MACHINE_MAX_VIRTIO (2 * VMM_MAX_DISKS + 2 + VMM_MAX_FS)
#define MACHINE_WHY_MAX	   512

struct virtio_mmio;
struct api;

#define MACHINE_MAX_IOEVENTFDS 64

/* An ioeventfd on a virtio QueueNotify: the loop calls virtio_mmio_notify(). */
struct machine_ioevent {
	struct virtio_mmio *dev;
	unsigned queue;
	int fd;
};

struct machine_pmem {
	void *hva;
	uint64_t gpa, size;
	bool slot; /* read-only with a window: pmem-bind may map another file in */
	bool cow;  /* mapped private and writable (no read-only memslots) */
};

struct machine {
	const struct vmm_config *cfg;
	bool pvm;
	struct vm vm;
	struct ram ram;
	struct evloop *loop;
	struct serial serial;
	struct console console;
	struct power power;
	struct vcpu vcpus[VMM_MAX_CPUS];
	unsigned ncpus;
	struct virtio_mmio *virtio[MACHINE_MAX_VIRTIO];
	unsigned nvirtio;
	struct virtio_mmio *vsock; /* one of virtio[], or NULL */
	struct machine_ioevent ioev[MACHINE_MAX_IOEVENTFDS];
	unsigned nioev;
	struct machine_pmem pmem[VMM_MAX_DISKS];
	unsigned npmem;
	struct machine_pmem fsdax[VMM_MAX_FS]; /* virtio-fs DAX windows (reserved VA) */
	unsigned nfsdax;
	struct api *api;
	char *cmdline;
	bool jailed;  /* in the jail's namespaces (sandbox.h); pivots after setup */
	pid_t parent; /* the parent PR_SET_PDEATHSIG watches */
	int signal_fd;
	int stats_fd;

	/* Run state. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stopping;
	atomic_bool pause_req;
	atomic_bool panicked; /* the guest reported a panic: its reset means VMM_EXIT_PANIC */
	int panic_timer_fd;
	int probe_timer_fd; /* idle probe */
	unsigned paused;    /* vCPUs parked in machine_vcpu_gate() */
	int exit_status;
	char why[MACHINE_WHY_MAX];
	uint64_t t_start_ns;
	_Atomic uint64_t t_first_run_ns;

	/* Snapshots (snapshot*.c). */
	int maps_fd;			/* /proc/self/maps, opened before confinement */
	struct vmm_config cfg_restored; /* cfg with the restored snapshot's memory and vCPUs */
	uint64_t restore_us[3];		/* files checked, VM built, state applied */
	uint64_t t_restored_ns;		/* when the state was applied */
};

/* Stop the VM (first caller wins): kicks the vCPUs and the loop. */
void machine_stop(struct machine *m, int status, const char *fmt, ...) KV_PRINTF(3, 4);
/* vCPU threads call this before each KVM_RUN: false when stopping; parks while paused
 * (after completing the vCPU's pending I/O, so that its state can be saved). */
bool machine_vcpu_gate(struct machine *m, struct vcpu *v);
/* Pause: returns once every vCPU is out of KVM_RUN. Resume: lets them go. */
int machine_pause(struct machine *m, struct kv_err **err) KV_WUR;
void machine_resume(struct machine *m);
bool machine_paused(struct machine *m);
/* Seccomp for the calling vCPU thread (no-op when sandboxing is off). */
int machine_vcpu_confine(struct machine *m, struct kv_err **err) KV_WUR;
/* A probe found a vCPU dead (see vcpu.c): stop if every vCPU is. */
void machine_dead_check(struct machine *m);
/* Sum of exits over vCPUs (racy read while running). */
uint64_t machine_exits_total(struct machine *m);

/* devices.c: serial console, power, virtio devices; fills m->cmdline. */
int machine_devices_setup(struct machine *m, struct kv_err **err) KV_WUR;
/* The API's pmem-bind: map fd (a regular file no larger than the window;
 * -1: zeroes) over slot pmem<index>'s window, in place (devices.c). */
int machine_pmem_bind(struct machine *m, unsigned index, int fd, struct kv_err **err) KV_WUR;
void machine_devices_teardown(struct machine *m);

#endif
