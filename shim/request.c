/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request kvrun hands the shim, and the small file helpers both sides
 * share (agent address, pid files). The request comes from kvrun, not from
 * a guest, but it is still checked field by field.
 */
#include "shim/internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/un.h>
#include <yajl/yajl_tree.h>

void shim_req_free(struct shim_req *r)
{
	free(r->op);
	free(r->sandbox_dir);
	for (char **a = r->vmm_argv; a && *a; a++)
		free(*a);
	free(r->vmm_argv);
	free(r->container);
	free(r->exec_id);
	free(r->body);
	free(r->rootfs);
	free(r->console_socket);
	for (char **a = r->shares; a && *a; a++)
		free(*a);
	free(r->shares);
	for (char **a = r->vmm_argv_cold; a && *a; a++)
		free(*a);
	free(r->vmm_argv_cold);
	free(r->hostname);
	free(r->tmpl_tmp);
	free(r->tmpl_final);
	free(r->tmpl_info);
	memset(r, 0, sizeof(*r));
}

static char *dup_str(yajl_val root, const char *key)
{
	const char *s = kv_jstr(root, key);
	return s ? kv_strdup(s) : NULL;
}

/* A JSON array of strings as a NULL-terminated vector (absent: NULL). */
static int parse_strv(yajl_val root, const char *key, char ***out, struct kv_err **err)
{
	yajl_val v = kv_jget(root, key);
	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > 256)
		return kv_err_make(err, EINVAL, "shim request: %s: want up to 256 strings", key);
	*out = kv_malloc0((v->u.array.len + 1) * sizeof(char *));
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val a = v->u.array.values[i];
		if (!YAJL_IS_STRING(a))
			return kv_err_make(err, EINVAL, "shim request: %s[%zu]: not a string", key,
					   i);
		(*out)[i] = kv_strdup(a->u.string);
	}
	return 0;
}

static int parse_argv(yajl_val root, struct shim_req *r, struct kv_err **err)
{
	if (!r->owner)
		return 0;
	if (parse_strv(root, "vmm_argv", &r->vmm_argv, err) < 0 ||
	    parse_strv(root, "vmm_argv_cold", &r->vmm_argv_cold, err) < 0)
		return -1;
	if (!r->vmm_argv || !r->vmm_argv[0] || (r->vmm_argv_cold && !r->vmm_argv_cold[0]))
		return kv_err_make(err, EINVAL, "shim request: vmm_argv: want 1..256 strings");
	return 0;
}

int shim_req_parse(const char *text, struct shim_req *r, struct kv_err **err)
{
	cleanup_yajl_val yajl_val root = kv_json_parse(text, "shim request", err);
	if (!root)
		return -1;
	if (!YAJL_IS_OBJECT(root))
		return kv_err_make(err, EINVAL, "shim request: not an object");
	r->op = dup_str(root, "op");
	r->sandbox_dir = dup_str(root, "sandbox_dir");
	r->container = dup_str(root, "container");
	r->exec_id = dup_str(root, "exec_id");
	r->body = dup_str(root, "body");
	r->rootfs = dup_str(root, "rootfs");
	r->console_socket = dup_str(root, "console_socket");
	kv_jbool(root, "owner", &r->owner);
	kv_jbool(root, "terminal", &r->terminal);
	kv_jbool(root, "set_time", &r->set_time);
	kv_jbool(root, "clone", &r->clone);
	kv_jbool(root, "vmm_own_netns", &r->vmm_own_netns);
	r->hostname = dup_str(root, "hostname");
	r->tmpl_tmp = dup_str(root, "template_tmp");
	r->tmpl_final = dup_str(root, "template_final");
	r->tmpl_info = dup_str(root, "template_info");
	r->boot_timeout_ms = 300000;
	kv_jint(root, "boot_timeout_ms", &r->boot_timeout_ms);
	if (!r->op || (strcmp(r->op, "create") && strcmp(r->op, "exec")))
		return kv_err_make(err, EINVAL, "shim request: op: want create or exec");
	if (!r->sandbox_dir || r->sandbox_dir[0] != '/')
		return kv_err_make(err, EINVAL, "shim request: sandbox_dir: want an absolute path");
	if (!r->container || !r->body)
		return kv_err_make(err, EINVAL, "shim request: container and body are required");
	if (strcmp(r->op, "exec") == 0 && (!r->exec_id || r->owner))
		return kv_err_make(err, EINVAL, "shim request: exec wants exec_id and no VM");
	if (r->boot_timeout_ms <= 0)
		return kv_err_make(err, EINVAL, "shim request: boot_timeout_ms: must be positive");
	if (!kv_agent_name_ok(r->container) || (r->exec_id && !kv_agent_name_ok(r->exec_id)))
		return kv_err_make(err, EINVAL,
				   "shim request: container, exec_id: 1..64 of [A-Za-z0-9_.-]");
	if (parse_strv(root, "mount_shared", &r->shares, err) < 0)
		return -1;
	for (char **t = r->shares; t && *t; t++)
		if (!kv_agent_name_ok(*t))
			return kv_err_make(err, EINVAL, "shim request: mount_shared: bad tag");
	if (r->hostname && !kv_agent_name_ok(r->hostname))
		return kv_err_make(err, EINVAL, "shim request: hostname: 1..64 of [A-Za-z0-9_.-]");
	if (r->clone && !r->owner)
		return kv_err_make(err, EINVAL, "shim request: clone: only for the VM's owner");
	if ((r->tmpl_tmp || r->tmpl_final) &&
	    (!r->owner || r->clone || !r->tmpl_tmp || r->tmpl_tmp[0] != '/' || !r->tmpl_final ||
	     r->tmpl_final[0] != '/' || !r->tmpl_info))
		return kv_err_make(err, EINVAL,
				   "shim request: template_tmp, template_final, template_info: "
				   "absolute paths and the info, for a cold boot's owner only");
	return parse_argv(root, r, err);
}

char *shim_agent_addr(const char *dir, struct kv_err **err)
{
	struct sockaddr_un sa;
	cleanup_free char *path = kv_asprintf("%s/%s", dir, SHIM_VSOCK_NAME);
	if (strlen(path) < sizeof(sa.sun_path))
		return kv_asprintf("hvsock:%s", path);
	/* Deliberately kept open: the path names it for the life of the process. */
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		kv_err_make(err, errno, "open %s", dir);
		return NULL;
	}
	return kv_asprintf("hvsock:/proc/self/fd/%d/%s", fd, SHIM_VSOCK_NAME);
}

int shim_pidfile_write(const char *path, pid_t pid, struct kv_err **err)
{
	uint64_t start = 0;
	(void)kv_pid_start_time(pid, &start);
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%d %llu\n", (int)pid, (unsigned long long)start);
	return kv_write_file_volatile(path, buf, (size_t)n, 0644, err);
}

int shim_pidfile_read(const char *path, pid_t *pid, uint64_t *start)
{
	cleanup_free char *text = NULL;
	if (kv_read_file(path, 128, &text, NULL, NULL) < 0)
		return -1;
	int p;
	unsigned long long s;
	if (sscanf(text, "%d %llu", &p, &s) != 2 || p <= 0)
		return -1;
	*pid = p;
	*start = s;
	return 0;
}
