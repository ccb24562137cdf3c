/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seam between the runc-compatible front end and the microVM.
 *
 * create: pack the root filesystem (rootfs.c), size the VM (vmconf.c), fork
 * kvrun-shim with the request (spawn.c). The shim of a sandbox's first
 * container starts kvrun-vmm and waits for the agent; any shim then creates
 * its process in the guest and attaches its stdio. Once it answers, the
 * hooks run here, and a commit lets the shim go on: without it the shim
 * undoes everything, so a create that fails or dies half way leaves no VM.
 *
 * The other operations talk to the guest agent directly, over the
 * sandbox's hybrid vsock socket; the shim sees the consequences as events
 * (a kill ends in an exit event, the shim exits with that status).
 */
#include "runtime/backend.h"
#include "runtime/template.h"
#include "agent/agent.h"
#include "agent/protocol.h"
#include "shim/shim.h"

#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

/* <root>/<sandbox> next to <root>/<id>. */
char *sandbox_dir(const char *state_dir, const char *sandbox_id)
{
	cleanup_free char *root = kv_strdup(state_dir);
	*strrchr(root, '/') = '\0';
	return kv_asprintf("%s/%s", root, sandbox_id);
}

/* ------------------------------------------------------------ the agent */

struct kv_agent_client *backend_agent_open(const struct container *c, struct kv_err **err)
{
	cleanup_free char *dir = sandbox_dir(c->dir, c->st->sandbox_id);
	cleanup_free char *addr = shim_agent_addr(dir, err);
	if (!addr)
		return NULL;
	struct kv_agent_client *a = kv_agent_client_connect(addr, err);
	if (!a) {
		kv_err_wrap(err, "container %s: its VM does not answer", c->id);
		return NULL;
	}
	kv_agent_client_set_timeout(a, AGENT_CALL_MS);
	if (kv_agent_client_hello(a, err) < 0) {
		kv_agent_client_free(a);
		return NULL;
	}
	return a;
}

int backend_agent_call(const struct container *c, const char *op, const char *params,
		       struct kv_msg *resp, struct kv_err **err)
{
	cleanup_agent_client struct kv_agent_client *a = backend_agent_open(c, err);
	if (!a)
		return -1;
	cleanup_free char *name = agent_container_name(c->id);
	cleanup_free char *own_params = params ? NULL : kv_req_container(name, NULL, err);
	if (!params && !own_params)
		return -1;
	cleanup_msg struct kv_msg own = {0};
	return kv_agent_client_call(a, op, params ? params : own_params, resp ? resp : &own, err);
}

/* ------------------------------------------------------------- create */

struct start_ctx {
	const struct runtime_sandbox_req *req;
	struct vm_conf *vc;
	bool owner;
	char *sbdir, *name;
	struct rootfs_plan plan;
	char *template;		    /* the template directory to clone the VM from, or NULL */
	struct vm_desc cold, clone; /* owner: the VM, booted cold or cloned from template */
};

/*
 * The VM owner's VM: its cold boot, and a clone of the template of its
 * shape when there is one whose devices are this VM's (both from
 * vm_desc_build). A template recorded with other devices is named in a
 * warning and not used.
 */
static int describe_vm(struct start_ctx *x, unsigned cpus, uint64_t mem, struct kv_err **err)
{
	const struct vm_conf *vc = x->vc;
	struct tmpl_shape sh = tmpl_shape_of(vc, cpus, mem, &x->plan);
	if (vm_desc_build(&x->cold, vc, &sh, NULL, &x->plan, x->sbdir, err) < 0)
		return -1;
	if (!tmpl_enabled(vc, x->req->cfg))
		return 0;
	tmpl_find(vc, &sh, &x->template);
	if (!x->template)
		return 0;
	cleanup_err struct kv_err *e = NULL;
	if (vm_desc_build(&x->clone, vc, &sh, x->template, &x->plan, x->sbdir, err) < 0)
		return -1;
	if (tmpl_layout_check(x->template, &x->clone.cfg, &e) < 0) {
		kv_warn("container %s: %s; booting cold", x->req->id, e->msg);
		free(steal_ptr(x->template));
	}
	return 0;
}

/* The index of the spec's network namespace (with a path or not), or -1. */
static int spec_netns(const struct oci_config *cfg)
{
	const struct oci_linux *l = cfg->linux_;
	for (size_t i = 0; l && i < l->n_namespaces; i++)
		if (l->namespaces[i].type == OCI_NS_NETWORK)
			return (int)i;
	return -1;
}

/* The owner's kvrun-vmm: the clone, with its cold boot as the fallback
 * should the restore fail, or a cold boot that leaves a template behind. */
static int owner_argv(struct start_ctx *x, struct kv_json *j, unsigned cpus, uint64_t mem,
		      struct kv_err **err)
{
	const char *vmm = x->vc->vmm;
	if (x->template) {
		if (vm_desc_json(&x->clone, vmm, j, "vmm_argv", err) < 0 ||
		    vm_desc_json(&x->cold, vmm, j, "vmm_argv_cold", err) < 0)
			return -1;
		kv_json_kbool(j, "clone", true);
		return 0;
	}
	if (vm_desc_json(&x->cold, vmm, j, "vmm_argv", err) < 0)
		return -1;
	if (tmpl_enabled(x->vc, x->req->cfg)) {
		struct tmpl_shape sh = tmpl_shape_of(x->vc, cpus, mem, &x->plan);
		tmpl_plan_out(x->vc, &sh, &x->cold.cfg, x->req->state_dir, j);
	}
	return 0;
}

static char *create_request(struct start_ctx *x, unsigned cpus, uint64_t mem, struct kv_err **err)
{
	const struct runtime_sandbox_req *req = x->req;
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "create");
	kv_json_kstr(j, "sandbox_dir", x->sbdir);
	kv_json_kbool(j, "owner", x->owner);
	if (x->owner && owner_argv(x, j, cpus, mem, err) < 0)
		return NULL;
	if (x->owner)
		kv_json_kstr(j, "hostname", x->name);
	/* A container in the host's network namespace (none in its spec; its
	 * guest has no network): its VMM gets an empty one of its own, as any
	 * other container's VMM is in its container's, never the host's (no
	 * host abstract socket to dial; about 1 ms, only for these). */
	if (x->owner && spec_netns(req->cfg) < 0)
		kv_json_kbool(j, "vmm_own_netns", true);
	kv_json_kstr(j, "container", x->name);
	kv_json_kstr(j, "body", x->plan.spec_json);
	kv_json_kstr(j, "rootfs", x->plan.rootfs_json);
	if (x->plan.mount_binds || !x->owner) {
		kv_json_key(j, "mount_shared");
		kv_json_array_open(j);
		kv_json_str(j, x->owner ? "binds" : LIVE_TAG);
		kv_json_array_close(j);
	}
	kv_json_kbool(j, "terminal", req->cfg->process->terminal);
	if (req->console_socket)
		kv_json_kstr(j, "console_socket", req->console_socket);
	kv_json_kint(j, "boot_timeout_ms", (long long)x->vc->boot_timeout_s * 1000);
	kv_json_kbool(j, "set_time", true);
	kv_json_map_close(j);
	return kv_json_finish_dup(j, NULL, err);
}

static size_t strv_bytes(const struct oci_strv *v)
{
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++)
		n += strlen(v->v[i]) + 3; /* quotes, comma */
	return n;
}

/*
 * The spec must fit one agent frame (KV_AGENT_FRAME_MAX, with room for the
 * rest of the request): refused here, naming the field that makes it big,
 * before a VM boots for it.
 */
static int spec_fits(const struct start_ctx *x, struct kv_err **err)
{
	size_t len = strlen(x->plan.spec_json), room = AGENT_BODY_MAX;
	if (len <= room)
		return 0;
	const struct oci_process *p = x->req->cfg->process;
	size_t env = p ? strv_bytes(&p->env) : 0, args = p ? strv_bytes(&p->args) : 0;
	const char *what = env >= args && env > len / 2	  ? "process.env"
			   : args > env && args > len / 2 ? "process.args"
							  : "config.json";
	return kv_err_plain(err, E2BIG,
			    "%s: the container's spec is %zu bytes (process.env %zu, process.args "
			    "%zu); the guest agent takes at most %zu",
			    what, len, env, args, room);
}

/*
 * The root filesystem: boot-time shares of the container's own VM
 * (virtio-fs), or, joining a running VM, live shares added to it now.
 */
static int place_rootfs(struct start_ctx *x, unsigned *cpus, uint64_t *mem, struct kv_err **err)
{
	const struct runtime_sandbox_req *req = x->req;
	x->plan.shared = x->owner;
	x->plan.dax_window = x->vc->rootfs_dax;
	/* agent_spec_check() says it too, but after a plan of every mount. */
	if (req->cfg->n_mounts > KV_AGENT_MOUNTS_MAX)
		return kv_err_plain(err, E2BIG, "mounts: must be an array of at most %d mounts",
				    KV_AGENT_MOUNTS_MAX);
	if (rootfs_prepare(req->state_dir, req->cfg, req->st->rootfs, req->st->bundle, &x->plan,
			   err) < 0 ||
	    spec_fits(x, err) < 0)
		return -1;
	if (x->owner) {
		if (vm_size(x->vc, req->cfg, cpus, mem, err) < 0 ||
		    slots_prepare(&x->plan, x->sbdir, err) < 0)
			return -1;
		return describe_vm(x, *cpus, *mem, err);
	}
	cleanup_free char *api = kv_asprintf("%s/%s", x->sbdir, SHIM_API_NAME);
	if (slots_attach(&x->plan, req->id, api, x->sbdir, req->state_dir, err) < 0 ||
	    live_attach(&x->plan, api, req->state_dir, err) < 0)
		return kv_err_wrap(err, "join the VM of sandbox %s", req->st->sandbox_id);
	return 0;
}

static int check_sandbox(struct start_ctx *x, struct kv_err **err)
{
	const struct runtime_sandbox_req *req = x->req;
	cleanup_container struct container *sb = NULL;
	if (container_load(req->g->root, req->st->sandbox_id, &sb, err) < 0)
		return kv_err_wrap(err, "sandbox of container %s", req->id);
	if (sb->status != OCI_STATUS_RUNNING && sb->status != OCI_STATUS_CREATED &&
	    sb->status != OCI_STATUS_PAUSED)
		return kv_err_plain(err, EINVAL, "sandbox %s of container %s is %s",
				    req->st->sandbox_id, req->id, oci_status_name(sb->status));
	return 0;
}

static int run_create_hooks(struct start_ctx *x, pid_t pid, struct kv_err **err)
{
	static const enum oci_hook_kind kinds[] = {OCI_HOOK_PRESTART, OCI_HOOK_CREATE_RUNTIME,
						   OCI_HOOK_CREATE_CONTAINER};
	for (size_t i = 0; i < KV_ARRAY_SIZE(kinds); i++)
		if (x->req->run_hooks(x->req, kinds[i], pid, err) < 0)
			return -1;
	return 0;
}

/*
 * The network namespace the VM's processes live in: the spec's (by path,
 * or a new one when it asks for one without a path), so that what a client
 * configures in "the container's namespace" through the pid kvrun reports
 * (Docker's prestart hook) lands there, never in the host's. A container
 * joining a pod's VM goes into the namespace it names, if any.
 */
static int shim_netns(const struct oci_config *cfg, bool owner, struct kv_err **err)
{
	int i = spec_netns(cfg);
	if (i < 0)
		return SHIM_NETNS_SAME;
	const char *path = cfg->linux_->namespaces[i].path;
	if (!path || !*path)
		return owner ? SHIM_NETNS_NEW : SHIM_NETNS_SAME;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "linux.namespaces[%d].path: open %s", i, path);
	return fd;
}

/* The VM's size, for update's checks ("cpus memory\n" in the VM owner's
 * state directory). */
#define VMSIZE_NAME "vmsize"

static int vmsize_write(const char *dir, unsigned cpus, uint64_t mem, struct kv_err **err)
{
	cleanup_free char *p = kv_asprintf("%s/%s", dir, VMSIZE_NAME);
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%u %llu\n", cpus, (unsigned long long)mem);
	return kv_write_file_volatile(p, buf, (size_t)n, 0644, err);
}

int vmsize_read(const char *sbdir, unsigned *cpus, uint64_t *mem, struct kv_err **err)
{
	cleanup_free char *p = kv_asprintf("%s/%s", sbdir, VMSIZE_NAME);
	cleanup_free char *text = NULL;
	unsigned long long m;
	if (kv_read_file(p, 64, &text, NULL, err) < 0)
		return -1;
	if (sscanf(text, "%u %llu", cpus, &m) != 2)
		return kv_err_plain(err, EINVAL, "%s: not \"cpus memory\"", p);
	*mem = m;
	return 0;
}

static int place_shim(void *ctx, pid_t pid, struct kv_err **err)
{
	return hostcg_attach(ctx, pid, err);
}

/* The host cgroup: the VM's size as limits for its owner, none for a
 * container joining a pod's VM (its shim alone lives there). */
static int make_hostcg(struct start_ctx *x, unsigned cpus, uint64_t mem, struct kv_err **err)
{
	const struct oci_config *cfg = x->req->cfg;
	cleanup_free char *rel =
	    hostcg_path(cfg->linux_ ? cfg->linux_->cgroups_path : NULL, x->req->id);
	return hostcg_create(x->req->state_dir, rel, x->owner ? cpus : 0, mem + x->vc->vmm_overhead,
			     err);
}

static int start_shim(struct start_ctx *x, unsigned cpus, uint64_t mem,
		      struct runtime_sandbox_result *res, struct kv_err **err)
{
	cleanup_free char *request = create_request(x, cpus, mem, err);
	cleanup_free char *log = kv_asprintf("%s/%s", x->req->state_dir, SHIM_LOG);
	cleanup_free char *pidfile = kv_asprintf("%s/%s", x->req->state_dir, SHIM_PIDFILE);
	struct shim_handle h = {.sync_fd = -1};
	if (!request)
		return -1;
	kv_timing_mark("request");
	if (make_hostcg(x, cpus, mem, err) < 0 ||
	    (x->owner && vmsize_write(x->req->state_dir, cpus, mem, err) < 0))
		return -1;
	kv_timing_mark("hostcg");
	int netns = shim_netns(x->req->cfg, x->owner, err);
	if (netns == -1)
		return -1;
	struct shim_spawn_opts so = {.state_dir = x->req->state_dir,
				     .log = log,
				     .netns = netns,
				     .own_pidns = true,
				     .place = place_shim,
				     .place_ctx = (void *)x->req->state_dir,
				     .kvm = x->owner,
				     .tun = x->owner && netns != SHIM_NETNS_SAME,
				     .ptmx =
					 x->req->cfg->process->terminal && x->req->console_socket};
	int r = shim_spawn(x->vc, &so, request, &h, err);
	if (netns >= 0)
		close(netns);
	kv_timing_mark("spawn");
	cleanup_free char *vmmfile = kv_asprintf("%s/%s", x->req->state_dir, SHIM_VMM_PID_NAME);
	if (r < 0 || shim_pidfile_write(pidfile, h.pid, err) < 0 ||
	    shim_await(&h, x->vc->boot_timeout_s + SETUP_TIMEOUT_S, err) < 0)
		goto abort;
	kv_timing_mark("shim");
	if ((x->owner && shim_pidfile_write(vmmfile, shim_vmm_pid(h.pid), err) < 0) ||
	    run_create_hooks(x, h.pid, err) < 0)
		goto abort;
	kv_timing_mark("hooks");
	if ((x->owner && netns != SHIM_NETNS_SAME && shim_net(&h, SETUP_TIMEOUT_S, err) < 0) ||
	    shim_commit(&h, err) < 0)
		goto abort;
	kv_timing_mark("commit");
	res->pid = h.pid;
	res->pid_start = h.start;
	return 0;
abort:
	shim_abort(&h);
	return -1;
}

static int sandbox_start(struct start_ctx *x, struct runtime_sandbox_result *res,
			 struct kv_err **err)
{
	const struct runtime_sandbox_req *req = x->req;
	if (req->preserve_fds > 0)
		return kv_err_plain(
		    err, ENOTSUP,
		    "--preserve-fds: file descriptors cannot be passed into a microVM");
	if (vm_conf_load(&x->vc, err) < 0)
		return -1;
	kv_timing_mark("conf");
	x->vc->debug |= req->g->debug; /* kvrun --debug: the shim logs in detail too */
	x->owner = strcmp(req->st->sandbox_id, req->id) == 0;
	x->sbdir =
	    x->owner ? kv_strdup(req->state_dir) : sandbox_dir(req->state_dir, req->st->sandbox_id);
	x->name = agent_container_name(req->id);
	if (!x->owner && check_sandbox(x, err) < 0)
		return -1;
	if (x->owner && (access(x->vc->kernel, R_OK) < 0 || access(x->vc->image, R_OK) < 0))
		return kv_err_plain(err, ENOENT,
				    "guest kernel %s or image %s not found: build them (make), "
				    "install them (make install), or name them in %s",
				    x->vc->kernel, x->vc->image,
				    x->vc->path ? x->vc->path : KVRUN_CONFIG_PATH);
	unsigned cpus = 0;
	uint64_t mem = 0;
	if (place_rootfs(x, &cpus, &mem, err) < 0)
		return -1;
	kv_timing_mark("rootfs");
	kv_debug("container %s: %s VM %s (%u vCPUs, %llu MiB)%s%s", req->id,
		 x->owner ? "new" : "joining", x->sbdir, cpus, (unsigned long long)(mem >> 20),
		 x->template ? ", cloned from " : "", x->template ? x->template : "");
	return start_shim(x, cpus, mem, res, err);
}

int runtime_sandbox_start(const struct runtime_sandbox_req *req, struct runtime_sandbox_result *res,
			  struct kv_err **err)
{
	struct start_ctx x = {.req = req};
	int r = sandbox_start(&x, res, err);
	if (r < 0) {
		/* The shim is gone (shim_abort); make sure its VMM is too. */
		cleanup_free char *vmm = kv_asprintf("%s/%s", req->state_dir, SHIM_VMM_PID_NAME);
		struct kv_err *e = NULL;
		if (kill_pidfile(vmm, &e) < 0) {
			kv_warn("%s", e->msg);
			kv_err_free(e);
		}
		if (x.owner)
			tmpl_tmp_remove(req->state_dir);
		if (!x.owner && x.sbdir) {
			cleanup_free char *api = kv_asprintf("%s/%s", x.sbdir, SHIM_API_NAME);
			live_detach(api, req->state_dir);
			slots_release(req->id, api, x.sbdir, req->state_dir);
		}
	}
	vm_desc_free(&x.cold);
	vm_desc_free(&x.clone);
	rootfs_plan_free(&x.plan);
	free(x.template);
	vm_conf_free(x.vc);
	free(x.sbdir);
	free(x.name);
	return r;
}

/* ------------------------------------------------------- the lifecycle */

int runtime_backend_start(struct container *c, struct kv_err **err)
{
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (container_config(c, &cfg, err) < 0)
		return -1;
	/* startContainer hooks are host programs: they run here, before the
	 * process is released in the guest (they cannot run inside it). */
	cleanup_free char *state = container_spec_state_json(c);
	if (runtime_hooks_run(&cfg->hooks, OCI_HOOK_START_CONTAINER, state, err) < 0)
		return -1;
	return backend_agent_call(c, KV_OP_START, NULL, NULL, err);
}

int runtime_backend_kill(struct container *c, int sig, bool all, struct kv_err **err)
{
	if (c->pid <= 0)
		return kv_err_plain(err, ESRCH, "container not running");
	/* Signal 0 delivers nothing, it asks whether the process exists (kill(2)):
	 * the shim, the container's pid, lives exactly as long as its process. */
	if (sig == 0)
		return kill(c->pid, 0) < 0 ? kv_err_make(err, errno, "kill %d", (int)c->pid) : 0;
	/* SIGKILL of a VM's own container: nothing in the guest can outlive or
	 * catch it, so the VM goes at once with its shim (the VMM dies with it),
	 * which exits killed by SIGKILL, as the container's init would. */
	if (sig == SIGKILL && strcmp(c->st->sandbox_id, c->id) == 0) {
		if (kill(c->pid, SIGKILL) < 0 && errno != ESRCH)
			return kv_err_make(err, errno, "kill %d", (int)c->pid);
		return 0;
	}
	cleanup_free char *name = agent_container_name(c->id);
	cleanup_free char *params = kv_req_kill(name, NULL, sig, &all, err);
	if (!params)
		return -1;
	struct kv_err *e = NULL;
	if (backend_agent_call(c, KV_OP_KILL, params, NULL, &e) == 0)
		return 0;
	/* No VM to ask (it died): the shim is all that is left of the container. */
	kv_debug("kill through the agent: %s; signalling the shim", e->msg);
	kv_err_free(e);
	if (kill(c->pid, sig) < 0)
		return kv_err_make(err, errno, "kill %d with signal %d", (int)c->pid, sig);
	return 0;
}
