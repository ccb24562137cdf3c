/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket (vmm.sock): a Unix stream socket carrying one JSON
 * object per line each way.
 *   request:  {"op":"status"|"pause"|"resume"|"shutdown"}
 *             {"op":"snapshot","then":"resume"|"pause"|"exit","path":DIR}
 *             with two fds attached (SCM_RIGHTS): the state and memory files,
 *             opened by the client (vmm_snapshot() in vmm.h), since the
 *             confined VMM opens no files; "path" is only reported back
 *   response: {"ok":true,"state":"running"|"paused"|"stopping",...}
 *         or  {"ok":false,"error":{"code":"EINVAL","message":"..."}}
 * "status" adds pid, vcpus, mem, pvm, uptime_ms, exits. "pause" returns
 * once every vCPU is out of KVM_RUN. "shutdown" stops the VM; kvrun-vmm
 * then exits 0. "snapshot" pauses the VM, writes the snapshot (snapshot.h)
 * and then resumes it, leaves it paused, or stops it (kvrun-vmm exits 0);
 * it is refused while a live virtio-fs device has shares.
 *
 * Live virtio-fs devices (--fs TAG/; fs_api.c):
 *   {"op":"fs-add","tag":TAG,"name":NAME,"ro":BOOL,"dev":BOOL}
 *             with exactly one fd attached: a host directory or regular
 *             file (O_PATH or O_RDONLY) the client opened; it appears as
 *             NAME in TAG's root, confined like --fs TAG/NAME=PATH. "ro" is
 *             required, "dev" defaults to false.
 *   {"op":"fs-remove","tag":TAG,"name":NAME}
 *             NAME vanishes from TAG's root; every host fd of it is closed
 *             before the answer.
 *   response: {"ok":true,"state":...,"tag":TAG,"name":NAME,"shares":N}
 *             (N: the device's shares now), or an error (ENOENT: no such
 *             tag or share; EINVAL: not a live device, a bad name or fd, not
 *             one fd; EEXIST; ENOSPC: VIRTIO_FS_LIVE_MAX shares; ETIMEDOUT:
 *             the device's worker stayed busy).
 *
 * The NIC (--net; net_api.c):
 *   {"op":"net-attach"}
 *             with exactly one fd attached: a tap the client opened with
 *             IFF_TAP|IFF_NO_PI|IFF_VNET_HDR. The link comes up (a config
 *             interrupt tells the guest).
 *   {"op":"net-detach"}
 *             link down, the VMM's copy of the tap closed; nothing to do
 *             when none is attached.
 *   response: {"ok":true,"state":...,"link":"up"|"down"}, or an error
 *             (ENODEV: no --net device; EBUSY: a tap is attached already;
 *             EINVAL: not one fd, or the fd is not such a tap).
 *
 * Slots (a read-only --pmem given a window; pmem_api.c):
 *   {"op":"pmem-bind","device":N}
 *             with one fd attached: a regular file (O_RDONLY) no larger than
 *             the window, mapped over pmemN's window in place; with none:
 *             the window reads as zeroes. The guest must not have pmemN
 *             mounted (its page cache of the device is its own to drop).
 *   response: {"ok":true,"state":...,"device":N,"bound":BOOL}, or an error
 *             (ENOENT: no such device; EPERM: not a slot; EFBIG: the file
 *             is larger than the window; EINVAL: not a regular file, more
 *             than one fd).
 */
#ifndef KV_VMM_API_H
#define KV_VMM_API_H

#include <stddef.h>

#include "lib/kv.h"

#define API_MAX_REQUEST 4096
#define API_MAX_CONNS	8
#define API_MAX_FDS	4

struct machine;
struct api;

struct api *api_start(struct machine *m, const char *path, struct kv_err **err) KV_WUR;
void api_stop(struct api *a);
/* Handle one request line; returns the response (malloc'd, no newline). */
char *api_request_handle(struct machine *m, const char *line, size_t len);
/* The same with the fds that came with the request (borrowed). */
char *api_request_handle_fds(struct machine *m, const char *line, size_t len, const int *fds,
			     unsigned nfds);
/* fs-add, fs-remove (fs_api.c); NULL when op is neither. req: the parsed request. */
struct yajl_val_s;
char *api_fs_op(struct machine *m, const char *op, const struct yajl_val_s *req, const int *fds,
		unsigned nfds);
/* pmem-bind (pmem_api.c); NULL when op is another. */
char *api_pmem_op(struct machine *m, const char *op, const struct yajl_val_s *req, const int *fds,
		  unsigned nfds);
/* net-attach, net-detach (net_api.c); NULL when op is neither. */
char *api_net_op(struct machine *m, const char *op, const int *fds, unsigned nfds);
/* The machine's state for a reply: "stopping", "paused" or "running". */
const char *api_state(struct machine *m);
/* {"ok":false,"error":{"code":...,"message":...}} (malloc'd). */
char *api_error(int errnum, const char *msg);
/* Client side: a connected socket to the API at sock (any length of path). */
int api_client_connect(const char *sock, struct kv_err **err) KV_WUR;
/* Send one request line (newline included) with nfds fds attached (SCM_RIGHTS);
 * 0, or -1 with errno. */
int api_client_send(int sock, const char *line, size_t len, const int *fds, unsigned nfds) KV_WUR;
/* Read one response line (without its newline) into *out; a failure says
 * `what` failed. */
int api_client_read_line(int fd, const char *what, char **out, struct kv_err **err) KV_WUR;

/*
 * Send the request j (an open map, closed by the caller) with nfds fds to the
 * API at sock and read the answer: 0 when "ok":true, else *err with the
 * VMM's errno and message (`what` names the request where it has none).
 */
struct kv_json;
int api_client_request(const char *sock, const char *what, struct kv_json *j, const int *fds,
		       unsigned nfds, struct kv_err **err) KV_WUR;

#endif
