/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket (vmm.sock): a Unix stream socket carrying one JSON
 * object per line each way.
 *   request:  {"op":"status"|"pause"|"resume"|"shutdown"}
 *   response: {"ok":true,"state":"running"|"paused"|"stopping",...}
 *         or  {"ok":false,"error":{"code":"EINVAL","message":"..."}}
 * "status" adds pid, vcpus, mem, pvm, uptime_ms, exits. "pause" returns
 * once every vCPU is out of KVM_RUN. "shutdown" stops the VM; kvrun-vmm
 * then exits 0.
 */
#ifndef KV_VMM_API_H
#define KV_VMM_API_H

#include <stddef.h>

#include "lib/kv.h"

#define API_MAX_REQUEST 4096
#define API_MAX_CONNS	8

struct machine;
struct api;

struct api *api_start(struct machine *m, const char *path, struct kv_err **err) KV_WUR;
void api_stop(struct api *a);
/* Handle one request line; returns the response (malloc'd, no newline). */
char *api_request_handle(struct machine *m, const char *line, size_t len);

#endif
