/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confinement after setup: the jail (jail.c: namespaces, an empty root, an
 * unprivileged uid and gid), capabilities dropped (caps.c), then a seccomp
 * allow-list per thread category (seccomp.c), default action kill.
 */
#ifndef KV_VMM_SANDBOX_H
#define KV_VMM_SANDBOX_H

#include <sys/types.h>

#include "lib/kv.h"
#include "vmm/vmm.h"

enum sandbox_thread {
	SANDBOX_MAIN, /* event loop: API, console, device sockets, ioeventfds */
	SANDBOX_VCPU, /* KVM_RUN and the device work a vCPU does on an exit */
	SANDBOX_FS,   /* a virtio-fs worker: file system calls beneath its shares */
};

/* The ids a jailed thread takes (sandbox_jail_ids). */
struct sandbox_ids {
	uid_t uid;
	gid_t gid;
};

/* Drop every capability (effective, permitted, inheritable, bounding, ambient)
 * and set no_new_privs; with ids, take them (sandbox_jail_ids) once the
 * bounding set is gone. Applies to the calling thread and threads it creates. */
int sandbox_caps_drop(const struct sandbox_ids *ids, struct kv_err **err) KV_WUR;
/* The SIGSYS handler the filters rely on, and the unwinder its reports use
 * loaded: before the jail and any filter (main() calls it; later calls do
 * nothing). */
void sandbox_seccomp_prepare(void);
/* Load the calling thread's seccomp filter (no-op for VMM_SECCOMP_OFF): the program
 * compiled at build time (seccomp_bpf.h), one system call. */
int sandbox_seccomp_load(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			 struct kv_err **err) KV_WUR;
/* Compile a category's filter with libseccomp (seccomp_rules.c): for the build tool
 * vmm/tools/seccomp_gen.c and the unit tests. Returns 0 or -errno; *prog is malloc'd. */
struct sock_filter;
int sandbox_seccomp_compile(enum sandbox_thread kind, enum vmm_seccomp_mode mode,
			    struct sock_filter **prog, unsigned short *len) KV_WUR;
/* A libseccomp filter context's BPF (through a memfd: libseccomp 2.5 exports
 * to an fd only); for kvrun-shim's build tool too. 0 or -errno; malloc'd. */
int sandbox_seccomp_export(void *ctx, struct sock_filter **prog, unsigned short *len) KV_WUR;

/*
 * virtio-fs worker threads (vmm/virtio/fs.c) confine themselves with this,
 * before they serve the guest: they keep only the capabilities that serving
 * a shared directory with the host's ownership needs (chown, DAC override
 * and read-search, fowner, fsetid, mknod), nothing else in their bounding
 * set, no_new_privs, and the SANDBOX_FS seccomp list. Threads are separate
 * here: the rest of the VMM drops every capability (caps.c).
 */
int sandbox_fs_thread_confine(const struct vmm_config *cfg, struct kv_err **err) KV_WUR;

/*
 * The jail (issue 16; Firecracker's jailer and virtiofsd's namespace
 * sandbox are the models), for a VMM started as root:
 *
 *  - sandbox_jail_unshare(), first thing, while the process has one
 *    thread (namespaces are per thread; every thread made later inherits
 *    them): its own mount namespace, a slave of the host's (nothing mounted
 *    here reaches the host, the host's unmounts reach here), and its own ipc
 *    and uts namespaces.
 *  - setup opens everything by path, as before.
 *  - sandbox_jail_pivot(): the root becomes an empty read-only tmpfs. It
 *    holds at most SANDBOX_JAIL_DIAL_DIR: a read-only bind mount of the
 *    directory of the hybrid vsock socket, where the guest's outgoing
 *    connections dial "<uds>_<port>" (the only path the VMM still uses
 *    after setup; everything else is an fd it holds or is handed: the API's
 *    snapshot files, live shares and taps come with their requests).
 *  - sandbox_caps_drop(ids): the main thread takes the jail's uid and gid,
 *    no supplementary groups; vCPU threads, made after it, inherit them.
 *    virtio-fs workers are made during setup and keep uid 0 with their few
 *    capabilities (sandbox_fs_thread_confine): credentials are per thread,
 *    and the ids change with the raw system calls, not glibc's wrappers
 *    (which change every thread).
 *  - sandbox_fs_thread_jail(), on each virtio-fs worker as it starts (its
 *    own fs struct first): a chroot into the one directory it exports
 *    (a container's root), or, for a device of several or live shares,
 *    into an empty read-only tmpfs attached nowhere. The worker, which
 *    keeps uid 0 and its file capabilities, then reaches nothing by path,
 *    not even /vsock: only through the fds it holds (its shares,
 *    /proc/self/fd), beneath which Landlock keeps its opens; and in its
 *    share, a ".." stops at the top for every call. Made during setup, it
 *    would otherwise see the host's tree until the process pivots, and
 *    /vsock after. Its capabilities have no CAP_SYS_CHROOT to leave by.
 *
 * The ids default to one of the VM's own ("kv" in the high half), so that
 * a VMM cannot signal another and no file outlives it owned by that uid
 * (the VMM creates none after setup): SANDBOX_JAIL_ID_BASE + the VMM's
 * pid, or, where it is pid 1 of a pid namespace of its own (kvrun's shim
 * clones it so), vmm_jail_ns_id() of that namespace (vmm.h); its pid is 1
 * in every VM there. kvrun-vmm --jail-uid UID[:GID] picks others (the
 * shim passes its own namespace's id where it could not make one for the
 * VMM). A VMM started by hand or by `kvrun template create` is in its
 * caller's pid namespace.
 *
 * In its own pid namespace the VMM sees no other process, not even its
 * shim; its spawner makes that (unshare(CLONE_NEWPID) only places
 * children). From outside, a namespace's init takes SIGKILL and SIGSTOP,
 * and the signals it has blocked for its signalfd (SIGTERM, SIGINT,
 * SIGHUP, once set up); others are dropped. Its getppid() is 0, so the
 * parent-death checks cannot tell whether the parent went: the shim's own
 * pid namespace, which ends with the shim, ends the VMM too.
 */
#define SANDBOX_JAIL_ID_BASE  VMM_JAIL_ID_BASE
#define SANDBOX_JAIL_PIDS     VMM_JAIL_PIDS
#define SANDBOX_JAIL_DIAL_DIR "/vsock"
int sandbox_jail_unshare(struct kv_err **err) KV_WUR;
/* The jail's default uid and gid for this VMM (above); before the pivot,
 * which takes /proc away. */
int sandbox_jail_default_id(uid_t *id, struct kv_err **err) KV_WUR;
/* dial_dir: the host directory to bind at SANDBOX_JAIL_DIAL_DIR, or NULL. */
int sandbox_jail_pivot(const char *dial_dir, struct kv_err **err) KV_WUR;
/* The calling thread's gid (no supplementary groups) and uid, and no other thread's. */
int sandbox_jail_ids(const struct sandbox_ids *ids, struct kv_err **err) KV_WUR;
/* The calling thread (which has its own fs struct: unshare(CLONE_FS)) into
 * share_fd (a directory, O_PATH will do) as its root, or with -1 an empty
 * read-only one; needs CAP_SYS_CHROOT (and CAP_SYS_ADMIN for the latter).
 * *keep_fd: an fd to close once the thread is gone (off the start's path:
 * the close costs an RCU grace period), or -1. */
int sandbox_fs_thread_jail(int share_fd, int *keep_fd, struct kv_err **err) KV_WUR;

#endif
