/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container root filesystems and bind mounts for the microVM, all of them
 * virtio-fs shares served by kvrun-vmm, so that writes land on the host.
 *
 * A container with a VM of its own (or a pod's sandbox) gets boot-time
 * shares: root.path is the share "rootfs", read-write, so writes land in
 * that directory on the host, or read-only when root.readonly (the VMM
 * refuses every change with EROFS: a guest root that remounts / read-write
 * still cannot write the bundle); each bind source (volumes, Docker's
 * /etc/hosts and /etc/resolv.conf, a file or a directory) is the entry b<i>
 * of the share "binds", which the agent mounts at AGENT_SHARED_DIR/binds
 * before the create, and the spec's bind mount takes its source from there,
 * with its options (ro applies, and the share entry is read-only too).
 *
 * A container that joins a running VM (a pod's member) gets live shares of
 * the VM's live device "pod" instead (virtio-mmio has no hotplug; the VMM
 * adds a share to that device through its API, the directory passed as an
 * fd): root.path as <prefix>r and each bind source as <prefix>b<i>, with a
 * random prefix per container, read-only where the spec says so (and the
 * root where root.readonly), mounted by the agent at AGENT_SHARED_DIR/pod.
 *
 * Either way, other mounts must be ones the agent makes itself.
 *
 * A bundle of `kvrun image bundle` names its image layers in an annotation
 * (IMAGE_LAYERS_ANNOTATION, backend.h): they are checked here (erofs
 * images, at most VM_LAYERS_MAX), become pmem devices of the VM, and the
 * agent stacks them with overlayfs under root.path, the share "rootfs",
 * which holds the writable layer (upper/, work/).
 */
#include "runtime/backend.h"
#include "agent/agent.h"
#include "runtime/template.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>

#include "vmm/vmm.h"

/* Where the agent's mount_shared puts a share (agent/ops.c). */
#define AGENT_SHARED_DIR "/run/kvrun/shared"

static const char *const agent_mount_types[] = {"proc",	  "sysfs",  "tmpfs",   "devpts",
						"mqueue", "cgroup", "cgroup2", NULL};

static void shares_free(struct plan_share *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].path);
	}
	free(v);
}

void rootfs_plan_free(struct rootfs_plan *p)
{
	for (size_t i = 0; i < p->n_layers; i++)
		free(p->layers[i]);
	free(p->layers);
	free(p->upper_path);
	free(p->root);
	shares_free(p->binds, p->n_binds);
	shares_free(p->live, p->n_live);
	free(p->spec_json);
	free(p->rootfs_json);
	memset(p, 0, sizeof(*p));
}

static int check_agent_mount(const struct oci_mount *m, size_t i, struct kv_err **err)
{
	for (size_t k = 0; m->type && agent_mount_types[k]; k++)
		if (strcmp(m->type, agent_mount_types[k]) == 0)
			return 0;
	return kv_err_plain(
	    err, ENOTSUP,
	    "mounts[%zu] (%s on %s): mount type %s cannot be provided inside the "
	    "microVM (the guest makes proc, sysfs, tmpfs, devpts, mqueue and cgroup "
	    "mounts; bind mounts are shared)",
	    i, m->source ? m->source : "none", m->destination, m->type ? m->type : "(none)");
}

/* mounts[i]'s bind source exists and is a file or a directory, the kinds a
 * microVM can be given (how: `how`, for the message); *sb is its stat. */
static int check_bind_source(size_t i, const char *src, const char *how, struct stat *sb,
			     struct kv_err **err)
{
	if (stat(src, sb) < 0)
		return kv_err_make(err, errno, "mounts[%zu]: bind source %s", i, src);
	if (!S_ISREG(sb->st_mode) && !S_ISDIR(sb->st_mode))
		return kv_err_plain(err, ENOTSUP,
				    "mounts[%zu]: bind source %s is not a file or a directory: it "
				    "cannot be %s",
				    i, src, how);
	return 0;
}

struct prep {
	const char *state_dir, *bundle;
	const struct oci_config *cfg;
	struct rootfs_plan *p;
	struct oci_mount *mounts; /* what the agent gets */
	size_t n;
	char **owned;	 /* rewritten sources */
	char prefix[10]; /* live share names: 8 hex digits and "-" */
};

/* kvrun-vmm reads options off the end of --fs values: no commas in paths. */
static int share_path_ok(const char *what, const char *path, struct kv_err **err)
{
	if (strchr(path, ','))
		return kv_err_plain(err, EINVAL, "%s %s: a path with a comma cannot be shared yet",
				    what, path);
	return 0;
}

static bool mount_ro(const struct oci_mount *m)
{
	for (size_t i = 0; i < m->options.n; i++)
		if (strcmp(m->options.v[i], "ro") == 0)
			return true;
	return false;
}

static void share_add(struct plan_share **v, size_t *n, char *name, const char *path, bool ro)
{
	*v = realloc(*v, (*n + 1) * sizeof(**v));
	if (!*v)
		abort();
	(*v)[(*n)++] = (struct plan_share){.name = name, .path = kv_strdup(path), .ro = ro};
}

/* A bind source as the entry b<i> of the "binds" share, or as a live share. */
static int share_bind(struct prep *x, size_t i, const char *src, struct kv_err **err)
{
	const struct oci_mount *m = &x->cfg->mounts[i];
	struct stat sb;
	if (check_bind_source(i, src, "shared with the microVM", &sb, err) < 0)
		return -1;
	struct oci_mount *out = &x->mounts[x->n++];
	*out = *m;
	if (!x->p->shared) {
		char *name = kv_asprintf("%sb%zu", x->prefix, i);
		out->source = x->owned[i] =
		    kv_asprintf("%s/%s/%s", AGENT_SHARED_DIR, LIVE_TAG, name);
		share_add(&x->p->live, &x->p->n_live, name, src, mount_ro(m));
		return 0;
	}
	if (share_path_ok("bind source", src, err) < 0)
		return -1;
	share_add(&x->p->binds, &x->p->n_binds, kv_asprintf("b%zu", i), src, mount_ro(m));
	x->p->mount_binds = true;
	out->source = x->owned[i] = kv_asprintf("%s/%s/b%zu", AGENT_SHARED_DIR, BINDS_TAG, i);
	return 0;
}

static int prep_mount(struct prep *x, size_t i, struct kv_err **err)
{
	const struct oci_mount *m = &x->cfg->mounts[i];
	if (!oci_mount_is_bind(m)) {
		if (check_agent_mount(m, i, err) < 0)
			return -1;
		x->mounts[x->n++] = *m;
		return 0;
	}
	cleanup_free char *src =
	    m->source[0] == '/' ? kv_strdup(m->source) : kv_asprintf("%s/%s", x->bundle, m->source);
	return share_bind(x, i, src, err);
}

/* root.path as the share "rootfs" of the container's own VM. */
static int share_root(struct rootfs_plan *p, const char *rootfs, bool ro, struct kv_err **err)
{
	if (share_path_ok("root.path", rootfs, err) < 0)
		return -1;
	p->root = kv_strdup(rootfs);
	p->root_ro = ro;
	return 0;
}

/* The agent's way to the share "rootfs": its tag, and DAX where it has a window. */
static void share_root_json(const struct rootfs_plan *p, struct kv_json *j)
{
	kv_json_kstr(j, "tag", ROOTFS_TAG);
	if (p->dax_window)
		kv_json_kstr(j, "options", "dax");
}

static int share_rootfs(struct rootfs_plan *p, const char *rootfs, bool ro, struct kv_err **err)
{
	if (share_root(p, rootfs, ro, err) < 0)
		return -1;
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "virtiofs");
	share_root_json(p, j);
	kv_json_map_close(j);
	p->rootfs_json = kv_json_finish_dup(j, NULL, err);
	return p->rootfs_json ? 0 : -1;
}

/* ------------------------------------------------------------ image layers */

#define EROFS_SUPER_OFFSET 1024
#define EROFS_SUPER_MAGIC  0xE0F5E1E2u

/* Entry i of the layers annotation: an erofs image, a regular file. */
static int layer_check(size_t i, const char *path, uint64_t *size, struct kv_err **err)
{
	const char *what = IMAGE_LAYERS_ANNOTATION;
	if (share_path_ok(what, path, err) < 0)
		return -1;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0)
		return kv_err_make(err, errno, "annotation %s: layer %zu (%s)", what, i, path);
	uint32_t magic = 0;
	if (!S_ISREG(sb.st_mode) ||
	    pread(fd, &magic, sizeof(magic), EROFS_SUPER_OFFSET) != (ssize_t)sizeof(magic) ||
	    magic != EROFS_SUPER_MAGIC)
		return kv_err_plain(
		    err, EINVAL,
		    "annotation %s: layer %zu (%s) is not an erofs image (kvrun image "
		    "bundle makes these)",
		    what, i, path);
	if ((uint64_t)sb.st_size > VMM_PMEM_WINDOW_MAX)
		return kv_err_plain(err, EFBIG, "annotation %s: layer %zu (%s) is over 64 GiB",
				    what, i, path);
	*size = (uint64_t)sb.st_size;
	return 0;
}

/* The layers annotation, checked here (before a VM boots), into the plan. */
static int layers_read(struct prep *x, const char *value, struct kv_err **err)
{
	struct rootfs_plan *p = x->p;
	const char *what = IMAGE_LAYERS_ANNOTATION;
	cleanup_free char *list = kv_strdup(value);
	for (char *save = NULL, *e = strtok_r(list, ",", &save); e;
	     e = strtok_r(NULL, ",", &save)) {
		if (p->n_layers == VM_LAYERS_MAX)
			return kv_err_plain(err, E2BIG,
					    "annotation %s: more than %d layers (a VM takes %d; "
					    "kvrun image bundle flattens the lowest ones)",
					    what, VM_LAYERS_MAX, VM_LAYERS_MAX);
		char *path = e[0] == '/' ? kv_strdup(e) : kv_asprintf("%s/%s", x->bundle, e);
		p->layers = realloc(p->layers, (p->n_layers + 1) * sizeof(char *));
		if (!p->layers)
			abort();
		p->layers[p->n_layers] = path;
		uint64_t size = 0;
		if (layer_check(p->n_layers, path, &size, err) < 0)
			return -1;
		p->layer_dev[p->n_layers] =
		    (unsigned)p->n_layers + 1; /* a member's: slots_attach */
		p->layer_window[p->n_layers++] = vm_layer_window(size);
	}
	if (!p->n_layers)
		return kv_err_plain(err, EINVAL, "annotation %s: no layers", what);
	return 0;
}

/* The sandbox's POD_LAYER_SLOTS_ANNOTATION: "COUNT" or "COUNT:SIZE". */
static int slots_read(struct rootfs_plan *p, const char *value, struct kv_err **err)
{
	const char *what = POD_LAYER_SLOTS_ANNOTATION;
	if (!p->shared) {
		/* A pod's annotations may reach its members too: theirs mean nothing. */
		kv_debug("annotation %s: ignored (this container joins a pod's VM)", what);
		return 0;
	}
	char *end = NULL;
	errno = 0;
	unsigned long n = strtoul(value, &end, 10);
	uint64_t size = POD_SLOT_WINDOW_DEFAULT;
	unsigned room = VM_LAYERS_MAX - (unsigned)p->n_layers;
	if (end == value || errno || (*end && (*end != ':' || kv_parse_size(end + 1, &size) < 0)) ||
	    n == 0 || n > room || size == 0 || size > VMM_PMEM_WINDOW_MAX)
		return kv_err_plain(err, EINVAL,
				    "annotation %s: \"%s\": want COUNT or COUNT:SIZE, COUNT 1 to "
				    "%u (a VM takes %d layers, %zu are this container's own), SIZE "
				    "up to 64G",
				    what, value, room, VM_LAYERS_MAX, p->n_layers);
	p->n_slots = (unsigned)n;
	p->slot_window = vm_layer_window(size);
	return 0;
}

/* The overlay of the plan's layers (pmem devices, erofs with DAX) under the
 * root's share (the owner's "rootfs", a member's live share), or under a
 * tmpfs in the guest where the root is read-only. */
static int layers_json(struct rootfs_plan *p, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "overlay");
	kv_json_key(j, "layers");
	kv_json_array_open(j);
	for (size_t i = 0; i < p->n_layers; i++) {
		cleanup_free char *dev = kv_asprintf("/dev/pmem%u", p->layer_dev[i]);
		kv_json_map_open(j);
		kv_json_kstr(j, "device", dev);
		kv_json_kstr(j, "fstype", "erofs");
		kv_json_kstr(j, "options", "dax");
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
	if (!p->root_ro) { /* a read-only root: a tmpfs upper in the guest, remounted read-only */
		kv_json_key(j, "upper");
		kv_json_map_open(j);
		if (p->upper_path)
			kv_json_kstr(j, "path", p->upper_path);
		else
			share_root_json(p, j);
		kv_json_map_close(j);
	}
	kv_json_map_close(j);
	free(p->rootfs_json);
	p->rootfs_json = kv_json_finish_dup(j, NULL, err);
	return p->rootfs_json ? 0 : -1;
}

/* The root as the layers' overlay: the owner's upper on its share "rootfs",
 * a member's on the live share <prefix>r (its devices: slots_attach). */
static int layers_rootfs(struct prep *x, const char *rootfs, bool ro, struct kv_err **err)
{
	struct rootfs_plan *p = x->p;
	if (p->shared) {
		if (share_root(p, rootfs, ro, err) < 0)
			return -1;
	} else {
		p->root_ro = ro;
		if (!ro) { /* the upper's share; a read-only root has none */
			char *name = kv_asprintf("%sr", x->prefix);
			p->upper_path = kv_asprintf("%s/%s/%s", AGENT_SHARED_DIR, LIVE_TAG, name);
			share_add(&p->live, &p->n_live, name, rootfs, false);
		}
	}
	return layers_json(p, err);
}

/* root.path as the live share <prefix>r, a directory the agent bind-mounts. */
static int live_rootfs(struct prep *x, const char *rootfs, struct rootfs_plan *p,
		       struct kv_err **err)
{
	char *name = kv_asprintf("%sr", x->prefix);
	cleanup_free char *path = kv_asprintf("%s/%s/%s", AGENT_SHARED_DIR, LIVE_TAG, name);
	share_add(&p->live, &p->n_live, name, rootfs, x->cfg->root->readonly);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "dir");
	kv_json_kstr(j, "path", path);
	kv_json_map_close(j);
	p->rootfs_json = kv_json_finish_dup(j, NULL, err);
	return p->rootfs_json ? 0 : -1;
}

/* ------------------------------------------------- read-only root's targets */

/* Whether dest lies beneath (or is) mount j's destination, an earlier mount. */
static bool dest_beneath(const char *dest, const char *earlier)
{
	size_t n = strlen(earlier);
	while (n > 1 && earlier[n - 1] == '/')
		n--;
	if (n == 1 && earlier[0] == '/')
		return true;
	return strncmp(dest, earlier, n) == 0 && (dest[n] == '/' || dest[n] == '\0');
}

/*
 * Create `path` (absolute, in the container) under the root directory fd:
 * missing directories, and the last component as an empty file when
 * `file`. Never follows a symlink on the host: a component that is one
 * (or not a directory) ends the walk, and the agent resolves it in the
 * guest as before. Best effort: what cannot be made is left to the agent.
 */
static void target_make(int rootfd, const char *path, bool file)
{
	cleanup_free char *copy = kv_strdup(path);
	cleanup_close int dir = dup(rootfd);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c && dir >= 0; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return;
		bool last = !save || !*save || strspn(save, "/") == strlen(save);
		if (last && file) {
			int fd = openat(dir, c,
					O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd >= 0)
				close(fd);
			return;
		}
		if (mkdirat(dir, c, 0755) < 0 && errno != EEXIST) {
			kv_debug("root.readonly: mkdir %s (in %s): %s", c, path, strerror(errno));
			return;
		}
		int next = openat(dir, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dir);
		dir = next;
	}
}

/*
 * A read-only root is read-only on the host too, so the guest cannot make
 * the mount targets the image lacks (runc makes them in the rootfs before
 * it remounts it read-only). The runtime makes them here, on the host, as
 * runc would: each mount's destination unless an earlier mount holds it
 * (the guest makes /dev/pts in its /dev tmpfs), and process.cwd.
 */
static void rootfs_targets_make(const struct oci_config *cfg, const char *rootfs,
				const char *bundle)
{
	cleanup_close int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct oci_mount *m = &cfg->mounts[i];
		bool held = false;
		for (size_t j = 0; j < i && !held; j++)
			held = dest_beneath(m->destination, cfg->mounts[j].destination);
		if (held)
			continue;
		struct stat sb;
		bool file = false;
		if (oci_mount_is_bind(m) && m->source) {
			cleanup_free char *src = m->source[0] == '/'
						     ? kv_strdup(m->source)
						     : kv_asprintf("%s/%s", bundle, m->source);
			file = stat(src, &sb) == 0 && !S_ISDIR(sb.st_mode);
		}
		target_make(rootfd, m->destination, file);
	}
	if (cfg->process && cfg->process->cwd)
		target_make(rootfd, cfg->process->cwd, false);
}

/*
 * The agent's spec of the container, its seccomp filter compiled here with
 * the agent's own code (agent_seccomp_guest_bpf) and sent as BPF: the guest
 * loads it with one seccomp(2) call instead of building it with libseccomp,
 * which its emulated kernel makes slow on PVM hosts (tests/bench/seccomp.sh).
 * A bad profile is refused here, before a VM boots.
 */
static int agent_spec(struct oci_config *view, struct rootfs_plan *p, struct kv_err **err)
{
	const struct oci_linux *l = view->linux_;
	if (!l || !l->seccomp)
		return oci_config_to_agent_string(view, &p->spec_json, err);
	cleanup_free char *b64 = NULL;
	if (agent_seccomp_guest_bpf(l->seccomp, &b64, err) < 0)
		return -1;
	struct oci_linux lview = *l;
	struct oci_seccomp sc_view = *l->seccomp;
	sc_view.kvrun_bpf = b64;
	lview.seccomp = &sc_view;
	view->linux_ = &lview;
	return oci_config_to_agent_string(view, &p->spec_json, err);
}

static int prep_run(struct prep *x, const char *rootfs, struct rootfs_plan *p, struct kv_err **err)
{
	for (size_t i = 0; i < x->cfg->n_mounts; i++)
		if (prep_mount(x, i, err) < 0)
			return -1;
	bool ro = x->cfg->root && x->cfg->root->readonly;
	const char *layers = oci_annotation(x->cfg, IMAGE_LAYERS_ANNOTATION);
	if (layers && layers_read(x, layers, err) < 0)
		return -1;
	const char *slots = oci_annotation(x->cfg, POD_LAYER_SLOTS_ANNOTATION);
	if (slots && slots_read(p, slots, err) < 0)
		return -1;
	if (layers	? layers_rootfs(x, rootfs, ro, err) < 0
	    : p->shared ? share_rootfs(p, rootfs, ro, err) < 0
			: live_rootfs(x, rootfs, p, err) < 0)
		return -1;
	struct oci_config view = *x->cfg;
	view.mounts = x->mounts;
	view.n_mounts = x->n;
	/* Whatever the agent would refuse after the VM booted, refused now,
	 * before anything is made for it (a read-only root's mount targets, a
	 * pod's live shares). */
	if (agent_spec(&view, p, err) < 0 ||
	    agent_spec_check(p->spec_json, p->rootfs_json, err) < 0)
		return -1;
	if (ro && !layers)
		rootfs_targets_make(x->cfg, rootfs, x->bundle);
	return 0;
}

int rootfs_prepare(const char *state_dir, const struct oci_config *cfg, const char *rootfs,
		   const char *bundle, struct rootfs_plan *p, struct kv_err **err)
{
	struct prep x = {.state_dir = state_dir, .bundle = bundle, .cfg = cfg, .p = p};
	x.mounts = kv_malloc0((cfg->n_mounts + 1) * sizeof(*x.mounts));
	x.owned = kv_malloc0((cfg->n_mounts + 1) * sizeof(char *));
	uint8_t rnd[4];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return kv_err_make(err, errno, "getrandom");
	snprintf(x.prefix, sizeof(x.prefix), "%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2], rnd[3]);
	int r = prep_run(&x, rootfs, p, err);
	for (size_t i = 0; i < cfg->n_mounts; i++)
		free(x.owned[i]);
	free(x.owned);
	free(x.mounts);
	return r;
}

/* ------------------------------------------------------------ live shares */

#define LIVE_RECORD "live-shares"

static int live_attach_one(const struct plan_share *sh, const char *api_sock, struct kv_err **err)
{
	cleanup_close int fd = open(sh->path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "share %s", sh->path);
	if (vmm_api_fs_add(api_sock, LIVE_TAG, sh->name, fd, sh->ro, err) < 0) {
		if (*err && (*err)->errnum == ENOSPC)
			return kv_err_wrap(
			    err,
			    "share %s with the pod's VM: a VM takes at most %d live "
			    "shares (one per joining container plus one per bind mount; "
			    "kvrun-vmm's VMM_FS_LIVE_MAX)",
			    sh->path, VMM_FS_LIVE_MAX);
		return kv_err_wrap(err, "share %s with the pod's VM", sh->path);
	}
	return 0;
}

int live_attach(const struct rootfs_plan *p, const char *api_sock, const char *state_dir,
		struct kv_err **err)
{
	cleanup_free char *rec = kv_asprintf("%s/%s", state_dir, LIVE_RECORD);
	cleanup_fclose FILE *f = fopen(rec, "we");
	if (!f)
		return kv_err_make(err, errno, "create %s", rec);
	for (size_t i = 0; i < p->n_live; i++) {
		/* Recorded first: a share the VMM took is removed with the rest. */
		fprintf(f, "%s\n", p->live[i].name);
		fflush(f);
		if (live_attach_one(&p->live[i], api_sock, err) < 0) {
			live_detach(api_sock, state_dir);
			return -1;
		}
	}
	return 0;
}

void live_detach(const char *api_sock, const char *state_dir)
{
	cleanup_free char *rec = kv_asprintf("%s/%s", state_dir, LIVE_RECORD);
	cleanup_free char *text = NULL;
	if (kv_read_file(rec, 1 << 20, &text, NULL, NULL) < 0)
		return;
	for (char *save = NULL, *n = strtok_r(text, "\n", &save); n;
	     n = strtok_r(NULL, "\n", &save)) {
		struct kv_err *e = NULL;
		if (vmm_api_fs_remove(api_sock, LIVE_TAG, n, &e) < 0 && e->errnum != ENOENT)
			kv_debug("remove live share %s: %s", n, e->msg);
		kv_err_free(e);
	}
	unlink(rec);
}

/* ------------------------------------------------------- a pod's layer slots */

/* In the sandbox's directory: the slots, one "DEVICE WINDOW" line each, and
 * one claim file per slot taken (its member's id). In the member's: the
 * devices it claimed, one a line (recorded before each claim). */
#define SLOTS_TABLE  "layer-slots"
#define SLOTS_RECORD "layer-claims"

static char *slot_claim_path(const char *sbdir, unsigned dev)
{
	return kv_asprintf("%s/slot-%u.claim", sbdir, dev);
}

int slots_prepare(const struct rootfs_plan *p, const char *sbdir, struct kv_err **err)
{
	if (!p->n_slots)
		return 0;
	if (vm_slot_file_make(sbdir, err) < 0)
		return -1;
	cleanup_free char *table = kv_malloc0(32 * (size_t)p->n_slots + 1);
	size_t len = 0;
	for (unsigned k = 0; k < p->n_slots; k++)
		len += (size_t)sprintf(table + len, "%u %llu\n", (unsigned)p->n_layers + 1 + k,
				       (unsigned long long)p->slot_window);
	cleanup_free char *path = kv_asprintf("%s/%s", sbdir, SLOTS_TABLE);
	return kv_write_file_volatile(path, table, len, 0644, err);
}

/* Whether the claim of dev is id's (its content). */
static bool slot_claimed_by(const char *sbdir, unsigned dev, const char *id)
{
	cleanup_free char *path = slot_claim_path(sbdir, dev), *text = NULL;
	size_t len = 0;
	return kv_read_file(path, 1024, &text, &len, NULL) == 0 && len == strlen(id) &&
	       memcmp(text, id, len) == 0;
}

/* Claim a free slot of the table whose window holds size; its device, or -1. */
static int slot_claim(const char *sbdir, const char *table, uint64_t size, const char *id,
		      FILE *rec, struct kv_err **err)
{
	const char *line = table;
	while (line && *line) {
		unsigned dev;
		unsigned long long window;
		if (sscanf(line, "%u %llu", &dev, &window) == 2 && dev < VMM_MAX_DISKS &&
		    window >= size) {
			/* Recorded first: released with the rest. */
			if (fprintf(rec, "%u\n", dev) < 0 || fflush(rec) != 0)
				return kv_err_make(err, errno, "record the claim of slot %u", dev);
			/* The claim appears whole or not at all: written aside, then
			 * linked into place (EEXIST: another member's). */
			cleanup_free char *path = slot_claim_path(sbdir, dev);
			cleanup_free char *tmp = kv_asprintf("%s.%s", path, id);
			if (kv_write_file_volatile(tmp, id, strlen(id), 0644, err) < 0)
				return -1;
			int r = link(tmp, path);
			int e = errno;
			unlink(tmp);
			if (r == 0)
				return (int)dev;
			if (e != EEXIST)
				return kv_err_make(err, e, "claim %s", path);
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return kv_err_plain(err, ENOSPC, "no free slot holds %llu bytes", (unsigned long long)size);
}

int slots_attach(struct rootfs_plan *p, const char *id, const char *api_sock, const char *sbdir,
		 const char *state_dir, struct kv_err **err)
{
	if (p->shared || !p->n_layers)
		return 0;
	const char *what = IMAGE_LAYERS_ANNOTATION;
	cleanup_free char *tpath = kv_asprintf("%s/%s", sbdir, SLOTS_TABLE), *table = NULL;
	cleanup_err struct kv_err *terr = NULL;
	if (kv_read_file(tpath, 4096, &table, NULL, &terr) < 0 && terr->errnum != ENOENT)
		return kv_err_plain(err, terr->errnum, "annotation %s: the pod's slot table: %s",
				    what, terr->msg);
	if (!table)
		return kv_err_plain(err, EINVAL,
				    "annotation %s: this container joins a pod's VM, whose sandbox "
				    "reserved no slots for image layers (give the sandbox the "
				    "annotation %s=COUNT[:SIZE])",
				    what, POD_LAYER_SLOTS_ANNOTATION);
	cleanup_free char *rpath = kv_asprintf("%s/%s", state_dir, SLOTS_RECORD);
	cleanup_fclose FILE *rec = fopen(rpath, "we");
	if (!rec)
		return kv_err_make(err, errno, "create %s", rpath);
	for (size_t i = 0; i < p->n_layers; i++) {
		struct stat st;
		cleanup_close int fd = open(p->layers[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int dev = fd < 0 || fstat(fd, &st) < 0
			      ? kv_err_make(err, errno, "layer %zu (%s)", i, p->layers[i])
			      : slot_claim(sbdir, table, (uint64_t)st.st_size, id, rec, err);
		if (dev < 0 || vmm_api_pmem_bind(api_sock, (unsigned)dev, fd, err) < 0) {
			kv_err_wrap(err,
				    "annotation %s: layer %zu (%s) into a slot of the pod's VM",
				    what, i, p->layers[i]);
			slots_release(id, api_sock, sbdir, state_dir);
			return -1;
		}
		p->layer_dev[i] = (unsigned)dev;
	}
	return layers_json(p, err);
}

void slots_release(const char *id, const char *api_sock, const char *sbdir, const char *state_dir)
{
	cleanup_free char *rpath = kv_asprintf("%s/%s", state_dir, SLOTS_RECORD), *text = NULL;
	if (kv_read_file(rpath, 4096, &text, NULL, NULL) < 0)
		return;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned dev = (unsigned)strtoul(l, NULL, 10);
		if (!slot_claimed_by(sbdir, dev, id))
			continue; /* recorded, then not taken (another member's) */
		struct kv_err *e = NULL;
		/* Zeroes: the layer's file is no longer mapped by the VMM. */
		if (vmm_api_pmem_bind(api_sock, dev, -1, &e) < 0)
			kv_debug("slot pmem%u: %s", dev, e->msg);
		kv_err_free(e);
		cleanup_free char *claim = slot_claim_path(sbdir, dev);
		unlink(claim);
	}
	unlink(rpath);
}
