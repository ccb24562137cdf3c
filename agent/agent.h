/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun-agent: the guest's PID 1. It owns the VM, builds and runs the
 * container processes from the OCI spec the host sends, and speaks the agent
 * protocol (agent/protocol.h) on vsock. This is the agent library's one
 * public header; agent/main.c is a thin program around it.
 */
#ifndef KV_AGENT_H
#define KV_AGENT_H

#include "lib/kv.h"

struct agent_config {
	/* "vsock" (ports KV_AGENT_PORT and KV_AGENT_DATA_PORT), or "unix:PATH"
	 * (control at PATH, stdio streams at PATH_1025) for tests on a host. */
	const char *listen;
	/* PID 1 duties: mount /proc, /sys, /dev, cgroup2...; power off on exit. */
	bool init;
	/* Power off (or, not being PID 1, exit) once the last container's
	 * processes have exited: a single-container VM. */
	bool poweroff_on_exit;
	/* Where per-container scratch mounts go (default /run/kvrun). */
	const char *state_dir;
	/* A cgroup2 mount for containers (default: detect). "none" disables. */
	const char *cgroup_root;
	/* The directory under cgroup_root holding the containers (default kvrun). */
	const char *cgroup_parent;
};

/* Parse argv; on a usage error print it and return -1. */
int agent_parse_args(int argc, char **argv, struct agent_config *cfg);
/* Run until poweroff (or, in host mode, SIGTERM/SIGINT). Returns the exit
 * status for main(). As PID 1 it does not return. */
int agent_run(const struct agent_config *cfg);

struct oci_seccomp;
/*
 * The host's side of a container's seccomp filter: the agent's own
 * resolution and compilation of linux.seccomp (as oci/ parsed it), without
 * an i386 branch (the guest kernel runs no i386 calls), exported as BPF and
 * base64-encoded into *b64, for the spec's "kvrunBpf" (agent/protocol.h):
 * the guest then loads it with one seccomp(2) call instead of building it
 * with libseccomp at emulated speed. Errors name the spec's field.
 */
int agent_seccomp_guest_bpf(const struct oci_seccomp *seccomp, char **b64,
			    struct kv_err **err) KV_WUR;

/*
 * The host's side of a create's checks: what the agent will do with the
 * spec and rootfs JSON it is sent (agent/protocol.h create), decoded and
 * checked with the agent's own code (agent/spec.c), so that whatever it
 * would refuse after the VM booted is refused before, with the same
 * message naming the field (a mount count over its limit, a destination
 * that climbs out, a device path...). rootfs_json may be NULL.
 */
int agent_spec_check(const char *spec_json, const char *rootfs_json, struct kv_err **err) KV_WUR;
/* The same for an exec's process JSON (its errors name process.*). */
int agent_process_check(const char *process_json, struct kv_err **err) KV_WUR;

#endif
