/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pmem (virtio 1.2 section 5.19). The VMM core maps the backing file
 * into guest physical memory; this device only reports where (config: start,
 * size) and completes flush requests on its one queue: msync(MS_SYNC) when
 * the mapping is shared and writable (guest writes reach the file), else
 * nothing to do (read-only or private copy-on-write mappings).
 *
 * Request: le32 type (0 = FLUSH). Response: le32 ret, 0 on success; Linux's
 * virtio_pmem turns any nonzero value into -EIO.
 */
#include "vmm/virtio/virtio_dev.h"

#include <string.h>
#include <sys/mman.h>

#define VIRTIO_PMEM_REQ_TYPE_FLUSH 0
#define PMEM_RESP_OK		   0
#define PMEM_RESP_EIO		   1

#define PMEM_CFG_START 0
#define PMEM_CFG_SIZE  8
#define PMEM_CFG_BYTES 16

struct virtio_pmem {
	struct virtio_mmio mmio; /* first: the transport hands us this pointer */
	void *hva;
	uint64_t size;
	bool shared_writable;
	uint8_t config[PMEM_CFG_BYTES];
};

static uint32_t pmem_request(struct virtio_pmem *p, const struct vq_chain *c)
{
	uint8_t req[4];
	if (vq_chain_read(c, 0, req, sizeof(req)) != sizeof(req)) {
		virtio_warn(&p->mmio, "request of %llu bytes", (unsigned long long)c->out_len);
		return PMEM_RESP_EIO;
	}
	uint32_t type = virtio_get_le32(req);
	if (type != VIRTIO_PMEM_REQ_TYPE_FLUSH) {
		virtio_warn(&p->mmio, "unknown request type %u", type);
		return PMEM_RESP_EIO;
	}
	if (p->shared_writable && msync(p->hva, p->size, MS_SYNC) < 0) {
		virtio_warn(&p->mmio, "msync: %s", strerror(errno));
		return PMEM_RESP_EIO;
	}
	return PMEM_RESP_OK;
}

static void pmem_notify(struct virtio_mmio *dev, unsigned queue)
{
	struct virtio_pmem *p = (struct virtio_pmem *)dev;
	struct vq_chain c;
	while (virtio_queue_pop(dev, queue, &c)) {
		uint8_t resp[4];
		virtio_put_le32(resp, pmem_request(p, &c));
		size_t n = vq_chain_write(&c, 0, resp, sizeof(resp));
		if (n < sizeof(resp))
			virtio_warn(dev, "response buffer of %llu bytes",
				    (unsigned long long)c.in_len);
		virtio_queue_push(dev, queue, c.head, n);
	}
	virtio_queue_signal(dev, queue);
}

static void pmem_free(struct virtio_mmio *dev)
{
	free(dev);
}

static const struct virtio_dev_ops pmem_ops = {
    .device_id = VIRTIO_ID_PMEM,
    .nqueues = 1,
    .config_size = PMEM_CFG_BYTES,
    .notify = pmem_notify,
    .free = pmem_free,
};

struct virtio_mmio *virtio_pmem_new(const struct virtio_env *env, uint64_t gpa, uint64_t size,
				    void *hva, bool shared_writable, struct kv_err **err)
{
	if (size == 0 || gpa + size < gpa) {
		kv_err_plain(err, EINVAL, "virtio-pmem: bad region %#llx+%#llx",
			     (unsigned long long)gpa, (unsigned long long)size);
		return NULL;
	}
	if (shared_writable && (!hva || ((uintptr_t)hva & (sysconf(_SC_PAGESIZE) - 1)))) {
		kv_err_plain(err, EINVAL, "virtio-pmem: shared mapping %p not page-aligned", hva);
		return NULL;
	}
	struct virtio_pmem *p = kv_malloc0(sizeof(*p));
	p->hva = hva;
	p->size = size;
	p->shared_writable = shared_writable;
	virtio_put_le64(p->config + PMEM_CFG_START, gpa);
	virtio_put_le64(p->config + PMEM_CFG_SIZE, size);
	virtio_mmio_init(&p->mmio, env, "virtio-pmem", &pmem_ops, p->config);
	return &p->mmio;
}
