/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runtime/ — the runc-compatible `kvrun` command line: global flags, one
 * thin file per command (cmd_<name>.c), and the library they share:
 * container ids and state, the create pipeline, OCI hooks, host checks.
 *
 * The microVM itself is behind one seam, the runtime_backend_* and
 * runtime_sandbox_start() functions (sandbox.c, backend_ops.c, with the
 * pieces in backend.h): kvrun-shim per guest process, kvrun-vmm per VM.
 */
#ifndef KV_RUNTIME_H
#define KV_RUNTIME_H

#include "lib/kv.h"
#include "oci/oci.h"
#include "vmm/vmm.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#define KVRUN_VERSION	   "0.1.0-dev"
#define KVRUN_DEFAULT_ROOT "/run/kvrun"

/* ------------------------------------------------------------------ CLI */

struct kvrun_globals {
	const char *root;     /* absolute and clean */
	const char *log_path; /* NULL: stderr */
	enum kv_log_format log_format;
	bool debug;
	bool systemd_cgroup;  /* accepted: cgroups live in the guest */
	const char *rootless; /* accepted: "true", "false" or "auto" */
};

struct kvrun_cmd {
	const char *name;
	const char *usage;   /* "[command options] <container-id>" */
	const char *summary; /* one line */
	int (*run)(struct kvrun_globals *g, int argc, char **argv);
};

/* The whole CLI (main.c calls it); returns the exit status. */
int kvrun_main(int argc, char **argv);

/*
 * Helpers for commands. Each returns the exit status to return from the
 * command: 1, after logging the error as runc does (to the log, and to
 * stderr too when the log goes elsewhere).
 */
int cli_fail(struct kv_err *err);
/* The same with another exit status (exec's 255, as runc's fatalWithCode). */
int cli_fail_status(struct kv_err *err, int status);
int cli_failf(const char *fmt, ...) KV_PRINTF(1, 2);
/* Bad usage: `kvrun: "create" requires exactly 1 argument(s)`. */
int cli_usage_error(const char *cmd, const char *fmt, ...) KV_PRINTF(2, 3);
/* Argument count checks in runc's words; nonzero when the count is wrong. */
int cli_exact_args(const char *cmd, int have, int want);
int cli_min_args(const char *cmd, int have, int want);
void cli_print_cmd_help(const char *cmd);
/* For commands whose only argument is the id (start, pause, resume, state):
 * parses -h and the argument count. -1 to go on (with *id set), else the
 * exit status. */
int cli_id_only(const char *cmd, int argc, char **argv, const char **id);
/* The same for commands that take no argument and no option (features). */
int cli_no_args(const char *cmd, int argc, char **argv);

/* Hand a caught error on to the caller's err (the first error wins). */
static inline int err_pass(struct kv_err **err, struct kv_err *e)
{
	int r = e && e->errnum > 0 ? -e->errnum : -1;
	if (err && !*err)
		*err = e;
	else
		kv_err_free(e);
	return r;
}

/* The commands (cmd_<name>.c). */
#define KVRUN_CMD(n) int cmd_##n(struct kvrun_globals *g, int argc, char **argv)
KVRUN_CMD(check);
KVRUN_CMD(create);
KVRUN_CMD(delete);
KVRUN_CMD(events);
KVRUN_CMD(exec);
KVRUN_CMD(features);
/* Weak: kvrun links cmd_image_exec.c (runs kvrun-image), kvrun-image
 * cmd_image.c; the unit tests, which link libruntime.a, neither. */
__attribute__((weak)) KVRUN_CMD(image);
KVRUN_CMD(kill);
KVRUN_CMD(list);
KVRUN_CMD(pause);
KVRUN_CMD(ps);
KVRUN_CMD(resume);
KVRUN_CMD(run);
KVRUN_CMD(spec);
KVRUN_CMD(start);
KVRUN_CMD(state);
KVRUN_CMD(template);
KVRUN_CMD(update);
KVRUN_CMD(version);

/* ------------------------------------------------------------ containers */

/* runc's rules: ^[\w+-\.]+$ as Go reads it (so , is allowed too), not "."
 * or "..", at most KVRUN_ID_MAX bytes (a directory name). */
#define KVRUN_ID_MAX 255
int container_id_validate(const char *id, struct kv_err **err) KV_WUR;

struct container {
	char *id;
	char *dir; /* <root>/<id> */
	struct oci_state *st;
	enum oci_status status; /* live: "stopped" once the shim is gone */
	pid_t pid;		/* live: 0 when stopped */
	int lock_fd;		/* -1 unless container_lock() */
};

void container_free(struct container *c);
static inline void container_freep(struct container **c)
{
	container_free(*c);
}
#define cleanup_container __attribute__((cleanup(container_freep)))

char *container_dir(const char *root, const char *id);
/*
 * Load <root>/<id>/state.json and compute the live status. A missing one is
 * `container "<id>" does not exist` with errnum ENOENT.
 */
int container_load(const char *root, const char *id, struct container **out,
		   struct kv_err **err) KV_WUR;
void container_refresh(struct container *c);
/* Persist c->st (the recorded status and pid) atomically. */
int container_save(struct container *c, struct kv_err **err) KV_WUR;
/* Exclusive flock on the state directory, so commands on one container
 * do not interleave; waits up to a few seconds. */
int container_lock(struct container *c, struct kv_err **err) KV_WUR;
/* The config.json snapshot taken at create time. */
int container_config(const struct container *c, struct oci_config **out,
		     struct kv_err **err) KV_WUR;
/* Remove a state directory and what is in it (no symlinks followed), and
 * the host cgroups it recorded. */
int container_remove_dir(const char *dir, struct kv_err **err) KV_WUR;
/* The runtime-spec state JSON a hook reads on stdin. */
char *container_spec_state_json(const struct container *c);

/* Process liveness that survives pid reuse (kv_pid_start_time). */
bool pid_alive(pid_t pid, uint64_t start_time);

/* ------------------------------------------------------------- commands */

struct create_opts {
	const char *bundle; /* NULL: the current directory */
	const char *pid_file;
	const char *console_socket;
	int preserve_fds;
	bool no_pivot, no_new_keyring;
	bool detach; /* create, run -d */
	bool keep;   /* run --keep: the state stays after the container exits */
};

/*
 * create's and run's shared flags (--bundle/-b, --console-socket, --pid-file,
 * --no-pivot, --no-new-keyring, --preserve-fds; -d/--detach, --keep and
 * --no-subreaper for run). Returns -1 to go on, else an exit status;
 * *first is the index of the first argument.
 */
int cli_parse_create_opts(const char *cmd, int argc, char **argv, bool is_run,
			  struct create_opts *o, int *first);

int runtime_create(const struct kvrun_globals *g, const char *id, const struct create_opts *o,
		   struct kv_err **err) KV_WUR;
int runtime_start(const struct kvrun_globals *g, const char *id, struct kv_err **err) KV_WUR;
int runtime_kill(const struct kvrun_globals *g, const char *id, int sig, bool all,
		 struct kv_err **err) KV_WUR;
int runtime_delete(const struct kvrun_globals *g, const char *id, bool force,
		   struct kv_err **err) KV_WUR;
int runtime_pause(const struct kvrun_globals *g, const char *id, bool pause,
		  struct kv_err **err) KV_WUR;

/* "KILL", "SIGKILL", "kill", "9", "0", "RTMIN+3" -> signal number; -1 if unknown. */
int signal_parse(const char *s);

/* ------------------------------------------------------------------ hooks */

/*
 * Run one hook: path with args and env (exactly as given; kvrun's own
 * environment when the hook has no env, as runc), the state JSON on stdin,
 * stdout and stderr captured for the error message, killed (its whole
 * process group) after `timeout` seconds.
 */
int runtime_hook_run(const struct oci_hook *h, const char *state_json, struct kv_err **err) KV_WUR;
/*
 * Run the hooks of one kind in order. prestart, createRuntime,
 * createContainer and startContainer stop at the first failure and return
 * it; poststart and poststop log a warning and carry on (runtime-spec).
 */
int runtime_hooks_run(const struct oci_hooks *hooks, enum oci_hook_kind kind,
		      const char *state_json, struct kv_err **err) KV_WUR;

/* ------------------------------------------------- the microVM backend */

struct runtime_sandbox_req {
	const struct kvrun_globals *g;
	const char *id;
	const char *state_dir; /* <root>/<id>: shim.sock, vmm.sock, vsock.sock live here */
	const struct oci_config *cfg;
	const struct oci_state *st; /* bundle, rootfs, sandbox_id, annotations */
	const char *console_socket;
	int preserve_fds;
	bool no_pivot, no_new_keyring;
	/*
	 * The backend calls this at the runtime-spec's points: prestart and
	 * createRuntime once the VM and the container's namespaces exist,
	 * createContainer before the container's pivot. pid is the shim's.
	 */
	int (*run_hooks)(const struct runtime_sandbox_req *req, enum oci_hook_kind kind, pid_t pid,
			 struct kv_err **err);
};

struct runtime_sandbox_result {
	pid_t pid;	    /* kvrun-shim of the init process */
	uint64_t pid_start; /* its /proc starttime */
};

/*
 * Boot (or join) the sandbox VM and create the container in it, stopped
 * before the user process runs. On failure nothing may be left running;
 * the caller removes the state directory.
 */
int runtime_sandbox_start(const struct runtime_sandbox_req *req, struct runtime_sandbox_result *res,
			  struct kv_err **err) KV_WUR;
/* Let the created container's process run (startContainer hooks in the guest). */
int runtime_backend_start(struct container *c, struct kv_err **err) KV_WUR;
/* Deliver a signal: to the shim, which forwards it into the guest. */
int runtime_backend_kill(struct container *c, int sig, bool all, struct kv_err **err) KV_WUR;
/* Stop everything of a container (the VM too, for a sandbox's last one). */
int runtime_backend_destroy(struct container *c, struct kv_err **err) KV_WUR;
int runtime_backend_pause(struct container *c, bool pause, struct kv_err **err) KV_WUR;
/* Run a process in the container through a shim of its own. Returns its exit
 * status (128 + signal) once it ended, or 0 at once with o->detach. */
int runtime_backend_exec(struct container *c, const struct oci_process *p,
			 const struct create_opts *o, struct kv_err **err) KV_WUR;
/* The container's host processes (its shims, its VM's VMM), for ps. */
int runtime_backend_ps(struct container *c, pid_t **pids_out, size_t *n,
		       struct kv_err **err) KV_WUR;
int runtime_backend_update(struct container *c, const struct oci_resources *r,
			   struct kv_err **err) KV_WUR;
/* runc's `events --stats` object ({"type":"stats","id","data"}) into j. */
int runtime_backend_stats(struct container *c, struct kv_json *j, struct kv_err **err) KV_WUR;
/*
 * The guest's notifications about a container, for `events`: a connection
 * to its VM's agent, whose fd polls readable when one may have come.
 * _next reads one frame: 1 with *oom set when it told of an OOM kill in the
 * container (else *oom false: another container's or another kind), 0 when
 * the VM went away.
 */
struct backend_events;
struct backend_events *runtime_backend_events_open(struct container *c, struct kv_err **err) KV_WUR;
int runtime_backend_events_fd(const struct backend_events *ev);
bool runtime_backend_events_pending(const struct backend_events *ev);
int runtime_backend_events_next(struct backend_events *ev, bool *oom, struct kv_err **err) KV_WUR;
void runtime_backend_events_close(struct backend_events *ev);
static inline void runtime_backend_events_closep(struct backend_events **ev)
{
	if (*ev)
		runtime_backend_events_close(*ev);
}
#define cleanup_backend_events __attribute__((cleanup(runtime_backend_events_closep)))
/* Wait for the init process (run without -d); *status as runc exits with. */
int runtime_backend_wait(struct container *c, int *status, struct kv_err **err) KV_WUR;

/* --------------------------------------------------------- host checks */

enum host_check_level { HOST_CHECK_OK, HOST_CHECK_INFO, HOST_CHECK_WARN, HOST_CHECK_FAIL };
typedef void (*host_check_report_fn)(void *ctx, enum host_check_level level, const char *what,
				     const char *detail);
/*
 * /dev/kvm, KVM API version, vmx/svm, kvm_pvm; then the VMM's own probe
 * (KVM capabilities, CPUID, PVM quirks): vmm_probe is vmm_host_check
 * (vmm/vmm.h) for `kvrun check`, NULL where the checks look at a fixture
 * (it reads the host's /dev/kvm). Returns the number of failures. `prefix`
 * is prepended to /dev, /proc and /sys: "" on a host, a fixture directory
 * in tests.
 */
int runtime_host_check(const char *prefix, int (*vmm_probe)(vmm_check_report_fn report, void *ctx),
		       host_check_report_fn report, void *ctx);

/* ---------------------------------------------------------------- misc */

/* Absolute, with "." and ".." and repeated "/" removed (no symlinks read). */
char *path_clean_abs(const char *p);
/* The default config.json of `kvrun spec` (runc's shape), tab-indented. */
char *spec_default_json(bool rootless);
/* An image's process, root and annotations in that spec (kvrun image bundle):
 * terminal off, root.path "rootfs" read-write. */
struct spec_image {
	char **args, **env;
	size_t nargs, nenv;
	const char *cwd;
	uint32_t uid, gid;
	const uint32_t *gids; /* additionalGids, ngids of them (none: no key) */
	size_t ngids;
	const char *(*ann)[2]; /* key, value */
	size_t nann;
};
char *spec_image_json(const struct spec_image *im);
/* `kvrun features` JSON, 4-space indented with a trailing newline. */
char *features_json(void);

/*
 * A Go text/tabwriter-style table (minwidth 12, padding 3, as runc list):
 * add cells row by row, then print.
 */
struct table;
struct table *table_new(size_t ncols);
void table_add_row(struct table *t, const char *const *cells);
void table_print(struct table *t, FILE *f);
void table_free(struct table *t);

#endif
