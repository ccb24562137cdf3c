/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM templates (runtime/template.c, runtime/cmd_template.c): a VM booted
 * once to "agent ready", with no container, and snapshotted (kvrun-vmm's
 * state + memory files, vmm/snapshot.h). A new VM of the same shape is a
 * clone: kvrun-vmm --restore maps the template's memory MAP_PRIVATE and
 * resumes in milliseconds instead of booting.
 *
 * The key. A clone must be the template's machine: same kernel, guest image,
 * kernel command line, vCPUs, memory and devices. The key is that list in
 * text (files named with their size and modification time, and the VMM
 * binary too), and a template's directory is named after a hash of it
 * (template.json keeps the text, compared in full before use). Devices
 * (vm_desc_build, below, for the template and every clone alike): pmem0
 * the guest image; the rootfs share (virtio-fs, with its DAX window) and
 * the binds share, both always there in a template (a container without
 * bind mounts gets an empty binds share), and the live device "pod/" that
 * takes the shares of containers joining the VM later; vsock; a NIC; rng.
 * The template VM's shares are empty directories that it never mounts: a
 * clone's shares are the container's own, attached by the command line of
 * the restore, mounted by the agent as on a cold boot. template.json also
 * records the devices the template VM had (tmpl_layout_check).
 *
 * Identity per clone, before the container starts (shim/clone.c): fresh
 * entropy from the host's getrandom (the agent reseeds the guest CRNG),
 * the time, the VM's hostname, new vsock connections (the restore resets the
 * transport). boot_id: Linux makes it at its first read, from the CRNG
 * (drivers/char/random.c, proc_do_uuid); nothing reads it in a template, so
 * each clone makes its own after the reseed.
 *
 * Templates are on by default. Off: "templates": false in the config file,
 * or the annotation io.kvrun.template=false on a sandbox's container. Why
 * one would: clones of one template share the memory pages they have not
 * written, a side channel between tenants (the KSM class of attacks), and
 * they share what the guest kernel drew at boot (KASLR offset, hash seeds).
 */
#ifndef KV_RUNTIME_TEMPLATE_H
#define KV_RUNTIME_TEMPLATE_H

#include "runtime/backend.h"
#include "vmm/vmm.h"

#define TEMPLATE_ANNOTATION  "io.kvrun.template"
#define TEMPLATE_DIR_DEFAULT "/var/lib/kvrun/templates"
#define TEMPLATE_INFO	     "template.json"
#define TEMPLATE_ID_LEN	     16

/* What a VM's template depends on besides the config's artifacts. */
struct tmpl_shape {
	unsigned cpus;
	uint64_t mem;
	uint64_t rootfs_dax;
	/* Image layer slots (pmem1..): their windows, the plan's (rootfs_plan). */
	unsigned nlayers;
	uint64_t layer_window[VM_LAYERS_MAX];
};
/* The shape of a VM of cpus and mem for plan (its layer slots; NULL: none). */
struct tmpl_shape tmpl_shape_of(const struct vm_conf *vc, unsigned cpus, uint64_t mem,
				const struct rootfs_plan *plan);
/* A template's placeholder for an image layer slot (in its directory), and
 * a pod sandbox's for the slots its members bind layers to: 4 KiB of zeroes. */
#define VM_SLOT_FILE "slot.pmem"
int vm_slot_file_make(const char *dir, struct kv_err **err) KV_WUR;

/* The directory templates live in: $KVRUN_TEMPLATE_DIR, the config's
 * template_dir, or TEMPLATE_DIR_DEFAULT. */
char *tmpl_root(const struct vm_conf *vc);
/* The key text and its id (hex). */
int tmpl_key(const struct vm_conf *vc, const struct tmpl_shape *sh, char **text,
	     char id[TEMPLATE_ID_LEN + 1], struct kv_err **err) KV_WUR;
/* The guest kernel command line every VM gets (cold boots and templates). */
char *tmpl_guest_cmdline(const struct vm_conf *vc);

/*
 * The template for this shape, if there is a complete one whose key
 * matches: *dir is its directory (malloc'd), or NULL. Never fails for a
 * missing or unusable template (that is a cold boot, logged at debug).
 */
void tmpl_find(const struct vm_conf *vc, const struct tmpl_shape *sh, char **dir);
/* Whether this container may use a template (config and annotation). */
bool tmpl_enabled(const struct vm_conf *vc, const struct oci_config *cfg);

/*
 * The one description of a VM's devices on the host (vmdesc.c): a struct
 * vmm_config and the strings it borrows. Cold boots, templates and clones
 * all come from vm_desc_build(), so they agree slot by slot.
 */
struct vm_desc {
	struct vmm_config cfg;
	char **own; /* what cfg's strings point into */
	size_t n_own;
};
void vm_desc_free(struct vm_desc *d);
#define cleanup_vm_desc __attribute__((cleanup(vm_desc_free)))
/* The empty directory in a VM's directory that stands for absent shares. */
#define VM_EMPTY_DIR "empty"

/*
 * A sandbox's VM, run by kvrun-vmm in dir (its sockets relative there, its
 * console dir/console.log): a cold boot of the config's kernel and command
 * line at sh's size, or (restore) a resume of that template directory.
 * Devices, in this order in every VM: pmem0 the guest image (read-only);
 * virtio-fs "rootfs" (the plan's root, read-only as it says, with its DAX
 * window; without a plan, a template's: dir/empty with sh's DAX window),
 * "binds" (the plan's bind sources, or dir/empty read-only, made here for
 * a plan), the live device "pod/"; hybrid vsock; the NIC; rng. Fails for
 * more bind mounts than a device takes, or when dir/empty cannot be made.
 */
int vm_desc_build(struct vm_desc *d, const struct vm_conf *vc, const struct tmpl_shape *sh,
		  const char *restore, const struct rootfs_plan *plan, const char *dir,
		  struct kv_err **err) KV_WUR;
/* d's kvrun-vmm command line (vmm_cli_argv) as the JSON array `key` in j. */
int vm_desc_json(const struct vm_desc *d, const char *vmm, struct kv_json *j, const char *key,
		 struct kv_err **err) KV_WUR;

/*
 * Whether the clone cfg has the devices the template in dir was made with
 * (its template.json's "devices", vmm_config_layout): a restore into other
 * devices fails. The error names the first device that differs.
 */
int tmpl_layout_check(const char *dir, const struct vmm_config *cfg, struct kv_err **err) KV_WUR;

/*
 * Templates without asking: for a VM that boots cold because its shape has
 * no template, the shim's request gets where to leave one (template_tmp,
 * template_final, template_info with cfg's devices; kvrun-shim snapshots
 * the VM at agent-ready, shim/tmpl.c). Makes room first: stale templates go, then the least
 * recently used beyond the budget (the config's template_max and
 * template_disk). Best effort: nothing is added when it cannot be done.
 * The temporary directory is recorded in state_dir (the VM owner's) first.
 */
void tmpl_plan_out(const struct vm_conf *vc, const struct tmpl_shape *sh,
		   const struct vmm_config *cfg, const char *state_dir, struct kv_json *j);

/* What a shim killed while it snapshotted left (the temporary directory
 * tmpl_plan_out recorded in state_dir, if it is still there): removed, with
 * the record. Called once the container's processes are gone. */
void tmpl_tmp_remove(const char *state_dir);

/* kvrun template create: boot, wait for the agent, snapshot. *id out. */
int tmpl_create(const struct vm_conf *vc, const struct tmpl_shape *sh, bool force,
		char id[TEMPLATE_ID_LEN + 1], struct kv_err **err) KV_WUR;
/* kvrun template list: one line each (or a JSON array). */
int tmpl_list(const struct vm_conf *vc, bool json, FILE *out, struct kv_err **err) KV_WUR;
/* kvrun template rm: one id, or every template (id NULL). */
int tmpl_remove(const struct vm_conf *vc, const char *id, struct kv_err **err) KV_WUR;

#endif
