/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2, the guest's only hierarchy: one directory per container under
 * <root>/<parent>/, limits written before the process exists (clone3 puts
 * it straight into the directory), freeze for pause/resume, cgroup.kill,
 * stats, and OOM events from memory.events.
 *
 * linux.cgroupsPath names a path on the host's hierarchy; inside the VM the
 * agent owns the whole tree, so the container's directory is its id.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

static bool is_cgroup2(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

char *cgroup_detect_root(const char *configured)
{
	if (configured && strcmp(configured, "none") == 0)
		return NULL;
	if (configured)
		return is_cgroup2(configured) ? kv_strdup(configured) : NULL;
	if (is_cgroup2("/sys/fs/cgroup"))
		return kv_strdup("/sys/fs/cgroup");
	/* A host in hybrid mode: v2 has no controllers there, but freezing works. */
	if (is_cgroup2("/sys/fs/cgroup/unified"))
		return kv_strdup("/sys/fs/cgroup/unified");
	return NULL;
}

static int cg_write(int dirfd, const char *file, const char *value, const char *field,
		    struct kv_err **err)
{
	cleanup_close int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return kv_err_plain(err, ENOTSUP, "%s: %s not available (controller missing)",
				    field, file);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		return kv_err_make(err, errno, "%s: write %s to %s", field, value, file);
	return 0;
}

/* Enable the controllers the limits need in root and parent (once). */
static void cg_enable_controllers(struct agent *a, const char *parent)
{
	static bool done;
	if (done)
		return;
	done = true;
	cleanup_free char *avail = NULL;
	cleanup_free char *cpath = kv_asprintf("%s/cgroup.controllers", a->cgroup_root);
	struct kv_err *err = NULL;
	if (kv_read_file(cpath, 4096, &avail, NULL, &err) < 0) {
		kv_err_free(err);
		return;
	}
	char want[128] = "";
	static const char *const ctl[] = {"cpu", "cpuset", "memory", "pids"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(ctl); i++) {
		cleanup_free char *pat = kv_asprintf("%s", ctl[i]);
		for (char *s = avail; (s = strstr(s, pat)); s++)
			if ((s == avail || s[-1] == ' ') &&
			    (s[strlen(pat)] == ' ' || s[strlen(pat)] == '\n' || !s[strlen(pat)])) {
				snprintf(want + strlen(want), sizeof(want) - strlen(want), "+%s ",
					 ctl[i]);
				break;
			}
	}
	if (!want[0])
		return;
	const char *dirs[] = {a->cgroup_root, parent};
	for (size_t i = 0; i < 2; i++) {
		cleanup_close int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 && cg_write(fd, "cgroup.subtree_control", want, "cgroup", &err) < 0) {
			kv_log_err(err);
			kv_err_free(err);
			err = NULL;
		}
	}
}

/*
 * OCI's swap is memory+swap; v2's memory.swap.max is swap alone. A guest
 * without swap has no memory.swap.max (no swap accounting): nothing can be
 * swapped out, so any swap limit holds and is dropped. Docker always sends
 * one (2 x memory), sized for its host; runc too skips a missing
 * memory.swap.max (for "max" and "0": Docker asks for no more where its
 * host has no swap accounting).
 */
static int cg_swap(int fd, const struct kv_resources *r, struct kv_err **err)
{
	if (r->memory_swap < 0 || r->memory_limit < 0)
		return 0;
	if (faccessat(fd, "memory.swap.max", F_OK, 0) < 0 && errno == ENOENT) {
		kv_debug("linux.resources.memory.swap: no memory.swap.max (no swap), ignored");
		return 0;
	}
	char v[32];
	long long sw = r->memory_swap - r->memory_limit;
	snprintf(v, sizeof(v), "%lld", sw < 0 ? 0 : sw);
	return cg_write(fd, "memory.swap.max", v, "linux.resources.memory.swap", err);
}

int cgroup_write_limits(int fd, const struct kv_resources *r, struct kv_err **err)
{
	char v[64];
	if (r->memory_limit >= 0) {
		snprintf(v, sizeof(v), "%lld", (long long)r->memory_limit);
		if (cg_write(fd, "memory.max", v, "linux.resources.memory.limit", err) < 0)
			return -1;
	}
	if (r->memory_reservation >= 0) {
		snprintf(v, sizeof(v), "%lld", (long long)r->memory_reservation);
		if (cg_write(fd, "memory.low", v, "linux.resources.memory.reservation", err) < 0)
			return -1;
	}
	if (cg_swap(fd, r, err) < 0)
		return -1;
	if (r->cpu_shares) {
		unsigned long long w =
		    1 + ((r->cpu_shares < 2 ? 2 : r->cpu_shares) - 2) * 9999 / 262142;
		snprintf(v, sizeof(v), "%llu", w);
		if (cg_write(fd, "cpu.weight", v, "linux.resources.cpu.shares", err) < 0)
			return -1;
	}
	if (r->cpu_quota > 0 || r->cpu_period) {
		unsigned long long period = r->cpu_period ? r->cpu_period : 100000;
		if (r->cpu_quota > 0)
			snprintf(v, sizeof(v), "%lld %llu", (long long)r->cpu_quota, period);
		else
			snprintf(v, sizeof(v), "max %llu", period);
		if (cg_write(fd, "cpu.max", v, "linux.resources.cpu.quota", err) < 0)
			return -1;
	}
	if (r->cpus && *r->cpus &&
	    cg_write(fd, "cpuset.cpus", r->cpus, "linux.resources.cpu.cpus", err) < 0)
		return -1;
	if (r->mems && *r->mems &&
	    cg_write(fd, "cpuset.mems", r->mems, "linux.resources.cpu.mems", err) < 0)
		return -1;
	if (r->pids_limit) {
		if (r->pids_limit < 0)
			snprintf(v, sizeof(v), "max");
		else
			snprintf(v, sizeof(v), "%lld", (long long)r->pids_limit);
		if (cg_write(fd, "pids.max", v, "linux.resources.pids.limit", err) < 0)
			return -1;
	}
	return 0;
}

static void cg_watch_oom(struct agent *a, struct container *c)
{
	c->oom.fd = openat(c->cgroup_fd, "memory.events", O_RDONLY | O_CLOEXEC);
	c->oom.cb = cgroup_oom_cb;
	if (c->oom.fd >= 0 && ev_add(a, &c->oom, EPOLLPRI) < 0)
		kv_warn("container %s: cannot watch memory.events", c->id);
}

static bool wants_limits(const struct kv_resources *r)
{
	return r->memory_limit >= 0 || r->memory_reservation >= 0 || r->cpu_shares ||
	       r->cpu_quota > 0 || r->cpu_period || (r->cpus && *r->cpus) ||
	       (r->mems && *r->mems) || r->pids_limit;
}

int cgroup_create(struct agent *a, struct container *c, struct kv_err **err)
{
	if (!a->cgroup_root) {
		if (wants_limits(&c->spec->res))
			return kv_err_plain(err, ENOTSUP,
					    "linux.resources: no cgroup v2 hierarchy in this VM");
		return 0;
	}
	cleanup_free char *parent = kv_asprintf("%s/%s", a->cgroup_root, a->cfg.cgroup_parent);
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return kv_err_make(err, errno, "cgroup: mkdir %s", parent);
	if (wants_limits(&c->spec->res))
		cg_enable_controllers(a, parent);
	char *path = kv_asprintf("%s/%s", parent, c->id);
	if (mkdir(path, 0755) < 0) {
		int e = errno;
		free(path);
		return kv_err_make(err, e, "cgroup: mkdir %s/%s", parent, c->id);
	}
	c->cgroup = path;
	c->cgroup_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->cgroup_fd < 0)
		return kv_err_make(err, errno, "cgroup: open %s", path);
	if (cgroup_write_limits(c->cgroup_fd, &c->spec->res, err) < 0)
		return -1;
	if (c->spec->res.memory_limit >= 0)
		cg_watch_oom(a, c);
	return 0;
}

/* runc update: new limits for a running container; what r leaves unset
 * stays as it was. */
int cgroup_update(struct agent *a, struct container *c, const struct kv_resources *r,
		  struct kv_err **err)
{
	if (c->cgroup_fd < 0)
		return kv_err_plain(err, ENOTSUP,
				    "linux.resources: no cgroup v2 hierarchy in this VM");
	if (wants_limits(r)) {
		cleanup_free char *parent = kv_strdup(c->cgroup);
		*strrchr(parent, '/') = '\0';
		cg_enable_controllers(a, parent);
	}
	if (cgroup_write_limits(c->cgroup_fd, r, err) < 0)
		return -1;
	struct kv_resources *cur = &c->spec->res;
	if (r->memory_limit >= 0 && c->oom.fd < 0)
		cg_watch_oom(a, c);
#define KEEP(f, unset)                                                                             \
	if (r->f != (unset))                                                                       \
		cur->f = r->f;
	KEEP(memory_limit, -1)
	KEEP(memory_reservation, -1)
	KEEP(memory_swap, -1)
	KEEP(cpu_quota, -1)
	KEEP(cpu_shares, 0)
	KEEP(cpu_period, 0)
	KEEP(pids_limit, 0)
#undef KEEP
	return 0;
}

void cgroup_destroy(struct agent *a, struct container *c)
{
	ev_close(a, &c->oom);
	if (c->cgroup_fd >= 0)
		close(c->cgroup_fd);
	c->cgroup_fd = -1;
	if (!c->cgroup)
		return;
	/* Reaped tasks may take a moment to leave the cgroup. */
	for (int i = 0; i < 100 && rmdir(c->cgroup) < 0 && errno == EBUSY; i++)
		usleep(1000);
	free(c->cgroup);
	c->cgroup = NULL;
}

static int cg_read(struct container *c, const char *file, char *buf, size_t size)
{
	cleanup_close int fd = openat(c->cgroup_fd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

int cgroup_freeze(struct container *c, bool frozen, struct kv_err **err)
{
	if (c->cgroup_fd < 0)
		return kv_err_plain(err, ENOTSUP, "%s %s: no cgroup v2 hierarchy",
				    frozen ? "pause" : "resume", c->id);
	if (cg_write(c->cgroup_fd, "cgroup.freeze", frozen ? "1" : "0", "cgroup.freeze", err) < 0)
		return -1;
	/* Answer once the kernel says so: every task stopped (or running again). */
	char buf[256];
	const char *want = frozen ? "frozen 1" : "frozen 0";
	for (int i = 0; i < 1000; i++) {
		if (cg_read(c, "cgroup.events", buf, sizeof(buf)) < 0 || strstr(buf, want))
			break;
		usleep(1000);
	}
	c->paused = frozen;
	return 0;
}

int cgroup_kill_all(struct container *c, int sig, struct kv_err **err)
{
	if (sig == SIGKILL && cg_write(c->cgroup_fd, "cgroup.kill", "1", "cgroup.kill", NULL) == 0)
		return 0;
	char buf[65536];
	if (cg_read(c, "cgroup.procs", buf, sizeof(buf)) < 0)
		return kv_err_make(err, errno, "kill %s: read cgroup.procs", c->id);
	for (char *s = buf, *end; *s; s = end) {
		long pid = strtol(s, &end, 10);
		if (end == s)
			break;
		if (pid > 0 && kill(pid, sig) < 0 && errno != ESRCH)
			return kv_err_make(err, errno, "kill %s: pid %ld", c->id, pid);
	}
	return 0;
}

/* "key value" lines of a cgroup stat file into JSON integers. */
static void stat_keys(struct container *c, const char *file, const char *const *keys,
		      struct kv_json *j)
{
	char buf[4096];
	if (cg_read(c, file, buf, sizeof(buf)) < 0)
		return;
	for (size_t k = 0; keys[k]; k++) {
		size_t n = strlen(keys[k]);
		for (char *s = buf; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
			if (strncmp(s, keys[k], n) == 0 && s[n] == ' ') {
				kv_json_key(j, keys[k]);
				kv_json_uint(j, strtoull(s + n + 1, NULL, 10));
				break;
			}
	}
}

static void single_value(struct container *c, const char *file, const char *key, struct kv_json *j)
{
	char buf[64];
	if (cg_read(c, file, buf, sizeof(buf)) < 0)
		return;
	kv_json_key(j, key);
	if (strncmp(buf, "max", 3) == 0)
		kv_json_str(j, "max");
	else
		kv_json_uint(j, strtoull(buf, NULL, 10));
}

void cgroup_stats(struct container *c, struct kv_json *j)
{
	static const char *const cpu[] = {"usage_usec", "user_usec", "system_usec", "nr_throttled",
					  NULL};
	static const char *const mem[] = {"anon", "file", "shmem", "pgfault", "pgmajfault", NULL};
	kv_json_key(j, "cgroup");
	kv_json_map_open(j);
	if (c->cgroup_fd >= 0) {
		kv_json_key(j, "cpu");
		kv_json_map_open(j);
		stat_keys(c, "cpu.stat", cpu, j);
		kv_json_map_close(j);
		kv_json_key(j, "memory");
		kv_json_map_open(j);
		single_value(c, "memory.current", "current", j);
		single_value(c, "memory.max", "max", j);
		stat_keys(c, "memory.stat", mem, j);
		kv_json_map_close(j);
		kv_json_key(j, "pids");
		kv_json_map_open(j);
		single_value(c, "pids.current", "current", j);
		single_value(c, "pids.max", "max", j);
		kv_json_map_close(j);
	}
	kv_json_map_close(j);
}

void cgroup_oom_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct container *c = container_of(src, struct container, oom);
	char buf[512];
	ssize_t n = pread(src->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *s = strstr(buf, "oom_kill ");
	uint64_t kills = s ? strtoull(s + 9, NULL, 10) : 0;
	if (kills <= c->oom_kills)
		return;
	c->oom_kills = kills;
	cleanup_json struct kv_json *j = kv_msg_begin_event(KV_EV_OOM);
	kv_json_kstr(j, "container", c->id);
	kv_json_key(j, "oom_kills");
	kv_json_uint(j, kills);
	agent_broadcast(a, j);
}
