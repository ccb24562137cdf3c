/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's "pmem-bind" op (server side; api.h has the protocol) and its
 * client vmm_api_pmem_bind().
 *
 * A read-only pmem device given a window (--pmem PATH,ro,window=SIZE) is a
 * slot: its window can be mapped to another file while the guest runs
 * (machine_pmem_bind, devices.c). A container joining a pod's VM brings
 * its image layers into slots its sandbox reserved; the client opens the
 * layer and passes the fd (SCM_RIGHTS): the confined VMM opens no files.
 */
#include <string.h>
#include <yajl/yajl_tree.h>

#include "vmm/api.h"
#include "vmm/machine.h"

/* ------------------------------------------------------------- server */

static char *pmem_api_bind(struct machine *m, yajl_val req, const int *fds, unsigned nfds)
{
	const char *path[] = {"device", NULL};
	yajl_val v = yajl_tree_get(req, path, yajl_t_number);
	if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 ||
	    YAJL_GET_INTEGER(v) >= VMM_MAX_DISKS)
		return api_error(EINVAL, "pmem-bind: \"device\" must be a pmem device's index "
					 "(0..7)");
	if (nfds > 1)
		return api_error(EINVAL, "pmem-bind: pass one fd (the file) or none (zeroes)");
	unsigned index = (unsigned)YAJL_GET_INTEGER(v);
	cleanup_err struct kv_err *err = NULL;
	if (machine_pmem_bind(m, index, nfds ? fds[0] : -1, &err) < 0) {
		cleanup_free char *msg = kv_asprintf("pmem-bind: %s", err->msg);
		return api_error(err->errnum, msg);
	}
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", true);
	kv_json_kstr(j, "state", api_state(m));
	kv_json_kint(j, "device", index);
	kv_json_kbool(j, "bound", nfds == 1);
	kv_json_map_close(j);
	char *out = kv_json_finish_dup(j, NULL, &err);
	return out ? out : api_error(EIO, err->msg);
}

char *api_pmem_op(struct machine *m, const char *op, const struct yajl_val_s *req, const int *fds,
		  unsigned nfds)
{
	if (strcmp(op, "pmem-bind") == 0)
		return pmem_api_bind(m, (yajl_val)req, fds, nfds);
	return NULL;
}

/* ------------------------------------------------------------- client */

int vmm_api_pmem_bind(const char *sock, unsigned device, int fd, struct kv_err **err)
{
	cleanup_free char *what = kv_asprintf("pmem-bind %u%s", device, fd < 0 ? " (zeroes)" : "");
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "pmem-bind");
	kv_json_kint(j, "device", device);
	kv_json_map_close(j);
	return api_client_request(sock, what, j, fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1, err);
}
