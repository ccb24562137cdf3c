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
/* Load the calling thread's seccomp filter (no-op for VMM_SECCOMP_OFF): the program
 * compiled at build time (seccomp_bpf.h), one system call. */
int sandbox_seccomp_load(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			 struct kv_err **err) KV_WUR;
/* Compile a category's filter with libseccomp (seccomp_rules.c): for the build tool
 * vmm/tools/seccomp_gen.c and the unit tests. Returns 0 or -errno; *prog is malloc'd. */
struct sock_filter;
int sandbox_seccomp_compile(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			    struct sock_filter **prog, unsigned short *len) KV_WUR;

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
