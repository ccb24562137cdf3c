/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Creating, running and stopping the event loop whose registration API
 * (evloop_add/mod/del) device models see in bus.h.
 *
 * Threading: evloop_add/mod/del may be called from any thread. Callbacks run
 * on the thread in evloop_run(). An fd deleted on the loop thread never sees
 * its callback again; one deleted from another thread may see one more call
 * already under way, so device contexts outlive their fds until the loop
 * stops.
 */
#ifndef KV_VMM_EVLOOP_H
#define KV_VMM_EVLOOP_H

#include "lib/kv.h"
#include "vmm/bus.h"

struct evloop *evloop_new(struct kv_err **err) KV_WUR;
void evloop_free(struct evloop *loop);
/* Dispatch until evloop_stop(); returns 0, or negative when epoll fails. */
int evloop_run(struct evloop *loop, struct kv_err **err) KV_WUR;
/* Thread-safe and async-signal-safe. */
void evloop_stop(struct evloop *loop);
bool evloop_stopped(struct evloop *loop);

#endif
