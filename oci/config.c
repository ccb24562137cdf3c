/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json: the top level, process, root, mounts, hooks, annotations,
 * and the checks that span sections. The linux section is in linux.c.
 */
#include "oci/internal.h"

#include <limits.h>
#include <string.h>

/* HOST_NAME_MAX on Linux; the kernel refuses longer names. */
#define OCI_HOSTNAME_MAX 64

static int parse_user(struct pctx *c, yajl_val p, struct oci_user *u)
{
	yajl_val v;
	if (pc_obj(c, p, "user", false, &v) < 0)
		return -1;
	if (!v)
		return 0;
	size_t old = pc_push_key(c, "user");
	int r = -1;
	yajl_val gids;
	if (pc_u32(c, v, "uid", false, &u->uid, NULL) < 0 ||
	    pc_u32(c, v, "gid", false, &u->gid, NULL) < 0 ||
	    pc_u32(c, v, "umask", false, &u->umask, &u->has_umask) < 0 ||
	    pc_str(c, v, "username", false, &u->username) < 0 ||
	    pc_arr(c, v, "additionalGids", false, &gids) < 0)
		goto out;
	u->n_additional_gids = pc_arr_len(gids);
	u->additional_gids = pc_alloc(c, u->n_additional_gids * sizeof(uint32_t));
	for (size_t i = 0; i < u->n_additional_gids; i++) {
		size_t o2 = pc_push_key(c, "additionalGids");
		pc_push_idx(c, i);
		uint64_t g;
		int rr = pc_val_u64(c, gids->u.array.values[i], UINT32_MAX, &g);
		pc_pop(c, o2);
		if (rr < 0)
			goto out;
		u->additional_gids[i] = (uint32_t)g;
	}
	if (u->has_umask && u->umask > 0777) {
		pc_fail_at(c, "umask", "must be at most 0777 (511)");
		goto out;
	}
	r = 0;
out:
	pc_pop(c, old);
	return r;
}

static int parse_caps(struct pctx *c, yajl_val p, struct oci_capabilities **out)
{
	yajl_val v;
	if (pc_obj(c, p, "capabilities", false, &v) < 0)
		return -1;
	if (!v)
		return 0;
	struct oci_capabilities *caps = pc_alloc(c, sizeof(*caps));
	size_t old = pc_push_key(c, "capabilities");
	for (int s = 0; s < OCI_CAP_SET_COUNT; s++) {
		struct oci_strv *set = &caps->set[s];
		if (pc_strv(c, v, oci_cap_set_name(s), set) < 0) {
			pc_pop(c, old);
			return -1;
		}
		caps->present[s] = pc_get(v, oci_cap_set_name(s)) != NULL;
		/* Like runc: an unknown capability is dropped with a warning, so a
		 * config written for a newer kernel still runs. */
		size_t kept = 0;
		for (size_t i = 0; i < set->n; i++) {
			if (oci_capability_from_name(set->v[i]) < 0)
				kv_warn("%s.%s: ignoring unknown capability \"%s\"", c->path,
					oci_cap_set_name(s), set->v[i]);
			else
				set->v[kept++] = set->v[i];
		}
		set->n = kept;
		if (set->v)
			set->v[kept] = NULL;
	}
	pc_pop(c, old);
	*out = caps;
	return 0;
}

static int parse_rlimit(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_rlimit *rl = elem, *prev = rl - i;
	if (pc_str(c, v, "type", true, &rl->type) < 0 ||
	    pc_u64(c, v, "hard", true, UINT64_MAX, &rl->hard, NULL) < 0 ||
	    pc_u64(c, v, "soft", true, UINT64_MAX, &rl->soft, NULL) < 0)
		return -1;
	rl->resource = oci_rlimit_from_name(rl->type);
	if (rl->resource < 0)
		return pc_fail_at(c, "type", "unknown rlimit \"%s\"", rl->type);
	for (size_t j = 0; j < i; j++)
		if (prev[j].resource == rl->resource)
			return pc_fail_at(c, "type", "duplicate rlimit \"%s\"", rl->type);
	if (rl->soft > rl->hard)
		return pc_fail_at(c, "soft", "must not exceed hard (%llu)",
				  (unsigned long long)rl->hard);
	return 0;
}

static int parse_console_size(struct pctx *c, yajl_val p, struct oci_process *proc)
{
	yajl_val v;
	if (pc_obj(c, p, "consoleSize", false, &v) < 0)
		return -1;
	if (!v)
		return 0;
	size_t old = pc_push_key(c, "consoleSize");
	int r = 0;
	if (pc_u32(c, v, "height", true, &proc->console_height, NULL) < 0 ||
	    pc_u32(c, v, "width", true, &proc->console_width, NULL) < 0)
		r = -1;
	pc_pop(c, old);
	proc->has_console_size = (r == 0);
	return r;
}

static int check_process(struct pctx *c, struct oci_process *p)
{
	if (!oci_path_is_abs(p->cwd))
		return pc_fail_at(c, "cwd", "must be an absolute path");
	for (size_t i = 0; i < p->env.n; i++) {
		const char *eq = strchr(p->env.v[i], '=');
		if (!eq || eq == p->env.v[i])
			return pc_fail_idx(c, "env", i, "must be of the form KEY=value");
	}
	return 0;
}

int oci_parse_process(struct pctx *c, yajl_val v, struct oci_process **out)
{
	if (!YAJL_IS_OBJECT(v))
		return pc_fail(c, "must be an object");
	struct oci_process *p = pc_alloc(c, sizeof(*p));
	int64_t oom = 0;
	yajl_val args = pc_get(v, "args");
	if (!YAJL_IS_ARRAY(args) || args->u.array.len == 0)
		return pc_fail_at(c, "args", "must be a non-empty array");
	if (pc_bool(c, v, "terminal", &p->terminal) < 0 || parse_console_size(c, v, p) < 0 ||
	    parse_user(c, v, &p->user) < 0 || pc_strv(c, v, "args", &p->args) < 0 ||
	    pc_strv(c, v, "env", &p->env) < 0 || pc_str(c, v, "cwd", true, &p->cwd) < 0 ||
	    parse_caps(c, v, &p->capabilities) < 0 ||
	    pc_each(c, v, "rlimits", &p->n_rlimits, sizeof(*p->rlimits), (void **)&p->rlimits,
		    parse_rlimit) < 0 ||
	    pc_bool(c, v, "noNewPrivileges", &p->no_new_privileges) < 0 ||
	    pc_str(c, v, "apparmorProfile", false, &p->apparmor_profile) < 0 ||
	    pc_str(c, v, "selinuxLabel", false, &p->selinux_label) < 0 ||
	    pc_i64(c, v, "oomScoreAdj", false, -1000, 1000, &oom, &p->has_oom_score_adj) < 0)
		return -1;
	p->oom_score_adj = (int)oom;
	if (check_process(c, p) < 0)
		return -1;
	*out = p;
	return 0;
}

static int parse_root(struct pctx *c, yajl_val top, struct oci_root **out)
{
	yajl_val v;
	if (pc_obj(c, top, "root", true, &v) < 0)
		return -1;
	struct oci_root *r = pc_alloc(c, sizeof(*r));
	size_t old = pc_push_key(c, "root");
	int rc = -1;
	if (pc_str(c, v, "path", true, &r->path) < 0 || pc_bool(c, v, "readonly", &r->readonly) < 0)
		goto out;
	if (r->path[0] == '\0') {
		pc_fail_at(c, "path", "must not be empty");
		goto out;
	}
	*out = r;
	rc = 0;
out:
	pc_pop(c, old);
	return rc;
}

static int parse_mount(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_mount *m = elem;
	if (pc_str(c, v, "destination", true, &m->destination) < 0 ||
	    pc_str(c, v, "type", false, &m->type) < 0 ||
	    pc_str(c, v, "source", false, &m->source) < 0 ||
	    pc_strv(c, v, "options", &m->options) < 0)
		return -1;
	if (!oci_path_is_abs_clean(m->destination))
		return pc_fail_at(c, "destination", "must be an absolute path without ..");
	return 0;
}

static int parse_hook(struct pctx *c, yajl_val v, size_t i, void *elem)
{
	struct oci_hook *h = elem;
	int64_t timeout = 0;
	if (pc_str(c, v, "path", true, &h->path) < 0 || pc_strv(c, v, "args", &h->args) < 0 ||
	    pc_strv(c, v, "env", &h->env) < 0 ||
	    pc_i64(c, v, "timeout", false, INT64_MIN, INT64_MAX, &timeout, NULL) < 0)
		return -1;
	if (!oci_path_is_abs(h->path))
		return pc_fail_at(c, "path", "must be an absolute path");
	h->has_env = pc_get(v, "env") != NULL;
	if (pc_get(v, "timeout") && (timeout <= 0 || timeout > INT_MAX))
		return pc_fail_at(c, "timeout", "must be a positive integer");
	h->timeout = (int)timeout;
	return 0;
}

static int parse_hooks(struct pctx *c, yajl_val top, struct oci_hooks *hooks)
{
	yajl_val v;
	if (pc_obj(c, top, "hooks", false, &v) < 0)
		return -1;
	if (!v)
		return 0;
	size_t old = pc_push_key(c, "hooks");
	int r = 0;
	for (int k = 0; k < OCI_HOOK_KIND_COUNT && r == 0; k++)
		r = pc_each(c, v, oci_hook_name(k), &hooks->n[k], sizeof(struct oci_hook),
			    (void **)&hooks->list[k], parse_hook);
	pc_pop(c, old);
	return r;
}

static bool has_ns(const struct oci_config *cfg, enum oci_ns_type t)
{
	for (size_t i = 0; cfg->linux_ && i < cfg->linux_->n_namespaces; i++)
		if (cfg->linux_->namespaces[i].type == t)
			return true;
	return false;
}

/*
 * The namespace a sysctl belongs to, as runc's validator sorts them: the
 * IPC ones, net.*, and the UTS ones; -1 for the rest. A key whose first
 * separator is '/' is read with '/' and '.' swapped, as runc reads it
 * (convertSysctlVariableToDotsSeparator).
 */
static int sysctl_ns(const char *key)
{
	static const char *const ipc[] = {
	    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
	};
	static const char *const uts[] = {"kernel.hostname", "kernel.domainname"};
	cleanup_free char *k = kv_strdup(key);
	if (k[strcspn(k, "./")] == '/')
		for (char *p = k; *p; p++)
			*p = *p == '/' ? '.' : *p == '.' ? '/' : *p;
	if (oci_name_in(k, ipc, KV_ARRAY_SIZE(ipc)) || strncmp(k, "fs.mqueue.", 10) == 0)
		return OCI_NS_IPC;
	if (strncmp(k, "net.", 4) == 0)
		return OCI_NS_NETWORK;
	if (oci_name_in(k, uts, KV_ARRAY_SIZE(uts)))
		return OCI_NS_UTS;
	return -1;
}

int oci_config_check_sysctl(const struct oci_config *cfg, const char *what, struct kv_err **err)
{
	const struct oci_linux *l = cfg->linux_;
	for (size_t i = 0; l && i < l->sysctl.n; i++) {
		int ns = sysctl_ns(l->sysctl.v[i].key);
		if (ns >= 0 && !has_ns(cfg, ns))
			return kv_err_plain(err, EINVAL,
					    "%s: linux.sysctl: \"%s\" requires a new %s namespace",
					    what, l->sysctl.v[i].key, oci_ns_name(ns));
	}
	return 0;
}

/* Checks across sections, as runc's validator makes them. */
static int check_config(struct pctx *c, const struct oci_config *cfg)
{
	if (strncmp(cfg->oci_version, "1.", 2) != 0)
		return pc_fail_at(c, "ociVersion",
				  "unsupported version \"%s\" (kvrun supports 1.x)",
				  cfg->oci_version);
	if (cfg->hostname && strlen(cfg->hostname) > OCI_HOSTNAME_MAX)
		return pc_fail_at(c, "hostname", "longer than %d bytes", OCI_HOSTNAME_MAX);
	if (cfg->domainname && strlen(cfg->domainname) > OCI_HOSTNAME_MAX)
		return pc_fail_at(c, "domainname", "longer than %d bytes", OCI_HOSTNAME_MAX);
	if (cfg->hostname && *cfg->hostname && !has_ns(cfg, OCI_NS_UTS))
		return pc_fail_at(c, "hostname", "requires a new uts namespace");
	if (cfg->domainname && *cfg->domainname && !has_ns(cfg, OCI_NS_UTS))
		return pc_fail_at(c, "domainname", "requires a new uts namespace");
	const struct oci_linux *l = cfg->linux_;
	if (l && (l->n_uid_mappings || l->n_gid_mappings) && !has_ns(cfg, OCI_NS_USER))
		return pc_fail_at(c, l->n_uid_mappings ? "linux.uidMappings" : "linux.gidMappings",
				  "requires a new user namespace");
	for (size_t i = 0; l && i < l->n_namespaces; i++) {
		if (l->namespaces[i].type != OCI_NS_USER || l->namespaces[i].path)
			continue;
		if (!l->n_uid_mappings)
			return pc_fail_at(c, "linux.uidMappings",
					  "required with a new user namespace");
		if (!l->n_gid_mappings)
			return pc_fail_at(c, "linux.gidMappings",
					  "required with a new user namespace");
	}
	return 0;
}

static int parse_top(struct pctx *c, yajl_val top, struct oci_config *cfg)
{
	if (!YAJL_IS_OBJECT(top))
		return pc_fail(c, "must be a JSON object");
	yajl_val pv, lv;
	if (pc_str(c, top, "ociVersion", true, &cfg->oci_version) < 0 ||
	    pc_obj(c, top, "process", true, &pv) < 0)
		return -1;
	size_t old = pc_push_key(c, "process");
	int r = oci_parse_process(c, pv, &cfg->process);
	pc_pop(c, old);
	if (r < 0 || parse_root(c, top, &cfg->root) < 0 ||
	    pc_str(c, top, "hostname", false, &cfg->hostname) < 0 ||
	    pc_str(c, top, "domainname", false, &cfg->domainname) < 0 ||
	    pc_each(c, top, "mounts", &cfg->n_mounts, sizeof(*cfg->mounts), (void **)&cfg->mounts,
		    parse_mount) < 0 ||
	    parse_hooks(c, top, &cfg->hooks) < 0 ||
	    pc_map(c, top, "annotations", &cfg->annotations) < 0 ||
	    pc_obj(c, top, "linux", false, &lv) < 0)
		return -1;
	if (lv) {
		old = pc_push_key(c, "linux");
		r = oci_parse_linux(c, lv, &cfg->linux_);
		pc_pop(c, old);
		if (r < 0)
			return -1;
	}
	return check_config(c, cfg);
}

enum doc_kind { DOC_CONFIG, DOC_PROCESS, DOC_RESOURCES };

static int parse_doc(enum doc_kind kind, const char *text, size_t len, const char *what,
		     struct oci_config **out, struct kv_err **err)
{
	cleanup_yajl_val yajl_val top = oci_tree_parse(text, len, what, err);
	if (!top)
		return -1;
	struct oci_config *cfg = kv_malloc0(sizeof(*cfg));
	struct pctx c = {.owner = &cfg->owned, .err = err};
	int r;
	if (kind == DOC_CONFIG) {
		r = parse_top(&c, top, cfg);
	} else if (kind == DOC_PROCESS) {
		r = oci_parse_process(&c, top, &cfg->process);
	} else {
		cfg->linux_ = pc_alloc(&c, sizeof(*cfg->linux_));
		r = oci_parse_resources(&c, top, &cfg->linux_->resources);
	}
	if (r < 0) {
		oci_config_free(cfg);
		return kv_err_wrap(err, "%s", what);
	}
	*out = cfg;
	return 0;
}

int oci_config_parse(const char *text, size_t len, const char *what, struct oci_config **out,
		     struct kv_err **err)
{
	return parse_doc(DOC_CONFIG, text, len, what, out, err);
}

int oci_process_parse(const char *text, size_t len, const char *what, struct oci_config **out,
		      struct kv_err **err)
{
	return parse_doc(DOC_PROCESS, text, len, what, out, err);
}

int oci_resources_parse(const char *text, size_t len, const char *what, struct oci_config **out,
			struct kv_err **err)
{
	return parse_doc(DOC_RESOURCES, text, len, what, out, err);
}

int oci_config_load(const char *path, struct oci_config **out, struct kv_err **err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (kv_read_file(path, OCI_CONFIG_MAX_SIZE, &text, &len, err) < 0)
		return -1;
	return oci_config_parse(text, len, path, out, err);
}

const char *oci_annotation(const struct oci_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->annotations.n; i++)
		if (strcmp(cfg->annotations.v[i].key, key) == 0)
			return cfg->annotations.v[i].value;
	return NULL;
}

void oci_config_free(struct oci_config *cfg)
{
	if (!cfg)
		return;
	oci_alloc_free(cfg->owned);
	free(cfg);
}
