/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microVM backend's private pieces (sandbox.c implements the seam in
 * runtime.h with them): kvrun's configuration file and VM sizing
 * (vmconf.c), container root filesystems and bind mounts as virtio-fs
 * shares (rootfs.c), host cgroups (hostcg.c), and the kvrun-shim
 * handshake (spawn.c).
 */
#ifndef KV_RUNTIME_BACKEND_H
#define KV_RUNTIME_BACKEND_H

#include "runtime/runtime.h"
#include "vmm/vmm.h"

/* ------------------------------------------------------------ config */

/* The default place of the configuration file; $KVRUN_CONFIG overrides it. */
#define KVRUN_CONFIG_PATH "/etc/kvrun/config.json"

struct vm_conf {
	char *kernel, *image;  /* guest kernel (vmlinux) and guest OS image */
	char *vmm, *shim;      /* programs */
	unsigned cpus;	       /* default vCPUs */
	uint64_t memory;       /* default guest RAM, bytes */
	uint64_t overhead;     /* added to a container's memory limit */
	uint64_t vmm_overhead; /* the host cgroup's memory: guest RAM + this */
	uint64_t min_memory;   /* floor for any VM */
	char *cmdline;	       /* appended to the guest kernel command line */
	unsigned boot_timeout_s;
	uint64_t rootfs_dax;	/* DAX window of the rootfs share; 0: none */
	uint64_t console_max;	/* console.log's cap (kvrun-vmm --console-max); 0: the VMM's */
	bool debug;		/* shims log at debug level */
	bool templates;		/* clone VMs from templates (runtime/template.h) */
	bool vmm_jail;		/* kvrun-vmm jails itself (false: --no-jail) */
	char *template_dir;	/* where templates live, or NULL: the default */
	unsigned template_max;	/* templates kept at most (least recently used out) */
	uint64_t template_disk; /* their snapshot files' disk use at most, bytes */
	char *path;		/* the file read, or NULL when none existed */
};

void vm_conf_free(struct vm_conf *c);
static inline void vm_conf_freep(struct vm_conf **c)
{
	vm_conf_free(*c);
}
#define cleanup_vm_conf __attribute__((cleanup(vm_conf_freep)))

/* Read $KVRUN_CONFIG or /etc/kvrun/config.json (absent: defaults) and
 * resolve the artifact paths (see README: "Configuration"). */
/* What a spec (create) or a process (exec) may take of one agent frame:
 * the request's other fields fit in the 64 KiB left. */
#define AGENT_BODY_MAX (KV_AGENT_FRAME_MAX - 64 * 1024)

int vm_conf_load(struct vm_conf **out, struct kv_err **err) KV_WUR;
/* A program or file kvrun ships, by vm_conf_load()'s rules 2 and 3: next to
 * the running binary (local, relative to its directory), else installed
 * (relative to the prefix of make install). malloc'd. */
char *vm_conf_artifact(const char *local, const char *installed);

/* Guest RAM rounded up to its step (128M, 192M, 256M, 384M, ... x1.5). */
uint64_t vm_mem_step(uint64_t mem);
/* The VM's size for a sandbox container: annotations, then
 * linux.resources, then the defaults; memory rounded to its step. */
int vm_size(const struct vm_conf *vc, const struct oci_config *cfg, unsigned *cpus, uint64_t *mem,
	    struct kv_err **err) KV_WUR;

/* --------------------------------------------------------- rootfs */

/*
 * How the container's root filesystem and bind mounts reach the guest, and
 * the agent's view of them: `spec_json` (the config subset, bind sources
 * rewritten to guest paths) and `rootfs_json` (the create request's rootfs).
 *
 * shared (a VM of its own, or a pod's sandbox): boot-time virtio-fs shares.
 * root.path is the share "rootfs" (read-write, DAX), each bind source an
 * entry b<i> of the share "binds", which the agent mounts (mount_shared)
 * before the create. The VM's devices come from them (vm_desc_build).
 * Otherwise (a container joining a running VM: a pod's member): live shares
 * of the VM's live device "pod" (kvrun-vmm --fs pod/, added through its API
 * with live_attach()): root.path as <prefix>r, each bind source as
 * <prefix>b<i>, read-write where the spec says so, so that writes land on
 * the host and an emptyDir is one directory for every member.
 */
struct plan_share {
	char *name, *path;
	bool ro;
};

/*
 * Image layers (kvrun image bundle): the annotation io.kvrun.image.layers,
 * comma-separated erofs images, the base layer first (a relative path is the
 * bundle's). Each is a virtio-pmem device of the VM (pmem1.., after the
 * guest image), mounted by the agent as erofs with DAX and stacked with
 * overlayfs under root.path, the writable layer (root.path/upper and
 * root.path/work on the host, through the share "rootfs"); a read-only root
 * gets a tmpfs upper in the guest instead. A device's window is the layer's
 * size class (vm_layer_window), so a template of that many layers of those
 * classes serves every image that fits: a clone binds its own files there.
 */
#define IMAGE_LAYERS_ANNOTATION "io.kvrun.image.layers"
#define VM_LAYERS_MAX		(VMM_MAX_DISKS - 1)
/* A layer's window: its size rounded up to a power of two, at least 16 MiB. */
uint64_t vm_layer_window(uint64_t size);
/*
 * A pod's layer slots: the sandbox reserves COUNT more pmem devices after
 * its own layers ("COUNT" or "COUNT:SIZE", each a window of SIZE rounded
 * as a layer's, default 256 MiB), each a placeholder until a member
 * binds one of its image layers there (the VMM's pmem-bind) and free
 * again at the member's delete. A member's layer takes the first free
 * slot whose window holds it. Windows cost the guest 1/64 of their size
 * in struct pages, so none are reserved unless asked.
 */
#define POD_LAYER_SLOTS_ANNOTATION "io.kvrun.pod.layer-slots"
#define POD_SLOT_WINDOW_DEFAULT	   (256ull << 20)

struct rootfs_plan {
	bool shared;
	char **layers; /* image layers, base first (IMAGE_LAYERS_ANNOTATION) */
	size_t n_layers;
	uint64_t layer_window[VM_LAYERS_MAX];
	unsigned layer_dev[VM_LAYERS_MAX]; /* each layer's pmem device in the guest */
	unsigned n_slots; /* shared: slots reserved for members, after the layers */
	uint64_t slot_window;
	char *upper_path;	  /* not shared, with layers: the live share holding upper/ */
	char *root;		  /* shared: root.path, the share "rootfs" */
	bool root_ro;		  /* shared: root.readonly (read-only on the host too) */
	struct plan_share *binds; /* shared: the entries of the share "binds" */
	size_t n_binds;
	bool mount_binds;	 /* shared: the agent must mount the "binds" share */
	uint64_t dax_window;	 /* shared: DAX window of the rootfs share, 0 = none */
	struct plan_share *live; /* not shared: the shares to attach */
	size_t n_live;
	char *spec_json;
	char *rootfs_json;
};
/* The virtio-fs tags of every VM: the root, the bind sources, the live device. */
#define ROOTFS_TAG "rootfs"
#define BINDS_TAG  "binds"
/* The tag of every VM's live virtio-fs device. */
#define LIVE_TAG "pod"
void rootfs_plan_free(struct rootfs_plan *p);
int rootfs_prepare(const char *state_dir, const struct oci_config *cfg, const char *rootfs,
		   const char *bundle, struct rootfs_plan *p, struct kv_err **err) KV_WUR;
/* Attach the plan's live shares to the VM whose API socket is api_sock,
 * recording their names in state_dir (for live_detach); all or none. */
int live_attach(const struct rootfs_plan *p, const char *api_sock, const char *state_dir,
		struct kv_err **err) KV_WUR;
/* Remove the live shares recorded in state_dir from the VM (best effort:
 * the VM may be gone). */
void live_detach(const char *api_sock, const char *state_dir);
/* A sandbox's slots (plan->n_slots): their placeholder file and their
 * table, in its directory sbdir, before its VM starts. */
int slots_prepare(const struct rootfs_plan *p, const char *sbdir, struct kv_err **err) KV_WUR;
/* A member's layers (not shared) into free slots of the sandbox whose
 * directory is sbdir and API socket api_sock: claimed, recorded in
 * state_dir (for slots_release) and bound; the plan's rootfs then names
 * the devices. All or none. */
int slots_attach(struct rootfs_plan *p, const char *id, const char *api_sock, const char *sbdir,
		 const char *state_dir, struct kv_err **err) KV_WUR;
/* Give back the slots recorded in state_dir (zeroes bound, claims removed;
 * best effort: the VM may be gone). */
void slots_release(const char *id, const char *api_sock, const char *sbdir, const char *state_dir);

/* The size a sandbox's VM was given at create (sandbox.c). */
int vmsize_read(const char *sbdir, unsigned *cpus, uint64_t *mem, struct kv_err **err) KV_WUR;

/* ------------------------------------------------------ host cgroups */

/* linux.cgroupsPath as a path below each hierarchy's root (hostcg.c). */
char *hostcg_path(const char *cgroups_path, const char *id);
/* Make the cgroup (recorded in the state directory) with the VM's size as
 * its limits: cpus vCPUs of quota, mem bytes of memory. */
int hostcg_create(const char *state_dir, const char *rel, unsigned cpus, uint64_t mem,
		  struct kv_err **err) KV_WUR;
/* Move pid into the recorded cgroup (none recorded: nothing to do). */
int hostcg_attach(const char *state_dir, pid_t pid, struct kv_err **err) KV_WUR;
/* New limits: CPU in thousandths of a CPU, memory in bytes (0: unchanged). */
int hostcg_update(const char *state_dir, unsigned cpus_milli, uint64_t mem,
		  struct kv_err **err) KV_WUR;
/* Remove what hostcg_create made (once its processes are gone). */
void hostcg_remove(const char *state_dir);

/* ----------------------------------------------------------- shims */

struct shim_handle {
	pid_t pid;
	uint64_t start;
	int sync_fd;
	pid_t guest_pid;
};

/* No netns of its own: the shim stays in kvrun's network namespace. */
#define SHIM_NETNS_SAME -2
/* A new network namespace (the spec asks for one without a path). */
#define SHIM_NETNS_NEW -3

struct shim_spawn_opts {
	const char *state_dir, *log;
	/* An fd of the network namespace to join, or SHIM_NETNS_*. */
	int netns;
	/* PID 1 of a PID namespace of its own, with its /proc (spawn.c). */
	bool own_pidns;
	/* Called with the shim's pid before it gets the request (and so before
	 * it starts anything): host cgroup placement. NULL: none. */
	int (*place)(void *ctx, pid_t pid, struct kv_err **err);
	void *place_ctx;
	/* A VM owner's shim: /dev/kvm for its VMM, and /dev/net/tun when it
	 * wires a network (tun); a shim that makes a terminal for a console
	 * socket: a pty master (ptmx). Opened here, before placement (spawn.c). */
	bool kvm, tun, ptmx;
};

/* Fork and exec kvrun-shim in a new session (in the network namespace the
 * options say); send the request (JSON). */
int shim_spawn(const struct vm_conf *vc, const struct shim_spawn_opts *o, const char *request,
	       struct shim_handle *h, struct kv_err **err) KV_WUR;
/* Wait for the shim's answer (the process exists in the guest). */
int shim_await(struct shim_handle *h, unsigned timeout_s, struct kv_err **err) KV_WUR;
/* VM owner, after the create hooks: the shim carries its network
 * namespace's interface into the VM (shim/net.c); waits for its answer. */
int shim_net(struct shim_handle *h, unsigned timeout_s, struct kv_err **err) KV_WUR;
/* Let it run (it undoes everything if this never comes). */
int shim_commit(struct shim_handle *h, struct kv_err **err) KV_WUR;
/* Kill it and wait until it is gone; closes the sync socket. */
void shim_abort(struct shim_handle *h);
/* Wait for a shim we forked, forwarding the signals we get; the status as
 * runc reports it (128 + signal when it died of one). */
int shim_wait_child(pid_t pid, int *status, struct kv_err **err) KV_WUR;

/* The host pid of the VMM a VM owner's shim started (its child), or 0. The
 * shim is PID 1 of its own namespace: the pid it records is that one's. */
pid_t shim_vmm_pid(pid_t shim);
/* Kill a recorded process (pid file "pid start") and wait until it is gone. */
int kill_pidfile(const char *path, struct kv_err **err) KV_WUR;
int kill_and_wait(pid_t pid, uint64_t start, struct kv_err **err) KV_WUR;

/* The agent's name for a container: the id when it fits the agent's rules
 * (kv_agent_name_ok()), else a stable hash of it. */
char *agent_container_name(const char *id);

/* ------------------------------------------------------- the agent */

#define SHIM_LOG     "shim.log"
#define SHIM_PIDFILE "shim.pid"
/* How long the agent gets for one request (guest work is slow on PVM). */
#define AGENT_CALL_MS 120000
/* The create or exec in the guest, on top of the boot. */
#define SETUP_TIMEOUT_S 300

struct kv_msg;
struct kv_agent_client;
/* <root>/<sandbox id> beside a container's state directory <root>/<id>. */
char *sandbox_dir(const char *state_dir, const char *sandbox_id);
/* A control connection to c's VM's agent, after the version handshake. */
struct kv_agent_client *backend_agent_open(const struct container *c, struct kv_err **err) KV_WUR;
/* One request about container c to its VM's agent: params from a kv_req_*()
 * builder, or NULL for {"container": name}; resp (may be NULL) gets the
 * answer. */
int backend_agent_call(const struct container *c, const char *op, const char *params,
		       struct kv_msg *resp, struct kv_err **err) KV_WUR;

#endif
