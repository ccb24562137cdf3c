/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kvrun agent protocol, defined once and compiled into the guest agent
 * and into every host program that talks to it (libagentproto.a).
 *
 * Control channel (guest vsock port KV_AGENT_PORT): a stream of frames, each
 * a 4-byte big-endian length followed by that many bytes holding exactly one
 * JSON object, at most KV_AGENT_FRAME_MAX bytes.
 *
 *   request   {"id": N, "op": "create", "params": {...}}
 *   response  {"id": N, "result": {...}}
 *          or {"id": N, "error": {"code": "ENOENT", "message": "..."}}
 *   event     {"event": "exit", ...}            (no id)
 *
 * `id` is a non-negative integer below 2^53 chosen by the client; the agent
 * echoes it. A frame the agent cannot attribute to a request (bad length, not
 * JSON, no id) is answered with an error whose id is null.
 *
 * The first request on a connection should be "version": the client sends
 * its KV_AGENT_PROTO_VERSION, the agent answers with its own and refuses a
 * major version it does not speak (EPROTONOSUPPORT).
 *
 * Data channel (guest vsock port KV_AGENT_DATA_PORT): one connection per
 * stdio stream. The host's first line is "<token>\n" where the token comes
 * from a create or exec result; the agent answers "OK\n" (or "ERR <msg>\n"
 * and closes) and the rest of the connection is raw bytes of that stream.
 */
#ifndef KV_AGENT_PROTOCOL_H
#define KV_AGENT_PROTOCOL_H

#include "lib/kv.h"

#include <stdint.h>

#define KV_AGENT_PROTO_VERSION 1
#define KV_AGENT_PORT	       1024
#define KV_AGENT_DATA_PORT     1025
#define KV_AGENT_FRAME_MAX     (1u << 20)
/* The most mounts a container's spec may have (agent/spec.c; kvrun checks first). */
#define KV_AGENT_MOUNTS_MAX 1024
#define KV_AGENT_FRAME_HDR  4
/* Stream tokens: 32 lowercase hex digits. */
#define KV_AGENT_TOKEN_LEN 32
/* The largest id a JSON number carries exactly (2^53). */
#define KV_AGENT_ID_MAX (1ull << 53)

/*
 * Operations (params -> result). "container" names a container, "exec_id"
 * one of its exec'd processes (absent: the container's init).
 *
 *   version   {version}                    -> {version, agent, init, cgroups}
 *   ping      {}                           -> {pid}
 *   create    {container, spec: OCI config subset, rootfs?: {type: dir|block|
 *              virtiofs|9p|overlay, ...}, stdin?: bool}
 *                                          -> {container, pid, stdio: {stdin?, stdout,
 *                                              stderr} or {pty}}  (tokens)
 *             answered once the process is set up and blocked before exec.
 *             An overlay's layer i is mounted at <state-dir>/mnt/l<i> (default
 *             /run/kvrun/mnt/l<i>) in the container's namespace before bind
 *             sources are opened, so a bind mount may take its source from a
 *             layer (kvrun's pod members do); a mount_shared path serves too.
 *             The spec's linux.seccomp is either the OCI object (compiled
 *             here with libseccomp) or {kvrunBpf: base64 of the BPF program,
 *             flags?}, compiled by the host (agent_seccomp_guest_bpf(), as
 *             kvrun does) and loaded as it is.
 *   start     {container}                  -> {container, pid, stdio}, once exec'd
 *   exec      {container, exec_id, process: OCI process, stdin?}
 *                                          -> {container, exec_id, pid, stdio}, once exec'd
 *   wait      {container, exec_id?}        -> {exit_code, status} or
 *                                             {signal, signal_name, status: 128+signal}
 *   kill      {container, exec_id?, signal: number or "TERM"/"SIGTERM", all?}
 *   delete    {container, force?}          (EBUSY while running unless force)
 *   state     {container?}                 -> {container, state: creating|created|
 *                                             running|paused|stopped, pid, execs[]...}
 *   pause / resume {container}             -> {state}  (cgroup v2 freeze)
 *   stats     {container?}                 -> {cgroup: {cpu, memory, pids}, meminfo}
 *   resize    {container, exec_id?, rows, cols}
 *   close_stdin {container, exec_id?}      (for transports without half-close)
 *   set_hostname {hostname}  set_time {sec, nsec}
 *   add_entropy {data: base64 (<= 512 bytes), credit_bits?}  (reseeds the CRNG)
 *   mount_shared {tag, type: virtiofs|9p} -> {path}  (bind sources live there)
 *   net       {ifaces: [{name, mac: "xx:xx:xx:xx:xx:xx", mtu: 68..65535,
 *              addrs?: ["A.B.C.D/N", ...]}],
 *              routes?: [{dst: "A.B.C.D/N" ("0.0.0.0/0": default), gw?: "A.B.C.D",
 *              dev: name, src?: "A.B.C.D"}]}  -> {}
 *             Makes the guest NIC (the Ethernet interface with the lowest
 *             ifindex) look like the container's host-side interface: link
 *             down, MAC, MTU, renamed to `name`, addresses (broadcast as
 *             `brd +`), link up, routes in the main table in the order given
 *             (a gateway's own route first), lo up. Exactly one iface (the
 *             VM has one NIC); IPv4 only: IPv6 is not carried yet (the guest
 *             makes its own link-local address), so the host leaves IPv6
 *             addresses and routes out, and any in the request is EINVAL. A route's dev must be the
 * iface's name, dst has no host bits. Everything is validated before anything changes; an error
 *             names the entry ("routes[2]: RTM_NEWROUTE: ..."). Idempotent:
 *             an address is replaced, a route to a destination that already
 *             has one (say the kernel's prefix route) is left as it is.
 *             Addresses and routes not in the request are not removed.
 *   poweroff  {}
 *
 * Events: {"event":"exit", container, exec_id?, pid, exit_code|signal,
 * status} and {"event":"oom", container, oom_kills}, sent to every control
 * connection.
 */
#define KV_OP_VERSION	   "version"
#define KV_OP_PING	   "ping"
#define KV_OP_CREATE	   "create"
#define KV_OP_START	   "start"
#define KV_OP_EXEC	   "exec"
#define KV_OP_WAIT	   "wait"
#define KV_OP_KILL	   "kill"
#define KV_OP_DELETE	   "delete"
#define KV_OP_STATE	   "state"
#define KV_OP_PAUSE	   "pause"
#define KV_OP_RESUME	   "resume"
#define KV_OP_STATS	   "stats"
#define KV_OP_RESIZE	   "resize"
#define KV_OP_UPDATE	   "update"
#define KV_OP_CLOSE_STDIN  "close_stdin"
#define KV_OP_SET_HOSTNAME "set_hostname"
#define KV_OP_SET_TIME	   "set_time"
#define KV_OP_ADD_ENTROPY  "add_entropy"
#define KV_OP_MOUNT_SHARED "mount_shared"
#define KV_OP_NET	   "net"
#define KV_OP_POWEROFF	   "poweroff"

/* Events. */
#define KV_EV_EXIT "exit"
#define KV_EV_OOM  "oom"

/* ------------------------------------------------------ request builders */

/*
 * A container or exec name: 1..64 of [A-Za-z0-9_.-], not "." or "..". The
 * agent refuses any other; the host checks with the same function.
 */
bool kv_agent_name_ok(const char *name);

/*
 * The params object of each operation above, written with the checked
 * writer (lib/json.c): every string is escaped whatever it holds, so no
 * caller depends on a check made elsewhere. Each returns the text for
 * kv_agent_client_call() (the caller frees it), or NULL with *err set when a
 * string is not UTF-8 or an embedded JSON text (spec, rootfs, process,
 * resources: written by the caller's own writer) is not one JSON value.
 * exec_id NULL leaves the key out: the request is about the container's init.
 */
char *kv_req_version(struct kv_err **err) KV_WUR;
/* start, wait, pause, resume, stats, state, close_stdin: {container, exec_id?} */
char *kv_req_container(const char *container, const char *exec_id, struct kv_err **err) KV_WUR;
/* rootfs_json NULL: no "rootfs" key. */
char *kv_req_create(const char *container, bool want_stdin, const char *spec_json,
		    const char *rootfs_json, struct kv_err **err) KV_WUR;
char *kv_req_exec(const char *container, const char *exec_id, bool want_stdin,
		  const char *process_json, struct kv_err **err) KV_WUR;
/* all NULL: no "all" key (the agent reads that as false). */
char *kv_req_kill(const char *container, const char *exec_id, int signal, const bool *all,
		  struct kv_err **err) KV_WUR;
/* force false: no "force" key. */
char *kv_req_delete(const char *container, bool force, struct kv_err **err) KV_WUR;
char *kv_req_update(const char *container, const char *resources_json, struct kv_err **err) KV_WUR;
char *kv_req_resize(const char *container, const char *exec_id, unsigned rows, unsigned cols,
		    struct kv_err **err) KV_WUR;
char *kv_req_set_hostname(const char *hostname, struct kv_err **err) KV_WUR;
char *kv_req_set_time(long long sec, long nsec, struct kv_err **err) KV_WUR;
char *kv_req_add_entropy(const char *data_base64, int credit_bits, struct kv_err **err) KV_WUR;
char *kv_req_mount_shared(const char *tag, const char *type, struct kv_err **err) KV_WUR;
/* net: shim/net.c writes its params (ifaces, routes) with the same writer. */

/* ------------------------------------------------------------- framing */

/*
 * An incremental frame decoder for non-blocking readers: feed it whatever
 * bytes arrived; it hands out one complete frame at a time. A length of 0 or
 * above KV_AGENT_FRAME_MAX is reported as an error once, after the payload
 * has been skipped, so the stream stays in sync and the connection survives.
 */
struct kv_frame_reader {
	uint8_t hdr[KV_AGENT_FRAME_HDR];
	size_t hdr_got;
	uint32_t want; /* payload length of the current frame */
	uint32_t got;  /* payload bytes received so far */
	bool discard;  /* skipping an oversized payload */
	char *buf;     /* want + 1 bytes (NUL-terminated when complete) */
};

enum kv_frame_status {
	KV_FRAME_MORE = 0,  /* all input consumed, no complete frame */
	KV_FRAME_READY = 1, /* *frame holds one frame (caller frees) */
	KV_FRAME_BAD = 2,   /* one bad frame skipped; *err says why */
};

void kv_frame_reader_init(struct kv_frame_reader *r);
void kv_frame_reader_reset(struct kv_frame_reader *r);
/*
 * Consume bytes from data[0..len). Stops after one frame (ready or bad);
 * *used says how much input was consumed, so call again with the rest.
 */
enum kv_frame_status kv_frame_feed(struct kv_frame_reader *r, const void *data, size_t len,
				   size_t *used, char **frame, size_t *frame_len,
				   struct kv_err **err) KV_WUR;
/* True while a frame is partly received (EOF now means a truncated frame). */
bool kv_frame_reader_partial(const struct kv_frame_reader *r);

/* Write the 4-byte header of a frame of `len` bytes; EMSGSIZE if too big. */
int kv_frame_header(uint8_t hdr[KV_AGENT_FRAME_HDR], size_t len, struct kv_err **err) KV_WUR;

/* Blocking helpers for host programs (the client, tests). */
int kv_frame_write(int fd, const char *payload, size_t len, struct kv_err **err) KV_WUR;
/* Returns 1 with a frame, 0 on clean EOF between frames, negative on error. */
int kv_frame_read(int fd, char **payload, size_t *len, struct kv_err **err) KV_WUR;

/* ------------------------------------------------------------- messages */

struct yajl_val_s;

enum kv_msg_kind { KV_MSG_REQUEST, KV_MSG_RESPONSE, KV_MSG_EVENT };

/* A decoded frame. Pointers borrow from `tree`, which the message owns. */
struct kv_msg {
	enum kv_msg_kind kind;
	struct yajl_val_s *tree;
	uint64_t id;		   /* requests and responses */
	bool id_null;		   /* an error answer to an unattributable frame */
	const char *op;		   /* requests */
	struct yajl_val_s *params; /* requests: an object, or NULL */
	struct yajl_val_s *result; /* responses: the result, or NULL */
	int err_code;		   /* responses: errno value of error.code */
	const char *err_message;   /* responses: error.message */
	const char *event;	   /* events: the event name */
};

/*
 * Decode one frame's payload. On failure *bad_id is set when the frame had a
 * usable id (so the error can be answered to it), else left at -1.
 */
int kv_msg_decode(const char *payload, size_t len, struct kv_msg *msg, int64_t *bad_id,
		  struct kv_err **err) KV_WUR;
void kv_msg_free(struct kv_msg *msg);
static inline void kv_msg_freep(struct kv_msg *m)
{
	kv_msg_free(m);
}
#define cleanup_msg __attribute__((cleanup(kv_msg_freep)))

/*
 * Building frames. kv_msg_begin_* open the object and write the fixed keys;
 * the caller writes the value of "result"/"params" (or the event's fields)
 * and calls kv_msg_end(), which closes the object and checks the size.
 */
struct kv_json *kv_msg_begin_request(uint64_t id, const char *op);
struct kv_json *kv_msg_begin_result(uint64_t id);
struct kv_json *kv_msg_begin_event(const char *event);
int kv_msg_end(struct kv_json *j, const char **out, size_t *len, struct kv_err **err) KV_WUR;
/* A whole error response; id < 0 writes "id": null. Returns a malloc'd frame
 * payload (never fails: a message too long is truncated). */
char *kv_msg_error(int64_t id, int code, const char *message, size_t *len);

/* Reading fields of a message: kv_jget(), kv_jstr(), kv_jint(), kv_jbool()
 * (lib/kv.h). */

/* ----------------------------------------------------------- the client */

/*
 * A host-side client: connect, send requests, await the response with the
 * matching id while queuing events that arrive meanwhile.
 */
struct kv_agent_client;

/* "unix:PATH" (the agent's --listen), or "hvsock:PATH" (a VMM's hybrid
 * vsock socket; the client sends "CONNECT <port>\n" and expects "OK"). */
struct kv_agent_client *kv_agent_client_connect(const char *addr, struct kv_err **err) KV_WUR;
/* The same, giving up with ECANCELED when watch_fd hangs up (POLLRDHUP)
 * while the handshake waits (a VMM holds a CONNECT until its guest boots). */
struct kv_agent_client *kv_agent_client_connect_watch(const char *addr, int watch_fd,
						      struct kv_err **err) KV_WUR;
void kv_agent_client_free(struct kv_agent_client *c);
static inline void kv_agent_client_freep(struct kv_agent_client **c)
{
	kv_agent_client_free(*c);
}
#define cleanup_agent_client __attribute__((cleanup(kv_agent_client_freep)))
int kv_agent_client_fd(const struct kv_agent_client *c);
/* Milliseconds to wait for a response (0: forever, the default). */
void kv_agent_client_set_timeout(struct kv_agent_client *c, int timeout_ms);

/*
 * Send {"id", "op", "params": params_json} (params_json: an object's text or
 * NULL) and wait for its response. On success *resp holds the response
 * (result in resp->result). An error response returns a negative errno with
 * *err carrying the agent's message.
 */
int kv_agent_client_call(struct kv_agent_client *c, const char *op, const char *params_json,
			 struct kv_msg *resp, struct kv_err **err) KV_WUR;
/* Send a raw, already framed or unframed payload (tests). */
int kv_agent_client_send_raw(struct kv_agent_client *c, const void *buf, size_t len,
			     struct kv_err **err) KV_WUR;
/* Read the next frame of any kind (queued events first). 0 on EOF. */
int kv_agent_client_next(struct kv_agent_client *c, struct kv_msg *msg, struct kv_err **err) KV_WUR;
/* Whether events read while waiting for a response are queued: the fd
 * does not poll readable for them, so check this before polling it. */
bool kv_agent_client_pending(const struct kv_agent_client *c);
/* Wait for the next event (queued first). 0 on EOF. */
int kv_agent_client_next_event(struct kv_agent_client *c, struct kv_msg *ev,
			       struct kv_err **err) KV_WUR;
/* The version handshake: sends ours, checks the agent's. */
int kv_agent_client_hello(struct kv_agent_client *c, struct kv_err **err) KV_WUR;

/*
 * Open one stdio stream: connect to the agent's data port (for "unix:PATH"
 * the socket PATH_1025, for "hvsock:PATH" port KV_AGENT_DATA_PORT), send the
 * token and check the "OK" line. Returns the connected fd.
 */
int kv_agent_stream_open(const char *addr, const char *token, struct kv_err **err) KV_WUR;

/* Connect to `port` at addr (the unix:/hvsock: forms above). */
int kv_agent_connect_port(const char *addr, unsigned port, struct kv_err **err) KV_WUR;

#endif
