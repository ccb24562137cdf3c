/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCI runtime-spec subset the agent applies inside the guest, decoded
 * into plain C. Private to agent/: other directories use agent/agent.h.
 */
#ifndef KV_AGENT_SPEC_H
#define KV_AGENT_SPEC_H

#include "lib/kv.h"

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct yajl_val_s;
struct oci_alloc;

struct kv_mount {
	char *destination; /* absolute path inside the container */
	char *type;	   /* "bind" for bind mounts */
	char *source;
	unsigned long flags;	   /* MS_* applied at mount time */
	unsigned long propagation; /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE [|MS_REC], or 0 */
	bool bind, recursive;
	bool remount_ro; /* bind + ro needs a second, remounting call */
	char *data;	 /* filesystem options (mode=755, ...) */
};

struct kv_rlimit {
	int resource;
	struct rlimit limit;
};

enum kv_cap_set {
	KV_CAP_BOUNDING,
	KV_CAP_EFFECTIVE,
	KV_CAP_INHERITABLE,
	KV_CAP_PERMITTED,
	KV_CAP_AMBIENT,
	KV_CAP_NSETS
};

/* Strings and arrays below hang off `owned` (oci/'s allocation list). */
struct kv_process {
	struct oci_alloc *owned;
	char **args; /* NULL-terminated */
	char **env;  /* NULL-terminated */
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *gids;
	size_t ngids;
	int umask; /* -1: leave as is (022 from the agent) */
	bool terminal;
	unsigned short rows, cols; /* process.consoleSize */
	struct kv_rlimit *rlimits;
	size_t nrlimits;
	bool has_caps;
	uint64_t caps[KV_CAP_NSETS]; /* bit n = capability n */
	bool no_new_privs;
	bool has_oom_score_adj;
	int oom_score_adj;
};

struct kv_seccomp_arg {
	unsigned index;
	uint64_t value, value_two;
	int op; /* enum scmp_compare */
};

struct kv_seccomp_rule {
	int *syscalls; /* resolved numbers; names libseccomp does not know are skipped */
	size_t nsyscalls;
	uint32_t action;
	struct kv_seccomp_arg *args;
	size_t nargs;
};

struct kv_seccomp {
	uint32_t default_action;
	uint32_t *arches;
	size_t narches;
	bool flag_log, flag_spec_allow;
	struct kv_seccomp_rule *rules;
	size_t nrules;
	/* A program the host compiled ("kvrunBpf": agent_seccomp_guest_bpf()):
	 * loaded as it is, nothing else is decoded or compiled in the guest. */
	uint8_t *bpf;
	size_t bpf_len;
	struct oci_alloc *owned; /* all of the above */
};

struct kv_resources {
	int64_t memory_limit, memory_reservation, memory_swap; /* -1: unset */
	uint64_t cpu_shares, cpu_period;
	int64_t cpu_quota; /* -1: unset */
	char *cpus, *mems;
	int64_t pids_limit;	 /* 0: unset, -1: max */
	struct oci_alloc *owned; /* cpus, mems */
};

struct kv_sysctl {
	char *key, *value;
};

/* One read-only layer: a block/pmem device with a filesystem, or a directory. */
struct kv_layer {
	char *device, *fstype, *options; /* device != NULL */
	char *path;			 /* or a directory */
	char *tag;			 /* or a virtio-fs tag (options apply) */
};

/*
 * Where the container's root comes from (the create request's "rootfs"; by
 * default the directory root.path):
 *   dir      a directory already visible to the agent (tests, a shared dir)
 *   block    a device with a filesystem image (virtio-pmem/blk; "dax" option)
 *   virtiofs / 9p   a shared directory by its tag
 *   overlay  layers stacked read-only under a writable upper (tmpfs, or a
 *            device, virtio-fs tag or directory given as upper, which holds
 *            upper/ and work/); a layer is a device (kvrun's image layers:
 *            erofs on virtio-pmem, "dax"), a directory or a virtio-fs tag
 */
struct kv_rootfs {
	char *type;
	char *path;			 /* dir */
	char *device, *fstype, *options; /* block */
	char *tag;			 /* virtiofs, 9p */
	struct kv_layer *layers;	 /* overlay, bottom first */
	size_t nlayers;
	struct kv_layer upper; /* overlay: device, tag, path, or none for a tmpfs */
};

struct kv_spec {
	struct oci_alloc *owned; /* all but process and res, which own theirs */
	struct kv_process process;
	struct kv_rootfs rootfs;
	char *root_path;
	bool root_readonly;
	char *hostname, *domainname; /* NULL: unset (or empty) */
	struct kv_mount *mounts;
	size_t nmounts;
	char **masked_paths;
	size_t nmasked;
	char **readonly_paths;
	size_t nreadonly;
	int ns_flags;	   /* CLONE_NEW* to create */
	char *ns_paths[8]; /* joined namespaces, by enum kv_ns_index */
	unsigned long rootfs_propagation;
	char *cgroups_path;
	struct kv_resources res;
	bool has_res;
	struct kv_sysctl *sysctls;
	size_t nsysctls;
	struct kv_seccomp *seccomp;
};

enum kv_ns_index {
	KV_NS_PID,
	KV_NS_MOUNT,
	KV_NS_UTS,
	KV_NS_IPC,
	KV_NS_CGROUP,
	KV_NS_NET,
	KV_NS_COUNT
};

/*
 * Decode the OCI config subset, with oci/'s typed readers. Errors name the
 * JSON path and what is wrong: "process.args: must be a non-empty array of
 * strings".
 */
struct kv_spec *kv_spec_decode(struct yajl_val_s *root, struct kv_err **err) KV_WUR;
/* The create request's "rootfs" (may be NULL: then root.path, a directory). */
int kv_rootfs_decode(struct yajl_val_s *v, struct kv_spec *s, struct kv_err **err) KV_WUR;
/* linux.resources alone (the params of update); *has is set when present.
 * Unset fields are -1 or 0, as in a spec. */
int kv_resources_decode(struct yajl_val_s *v, struct kv_resources *r, bool *has,
			struct kv_err **err) KV_WUR;
void kv_resources_clear(struct kv_resources *r);
/* Only a process (the params of exec): the same rules as process.* */
int kv_process_decode(struct yajl_val_s *v, const char *path, struct kv_process *p,
		      struct kv_err **err) KV_WUR;
void kv_process_clear(struct kv_process *p);
/* What a container needs of a decoded spec and rootfs beyond their fields. */
int kv_spec_check(const struct kv_spec *s, struct kv_err **err) KV_WUR;
void kv_spec_free(struct kv_spec *s);
static inline void kv_spec_freep(struct kv_spec **s)
{
	kv_spec_free(*s);
}
#define cleanup_spec __attribute__((cleanup(kv_spec_freep)))

/* Mount option string to flags; false when it is filesystem data. */
bool kv_mount_option(const char *opt, unsigned long *set, unsigned long *clear,
		     unsigned long *propagation, bool *bind, bool *recursive);

/* linux.seccomp (agent/seccomp.c): the OCI object or a host-compiled kvrunBpf. */
int kv_seccomp_decode(struct yajl_val_s *v, struct kv_seccomp **out, struct kv_err **err);
void kv_seccomp_free(struct kv_seccomp *s);

#endif
