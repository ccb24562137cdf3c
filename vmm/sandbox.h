/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confinement after setup: capabilities dropped (caps.c), then a seccomp
 * allow-list per thread category (seccomp.c), default action kill.
 */
#ifndef KV_VMM_SANDBOX_H
#define KV_VMM_SANDBOX_H

#include "lib/kv.h"
#include "vmm/vmm.h"

enum sandbox_thread {
	SANDBOX_MAIN, /* event loop: API, console, device sockets, ioeventfds */
	SANDBOX_VCPU, /* KVM_RUN and the device work a vCPU does on an exit */
};

/* Drop every capability (effective, permitted, inheritable, bounding, ambient)
 * and set no_new_privs. Applies to the calling thread and threads it creates. */
int sandbox_caps_drop(struct kv_err **err) KV_WUR;
/* Load the calling thread's seccomp filter (no-op for VMM_SECCOMP_OFF). */
int sandbox_seccomp_load(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			 struct kv_err **err) KV_WUR;

#endif
