/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request builders: the params object of each agent operation, written with
 * the checked JSON writer so that a name holding a quote or a backslash
 * comes out escaped (and parses back as itself) instead of breaking the
 * frame. The shapes are documented once, in protocol.h.
 */
#include "agent/protocol.h"

#include <string.h>

bool kv_agent_name_ok(const char *name)
{
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strspn(name, ok) == n;
}

static struct kv_json *params_open(void)
{
	struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	return j;
}

static char *params_close(struct kv_json *j, const char *op, struct kv_err **err)
{
	cleanup_json struct kv_json *own = j;
	kv_json_map_close(own);
	char *text = kv_json_finish_dup(own, NULL, err);
	if (!text)
		kv_err_wrap(err, "agent %s request", op);
	return text;
}

/* {container, exec_id?}: how most requests begin. */
static struct kv_json *params_target(const char *container, const char *exec_id)
{
	struct kv_json *j = params_open();
	kv_json_kstr(j, "container", container);
	if (exec_id)
		kv_json_kstr(j, "exec_id", exec_id);
	return j;
}

/* An embedded JSON text (the caller's writer made it); NULL writes null. */
static void put_raw(struct kv_json *j, const char *key, const char *text)
{
	kv_json_key(j, key);
	if (text)
		kv_json_raw(j, text, strlen(text));
	else
		kv_json_null(j);
}

char *kv_req_version(struct kv_err **err)
{
	struct kv_json *j = params_open();
	kv_json_kint(j, "version", KV_AGENT_PROTO_VERSION);
	return params_close(j, KV_OP_VERSION, err);
}

char *kv_req_container(const char *container, const char *exec_id, struct kv_err **err)
{
	return params_close(params_target(container, exec_id), "container", err);
}

char *kv_req_create(const char *container, bool want_stdin, const char *spec_json,
		    const char *rootfs_json, struct kv_err **err)
{
	struct kv_json *j = params_target(container, NULL);
	kv_json_kbool(j, "stdin", want_stdin);
	put_raw(j, "spec", spec_json);
	if (rootfs_json)
		put_raw(j, "rootfs", rootfs_json);
	return params_close(j, KV_OP_CREATE, err);
}

char *kv_req_exec(const char *container, const char *exec_id, bool want_stdin,
		  const char *process_json, struct kv_err **err)
{
	struct kv_json *j = params_target(container, exec_id);
	kv_json_kbool(j, "stdin", want_stdin);
	put_raw(j, "process", process_json);
	return params_close(j, KV_OP_EXEC, err);
}

char *kv_req_kill(const char *container, const char *exec_id, int signal, const bool *all,
		  struct kv_err **err)
{
	struct kv_json *j = params_target(container, exec_id);
	kv_json_kint(j, "signal", signal);
	if (all)
		kv_json_kbool(j, "all", *all);
	return params_close(j, KV_OP_KILL, err);
}

char *kv_req_delete(const char *container, bool force, struct kv_err **err)
{
	struct kv_json *j = params_target(container, NULL);
	if (force)
		kv_json_kbool(j, "force", true);
	return params_close(j, KV_OP_DELETE, err);
}

char *kv_req_update(const char *container, const char *resources_json, struct kv_err **err)
{
	struct kv_json *j = params_target(container, NULL);
	put_raw(j, "resources", resources_json);
	return params_close(j, KV_OP_UPDATE, err);
}

char *kv_req_resize(const char *container, const char *exec_id, unsigned rows, unsigned cols,
		    struct kv_err **err)
{
	struct kv_json *j = params_target(container, exec_id);
	kv_json_kint(j, "rows", rows);
	kv_json_kint(j, "cols", cols);
	return params_close(j, KV_OP_RESIZE, err);
}

char *kv_req_set_hostname(const char *hostname, struct kv_err **err)
{
	struct kv_json *j = params_open();
	kv_json_kstr(j, "hostname", hostname);
	return params_close(j, KV_OP_SET_HOSTNAME, err);
}

char *kv_req_set_time(long long sec, long nsec, struct kv_err **err)
{
	struct kv_json *j = params_open();
	kv_json_kint(j, "sec", sec);
	kv_json_kint(j, "nsec", nsec);
	return params_close(j, KV_OP_SET_TIME, err);
}

char *kv_req_add_entropy(const char *data_base64, int credit_bits, struct kv_err **err)
{
	struct kv_json *j = params_open();
	kv_json_kstr(j, "data", data_base64);
	kv_json_kint(j, "credit_bits", credit_bits);
	return params_close(j, KV_OP_ADD_ENTROPY, err);
}

char *kv_req_mount_shared(const char *tag, const char *type, struct kv_err **err)
{
	struct kv_json *j = params_open();
	kv_json_kstr(j, "tag", tag);
	kv_json_kstr(j, "type", type);
	return params_close(j, KV_OP_MOUNT_SHARED, err);
}
