/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM templates: the key, finding one, creating one (boot kvrun-vmm with the
 * template's devices, wait for the agent, snapshot through kvrun-vmm's API),
 * listing and removing them. See template.h.
 */
#include "runtime/template.h"
#include "agent/protocol.h"
#include "shim/shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/random.h>
#include <yajl/yajl_tree.h>

#define TEMPLATE_VERSION     4	 /* 3: a NIC (--net); 4: the devices (vm_desc_build) */
#define TEMPLATE_AGENT_RETRY 200 /* ms between tries to reach a booting agent */
#define TEMPLATE_SETTLE_MS   500 /* for the guest to finish with our connection */
#define TEMPLATE_SNAPSHOT_S  300
#define TEMPLATE_VMM_LOG     "vmm.log"
#define TEMPLATE_INFO_MAX    (64u << 10)

char *tmpl_root(const struct vm_conf *vc)
{
	const char *env = getenv("KVRUN_TEMPLATE_DIR");
	if (env && *env)
		return kv_strdup(env);
	return kv_strdup(vc->template_dir ? vc->template_dir : TEMPLATE_DIR_DEFAULT);
}

char *tmpl_guest_cmdline(const struct vm_conf *vc)
{
	return kv_asprintf("root=/dev/pmem0 rootfstype=erofs ro rootflags=dax quiet%s%s",
			   vc->cmdline ? " " : "", vc->cmdline ? vc->cmdline : "");
}

bool tmpl_enabled(const struct vm_conf *vc, const struct oci_config *cfg)
{
	if (!vc->templates)
		return false;
	const char *v = oci_annotation(cfg, TEMPLATE_ANNOTATION);
	return !v || !(strcmp(v, "false") == 0 || strcmp(v, "off") == 0 || strcmp(v, "0") == 0 ||
		       strcmp(v, "no") == 0);
}

/* "path size mtime": a rebuilt file is another file. */
static int tmpl_file_id(const char *what, const char *path, char **out, struct kv_err **err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return kv_err_make(err, errno, "%s %s", what, path);
	*out = kv_asprintf("%s %s %lld %lld.%09ld", what, path, (long long)st.st_size,
			   (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

int tmpl_key(const struct vm_conf *vc, const struct tmpl_shape *sh, char **text,
	     char id[TEMPLATE_ID_LEN + 1], struct kv_err **err)
{
	cleanup_free char *vmm = NULL, *kernel = NULL, *image = NULL;
	if (tmpl_file_id("vmm", vc->vmm, &vmm, err) < 0 ||
	    tmpl_file_id("kernel", vc->kernel, &kernel, err) < 0 ||
	    tmpl_file_id("image", vc->image, &image, err) < 0)
		return -1;
	cleanup_free char *cmdline = tmpl_guest_cmdline(vc);
	/* The devices of a template of this shape (its files aside). */
	cleanup_vm_desc struct vm_desc d = {0};
	if (vm_desc_build(&d, vc, sh, NULL, NULL, ".", err) < 0)
		return -1;
	cleanup_free char *devices = vmm_config_layout(&d.cfg);
	*text =
	    kv_asprintf("kvrun-template %d\n%s\n%s\n%s\ncmdline %s\ncpus %u\nmemory %llu\n"
			"rootfs_dax %llu\ndevices\n%s",
			TEMPLATE_VERSION, vmm, kernel, image, cmdline, sh->cpus,
			(unsigned long long)sh->mem, (unsigned long long)sh->rootfs_dax, devices);
	/* A name; template.json holds the whole key. */
	snprintf(id, TEMPLATE_ID_LEN + 1, "%016llx", (unsigned long long)kv_fnv1a64(*text));
	return 0;
}

/* A string of dir's template.json, or NULL when it is missing or unreadable. */
static char *tmpl_info_str(const char *dir, const char *field)
{
	cleanup_free char *path = kv_asprintf("%s/%s", dir, TEMPLATE_INFO);
	cleanup_free char *text = NULL;
	if (kv_read_file(path, TEMPLATE_INFO_MAX, &text, NULL, NULL) < 0)
		return NULL;
	cleanup_yajl_val yajl_val root = kv_json_parse(text, path, NULL);
	const char *v = root ? kv_jstr(root, field) : NULL;
	return v ? kv_strdup(v) : NULL;
}

static char *tmpl_info_key(const char *dir)
{
	return tmpl_info_str(dir, "key");
}

void tmpl_find(const struct vm_conf *vc, const struct tmpl_shape *sh, char **dir)
{
	*dir = NULL;
	cleanup_free char *text = NULL;
	char id[TEMPLATE_ID_LEN + 1];
	cleanup_err struct kv_err *e = NULL;
	if (tmpl_key(vc, sh, &text, id, &e) < 0) {
		kv_debug("no template: %s", e->msg);
		return;
	}
	cleanup_free char *root = tmpl_root(vc);
	cleanup_free char *d = kv_asprintf("%s/%s", root, id);
	cleanup_free char *key = tmpl_info_key(d);
	if (!key || strcmp(key, text) != 0) {
		kv_debug("no template %s for this VM (%u vCPUs, %llu MiB): cold boot", d, sh->cpus,
			 (unsigned long long)(sh->mem >> 20));
		return;
	}
	/* Its last use, for the budget (tmpl_prune): the directory's times. */
	(void)utimensat(AT_FDCWD, d, NULL, 0);
	*dir = steal_ptr(d);
}

int tmpl_layout_check(const char *dir, const struct vmm_config *cfg, struct kv_err **err)
{
	cleanup_free char *have = tmpl_info_str(dir, "devices");
	cleanup_free char *want = vmm_config_layout(cfg);
	if (!have)
		return kv_err_plain(err, EINVAL, "template %s: its %s records no devices", dir,
				    TEMPLATE_INFO);
	const char *a = have, *b = want;
	for (unsigned slot = 0;; slot++) {
		int la = (int)strcspn(a, "\n"), lb = (int)strcspn(b, "\n");
		if (la != lb || memcmp(a, b, (size_t)la) != 0)
			return kv_err_plain(
			    err, EINVAL,
			    "template %s: device %u is '%.*s' in the template, '%.*s' in this VM "
			    "(a clone's devices must be its template's, slot by slot)",
			    dir, slot, la ? la : 4, la ? a : "none", lb ? lb : 4, lb ? b : "none");
		if (!a[la] && !b[lb])
			return 0;
		a += la + (a[la] != 0);
		b += lb + (b[lb] != 0);
	}
}

/* ------------------------------------------------------------- creation */

/* Run argv in dir with stdio on dir/log (appended); returns the pid. */
static pid_t tmpl_spawn(char **argv, const char *dir, struct kv_err **err)
{
	pid_t pid = fork();
	if (pid < 0)
		return kv_err_make(err, errno, "fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (chdir(dir) < 0)
			_exit(127);
		int log = open(TEMPLATE_VMM_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (null < 0 || log < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
		    dup2(log, 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		dprintf(2, "kvrun: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static int tmpl_wait_status(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Until the agent answers a hello; then hang up, and give the guest time to. */
static int tmpl_agent_wait(const struct vm_conf *vc, const char *dir, pid_t vmm,
			   struct kv_err **err)
{
	cleanup_free char *addr = shim_agent_addr(dir, err);
	if (!addr)
		return -1;
	uint64_t deadline = kv_now_ms() + (uint64_t)vc->boot_timeout_s * 1000;
	for (;;) {
		cleanup_err struct kv_err *e = NULL;
		struct kv_agent_client *a = kv_agent_client_connect(addr, &e);
		if (a) {
			kv_agent_client_set_timeout(a, 30000);
			int r = kv_agent_client_hello(a, &e);
			kv_agent_client_free(a);
			if (r == 0) {
				usleep(TEMPLATE_SETTLE_MS * 1000);
				return 0;
			}
		}
		int st;
		if (waitpid(vmm, &st, WNOHANG) == vmm)
			return kv_err_make(err, ECHILD,
					   "the template VM stopped while booting (status %d); see "
					   "%s/%s",
					   WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
					   dir, TEMPLATE_VMM_LOG);
		if (kv_now_ms() >= deadline)
			return kv_err_make(
			    err, ETIMEDOUT,
			    "the template VM's agent did not answer within %u s (%s)",
			    vc->boot_timeout_s, e ? e->msg : "?");
		usleep(TEMPLATE_AGENT_RETRY * 1000);
	}
}

/* Snapshot the template VM into dir through its API; it exits once written. */
static int tmpl_snapshot(const char *dir, struct kv_err **err)
{
	cleanup_free char *api = kv_asprintf("%s/%s", dir, SHIM_API_NAME), *resp = NULL;
	if (vmm_snapshot(api, dir, "exit", &resp, err) < 0)
		return kv_err_wrap(err, "snapshot of the template VM (%s/%s)", dir,
				   TEMPLATE_VMM_LOG);
	return 0;
}

static int tmpl_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf dir (no symlink followed). */
static int tmpl_rmtree(const char *dir)
{
	return nftw(dir, tmpl_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int tmpl_prepare(const char *tmp, const struct tmpl_shape *sh, struct kv_err **err)
{
	if (mkdir(tmp, 0700) < 0)
		return kv_err_make(err, errno, "mkdir %s", tmp);
	cleanup_free char *empty = kv_asprintf("%s/%s", tmp, VM_EMPTY_DIR);
	if (mkdir(empty, 0755) < 0)
		return kv_err_make(err, errno, "mkdir %s", empty);
	/* Layer slots: the placeholder each is booted with (vm_desc_build). */
	return sh->nlayers ? vm_slot_file_make(tmp, err) : 0;
}

static char *tmpl_info_text(const char *id, const char *key, const struct tmpl_shape *sh,
			    const struct vmm_config *cfg, struct kv_err **err)
{
	cleanup_free char *devices = vmm_config_layout(cfg);
	cleanup_json struct kv_json *j = kv_json_new(true);
	kv_json_map_open(j);
	kv_json_kstr(j, "id", id);
	kv_json_kint(j, "version", TEMPLATE_VERSION);
	kv_json_kstr(j, "key", key);
	kv_json_kint(j, "cpus", sh->cpus);
	kv_json_key(j, "memory");
	kv_json_uint(j, sh->mem);
	kv_json_key(j, "rootfs_dax");
	kv_json_uint(j, sh->rootfs_dax);
	kv_json_key(j, "layer_windows");
	kv_json_array_open(j);
	for (unsigned i = 0; i < sh->nlayers; i++)
		kv_json_uint(j, sh->layer_window[i]);
	kv_json_array_close(j);
	kv_json_kstr(j, "devices", devices);
	kv_json_kint(j, "created", (long long)time(NULL));
	kv_json_map_close(j);
	return kv_json_finish_dup(j, NULL, err);
}

static int tmpl_info_write(const char *tmp, const char *id, const char *key,
			   const struct tmpl_shape *sh, const struct vmm_config *cfg,
			   struct kv_err **err)
{
	cleanup_free char *text = tmpl_info_text(id, key, sh, cfg, err);
	if (!text)
		return -1;
	cleanup_free char *path = kv_asprintf("%s/%s", tmp, TEMPLATE_INFO);
	return kv_write_file_atomic(path, text, strlen(text), 0644, err);
}

/* What a finished template keeps: the snapshot, template.json, the boot's logs. */
static void tmpl_tidy(const char *tmp)
{
	const char *gone[] = {VM_EMPTY_DIR, VM_SLOT_FILE, SHIM_VSOCK_NAME, SHIM_API_NAME};
	for (size_t i = 0; i < KV_ARRAY_SIZE(gone); i++) {
		cleanup_free char *p = kv_asprintf("%s/%s", tmp, gone[i]);
		(void)remove(p);
	}
}

/* Boot the template VM (d) in tmp and snapshot it there. */
static int tmpl_boot_and_snapshot(const struct vm_conf *vc, const struct vm_desc *d,
				  const char *tmp, struct kv_err **err)
{
	char **argv = NULL;
	if (vmm_cli_argv(&d->cfg, vc->vmm, &argv, err) < 0)
		return -1;
	pid_t pid = tmpl_spawn(argv, tmp, err);
	vmm_cli_argv_free(argv);
	if (pid < 0)
		return -1;
	int r = tmpl_agent_wait(vc, tmp, pid, err);
	if (r == 0)
		r = tmpl_snapshot(tmp, err);
	if (r < 0)
		kill(pid, SIGKILL);
	int st;
	if (tmpl_wait_status(pid, &st) == 0 && r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st)))
		r = kv_err_make(err, EIO,
				"the template VM exited with status %d after its snapshot",
				WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return r;
}

int tmpl_create(const struct vm_conf *vc, const struct tmpl_shape *sh, bool force,
		char id[TEMPLATE_ID_LEN + 1], struct kv_err **err)
{
	cleanup_free char *root = tmpl_root(vc);
	cleanup_free char *key = NULL;
	if (kv_mkdir_p(root, 0700, err) < 0 || tmpl_key(vc, sh, &key, id, err) < 0)
		return -1;
	cleanup_free char *final = kv_asprintf("%s/%s", root, id);
	cleanup_free char *have = tmpl_info_key(final);
	if (have && strcmp(have, key) == 0 && !force)
		return 0;
	cleanup_free char *tmp = kv_asprintf("%s/.tmp-%s-%d", root, id, (int)getpid());
	cleanup_free char *old = kv_asprintf("%s/.old-%s-%d", root, id, (int)getpid());
	(void)tmpl_rmtree(tmp);
	cleanup_vm_desc struct vm_desc d = {0};
	if (vm_desc_build(&d, vc, sh, NULL, NULL, tmp, err) < 0)
		return -1;
	int r = tmpl_prepare(tmp, sh, err);
	if (r == 0)
		r = tmpl_boot_and_snapshot(vc, &d, tmp, err);
	if (r == 0)
		r = tmpl_info_write(tmp, id, key, sh, &d.cfg, err);
	if (r == 0) {
		tmpl_tidy(tmp);
		/* Replace an old one (another key with the same name, or --force). */
		if (rename(final, old) < 0 && errno != ENOENT)
			r = kv_err_make(err, errno, "move %s aside", final);
		else if (rename(tmp, final) < 0)
			r = kv_err_make(err, errno, "rename %s to %s", tmp, final);
		(void)tmpl_rmtree(old);
	}
	if (r < 0)
		(void)tmpl_rmtree(tmp);
	return r;
}

/* ------------------------------------------------------- list and remove */

static bool tmpl_id_ok(const char *id)
{
	return strlen(id) == TEMPLATE_ID_LEN && strspn(id, "0123456789abcdef") == TEMPLATE_ID_LEN;
}

/* Whether a template is the one this config would use now (its files unchanged). */
static bool tmpl_current(const struct vm_conf *vc, yajl_val info)
{
	long long cpus = 0, mem = 0, dax = 0;
	kv_jint(info, "cpus", &cpus);
	kv_jint(info, "memory", &mem);
	kv_jint(info, "rootfs_dax", &dax);
	struct tmpl_shape sh = {
	    .cpus = (unsigned)cpus, .mem = (uint64_t)mem, .rootfs_dax = (uint64_t)dax};
	yajl_val lw = kv_jget(info, "layer_windows");
	if (lw && YAJL_IS_ARRAY(lw))
		for (size_t i = 0; i < YAJL_GET_ARRAY(lw)->len && i < VM_LAYERS_MAX; i++) {
			yajl_val w = YAJL_GET_ARRAY(lw)->values[i];
			if (!YAJL_IS_INTEGER(w) || YAJL_GET_INTEGER(w) <= 0)
				return false;
			sh.layer_window[sh.nlayers++] = (uint64_t)YAJL_GET_INTEGER(w);
		}
	cleanup_free char *text = NULL;
	char id[TEMPLATE_ID_LEN + 1];
	const char *key = kv_jstr(info, "key");
	return tmpl_key(vc, &sh, &text, id, NULL) == 0 && key && strcmp(key, text) == 0;
}

static uint64_t tmpl_disk_bytes(const char *dir)
{
	uint64_t total = 0;
	const char *files[] = {"state", "memory", TEMPLATE_INFO};
	for (size_t i = 0; i < KV_ARRAY_SIZE(files); i++) {
		cleanup_free char *p = kv_asprintf("%s/%s", dir, files[i]);
		struct stat st;
		if (stat(p, &st) == 0)
			total += (uint64_t)st.st_blocks * 512;
	}
	return total;
}

/* One template: a row of the table, or (j not NULL) an object of the JSON array. */
static void tmpl_list_one(const struct vm_conf *vc, const char *dir, const char *name,
			  struct kv_json *j, FILE *out)
{
	cleanup_free char *path = kv_asprintf("%s/%s", dir, TEMPLATE_INFO);
	cleanup_free char *text = NULL;
	if (kv_read_file(path, TEMPLATE_INFO_MAX, &text, NULL, NULL) < 0)
		return;
	cleanup_yajl_val yajl_val info = kv_json_parse(text, path, NULL);
	if (!info)
		return;
	long long cpus = 0, mem = 0, created = 0;
	kv_jint(info, "cpus", &cpus);
	kv_jint(info, "memory", &mem);
	kv_jint(info, "created", &created);
	bool cur = tmpl_current(vc, info);
	uint64_t disk = tmpl_disk_bytes(dir);
	char when[32] = "-";
	time_t t = (time_t)created;
	struct tm tm;
	if (created > 0 && gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!j) {
		fprintf(out, "%-16s  %4lld  %6lldM  %7lluM  %-20s  %s\n", name, cpus, mem >> 20,
			(unsigned long long)(disk >> 20), when,
			cur ? "current" : "stale (its files changed)");
		return;
	}
	kv_json_map_open(j);
	kv_json_kstr(j, "id", name);
	kv_json_kint(j, "cpus", cpus);
	kv_json_kint(j, "memory", mem);
	kv_json_key(j, "disk_bytes");
	kv_json_uint(j, disk);
	kv_json_kstr(j, "created", when);
	kv_json_kbool(j, "current", cur);
	kv_json_kstr(j, "path", dir);
	kv_json_map_close(j);
}

/* The JSON array, written at the end (a path that is not UTF-8 fails it). */
static int tmpl_list_json_out(struct kv_json *j, FILE *out, struct kv_err **err)
{
	kv_json_array_close(j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, err) < 0)
		return kv_err_wrap(err, "template list");
	fwrite(text, 1, len, out);
	fputc('\n', out);
	return 0;
}

int tmpl_list(const struct vm_conf *vc, bool json, FILE *out, struct kv_err **err)
{
	cleanup_free char *root = tmpl_root(vc);
	struct dirent **ents = NULL;
	int n = scandir(root, &ents, NULL, alphasort);
	if (n < 0 && errno != ENOENT)
		return kv_err_make(err, errno, "read %s", root);
	cleanup_json struct kv_json *j = json ? kv_json_new(false) : NULL;
	if (j)
		kv_json_array_open(j);
	else
		fprintf(out, "%-16s  %4s  %7s  %8s  %-20s  %s\n", "ID", "CPUS", "MEMORY", "DISK",
			"CREATED", "STATUS");
	for (int i = 0; i < n; i++) {
		if (tmpl_id_ok(ents[i]->d_name)) {
			cleanup_free char *dir = kv_asprintf("%s/%s", root, ents[i]->d_name);
			tmpl_list_one(vc, dir, ents[i]->d_name, j, out);
		}
		free(ents[i]);
	}
	free(ents);
	if (j && tmpl_list_json_out(j, out, err) < 0)
		return -1;
	return fflush(out) == 0 ? 0 : kv_err_make(err, errno, "write");
}

int tmpl_remove(const struct vm_conf *vc, const char *id, struct kv_err **err)
{
	cleanup_free char *root = tmpl_root(vc);
	if (id) {
		if (!tmpl_id_ok(id))
			return kv_err_plain(err, EINVAL,
					    "template %s: an id is 16 hex digits (see "
					    "kvrun template list)",
					    id);
		cleanup_free char *dir = kv_asprintf("%s/%s", root, id);
		if (access(dir, F_OK) < 0)
			return kv_err_plain(err, ENOENT, "template %s does not exist", id);
		return tmpl_rmtree(dir) < 0 ? kv_err_make(err, errno, "remove %s", dir) : 0;
	}
	struct dirent **ents = NULL;
	int n = scandir(root, &ents, NULL, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : kv_err_make(err, errno, "read %s", root);
	int r = 0;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		if (tmpl_id_ok(name) || strncmp(name, ".tmp-", 5) == 0 ||
		    strncmp(name, ".old-", 5) == 0) {
			cleanup_free char *dir = kv_asprintf("%s/%s", root, name);
			if (tmpl_rmtree(dir) < 0 && r == 0)
				r = kv_err_make(err, errno, "remove %s", dir);
		}
		free(ents[i]);
	}
	free(ents);
	return r;
}

/* --------------------------------------------- templates without asking */

struct tmpl_ent {
	char *dir;
	struct timespec used; /* the directory's mtime: its last clone */
	uint64_t disk;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct tmpl_ent *x = a, *y = b;
	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	return (x->used.tv_nsec > y->used.tv_nsec) - (x->used.tv_nsec < y->used.tv_nsec);
}

/* A template whose files changed (a rebuilt kernel, image or VMM) goes;
 * so does what a crashed creation left more than an hour ago. */
static bool tmpl_prune_one(const struct vm_conf *vc, const char *root, const char *name,
			   struct tmpl_ent *e)
{
	cleanup_free char *dir = kv_asprintf("%s/%s", root, name);
	struct stat st;
	if (stat(dir, &st) < 0)
		return false;
	if (strncmp(name, ".tmp-", 5) == 0 || strncmp(name, ".old-", 5) == 0) {
		if (time(NULL) - st.st_mtime > 3600)
			(void)tmpl_rmtree(dir);
		return false;
	}
	if (!tmpl_id_ok(name))
		return false;
	cleanup_free char *path = kv_asprintf("%s/%s", dir, TEMPLATE_INFO);
	cleanup_free char *text = NULL;
	cleanup_yajl_val yajl_val info =
	    kv_read_file(path, TEMPLATE_INFO_MAX, &text, NULL, NULL) == 0
		? kv_json_parse(text, path, NULL)
		: NULL;
	if (!info || !tmpl_current(vc, info)) {
		kv_debug("template %s is stale: removed", dir);
		(void)tmpl_rmtree(dir);
		return false;
	}
	*e = (struct tmpl_ent){.dir = steal_ptr(dir), .used = st.st_mtim};
	e->disk = tmpl_disk_bytes(e->dir);
	return true;
}

/*
 * Room for one more template within the budget (template_max templates,
 * template_disk bytes of snapshot files): stale ones first, then the least
 * recently used.
 */
static void tmpl_prune(const struct vm_conf *vc, const char *root, uint64_t adding)
{
	struct dirent **ents = NULL;
	int n = scandir(root, &ents, NULL, alphasort);
	if (n < 0)
		return;
	struct tmpl_ent *v = kv_malloc0((size_t)(n + 1) * sizeof(*v));
	size_t k = 0;
	uint64_t disk = 0;
	for (int i = 0; i < n; i++) {
		if (tmpl_prune_one(vc, root, ents[i]->d_name, &v[k]))
			disk += v[k++].disk;
		free(ents[i]);
	}
	free(ents);
	qsort(v, k, sizeof(*v), ent_cmp);
	for (size_t i = 0; i < k; i++) {
		if (k - i + 1 > vc->template_max || disk + adding > vc->template_disk) {
			kv_debug("template budget: %s removed (least recently used)", v[i].dir);
			(void)tmpl_rmtree(v[i].dir);
			disk -= v[i].disk;
		}
		free(v[i].dir);
	}
	free(v);
}

/* In the VM owner's state directory: the temporary directory its shim
 * snapshots into (tmpl_plan_out, tmpl_tmp_remove). */
#define TMPL_TMP_RECORD "template.tmp"

void tmpl_tmp_remove(const char *state_dir)
{
	cleanup_free char *rec = kv_asprintf("%s/%s", state_dir, TMPL_TMP_RECORD);
	cleanup_free char *tmp = NULL;
	if (kv_read_file(rec, PATH_MAX, &tmp, NULL, NULL) < 0)
		return;
	/* Only what tmpl_plan_out names: <root>/.tmp-<...>. Renamed into
	 * place (a template made), it is no longer there. */
	const char *base = strrchr(tmp, '/');
	struct stat st;
	if (base && strncmp(base + 1, ".tmp-", 5) == 0 && lstat(tmp, &st) == 0 &&
	    S_ISDIR(st.st_mode)) {
		kv_debug("%s: a half-made template, removed", tmp);
		(void)tmpl_rmtree(tmp);
	}
	unlink(rec);
}

void tmpl_plan_out(const struct vm_conf *vc, const struct tmpl_shape *sh,
		   const struct vmm_config *cfg, const char *state_dir, struct kv_json *j)
{
	cleanup_free char *root = tmpl_root(vc), *key = NULL;
	char id[TEMPLATE_ID_LEN + 1];
	cleanup_err struct kv_err *e = NULL;
	if (vc->template_max == 0)
		return;
	if (kv_mkdir_p(root, 0700, &e) < 0 || tmpl_key(vc, sh, &key, id, &e) < 0) {
		kv_debug("no template will be left behind: %s", e->msg);
		return;
	}
	/* A template's disk is about what its guest touched by agent-ready. */
	tmpl_prune(vc, root, sh->mem / 8);
	cleanup_free char *info = tmpl_info_text(id, key, sh, cfg, &e);
	if (!info)
		return;
	uint32_t rnd = 0;
	(void)!getrandom(&rnd, sizeof(rnd), 0);
	cleanup_free char *tmp = kv_asprintf("%s/.tmp-%s-%d-%08x", root, id, (int)getpid(), rnd);
	cleanup_free char *final = kv_asprintf("%s/%s", root, id);
	/* Recorded first: a shim killed mid-snapshot leaves a half template
	 * that the container's delete (or its failed create) removes. */
	cleanup_free char *rec = kv_asprintf("%s/%s", state_dir, TMPL_TMP_RECORD);
	if (kv_write_file_volatile(rec, tmp, strlen(tmp), 0600, &e) < 0) {
		kv_debug("no template will be left behind: %s", e->msg);
		return;
	}
	kv_json_kstr(j, "template_tmp", tmp);
	kv_json_kstr(j, "template_final", final);
	kv_json_kstr(j, "template_info", info);
}
