/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `kvrun create`: validate the id, the bundle and config.json completely,
 * claim <root>/<id> with mkdir (atomic: a second create of the same id
 * fails there), record the config and the state, then hand over to the
 * microVM backend (runtime_sandbox_start). Any failure after the mkdir
 * removes the directory again, so a failed create leaves nothing behind.
 */
#include "runtime/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

struct create_ctx {
	const struct kvrun_globals *g;
	const char *id;
	const struct create_opts *o;
	char *bundle, *config_path, *config_text, *rootfs, *dir;
	size_t config_len;
	struct oci_config *cfg;
	struct oci_state *st;
	int dir_fd;
	bool dir_created;
};

static void create_ctx_release(struct create_ctx *x)
{
	free(x->bundle);
	free(x->config_path);
	free(x->config_text);
	free(x->rootfs);
	free(x->dir);
	oci_config_free(x->cfg);
	oci_state_free(x->st);
	if (x->dir_fd >= 0)
		close(x->dir_fd);
}

static int check_dir(const char *what, const char *path, struct kv_err **err)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return kv_err_make(err, errno, "%s %s", what, path);
	if (!S_ISDIR(sb.st_mode))
		return kv_err_plain(err, ENOTDIR, "%s %s: not a directory", what, path);
	return 0;
}

static int check_terminal(struct create_ctx *x, struct kv_err **err)
{
	/* runc's rules, in its words. */
	bool tty = x->cfg->process->terminal;
	if (tty && x->o->detach && !x->o->console_socket)
		return kv_err_plain(err, EINVAL,
				    "cannot allocate tty if kvrun will detach without setting "
				    "console socket");
	if (!tty && x->o->console_socket)
		return kv_err_plain(err, EINVAL,
				    "cannot use console socket if kvrun will not detach or "
				    "allocate tty");
	if (x->o->console_socket) {
		struct stat sb;
		if (stat(x->o->console_socket, &sb) < 0)
			return kv_err_make(err, errno, "console socket %s", x->o->console_socket);
		if (!S_ISSOCK(sb.st_mode))
			return kv_err_plain(err, ENOTSOCK, "console socket %s: not a socket",
					    x->o->console_socket);
	}
	if (x->o->preserve_fds < 0)
		return kv_err_plain(err, EINVAL, "--preserve-fds must not be negative");
	return 0;
}

/*
 * A bind mount's source is a host path the VM will share: check it now, so
 * a missing volume is a clear error at create rather than a failure inside
 * the guest. Relative sources are relative to the bundle, as in runc.
 */
static int check_bind_sources(struct create_ctx *x, struct kv_err **err)
{
	for (size_t i = 0; i < x->cfg->n_mounts; i++) {
		const struct oci_mount *m = &x->cfg->mounts[i];
		if (!oci_mount_is_bind(m))
			continue;
		if (!m->source || !*m->source)
			return kv_err_plain(err, EINVAL,
					    "%s: mounts[%zu].source: required for a bind mount",
					    x->config_path, i);
		cleanup_free char *src = m->source[0] == '/'
					     ? kv_strdup(m->source)
					     : kv_asprintf("%s/%s", x->bundle, m->source);
		struct stat sb;
		if (stat(src, &sb) < 0)
			return kv_err_make(err, errno, "%s: mounts[%zu].source: %s", x->config_path,
					   i, src);
	}
	return 0;
}

static int load_bundle(struct create_ctx *x, struct kv_err **err)
{
	const char *b = x->o->bundle && *x->o->bundle ? x->o->bundle : ".";
	char real[PATH_MAX];
	if (!realpath(b, real))
		return kv_err_make(err, errno, "bundle %s", b);
	if (check_dir("bundle", real, err) < 0)
		return -1;
	x->bundle = kv_strdup(real);
	x->config_path = kv_asprintf("%s/config.json", x->bundle);
	struct kv_err *e = NULL;
	if (kv_read_file(x->config_path, OCI_CONFIG_MAX_SIZE, &x->config_text, &x->config_len, &e) <
	    0) {
		if (e->errnum != ENOENT)
			return err_pass(err, e);
		kv_err_free(e);
		return kv_err_plain(err, ENOENT, "JSON specification file %s not found",
				    x->config_path);
	}
	if (oci_config_parse(x->config_text, x->config_len, x->config_path, &x->cfg, err) < 0 ||
	    oci_config_check_sysctl(x->cfg, x->config_path, err) < 0)
		return -1;
	const char *rp = x->cfg->root->path;
	x->rootfs = rp[0] == '/' ? kv_strdup(rp) : kv_asprintf("%s/%s", x->bundle, rp);
	if (check_dir("rootfs", x->rootfs, err) < 0 || check_bind_sources(x, err) < 0)
		return -1;
	return check_terminal(x, err);
}

/* The network namespace the spec joins by path, as (dev, ino); false when none. */
static bool spec_netns(const struct oci_config *cfg, struct stat *ns)
{
	const struct oci_linux *l = cfg->linux_;
	for (size_t i = 0; l && i < l->n_namespaces; i++)
		if (l->namespaces[i].type == OCI_NS_NETWORK && l->namespaces[i].path &&
		    *l->namespaces[i].path)
			return stat(l->namespaces[i].path, ns) == 0;
	return false;
}

/*
 * The VM whose shims live in network namespace ns (a container of ours that
 * is not stopped), or NULL. `--network container:X` (Docker, Podman) and a
 * Podman pod's members name the namespace of X's (or the infra container's)
 * pid, which is X's shim: joining X's VM is what shares its network.
 */
static char *vm_of_netns(const char *root, const struct stat *ns)
{
	DIR *d = opendir(root);
	struct dirent *de;
	char *found = NULL;
	while (d && !found && (de = readdir(d))) {
		cleanup_container struct container *c = NULL;
		struct kv_err *e = NULL;
		if (de->d_name[0] == '.' || container_load(root, de->d_name, &c, &e) < 0) {
			kv_err_free(e);
			continue;
		}
		cleanup_free char *path = kv_asprintf("/proc/%d/ns/net", (int)c->pid);
		struct stat st;
		if (c->pid > 0 && c->status != OCI_STATUS_STOPPED && stat(path, &st) == 0 &&
		    st.st_dev == ns->st_dev && st.st_ino == ns->st_ino)
			found = kv_strdup(c->st->sandbox_id);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * Which VM a container lives in. containerd's CRI and CRI-O (Podman's pod
 * members too) say so in annotations; a container whose network namespace
 * is another container's joins that one's VM; a pod's sandbox (pause)
 * container and anything else get a VM of their own.
 */
static char *sandbox_of(const struct kvrun_globals *g, const struct oci_config *cfg, const char *id)
{
	const char *type = oci_annotation(cfg, "io.kubernetes.cri.container-type");
	const char *sb = oci_annotation(cfg, "io.kubernetes.cri.sandbox-id");
	if (!type) {
		type = oci_annotation(cfg, "io.kubernetes.cri-o.ContainerType");
		sb = oci_annotation(cfg, "io.kubernetes.cri-o.SandboxID");
	}
	if (type && strcmp(type, "container") == 0 && sb && *sb &&
	    container_id_validate(sb, NULL) == 0)
		return kv_strdup(sb);
	struct stat ns;
	char *vm = !type && spec_netns(cfg, &ns) ? vm_of_netns(g->root, &ns) : NULL;
	return vm ? vm : kv_strdup(id);
}

/*
 * A create that was killed before it finished (no state.json, or one that
 * still says "creating", and nobody holds the directory's lock: a running
 * create holds it to the end) left a directory that is nobody's container:
 * remove it as delete --force would, so the id can be used again.
 */
static bool abandoned(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool free_ = flock(fd, LOCK_EX | LOCK_NB) == 0, r = false;
	if (free_) {
		cleanup_free char *path = kv_asprintf("%s/state.json", dir);
		cleanup_free char *text = NULL;
		int rr = kv_read_file(path, 1 << 20, &text, NULL, NULL);
		if (rr < 0) {
			r = rr == -ENOENT;
		} else {
			cleanup_yajl_val yajl_val v = kv_json_parse(text, path, NULL);
			const char *key[] = {"status", NULL};
			yajl_val st = v ? yajl_tree_get(v, key, yajl_t_string) : NULL;
			const char *status = st ? YAJL_GET_STRING(st) : NULL;
			r = status && strcmp(status, "creating") == 0;
		}
	}
	close(fd); /* and the lock */
	return r;
}

static int claim_dir(struct create_ctx *x, struct kv_err **err)
{
	if (kv_mkdir_p(x->g->root, 0700, err) < 0)
		return -1;
	x->dir = container_dir(x->g->root, x->id);
	if (mkdir(x->dir, 0711) < 0) {
		if (errno == EEXIST)
			return kv_err_plain(err, EEXIST, "container with id exists: %s", x->id);
		return kv_err_make(err, errno, "mkdir %s", x->dir);
	}
	x->dir_created = true;
	x->dir_fd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dir_fd < 0 || flock(x->dir_fd, LOCK_EX) < 0)
		return kv_err_make(err, errno, "lock %s", x->dir);
	return 0;
}

static int record(struct create_ctx *x, struct kv_err **err)
{
	cleanup_free char *snap = kv_asprintf("%s/config.json", x->dir);
	if (kv_write_file_volatile(snap, x->config_text, x->config_len, 0600, err) < 0)
		return -1;
	struct oci_state *st = kv_malloc0(sizeof(*st));
	x->st = st;
	st->id = kv_strdup(x->id);
	st->oci_version = kv_strdup(x->cfg->oci_version);
	st->bundle = kv_strdup(x->bundle);
	st->rootfs = kv_strdup(x->rootfs);
	st->sandbox_id = sandbox_of(x->g, x->cfg, x->id);
	st->status = OCI_STATUS_CREATING;
	clock_gettime(CLOCK_REALTIME, &st->created);
	const struct oci_map *a = &x->cfg->annotations;
	st->annotations.v = kv_malloc0(a->n * sizeof(*a->v));
	for (size_t i = 0; i < a->n; i++) {
		st->annotations.v[i].key = kv_strdup(a->v[i].key);
		st->annotations.v[i].value = kv_strdup(a->v[i].value);
	}
	st->annotations.n = a->n;
	cleanup_free char *path = kv_asprintf("%s/state.json", x->dir);
	return oci_state_save(path, st, err);
}

static int create_run_hooks(const struct runtime_sandbox_req *req, enum oci_hook_kind kind,
			    pid_t pid, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	oci_state_to_spec_json(req->st, OCI_STATUS_CREATING, pid, j);
	cleanup_free char *state = kv_json_finish_dup(j, NULL, err);
	if (!state)
		return -1;
	return runtime_hooks_run(&req->cfg->hooks, kind, state, err);
}

static int write_pid_file(const char *path, pid_t pid, struct kv_err **err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	return kv_write_file_volatile(path, buf, (size_t)n, 0644, err);
}

/*
 * The shim committed (its VM runs the created process) but the create
 * cannot be recorded (state.json, --pid-file): take it all down as delete
 * would, before runtime_create removes the state directory, or the shim
 * and its VM would run on with nothing left that names them.
 */
static void undo_sandbox(struct create_ctx *x)
{
	cleanup_container struct container *c = NULL;
	struct kv_err *e = NULL;
	if (container_load(x->g->root, x->id, &c, &e) < 0 || runtime_backend_destroy(c, &e) < 0) {
		kv_warn("undo the create of %s: %s", x->id, e->msg);
		kv_err_free(e);
	}
}

static int start_sandbox(struct create_ctx *x, struct kv_err **err)
{
	struct runtime_sandbox_req req = {
	    .g = x->g,
	    .id = x->id,
	    .state_dir = x->dir,
	    .cfg = x->cfg,
	    .st = x->st,
	    .console_socket = x->o->console_socket,
	    .preserve_fds = x->o->preserve_fds,
	    .no_pivot = x->o->no_pivot,
	    .no_new_keyring = x->o->no_new_keyring,
	    .run_hooks = create_run_hooks,
	};
	struct runtime_sandbox_result res = {0};
	if (runtime_sandbox_start(&req, &res, err) < 0)
		return -1;
	x->st->pid = res.pid;
	x->st->pid_start = res.pid_start;
	x->st->status = OCI_STATUS_CREATED;
	cleanup_free char *path = kv_asprintf("%s/state.json", x->dir);
	if (oci_state_save(path, x->st, err) < 0 ||
	    (x->o->pid_file && write_pid_file(x->o->pid_file, res.pid, err) < 0)) {
		undo_sandbox(x);
		return -1;
	}
	return 0;
}

int runtime_create(const struct kvrun_globals *g, const char *id, const struct create_opts *o,
		   struct kv_err **err)
{
	struct create_ctx x = {.g = g, .id = id, .o = o, .dir_fd = -1};
	cleanup_free char *dir = NULL;
	int r = -1;
	if (container_id_validate(id, err) < 0)
		goto out;
	dir = container_dir(g->root, id);
	if (access(dir, F_OK) == 0 && abandoned(dir)) {
		kv_debug("container %s: a create of it was killed half way; replacing it", id);
		struct kv_err *e = NULL;
		if (runtime_delete(g, id, true, &e) < 0) {
			kv_warn("%s", e->msg);
			kv_err_free(e);
		}
	}
	if (access(dir, F_OK) == 0) {
		r = kv_err_plain(err, EEXIST, "container with id exists: %s", id);
		goto out;
	}
	kv_timing_mark("id");
	if (load_bundle(&x, err) < 0)
		goto out;
	kv_timing_mark("bundle");
	if (claim_dir(&x, err) < 0 || record(&x, err) < 0)
		goto out;
	kv_timing_mark("state");
	if (start_sandbox(&x, err) < 0)
		goto out;
	kv_timing_mark("saved");
	r = 0;
out:
	if (r < 0 && x.dir_created) {
		struct kv_err *e = NULL;
		if (container_remove_dir(x.dir, &e) < 0) {
			kv_warn("%s", e->msg);
			kv_err_free(e);
		}
	}
	create_ctx_release(&x);
	return r;
}
