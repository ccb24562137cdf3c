/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One description of a VM's devices on the host: the struct vmm_config
 * (vmm/vmm.h) of every kvrun-vmm the runtime starts, cold, as a template
 * or as a clone, turned into a command line by the VMM's own
 * vmm_cli_argv(). A template and its clones come out of the same function,
 * so they have the same devices in the same slots; template.json records
 * them (vmm_config_layout) and a clone compares (tmpl_layout_check).
 */
#include "runtime/template.h"
#include "shim/shim.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* d keeps s (the config borrows it). */
static const char *desc_own(struct vm_desc *d, char *s)
{
	d->own = realloc(d->own, (d->n_own + 1) * sizeof(char *));
	if (!d->own)
		abort();
	d->own[d->n_own++] = s;
	return s;
}

void vm_desc_free(struct vm_desc *d)
{
	for (size_t i = 0; i < d->n_own; i++)
		free(d->own[i]);
	free(d->own);
	memset(d, 0, sizeof(*d));
}

static struct vmm_fs *desc_fs(struct vm_desc *d, const char *tag)
{
	struct vmm_fs *fs = &d->cfg.fs[d->cfg.n_fs++];
	memset(fs, 0, sizeof(*fs));
	fs->tag = tag;
	return fs;
}

/*
 * The virtio-fs devices, in every VM's order: the rootfs share (with its
 * DAX window), the binds share (the plan's bind sources, or an empty
 * read-only directory: a template has one, so every VM has one), the live
 * device that takes a pod's members.
 */
static int desc_shares(struct vm_desc *d, const struct rootfs_plan *plan, uint64_t dax,
		       const char *empty, struct kv_err **err)
{
	struct vmm_fs *fs = desc_fs(d, ROOTFS_TAG);
	fs->dax = dax;
	fs->nshares = 1;
	fs->shares[0] =
	    (struct vmm_fs_share){.path = plan ? plan->root : empty, .ro = plan && plan->root_ro};
	size_t n = plan ? plan->n_binds : 0;
	if (n > VMM_MAX_FS_SHARES)
		return kv_err_plain(err, E2BIG, "%zu bind mounts: a VM takes at most %d", n,
				    VMM_MAX_FS_SHARES);
	fs = desc_fs(d, BINDS_TAG);
	for (size_t i = 0; i < n; i++)
		fs->shares[fs->nshares++] = (struct vmm_fs_share){.name = plan->binds[i].name,
								  .path = plan->binds[i].path,
								  .ro = plan->binds[i].ro};
	if (!n) /* no bind mounts: the template's binds share, empty */
		fs->shares[fs->nshares++] = (struct vmm_fs_share){.path = empty, .ro = true};
	if (plan && !n && mkdir(empty, 0755) < 0 && errno != EEXIST)
		return kv_err_make(err, errno, "mkdir %s", empty);
	desc_fs(d, LIVE_TAG)->live = true;
	return 0;
}

int vm_slot_file_make(const char *dir, struct kv_err **err)
{
	static const char zeroes[4096];
	cleanup_free char *path = kv_asprintf("%s/%s", dir, VM_SLOT_FILE);
	return kv_write_file_volatile(path, zeroes, sizeof(zeroes), 0644, err);
}

uint64_t vm_layer_window(uint64_t size)
{
	uint64_t w = 16ull << 20;
	while (w < size && w < VMM_PMEM_WINDOW_MAX)
		w <<= 1;
	return w;
}

struct tmpl_shape tmpl_shape_of(const struct vm_conf *vc, unsigned cpus, uint64_t mem,
				const struct rootfs_plan *plan)
{
	struct tmpl_shape sh = {.cpus = cpus, .mem = mem, .rootfs_dax = vc->rootfs_dax};
	if (plan && plan->shared) {
		sh.nlayers = (unsigned)plan->n_layers;
		memcpy(sh.layer_window, plan->layer_window, sizeof(sh.layer_window));
		for (unsigned k = 0; k < plan->n_slots && sh.nlayers < VM_LAYERS_MAX; k++)
			sh.layer_window[sh.nlayers++] = plan->slot_window;
	}
	return sh;
}

int vm_desc_build(struct vm_desc *d, const struct vm_conf *vc, const struct tmpl_shape *sh,
		  const char *restore, const struct rootfs_plan *plan, const char *dir,
		  struct kv_err **err)
{
	memset(d, 0, sizeof(*d));
	struct vmm_config *c = &d->cfg;
	vmm_config_init(c);
	if (restore) {
		/* Memory and vCPUs are the snapshot's. */
		c->restore_dir = desc_own(d, kv_strdup(restore));
	} else {
		c->kernel = vc->kernel;
		c->cmdline = desc_own(d, tmpl_guest_cmdline(vc));
		c->mem = sh->mem;
		c->cpus = sh->cpus;
		c->mem_given = c->cpus_given = true;
	}
	/* pmem0: the guest OS image, root=/dev/pmem0. */
	c->pmem[c->n_pmem++] = (struct vmm_disk){.path = vc->image, .ro = true};
	/* pmem1..: the image layers' slots, the plan's files or a template's
	 * placeholder, then a pod's slots for its members (placeholders). */
	size_t own = plan ? plan->n_layers : 0;
	const char *slot =
	    sh->nlayers > own ? desc_own(d, kv_asprintf("%s/%s", dir, VM_SLOT_FILE)) : NULL;
	for (unsigned i = 0; i < sh->nlayers && i < VM_LAYERS_MAX; i++)
		c->pmem[c->n_pmem++] = (struct vmm_disk){.path = i < own ? plan->layers[i] : slot,
							 .ro = true,
							 .window = sh->layer_window[i]};
	const char *empty = desc_own(d, kv_asprintf("%s/%s", dir, VM_EMPTY_DIR));
	if (desc_shares(d, plan, plan ? plan->dax_window : sh->rootfs_dax, empty, err) < 0) {
		vm_desc_free(d);
		return -1;
	}
	/* kvrun-vmm runs in dir: its sockets are relative (sun_path is short). */
	c->vsock_uds = SHIM_VSOCK_NAME;
	c->api_sock = SHIM_API_NAME;
	c->console = VMM_CONSOLE_FILE;
	c->console_path = desc_own(d, kv_asprintf("%s/%s", dir, SHIM_CONSOLE_NAME));
	if (vc->console_max)
		c->console_max = vc->console_max;
	c->jail = vc->vmm_jail;
	/* The NIC, link down until the shim attaches a tap (shim/net.c). */
	c->net = true;
	c->log_level = KV_LOG_WARN;
	return 0;
}

int vm_desc_json(const struct vm_desc *d, const char *vmm, struct kv_json *j, const char *key,
		 struct kv_err **err)
{
	char **argv = NULL;
	if (vmm_cli_argv(&d->cfg, vmm, &argv, err) < 0)
		return -1;
	kv_json_key(j, key);
	kv_json_array_open(j);
	for (char **a = argv; *a; a++)
		kv_json_str(j, *a);
	kv_json_array_close(j);
	vmm_cli_argv_free(argv);
	return 0;
}
