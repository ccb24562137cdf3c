/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container root filesystems and bind mounts for the microVM.
 *
 * A container with a VM of its own (or a pod's sandbox) gets them through
 * virtio-fs: root.path is the share "rootfs", read-write, so writes land in
 * that directory on the host; each bind source (volumes, Docker's
 * /etc/hosts and /etc/resolv.conf, a file or a directory) is the entry b<i>
 * of the share "binds", which the agent mounts at AGENT_SHARED_DIR/binds
 * before the create, and the spec's bind mount takes its source from there,
 * with its options (ro applies, and the share entry is read-only too).
 *
 * A container that joins a pod's VM cannot get a new device (no hotplug
 * yet): its root.path is packed into a read-only erofs image under the
 * state directory, written into one of the VM's spare pmem slots, and
 * stacked under a tmpfs with overlayfs, so its writes stay in the VM; its
 * bind sources are copied into a second image and bind-mounted from that
 * layer's mount (the agent mounts overlay layer i at AGENT_LAYER_DIR/l<i>
 * before it opens bind sources, see agent/mounts.c): snapshots taken at
 * create time.
 *
 * Either way, other mounts must be ones the agent makes itself.
 */
#include "runtime/backend.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

/* Where the agent mounts overlay layer i during a container's setup. */
#define AGENT_LAYER_DIR "/run/kvrun/mnt"
/* The layer index of the binds image: right above the root image. */
#define BINDS_LAYER 1
/* Where the agent's mount_shared puts a share (agent/ops.c). */
#define AGENT_SHARED_DIR "/run/kvrun/shared"
#define ROOTFS_TAG	 "rootfs"
#define BINDS_TAG	 "binds"

static const char *const agent_mount_types[] = {"proc",	  "sysfs",  "tmpfs",   "devpts",
						"mqueue", "cgroup", "cgroup2", NULL};

void rootfs_plan_free(struct rootfs_plan *p)
{
	for (size_t i = 0; i < p->n_fs; i++)
		free(p->fs_args[i]);
	free(p->fs_args);
	for (size_t i = 0; i < KV_ARRAY_SIZE(p->images); i++)
		free(p->images[i]);
	free(p->spec_json);
	free(p->rootfs_json);
	memset(p, 0, sizeof(*p));
}

/* Run a program (no shell), its output kept for the error message. */
static int run_tool(char *const argv[], const char *log, struct kv_err **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return kv_err_make(err, r, "run %s", argv[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return kv_err_make(err, errno, "wait for %s", argv[0]);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	cleanup_free char *out = NULL;
	size_t len = 0;
	if (kv_read_file(log, 4096, &out, &len, NULL) < 0)
		out = kv_strdup("");
	while (len && out[len - 1] == '\n')
		out[--len] = '\0';
	return kv_err_plain(err, EIO, "%s failed (%s %d): %s", argv[0],
			    WIFEXITED(st) ? "exit status" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), out);
}

static int mkfs_erofs(const char *state_dir, const char *image, const char *src,
		      struct kv_err **err)
{
	cleanup_free char *log = kv_asprintf("%s/mkfs.log", state_dir);
	char *argv[] = {"mkfs.erofs", "--quiet", (char *)image, (char *)src, NULL};
	int r = run_tool(argv, log, err);
	unlink(log);
	if (r < 0)
		return kv_err_wrap(err, "pack %s into %s", src, image);
	return 0;
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
	    "mounts; bind mounts are copied in)",
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

/* Copy one bind source to staging/<destination>. */
static int stage_bind(const char *state_dir, const char *staging, const struct oci_mount *m,
		      size_t i, const char *src, struct kv_err **err)
{
	struct stat sb;
	if (check_bind_source(i, src, "copied into the microVM (needs virtio-fs)", &sb, err) < 0)
		return -1;
	if (strcmp(m->destination, "/") == 0)
		return kv_err_plain(err, EINVAL, "mounts[%zu]: a bind mount on / is not supported",
				    i);
	cleanup_free char *dst = kv_asprintf("%s%s", staging, m->destination);
	cleanup_free char *parent = kv_strdup(dst);
	*strrchr(parent, '/') = '\0';
	if (kv_mkdir_p(parent, 0755, err) < 0)
		return -1;
	if (access(dst, F_OK) == 0)
		return kv_err_plain(err, EEXIST, "mounts[%zu]: a second bind mount on %s", i,
				    m->destination);
	cleanup_free char *log = kv_asprintf("%s/cp.log", state_dir);
	cleanup_free char *from = S_ISDIR(sb.st_mode) ? kv_asprintf("%s/.", src) : kv_strdup(src);
	if (S_ISDIR(sb.st_mode) && mkdir(dst, 0755) < 0)
		return kv_err_make(err, errno, "mkdir %s", dst);
	char *argv[] = {"cp", "-a", "--no-preserve=links", from, dst, NULL};
	int r = run_tool(argv, log, err);
	unlink(log);
	return r < 0 ? kv_err_wrap(err, "mounts[%zu]: copy bind source", i) : 0;
}

struct prep {
	const char *state_dir, *bundle;
	const struct oci_config *cfg;
	struct rootfs_plan *p;
	struct oci_mount *mounts; /* what the agent gets */
	size_t n;
	char **owned; /* rewritten sources */
	char *staging;
};

static void fs_arg(struct rootfs_plan *p, char *arg)
{
	p->fs_args = realloc(p->fs_args, (p->n_fs + 1) * sizeof(char *));
	if (!p->fs_args)
		abort();
	p->fs_args[p->n_fs++] = arg;
}

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

/* A bind source as the entry b<i> of the "binds" share. */
static int share_bind(struct prep *x, size_t i, const char *src, struct kv_err **err)
{
	const struct oci_mount *m = &x->cfg->mounts[i];
	struct stat sb;
	if (check_bind_source(i, src, "shared with the microVM", &sb, err) < 0)
		return -1;
	if (share_path_ok("bind source", src, err) < 0)
		return -1;
	fs_arg(x->p, kv_asprintf("%s/b%zu=%s,%s", BINDS_TAG, i, src, mount_ro(m) ? "ro" : "rw"));
	x->p->mount_binds = true;
	struct oci_mount *out = &x->mounts[x->n++];
	*out = *m;
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
	if (x->p->shared)
		return share_bind(x, i, src, err);
	if (!x->staging) {
		x->staging = kv_asprintf("%s/binds.staging", x->state_dir);
		if (mkdir(x->staging, 0755) < 0)
			return kv_err_make(err, errno, "mkdir %s", x->staging);
	}
	if (stage_bind(x->state_dir, x->staging, m, i, src, err) < 0)
		return -1;
	struct oci_mount *out = &x->mounts[x->n++];
	*out = *m;
	out->source = x->owned[i] =
	    kv_asprintf("%s/l%d%s", AGENT_LAYER_DIR, BINDS_LAYER, m->destination);
	return 0;
}

static void remove_staging(const char *staging)
{
	if (!staging)
		return;
	cleanup_free char *log = kv_asprintf("%s.log", staging);
	char *argv[] = {"rm", "-rf", "--one-file-system", (char *)staging, NULL};
	struct kv_err *e = NULL;
	if (run_tool(argv, log, &e) < 0) {
		kv_warn("%s", e->msg);
		kv_err_free(e);
	}
	unlink(log);
}

static int share_rootfs(struct rootfs_plan *p, const char *rootfs, struct kv_err **err)
{
	if (share_path_ok("root.path", rootfs, err) < 0)
		return -1;
	cleanup_free char *dax =
	    p->dax_window ? kv_asprintf(",dax=%lluM", (unsigned long long)(p->dax_window >> 20))
			  : kv_strdup("");
	fs_arg(p, kv_asprintf("%s=%s,rw%s", ROOTFS_TAG, rootfs, dax));
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "virtiofs");
	kv_json_kstr(j, "tag", ROOTFS_TAG);
	if (p->dax_window)
		kv_json_kstr(j, "options", "dax");
	kv_json_map_close(j);
	p->rootfs_json = kv_json_finish_dup(j, NULL, err);
	return p->rootfs_json ? 0 : -1;
}

/* root.path as an erofs image, and the binds staged so far as another. */
static int pack_images(struct prep *x, const char *rootfs, struct rootfs_plan *p,
		       struct kv_err **err)
{
	p->images[0] = kv_asprintf("%s/rootfs.erofs", x->state_dir);
	p->n_images = 1;
	if (mkfs_erofs(x->state_dir, p->images[0], rootfs, err) < 0)
		return -1;
	if (x->staging) {
		p->images[1] = kv_asprintf("%s/binds.erofs", x->state_dir);
		p->n_images = 2;
		if (mkfs_erofs(x->state_dir, p->images[1], x->staging, err) < 0)
			return -1;
	}
	return 0;
}

static int prep_run(struct prep *x, const char *rootfs, struct rootfs_plan *p, struct kv_err **err)
{
	for (size_t i = 0; i < x->cfg->n_mounts; i++)
		if (prep_mount(x, i, err) < 0)
			return -1;
	if (p->shared ? share_rootfs(p, rootfs, err) < 0 : pack_images(x, rootfs, p, err) < 0)
		return -1;
	struct oci_config view = *x->cfg;
	view.mounts = x->mounts;
	view.n_mounts = x->n;
	return oci_config_to_agent_string(&view, &p->spec_json, err);
}

int rootfs_prepare(const char *state_dir, const struct oci_config *cfg, const char *rootfs,
		   const char *bundle, struct rootfs_plan *p, struct kv_err **err)
{
	struct prep x = {.state_dir = state_dir, .bundle = bundle, .cfg = cfg, .p = p};
	x.mounts = kv_malloc0((cfg->n_mounts + 1) * sizeof(*x.mounts));
	x.owned = kv_malloc0((cfg->n_mounts + 1) * sizeof(char *));
	int r = prep_run(&x, rootfs, p, err);
	remove_staging(x.staging);
	for (size_t i = 0; i < cfg->n_mounts; i++)
		free(x.owned[i]);
	free(x.owned);
	free(x.mounts);
	free(x.staging);
	return r;
}

int rootfs_agent_json(struct rootfs_plan *p, const unsigned *devs, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "overlay");
	kv_json_key(j, "layers");
	kv_json_array_open(j);
	for (size_t i = 0; i < p->n_images; i++) {
		cleanup_free char *dev = kv_asprintf("/dev/pmem%u", devs[i]);
		kv_json_map_open(j);
		kv_json_kstr(j, "device", dev);
		kv_json_kstr(j, "fstype", "erofs");
		/* DAX: the guest reads the host's page cache, no copy of its own. */
		kv_json_kstr(j, "options", "ro,dax");
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
	kv_json_map_close(j);
	char *text = kv_json_finish_dup(j, NULL, err);
	if (!text)
		return -1;
	free(p->rootfs_json);
	p->rootfs_json = text;
	return 0;
}

/* ------------------------------------------------------------- pod slots */

#define SLOTS_INFO "slots"

int slots_create(const char *sandbox_dir, unsigned n, uint64_t size, unsigned first_dev,
		 struct kv_err **err)
{
	for (unsigned i = 0; i < n; i++) {
		cleanup_free char *path = kv_asprintf("%s/slot%u.img", sandbox_dir, i);
		cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
			return kv_err_make(err, errno, "pod slot %s", path);
	}
	cleanup_free char *info = kv_asprintf("%s/%s", sandbox_dir, SLOTS_INFO);
	cleanup_free char *text =
	    kv_asprintf("%u %u %llu\n", first_dev, n, (unsigned long long)size);
	return kv_write_file_atomic(info, text, strlen(text), 0600, err);
}

static int slot_fill(const char *slot, const char *image, uint64_t slot_size, struct kv_err **err)
{
	cleanup_close int in = open(image, O_RDONLY | O_CLOEXEC);
	cleanup_close int out = open(slot, O_WRONLY | O_CLOEXEC);
	struct stat sb;
	if (in < 0 || out < 0 || fstat(in, &sb) < 0)
		return kv_err_make(err, errno, "pod slot %s", slot);
	if ((uint64_t)sb.st_size > slot_size)
		return kv_err_plain(err, EFBIG,
				    "image %s (%lld bytes) is larger than a pod slot (%llu bytes): "
				    "raise pod_slot_size in the kvrun config",
				    image, (long long)sb.st_size, (unsigned long long)slot_size);
	/* In place: the VM maps this file; its size must never change. */
	char buf[65536];
	off_t off = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kv_err_make(err, errno, "read %s", image);
		if (r == 0)
			return 0;
		if (pwrite(out, buf, (size_t)r, off) != r)
			return kv_err_make(err, errno, "write %s", slot);
		off += r;
	}
}

static int slot_claim(const char *dir, unsigned count, const char *owner, unsigned *slot,
		      struct kv_err **err)
{
	for (unsigned i = 0; i < count; i++) {
		cleanup_free char *path = kv_asprintf("%s/slot%u.owner", dir, i);
		cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0 || kv_write_all(fd, owner, strlen(owner)) < 0)
			return kv_err_make(err, errno, "pod slot %s", path);
		*slot = i;
		return 0;
	}
	return kv_err_plain(err, ENOSPC,
			    "the pod's VM has no free slot for another container image (%u slots; "
			    "raise pod_slots in the kvrun config)",
			    count);
}

int slots_take(const char *sandbox_dir, const char *owner, char *const *images, size_t n,
	       unsigned *devs, struct kv_err **err)
{
	cleanup_free char *info = kv_asprintf("%s/%s", sandbox_dir, SLOTS_INFO);
	cleanup_free char *text = NULL;
	unsigned first, count;
	unsigned long long size;
	if (kv_read_file(info, 256, &text, NULL, NULL) < 0 ||
	    sscanf(text, "%u %u %llu", &first, &count, &size) != 3)
		return kv_err_plain(err, ENOENT,
				    "the sandbox's VM was started without pod slots (its container "
				    "has no io.kubernetes.cri.container-type=sandbox annotation)");
	cleanup_close int lock = open(info, O_RDONLY | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX) < 0)
		return kv_err_make(err, errno, "lock %s", info);
	for (size_t k = 0; k < n; k++) {
		unsigned slot = 0;
		if (slot_claim(sandbox_dir, count, owner, &slot, err) < 0)
			return -1;
		cleanup_free char *path = kv_asprintf("%s/slot%u.img", sandbox_dir, slot);
		if (slot_fill(path, images[k], size, err) < 0)
			return -1;
		devs[k] = first + slot;
	}
	return 0;
}

void slots_release(const char *sandbox_dir, const char *owner)
{
	for (unsigned i = 0; i < 64; i++) {
		cleanup_free char *path = kv_asprintf("%s/slot%u.owner", sandbox_dir, i);
		cleanup_free char *text = NULL;
		if (kv_read_file(path, 512, &text, NULL, NULL) < 0)
			continue;
		if (strcmp(text, owner) == 0)
			unlink(path);
	}
}
