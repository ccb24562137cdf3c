/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's "net-attach" and "net-detach" ops (server side; api.h has the
 * protocol) and their clients vmm_api_net_attach() / vmm_api_net_detach().
 *
 * The NIC (--net) boots with its link down: the container's network (a tap
 * in the sandbox's network namespace) exists only later, and a VM restored
 * from a template snapshot has no tap of its own until one is handed over.
 * The client opens the tap and passes the fd (SCM_RIGHTS): the confined
 * VMM opens no files and has no CAP_NET_ADMIN.
 */
#include <string.h>

#include "vmm/api.h"
#include "vmm/machine.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/virtio_dev.h"

/* ------------------------------------------------------------- server */

static struct virtio_mmio *net_api_device(struct machine *m)
{
	for (unsigned i = 0; i < m->nvirtio; i++)
		if (virtio_mmio_device_id(m->virtio[i]) == VIRTIO_ID_NET)
			return m->virtio[i];
	return NULL;
}

static char *net_api_ok(struct machine *m, bool link)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", true);
	kv_json_kstr(j, "state", api_state(m));
	kv_json_kstr(j, "link", link ? "up" : "down");
	kv_json_map_close(j);
	cleanup_err struct kv_err *err = NULL;
	char *out = kv_json_finish_dup(j, NULL, &err);
	return out ? out : api_error(EIO, err->msg);
}

static char *net_api_attach(struct machine *m, struct virtio_mmio *dev, const int *fds,
			    unsigned nfds)
{
	if (nfds != 1) {
		cleanup_free char *msg = kv_asprintf(
		    "net-attach: pass exactly one fd with the request (SCM_RIGHTS), the tap "
		    "(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR); got %u",
		    nfds);
		return api_error(EINVAL, msg);
	}
	cleanup_err struct kv_err *err = NULL;
	if (virtio_net_attach(dev, fds[0], &err) < 0) {
		cleanup_free char *msg = kv_asprintf("net-attach: %s", err->msg);
		return api_error(err->errnum, msg);
	}
	return net_api_ok(m, true);
}

char *api_net_op(struct machine *m, const char *op, const int *fds, unsigned nfds)
{
	bool attach = strcmp(op, "net-attach") == 0;
	if (!attach && strcmp(op, "net-detach") != 0)
		return NULL;
	struct virtio_mmio *dev = net_api_device(m);
	if (!dev) {
		cleanup_free char *msg = kv_asprintf("%s: no --net device", op);
		return api_error(ENODEV, msg);
	}
	if (attach)
		return net_api_attach(m, dev, fds, nfds);
	if (nfds)
		return api_error(EINVAL, "net-detach: takes no fd");
	(void)virtio_net_detach(dev); /* nothing attached: nothing to do */
	return net_api_ok(m, false);
}

/* ------------------------------------------------------------- client */

int vmm_api_net_attach(const char *sock, int tapfd, struct kv_err **err)
{
	if (tapfd < 0)
		return kv_err_plain(err, EBADF, "VMM API %s: net-attach: no fd", sock);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "net-attach");
	kv_json_map_close(j);
	return api_client_request(sock, "net-attach", j, &tapfd, 1, err);
}

int vmm_api_net_detach(const char *sock, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "net-detach");
	kv_json_map_close(j);
	return api_client_request(sock, "net-detach", j, NULL, 0, err);
}
