/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtio device state in a snapshot: per device its transport and queue
 * state (virtio_mmio_save/restore), its config space as the guest last saw
 * it, and its memory window (pmem). The UART saves itself (serial_save).
 *
 * After a restore, in the order virtio.h asks for: every device's transport
 * state; then the events the guest must see: a config interrupt where the
 * clone's device differs from the template's (a blk disk that was empty in
 * the template and holds the container's image now), the vsock transport
 * reset (the guest drops connections the snapshot remembered; host sockets
 * of the template are gone); then every ready queue is re-kicked, since a
 * notification suppressed before the snapshot would otherwise stop traffic
 * for good (Firecracker #5969).
 */
#include <string.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"
#include "vmm/virtio/virtio_dev.h"

/*
 * The guest memory window of the virtio device in slot i: a pmem disk's
 * (m->pmem, pmem devices in order), or shared memory region 0 (virtio-fs:
 * its DAX window). 0/0 when it has none.
 */
static void snap_window_of(struct machine *m, unsigned i, uint64_t *gpa, uint64_t *size)
{
	struct virtio_mmio *dev = m->virtio[i];
	*gpa = *size = 0;
	if (virtio_mmio_device_id(dev) == VIRTIO_ID_PMEM) {
		unsigned k = 0;
		for (unsigned j = 0; j < i; j++)
			if (virtio_mmio_device_id(m->virtio[j]) == VIRTIO_ID_PMEM)
				k++;
		if (k < m->npmem) {
			*gpa = m->pmem[k].gpa;
			*size = m->pmem[k].size;
		}
		return;
	}
	virtio_mmio_lock(dev);
	if (dev->ops->shm_region && !dev->ops->shm_region(dev, 0, gpa, size))
		*gpa = *size = 0;
	virtio_mmio_unlock(dev);
}

int snap_devices_check(struct machine *m, struct kv_err **err)
{
	for (unsigned i = 0; i < m->nvirtio; i++)
		if (virtio_fs_snapshot_check(m->virtio[i], err) < 0)
			return kv_err_wrap(err, "snapshot: device %u", i);
	return 0;
}

void snap_virtio_save(struct machine *m, unsigned i, struct snap_virtio *out)
{
	struct virtio_mmio *dev = m->virtio[i];
	memset(out, 0, sizeof(*out));
	virtio_mmio_save(dev, &out->st);
	out->device_id = virtio_mmio_device_id(dev);
	snap_window_of(m, i, &out->window_gpa, &out->window_size);
	virtio_mmio_lock(dev);
	size_t n = dev->ops->config_size;
	if (n > SNAP_VIRTIO_CFG_SIZE)
		n = SNAP_VIRTIO_CFG_SIZE;
	if (dev->config)
		memcpy(out->config, dev->config, n);
	out->config_size = n;
	virtio_mmio_unlock(dev);
}

static bool snap_virtio_config_same(struct virtio_mmio *dev, const struct snap_virtio *v)
{
	virtio_mmio_lock(dev);
	size_t n = dev->ops->config_size;
	bool same =
	    n == v->config_size && (!n || !dev->config || !memcmp(dev->config, v->config, n));
	virtio_mmio_unlock(dev);
	return same;
}

/* The clone's devices must be the template's, in the same slots. */
static int snap_virtio_match(struct machine *m, unsigned i, const struct snap_virtio *v,
			     struct kv_err **err)
{
	struct virtio_mmio *dev = m->virtio[i];
	if (v->device_id != virtio_mmio_device_id(dev))
		return kv_err_plain(err, EINVAL,
				    "device %u: the snapshot has virtio device id %u there, the "
				    "command line gives %s (id %u)",
				    i, v->device_id, virtio_mmio_name(dev),
				    virtio_mmio_device_id(dev));
	if (v->device_id == VIRTIO_ID_FS && !snap_virtio_config_same(dev, v))
		return kv_err_plain(
		    err, EINVAL,
		    "device %u (virtio-fs): its tag differs from the snapshot's (the "
		    "shares must come in the template's order)",
		    i);
	uint64_t gpa, size;
	snap_window_of(m, i, &gpa, &size);
	if (gpa != v->window_gpa || size != v->window_size)
		return kv_err_plain(
		    err, EINVAL,
		    "device %u (%s): memory window 0x%llx+0x%llx, the snapshot's is "
		    "0x%llx+0x%llx (a pmem file must be the template's slot size, "
		    "a DAX window the template's)",
		    i, virtio_mmio_name(dev), (unsigned long long)gpa, (unsigned long long)size,
		    (unsigned long long)v->window_gpa, (unsigned long long)v->window_size);
	return 0;
}

/* A device whose config differs from what the guest saw gets a config interrupt. */
static void snap_virtio_config_sync(struct virtio_mmio *dev, const struct snap_virtio *v)
{
	virtio_mmio_lock(dev);
	size_t n = dev->ops->config_size;
	bool differs =
	    n != v->config_size || (dev->config && n && memcmp(dev->config, v->config, n) != 0);
	/* vsock: the guest re-reads its CID on the transport reset event instead. */
	if (differs && dev->ops->device_id != VIRTIO_ID_VSOCK &&
	    dev->ops->device_id != VIRTIO_ID_FS) {
		kv_debug("restore: %s: config changed, interrupting the driver", dev->name);
		virtio_config_changed(dev);
	}
	virtio_mmio_unlock(dev);
}

int snap_virtio_restore_all(struct machine *m, const struct snap *s, struct kv_err **err)
{
	if (s->machine.nvirtio != m->nvirtio)
		return kv_err_plain(err, EINVAL,
				    "the snapshot has %u virtio devices, the command line gives %u",
				    s->machine.nvirtio, m->nvirtio);
	struct snap_virtio v;
	for (unsigned i = 0; i < m->nvirtio; i++) {
		memcpy(&v, s->virtio[i].p, sizeof(v));
		if (snap_virtio_match(m, i, &v, err) < 0 ||
		    virtio_mmio_restore(m->virtio[i], &v.st, err) < 0)
			return -1;
	}
	for (unsigned i = 0; i < m->nvirtio; i++) {
		struct virtio_mmio *dev = m->virtio[i];
		memcpy(&v, s->virtio[i].p, sizeof(v));
		snap_virtio_config_sync(dev, &v);
		if (virtio_mmio_device_id(dev) == VIRTIO_ID_VSOCK &&
		    virtio_vsock_reset_transport(dev, err) < 0)
			return -1;
	}
	for (unsigned i = 0; i < m->nvirtio; i++)
		virtio_mmio_process_pending(m->virtio[i]);
	return 0;
}
