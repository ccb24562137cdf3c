/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding the OCI runtime-spec subset the host sends. The host is trusted
 * more than the container, but a config.json is user input: every field is
 * checked for type and range here, once, with oci/'s typed readers (the
 * rules and messages the host's config.json check uses), and each error
 * names its JSON path. What is decoded hangs off oci/'s allocation lists.
 */
#include "agent/agent.h"
#include "agent/protocol.h"
#include "agent/spec.h"
#include "oci/oci.h"

#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <yajl/yajl_tree.h>

/* A vector the agent can walk to its NULL: an empty one when absent. */
static int read_strv(struct pctx *c, yajl_val obj, const char *key, char ***out, size_t *n)
{
	struct oci_strv sv;
	if (pc_strv(c, obj, key, &sv) < 0)
		return -1;
	*out = sv.v ? sv.v : pc_alloc(c, sizeof(char *));
	if (n)
		*n = sv.n;
	return 0;
}

static int check_abs_clean(struct pctx *c, const char *key, char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!oci_path_is_abs_clean(v[i]))
			return pc_fail_idx(c, key, i, "must be absolute");
	return 0;
}

/* ------------------------------------------------------------ process */

static int decode_rlimit(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct kv_rlimit *rl = elem;
	char *type = NULL;
	uint64_t soft = 0, hard = 0;
	if (pc_str(c, v, "type", false, &type) < 0)
		return -1;
	/* oci/names.c's table: the one the host checked config.json with. */
	rl->resource = type ? oci_rlimit_from_name(type) : -1;
	if (rl->resource < 0)
		return pc_fail_at(c, "type", "unknown rlimit %s", type ? type : "(missing)");
	if (pc_u64(c, v, "soft", true, UINT64_MAX, &soft, NULL) < 0 ||
	    pc_u64(c, v, "hard", true, UINT64_MAX, &hard, NULL) < 0)
		return -1;
	if (soft > hard)
		return pc_fail(c, "soft exceeds hard");
	rl->limit.rlim_cur = soft;
	rl->limit.rlim_max = hard;
	return 0;
}

static int decode_caps(struct pctx *c, yajl_val caps, void *out)
{
	struct kv_process *p = out;
	p->has_caps = true;
	for (int s = 0; s < KV_CAP_NSETS; s++) {
		const char *set = oci_cap_set_name((enum oci_cap_set)s);
		struct oci_strv sv;
		if (pc_strv(c, caps, set, &sv) < 0)
			return -1;
		for (size_t i = 0; i < sv.n; i++) {
			int cap = oci_capability_from_name(sv.v[i]);
			if (cap < 0)
				return pc_fail_idx(c, set, i, "unknown capability %s", sv.v[i]);
			p->caps[s] |= 1ull << cap;
		}
	}
	return 0;
}

static int decode_user(struct pctx *c, yajl_val u, void *out)
{
	struct kv_process *p = out;
	uint64_t uid = 0, gid = 0, umask = 0;
	bool has_umask = false;
	char *username = NULL;
	yajl_val gids;
	if (pc_u64(c, u, "uid", false, UINT32_MAX - 1, &uid, NULL) < 0 ||
	    pc_u64(c, u, "gid", false, UINT32_MAX - 1, &gid, NULL) < 0 ||
	    pc_u64(c, u, "umask", false, 0777, &umask, &has_umask) < 0 ||
	    pc_str(c, u, "username", false, &username) < 0 ||
	    pc_arr(c, u, "additionalGids", false, &gids) < 0)
		return -1;
	p->uid = uid;
	p->gid = gid;
	if (has_umask)
		p->umask = umask;
	if (username)
		return kv_err_plain(c->err, ENOTSUP, "%s.username: not supported, give uid/gid",
				    c->path);
	p->ngids = pc_arr_len(gids);
	if (p->ngids > 65536)
		return pc_fail_at(c, "additionalGids", "must be an array of at most 65536");
	p->gids = pc_alloc(c, (p->ngids + 1) * sizeof(gid_t));
	size_t old = pc_push_key(c, "additionalGids");
	for (size_t i = 0; i < p->ngids; i++) {
		uint64_t x;
		size_t o2 = pc_push_idx(c, i);
		int r = pc_val_u64(c, gids->u.array.values[i], UINT32_MAX - 1, &x);
		pc_pop(c, o2);
		if (r < 0) {
			pc_pop(c, old);
			return -1;
		}
		p->gids[i] = x;
	}
	pc_pop(c, old);
	return 0;
}

static int decode_console(struct pctx *c, yajl_val v, void *out)
{
	struct kv_process *p = out;
	uint64_t h = 0, w = 0;
	if (pc_u64(c, v, "height", false, 65535, &h, NULL) < 0 ||
	    pc_u64(c, v, "width", false, 65535, &w, NULL) < 0)
		return -1;
	p->rows = h;
	p->cols = w;
	return 0;
}

static int decode_process(struct pctx *c, yajl_val v, struct kv_process *p)
{
	if (!YAJL_IS_OBJECT(v))
		return pc_fail(c, "must be an object");
	yajl_val args = pc_get(v, "args");
	if (!YAJL_IS_ARRAY(args) || args->u.array.len == 0)
		return pc_fail_at(c, "args", "must be a non-empty array of strings");
	size_t nenv = 0;
	if (read_strv(c, v, "args", &p->args, NULL) < 0)
		return -1;
	if (!p->args[0][0])
		return pc_fail_idx(c, "args", 0, "must not be empty");
	if (read_strv(c, v, "env", &p->env, &nenv) < 0)
		return -1;
	for (size_t i = 0; i < nenv; i++)
		if (!strchr(p->env[i], '=') || p->env[i][0] == '=')
			return pc_fail_idx(c, "env", i, "must be NAME=VALUE");
	if (pc_str(c, v, "cwd", false, &p->cwd) < 0)
		return -1;
	if (!p->cwd)
		p->cwd = pc_strdup(c, "/");
	if (!oci_path_is_abs_clean(p->cwd))
		return pc_fail_at(c, "cwd", "must be an absolute path without ..");
	int64_t oom = 0;
	if (pc_bool(c, v, "terminal", &p->terminal) < 0 ||
	    pc_bool(c, v, "noNewPrivileges", &p->no_new_privs) < 0 ||
	    pc_i64(c, v, "oomScoreAdj", false, -1000, 1000, &oom, &p->has_oom_score_adj) < 0)
		return -1;
	p->oom_score_adj = oom;
	if (pc_sub(c, v, "user", decode_user, p) < 0 ||
	    pc_each(c, v, "rlimits", &p->nrlimits, sizeof(*p->rlimits), (void **)&p->rlimits,
		    decode_rlimit) < 0 ||
	    pc_sub(c, v, "capabilities", decode_caps, p) < 0 ||
	    pc_sub(c, v, "consoleSize", decode_console, p) < 0)
		return -1;
	return 0;
}

int kv_process_decode(yajl_val v, const char *path, struct kv_process *p, struct kv_err **err)
{
	memset(p, 0, sizeof(*p));
	p->umask = -1;
	struct pctx c = {.owner = &p->owned, .err = err};
	pc_push_key(&c, path);
	return decode_process(&c, v, p);
}

void kv_process_clear(struct kv_process *p)
{
	oci_alloc_free(p->owned);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------- mounts */

/* The table `kvrun features` lists (oci/names.c): one for both sides. */
bool kv_mount_option(const char *opt, unsigned long *set, unsigned long *clear,
		     unsigned long *propagation, bool *bind, bool *recursive)
{
	const struct oci_mount_flag *f = oci_mount_flag_find(opt);
	if (!f)
		return false;
	*set |= f->set;
	*clear |= f->clear;
	if (f->propagation)
		*propagation = f->propagation;
	if (f->bind) {
		*bind = true;
		*recursive = f->recursive;
	}
	return true;
}

static int decode_mount_options(struct pctx *c, yajl_val v, struct kv_mount *m)
{
	char **sv;
	size_t n, dlen = 0;
	if (read_strv(c, v, "options", &sv, &n) < 0)
		return -1;
	unsigned long set = 0, clear = 0;
	bool *is_data = pc_alloc(c, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (kv_mount_option(sv[i], &set, &clear, &m->propagation, &m->bind, &m->recursive))
			continue;
		if (strchr(sv[i], ','))
			return pc_fail_idx(c, "options", i, "must not contain a comma");
		is_data[i] = true;
		dlen += strlen(sv[i]) + 1;
	}
	/* The rest is the filesystem's data, comma-separated, in order. */
	m->data = pc_alloc(c, dlen + 1);
	for (size_t i = 0, at = 0; i < n; i++) {
		if (!is_data[i])
			continue;
		if (at)
			m->data[at++] = ',';
		size_t l = strlen(sv[i]);
		memcpy(m->data + at, sv[i], l);
		at += l;
	}
	m->flags = set & ~clear;
	return 0;
}

static int decode_mount(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct kv_mount *m = elem;
	if (pc_str(c, v, "destination", false, &m->destination) < 0 ||
	    pc_str(c, v, "type", false, &m->type) < 0 ||
	    pc_str(c, v, "source", false, &m->source) < 0)
		return -1;
	if (!oci_path_is_abs_clean(m->destination))
		return pc_fail_at(c, "destination", "must be an absolute path without ..");
	if (decode_mount_options(c, v, m) < 0)
		return -1;
	if (m->type && strcmp(m->type, "bind") == 0)
		m->bind = true;
	if (!m->type && !m->bind)
		return pc_fail_at(c, "type", "missing (and not a bind mount)");
	if (m->bind) {
		if (!m->source || m->source[0] != '/')
			return pc_fail_at(c, "source", "a bind mount needs an absolute source");
		m->remount_ro = m->flags & MS_RDONLY;
	}
	if (!m->source)
		m->source = pc_strdup(c, m->type);
	return 0;
}

static int decode_mounts(struct pctx *c, yajl_val root, struct kv_spec *s)
{
	yajl_val v;
	if (pc_arr(c, root, "mounts", false, &v) < 0)
		return -1;
	if (pc_arr_len(v) > KV_AGENT_MOUNTS_MAX)
		return pc_fail_at(c, "mounts", "must be an array of at most %d mounts",
				  KV_AGENT_MOUNTS_MAX);
	return pc_each(c, root, "mounts", &s->nmounts, sizeof(*s->mounts), (void **)&s->mounts,
		       decode_mount);
}

/* ------------------------------------------------------------- linux */

/* What the agent does with each of oci/'s namespace types. */
static const struct {
	int flag, index; /* index -1: not in a guest (user, time) */
} ns_kinds[OCI_NS_COUNT] = {
    [OCI_NS_PID] = {CLONE_NEWPID, KV_NS_PID},
    [OCI_NS_MOUNT] = {CLONE_NEWNS, KV_NS_MOUNT},
    [OCI_NS_UTS] = {CLONE_NEWUTS, KV_NS_UTS},
    [OCI_NS_IPC] = {CLONE_NEWIPC, KV_NS_IPC},
    [OCI_NS_CGROUP] = {CLONE_NEWCGROUP, KV_NS_CGROUP},
    [OCI_NS_NETWORK] = {CLONE_NEWNET, KV_NS_NET},
    [OCI_NS_USER] = {0, -1},
    [OCI_NS_TIME] = {0, -1},
};

static int decode_namespace(struct pctx *c, yajl_val v, struct kv_spec *s)
{
	char *type = NULL, *path = NULL;
	if (pc_str(c, v, "type", false, &type) < 0 || pc_str(c, v, "path", false, &path) < 0)
		return -1;
	if (!type)
		return pc_fail_at(c, "type", "missing");
	int t = oci_ns_from_name(type);
	if (t < 0 || ns_kinds[t].index < 0) {
		int e = t == OCI_NS_USER ? ENOTSUP : EINVAL;
		return kv_err_plain(c->err, e, "%s.type: unsupported namespace %s", c->path, type);
	}
	if (path && *path) {
		if (!oci_path_is_abs_clean(path))
			return pc_fail_at(c, "path", "must be absolute");
		s->ns_paths[ns_kinds[t].index] = path;
	} else {
		s->ns_flags |= ns_kinds[t].flag;
	}
	return 0;
}

static int decode_namespaces(struct pctx *c, yajl_val lx, struct kv_spec *s)
{
	yajl_val v;
	if (pc_arr(c, lx, "namespaces", false, &v) < 0)
		return -1;
	size_t old = pc_push_key(c, "namespaces");
	int r = 0;
	for (size_t i = 0; i < pc_arr_len(v) && r == 0; i++) {
		size_t o2 = pc_push_idx(c, i);
		yajl_val e = v->u.array.values[i];
		r = YAJL_IS_OBJECT(e) ? decode_namespace(c, e, s) : pc_fail(c, "must be an object");
		pc_pop(c, o2);
	}
	pc_pop(c, old);
	return r;
}

/* Limits in one object member of linux.resources: memory, cpu, pids. */
static int decode_res_memory(struct pctx *c, yajl_val v, void *out)
{
	struct kv_resources *r = out;
	if (pc_i64(c, v, "limit", false, -1, INT64_MAX, &r->memory_limit, NULL) < 0 ||
	    pc_i64(c, v, "reservation", false, -1, INT64_MAX, &r->memory_reservation, NULL) < 0 ||
	    pc_i64(c, v, "swap", false, -1, INT64_MAX, &r->memory_swap, NULL) < 0)
		return -1;
	return 0;
}

static int decode_res_cpu(struct pctx *c, yajl_val v, void *out)
{
	struct kv_resources *r = out;
	if (pc_u64(c, v, "shares", false, 262144, &r->cpu_shares, NULL) < 0 ||
	    pc_i64(c, v, "quota", false, -1, INT64_MAX, &r->cpu_quota, NULL) < 0 ||
	    pc_u64(c, v, "period", false, 1000000, &r->cpu_period, NULL) < 0 ||
	    pc_str(c, v, "cpus", false, &r->cpus) < 0 || pc_str(c, v, "mems", false, &r->mems) < 0)
		return -1;
	return 0;
}

static int decode_res_pids(struct pctx *c, yajl_val v, void *out)
{
	struct kv_resources *r = out;
	bool has = false;
	if (pc_i64(c, v, "limit", false, -1, INT64_MAX, &r->pids_limit, &has) < 0)
		return -1;
	if (has && r->pids_limit == 0)
		r->pids_limit = -1; /* the spec: 0 or -1 means unlimited */
	return 0;
}

static void resources_unset(struct kv_resources *r)
{
	r->memory_limit = r->memory_reservation = r->memory_swap = r->cpu_quota = -1;
}

int kv_resources_decode(yajl_val v, struct kv_resources *r, bool *has, struct kv_err **err)
{
	resources_unset(r);
	if (!v || YAJL_IS_NULL(v))
		return 0;
	struct pctx c = {.owner = &r->owned, .err = err};
	pc_push_key(&c, "linux.resources");
	if (!YAJL_IS_OBJECT(v))
		return pc_fail(&c, "must be an object");
	*has = true;
	if (pc_sub(&c, v, "memory", decode_res_memory, r) < 0 ||
	    pc_sub(&c, v, "cpu", decode_res_cpu, r) < 0 ||
	    pc_sub(&c, v, "pids", decode_res_pids, r) < 0)
		return -1;
	/* As runc reads them, 0 means "not set" (Docker's update sends every
	 * field, 0 for the ones it leaves alone: a memory.max of 0 would kill). */
	int64_t *zero_unset[] = {&r->memory_limit, &r->memory_reservation, &r->memory_swap,
				 &r->cpu_quota};
	for (size_t i = 0; i < KV_ARRAY_SIZE(zero_unset); i++)
		if (*zero_unset[i] == 0)
			*zero_unset[i] = -1;
	return 0;
}

void kv_resources_clear(struct kv_resources *r)
{
	oci_alloc_free(r->owned);
	r->owned = NULL;
	r->cpus = r->mems = NULL;
}

static int decode_sysctl(struct pctx *c, yajl_val lx, struct kv_spec *s)
{
	struct oci_map m;
	if (pc_map(c, lx, "sysctl", &m) < 0)
		return -1;
	s->sysctls = pc_alloc(c, (m.n + 1) * sizeof(*s->sysctls));
	size_t old = pc_push_key(c, "sysctl");
	for (size_t i = 0; i < m.n; i++) {
		const char *k = m.v[i].key;
		if (strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_.-/") != strlen(k) ||
		    strstr(k, "..") || k[0] == '.' || k[0] == '/') {
			int r = pc_fail_at(c, k, "invalid name");
			pc_pop(c, old);
			return r;
		}
		s->sysctls[i].key = m.v[i].key;
		s->sysctls[i].value = m.v[i].value;
	}
	pc_pop(c, old);
	s->nsysctls = m.n;
	return 0;
}

static int decode_propagation(struct pctx *c, yajl_val lx, struct kv_spec *s)
{
	char *p = NULL;
	if (pc_str(c, lx, "rootfsPropagation", false, &p) < 0)
		return -1;
	if (!p || !*p)
		return 0;
	const struct oci_mount_flag *f = oci_mount_flag_find(p);
	if (!f || !f->propagation)
		return pc_fail_at(c, "rootfsPropagation", "unknown value %s", p);
	s->rootfs_propagation = f->propagation;
	return 0;
}

static int decode_linux(struct pctx *c, yajl_val v, void *out)
{
	struct kv_spec *s = out;
	if (decode_namespaces(c, v, s) < 0 ||
	    kv_resources_decode(pc_get(v, "resources"), &s->res, &s->has_res, c->err) < 0 ||
	    decode_sysctl(c, v, s) < 0 ||
	    read_strv(c, v, "maskedPaths", &s->masked_paths, &s->nmasked) < 0 ||
	    read_strv(c, v, "readonlyPaths", &s->readonly_paths, &s->nreadonly) < 0 ||
	    check_abs_clean(c, "maskedPaths", s->masked_paths, s->nmasked) < 0 ||
	    check_abs_clean(c, "readonlyPaths", s->readonly_paths, s->nreadonly) < 0 ||
	    pc_str(c, v, "cgroupsPath", false, &s->cgroups_path) < 0 ||
	    decode_propagation(c, v, s) < 0)
		return -1;
	yajl_val sc = pc_get(v, "seccomp");
	if (sc && kv_seccomp_decode(sc, &s->seccomp, c->err) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- rootfs */

static int decode_layer(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct kv_layer *l = elem;
	if (pc_str(c, v, "device", false, &l->device) < 0 ||
	    pc_str(c, v, "fstype", false, &l->fstype) < 0 ||
	    pc_str(c, v, "options", false, &l->options) < 0 ||
	    pc_str(c, v, "path", false, &l->path) < 0 || pc_str(c, v, "tag", false, &l->tag) < 0)
		return -1;
	if (!!l->device + !!l->path + !!l->tag != 1)
		return pc_fail(c, "needs exactly one of device, path, tag");
	if (l->tag && (!*l->tag || strchr(l->tag, ',')))
		return pc_fail_at(c, "tag", "must be a non-empty tag");
	if (l->options && strpbrk(l->options, "\n"))
		return pc_fail_at(c, "options", "invalid");
	if (l->device && (!oci_path_is_abs_clean(l->device) || !l->fstype))
		return pc_fail(c, "a device needs an absolute path and fstype");
	if (l->path && !oci_path_is_abs_clean(l->path))
		return pc_fail_at(c, "path", "must be absolute");
	return 0;
}

static int decode_upper(struct pctx *c, yajl_val v, void *out)
{
	return decode_layer(c, v, 0, out);
}

static int decode_layers(struct pctx *c, yajl_val v, struct kv_rootfs *r)
{
	yajl_val layers = pc_get(v, "layers");
	if (!YAJL_IS_ARRAY(layers) || layers->u.array.len == 0 || layers->u.array.len > 128)
		return pc_fail_at(c, "layers", "must be an array of 1..128 layers");
	if (pc_each(c, v, "layers", &r->nlayers, sizeof(*r->layers), (void **)&r->layers,
		    decode_layer) < 0 ||
	    pc_sub(c, v, "upper", decode_upper, &r->upper) < 0)
		return -1;
	return 0;
}

static int decode_rootfs(struct pctx *c, yajl_val v, struct kv_spec *s)
{
	struct kv_rootfs *r = &s->rootfs;
	if (!v) {
		if (s->root_path) {
			r->type = pc_strdup(c, "dir");
			r->path = s->root_path;
		}
		return 0;
	}
	if (!YAJL_IS_OBJECT(v))
		return pc_fail(c, "must be an object");
	if (pc_str(c, v, "type", false, &r->type) < 0 ||
	    pc_str(c, v, "path", false, &r->path) < 0 ||
	    pc_str(c, v, "device", false, &r->device) < 0 ||
	    pc_str(c, v, "fstype", false, &r->fstype) < 0 ||
	    pc_str(c, v, "options", false, &r->options) < 0 ||
	    pc_str(c, v, "tag", false, &r->tag) < 0)
		return -1;
	const char *t = r->type ? r->type : "";
	if (strcmp(t, "dir") == 0) {
		if (!r->path)
			r->path = s->root_path;
		if (!oci_path_is_abs_clean(r->path))
			return pc_fail_at(c, "path", "must be an absolute path");
	} else if (strcmp(t, "block") == 0) {
		if (!oci_path_is_abs_clean(r->device) || !r->fstype)
			return pc_fail(c, "block needs an absolute device and an fstype");
	} else if (strcmp(t, "virtiofs") == 0 || strcmp(t, "9p") == 0) {
		if (!r->tag || !*r->tag || strchr(r->tag, ','))
			return pc_fail_at(c, "tag", "must be a non-empty tag");
	} else if (strcmp(t, "overlay") == 0) {
		return decode_layers(c, v, r);
	} else {
		return pc_fail_at(c, "type", "unknown %s (want dir, block, virtiofs, 9p, overlay)",
				  t);
	}
	if (r->options && strpbrk(r->options, "\n"))
		return pc_fail_at(c, "options", "invalid");
	return 0;
}

int kv_rootfs_decode(yajl_val v, struct kv_spec *s, struct kv_err **err)
{
	struct pctx c = {.owner = &s->owned, .err = err};
	pc_push_key(&c, "rootfs");
	return decode_rootfs(&c, v && !YAJL_IS_NULL(v) ? v : NULL, s);
}

/*
 * hostname, domainname: at most 64 bytes (the kernel's limit), set in a uts
 * namespace of the container's own. An empty one is none: runc leaves the
 * name as the namespace has it, and the host's oci/ accepts it so.
 */
static int decode_uts_name(struct pctx *c, yajl_val root, const char *key, struct kv_spec *s,
			   char **out)
{
	if (pc_str(c, root, key, false, out) < 0)
		return -1;
	if (*out && !**out)
		*out = NULL;
	if (!*out)
		return 0;
	if (strlen(*out) > 64 || strchr(*out, '/'))
		return pc_fail_at(c, key, "must be at most 64 characters, without /");
	if (!(s->ns_flags & CLONE_NEWUTS) && !s->ns_paths[KV_NS_UTS])
		return pc_fail_at(c, key, "needs a uts namespace in linux.namespaces");
	return 0;
}

static int decode_root(struct pctx *c, yajl_val r, void *out)
{
	struct kv_spec *s = out;
	if (pc_str(c, r, "path", false, &s->root_path) < 0 ||
	    pc_bool(c, r, "readonly", &s->root_readonly) < 0)
		return -1;
	return 0;
}

struct kv_spec *kv_spec_decode(yajl_val root, struct kv_err **err)
{
	if (!YAJL_IS_OBJECT(root)) {
		kv_err_plain(err, EINVAL, "spec: must be an object");
		return NULL;
	}
	cleanup_spec struct kv_spec *s = kv_malloc0(sizeof(*s));
	struct pctx c = {.owner = &s->owned, .err = err};
	resources_unset(&s->res);
	if (kv_process_decode(pc_get(root, "process"), "process", &s->process, err) < 0 ||
	    pc_sub(&c, root, "root", decode_root, s) < 0 || decode_mounts(&c, root, s) < 0 ||
	    pc_sub(&c, root, "linux", decode_linux, s) < 0 ||
	    decode_uts_name(&c, root, "hostname", s, &s->hostname) < 0 ||
	    decode_uts_name(&c, root, "domainname", s, &s->domainname) < 0)
		return NULL;
	return steal_ptr(s);
}

int kv_spec_check(const struct kv_spec *s, struct kv_err **err)
{
	if (!(s->ns_flags & CLONE_NEWNS))
		return kv_err_plain(err, EINVAL,
				    "linux.namespaces: a mount namespace is required "
				    "(the agent's own is the VM's)");
	if (s->ns_paths[KV_NS_PID] || s->ns_paths[KV_NS_MOUNT])
		return kv_err_plain(err, ENOTSUP,
				    "linux.namespaces: joining a pid or mount "
				    "namespace by path is not supported");
	if (!s->rootfs.type)
		return kv_err_plain(err, EINVAL, "root.path: missing (and no rootfs source)");
	return 0;
}

int agent_spec_check(const char *spec_json, const char *rootfs_json, struct kv_err **err)
{
	cleanup_yajl_val yajl_val spec = kv_json_parse(spec_json, "the agent's spec", err);
	if (!spec)
		return -1;
	cleanup_yajl_val yajl_val rootfs = NULL;
	if (rootfs_json && !(rootfs = kv_json_parse(rootfs_json, "the agent's rootfs", err)))
		return -1;
	cleanup_spec struct kv_spec *s = kv_spec_decode(spec, err);
	if (!s || kv_rootfs_decode(rootfs, s, err) < 0 || kv_spec_check(s, err) < 0)
		return -1;
	return 0;
}

int agent_process_check(const char *process_json, struct kv_err **err)
{
	cleanup_yajl_val yajl_val v = kv_json_parse(process_json, "the agent's process", err);
	if (!v)
		return -1;
	struct kv_process p = {0};
	int r = kv_process_decode(v, "process", &p, err);
	kv_process_clear(&p);
	return r;
}

void kv_spec_free(struct kv_spec *s)
{
	if (!s)
		return;
	kv_process_clear(&s->process);
	kv_resources_clear(&s->res);
	kv_seccomp_free(s->seccomp);
	oci_alloc_free(s->owned);
	free(s);
}
