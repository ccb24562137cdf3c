/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container-relevant subset of a config, back to JSON in config.json's
 * own shape, for the guest agent. Host-only parts stay behind: hooks run on
 * the host; annotations, AppArmor/SELinux labels, cgroupsPath, mountLabel
 * and namespace paths name host objects that mean nothing in the guest.
 */
#include "oci/internal.h"

#include <string.h>

static void put_strv(struct kv_json *j, const char *key, const struct oci_strv *v)
{
	if (v->n == 0)
		return;
	kv_json_key(j, key);
	kv_json_array_open(j);
	for (size_t i = 0; i < v->n; i++)
		kv_json_str(j, v->v[i]);
	kv_json_array_close(j);
}

static void put_map(struct kv_json *j, const char *key, const struct oci_map *m)
{
	if (m->n == 0)
		return;
	kv_json_key(j, key);
	kv_json_map_open(j);
	for (size_t i = 0; i < m->n; i++)
		kv_json_kstr(j, m->v[i].key, m->v[i].value);
	kv_json_map_close(j);
}

static void put_u64(struct kv_json *j, const char *key, uint64_t v)
{
	kv_json_key(j, key);
	kv_json_uint(j, v);
}

static void put_user(struct kv_json *j, const struct oci_user *u)
{
	kv_json_key(j, "user");
	kv_json_map_open(j);
	put_u64(j, "uid", u->uid);
	put_u64(j, "gid", u->gid);
	if (u->has_umask)
		put_u64(j, "umask", u->umask);
	if (u->n_additional_gids) {
		kv_json_key(j, "additionalGids");
		kv_json_array_open(j);
		for (size_t i = 0; i < u->n_additional_gids; i++)
			kv_json_uint(j, u->additional_gids[i]);
		kv_json_array_close(j);
	}
	kv_json_map_close(j);
}

static void put_caps(struct kv_json *j, const struct oci_capabilities *caps)
{
	kv_json_key(j, "capabilities");
	kv_json_map_open(j);
	for (int s = 0; s < OCI_CAP_SET_COUNT; s++) {
		if (!caps->present[s])
			continue;
		/* An empty set given explicitly means "none": keep it. */
		kv_json_key(j, oci_cap_set_name(s));
		kv_json_array_open(j);
		for (size_t i = 0; i < caps->set[s].n; i++)
			kv_json_str(j, caps->set[s].v[i]);
		kv_json_array_close(j);
	}
	kv_json_map_close(j);
}

void oci_process_to_json(const struct oci_process *p, struct kv_json *j)
{
	kv_json_map_open(j);
	kv_json_kbool(j, "terminal", p->terminal);
	if (p->has_console_size) {
		kv_json_key(j, "consoleSize");
		kv_json_map_open(j);
		put_u64(j, "height", p->console_height);
		put_u64(j, "width", p->console_width);
		kv_json_map_close(j);
	}
	put_user(j, &p->user);
	put_strv(j, "args", &p->args);
	put_strv(j, "env", &p->env);
	kv_json_kstr(j, "cwd", p->cwd);
	if (p->capabilities)
		put_caps(j, p->capabilities);
	if (p->n_rlimits) {
		kv_json_key(j, "rlimits");
		kv_json_array_open(j);
		for (size_t i = 0; i < p->n_rlimits; i++) {
			kv_json_map_open(j);
			kv_json_kstr(j, "type", p->rlimits[i].type);
			put_u64(j, "hard", p->rlimits[i].hard);
			put_u64(j, "soft", p->rlimits[i].soft);
			kv_json_map_close(j);
		}
		kv_json_array_close(j);
	}
	kv_json_kbool(j, "noNewPrivileges", p->no_new_privileges);
	if (p->has_oom_score_adj)
		kv_json_kint(j, "oomScoreAdj", p->oom_score_adj);
	kv_json_map_close(j);
}

static void put_mounts(struct kv_json *j, const struct oci_config *cfg)
{
	kv_json_key(j, "mounts");
	kv_json_array_open(j);
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct oci_mount *m = &cfg->mounts[i];
		kv_json_map_open(j);
		kv_json_kstr(j, "destination", m->destination);
		if (m->type)
			kv_json_kstr(j, "type", m->type);
		if (m->source)
			kv_json_kstr(j, "source", m->source);
		put_strv(j, "options", &m->options);
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
}

static void put_dev_rules(struct kv_json *j, const struct oci_resources *r)
{
	kv_json_key(j, "devices");
	kv_json_array_open(j);
	for (size_t i = 0; i < r->n_devices; i++) {
		const struct oci_device_rule *d = &r->devices[i];
		kv_json_map_open(j);
		kv_json_kbool(j, "allow", d->allow);
		kv_json_kstr(j, "type", (char[]){d->type, '\0'});
		if (d->has_major)
			kv_json_kint(j, "major", d->major);
		if (d->has_minor)
			kv_json_kint(j, "minor", d->minor);
		if (d->access)
			kv_json_kstr(j, "access", d->access);
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
}

static void put_memory_cpu(struct kv_json *j, const struct oci_resources *r)
{
	if (r->has_memory_limit || r->has_memory_reservation || r->has_memory_swap ||
	    r->has_memory_swappiness) {
		kv_json_key(j, "memory");
		kv_json_map_open(j);
		if (r->has_memory_limit)
			kv_json_kint(j, "limit", r->memory_limit);
		if (r->has_memory_reservation)
			kv_json_kint(j, "reservation", r->memory_reservation);
		if (r->has_memory_swap)
			kv_json_kint(j, "swap", r->memory_swap);
		if (r->has_memory_swappiness)
			put_u64(j, "swappiness", r->memory_swappiness);
		kv_json_map_close(j);
	}
	if (r->has_cpu_shares || r->has_cpu_quota || r->has_cpu_period || r->cpu_cpus ||
	    r->cpu_mems) {
		kv_json_key(j, "cpu");
		kv_json_map_open(j);
		if (r->has_cpu_shares)
			put_u64(j, "shares", r->cpu_shares);
		if (r->has_cpu_quota)
			kv_json_kint(j, "quota", r->cpu_quota);
		if (r->has_cpu_period)
			put_u64(j, "period", r->cpu_period);
		if (r->cpu_cpus)
			kv_json_kstr(j, "cpus", r->cpu_cpus);
		if (r->cpu_mems)
			kv_json_kstr(j, "mems", r->cpu_mems);
		kv_json_map_close(j);
	}
}

void oci_resources_to_json(const struct oci_resources *r, struct kv_json *j)
{
	kv_json_map_open(j);
	if (r->n_devices)
		put_dev_rules(j, r);
	put_memory_cpu(j, r);
	if (r->has_pids_limit) {
		kv_json_key(j, "pids");
		kv_json_map_open(j);
		kv_json_kint(j, "limit", r->pids_limit);
		kv_json_map_close(j);
	}
	if (r->has_blkio_weight) {
		kv_json_key(j, "blockIO");
		kv_json_map_open(j);
		put_u64(j, "weight", r->blkio_weight);
		kv_json_map_close(j);
	}
	kv_json_map_close(j);
}

static void put_syscall(struct kv_json *j, const struct oci_seccomp_syscall *s)
{
	kv_json_map_open(j);
	put_strv(j, "names", &s->names);
	kv_json_kstr(j, "action", s->action);
	if (s->has_errno_ret)
		put_u64(j, "errnoRet", s->errno_ret);
	if (s->n_args) {
		kv_json_key(j, "args");
		kv_json_array_open(j);
		for (size_t k = 0; k < s->n_args; k++) {
			kv_json_map_open(j);
			put_u64(j, "index", s->args[k].index);
			put_u64(j, "value", s->args[k].value);
			put_u64(j, "valueTwo", s->args[k].value_two);
			kv_json_kstr(j, "op", s->args[k].op);
			kv_json_map_close(j);
		}
		kv_json_array_close(j);
	}
	kv_json_map_close(j);
}

static void put_seccomp(struct kv_json *j, const struct oci_seccomp *s)
{
	kv_json_key(j, "seccomp");
	kv_json_map_open(j);
	if (s->kvrun_bpf) {
		kv_json_kstr(j, "kvrunBpf", s->kvrun_bpf);
		put_strv(j, "flags", &s->flags);
		kv_json_map_close(j);
		return;
	}
	kv_json_kstr(j, "defaultAction", s->default_action);
	if (s->has_default_errno_ret)
		put_u64(j, "defaultErrnoRet", s->default_errno_ret);
	put_strv(j, "architectures", &s->architectures);
	put_strv(j, "flags", &s->flags);
	kv_json_key(j, "syscalls");
	kv_json_array_open(j);
	for (size_t i = 0; i < s->n_syscalls; i++)
		put_syscall(j, &s->syscalls[i]);
	kv_json_array_close(j);
	kv_json_map_close(j);
}

static void put_idmaps(struct kv_json *j, const char *key, const struct oci_idmap *m, size_t n)
{
	if (n == 0)
		return;
	kv_json_key(j, key);
	kv_json_array_open(j);
	for (size_t i = 0; i < n; i++) {
		kv_json_map_open(j);
		put_u64(j, "containerID", m[i].container_id);
		put_u64(j, "hostID", m[i].host_id);
		put_u64(j, "size", m[i].size);
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
}

static void put_devices(struct kv_json *j, const struct oci_linux *l)
{
	kv_json_key(j, "devices");
	kv_json_array_open(j);
	for (size_t i = 0; i < l->n_devices; i++) {
		const struct oci_device *d = &l->devices[i];
		kv_json_map_open(j);
		kv_json_kstr(j, "path", d->path);
		kv_json_kstr(j, "type", (char[]){d->type, '\0'});
		kv_json_kint(j, "major", d->major);
		kv_json_kint(j, "minor", d->minor);
		if (d->has_file_mode)
			put_u64(j, "fileMode", d->file_mode);
		if (d->has_uid)
			put_u64(j, "uid", d->uid);
		if (d->has_gid)
			put_u64(j, "gid", d->gid);
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
}

static bool creates_userns(const struct oci_linux *l)
{
	for (size_t i = 0; i < l->n_namespaces; i++)
		if (l->namespaces[i].type == OCI_NS_USER && !l->namespaces[i].path)
			return true;
	return false;
}

static void put_linux(struct kv_json *j, const struct oci_linux *l)
{
	kv_json_key(j, "linux");
	kv_json_map_open(j);
	/* Mappings belong to a new user namespace; a joined one has its own. */
	if (creates_userns(l)) {
		put_idmaps(j, "uidMappings", l->uid_mappings, l->n_uid_mappings);
		put_idmaps(j, "gidMappings", l->gid_mappings, l->n_gid_mappings);
	}
	put_map(j, "sysctl", &l->sysctl);
	if (l->resources) {
		kv_json_key(j, "resources");
		oci_resources_to_json(l->resources, j);
	}
	kv_json_key(j, "namespaces");
	kv_json_array_open(j);
	for (size_t i = 0; i < l->n_namespaces; i++) {
		/*
		 * A path names a host namespace to join. Inside the VM the
		 * equivalent is the sandbox's own, which the agent gives by
		 * not creating a new one: so the entry is left out.
		 * The network namespace is the VM's own, always (as in Kata):
		 * the VM is the container's (or pod's) network boundary, its
		 * interfaces are the ones the host side gives it, and a new
		 * namespace in the guest would hide them. It also costs: one
		 * more netns and its sysfs made and torn down per container.
		 */
		if (l->namespaces[i].path || l->namespaces[i].type == OCI_NS_NETWORK)
			continue;
		kv_json_map_open(j);
		kv_json_kstr(j, "type", oci_ns_name(l->namespaces[i].type));
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
	if (l->n_devices)
		put_devices(j, l);
	if (l->seccomp)
		put_seccomp(j, l->seccomp);
	if (l->rootfs_propagation)
		kv_json_kstr(j, "rootfsPropagation", l->rootfs_propagation);
	put_strv(j, "maskedPaths", &l->masked_paths);
	put_strv(j, "readonlyPaths", &l->readonly_paths);
	kv_json_map_close(j);
}

int oci_config_to_agent_json(const struct oci_config *cfg, struct kv_json *j, struct kv_err **err)
{
	if (!cfg->process || !cfg->root)
		return kv_err_plain(err, EINVAL, "agent config: process and root are required");
	kv_json_map_open(j);
	kv_json_kstr(j, "ociVersion", cfg->oci_version);
	kv_json_key(j, "process");
	oci_process_to_json(cfg->process, j);
	kv_json_key(j, "root");
	kv_json_map_open(j);
	kv_json_kstr(j, "path", cfg->root->path);
	kv_json_kbool(j, "readonly", cfg->root->readonly);
	kv_json_map_close(j);
	if (cfg->hostname)
		kv_json_kstr(j, "hostname", cfg->hostname);
	if (cfg->domainname)
		kv_json_kstr(j, "domainname", cfg->domainname);
	put_mounts(j, cfg);
	if (cfg->linux_)
		put_linux(j, cfg->linux_);
	kv_json_map_close(j);
	return 0;
}

int oci_config_to_agent_string(const struct oci_config *cfg, char **out, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	if (oci_config_to_agent_json(cfg, j, err) < 0)
		return -1;
	*out = kv_json_finish_dup(j, NULL, err);
	return *out ? 0 : -1;
}
