/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-shim's private structures, shared by the files of shim/. */
#ifndef KV_SHIM_INTERNAL_H
#define KV_SHIM_INTERNAL_H

#include "agent/protocol.h"
#include "shim/shim.h"

#include <poll.h>
#include <stdbool.h>
#include <sys/types.h>

/* The request kvrun sends over the sync socket (see shim.h). */
struct shim_req {
	char *op; /* "create" or "exec" */
	char *sandbox_dir;
	bool owner;
	char **vmm_argv; /* NULL-terminated; owner only */
	char *container; /* the agent's name for it */
	char *exec_id;	 /* exec only */
	char *body;	 /* JSON text: spec or process */
	char *rootfs;	 /* JSON text, or NULL */
	bool terminal;
	char *console_socket;
	long long boot_timeout_ms;
	bool set_time;
	char **shares; /* NULL-terminated tags to mount_shared first, or NULL */
	/* Templates (shim/clone.c). */
	bool clone;	      /* vmm_argv restores a template: give the clone its identity */
	char **vmm_argv_cold; /* owner: the cold boot to fall back to, or NULL */
	char *hostname;	      /* owner: the VM's hostname, or NULL */
	bool vmm_own_netns;   /* owner: the VMM in a network namespace of its own */
	/* A cold boot's template to leave behind (shim/tmpl.c), or NULL. */
	char *tmpl_tmp, *tmpl_final, *tmpl_info;
};

void shim_req_free(struct shim_req *r);
int shim_req_parse(const char *text, struct shim_req *r, struct kv_err **err) KV_WUR;

/* One direction of stdio: bytes from `from` to `to` through a buffer. */
struct relay {
	const char *name;
	int from, to;	      /* -1 once closed */
	bool from_ours;	      /* a socket of ours (non-blocking) */
	bool to_ours;	      /* ditto: else inherited, written only after POLLOUT */
	bool close_to_at_eof; /* the stdin stream: EOF reaches the guest by shutdown */
	int release_fd;	      /* an inherited fd (1, 2) to let go of at EOF, or -1 */
	bool eof, done;
	size_t off, len;
	char buf[65536];
};

#define SHIM_RELAYS 5

struct shim {
	struct shim_req req;
	char *addr; /* agent address */
	struct kv_agent_client *agent;
	int sync_fd;
	pid_t vmm_pid;
	pid_t guest_pid;
	int sigfd;
	/* Streams: stdin, stdout, stderr, or pty (fds of ours). */
	int s_in, s_out, s_err, s_pty;
	int tty_slave;	  /* console-socket mode: our end of the host pty */
	bool tty_restore; /* fd 0 was put in raw mode */
	struct relay *relays[SHIM_RELAYS];
	size_t nrelays;
	bool exited; /* the exit event arrived */
	int exit_code, exit_signal;
	uint64_t exit_at_ms;
	int net_index; /* the interface carried into the VM (net.c), 0 if none */
	/* /dev/kvm and /dev/net/tun as kvrun opened them before we joined the
	 * container's cgroup (runtime/spawn.c), or -1: open them ourselves. */
	int kvm_fd, tun_fd;
	int ptmx_fd; /* a pty master kvrun opened for the console socket, or -1 */
};

/* vm.c: the VMM (owner only) and the agent connection. */
int shim_vm_start(struct shim *s, struct kv_err **err) KV_WUR;
int shim_agent_connect(struct shim *s, struct kv_err **err) KV_WUR;
void shim_vm_stop(struct shim *s);
/* A VMM child that exited: reaps it; true if it was the VMM. */
bool shim_vm_reap(struct shim *s);

/* clone.c: a clone's identity (entropy, hostname); the cold boot if the restore failed. */
int shim_clone_identity(struct shim *s, struct kv_err **err) KV_WUR;
bool shim_clone_fallback(struct shim *s, const struct kv_err *why);

/* tmpl.c: snapshot a cold-booted VM at agent-ready as a template (the
 * agent connection is closed; the caller connects again). */
void shim_template_out(struct shim *s);

/* stdio.c */
/* Put /dev/null on an inherited stdio fd, so that we no longer hold what the
 * caller gave us there: a reader of it sees EOF once the others close it. */
void shim_stdio_release(int fd);
/* That /dev/null, opened once (before the seccomp filter, which allows no open). */
int shim_stdio_null(void);
/* The /dev/null kvrun opened for us (--null-fd): shim_stdio_null() returns it. */
void shim_stdio_null_set(int fd);
int shim_streams_open(struct shim *s, struct yajl_val_s *result, struct kv_err **err) KV_WUR;
void shim_relays_setup(struct shim *s);
/* Add pollfds for the relays; returns how many were added. */
size_t shim_relays_poll(struct shim *s, struct pollfd *pfd, size_t max, struct relay **owner,
			short *dir);
void shim_relay_step(struct relay *r, bool can_read, bool can_write);
bool shim_outputs_done(const struct shim *s);
void shim_relays_free(struct shim *s);

/* net.c: the network namespace's interface carried into the VM (kvrun
 * asks, after the create hooks); its tc ingress qdisc removed at exit. */
int shim_net_wire(struct shim *s, struct kv_err **err) KV_WUR;
void shim_net_release(struct shim *s);

/* tty.c */
int shim_console_setup(struct shim *s, struct kv_err **err) KV_WUR;
void shim_tty_resize(struct shim *s);
void shim_tty_restore(struct shim *s);

/* loop.c */
int shim_run(struct shim *s);

/* confine.c: after kvrun's commit, only CAP_NET_ADMIN (when the VM has the
 * namespace's interface) and CAP_KILL (when it owns the VM), no_new_privs,
 * and a seccomp allow-list. */
int shim_confine(const struct shim *s, struct kv_err **err) KV_WUR;
/* The allow-list alone (net: the ingress qdisc's removal too); kills on a miss. */
int shim_seccomp_load(bool net, struct kv_err **err) KV_WUR;

#endif
