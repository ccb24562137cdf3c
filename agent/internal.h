/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's private structures, shared by the files of agent/. Other
 * directories use agent/agent.h (the program) or agent/protocol.h.
 */
#ifndef KV_AGENT_INTERNAL_H
#define KV_AGENT_INTERNAL_H

#include "agent/agent.h"
#include "agent/protocol.h"
#include "agent/spec.h"

#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct agent;
struct yajl_val_s;

/* One file descriptor in the event loop; the callback finds its owner with
 * container_of. */
struct ev_src {
	int fd;
	uint32_t events; /* current epoll interest */
	bool registered;
	void (*cb)(struct agent *a, struct ev_src *src, uint32_t events);
};

struct epoll_event;

/* ev.c: the epoll leaf; it calls nothing else of the agent. */
int ev_init(struct agent *a, struct kv_err **err) KV_WUR;
int ev_add(struct agent *a, struct ev_src *s, uint32_t events);
void ev_mod(struct agent *a, struct ev_src *s, uint32_t events);
/* Deregister; the fd stays open (it is handed on). */
void ev_del(struct agent *a, struct ev_src *s);
/* Deregister and close. */
void ev_close(struct agent *a, struct ev_src *s);
/* Up to max ready events, waiting up to timeout_ms (-1: forever); -errno. */
int ev_wait(struct agent *a, struct epoll_event *evs, int max, int timeout_ms);
/*
 * Wait up to timeout_ms and run the callbacks of one batch of events, except
 * for sources closed earlier in the batch. What a callback closes is freed by
 * the caller afterwards (conns_gc, agent_gc). Returns the events, or -errno.
 */
int ev_poll(struct agent *a, int timeout_ms);

/* ---------------------------------------------------- control connections */

struct conn {
	struct ev_src src;
	uint64_t serial; /* stable name for deferred answers */
	struct kv_frame_reader rd;
	char *out;
	size_t out_len, out_off, out_cap;
	bool dead;
	struct conn *next;
};

/* A deferred answer: the request waits for a process to reach a state. */
struct waiter {
	uint64_t conn_serial;
	uint64_t id;
	struct waiter *next;
};

/*
 * reply.c: the sending side, the bottom of the agent (it calls only ev.c).
 * A host that stops reading gets this much queued, then is dropped.
 */
#define CONN_OUT_MAX (64u << 20)

/* A control connection on fd (taken), watched for EPOLLIN with cb; NULL
 * when epoll refuses it (fd closed). */
struct conn *conn_new(struct agent *a, int fd,
		      void (*cb)(struct agent *a, struct ev_src *src, uint32_t events));
/* Queue a frame and send what the socket takes; a connection whose queue
 * would pass CONN_OUT_MAX, or whose send fails, is marked dead. */
void conn_send(struct agent *a, struct conn *c, const char *frame, size_t len);
/* Send what is queued (on EPOLLOUT). */
void conn_flush(struct agent *a, struct conn *c);
struct conn *conn_find(struct agent *a, uint64_t serial);
/* Free the dead connections (after a batch of events). */
void conns_gc(struct agent *a);
/* By serial: nothing is sent when that connection is gone. */
void agent_reply_error(struct agent *a, uint64_t serial, int64_t id, const struct kv_err *err);
void agent_reply_json(struct agent *a, uint64_t serial, struct kv_json *j);
/* To every live connection (events). */
void agent_broadcast(struct agent *a, struct kv_json *j);

/* --------------------------------------------------------------- stdio */

/* One relay's buffer: back-pressure beyond it. */
#define STDIO_RELAY_BUF (64u << 10)
/* Data connections that have not named their stream yet; more are refused. */
#define STDIO_PENDING_MAX 256

enum stream_kind { STREAM_STDIN, STREAM_STDOUT, STREAM_STDERR, STREAM_PTY, STREAM_NKINDS };

/* Bytes copied one way, with a bounded buffer: back-pressure, not growth. */
struct relay {
	char *buf;
	size_t off, len;
	bool eof;     /* the source ended; finish writing and close */
	bool enabled; /* this direction exists */
};

struct stream {
	enum stream_kind kind;
	char token[KV_AGENT_TOKEN_LEN + 1];
	struct ev_src end;  /* agent's end: pipe, or the pty master */
	struct ev_src conn; /* the host's data connection, once attached */
	bool attached;
	struct relay out; /* end -> conn */
	struct relay in;  /* conn -> end */
	struct proc *proc;
	struct stream *next; /* agent-wide list, for token lookup */
};

/* A data connection whose token line has not arrived yet. */
struct pending_data {
	struct ev_src src;
	char line[KV_AGENT_TOKEN_LEN + 1];
	size_t got;
	struct pending_data *next;
};

int stdio_prepare(struct agent *a, struct proc *p, bool want_stdin, bool terminal, int child_fds[3],
		  struct kv_err **err) KV_WUR;
void stdio_set_pty(struct agent *a, struct proc *p, int master);
void stdio_close(struct agent *a, struct proc *p);
void stdio_free(struct agent *a, struct proc *p);
int stdio_resize(struct proc *p, unsigned rows, unsigned cols, struct kv_err **err) KV_WUR;
void stdio_close_stdin(struct agent *a, struct proc *p);
void stdio_data_accept(struct agent *a, int fd);
void stdio_result(struct proc *p, struct kv_json *j);

/* ----------------------------------------------------------- processes */

enum proc_state { PROC_SETUP, PROC_CREATED, PROC_STARTING, PROC_RUNNING, PROC_EXITED };

struct proc {
	struct container *ctr;
	char *exec_id; /* NULL for the container's init */
	pid_t pid;
	int pidfd;
	enum proc_state state;
	int status;	    /* wait status once exited */
	struct ev_src sync; /* the child's setup channel */
	struct stream *streams[STREAM_NKINDS];
	struct waiter *waiters; /* "wait" requests */
	struct waiter *pending; /* the create/start/exec request in flight */
	const char *pending_op;
	struct kv_process *spec; /* exec processes own theirs */
	struct proc *next;	 /* in the container */
};

/* --------------------------------------------------------- containers */

struct container {
	char *id;
	struct kv_spec *spec;
	struct proc *init;
	struct proc *procs; /* init and execs */
	char *cgroup;	    /* absolute path, or NULL without cgroups */
	int cgroup_fd;
	struct ev_src oom; /* memory.events, for OOM notifications */
	uint64_t oom_kills;
	bool paused;
	void *seccomp; /* compiled filter (scmp_filter_ctx) */
	struct container *next;
};

/* ---------------------------------------------------------------- agent */

/*
 * Exit statuses of children reaped before we knew their pid (an exec's
 * grandchild can exit before its intermediate's report is read): a ring of
 * the last AGENT_ORPHAN_MAX.
 */
#define AGENT_ORPHAN_MAX 64
struct orphan {
	pid_t pid;
	int status;
};

struct agent {
	struct agent_config cfg;
	int epfd;
	struct ev_src sigfd;
	struct ev_src ctl_listen, data_listen;
	struct conn *conns;
	uint64_t next_serial;
	struct stream *streams;
	struct pending_data *pending_data;
	struct container *containers;
	int devnull;
	char *cgroup_root; /* cgroup2 mount used for containers, or NULL */
	bool quit;
	bool had_container;
	/* Closed but not yet freed: the current epoll batch may still name them. */
	struct container *dead_containers;
	struct proc *dead_procs;
	struct orphan orphans[AGENT_ORPHAN_MAX];
	unsigned orphan_next;
};

/* ops.c */
void agent_dispatch(struct agent *a, struct conn *c, struct kv_msg *m);

/* container.c */
/* A container that holds nothing yet (not linked into the agent). */
struct container *container_new(const char *id);
/* A process of c in PROC_SETUP (not linked into c); exec_id NULL: the init.
 * `op` names the request that made it, in its errors. */
struct proc *proc_new(struct container *c, const char *exec_id, const char *op);
/* Watch p's setup channel (fd taken): SYNC_* messages, then EOF at exec. */
void proc_watch_sync(struct agent *a, struct proc *p, int fd);
struct container *container_find(struct agent *a, const char *id);
struct proc *proc_find(struct container *c, const char *exec_id);
int container_create(struct agent *a, const char *id, struct yajl_val_s *params, uint64_t serial,
		     uint64_t req_id, struct kv_err **err) KV_WUR;
int container_start(struct agent *a, struct container *c, uint64_t serial, uint64_t req_id,
		    struct kv_err **err) KV_WUR;
int container_exec(struct agent *a, struct container *c, struct yajl_val_s *params, uint64_t serial,
		   uint64_t req_id, struct kv_err **err) KV_WUR;
int container_wait(struct proc *p, uint64_t serial, uint64_t req_id);
int container_delete(struct agent *a, struct container *c, bool force, struct kv_err **err) KV_WUR;
int container_signal(struct agent *a, struct container *c, struct proc *p, int sig, bool all,
		     struct kv_err **err) KV_WUR;
void container_reap(struct agent *a);
/* Free what was closed during the last batch of events. */
void agent_gc(struct agent *a);
void proc_result(struct proc *p, struct kv_json *j);
const char *proc_state_name(const struct container *c, const struct proc *p);
void proc_exit_json(const struct proc *p, struct kv_json *j);

/* child.c: runs in the cloned process; never returns. */
struct child_args {
	struct agent *a;
	struct container *ctr;
	struct kv_process *proc;
	bool is_init;
	int sync_fd;
	int stdio[3];
	int join_pidfd; /* exec: the init's pidfd to setns into, else -1 */
};
__attribute__((noreturn)) void child_main(struct child_args *ca);

/* Messages on the setup channel (SOCK_SEQPACKET). */
enum sync_type { SYNC_READY = 1, SYNC_ERROR = 2, SYNC_PID = 3, SYNC_START = 4 };
struct sync_msg {
	uint32_t type;
	int32_t errnum;
	int32_t pid;
	char text[500];
};

/*
 * env.c (child side): env, or a copy of it with HOME set from the passwd
 * file (uid's entry; "/" without one) when it has none or an empty one.
 * The copy shares env's strings and is never freed: the child execs.
 */
char **agent_env_with_home(char **env, uid_t uid, const char *passwd);

/* mounts.c (child side) */
int mounts_setup_rootfs(const struct kv_spec *s, const char *state_dir, struct kv_err **err);
int mounts_finish_rootfs(const struct kv_spec *s, struct kv_err **err);

/* caps.c (child side) */
int caps_drop_bounding(const struct kv_process *p, struct kv_err **err);
int caps_apply(const struct kv_process *p, struct kv_err **err);
void caps_init(void);

/* seccomp.c */
int agent_seccomp_compile(const struct kv_seccomp *s, bool no_new_privs, void **out,
			  struct kv_err **err) KV_WUR;
void agent_seccomp_release(void *filter);
int agent_seccomp_load(void *filter);
/* The libseccomp context of a filter compiled in the agent (NULL for a
 * host-compiled program): tests/bench/seccomp-cost exports it. */
void *agent_seccomp_ctx(void *filter);

/* cgroup.c */
char *cgroup_detect_root(const char *configured);
int cgroup_create(struct agent *a, struct container *c, struct kv_err **err) KV_WUR;
void cgroup_destroy(struct agent *a, struct container *c);
int cgroup_update(struct agent *a, struct container *c, const struct kv_resources *r,
		  struct kv_err **err) KV_WUR;
int cgroup_freeze(struct container *c, bool frozen, struct kv_err **err) KV_WUR;
int cgroup_kill_all(struct container *c, int sig, struct kv_err **err) KV_WUR;
void cgroup_stats(struct container *c, struct kv_json *j);
void cgroup_oom_cb(struct agent *a, struct ev_src *src, uint32_t events);
/* linux.resources into the cgroup directory open as dirfd. */
int cgroup_write_limits(int dirfd, const struct kv_resources *r, struct kv_err **err) KV_WUR;

/* pid1.c */
int pid1_mount_basics(struct kv_err **err) KV_WUR;
int pid1_loopback_up(struct kv_err **err) KV_WUR;
int pid1_set_time(long long sec, long long nsec, struct kv_err **err) KV_WUR;
int pid1_add_entropy(const char *b64, long long credit_bits, struct kv_err **err) KV_WUR;
void pid1_poweroff(struct agent *a);
void pid1_meminfo(struct kv_json *j);

/*
 * net.c: the "net" op. The request is parsed and validated whole into a
 * net_config before anything changes; net_config_apply() then configures the
 * guest NIC over rtnetlink (a writer of our own: the agent is static and
 * Debian's libmnl-dev has no static library).
 */
#define NET_ADDRS_MAX  32
#define NET_ROUTES_MAX 64
#define NET_MAC_LEN    6

struct net_addr {
	struct in_addr addr;
	uint8_t plen;
};

struct net_route {
	struct in_addr dst, gw, src;
	uint8_t dst_len;
	bool has_gw, has_src;
};

struct net_config {
	char name[IFNAMSIZ];
	uint8_t mac[NET_MAC_LEN];
	uint32_t mtu;
	size_t n_addrs, n_routes;
	struct net_addr addrs[NET_ADDRS_MAX];
	struct net_route routes[NET_ROUTES_MAX];
};

int net_config_parse(struct yajl_val_s *params, struct net_config *cfg, struct kv_err **err) KV_WUR;
int net_config_apply(const struct net_config *cfg, struct kv_err **err) KV_WUR;

/* One rtnetlink request, bounded (ours are a few dozen bytes). */
#define NL_MSG_MAX 512
struct nl_msg {
	union {
		struct nlmsghdr hdr;
		char buf[NL_MSG_MAX];
	};
	bool overflow; /* an append did not fit: the message is not sent */
};

void nl_msg_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *body, size_t len);
void nl_msg_put(struct nl_msg *m, uint16_t type, const void *data, size_t len);
/* RTM_SETLINK for ifindex changing the flags in `change` to `flags`. */
void net_msg_link(struct nl_msg *m, int ifindex, unsigned change, unsigned flags);
void net_msg_addr(struct nl_msg *m, int ifindex, const struct net_addr *a);
void net_msg_route(struct nl_msg *m, int ifindex, const struct net_route *r);

/* Random hex token for streams. */
void agent_token(char out[KV_AGENT_TOKEN_LEN + 1]);

#endif
