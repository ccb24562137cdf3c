/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json "linux": namespaces, id mappings, resources, sysctl, seccomp,
 * masked/readonly paths, devices, propagation, labels.
 */
#include "oci/internal.h"

#include <ctype.h>
#include <string.h>

/* ------------------------------------------------------------ namespaces */

static int parse_ns(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_namespace *ns = elem, *all = ns - i;
	char *type = NULL;
	if (pc_str(c, v, "type", true, &type) < 0 || pc_str(c, v, "path", false, &ns->path) < 0)
		return -1;
	int t = oci_ns_from_name(type);
	if (t < 0)
		return pc_fail_at(c, "type", "unknown namespace \"%s\"", type);
	for (size_t j = 0; j < i; j++)
		if ((int)all[j].type == t)
			return pc_fail_at(c, "type", "duplicate namespace \"%s\"", type);
	ns->type = t;
	if (ns->path && !oci_path_is_abs(ns->path))
		return pc_fail_at(c, "path", "must be an absolute path");
	return 0;
}

static int parse_idmap(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_idmap *m = elem;
	if (pc_u32(c, v, "containerID", true, &m->container_id, NULL) < 0 ||
	    pc_u32(c, v, "hostID", true, &m->host_id, NULL) < 0 ||
	    pc_u32(c, v, "size", true, &m->size, NULL) < 0)
		return -1;
	if (m->size == 0)
		return pc_fail_at(c, "size", "must be greater than 0");
	return 0;
}

/* ------------------------------------------------------------- resources */

static int parse_dev_rule(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_device_rule *d = elem;
	char *type = NULL;
	if (!YAJL_IS_TRUE(pc_get(v, "allow")) && !YAJL_IS_FALSE(pc_get(v, "allow")))
		return pc_get(v, "allow") ? pc_fail_at(c, "allow", "must be a boolean")
					  : pc_fail_at(c, "allow", "required field is missing");
	d->allow = YAJL_IS_TRUE(pc_get(v, "allow"));
	if (pc_str(c, v, "type", false, &type) < 0 ||
	    pc_i64(c, v, "major", false, -1, INT64_MAX, &d->major, &d->has_major) < 0 ||
	    pc_i64(c, v, "minor", false, -1, INT64_MAX, &d->minor, &d->has_minor) < 0 ||
	    pc_str(c, v, "access", true, &d->access) < 0)
		return -1;
	d->type = 'a';
	if (type) {
		if (strlen(type) != 1 || !strchr("abc", type[0]))
			return pc_fail_at(c, "type", "must be one of \"a\", \"b\", \"c\"");
		d->type = type[0];
	}
	/*
	 * runc 1.1 refuses only an empty access ("device access at N field
	 * cannot be empty"); its device rules take the r, w and m of any other
	 * string, in any order and repeated, and ignore other letters.
	 */
	if (!*d->access)
		return pc_fail_at(c, "access", "must not be empty");
	return 0;
}

/* "0-3,5,7-8": what cpuset.cpus and cpuset.mems accept. */
static bool valid_cpu_list(const char *s)
{
	if (*s == '\0')
		return true;
	for (;;) {
		if (!isdigit((unsigned char)*s))
			return false;
		unsigned long a = strtoul(s, (char **)&s, 10);
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				return false;
			unsigned long b = strtoul(s, (char **)&s, 10);
			if (b < a)
				return false;
		}
		if (*s == '\0')
			return true;
		if (*s++ != ',')
			return false;
	}
}

static int parse_memory(struct pctx *c, yajl_val res, struct oci_resources *r)
{
	yajl_val v;
	if (pc_obj(c, res, "memory", false, &v) < 0)
		return -1;
	if (!v)
		return 0;
	size_t old = pc_push_key(c, "memory");
	int rc = -1;
	if (pc_i64(c, v, "limit", false, -1, INT64_MAX, &r->memory_limit, &r->has_memory_limit) <
		0 ||
	    pc_i64(c, v, "reservation", false, -1, INT64_MAX, &r->memory_reservation,
		   &r->has_memory_reservation) < 0 ||
	    pc_i64(c, v, "swap", false, -1, INT64_MAX, &r->memory_swap, &r->has_memory_swap) < 0 ||
	    pc_u64(c, v, "swappiness", false, 100, &r->memory_swappiness,
		   &r->has_memory_swappiness) < 0)
		goto out;
	/* As in runc: swap is memory+swap, so it cannot be below the limit. */
	if (r->has_memory_swap && r->has_memory_limit && r->memory_swap > 0 &&
	    r->memory_limit > 0 && r->memory_swap < r->memory_limit) {
		pc_fail_at(c, "swap", "must not be smaller than memory.limit");
		goto out;
	}
	rc = 0;
out:
	pc_pop(c, old);
	return rc;
}

static int parse_cpu(struct pctx *c, yajl_val res, struct oci_resources *r)
{
	yajl_val v;
	if (pc_obj(c, res, "cpu", false, &v) < 0)
		return -1;
	if (!v)
		return 0;
	size_t old = pc_push_key(c, "cpu");
	int64_t rt_runtime;
	uint64_t rt_period;
	int rc = -1;
	if (pc_u64(c, v, "shares", false, UINT64_MAX, &r->cpu_shares, &r->has_cpu_shares) < 0 ||
	    pc_i64(c, v, "quota", false, -1, INT64_MAX, &r->cpu_quota, &r->has_cpu_quota) < 0 ||
	    pc_u64(c, v, "period", false, UINT64_MAX, &r->cpu_period, &r->has_cpu_period) < 0 ||
	    pc_i64(c, v, "realtimeRuntime", false, INT64_MIN, INT64_MAX, &rt_runtime, NULL) < 0 ||
	    pc_u64(c, v, "realtimePeriod", false, UINT64_MAX, &rt_period, NULL) < 0 ||
	    pc_str(c, v, "cpus", false, &r->cpu_cpus) < 0 ||
	    pc_str(c, v, "mems", false, &r->cpu_mems) < 0)
		goto out;
	if (r->cpu_cpus && !valid_cpu_list(r->cpu_cpus)) {
		pc_fail_at(c, "cpus", "invalid CPU list \"%s\"", r->cpu_cpus);
		goto out;
	}
	if (r->cpu_mems && !valid_cpu_list(r->cpu_mems)) {
		pc_fail_at(c, "mems", "invalid memory node list \"%s\"", r->cpu_mems);
		goto out;
	}
	rc = 0;
out:
	pc_pop(c, old);
	return rc;
}

static int parse_small_sections(struct pctx *c, yajl_val res, struct oci_resources *r)
{
	yajl_val pids, blkio;
	if (pc_obj(c, res, "pids", false, &pids) < 0 ||
	    pc_obj(c, res, "blockIO", false, &blkio) < 0)
		return -1;
	size_t old = pc_push_key(c, "pids");
	int rc = pc_i64(c, pids, "limit", false, -1, INT64_MAX, &r->pids_limit, &r->has_pids_limit);
	pc_pop(c, old);
	if (rc < 0)
		return -1;
	uint64_t w = 0;
	old = pc_push_key(c, "blockIO");
	rc = pc_u64(c, blkio, "weight", false, 1000, &w, &r->has_blkio_weight);
	pc_pop(c, old);
	r->blkio_weight = (uint16_t)w;
	return rc;
}

int oci_parse_resources(struct pctx *c, yajl_val v, struct oci_resources **out)
{
	if (!YAJL_IS_OBJECT(v))
		return pc_fail(c, "must be an object");
	struct oci_resources *r = pc_alloc(c, sizeof(*r));
	if (parse_memory(c, v, r) < 0 || parse_cpu(c, v, r) < 0 ||
	    parse_small_sections(c, v, r) < 0 ||
	    pc_each(c, v, "devices", &r->n_devices, sizeof(*r->devices), (void **)&r->devices,
		    parse_dev_rule) < 0)
		return -1;
	*out = r;
	return 0;
}

/* --------------------------------------------------------------- seccomp */

static int check_action(struct pctx *c, const char *key, const char *action)
{
	if (strcmp(action, "SCMP_ACT_NOTIFY") == 0)
		return pc_fail_at(c, key, "SCMP_ACT_NOTIFY is not supported by kvrun");
	if (!oci_name_in(action, oci_seccomp_actions, oci_seccomp_action_count))
		return pc_fail_at(c, key, "unknown action \"%s\"", action);
	return 0;
}

static int parse_sc_arg(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_seccomp_arg *a = elem;
	if (pc_u32(c, v, "index", true, &a->index, NULL) < 0 ||
	    pc_u64(c, v, "value", true, UINT64_MAX, &a->value, NULL) < 0 ||
	    pc_u64(c, v, "valueTwo", false, UINT64_MAX, &a->value_two, NULL) < 0 ||
	    pc_str(c, v, "op", true, &a->op) < 0)
		return -1;
	/* A syscall has at most six arguments. */
	if (a->index > 5)
		return pc_fail_at(c, "index", "out of range (maximum 5)");
	if (!oci_name_in(a->op, oci_seccomp_operators, oci_seccomp_operator_count))
		return pc_fail_at(c, "op", "unknown operator \"%s\"", a->op);
	return 0;
}

static int parse_syscall(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_seccomp_syscall *s = elem;
	yajl_val names = pc_get(v, "names");
	if (!YAJL_IS_ARRAY(names) || names->u.array.len == 0)
		return pc_fail_at(c, "names", "must be a non-empty array");
	if (pc_strv(c, v, "names", &s->names) < 0 || pc_str(c, v, "action", true, &s->action) < 0 ||
	    check_action(c, "action", s->action) < 0 ||
	    pc_u32(c, v, "errnoRet", false, &s->errno_ret, &s->has_errno_ret) < 0)
		return -1;
	return pc_each(c, v, "args", &s->n_args, sizeof(*s->args), (void **)&s->args, parse_sc_arg);
}

static int check_names(struct pctx *c, const char *key, const struct oci_strv *v,
		       bool (*known)(const char *), const char *what)
{
	for (size_t i = 0; i < v->n; i++)
		if (!known(v->v[i]))
			return pc_fail_idx(c, key, i, "unknown %s \"%s\"", what, v->v[i]);
	return 0;
}

static bool known_flag(const char *f)
{
	return oci_name_in(f, oci_seccomp_flags, oci_seccomp_flag_count);
}

int oci_parse_seccomp(struct pctx *c, yajl_val v, struct oci_seccomp **out)
{
	if (!YAJL_IS_OBJECT(v))
		return pc_fail(c, "must be an object");
	struct oci_seccomp *s = pc_alloc(c, sizeof(*s));
	char *listener = NULL;
	if (pc_str(c, v, "defaultAction", true, &s->default_action) < 0 ||
	    check_action(c, "defaultAction", s->default_action) < 0 ||
	    pc_u32(c, v, "defaultErrnoRet", false, &s->default_errno_ret,
		   &s->has_default_errno_ret) < 0 ||
	    pc_strv(c, v, "architectures", &s->architectures) < 0 ||
	    check_names(c, "architectures", &s->architectures, oci_seccomp_arch_accepted,
			"architecture") < 0 ||
	    pc_strv(c, v, "flags", &s->flags) < 0 ||
	    check_names(c, "flags", &s->flags, known_flag, "flag") < 0 ||
	    pc_str(c, v, "listenerPath", false, &listener) < 0 ||
	    pc_each(c, v, "syscalls", &s->n_syscalls, sizeof(*s->syscalls), (void **)&s->syscalls,
		    parse_syscall) < 0)
		return -1;
	if (listener && *listener)
		return pc_fail_at(c, "listenerPath",
				  "seccomp notification is not supported by kvrun");
	*out = s;
	return 0;
}

/* ----------------------------------------------------------------- other */

static int parse_device(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_device *d = elem;
	char *type = NULL;
	if (pc_str(c, v, "path", true, &d->path) < 0 || pc_str(c, v, "type", true, &type) < 0)
		return -1;
	if (!oci_path_is_abs(d->path))
		return pc_fail_at(c, "path", "must be an absolute path");
	if (strlen(type) != 1 || !strchr("cbup", type[0]))
		return pc_fail_at(c, "type", "must be one of \"c\", \"b\", \"u\", \"p\"");
	d->type = type[0];
	bool need_nums = d->type != 'p';
	if (pc_i64(c, v, "major", need_nums, 0, UINT32_MAX, &d->major, NULL) < 0 ||
	    pc_i64(c, v, "minor", need_nums, 0, UINT32_MAX, &d->minor, NULL) < 0 ||
	    pc_u32(c, v, "fileMode", false, &d->file_mode, &d->has_file_mode) < 0 ||
	    pc_u32(c, v, "uid", false, &d->uid, &d->has_uid) < 0 ||
	    pc_u32(c, v, "gid", false, &d->gid, &d->has_gid) < 0)
		return -1;
	if (d->has_file_mode && d->file_mode > 07777)
		return pc_fail_at(c, "fileMode", "must be at most 07777 (4095)");
	return 0;
}

static int check_abs_paths(struct pctx *c, const char *key, const struct oci_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		if (!oci_path_is_abs(v->v[i]))
			return pc_fail_idx(c, key, i, "must be an absolute path");
	return 0;
}

/* A sysctl name becomes a path under /proc/sys in the guest: no way out. */
static bool valid_sysctl_key(const char *k)
{
	if (k[strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")])
		return false;
	const char *seg = k;
	for (const char *p = k;; p++) {
		if (*p == '.' || *p == '/' || *p == '\0') {
			size_t n = (size_t)(p - seg);
			if (n == 0 || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return false;
			if (*p == '\0')
				return true;
			seg = p + 1;
		}
	}
}

static const char *const propagations[] = {
    "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
};

static int check_linux(struct pctx *c, struct oci_linux *l)
{
	for (size_t i = 0; i < l->sysctl.n; i++)
		if (!valid_sysctl_key(l->sysctl.v[i].key))
			return pc_fail_at(c, "sysctl", "invalid key \"%s\"", l->sysctl.v[i].key);
	if (check_abs_paths(c, "maskedPaths", &l->masked_paths) < 0 ||
	    check_abs_paths(c, "readonlyPaths", &l->readonly_paths) < 0)
		return -1;
	if (l->rootfs_propagation && *l->rootfs_propagation &&
	    !oci_name_in(l->rootfs_propagation, propagations, KV_ARRAY_SIZE(propagations)))
		return pc_fail_at(c, "rootfsPropagation", "unknown propagation \"%s\"",
				  l->rootfs_propagation);
	return 0;
}

static int sub_resources(struct pctx *c, yajl_val v, void *out)
{
	return oci_parse_resources(c, v, out);
}

static int sub_seccomp(struct pctx *c, yajl_val v, void *out)
{
	return oci_parse_seccomp(c, v, out);
}

int oci_parse_linux(struct pctx *c, yajl_val v, struct oci_linux **out)
{
	struct oci_linux *l = pc_alloc(c, sizeof(*l));
	if (pc_each(c, v, "namespaces", &l->n_namespaces, sizeof(*l->namespaces),
		    (void **)&l->namespaces, parse_ns) < 0 ||
	    pc_each(c, v, "uidMappings", &l->n_uid_mappings, sizeof(struct oci_idmap),
		    (void **)&l->uid_mappings, parse_idmap) < 0 ||
	    pc_each(c, v, "gidMappings", &l->n_gid_mappings, sizeof(struct oci_idmap),
		    (void **)&l->gid_mappings, parse_idmap) < 0 ||
	    pc_sub(c, v, "resources", sub_resources, &l->resources) < 0 ||
	    pc_str(c, v, "cgroupsPath", false, &l->cgroups_path) < 0 ||
	    pc_map(c, v, "sysctl", &l->sysctl) < 0 ||
	    pc_sub(c, v, "seccomp", sub_seccomp, &l->seccomp) < 0 ||
	    pc_strv(c, v, "maskedPaths", &l->masked_paths) < 0 ||
	    pc_strv(c, v, "readonlyPaths", &l->readonly_paths) < 0 ||
	    pc_each(c, v, "devices", &l->n_devices, sizeof(*l->devices), (void **)&l->devices,
		    parse_device) < 0 ||
	    pc_str(c, v, "rootfsPropagation", false, &l->rootfs_propagation) < 0 ||
	    pc_str(c, v, "mountLabel", false, &l->mount_label) < 0 || check_linux(c, l) < 0)
		return -1;
	*out = l;
	return 0;
}
