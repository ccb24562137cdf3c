/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request dispatch: one small handler per op. Every failure becomes an error
 * response naming what was wrong; nothing a host sends ends the agent.
 */
#include "agent/internal.h"

#include <signal.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

struct req {
	struct agent *a;
	struct conn *c;
	uint64_t id;
	yajl_val params;
	bool deferred; /* the answer comes later (create, start, exec, wait) */
};

typedef int (*op_fn)(struct req *r, struct kv_json *j, struct kv_err **err);

static struct container *req_container(struct req *r, struct kv_err **err)
{
	const char *id = kv_jstr(r->params, "container");
	if (!id) {
		kv_err_plain(err, EINVAL, "container: missing");
		return NULL;
	}
	struct container *c = container_find(r->a, id);
	if (!c)
		kv_err_plain(err, ENOENT, "container %s: no such container", id);
	return c;
}

static struct proc *req_proc(struct req *r, struct container **cp, struct kv_err **err)
{
	struct container *c = req_container(r, err);
	if (!c)
		return NULL;
	const char *exec_id = kv_jstr(r->params, "exec_id");
	struct proc *p = proc_find(c, exec_id);
	if (!p)
		kv_err_plain(err, ENOENT, "container %s: no process %s", c->id, exec_id);
	if (cp)
		*cp = c;
	return p;
}

static int op_version(struct req *r, struct kv_json *j, struct kv_err **err)
{
	long long v;
	if (!kv_jint(r->params, "version", &v))
		return kv_err_plain(err, EINVAL, "version: missing");
	if (v != KV_AGENT_PROTO_VERSION)
		return kv_err_plain(err, EPROTONOSUPPORT, "version: agent speaks %d, not %lld",
				    KV_AGENT_PROTO_VERSION, v);
	kv_json_map_open(j);
	kv_json_kint(j, "version", KV_AGENT_PROTO_VERSION);
	kv_json_kstr(j, "agent", "kvrun-agent");
	kv_json_kbool(j, "init", r->a->cfg.init);
	kv_json_kbool(j, "cgroups", r->a->cgroup_root != NULL);
	kv_json_map_close(j);
	return 0;
}

static int op_ping(struct req *r, struct kv_json *j, struct kv_err **err)
{
	kv_json_map_open(j);
	kv_json_kint(j, "pid", getpid());
	kv_json_map_close(j);
	return 0;
}

static int op_create(struct req *r, struct kv_json *j, struct kv_err **err)
{
	r->deferred = true;
	return container_create(r->a, kv_jstr(r->params, "container"), r->params, r->c->serial,
				r->id, err);
}

static int op_start(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct container *c = req_container(r, err);
	if (!c)
		return -1;
	r->deferred = true;
	return container_start(r->a, c, r->c->serial, r->id, err);
}

static int op_exec(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct container *c = req_container(r, err);
	if (!c)
		return -1;
	r->deferred = true;
	return container_exec(r->a, c, r->params, r->c->serial, r->id, err);
}

static int op_wait(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct proc *p = req_proc(r, NULL, err);
	if (!p)
		return -1;
	if (p->state != PROC_EXITED) {
		r->deferred = true;
		return container_wait(p, r->c->serial, r->id);
	}
	kv_json_map_open(j);
	proc_exit_json(p, j);
	kv_json_map_close(j);
	return 0;
}

static int parse_signal(yajl_val v, int *sig, struct kv_err **err)
{
	if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0 && YAJL_GET_INTEGER(v) < NSIG) {
		*sig = YAJL_GET_INTEGER(v);
		return 0;
	}
	if (v && YAJL_IS_STRING(v)) {
		const char *n = v->u.string;
		if (strncmp(n, "SIG", 3) == 0)
			n += 3;
		for (int s = 1; s < NSIG; s++) {
			const char *abbrev = sigabbrev_np(s);
			if (abbrev && strcmp(abbrev, n) == 0) {
				*sig = s;
				return 0;
			}
		}
	}
	return kv_err_plain(err, EINVAL, "signal: must be a signal number or name");
}

static int op_kill(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct container *c;
	struct proc *p = req_proc(r, &c, err);
	int sig = SIGTERM;
	bool all = false;
	if (!p)
		return -1;
	yajl_val sv = kv_jget(r->params, "signal");
	if (sv && parse_signal(sv, &sig, err) < 0)
		return -1;
	kv_jbool(r->params, "all", &all);
	if (container_signal(r->a, c, p, sig, all, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_delete(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct container *c = req_container(r, err);
	bool force = false;
	if (!c)
		return -1;
	kv_jbool(r->params, "force", &force);
	if (container_delete(r->a, c, force, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static void state_one(struct container *c, struct kv_json *j)
{
	kv_json_map_open(j);
	kv_json_kstr(j, "container", c->id);
	kv_json_kstr(j, "state", proc_state_name(c, c->init));
	kv_json_kint(j, "pid", c->init->pid);
	if (c->init->state == PROC_EXITED)
		proc_exit_json(c->init, j);
	if (c->cgroup)
		kv_json_kstr(j, "cgroup", c->cgroup);
	kv_json_key(j, "execs");
	kv_json_array_open(j);
	for (struct proc *p = c->procs; p; p = p->next) {
		if (!p->exec_id)
			continue;
		kv_json_map_open(j);
		kv_json_kstr(j, "exec_id", p->exec_id);
		kv_json_kint(j, "pid", p->pid);
		kv_json_kstr(j, "state", proc_state_name(c, p));
		if (p->state == PROC_EXITED)
			proc_exit_json(p, j);
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
	kv_json_map_close(j);
}

static int op_state(struct req *r, struct kv_json *j, struct kv_err **err)
{
	if (kv_jstr(r->params, "container")) {
		struct container *c = req_container(r, err);
		if (!c)
			return -1;
		state_one(c, j);
		return 0;
	}
	kv_json_map_open(j);
	kv_json_key(j, "containers");
	kv_json_array_open(j);
	for (struct container *c = r->a->containers; c; c = c->next)
		state_one(c, j);
	kv_json_array_close(j);
	kv_json_map_close(j);
	return 0;
}

static int op_freeze(struct req *r, struct kv_json *j, bool frozen, struct kv_err **err)
{
	struct container *c = req_container(r, err);
	if (!c)
		return -1;
	if (c->init->state == PROC_EXITED)
		return kv_err_plain(err, EBUSY, "container %s: stopped", c->id);
	if (cgroup_freeze(c, frozen, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_kstr(j, "state", proc_state_name(c, c->init));
	kv_json_map_close(j);
	return 0;
}

static int op_pause(struct req *r, struct kv_json *j, struct kv_err **err)
{
	return op_freeze(r, j, true, err);
}

static int op_resume(struct req *r, struct kv_json *j, struct kv_err **err)
{
	return op_freeze(r, j, false, err);
}

static int op_stats(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct container *c = NULL;
	if (kv_jstr(r->params, "container") && !(c = req_container(r, err)))
		return -1;
	kv_json_map_open(j);
	if (c)
		cgroup_stats(c, j);
	pid1_meminfo(j);
	kv_json_map_close(j);
	return 0;
}

/* runc update: {"container", "resources": linux.resources} */
static int op_update(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct container *c = req_container(r, err);
	if (!c)
		return -1;
	struct kv_resources res = {0};
	bool has = false;
	int rc = kv_resources_decode(kv_jget(r->params, "resources"), &res, &has, err);
	if (rc == 0 && has)
		rc = cgroup_update(r->a, c, &res, err);
	kv_resources_clear(&res);
	if (rc < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_resize(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct proc *p = req_proc(r, NULL, err);
	long long rows, cols;
	if (!p)
		return -1;
	if (!kv_jint(r->params, "rows", &rows) || !kv_jint(r->params, "cols", &cols) || rows < 0 ||
	    cols < 0 || rows > 65535 || cols > 65535)
		return kv_err_plain(err, EINVAL, "rows, cols: must be integers in 0..65535");
	if (stdio_resize(p, rows, cols, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_close_stdin(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct proc *p = req_proc(r, NULL, err);
	if (!p)
		return -1;
	stdio_close_stdin(r->a, p);
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_set_hostname(struct req *r, struct kv_json *j, struct kv_err **err)
{
	const char *h = kv_jstr(r->params, "hostname");
	if (!h || !*h || strlen(h) > 64)
		return kv_err_plain(err, EINVAL, "hostname: must be 1..64 characters");
	if (sethostname(h, strlen(h)) < 0)
		return kv_err_make(err, errno, "sethostname");
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_set_time(struct req *r, struct kv_json *j, struct kv_err **err)
{
	long long sec, nsec = 0;
	if (!kv_jint(r->params, "sec", &sec))
		return kv_err_plain(err, EINVAL, "sec: missing");
	kv_jint(r->params, "nsec", &nsec);
	if (pid1_set_time(sec, nsec, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_add_entropy(struct req *r, struct kv_json *j, struct kv_err **err)
{
	const char *data = kv_jstr(r->params, "data");
	long long credit = -1;
	if (!data)
		return kv_err_plain(err, EINVAL, "data: missing (base64)");
	kv_jint(r->params, "credit_bits", &credit);
	if (pid1_add_entropy(data, credit, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

/* A shared directory (virtiofs or 9p tag) at <state>/shared/<tag>: the
 * source of bind mounts and of "dir" rootfs paths in the guest. */
static int op_mount_shared(struct req *r, struct kv_json *j, struct kv_err **err)
{
	const char *tag = kv_jstr(r->params, "tag"), *type = kv_jstr(r->params, "type");
	size_t n = tag ? strlen(tag) : 0;
	if (n == 0 || n > 36 ||
	    strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789_.-") != n ||
	    tag[0] == '.')
		return kv_err_plain(err, EINVAL, "tag: must be 1..36 of [A-Za-z0-9_.-]");
	if (!type || (strcmp(type, "virtiofs") && strcmp(type, "9p")))
		return kv_err_plain(err, EINVAL, "type: must be virtiofs or 9p");
	cleanup_free char *path = kv_asprintf("%s/shared/%s", r->a->cfg.state_dir, tag);
	if (kv_mkdir_p(path, 0755, err) < 0)
		return -1;
	const char *data =
	    strcmp(type, "9p") == 0 ? "trans=virtio,version=9p2000.L,cache=mmap" : NULL;
	/* Once per tag: every container joining a VM asks for its live device
	 * (a second mount of a virtiofs tag would stack on the first). */
	struct statx sx;
	bool mounted = statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) == 0 &&
		       (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
		       (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	if (!mounted && mount(tag, path, type, MS_NOSUID | MS_NODEV, data) < 0 && errno != EBUSY)
		return kv_err_make(err, errno, "mount %s %s on %s", type, tag, path);
	kv_json_map_open(j);
	kv_json_kstr(j, "path", path);
	kv_json_map_close(j);
	return 0;
}

/* The guest NIC made to look like the container's host-side interface. */
static int op_net(struct req *r, struct kv_json *j, struct kv_err **err)
{
	struct net_config cfg;
	if (net_config_parse(r->params, &cfg, err) < 0 || net_config_apply(&cfg, err) < 0)
		return -1;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static int op_poweroff(struct req *r, struct kv_json *j, struct kv_err **err)
{
	r->a->quit = true;
	kv_json_map_open(j);
	kv_json_map_close(j);
	return 0;
}

static const struct {
	const char *name;
	op_fn fn;
} ops[] = {
    {KV_OP_VERSION, op_version},
    {KV_OP_PING, op_ping},
    {KV_OP_CREATE, op_create},
    {KV_OP_START, op_start},
    {KV_OP_EXEC, op_exec},
    {KV_OP_WAIT, op_wait},
    {KV_OP_KILL, op_kill},
    {KV_OP_DELETE, op_delete},
    {KV_OP_STATE, op_state},
    {KV_OP_PAUSE, op_pause},
    {KV_OP_RESUME, op_resume},
    {KV_OP_STATS, op_stats},
    {KV_OP_RESIZE, op_resize},
    {KV_OP_UPDATE, op_update},
    {KV_OP_CLOSE_STDIN, op_close_stdin},
    {KV_OP_SET_HOSTNAME, op_set_hostname},
    {KV_OP_SET_TIME, op_set_time},
    {KV_OP_ADD_ENTROPY, op_add_entropy},
    {KV_OP_MOUNT_SHARED, op_mount_shared},
    {KV_OP_NET, op_net},
    {KV_OP_POWEROFF, op_poweroff},
};

void agent_dispatch(struct agent *a, struct conn *c, struct kv_msg *m)
{
	struct req r = {.a = a, .c = c, .id = m->id, .params = m->params};
	cleanup_err struct kv_err *err = NULL;
	op_fn fn = NULL;
	for (size_t i = 0; i < KV_ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i].name, m->op) == 0)
			fn = ops[i].fn;
	if (!fn) {
		kv_err_plain(&err, ENOSYS, "op %.64s: unknown operation", m->op);
		agent_reply_error(a, c->serial, m->id, err);
		return;
	}
	cleanup_json struct kv_json *j = kv_msg_begin_result(m->id);
	if (fn(&r, j, &err) < 0) {
		kv_debug("op %s failed: %s", m->op, err ? err->msg : "?");
		agent_reply_error(a, c->serial, m->id, err);
		return;
	}
	if (!r.deferred)
		agent_reply_json(a, c->serial, j);
}
