/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host cgroup of a VM's processes, as Kata's sandbox_cgroup_only: the
 * shim, the VMM and its threads live in the cgroup that linux.cgroupsPath
 * names, created here with the VM's size as its limits, so that the host
 * accounts for and caps what a container costs and the clients' stats
 * (docker stats, podman stats, containerd's task metrics, all of which read
 * the cgroup of the pid kvrun reports) show real figures. The container's
 * own limits also apply inside the guest (cgroup v2, agent/cgroup.c).
 *
 * cgroup v1 (and hybrid) hosts: the path in every mounted v1 hierarchy, as
 * runc's fs manager does. cgroup v2 hosts: the path in the unified
 * hierarchy, with the controllers enabled on the way down. Every directory
 * made is recorded in <state dir>/cgroups, innermost last, so that delete
 * removes exactly those, whatever happens to config.json (the container's
 * own, innermost, is recorded just before it is made).
 */
#include "runtime/backend.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CG_RECORD   "cgroups"
#define CG_PERIOD   100000ULL
#define CG_MAX_DIRS 64
/* kvrun's own parent, for a container without linux.cgroupsPath. */
#define CG_DEFAULT_PARENT "/kvrun"

struct cg_hier {
	char *mnt;   /* mount point */
	bool v2;     /* the unified hierarchy */
	bool cpuset; /* a v1 hierarchy with the cpuset controller */
	bool memory, cpu;
};

struct cg_set {
	struct cg_hier h[CG_MAX_DIRS];
	size_t n;
};

static void cg_set_clear(struct cg_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->h[i].mnt);
	s->n = 0;
}

static bool has_opt(const char *opts, const char *want)
{
	size_t n = strlen(want);
	for (const char *p = opts; p && *p;) {
		if (strncmp(p, want, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

/*
 * The hierarchies to use, from /proc/self/mountinfo: every v1 hierarchy, or
 * the unified one alone on a pure v2 host (a hybrid host's unified mount
 * has no controllers: the v1 ones hold them).
 */
static int cg_hierarchies(struct cg_set *s, struct kv_err **err)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return kv_err_make(err, errno, "open /proc/self/mountinfo");
	char line[4096];
	char *v2 = NULL;
	while (fgets(line, sizeof(line), f) && s->n < CG_MAX_DIRS) {
		char mnt[1024], fstype[64], super[1024];
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %1023s", fstype, super) != 2)
			continue;
		if (strcmp(fstype, "cgroup2") == 0 && !v2) {
			v2 = kv_strdup(mnt);
		} else if (strcmp(fstype, "cgroup") == 0) {
			struct cg_hier *h = &s->h[s->n++];
			h->mnt = kv_strdup(mnt);
			h->cpuset = has_opt(super, "cpuset");
			h->memory = has_opt(super, "memory");
			h->cpu = has_opt(super, "cpu");
		}
	}
	if (s->n == 0 && v2)
		s->h[s->n++] = (struct cg_hier){.mnt = steal_ptr(v2), .v2 = true};
	free(v2);
	if (s->n == 0)
		return kv_err_plain(err, ENOENT, "no cgroup hierarchy is mounted");
	return 0;
}

/* "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", systemd's nesting. */
static char *slice_path(const char *slice)
{
	size_t len = strlen(slice);
	if (strcmp(slice, "-.slice") == 0)
		return kv_strdup("");
	if (len <= 6 || strcmp(slice + len - 6, ".slice") != 0)
		return kv_asprintf("/%s", slice);
	char *out = kv_strdup("");
	for (size_t i = 0; i <= len - 6; i++) {
		if (i < len - 6 && slice[i] != '-')
			continue;
		char *next = kv_asprintf("%s/%.*s.slice", out, (int)i, slice);
		free(out);
		out = next;
	}
	return out;
}

/*
 * linux.cgroupsPath as a path under each hierarchy's root: "/a/b" as it is
 * (a relative one is taken from the root too), systemd's "slice:prefix:name"
 * as the scope systemd would make, empty as "/kvrun/<id>".
 */
char *hostcg_path(const char *cgroups_path, const char *id)
{
	if (!cgroups_path || !*cgroups_path)
		return kv_asprintf(CG_DEFAULT_PARENT "/%s", id);
	const char *c1 = strchr(cgroups_path, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (cgroups_path[0] != '/' && c1 && c2 && !strchr(c2 + 1, ':')) {
		cleanup_free char *slice =
		    kv_asprintf("%.*s", (int)(c1 - cgroups_path), cgroups_path);
		cleanup_free char *prefix = kv_asprintf("%.*s", (int)(c2 - c1 - 1), c1 + 1);
		cleanup_free char *parent = slice_path(*slice ? slice : "system.slice");
		if (*prefix)
			return kv_asprintf("%s/%s-%s.scope", parent, prefix, c2 + 1);
		return kv_asprintf("%s/%s", parent, c2 + 1);
	}
	cleanup_free char *clean = path_clean_abs(cgroups_path);
	return kv_strdup(clean);
}

static int write_str(const char *dir, const char *file, const char *v, struct kv_err **err)
{
	cleanup_free char *p = kv_asprintf("%s/%s", dir, file);
	cleanup_close int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, strlen(v)) < 0)
		return kv_err_make(err, errno, "write %s to %s", v, p);
	return 0;
}

/* A new v1 cpuset cgroup is empty: it gets its parent's cpus and mems. */
static int cpuset_inherit(const char *dir, struct kv_err **err)
{
	cleanup_free char *parent = kv_strdup(dir);
	*strrchr(parent, '/') = '\0';
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(files); i++) {
		cleanup_free char *pp = kv_asprintf("%s/%s", parent, files[i]);
		cleanup_free char *v = NULL;
		if (kv_read_file(pp, 4096, &v, NULL, err) < 0)
			return -1;
		if (write_str(dir, files[i], v, err) < 0)
			return -1;
	}
	return 0;
}

/* v2: let the children of dir have the controllers the limits need. */
static void v2_enable(const char *dir)
{
	struct kv_err *e = NULL;
	if (write_str(dir, "cgroup.subtree_control", "+memory +cpu +pids", &e) < 0) {
		kv_debug("%s", e->msg);
		kv_err_free(e);
	}
}

/* mkdir -p rel under h, recording each directory made in rec. */
static int cg_mkdirs(const struct cg_hier *h, const char *rel, FILE *rec, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s%s", h->mnt, rel);
	size_t len = strlen(path);
	for (size_t i = strlen(h->mnt) + 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (h->v2) {
			cleanup_free char *up = kv_strdup(path);
			*strrchr(up, '/') = '\0';
			v2_enable(up);
		}
		/* The container's own cgroup (the leaf, named for it) is
		 * recorded before it is made: a kill between the two must not
		 * leave it unknown (crash.bats). A parent, which may be another's
		 * (a pod's, a slice), only once we made it. */
		bool leaf = i == len;
		if (leaf) {
			fprintf(rec, "%s\n", path);
			fflush(rec);
		}
		int made = mkdir(path, 0755);
		/* A parent another container's delete removed between our mkdir of
		 * it (or its EEXIST) and this one (default_parent_remove): make it
		 * again, a few times, rather than fail the create. */
		for (int again = 0; made < 0 && errno == ENOENT && again < 3; again++) {
			cleanup_free char *up = kv_strdup(path);
			*strrchr(up, '/') = '\0';
			if (strlen(up) <= strlen(h->mnt))
				break;
			if (mkdir(up, 0755) == 0 && h->cpuset && cpuset_inherit(up, err) < 0)
				return -1;
			made = mkdir(path, 0755);
		}
		if (made == 0) {
			if (!leaf) {
				fprintf(rec, "%s\n", path);
				fflush(rec);
			}
			if (h->cpuset && cpuset_inherit(path, err) < 0)
				return -1;
		} else if (errno != EEXIST) {
			return kv_err_make(err, errno, "mkdir %s", path);
		}
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

static int cg_limits(const struct cg_hier *h, const char *dir, unsigned cpus, uint64_t mem,
		     struct kv_err **err)
{
	char v[64];
	if (h->v2) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)mem);
		if (write_str(dir, "memory.max", v, err) < 0)
			return -1;
		snprintf(v, sizeof(v), "%llu %llu", cpus * CG_PERIOD, CG_PERIOD);
		return write_str(dir, "cpu.max", v, err);
	}
	if (h->memory) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)mem);
		if (write_str(dir, "memory.limit_in_bytes", v, err) < 0)
			return -1;
	}
	if (h->cpu) {
		snprintf(v, sizeof(v), "%llu", CG_PERIOD);
		if (write_str(dir, "cpu.cfs_period_us", v, err) < 0)
			return -1;
		snprintf(v, sizeof(v), "%llu", cpus * CG_PERIOD);
		if (write_str(dir, "cpu.cfs_quota_us", v, err) < 0)
			return -1;
	}
	return 0;
}

int hostcg_create(const char *state_dir, const char *rel, unsigned cpus, uint64_t mem,
		  struct kv_err **err)
{
	struct cg_set s = {0};
	cleanup_free char *recp = kv_asprintf("%s/%s", state_dir, CG_RECORD);
	cleanup_fclose FILE *rec = fopen(recp, "we");
	int r = -1;
	if (!rec) {
		kv_err_make(err, errno, "create %s", recp);
		goto out;
	}
	fprintf(rec, "#%s\n", rel);
	if (cg_hierarchies(&s, err) < 0)
		goto out;
	if (access(s.h[0].mnt, W_OK) < 0) {
		/* Rootless: the caller's cgroup it is (runc ignores it too). */
		kv_debug("host cgroup %s: %s not writable, not used", rel, s.h[0].mnt);
		r = 0;
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		cleanup_free char *dir = kv_asprintf("%s%s", s.h[i].mnt, rel);
		if (cg_mkdirs(&s.h[i], rel, rec, err) < 0 ||
		    (cpus && cg_limits(&s.h[i], dir, cpus, mem, err) < 0))
			goto out;
	}
	r = 0;
out:
	cg_set_clear(&s);
	if (r < 0)
		kv_err_wrap(err, "host cgroup %s", rel);
	return r;
}

/* Each line of the record: "#<path>" first, then the directories made. */
static int record_read(const char *state_dir, char **rel, char ***dirs, size_t *n)
{
	cleanup_free char *recp = kv_asprintf("%s/%s", state_dir, CG_RECORD);
	cleanup_free char *text = NULL;
	struct kv_err *e = NULL;
	*rel = NULL;
	*dirs = NULL;
	*n = 0;
	if (kv_read_file(recp, 1 << 20, &text, NULL, &e) < 0) {
		kv_err_free(e);
		return -1;
	}
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#') {
			free(*rel);
			*rel = kv_strdup(l + 1);
			continue;
		}
		*dirs = realloc(*dirs, (*n + 1) * sizeof(char *));
		if (!*dirs)
			abort();
		(*dirs)[(*n)++] = kv_strdup(l);
	}
	return 0;
}

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int hostcg_attach(const char *state_dir, pid_t pid, struct kv_err **err)
{
	cleanup_free char *rel = NULL;
	char **dirs;
	size_t n;
	if (record_read(state_dir, &rel, &dirs, &n) < 0 || !rel)
		return 0; /* none made for this container */
	strv_free_n(dirs, n);
	struct cg_set s = {0};
	if (cg_hierarchies(&s, err) < 0)
		return -1;
	char v[32];
	snprintf(v, sizeof(v), "%d", (int)pid);
	int r = 0;
	for (size_t i = 0; i < s.n && r == 0; i++) {
		cleanup_free char *dir = kv_asprintf("%s%s", s.h[i].mnt, rel);
		r = write_str(dir, "cgroup.procs", v, err);
	}
	cg_set_clear(&s);
	return r;
}

int hostcg_update(const char *state_dir, unsigned cpus_milli, uint64_t mem, struct kv_err **err)
{
	cleanup_free char *rel = NULL;
	char **dirs;
	size_t n;
	if (record_read(state_dir, &rel, &dirs, &n) < 0 || !rel)
		return 0;
	strv_free_n(dirs, n);
	struct cg_set s = {0};
	if (cg_hierarchies(&s, err) < 0)
		return -1;
	int r = 0;
	char v[64];
	unsigned long long quota = (unsigned long long)cpus_milli * CG_PERIOD / 1000;
	for (size_t i = 0; i < s.n && r == 0; i++) {
		const struct cg_hier *h = &s.h[i];
		cleanup_free char *dir = kv_asprintf("%s%s", h->mnt, rel);
		if (mem && (h->v2 || h->memory)) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)mem);
			r = write_str(dir, h->v2 ? "memory.max" : "memory.limit_in_bytes", v, err);
		}
		if (r == 0 && cpus_milli && h->v2) {
			snprintf(v, sizeof(v), "%llu %llu", quota, CG_PERIOD);
			r = write_str(dir, "cpu.max", v, err);
		} else if (r == 0 && cpus_milli && h->cpu) {
			snprintf(v, sizeof(v), "%llu", quota);
			r = write_str(dir, "cpu.cfs_quota_us", v, err);
		}
	}
	cg_set_clear(&s);
	return r;
}

/* kvrun's own parent (/kvrun, no cgroupsPath) goes with its last container,
 * whichever container made it: only the one that made it records it. */
static void default_parent_remove(const char *leaf, const char *rel)
{
	size_t n = strlen(CG_DEFAULT_PARENT);
	if (!rel || strncmp(rel, CG_DEFAULT_PARENT "/", n + 1) != 0 || strchr(rel + n + 1, '/'))
		return;
	cleanup_free char *parent = kv_strdup(leaf);
	*strrchr(parent, '/') = '\0';
	rmdir(parent); /* EBUSY while another container has its cgroup there */
}

void hostcg_remove(const char *state_dir)
{
	cleanup_free char *rel = NULL;
	char **dirs;
	size_t n;
	if (record_read(state_dir, &rel, &dirs, &n) < 0)
		return;
	/* Innermost first. The container's own cgroup may be busy for a moment
	 * while its last process exits; a parent we made stays while another
	 * container still has a cgroup in it. */
	for (size_t i = n; i-- > 0;) {
		size_t dl = strlen(dirs[i]), rl = rel ? strlen(rel) : 0;
		bool leaf = rel && dl >= rl && strcmp(dirs[i] + dl - rl, rel) == 0;
		/* A VMM that unmaps a large guest on a loaded host takes a
		 * while to leave: up to 5 s. */
		uint64_t until = kv_now_ms() + 5000;
		while (rmdir(dirs[i]) < 0 && errno == EBUSY && leaf && kv_now_ms() < until)
			usleep(10000);
		if (leaf && access(dirs[i], F_OK) == 0)
			kv_warn("host cgroup %s: %s", dirs[i], strerror(errno));
		else if (leaf)
			default_parent_remove(dirs[i], rel);
	}
	strv_free_n(dirs, n);
	cleanup_free char *recp = kv_asprintf("%s/%s", state_dir, CG_RECORD);
	unlink(recp);
}
