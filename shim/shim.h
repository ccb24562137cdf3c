/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim/ — kvrun-shim, one host process per guest process (a container's
 * init or an exec). This is the module's one public header: the program's
 * entry point and the handshake that `kvrun` (runtime/) speaks with it.
 *
 * Lifecycle. kvrun forks and execs `kvrun-shim --sync-fd 3 --state-dir DIR`
 * in a new session, with the container's stdio as the shim's fds 0-2. Over
 * the sync socket (frames as in agent/protocol.h: 4-byte big-endian length +
 * one JSON object):
 *
 *   kvrun -> shim   request  {op, sandbox_dir, owner, vmm_argv?, container,
 *                             exec_id?, body, rootfs?, terminal,
 *                             console_socket?, boot_timeout_ms, set_time}
 *   shim -> kvrun   answer   {"ok": true, "pid": guest pid}
 *                         or {"ok": false, "errno": N, "message": "..."}
 *   kvrun -> shim   net      {"net": true}   (optional, VM owner, after the hooks)
 *   shim -> kvrun   answer   as above: the namespace's interface is in the VM
 *   kvrun -> shim   commit   {"commit": true}
 *
 * `op` is "create" or "exec"; `body` is the agent's spec (create) or process
 * (exec) as JSON text; `rootfs` the create request's rootfs object as text.
 * With `owner` the shim first starts the VM (`vmm_argv`, run in
 * `sandbox_dir`, whose vsock.sock it then dials), and kills it when it
 * exits. Before the answer the process exists in the guest (created and
 * blocked before exec, or exec'd) and its streams are attached. Without a
 * commit (kvrun died, or a hook failed) the shim undoes what it did and
 * exits 1.
 *
 * After the commit it relays stdio (or the terminal), forwards every
 * signal it receives to the guest process, forwards window-size changes,
 * and exits with the process's exit code, or dies by the signal that killed
 * it. If the VM goes away first, it dies by SIGKILL.
 */
#ifndef KV_SHIM_H
#define KV_SHIM_H

#include "lib/kv.h"

/* The program (main.c is a thin wrapper). */
int shim_main(int argc, char **argv);

/* The VM's hybrid vsock socket and control files in a sandbox directory. */
#define SHIM_VSOCK_NAME	  "vsock.sock"
#define SHIM_API_NAME	  "vmm.sock"
#define SHIM_VMM_PID_NAME "vmm.pid"
#define SHIM_CONSOLE_NAME "console.log"
#define SHIM_VMM_LOG_NAME "vmm.log"

/*
 * The agent address ("hvsock:PATH") of the VM whose sandbox directory is
 * dir. A path too long for sun_path goes through /proc/self/fd/N of an
 * O_PATH descriptor of dir, which stays open for the life of the process.
 */
char *shim_agent_addr(const char *dir, struct kv_err **err) KV_WUR;

/*
 * "pid starttime\n" files (vmm.pid): written by the shim, read by kvrun's
 * delete to make sure a VMM is gone. Returns 0 and fills both, or -1.
 */
int shim_pidfile_write(const char *path, pid_t pid, struct kv_err **err) KV_WUR;
int shim_pidfile_read(const char *path, pid_t *pid, uint64_t *start);

/*
 * kvrun delete of a VM owner: the ingress qdisc its shim put on the
 * network namespace's interface (shim/net.c), if the shim could not remove
 * it (killed); netns is the spec's namespace path (NULL: none, nothing to
 * do: a namespace of the shim's own went with it).
 */
void shim_net_unwire(const char *sandbox_dir, const char *netns);

#endif
