/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's "fs-add" and "fs-remove" ops (server side; api.h has the
 * protocol) and their clients vmm_api_fs_add() / vmm_api_fs_remove().
 *
 * A live virtio-fs device (--fs TAG/) takes named shares while the guest
 * runs: a container joining a running pod VM gets its root and its bind
 * mount sources as the VM's first container got them at boot. The client
 * opens the host path and passes the fd (SCM_RIGHTS): the confined VMM
 * opens no host paths. The change itself runs on the device's worker
 * (virtio_fs_share_add/remove); the answer comes once it is done.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "vmm/api.h"
#include "vmm/machine.h"
#include "vmm/virtio/virtio.h"

/* ------------------------------------------------------------- server */

static char *fs_api_error(const char *op, int errnum, const char *fmt, ...) KV_PRINTF(3, 4);
static char *fs_api_error(const char *op, int errnum, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cleanup_free char *full = kv_asprintf("%s: %s", op, msg);
	return api_error(errnum, full);
}

static const char *fs_api_str(yajl_val req, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(req, path, yajl_t_string);
	return v ? YAJL_GET_STRING(v) : NULL;
}

/* A boolean member: *out (def when absent); -1 when present and not a boolean. */
static int fs_api_bool(yajl_val req, const char *key, bool def, bool *out)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(req, path, yajl_t_any);
	*out = def;
	if (!v)
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return -1;
	*out = YAJL_IS_TRUE(v);
	return 0;
}

static struct virtio_mmio *fs_api_device(struct machine *m, const char *tag)
{
	for (unsigned i = 0; i < m->nvirtio; i++) {
		const char *t = virtio_fs_tag(m->virtio[i]);
		if (t && strcmp(t, tag) == 0)
			return m->virtio[i];
	}
	return NULL;
}

static char *fs_api_ok(struct machine *m, const char *tag, const char *name,
		       struct virtio_mmio *dev)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", true);
	kv_json_kstr(j, "state", api_state(m));
	kv_json_kstr(j, "tag", tag);
	kv_json_kstr(j, "name", name);
	kv_json_kint(j, "shares", virtio_fs_live_shares(dev));
	kv_json_map_close(j);
	cleanup_err struct kv_err *err = NULL;
	char *out = kv_json_finish_dup(j, NULL, &err);
	return out ? out : api_error(EIO, err->msg);
}

/* The device a request names by "tag", with its "name"; NULL and *resp on failure. */
static struct virtio_mmio *fs_api_target(struct machine *m, const char *op, yajl_val req,
					 const char **tag, const char **name, char **resp)
{
	*tag = fs_api_str(req, "tag");
	*name = fs_api_str(req, "name");
	*resp = NULL;
	if (!*tag || !*name) {
		*resp = fs_api_error(op, EINVAL, "\"tag\" and \"name\" must be strings");
		return NULL;
	}
	struct virtio_mmio *dev = fs_api_device(m, *tag);
	if (!dev)
		*resp = fs_api_error(op, ENOENT, "no virtio-fs device with tag '%s'", *tag);
	return dev;
}

static char *fs_api_add(struct machine *m, yajl_val req, const int *fds, unsigned nfds)
{
	const char *tag, *name;
	char *resp;
	struct virtio_mmio *dev = fs_api_target(m, "fs-add", req, &tag, &name, &resp);
	if (!dev)
		return resp;
	bool ro, devnodes;
	const char *rop[] = {"ro", NULL};
	if (!yajl_tree_get(req, rop, yajl_t_any) || fs_api_bool(req, "ro", false, &ro) < 0 ||
	    fs_api_bool(req, "dev", false, &devnodes) < 0)
		return fs_api_error("fs-add", EINVAL,
				    "%s/%s: \"ro\" (required) and \"dev\" must be true or false",
				    tag, name);
	if (nfds != 1)
		return fs_api_error("fs-add", EINVAL,
				    "%s/%s: pass exactly one fd with the request (SCM_RIGHTS), of "
				    "the directory or file to share; got %u",
				    tag, name, nfds);
	cleanup_err struct kv_err *err = NULL;
	if (virtio_fs_share_add(dev, name, fds[0], ro, devnodes, &err) < 0)
		return fs_api_error("fs-add", err->errnum, "%s", err->msg);
	return fs_api_ok(m, tag, name, dev);
}

static char *fs_api_remove(struct machine *m, yajl_val req, unsigned nfds)
{
	const char *tag, *name;
	char *resp;
	struct virtio_mmio *dev = fs_api_target(m, "fs-remove", req, &tag, &name, &resp);
	if (!dev)
		return resp;
	if (nfds)
		return fs_api_error("fs-remove", EINVAL, "%s/%s: takes no fd", tag, name);
	cleanup_err struct kv_err *err = NULL;
	if (virtio_fs_share_remove(dev, name, &err) < 0)
		return fs_api_error("fs-remove", err->errnum, "%s", err->msg);
	return fs_api_ok(m, tag, name, dev);
}

char *api_fs_op(struct machine *m, const char *op, const struct yajl_val_s *req, const int *fds,
		unsigned nfds)
{
	yajl_val r = (yajl_val)req;
	if (strcmp(op, "fs-add") == 0)
		return fs_api_add(m, r, fds, nfds);
	if (strcmp(op, "fs-remove") == 0)
		return fs_api_remove(m, r, nfds);
	return NULL;
}

/* ------------------------------------------------------------- client */

int vmm_api_fs_add(const char *sock, const char *tag, const char *name, int fd, bool ro,
		   struct kv_err **err)
{
	if (!tag || !name)
		return kv_err_plain(err, EINVAL, "VMM API %s: fs-add: a tag and a name", sock);
	cleanup_free char *what = kv_asprintf("fs-add %s/%s", tag, name);
	if (fd < 0)
		return kv_err_plain(err, EBADF, "VMM API %s: %s: no fd", sock, what);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "fs-add");
	kv_json_kstr(j, "tag", tag);
	kv_json_kstr(j, "name", name);
	kv_json_kbool(j, "ro", ro);
	kv_json_kbool(j, "dev", false);
	kv_json_map_close(j);
	return api_client_request(sock, what, j, &fd, 1, err);
}

int vmm_api_fs_remove(const char *sock, const char *tag, const char *name, struct kv_err **err)
{
	if (!tag || !name)
		return kv_err_plain(err, EINVAL, "VMM API %s: fs-remove: a tag and a name", sock);
	cleanup_free char *what = kv_asprintf("fs-remove %s/%s", tag, name);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "fs-remove");
	kv_json_kstr(j, "tag", tag);
	kv_json_kstr(j, "name", name);
	kv_json_map_close(j);
	return api_client_request(sock, what, j, NULL, 0, err);
}
