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
	SANDBOX_FS,   /* a virtio-fs worker: file system calls beneath its shares */
};

/* Drop every capability (effective, permitted, inheritable, bounding, ambient)
 * and set no_new_privs. Applies to the calling thread and threads it creates. */
int sandbox_caps_drop(struct kv_err **err) KV_WUR;
/* Load the calling thread's seccomp filter (no-op for VMM_SECCOMP_OFF); compiles it first
 * unless sandbox_seccomp_prepare() did. A process uses one mode. */
int sandbox_seccomp_load(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			 struct kv_err **err) KV_WUR;
/* Compile a category's filter now (once per process; thread-safe), so that loading it
 * later is one system call. */
int sandbox_seccomp_prepare(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			    struct kv_err **err) KV_WUR;

/*
 * virtio-fs worker threads (vmm/virtio/fs.c) confine themselves with this,
 * before they serve the guest: they keep only the capabilities that serving
 * a shared directory with the host's ownership needs (chown, DAC override
 * and read-search, fowner, fsetid, mknod), nothing else in their bounding
 * set, no_new_privs, and the SANDBOX_FS seccomp list. Threads are separate
 * here: the rest of the VMM drops every capability (caps.c).
 */
int sandbox_fs_thread_confine(const struct vmm_config *cfg, struct kv_err **err) KV_WUR;

#endif
