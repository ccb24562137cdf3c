/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oci/ — the OCI runtime-spec config (config.json) as typed structs, its
 * validation, a serializer of the container-relevant subset for the guest
 * agent, and kvrun's own per-container state.json. This is the module's one
 * public header.
 *
 * Parsing: config.json is untrusted. It is size-limited, nesting-limited,
 * parsed with yajl_tree and validated field by field; an error names the
 * JSON path and the problem ("linux.namespaces[2].type: unknown namespace
 * \"foo\""). Unknown fields are ignored, as the runtime-spec requires.
 * JSON null counts as absent (Go's decoder, which runc uses, does the same).
 *
 * Ownership: everything hanging off a struct oci_config is owned by it and
 * freed by oci_config_free().
 */
#ifndef KV_OCI_H
#define KV_OCI_H

#include "lib/kv.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <yajl/yajl_tree.h>

/* The newest runtime-spec version kvrun writes and claims (features, spec). */
#define OCI_SPEC_VERSION     "1.1.0"
#define OCI_SPEC_VERSION_MIN "1.0.0"
/* config.json larger than this is refused: no legitimate one comes close. */
#define OCI_CONFIG_MAX_SIZE (4u << 20)
/* Deeper JSON nesting is refused before parsing (the spec needs about 8). */
#define OCI_JSON_MAX_DEPTH 64

/* ------------------------------------------------------------- config */

struct oci_strv {
	char **v; /* NULL-terminated when n > 0 */
	size_t n;
};

struct oci_kv {
	char *key, *value;
};

struct oci_map {
	struct oci_kv *v;
	size_t n;
};

struct oci_user {
	uint32_t uid, gid;
	bool has_umask;
	uint32_t umask;
	uint32_t *additional_gids;
	size_t n_additional_gids;
	char *username; /* accepted; Windows only in the spec */
};

enum oci_cap_set {
	OCI_CAP_BOUNDING,
	OCI_CAP_EFFECTIVE,
	OCI_CAP_INHERITABLE,
	OCI_CAP_PERMITTED,
	OCI_CAP_AMBIENT,
	OCI_CAP_SET_COUNT
};

struct oci_capabilities {
	bool present[OCI_CAP_SET_COUNT];
	struct oci_strv set[OCI_CAP_SET_COUNT]; /* names as given, "CAP_..." */
};

struct oci_rlimit {
	char *type;   /* "RLIMIT_NOFILE" */
	int resource; /* RLIMIT_NOFILE */
	uint64_t hard, soft;
};

struct oci_process {
	bool terminal;
	bool has_console_size;
	uint32_t console_height, console_width;
	struct oci_user user;
	struct oci_strv args;
	struct oci_strv env;
	char *cwd;
	struct oci_capabilities *capabilities; /* NULL when absent */
	struct oci_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	char *apparmor_profile; /* accepted, not applied (no AppArmor in the guest) */
	char *selinux_label;	/* accepted, not applied */
	bool has_oom_score_adj;
	int oom_score_adj;
};

struct oci_root {
	char *path;
	bool readonly;
};

struct oci_mount {
	char *destination;
	char *type;   /* may be NULL */
	char *source; /* may be NULL */
	struct oci_strv options;
};

enum oci_hook_kind {
	OCI_HOOK_PRESTART,
	OCI_HOOK_CREATE_RUNTIME,
	OCI_HOOK_CREATE_CONTAINER,
	OCI_HOOK_START_CONTAINER,
	OCI_HOOK_POSTSTART,
	OCI_HOOK_POSTSTOP,
	OCI_HOOK_KIND_COUNT
};

struct oci_hook {
	char *path;
	struct oci_strv args;
	struct oci_strv env;
	bool has_env; /* env given, [] included; absent or null: the runtime's own */
	int timeout;  /* seconds; 0 = none */
};

struct oci_hooks {
	struct oci_hook *list[OCI_HOOK_KIND_COUNT];
	size_t n[OCI_HOOK_KIND_COUNT];
};

enum oci_ns_type {
	OCI_NS_PID,
	OCI_NS_NETWORK,
	OCI_NS_MOUNT,
	OCI_NS_IPC,
	OCI_NS_UTS,
	OCI_NS_USER,
	OCI_NS_CGROUP,
	OCI_NS_TIME,
	OCI_NS_COUNT
};

struct oci_namespace {
	enum oci_ns_type type;
	char *path; /* NULL: create a new one */
};

struct oci_idmap {
	uint32_t container_id, host_id, size;
};

struct oci_device_rule {
	bool allow;
	char type; /* 'a', 'b', 'c'; 'a' when absent */
	bool has_major, has_minor;
	int64_t major, minor; /* -1 or absent: wildcard */
	char *access;	      /* as given, not empty: its r, w and m count (runc) */
};

/* Every field optional: has_* tells whether config.json set it. */
struct oci_resources {
	bool has_memory_limit, has_memory_reservation, has_memory_swap, has_memory_swappiness;
	int64_t memory_limit, memory_reservation, memory_swap;
	uint64_t memory_swappiness;
	bool has_cpu_shares, has_cpu_quota, has_cpu_period;
	uint64_t cpu_shares, cpu_period;
	int64_t cpu_quota;
	char *cpu_cpus, *cpu_mems;
	bool has_pids_limit;
	int64_t pids_limit;
	bool has_blkio_weight;
	uint16_t blkio_weight; /* blockIO is accepted; only weight is kept */
	struct oci_device_rule *devices;
	size_t n_devices;
};

enum oci_seccomp_cmp {
	OCI_SCMP_CMP_NE,
	OCI_SCMP_CMP_LT,
	OCI_SCMP_CMP_LE,
	OCI_SCMP_CMP_EQ,
	OCI_SCMP_CMP_GE,
	OCI_SCMP_CMP_GT,
	OCI_SCMP_CMP_MASKED_EQ,
};

struct oci_seccomp_arg {
	uint32_t index;
	uint64_t value, value_two;
	char *op; /* "SCMP_CMP_EQ" */
};

struct oci_seccomp_syscall {
	struct oci_strv names;
	char *action; /* "SCMP_ACT_ERRNO" */
	bool has_errno_ret;
	uint32_t errno_ret;
	struct oci_seccomp_arg *args;
	size_t n_args;
};

struct oci_seccomp {
	char *default_action;
	bool has_default_errno_ret;
	uint32_t default_errno_ret;
	struct oci_strv architectures;
	struct oci_strv flags;
	struct oci_seccomp_syscall *syscalls;
	size_t n_syscalls;
	/* Not from config.json: the filter compiled on the host for the guest
	 * (base64 BPF). When set, the agent's spec carries it and the flags
	 * in place of the rules. */
	const char *kvrun_bpf;
};

struct oci_device {
	char *path;
	char type; /* 'c', 'b', 'u', 'p' */
	int64_t major, minor;
	bool has_file_mode, has_uid, has_gid;
	uint32_t file_mode, uid, gid;
};

struct oci_linux {
	struct oci_namespace *namespaces;
	size_t n_namespaces;
	struct oci_idmap *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_resources *resources; /* NULL when absent */
	char *cgroups_path;
	struct oci_map sysctl;
	struct oci_seccomp *seccomp; /* NULL when absent */
	struct oci_strv masked_paths, readonly_paths;
	struct oci_device *devices;
	size_t n_devices;
	char *rootfs_propagation;
	char *mount_label;
};

struct oci_alloc; /* private: the allocations a config owns */

struct oci_config {
	char *oci_version;
	struct oci_process *process; /* NULL only in partial documents */
	struct oci_root *root;
	char *hostname, *domainname;
	struct oci_mount *mounts;
	size_t n_mounts;
	struct oci_hooks hooks;
	struct oci_map annotations;
	/* "linux" is a predefined macro under -std=gnu11, hence the underscore. */
	struct oci_linux *linux_;
	struct oci_alloc *owned;
};

/*
 * Parse and validate a whole config.json text (NUL-terminated at `len`, as
 * kv_read_file leaves it; a NUL before `len` is refused). `what` names the document in
 * errors ("config.json"), whose messages then read
 * "<what>: process.args: must be a non-empty array".
 */
int oci_config_parse(const char *text, size_t len, const char *what, struct oci_config **out,
		     struct kv_err **err) KV_WUR;
/*
 * runc's validator's sysctl rule, for a container being created: a sysctl
 * of the IPC, network or UTS namespace needs that namespace in the spec
 * ("<what>: linux.sysctl: \"net.ipv4.ip_forward\" requires a new network
 * namespace"). Not a parse rule: the agent's copy of a config leaves out
 * the namespaces the VM provides, and must still parse.
 */
int oci_config_check_sysctl(const struct oci_config *cfg, const char *what,
			    struct kv_err **err) KV_WUR;
/* Read (size-limited) and parse a file; errors name the path. */
int oci_config_load(const char *path, struct oci_config **out, struct kv_err **err) KV_WUR;
void oci_config_free(struct oci_config *cfg);
static inline void oci_config_freep(struct oci_config **c)
{
	oci_config_free(*c);
}
#define cleanup_oci_config __attribute__((cleanup(oci_config_freep)))

/*
 * Partial documents, parsed with the same rules and messages:
 * a process.json (`kvrun exec --process`) fills only cfg->process; a
 * resources document (`kvrun update -r`) fills only cfg->linux_->resources.
 */
int oci_process_parse(const char *text, size_t len, const char *what, struct oci_config **out,
		      struct kv_err **err) KV_WUR;
int oci_resources_parse(const char *text, size_t len, const char *what, struct oci_config **out,
			struct kv_err **err) KV_WUR;

/*
 * The container-relevant subset, for the guest agent: ociVersion, process,
 * root, hostname, domainname, mounts, and linux without host-only fields
 * (namespace paths, cgroupsPath, mountLabel). Hooks, annotations and
 * AppArmor/SELinux labels stay on the host. The output is itself a valid
 * config.json, so the agent can read it with oci_config_parse().
 */
int oci_config_to_agent_json(const struct oci_config *cfg, struct kv_json *j,
			     struct kv_err **err) KV_WUR;
/* The same, as a malloc'd compact string. */
int oci_config_to_agent_string(const struct oci_config *cfg, char **out,
			       struct kv_err **err) KV_WUR;
/* Write a process object in config.json shape (also used for exec). */
void oci_process_to_json(const struct oci_process *p, struct kv_json *j);
void oci_resources_to_json(const struct oci_resources *r, struct kv_json *j);

/* Names and lookups. */
const char *oci_ns_name(enum oci_ns_type t);
int oci_ns_from_name(const char *name); /* -1 when unknown */
const char *oci_hook_name(enum oci_hook_kind k);
const char *oci_cap_set_name(enum oci_cap_set s);
extern const char *const oci_capability_names[]; /* index = capability number */
extern const size_t oci_capability_count;
/*
 * Seccomp names, sized here so that a table kept in the same order (the
 * agent's libseccomp values) can assert that it has one entry per name.
 */
#define OCI_SECCOMP_ACTION_COUNT   9
#define OCI_SECCOMP_OPERATOR_COUNT 7
#define OCI_SECCOMP_ARCH_COUNT	   3
extern const char *const oci_seccomp_actions[];
extern const size_t oci_seccomp_action_count;
/* In the order of enum oci_seccomp_cmp. */
extern const char *const oci_seccomp_operators[];
extern const size_t oci_seccomp_operator_count;
/* What an x86_64 guest runs; a config may name others (foreign: ignored). */
extern const char *const oci_seccomp_archs[];
extern const size_t oci_seccomp_arch_count;
extern const char *const oci_seccomp_flags[];
extern const size_t oci_seccomp_flag_count;
/*
 * The mount options that are not filesystem data: mount(2) flags set or
 * cleared, propagation types, bind/rbind. One table: the agent applies it
 * (agent/spec.c), `kvrun features` lists it (mountOptions); any other
 * option goes to the filesystem as data.
 */
struct oci_mount_flag {
	const char *name;
	unsigned long set, clear;  /* MS_* */
	unsigned long propagation; /* MS_PRIVATE... (| MS_REC), or 0 */
	bool bind, recursive;
};
extern const struct oci_mount_flag oci_mount_flags[];
extern const size_t oci_mount_flag_count;
const struct oci_mount_flag *oci_mount_flag_find(const char *name); /* NULL: data */
/* An absolute path with no ".." component (mount destinations, cwd: the
 * agent resolves them inside the container's root; both sides check). */
bool oci_path_is_abs_clean(const char *p);
/* A bind mount: type "bind", or a "bind"/"rbind" option (runc's rule). */
bool oci_mount_is_bind(const struct oci_mount *m);
int oci_capability_from_name(const char *name); /* -1 when unknown */
/* "RLIMIT_NOFILE" to RLIMIT_NOFILE; -1 when unknown. One table for the host's
 * check and the agent's setrlimit. */
int oci_rlimit_from_name(const char *name);
/* The value of annotation `key`, or NULL when the config has none. */
const char *oci_annotation(const struct oci_config *cfg, const char *key);

/* ------------------------------------------------------- typed readers */

/*
 * The parse context behind every message above, public so that the agent
 * reads its requests with the same rules: an owner of allocations (freed
 * together by oci_alloc_free), the JSON path that every message names, and
 * typed readers for yajl_tree members. Numbers are read from yajl's
 * unparsed text, so a uint64 above LLONG_MAX (seccomp argument values) is
 * read exactly and "1.5" or "1e3" is refused as a non-integer. Readers
 * return negative after "<path>: <message>" (errnum 0: a verdict).
 */
void oci_alloc_free(struct oci_alloc *head);

#define OCI_PATH_MAX 320

struct pctx {
	struct oci_alloc **owner;
	struct kv_err **err;
	char path[OCI_PATH_MAX];
	size_t len;
};

/* Extend the path with ".key" or "[i]"; return the old length for pc_pop. */
size_t pc_push_key(struct pctx *c, const char *key);
size_t pc_push_idx(struct pctx *c, size_t i);
static inline void pc_pop(struct pctx *c, size_t old)
{
	c->len = old;
	c->path[old] = '\0';
}
/* "<path>: <message>"; returns negative. */
int pc_fail(struct pctx *c, const char *fmt, ...) KV_PRINTF(2, 3);
/* The same for a member: "<path>.<key>: <message>". */
int pc_fail_at(struct pctx *c, const char *key, const char *fmt, ...) KV_PRINTF(3, 4);
/* The same for an element of a member: "<path>.<key>[i]: <message>". */
int pc_fail_idx(struct pctx *c, const char *key, size_t i, const char *fmt, ...) KV_PRINTF(4, 5);

/* Owned by *c->owner, zeroed. */
void *pc_alloc(struct pctx *c, size_t n);
char *pc_strdup(struct pctx *c, const char *s);

/* A member of an object; NULL when absent or JSON null. */
yajl_val pc_get(yajl_val obj, const char *key);

/*
 * Typed members. `present` (may be NULL) tells whether it was there; when
 * `required` and absent the error is "<path>: required field is missing".
 */
int pc_str(struct pctx *c, yajl_val obj, const char *key, bool required, char **out) KV_WUR;
int pc_bool(struct pctx *c, yajl_val obj, const char *key, bool *out) KV_WUR;
int pc_u64(struct pctx *c, yajl_val obj, const char *key, bool required, uint64_t max,
	   uint64_t *out, bool *present) KV_WUR;
int pc_i64(struct pctx *c, yajl_val obj, const char *key, bool required, int64_t min, int64_t max,
	   int64_t *out, bool *present) KV_WUR;
int pc_u32(struct pctx *c, yajl_val obj, const char *key, bool required, uint32_t *out,
	   bool *present) KV_WUR;
/* Object / array members: type-checked; *out NULL when absent. */
int pc_obj(struct pctx *c, yajl_val obj, const char *key, bool required, yajl_val *out) KV_WUR;
int pc_arr(struct pctx *c, yajl_val obj, const char *key, bool required, yajl_val *out) KV_WUR;
/* An optional object member: run fn(c, member, out) with "key" in the path. */
typedef int (*pc_sub_fn)(struct pctx *c, yajl_val v, void *out);
int pc_sub(struct pctx *c, yajl_val obj, const char *key, pc_sub_fn fn, void *out) KV_WUR;
/*
 * An optional array of objects: allocate *n elements of elem_size in *out,
 * and run fn(c, element, i, &(*out)[i]) on each with "key[i]" in the path,
 * up to the first failure. A non-object element is "must be an object".
 */
typedef int (*pc_elem_fn)(struct pctx *c, yajl_val v, size_t i, void *elem);
int pc_each(struct pctx *c, yajl_val obj, const char *key, size_t *n, size_t elem_size, void **out,
	    pc_elem_fn fn) KV_WUR;
/* An array of strings. */
int pc_strv(struct pctx *c, yajl_val obj, const char *key, struct oci_strv *out) KV_WUR;
/* An object whose values are all strings. */
int pc_map(struct pctx *c, yajl_val obj, const char *key, struct oci_map *out) KV_WUR;
/* The value itself (path already pushed). */
int pc_val_u64(struct pctx *c, yajl_val v, uint64_t max, uint64_t *out) KV_WUR;
int pc_val_i64(struct pctx *c, yajl_val v, int64_t min, int64_t max, int64_t *out) KV_WUR;
/*
 * linux.seccomp (the path names it), with its names checked against the
 * tables above: the host reads config.json with it, the agent its spec.
 */
int oci_parse_seccomp(struct pctx *c, yajl_val v, struct oci_seccomp **out) KV_WUR;

static inline size_t pc_arr_len(yajl_val a)
{
	return a ? a->u.array.len : 0;
}

/* --------------------------------------------------------------- state */

enum oci_status {
	OCI_STATUS_CREATING,
	OCI_STATUS_CREATED,
	OCI_STATUS_RUNNING,
	OCI_STATUS_PAUSED,
	OCI_STATUS_STOPPED,
};
const char *oci_status_name(enum oci_status s);
int oci_status_from_name(const char *name); /* -1 when unknown */

/*
 * kvrun's bookkeeping for one container, <root>/<id>/state.json. Written
 * atomically; read back with every field checked.
 */
#define OCI_STATE_VERSION 1
struct oci_state {
	char *id;
	char *oci_version;	/* of the config.json it was created from */
	char *bundle;		/* absolute */
	char *rootfs;		/* absolute */
	enum oci_status status; /* as last recorded; liveness is checked apart */
	pid_t pid;		/* the kvrun-shim of the init process; 0 = none */
	uint64_t pid_start;	/* /proc/<pid>/stat starttime: guards against pid reuse */
	struct timespec created;
	char *sandbox_id; /* the VM it lives in (its own id for a sandbox) */
	struct oci_map annotations;
};
void oci_state_free(struct oci_state *st);
static inline void oci_state_freep(struct oci_state **s)
{
	oci_state_free(*s);
}
#define cleanup_oci_state __attribute__((cleanup(oci_state_freep)))

int oci_state_save(const char *path, const struct oci_state *st, struct kv_err **err) KV_WUR;
int oci_state_load(const char *path, struct oci_state **out, struct kv_err **err) KV_WUR;
int oci_state_parse(const char *text, size_t len, const char *what, struct oci_state **out,
		    struct kv_err **err) KV_WUR;

/*
 * runc's `state` / `list --format json` object, field for field:
 * ociVersion, id, pid, status, bundle, rootfs, created, annotations (only
 * when non-empty), owner. `status` and `pid` are the live values.
 */
void oci_state_to_runc_json(const struct oci_state *st, enum oci_status status, pid_t pid,
			    const char *owner, struct kv_json *j);
/* The runtime-spec state given to hooks on stdin: ociVersion, id, status,
 * pid (when > 0), bundle, annotations (when non-empty). */
void oci_state_to_spec_json(const struct oci_state *st, enum oci_status status, pid_t pid,
			    struct kv_json *j);

/* RFC 3339 with nanoseconds, UTC, trailing zeros trimmed (Go's RFC3339Nano). */
void oci_time_format(const struct timespec *ts, char buf[64]);
int oci_time_parse(const char *s, struct timespec *out); /* -1 when malformed */

/* ------------------------------------------------------------- helpers */

/*
 * Re-indent compact JSON the way Go's json.MarshalIndent does (the output
 * runc prints): one member per line, `"key": value`, empty {} and [] kept
 * together, no trailing newline. Returns a malloc'd string.
 */
char *oci_json_indent(const char *compact, size_t len, const char *indent);
/* Refuse nesting deeper than max before handing text to yajl_tree (whose
 * free is recursive). 0 when fine, -1 otherwise. */
int oci_json_check_depth(const char *text, size_t len, unsigned max);

#endif
