/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding the OCI runtime-spec subset the host sends. The host is trusted
 * more than the container, but a config.json is user input: every field is
 * checked for type and range here, once, and each error names its JSON path.
 */
#include "agent/spec.h"
#include "agent/protocol.h"
#include "oci/oci.h"

#include <limits.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <yajl/yajl_tree.h>

#define BAD(path, ...) kv_err_make(err, EINVAL, path ": " __VA_ARGS__)

/* ------------------------------------------------------------ helpers */

static int want_type(yajl_val v, bool ok, const char *path, const char *what, struct kv_err **err)
{
	if (!ok)
		return kv_err_make(err, EINVAL, "%s: must be %s", path, what);
	(void)v;
	return 0;
}

/* Optional string; *out stays NULL when absent or null. */
static int get_str(yajl_val obj, const char *key, const char *path, char **out, struct kv_err **err)
{
	yajl_val v = kv_jget(obj, key);
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_STRING(v))
		return kv_err_make(err, EINVAL, "%s.%s: must be a string", path, key);
	*out = kv_strdup(v->u.string);
	return 0;
}

static int get_u64(yajl_val v, const char *path, uint64_t max, uint64_t *out, struct kv_err **err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || (uint64_t)YAJL_GET_INTEGER(v) > max) {
		/* yajl keeps integers beyond long long only as a string. */
		if (YAJL_IS_NUMBER(v) && !YAJL_IS_INTEGER(v) && !YAJL_IS_DOUBLE(v)) {
			char *end;
			errno = 0;
			unsigned long long x = strtoull(v->u.number.r, &end, 10);
			if (!errno && !*end && v->u.number.r[0] != '-' && x <= max) {
				*out = x;
				return 0;
			}
		}
		return kv_err_make(err, EINVAL, "%s: must be an integer in 0..%llu", path,
				   (unsigned long long)max);
	}
	*out = YAJL_GET_INTEGER(v);
	return 0;
}

static int get_i64(yajl_val v, const char *path, int64_t min, int64_t max, int64_t *out,
		   struct kv_err **err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max)
		return kv_err_make(err, EINVAL, "%s: must be an integer in %lld..%lld", path,
				   (long long)min, (long long)max);
	*out = YAJL_GET_INTEGER(v);
	return 0;
}

static bool get_bool(yajl_val obj, const char *key)
{
	bool b = false;
	return kv_jbool(obj, key, &b) && b;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* An array of strings into a NULL-terminated vector (absent: empty). */
static int get_strv(yajl_val v, const char *path, bool nonempty, char ***out, size_t *n,
		    struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v)) {
		if (nonempty)
			return kv_err_make(err, EINVAL, "%s: must be a non-empty array of strings",
					   path);
		*out = kv_malloc0(sizeof(char *));
		if (n)
			*n = 0;
		return 0;
	}
	if (!YAJL_IS_ARRAY(v) || (nonempty && v->u.array.len == 0))
		return kv_err_make(err, EINVAL, "%s: must be a %sarray of strings", path,
				   nonempty ? "non-empty " : "");
	size_t len = v->u.array.len;
	char **sv = kv_malloc0((len + 1) * sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		yajl_val e = v->u.array.values[i];
		if (!YAJL_IS_STRING(e)) {
			strv_free(sv);
			return kv_err_make(err, EINVAL, "%s[%zu]: must be a string", path, i);
		}
		sv[i] = kv_strdup(e->u.string);
	}
	*out = sv;
	if (n)
		*n = len;
	return 0;
}

/* ------------------------------------------------------------ process */

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

static int decode_rlimits(yajl_val v, const char *path, struct kv_process *p, struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return kv_err_make(err, EINVAL, "%s.rlimits: must be an array", path);
	p->rlimits = kv_malloc0((v->u.array.len + 1) * sizeof(*p->rlimits));
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		const char *type = kv_jstr(e, "type");
		struct kv_rlimit *rl = &p->rlimits[p->nrlimits];
		rl->resource = -1;
		for (size_t k = 0; type && k < KV_ARRAY_SIZE(rlimit_names); k++)
			if (strcmp(rlimit_names[k].name, type) == 0)
				rl->resource = rlimit_names[k].resource;
		if (rl->resource < 0)
			return kv_err_make(err, EINVAL, "%s.rlimits[%zu].type: unknown rlimit %s",
					   path, i, type ? type : "(missing)");
		yajl_val soft = kv_jget(e, "soft"), hard = kv_jget(e, "hard");
		char sub[192];
		uint64_t s = 0, h = 0;
		snprintf(sub, sizeof(sub), "%s.rlimits[%zu].soft", path, i);
		if (!soft || get_u64(soft, sub, UINT64_MAX, &s, err) < 0)
			return kv_err_make(err, EINVAL, "%s: must be an integer", sub);
		snprintf(sub, sizeof(sub), "%s.rlimits[%zu].hard", path, i);
		if (!hard || get_u64(hard, sub, UINT64_MAX, &h, err) < 0)
			return kv_err_make(err, EINVAL, "%s: must be an integer", sub);
		if (s > h)
			return kv_err_make(err, EINVAL, "%s.rlimits[%zu]: soft exceeds hard", path,
					   i);
		rl->limit.rlim_cur = s;
		rl->limit.rlim_max = h;
		p->nrlimits++;
	}
	return 0;
}

int kv_cap_from_name(const char *name)
{
	if (!name || strncmp(name, "CAP_", 4) != 0)
		return -1;
	char lower[64];
	size_t n = strlen(name);
	if (n >= sizeof(lower))
		return -1;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i];
	cap_value_t c;
	if (cap_from_name(lower, &c) < 0 || c < 0 || c > 63)
		return -1;
	return c;
}

static int decode_caps(yajl_val v, const char *path, struct kv_process *p, struct kv_err **err)
{
	static const char *const sets[KV_CAP_NSETS] = {"bounding", "effective", "inheritable",
						       "permitted", "ambient"};
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_OBJECT(v))
		return kv_err_make(err, EINVAL, "%s.capabilities: must be an object", path);
	p->has_caps = true;
	for (int s = 0; s < KV_CAP_NSETS; s++) {
		yajl_val a = kv_jget(v, sets[s]);
		if (!a || YAJL_IS_NULL(a))
			continue;
		if (!YAJL_IS_ARRAY(a))
			return kv_err_make(err, EINVAL, "%s.capabilities.%s: must be an array",
					   path, sets[s]);
		for (size_t i = 0; i < a->u.array.len; i++) {
			yajl_val e = a->u.array.values[i];
			int c = YAJL_IS_STRING(e) ? kv_cap_from_name(e->u.string) : -1;
			if (c < 0)
				return kv_err_make(
				    err, EINVAL, "%s.capabilities.%s[%zu]: unknown capability %s",
				    path, sets[s], i,
				    YAJL_IS_STRING(e) ? e->u.string : "(not a string)");
			p->caps[s] |= 1ull << c;
		}
	}
	return 0;
}

static int decode_user(yajl_val u, const char *path, struct kv_process *p, struct kv_err **err)
{
	char sub[192];
	uint64_t x;
	if (!u || YAJL_IS_NULL(u))
		return 0;
	if (!YAJL_IS_OBJECT(u))
		return kv_err_make(err, EINVAL, "%s.user: must be an object", path);
	yajl_val v;
	if ((v = kv_jget(u, "uid"))) {
		snprintf(sub, sizeof(sub), "%s.user.uid", path);
		if (get_u64(v, sub, UINT32_MAX - 1, &x, err) < 0)
			return -EINVAL;
		p->uid = x;
	}
	if ((v = kv_jget(u, "gid"))) {
		snprintf(sub, sizeof(sub), "%s.user.gid", path);
		if (get_u64(v, sub, UINT32_MAX - 1, &x, err) < 0)
			return -EINVAL;
		p->gid = x;
	}
	if ((v = kv_jget(u, "umask")) && !YAJL_IS_NULL(v)) {
		snprintf(sub, sizeof(sub), "%s.user.umask", path);
		if (get_u64(v, sub, 0777, &x, err) < 0)
			return -EINVAL;
		p->umask = x;
	}
	if (kv_jget(u, "username") && !YAJL_IS_NULL(kv_jget(u, "username")))
		return kv_err_make(err, ENOTSUP, "%s.user.username: not supported, give uid/gid",
				   path);
	v = kv_jget(u, "additionalGids");
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > 65536)
		return kv_err_make(err, EINVAL, "%s.user.additionalGids: must be an array", path);
	p->gids = kv_malloc0((v->u.array.len + 1) * sizeof(gid_t));
	for (size_t i = 0; i < v->u.array.len; i++) {
		snprintf(sub, sizeof(sub), "%s.user.additionalGids[%zu]", path, i);
		if (get_u64(v->u.array.values[i], sub, UINT32_MAX - 1, &x, err) < 0)
			return -EINVAL;
		p->gids[p->ngids++] = x;
	}
	return 0;
}

static int decode_env(yajl_val v, const char *path, struct kv_process *p, struct kv_err **err)
{
	char sub[192];
	snprintf(sub, sizeof(sub), "%s.env", path);
	if (get_strv(v, sub, false, &p->env, NULL, err) < 0)
		return -EINVAL;
	for (size_t i = 0; p->env[i]; i++)
		if (!strchr(p->env[i], '=') || p->env[i][0] == '=')
			return kv_err_make(err, EINVAL, "%s[%zu]: must be NAME=VALUE", sub, i);
	return 0;
}

static int decode_console(yajl_val v, const char *path, struct kv_process *p, struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v))
		return 0;
	char sub[192];
	uint64_t x;
	snprintf(sub, sizeof(sub), "%s.consoleSize.height", path);
	yajl_val h = kv_jget(v, "height"), w = kv_jget(v, "width");
	if (h && get_u64(h, sub, 65535, &x, err) < 0)
		return -EINVAL;
	p->rows = h ? x : 0;
	snprintf(sub, sizeof(sub), "%s.consoleSize.width", path);
	if (w && get_u64(w, sub, 65535, &x, err) < 0)
		return -EINVAL;
	p->cols = w ? x : 0;
	return 0;
}

int kv_process_decode(yajl_val v, const char *path, struct kv_process *p, struct kv_err **err)
{
	memset(p, 0, sizeof(*p));
	p->umask = -1;
	if (!v || !YAJL_IS_OBJECT(v))
		return kv_err_make(err, EINVAL, "%s: must be an object", path);
	char sub[192];
	snprintf(sub, sizeof(sub), "%s.args", path);
	if (get_strv(kv_jget(v, "args"), sub, true, &p->args, NULL, err) < 0)
		return -EINVAL;
	if (!p->args[0][0])
		return kv_err_make(err, EINVAL, "%s[0]: must not be empty", sub);
	if (decode_env(kv_jget(v, "env"), path, p, err) < 0)
		return -EINVAL;
	if (get_str(v, "cwd", path, &p->cwd, err) < 0)
		return -EINVAL;
	if (!p->cwd)
		p->cwd = kv_strdup("/");
	if (!oci_path_is_abs_clean(p->cwd))
		return kv_err_make(err, EINVAL, "%s.cwd: must be an absolute path without ..",
				   path);
	p->terminal = get_bool(v, "terminal");
	p->no_new_privs = get_bool(v, "noNewPrivileges");
	yajl_val oom = kv_jget(v, "oomScoreAdj");
	if (oom && !YAJL_IS_NULL(oom)) {
		int64_t x = 0;
		snprintf(sub, sizeof(sub), "%s.oomScoreAdj", path);
		if (get_i64(oom, sub, -1000, 1000, &x, err) < 0)
			return -EINVAL;
		p->has_oom_score_adj = true;
		p->oom_score_adj = x;
	}
	if (decode_user(kv_jget(v, "user"), path, p, err) < 0 ||
	    decode_rlimits(kv_jget(v, "rlimits"), path, p, err) < 0 ||
	    decode_caps(kv_jget(v, "capabilities"), path, p, err) < 0 ||
	    decode_console(kv_jget(v, "consoleSize"), path, p, err) < 0)
		return -EINVAL;
	return 0;
}

void kv_process_clear(struct kv_process *p)
{
	strv_free(p->args);
	strv_free(p->env);
	free(p->cwd);
	free(p->gids);
	free(p->rlimits);
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

static int decode_mount_options(yajl_val opts, const char *path, struct kv_mount *m,
				struct kv_err **err)
{
	char **sv = NULL;
	size_t n = 0;
	if (get_strv(opts, path, false, &sv, &n, err) < 0)
		return -EINVAL;
	unsigned long set = 0, clear = 0;
	size_t dlen = 0;
	char *data = kv_malloc0(1);
	for (size_t i = 0; i < n; i++) {
		if (kv_mount_option(sv[i], &set, &clear, &m->propagation, &m->bind, &m->recursive))
			continue;
		if (strchr(sv[i], ',')) {
			strv_free(sv);
			free(data);
			return kv_err_make(err, EINVAL, "%s[%zu]: must not contain a comma", path,
					   i);
		}
		size_t l = strlen(sv[i]);
		char *nd = realloc(data, dlen + l + 2);
		if (!nd)
			abort();
		data = nd;
		if (dlen)
			data[dlen++] = ',';
		memcpy(data + dlen, sv[i], l + 1);
		dlen += l;
	}
	strv_free(sv);
	m->flags = set & ~clear;
	m->data = data;
	return 0;
}

static int decode_mount(yajl_val v, size_t i, struct kv_mount *m, struct kv_err **err)
{
	char path[64];
	snprintf(path, sizeof(path), "mounts[%zu]", i);
	if (!YAJL_IS_OBJECT(v))
		return kv_err_make(err, EINVAL, "%s: must be an object", path);
	if (get_str(v, "destination", path, &m->destination, err) < 0 ||
	    get_str(v, "type", path, &m->type, err) < 0 ||
	    get_str(v, "source", path, &m->source, err) < 0)
		return -EINVAL;
	if (!oci_path_is_abs_clean(m->destination))
		return kv_err_make(err, EINVAL,
				   "%s.destination: must be an absolute path without ..", path);
	char sub[128];
	snprintf(sub, sizeof(sub), "%s.options", path);
	if (decode_mount_options(kv_jget(v, "options"), sub, m, err) < 0)
		return -EINVAL;
	if (m->type && strcmp(m->type, "bind") == 0)
		m->bind = true;
	if (!m->type && !m->bind)
		return kv_err_make(err, EINVAL, "%s.type: missing (and not a bind mount)", path);
	if (m->bind) {
		if (!m->source || m->source[0] != '/')
			return kv_err_make(err, EINVAL,
					   "%s.source: a bind mount needs an absolute "
					   "source",
					   path);
		m->remount_ro = m->flags & MS_RDONLY;
	}
	if (!m->source)
		m->source = kv_strdup(m->type);
	return 0;
}

static int decode_mounts(yajl_val v, struct kv_spec *s, struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > 1024)
		return BAD("mounts", "must be an array of at most 1024 mounts");
	s->mounts = kv_malloc0((v->u.array.len + 1) * sizeof(*s->mounts));
	for (size_t i = 0; i < v->u.array.len; i++) {
		if (decode_mount(v->u.array.values[i], i, &s->mounts[i], err) < 0) {
			s->nmounts = i + 1;
			return -EINVAL;
		}
		s->nmounts = i + 1;
	}
	return 0;
}

/* ------------------------------------------------------------- linux */

static const struct {
	const char *name;
	int flag, index;
} ns_names[] = {
    {"pid", CLONE_NEWPID, KV_NS_PID},	       {"mount", CLONE_NEWNS, KV_NS_MOUNT},
    {"uts", CLONE_NEWUTS, KV_NS_UTS},	       {"ipc", CLONE_NEWIPC, KV_NS_IPC},
    {"cgroup", CLONE_NEWCGROUP, KV_NS_CGROUP}, {"network", CLONE_NEWNET, KV_NS_NET},
};

static int decode_namespaces(yajl_val v, struct kv_spec *s, struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return BAD("linux.namespaces", "must be an array");
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		const char *type = kv_jstr(e, "type");
		size_t k = 0;
		while (type && k < KV_ARRAY_SIZE(ns_names) && strcmp(ns_names[k].name, type))
			k++;
		if (!type || k == KV_ARRAY_SIZE(ns_names))
			return kv_err_make(
			    err, type && strcmp(type, "user") == 0 ? ENOTSUP : EINVAL,
			    "linux.namespaces[%zu].type: %s %s", i,
			    type ? "unsupported namespace" : "missing", type ? type : "");
		const char *p = kv_jstr(e, "path");
		if (p && *p) {
			if (!oci_path_is_abs_clean(p))
				return kv_err_make(
				    err, EINVAL, "linux.namespaces[%zu].path: must be absolute", i);
			free(s->ns_paths[ns_names[k].index]);
			s->ns_paths[ns_names[k].index] = kv_strdup(p);
		} else {
			s->ns_flags |= ns_names[k].flag;
		}
	}
	return 0;
}

int kv_resources_decode(yajl_val v, struct kv_resources *r, bool *has, struct kv_err **err)
{
	r->memory_limit = r->memory_reservation = r->memory_swap = r->cpu_quota = -1;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_OBJECT(v))
		return BAD("linux.resources", "must be an object");
	*has = true;
	yajl_val mem = kv_jget(v, "memory"), cpu = kv_jget(v, "cpu"), pids = kv_jget(v, "pids");
	yajl_val x;
	if ((x = kv_jget(mem, "limit")) &&
	    get_i64(x, "linux.resources.memory.limit", -1, INT64_MAX, &r->memory_limit, err) < 0)
		return -EINVAL;
	if ((x = kv_jget(mem, "reservation")) &&
	    get_i64(x, "linux.resources.memory.reservation", -1, INT64_MAX, &r->memory_reservation,
		    err) < 0)
		return -EINVAL;
	if ((x = kv_jget(mem, "swap")) &&
	    get_i64(x, "linux.resources.memory.swap", -1, INT64_MAX, &r->memory_swap, err) < 0)
		return -EINVAL;
	if ((x = kv_jget(cpu, "shares")) &&
	    get_u64(x, "linux.resources.cpu.shares", 262144, &r->cpu_shares, err) < 0)
		return -EINVAL;
	if ((x = kv_jget(cpu, "quota")) &&
	    get_i64(x, "linux.resources.cpu.quota", -1, INT64_MAX, &r->cpu_quota, err) < 0)
		return -EINVAL;
	if ((x = kv_jget(cpu, "period")) &&
	    get_u64(x, "linux.resources.cpu.period", 1000000, &r->cpu_period, err) < 0)
		return -EINVAL;
	if (get_str(cpu, "cpus", "linux.resources.cpu", &r->cpus, err) < 0 ||
	    get_str(cpu, "mems", "linux.resources.cpu", &r->mems, err) < 0)
		return -EINVAL;
	if ((x = kv_jget(pids, "limit")) &&
	    get_i64(x, "linux.resources.pids.limit", -1, INT64_MAX, &r->pids_limit, err) < 0)
		return -EINVAL;
	if (r->pids_limit == 0 && x)
		r->pids_limit = -1; /* the spec: 0 or -1 means unlimited */
	/* As runc reads them, 0 means "not set" (Docker's update sends every
	 * field, 0 for the ones it leaves alone: a memory.max of 0 would kill). */
	int64_t *zero_unset[] = {&r->memory_limit, &r->memory_reservation, &r->memory_swap,
				 &r->cpu_quota};
	for (size_t i = 0; i < KV_ARRAY_SIZE(zero_unset); i++)
		if (*zero_unset[i] == 0)
			*zero_unset[i] = -1;
	return 0;
}

static int decode_sysctl(yajl_val v, struct kv_spec *s, struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_OBJECT(v))
		return BAD("linux.sysctl", "must be an object");
	s->sysctls = kv_malloc0((v->u.object.len + 1) * sizeof(*s->sysctls));
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val val = v->u.object.values[i];
		if (!*k || strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_.-/") != strlen(k) ||
		    strstr(k, "..") || k[0] == '.' || k[0] == '/')
			return kv_err_make(err, EINVAL, "linux.sysctl.%s: invalid name", k);
		if (!YAJL_IS_STRING(val))
			return kv_err_make(err, EINVAL, "linux.sysctl.%s: must be a string", k);
		s->sysctls[i].key = kv_strdup(k);
		s->sysctls[i].value = kv_strdup(val->u.string);
		s->nsysctls++;
	}
	return 0;
}

int kv_seccomp_decode(yajl_val v, struct kv_seccomp **out, struct kv_err **err);
void kv_seccomp_free(struct kv_seccomp *s);

static int decode_propagation(const char *p, unsigned long *out, struct kv_err **err)
{
	if (!p || !*p)
		return 0;
	const struct oci_mount_flag *f = oci_mount_flag_find(p);
	if (f && f->propagation) {
		*out = f->propagation;
		return 0;
	}
	return kv_err_make(err, EINVAL, "linux.rootfsPropagation: unknown value %s", p);
}

static int decode_linux(yajl_val v, struct kv_spec *s, struct kv_err **err)
{
	if (!v || YAJL_IS_NULL(v))
		return kv_resources_decode(NULL, &s->res, &s->has_res, err);
	if (!YAJL_IS_OBJECT(v))
		return BAD("linux", "must be an object");
	if (decode_namespaces(kv_jget(v, "namespaces"), s, err) < 0 ||
	    kv_resources_decode(kv_jget(v, "resources"), &s->res, &s->has_res, err) < 0 ||
	    decode_sysctl(kv_jget(v, "sysctl"), s, err) < 0)
		return -EINVAL;
	if (get_strv(kv_jget(v, "maskedPaths"), "linux.maskedPaths", false, &s->masked_paths,
		     &s->nmasked, err) < 0 ||
	    get_strv(kv_jget(v, "readonlyPaths"), "linux.readonlyPaths", false, &s->readonly_paths,
		     &s->nreadonly, err) < 0)
		return -EINVAL;
	for (size_t i = 0; i < s->nmasked; i++)
		if (!oci_path_is_abs_clean(s->masked_paths[i]))
			return kv_err_make(err, EINVAL, "linux.maskedPaths[%zu]: must be absolute",
					   i);
	for (size_t i = 0; i < s->nreadonly; i++)
		if (!oci_path_is_abs_clean(s->readonly_paths[i]))
			return kv_err_make(err, EINVAL,
					   "linux.readonlyPaths[%zu]: must be absolute", i);
	if (get_str(v, "cgroupsPath", "linux", &s->cgroups_path, err) < 0)
		return -EINVAL;
	cleanup_free char *prop = NULL;
	if (get_str(v, "rootfsPropagation", "linux", &prop, err) < 0 ||
	    decode_propagation(prop, &s->rootfs_propagation, err) < 0)
		return -EINVAL;
	yajl_val sc = kv_jget(v, "seccomp");
	if (sc && !YAJL_IS_NULL(sc) && kv_seccomp_decode(sc, &s->seccomp, err) < 0)
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------- rootfs */

static int decode_layer(yajl_val v, const char *path, struct kv_layer *l, struct kv_err **err)
{
	if (!YAJL_IS_OBJECT(v))
		return kv_err_make(err, EINVAL, "%s: must be an object", path);
	if (get_str(v, "device", path, &l->device, err) < 0 ||
	    get_str(v, "fstype", path, &l->fstype, err) < 0 ||
	    get_str(v, "options", path, &l->options, err) < 0 ||
	    get_str(v, "path", path, &l->path, err) < 0)
		return -EINVAL;
	if (!!l->device == !!l->path)
		return kv_err_make(err, EINVAL, "%s: needs exactly one of device, path", path);
	if (l->device && (!oci_path_is_abs_clean(l->device) || !l->fstype))
		return kv_err_make(err, EINVAL, "%s: a device needs an absolute path and fstype",
				   path);
	if (l->path && !oci_path_is_abs_clean(l->path))
		return kv_err_make(err, EINVAL, "%s.path: must be absolute", path);
	return 0;
}

static int decode_layers(yajl_val v, struct kv_rootfs *r, struct kv_err **err)
{
	yajl_val layers = kv_jget(v, "layers");
	if (!layers || !YAJL_IS_ARRAY(layers) || layers->u.array.len == 0 ||
	    layers->u.array.len > 128)
		return BAD("rootfs.layers", "must be an array of 1..128 layers");
	r->layers = kv_malloc0(layers->u.array.len * sizeof(*r->layers));
	for (size_t i = 0; i < layers->u.array.len; i++) {
		char path[48];
		snprintf(path, sizeof(path), "rootfs.layers[%zu]", i);
		r->nlayers++;
		if (decode_layer(layers->u.array.values[i], path, &r->layers[i], err) < 0)
			return -EINVAL;
	}
	yajl_val up = kv_jget(v, "upper");
	if (up && !YAJL_IS_NULL(up) && decode_layer(up, "rootfs.upper", &r->upper, err) < 0)
		return -EINVAL;
	return 0;
}

int kv_rootfs_decode(yajl_val v, struct kv_spec *s, struct kv_err **err)
{
	struct kv_rootfs *r = &s->rootfs;
	if (!v || YAJL_IS_NULL(v)) {
		if (s->root_path) {
			r->type = kv_strdup("dir");
			r->path = kv_strdup(s->root_path);
		}
		return 0;
	}
	if (!YAJL_IS_OBJECT(v))
		return BAD("rootfs", "must be an object");
	if (get_str(v, "type", "rootfs", &r->type, err) < 0 ||
	    get_str(v, "path", "rootfs", &r->path, err) < 0 ||
	    get_str(v, "device", "rootfs", &r->device, err) < 0 ||
	    get_str(v, "fstype", "rootfs", &r->fstype, err) < 0 ||
	    get_str(v, "options", "rootfs", &r->options, err) < 0 ||
	    get_str(v, "tag", "rootfs", &r->tag, err) < 0)
		return -EINVAL;
	const char *t = r->type ? r->type : "";
	if (strcmp(t, "dir") == 0) {
		if (!r->path && s->root_path)
			r->path = kv_strdup(s->root_path);
		if (!oci_path_is_abs_clean(r->path))
			return BAD("rootfs.path", "must be an absolute path");
	} else if (strcmp(t, "block") == 0) {
		if (!oci_path_is_abs_clean(r->device) || !r->fstype)
			return BAD("rootfs", "block needs an absolute device and an fstype");
	} else if (strcmp(t, "virtiofs") == 0 || strcmp(t, "9p") == 0) {
		if (!r->tag || !*r->tag || strchr(r->tag, ','))
			return BAD("rootfs.tag", "must be a non-empty tag");
	} else if (strcmp(t, "overlay") == 0) {
		return decode_layers(v, r, err);
	} else {
		return kv_err_make(
		    err, EINVAL, "rootfs.type: unknown %s (want dir, block, virtiofs, 9p, overlay)",
		    t);
	}
	if (r->options && strpbrk(r->options, "\n"))
		return BAD("rootfs.options", "invalid");
	return 0;
}

static void layer_clear(struct kv_layer *l)
{
	free(l->device);
	free(l->fstype);
	free(l->options);
	free(l->path);
}

static void rootfs_clear(struct kv_rootfs *r)
{
	free(r->type);
	free(r->path);
	free(r->device);
	free(r->fstype);
	free(r->options);
	free(r->tag);
	for (size_t i = 0; i < r->nlayers; i++)
		layer_clear(&r->layers[i]);
	free(r->layers);
	layer_clear(&r->upper);
}

/*
 * hostname, domainname: at most 64 bytes (the kernel's limit), set in a uts
 * namespace of the container's own. An empty one is none: runc leaves the
 * name as the namespace has it, and the host's oci/ accepts it so.
 */
static int decode_uts_name(yajl_val root, const char *key, const struct kv_spec *s, char **out,
			   struct kv_err **err)
{
	if (get_str(root, key, "spec", out, err) < 0)
		return -EINVAL;
	if (*out && !**out) {
		free(*out);
		*out = NULL;
	}
	if (!*out)
		return 0;
	if (strlen(*out) > 64 || strchr(*out, '/'))
		return kv_err_make(err, EINVAL, "%s: must be at most 64 characters, without /",
				   key);
	if (!(s->ns_flags & CLONE_NEWUTS) && !s->ns_paths[KV_NS_UTS])
		return kv_err_make(err, EINVAL, "%s: needs a uts namespace in linux.namespaces",
				   key);
	return 0;
}

struct kv_spec *kv_spec_decode(yajl_val root, struct kv_err **err)
{
	if (!root || !YAJL_IS_OBJECT(root)) {
		kv_err_make(err, EINVAL, "spec: must be an object");
		return NULL;
	}
	cleanup_spec struct kv_spec *s = kv_malloc0(sizeof(*s));
	if (kv_process_decode(kv_jget(root, "process"), "process", &s->process, err) < 0)
		return NULL;
	yajl_val r = kv_jget(root, "root");
	if (r && !YAJL_IS_NULL(r)) {
		if (want_type(r, YAJL_IS_OBJECT(r), "root", "an object", err) < 0 ||
		    get_str(r, "path", "root", &s->root_path, err) < 0)
			return NULL;
		s->root_readonly = get_bool(r, "readonly");
	}
	if (decode_mounts(kv_jget(root, "mounts"), s, err) < 0 ||
	    decode_linux(kv_jget(root, "linux"), s, err) < 0 ||
	    decode_uts_name(root, "hostname", s, &s->hostname, err) < 0 ||
	    decode_uts_name(root, "domainname", s, &s->domainname, err) < 0)
		return NULL;
	return steal_ptr(s);
}

void kv_spec_free(struct kv_spec *s)
{
	if (!s)
		return;
	kv_process_clear(&s->process);
	rootfs_clear(&s->rootfs);
	free(s->root_path);
	free(s->hostname);
	free(s->domainname);
	for (size_t i = 0; i < s->nmounts; i++) {
		free(s->mounts[i].destination);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
		free(s->mounts[i].data);
	}
	free(s->mounts);
	strv_free(s->masked_paths);
	strv_free(s->readonly_paths);
	for (size_t i = 0; i < KV_ARRAY_SIZE(s->ns_paths); i++)
		free(s->ns_paths[i]);
	free(s->cgroups_path);
	free(s->res.cpus);
	free(s->res.mems);
	for (size_t i = 0; i < s->nsysctls; i++) {
		free(s->sysctls[i].key);
		free(s->sysctls[i].value);
	}
	free(s->sysctls);
	kv_seccomp_free(s->seccomp);
	free(s);
}
