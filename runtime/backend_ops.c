/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The backend operations after create: delete, pause, exec (a shim per
 * exec'd process), ps, stats, wait. They ask the guest agent; delete also
 * makes sure every host process of the container is gone.
 */
#include "runtime/backend.h"
#include "runtime/template.h"
#include "agent/agent.h"
#include "agent/protocol.h"
#include "shim/shim.h"

#include <dirent.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

#define EXEC_PID_PREFIX "exec-"

static bool owns_vm(const struct container *c)
{
	return strcmp(c->st->sandbox_id, c->id) == 0;
}

char *agent_container_name(const char *id)
{
	if (kv_agent_name_ok(id))
		return kv_strdup(id);
	/* Stable across runs, unique enough among one VM's containers. */
	return kv_asprintf("k%016llx", (unsigned long long)kv_fnv1a64(id));
}

/* The shims of exec'd processes (exec-<id>.pid in the state directory). */
static int kill_exec_shims(const struct container *c, struct kv_err **err)
{
	DIR *d = opendir(c->dir);
	if (!d)
		return 0;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (strncmp(de->d_name, EXEC_PID_PREFIX, strlen(EXEC_PID_PREFIX)) != 0)
			continue;
		cleanup_free char *p = kv_asprintf("%s/%s", c->dir, de->d_name);
		r = kill_pidfile(p, err);
	}
	closedir(d);
	return r;
}

/* What of the network the VM's shim could not undo (it was killed): in the
 * spec's network namespace, if it names one by path. */
static void net_unwire(const struct container *c)
{
	cleanup_oci_config struct oci_config *cfg = NULL;
	struct kv_err *e = NULL;
	if (container_config(c, &cfg, &e) < 0) {
		kv_err_free(e);
		return;
	}
	const struct oci_linux *l = cfg->linux_;
	for (size_t i = 0; l && i < l->n_namespaces; i++)
		if (l->namespaces[i].type == OCI_NS_NETWORK && l->namespaces[i].path &&
		    *l->namespaces[i].path)
			shim_net_unwire(c->dir, l->namespaces[i].path);
}

int runtime_backend_destroy(struct container *c, struct kv_err **err)
{
	bool owner = owns_vm(c);
	if (!owner) {
		/* Its processes die in the guest; the pod's VM goes on. */
		struct kv_err *e = NULL;
		cleanup_free char *name = agent_container_name(c->id);
		cleanup_free char *params = kv_req_delete(name, true, &e);
		if (!params || backend_agent_call(c, KV_OP_DELETE, params, NULL, &e) < 0)
			kv_debug("delete in the guest: %s", e->msg);
		kv_err_free(e);
	}
	cleanup_free char *shim = kv_asprintf("%s/%s", c->dir, SHIM_PIDFILE);
	cleanup_free char *vmm = kv_asprintf("%s/%s", c->dir, SHIM_VMM_PID_NAME);
	/* SIGKILL of the VM owner's shim takes the VM down (PR_SET_PDEATHSIG);
	 * its recorded pid is waited for as well. */
	if (kill_exec_shims(c, err) < 0 || kill_and_wait(c->st->pid, c->st->pid_start, err) < 0 ||
	    kill_pidfile(shim, err) < 0)
		return -1;
	kv_timing_mark("shim");
	if (owner && kill_pidfile(vmm, err) < 0)
		return -1;
	kv_timing_mark("vmm");
	if (owner) {
		net_unwire(c);
		tmpl_tmp_remove(c->dir);
		kv_timing_mark("net");
	}
	if (!owner) {
		/* Its processes are gone from the guest: its shares can go. */
		cleanup_free char *sb = sandbox_dir(c->dir, c->st->sandbox_id);
		cleanup_free char *api = kv_asprintf("%s/%s", sb, SHIM_API_NAME);
		live_detach(api, c->dir);
		slots_release(c->id, api, sb, c->dir);
	}
	return 0;
}

int runtime_backend_pause(struct container *c, bool pause, struct kv_err **err)
{
	return backend_agent_call(c, pause ? KV_OP_PAUSE : KV_OP_RESUME, NULL, NULL, err);
}

static char *size_str(uint64_t b)
{
	return b % (1ull << 30) == 0 ? kv_asprintf("%lluG", (unsigned long long)(b >> 30))
				     : kv_asprintf("%lluM", (unsigned long long)(b >> 20));
}

/*
 * The VM cannot grow: a limit beyond its size is refused, saying so. CPU
 * (quota and period) also applies to the host cgroup of a VM's own
 * container; memory applies in the guest only (the guest kernel may use
 * all of its RAM whatever the container's limit, so the host's limit stays
 * the VM's size). Swap is accepted and has no effect: the guest has none.
 */
static int update_check(const struct container *c, const struct oci_resources *r, unsigned cpus,
			uint64_t mem, struct kv_err **err)
{
	if (r->has_memory_limit && r->memory_limit > 0 && (uint64_t)r->memory_limit > mem) {
		cleanup_free char *want = size_str((uint64_t)r->memory_limit), *vm = size_str(mem);
		return kv_err_plain(err, EINVAL,
				    "update: memory limit %s exceeds the %s of container %s's VM "
				    "(a running VM cannot grow: recreate the container with the "
				    "larger limit)",
				    want, vm, c->id);
	}
	uint64_t period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
	if (r->has_cpu_quota && r->cpu_quota > 0 && (uint64_t)r->cpu_quota > cpus * period)
		return kv_err_plain(err, EINVAL,
				    "update: cpu quota %lld per %llu us is more than the %u vCPUs "
				    "of container %s's VM (a running VM cannot grow)",
				    (long long)r->cpu_quota, (unsigned long long)period, cpus,
				    c->id);
	return 0;
}

int runtime_backend_update(struct container *c, const struct oci_resources *r, struct kv_err **err)
{
	cleanup_free char *sb = sandbox_dir(c->dir, c->st->sandbox_id);
	unsigned cpus;
	uint64_t mem;
	if (vmsize_read(sb, &cpus, &mem, err) < 0)
		return kv_err_wrap(err, "update container %s: the size of its VM", c->id);
	if (update_check(c, r, cpus, mem, err) < 0)
		return -1;
	cleanup_json struct kv_json *j = kv_json_new(false);
	oci_resources_to_json(r, j);
	cleanup_free char *res = kv_json_finish_dup(j, NULL, err);
	if (!res)
		return -1;
	cleanup_free char *name = agent_container_name(c->id);
	cleanup_free char *params = kv_req_update(name, res, err);
	if (!params || backend_agent_call(c, KV_OP_UPDATE, params, NULL, err) < 0)
		return -1;
	if (!owns_vm(c) || !r->has_cpu_quota)
		return 0;
	uint64_t period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
	unsigned milli =
	    r->cpu_quota > 0 ? (unsigned)((uint64_t)r->cpu_quota * 1000 / period) : cpus * 1000;
	return hostcg_update(c->dir, milli ? milli : 1, 0, err);
}

/* ----------------------------------------------------------------- exec */

static char *exec_request(const struct container *c, const char *exec_id,
			  const struct oci_process *p, const struct create_opts *o,
			  struct kv_err **err)
{
	cleanup_json struct kv_json *body = kv_json_new(false);
	oci_process_to_json(p, body);
	const char *btext;
	size_t blen;
	/* What the agent would refuse, refused here: its decoder, and a frame
	 * it cannot take. */
	if (kv_json_finish(body, &btext, &blen, err) < 0 || agent_process_check(btext, err) < 0)
		return NULL;
	if (blen > AGENT_BODY_MAX) {
		kv_err_plain(err, E2BIG,
			     "process: %zu bytes of process.args and process.env; the guest agent "
			     "takes at most %u",
			     blen, AGENT_BODY_MAX);
		return NULL;
	}
	cleanup_free char *sb = sandbox_dir(c->dir, c->st->sandbox_id);
	cleanup_free char *name = agent_container_name(c->id);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "exec");
	kv_json_kstr(j, "sandbox_dir", sb);
	kv_json_kbool(j, "owner", false);
	kv_json_kstr(j, "container", name);
	kv_json_kstr(j, "exec_id", exec_id);
	kv_json_key(j, "body");
	kv_json_strn(j, btext, blen);
	kv_json_kbool(j, "terminal", p->terminal);
	if (o->console_socket)
		kv_json_kstr(j, "console_socket", o->console_socket);
	kv_json_map_close(j);
	return kv_json_finish_dup(j, NULL, err);
}

static int write_pid(const char *path, pid_t pid, struct kv_err **err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	return kv_write_file_volatile(path, buf, (size_t)n, 0644, err);
}

static int place_shim(void *ctx, pid_t pid, struct kv_err **err)
{
	return hostcg_attach(ctx, pid, err);
}

int runtime_backend_exec(struct container *c, const struct oci_process *p,
			 const struct create_opts *o, struct kv_err **err)
{
	if (o->preserve_fds > 0)
		return kv_err_plain(
		    err, ENOTSUP,
		    "--preserve-fds: file descriptors cannot be passed into a microVM");
	cleanup_vm_conf struct vm_conf *vc = NULL;
	if (vm_conf_load(&vc, err) < 0)
		return -1;
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return kv_err_make(err, errno, "getrandom");
	char exec_id[20];
	snprintf(exec_id, sizeof(exec_id), "e%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	cleanup_free char *req = exec_request(c, exec_id, p, o, err);
	cleanup_free char *log = kv_asprintf("%s/%s", c->dir, SHIM_LOG);
	cleanup_free char *pf = kv_asprintf("%s/%s%s.pid", c->dir, EXEC_PID_PREFIX, exec_id);
	struct shim_handle h = {.sync_fd = -1};
	struct shim_spawn_opts so = {.state_dir = c->dir,
				     .log = log,
				     .netns = SHIM_NETNS_SAME,
				     .place = place_shim,
				     .ptmx = p->terminal && o->console_socket};
	so.place_ctx = c->dir;
	if (!req || shim_spawn(vc, &so, req, &h, err) < 0 ||
	    shim_pidfile_write(pf, h.pid, err) < 0 || shim_await(&h, SETUP_TIMEOUT_S, err) < 0 ||
	    shim_commit(&h, err) < 0 || (o->pid_file && write_pid(o->pid_file, h.pid, err) < 0)) {
		shim_abort(&h);
		unlink(pf);
		return -1;
	}
	if (o->detach)
		return 0;
	int status;
	int r = shim_wait_child(h.pid, &status, err);
	unlink(pf);
	return r < 0 ? r : status;
}

/* ------------------------------------------------------------ ps, stats */

static void push_pid(pid_t **v, size_t *n, pid_t pid)
{
	*v = realloc(*v, (*n + 1) * sizeof(pid_t));
	if (!*v)
		abort();
	(*v)[(*n)++] = pid;
}

/* A recorded process ("pid start" file) that still runs. */
static void push_pidfile(pid_t **v, size_t *n, const char *path)
{
	pid_t pid;
	uint64_t start;
	if (shim_pidfile_read(path, &pid, &start) == 0 && pid_alive(pid, start))
		push_pid(v, n, pid);
}

/*
 * The container's host processes: the shim of its init, the shims of its
 * exec'd processes and, for a VM's own container, the VMM. These are what a
 * client may look up on the host (docker top, ctr task ps); the guest's
 * pids would name unrelated host processes there.
 */
int runtime_backend_ps(struct container *c, pid_t **pids_out, size_t *n, struct kv_err **err)
{
	*pids_out = NULL;
	*n = 0;
	if (c->pid > 0)
		push_pid(pids_out, n, c->pid);
	DIR *d = opendir(c->dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, EXEC_PID_PREFIX, strlen(EXEC_PID_PREFIX)) != 0)
			continue;
		cleanup_free char *p = kv_asprintf("%s/%s", c->dir, de->d_name);
		push_pidfile(pids_out, n, p);
	}
	if (d)
		closedir(d);
	if (owns_vm(c)) {
		cleanup_free char *vmm = kv_asprintf("%s/%s", c->dir, SHIM_VMM_PID_NAME);
		push_pidfile(pids_out, n, vmm);
	}
	return 0;
}

static long long jnum(yajl_val obj, const char *a, const char *b)
{
	long long v = 0;
	kv_jint(kv_jget(obj, a), b, &v);
	return v;
}

/* runc's `events --stats` shape, from the guest's cgroup v2 numbers. */
int runtime_backend_stats(struct container *c, struct kv_json *j, struct kv_err **err)
{
	cleanup_msg struct kv_msg resp = {0};
	if (backend_agent_call(c, KV_OP_STATS, NULL, &resp, err) < 0)
		return -1;
	yajl_val cg = kv_jget(resp.result, "cgroup"), mi = kv_jget(resp.result, "meminfo");
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "stats");
	kv_json_kstr(j, "id", c->id);
	kv_json_key(j, "data");
	kv_json_map_open(j);
	kv_json_key(j, "cpu");
	kv_json_map_open(j);
	kv_json_key(j, "usage");
	kv_json_map_open(j);
	kv_json_kint(j, "total", jnum(cg, "cpu", "usage_usec") * 1000);
	kv_json_kint(j, "kernel", jnum(cg, "cpu", "system_usec") * 1000);
	kv_json_kint(j, "user", jnum(cg, "cpu", "user_usec") * 1000);
	kv_json_map_close(j);
	kv_json_map_close(j);
	kv_json_key(j, "memory");
	kv_json_map_open(j);
	kv_json_key(j, "usage");
	kv_json_map_open(j);
	long long limit = jnum(cg, "memory", "max"), total = 0, avail = 0;
	kv_jint(mi, "MemTotal", &total);
	kv_jint(mi, "MemAvailable", &avail);
	/* Without a memory limit the agent enables no memory controller: the
	 * VM's own use is the container's then. */
	bool cg_mem = kv_jget(kv_jget(cg, "memory"), "current") != NULL;
	kv_json_kint(j, "usage", cg_mem ? jnum(cg, "memory", "current") : total - avail);
	kv_json_kint(j, "limit", limit > 0 ? limit : total);
	kv_json_map_close(j);
	kv_json_map_close(j);
	kv_json_key(j, "pids");
	kv_json_map_open(j);
	kv_json_kint(j, "current", jnum(cg, "pids", "current"));
	kv_json_map_close(j);
	kv_json_map_close(j);
	kv_json_map_close(j);
	return 0;
}

struct backend_events {
	struct kv_agent_client *agent;
	char *name; /* the agent's name for the container */
};

struct backend_events *runtime_backend_events_open(struct container *c, struct kv_err **err)
{
	struct kv_agent_client *a = backend_agent_open(c, err);
	if (!a)
		return NULL;
	struct backend_events *ev = kv_malloc0(sizeof(*ev));
	ev->agent = a;
	ev->name = agent_container_name(c->id);
	return ev;
}

int runtime_backend_events_fd(const struct backend_events *ev)
{
	return kv_agent_client_fd(ev->agent);
}

bool runtime_backend_events_pending(const struct backend_events *ev)
{
	return kv_agent_client_pending(ev->agent);
}

int runtime_backend_events_next(struct backend_events *ev, bool *oom, struct kv_err **err)
{
	cleanup_msg struct kv_msg m = {0};
	*oom = false;
	int r = kv_agent_client_next_event(ev->agent, &m, err);
	if (r <= 0)
		return r;
	const char *ctr = kv_jstr(m.tree, "container");
	*oom = m.event && strcmp(m.event, KV_EV_OOM) == 0 && ctr && strcmp(ctr, ev->name) == 0;
	return 1;
}

void runtime_backend_events_close(struct backend_events *ev)
{
	kv_agent_client_free(ev->agent);
	free(ev->name);
	free(ev);
}

int runtime_backend_wait(struct container *c, int *status, struct kv_err **err)
{
	struct kv_err *e = NULL;
	if (shim_wait_child(c->pid, status, &e) == 0)
		return 0;
	if (e->errnum != ECHILD)
		return err_pass(err, e);
	kv_err_free(e);
	/* Not our child: ask the guest. */
	cleanup_msg struct kv_msg resp = {0};
	if (backend_agent_call(c, KV_OP_WAIT, NULL, &resp, err) < 0)
		return -1;
	long long st = 0;
	kv_jint(resp.result, "status", &st);
	*status = (int)st;
	return 0;
}
