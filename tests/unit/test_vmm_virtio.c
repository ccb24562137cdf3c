/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport (vmm/virtio/mmio.c) driven through its bus_dev like
 * a guest driver would, with a small fake device, plus virtio-rng.
 */
#include "tap.h"
#include "vq_builder.h"

#define BASE  0x40000000ull
#define MEMSZ (1u << 20)

/* ------------------------------------------------------- fake device */

struct fake_dev {
	struct virtio_mmio mmio;
	uint8_t config[12];
	unsigned notified[2], activated, resets;
};

/* Queue 0 echoes: completes each chain with its readable length. */
static void fake_notify(struct virtio_mmio *dev, unsigned q)
{
	struct fake_dev *f = (struct fake_dev *)dev;
	struct vq_chain c;
	f->notified[q]++;
	if (q != 0)
		return;
	while (virtio_queue_pop(dev, q, &c))
		virtio_queue_push(dev, q, c.head, c.out_len);
	virtio_queue_signal(dev, q);
}
static void fake_activate(struct virtio_mmio *dev)
{
	((struct fake_dev *)dev)->activated++;
}
static void fake_reset(struct virtio_mmio *dev)
{
	((struct fake_dev *)dev)->resets++;
}
static void fake_free(struct virtio_mmio *dev)
{
	free(dev);
}

static const struct virtio_dev_ops fake_ops = {
    .device_id = 42,
    .nqueues = 2,
    .features = 1ull << 3,
    .config_size = 12,
    .notify = fake_notify,
    .activate = fake_activate,
    .reset = fake_reset,
    .free = fake_free,
};

#define FEAT_V1 (1ull << VIRTIO_F_VERSION_1)
#define ST_ACK	VIRTIO_STATUS_ACKNOWLEDGE
#define ST_DRV	VIRTIO_STATUS_DRIVER
#define ST_FOK	VIRTIO_STATUS_FEATURES_OK
#define ST_DOK	VIRTIO_STATUS_DRIVER_OK

static struct vqb_mem mem;
static struct irq_count irqs;

static struct fake_dev *fake_new(struct bus_dev *bd)
{
	struct virtio_env env = {.gm = &mem.gm, .irq = {irq_count_raise, &irqs}, .gsi = 5};
	struct fake_dev *f = kv_malloc0(sizeof(*f));
	for (unsigned i = 0; i < sizeof(f->config); i++)
		f->config[i] = 0xa0 + i;
	virtio_mmio_init(&f->mmio, &env, "virtio-fake", &fake_ops, f->config);
	*bd = virtio_mmio_bus_dev(&f->mmio, 0xd0000000);
	return f;
}

static void test_identity(void)
{
	struct bus_dev bd;
	struct fake_dev *f = fake_new(&bd);
	is_int(bd.size, VIRTIO_MMIO_WINDOW, "window size");
	is_int(bd.base, 0xd0000000, "window base");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976, "magic 'virt'");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_VERSION), 2, "version 2 (modern)");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_DEVICE_ID), 42, "device id");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR, "vendor id");
	uint64_t feat = vdrv_device_features(&bd);
	ok(!!(feat & FEAT_V1), "offers VERSION_1");
	ok(!!(feat & (1ull << 3)), "offers the device's own bits");
	ok(!!(feat & (1ull << VIRTIO_RING_F_EVENT_IDX)), "offers EVENT_IDX");
	ok(!!(feat & (1ull << VIRTIO_RING_F_INDIRECT_DESC)), "offers INDIRECT_DESC");
	vdrv_w32(&bd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_DEVICE_FEATURES), 0, "feature page 7 is empty");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff, "no shared memory regions");
	uint16_t w = 0;
	bd.read(bd.ctx, VIRTIO_MMIO_MAGIC_VALUE, &w, 2);
	is_int(w, 0, "16-bit register read is refused (reads 0)");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK);
	uint8_t b = ST_ACK | ST_DRV;
	bd.write(bd.ctx, VIRTIO_MMIO_STATUS, &b, 1);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK, "8-bit register write is ignored");
	vdrv_w32(&bd, VIRTIO_MMIO_MAGIC_VALUE, 0);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976, "read-only register stays");
	virtio_mmio_free(&f->mmio);
}

static void test_status_table(void)
{
	struct bus_dev bd;
	struct fake_dev *f = fake_new(&bd);
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_DRV);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), 0, "DRIVER without ACKNOWLEDGE refused");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK);
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_FOK);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK, "FEATURES_OK before DRIVER refused");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_DOK);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK | ST_DRV,
	       "DRIVER_OK before FEATURES_OK refused");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | 0x20);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK | ST_DRV, "unknown status bit refused");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_DRV);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK | ST_DRV, "clearing a bit needs reset");

	/* Legacy driver: no VERSION_1. */
	is_int(vdrv_negotiate(&bd, 1ull << 3), ST_ACK | ST_DRV,
	       "FEATURES_OK refused without VERSION_1");
	is_int(vdrv_negotiate(&bd, FEAT_V1 | (1ull << 40)), ST_ACK | ST_DRV,
	       "FEATURES_OK refused for bits not offered");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, 0);
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	vdrv_w32(&bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 5);
	vdrv_w32(&bd, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	vdrv_w32(&bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_w32(&bd, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_FOK);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK | ST_DRV,
	       "FEATURES_OK refused for bits in feature page 5");

	is_int(vdrv_negotiate(&bd, FEAT_V1 | (1ull << 3)), ST_ACK | ST_DRV | ST_FOK,
	       "FEATURES_OK with VERSION_1");
	vdrv_w32(&bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_w32(&bd, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	ok(!!(f->mmio.driver_features & (1ull << 3)), "features frozen after FEATURES_OK");
	unsigned resets = f->resets;
	vdrv_driver_ok(&bd);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), ST_ACK | ST_DRV | ST_FOK | ST_DOK, "DRIVER_OK");
	is_int(f->activated, 1, "device activated once");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK | 0x80);
	ok(vdrv_r32(&bd, VIRTIO_MMIO_STATUS) & 0x80, "FAILED may be set any time");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, 0);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), 0, "reset");
	is_int(f->resets, resets + 1, "device reset op ran");
	is_int(f->mmio.driver_features, 0, "reset clears driver features");
	virtio_mmio_free(&f->mmio);
}

static void test_queue_registers(void)
{
	struct bus_dev bd;
	struct fake_dev *f = fake_new(&bd);
	struct vqb q;
	vqb_init(&q, &mem, 16);

	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_SEL, 2);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "QueueNumMax 0 for a missing queue");
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "and for queue 0xffffffff");
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_READY, 1);
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_SEL, 0);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM_MAX), VQ_MAX_SIZE, "QueueNumMax of queue 0");

	vdrv_queue(&bd, 0, &q);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 0, "queue setup before FEATURES_OK ignored");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM), 0, "QueueNum not taken either");

	vdrv_negotiate(&bd, FEAT_V1);
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_SEL, 0);
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_NUM, 12);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM), 0, "QueueNum not a power of two refused");
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_NUM, 512);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM), 0, "QueueNum above max refused");
	struct vqb bad = q;
	bad.used = BASE + MEMSZ - 8;
	vdrv_queue(&bd, 0, &bad);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 0, "ready refused: used ring outside RAM");
	bad = q;
	bad.desc += 8;
	vdrv_queue(&bd, 0, &bad);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 0, "ready refused: misaligned table");
	vdrv_queue(&bd, 0, &q);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 1, "queue 0 ready");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_DESC_LOW), (uint32_t)q.desc,
	       "desc address reads back");
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_NUM, 8);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_NUM), 16, "QueueNum fixed while ready");

	vdrv_kick(&bd, 0);
	is_int(f->notified[0], 0, "no notify before DRIVER_OK");
	vdrv_driver_ok(&bd);
	struct vqb q1;
	vqb_init(&q1, &mem, 8);
	vdrv_queue(&bd, 1, &q1);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 0, "queue setup after DRIVER_OK ignored");
	vdrv_kick(&bd, 1);
	is_int(f->notified[1], 0, "kick of a queue that is not ready ignored");
	vdrv_kick(&bd, 7);
	vdrv_kick(&bd, 0);
	is_int(f->notified[0], 1, "kick reaches the device");
	virtio_mmio_notify(&f->mmio, 0);
	is_int(f->notified[0], 2, "virtio_mmio_notify (ioeventfd path) too");
	virtio_mmio_notify(&f->mmio, 9);
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_SEL, 0);
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_READY, 0);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 0, "QueueReady 0 stops the queue");
	virtio_mmio_free(&f->mmio);
}

static void test_requests_and_irqs(void)
{
	struct bus_dev bd;
	struct fake_dev *f = fake_new(&bd);
	struct vqb q[2];
	vqb_init(&q[0], &mem, 8);
	vqb_init(&q[1], &mem, 8);
	vdrv_bringup(&bd, FEAT_V1, q, 2);
	irqs.n = 0;
	uint64_t a = vqb_put(&mem, "0123456789", 10);
	struct vqb_buf b = {a, 10, false};
	uint16_t head = vqb_add_chain(&q[0], &b, 1);
	vdrv_kick(&bd, 0);
	uint32_t id, len;
	ok(vqb_next_used(&q[0], &id, &len) && id == head && len == 10, "request completed");
	is_int(irqs.n, 1, "one interrupt");
	is_int(irqs.last_gsi, 5, "on the device's gsi");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING,
	       "ISR: used ring");
	vdrv_w32(&bd, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_INTERRUPT_STATUS), 0, "ACK clears");

	/* A malformed chain is completed with length 0, not dropped. */
	vqb_set_desc(&q[0], 5, 0x1000, 16, 0, 0);
	vqb_publish(&q[0], 5);
	vdrv_kick(&bd, 0);
	ok(vqb_next_used(&q[0], &id, &len) && id == 5 && len == 0, "bad chain completed, len 0");
	is_int(irqs.n, 2, "and interrupted");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0,
	       "a bad chain does not need a reset");

	/* A corrupt ring: DEVICE_NEEDS_RESET + config interrupt. */
	vqb_set_avail_idx(&q[0], q[0].avail_idx + 100);
	vdrv_kick(&bd, 0);
	uint32_t st = vdrv_r32(&bd, VIRTIO_MMIO_STATUS);
	ok(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET, "avail jump: DEVICE_NEEDS_RESET");
	ok(vdrv_r32(&bd, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG,
	   "config interrupt for NEEDS_RESET");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, st); /* a driver echoing the bit back */
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), st, "echoing NEEDS_RESET back is harmless");
	unsigned n = f->notified[0];
	vdrv_kick(&bd, 0);
	is_int(f->notified[0], n, "no device work while it needs a reset");
	vdrv_w32(&bd, VIRTIO_MMIO_STATUS, 0);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_STATUS), 0, "reset clears NEEDS_RESET");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_INTERRUPT_STATUS), 0, "and ISR");
	vdrv_w32(&bd, VIRTIO_MMIO_QUEUE_SEL, 0);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_QUEUE_READY), 0, "and queue readiness");
	virtio_mmio_free(&f->mmio);
}

static void test_config(void)
{
	struct bus_dev bd;
	struct fake_dev *f = fake_new(&bd);
	uint8_t b[12];
	vdrv_config(&bd, 0, b, 12);
	ok(b[0] == 0xa0 && b[11] == 0xab, "config bytes");
	uint32_t w = 0;
	bd.read(bd.ctx, VIRTIO_MMIO_CONFIG + 8, &w, 4);
	is_int(w, 0xabaaa9a8, "32-bit config read, little-endian");
	uint64_t q = 0;
	bd.read(bd.ctx, VIRTIO_MMIO_CONFIG + 4, &q, 8);
	is_int(q, 0xabaaa9a8a7a6a5a4ull, "64-bit config read");
	w = 0x12345678;
	bd.read(bd.ctx, VIRTIO_MMIO_CONFIG + 10, &w, 4);
	is_int(w, 0, "read past the config end gives 0");
	bd.read(bd.ctx, VIRTIO_MMIO_CONFIG + 0x1000000, &w, 4);
	is_int(w, 0, "far past the end too");
	w = 0;
	bd.write(bd.ctx, VIRTIO_MMIO_CONFIG, &w, 4);
	is_int(f->config[0], 0xa0, "config writes ignored");
	uint32_t gen = vdrv_r32(&bd, VIRTIO_MMIO_CONFIG_GENERATION);
	struct vqb qs[2];
	vqb_init(&qs[0], &mem, 8);
	vqb_init(&qs[1], &mem, 8);
	vdrv_bringup(&bd, FEAT_V1, qs, 2);
	irqs.n = 0;
	virtio_mmio_lock(&f->mmio);
	virtio_config_changed(&f->mmio);
	virtio_mmio_unlock(&f->mmio);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1, "generation bumped");
	is_int(irqs.n, 1, "config change interrupt");
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG, "ISR: config");
	virtio_mmio_free(&f->mmio);
}

static void test_snapshot(void)
{
	struct bus_dev bd;
	struct fake_dev *f = fake_new(&bd);
	struct vqb q[2];
	vqb_init(&q[0], &mem, 8);
	vqb_init(&q[1], &mem, 8);
	vdrv_bringup(&bd, FEAT_V1 | (1ull << VIRTIO_RING_F_EVENT_IDX), q, 2);
	uint64_t a = vqb_put(&mem, "abc", 3);
	struct vqb_buf b = {a, 3, false};
	vqb_add_chain(&q[0], &b, 1);
	vdrv_kick(&bd, 0);
	vdrv_w32(&bd, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	struct virtio_mmio_state st;
	virtio_mmio_save(&f->mmio, &st);
	is_int(st.q[0].last_avail, 1, "saved last_avail");
	is_int(st.q[0].used_idx, 1, "saved used_idx");
	/* The guest queues a request "during" the snapshot, not yet kicked. */
	vqb_add_chain(&q[0], &b, 1);

	struct bus_dev bd2;
	struct fake_dev *g = fake_new(&bd2);
	struct kv_err *err = NULL;
	struct virtio_mmio_state bad = st;
	bad.q[0].num = 12;
	ok(virtio_mmio_restore(&g->mmio, &bad, &err) < 0, "restore refuses a bad queue size");
	ok(err && strstr(err->msg, "queue 0"), "error names the queue");
	kv_err_free(err);
	err = NULL;
	bad = st;
	bad.q[1].used = BASE + MEMSZ;
	ok(virtio_mmio_restore(&g->mmio, &bad, &err) < 0, "restore refuses rings outside RAM");
	kv_err_free(err);
	err = NULL;
	bad = st;
	bad.device_id = 2;
	ok(virtio_mmio_restore(&g->mmio, &bad, &err) < 0, "restore refuses another device");
	kv_err_free(err);
	err = NULL;
	bad = st;
	bad.driver_features |= 1ull << 50;
	ok(virtio_mmio_restore(&g->mmio, &bad, &err) < 0, "restore refuses unoffered features");
	kv_err_free(err);
	err = NULL;
	is_int(vdrv_r32(&bd2, VIRTIO_MMIO_STATUS), 0, "failed restores changed nothing");

	ok(virtio_mmio_restore(&g->mmio, &st, &err) == 0, "restore");
	is_int(vdrv_r32(&bd2, VIRTIO_MMIO_STATUS), st.status, "status restored");
	irqs.n = 0;
	virtio_mmio_process_pending(&g->mmio);
	uint32_t id, len;
	ok(vqb_next_used(&q[0], &id, &len), "first completion visible");
	ok(vqb_next_used(&q[0], &id, &len) && len == 3, "pending request processed on restore");
	is_int(irqs.n, 1, "and interrupted");
	virtio_mmio_process_pending(&g->mmio);
	is_int(irqs.n, 2, "an unacknowledged interrupt is raised again on re-kick");
	virtio_mmio_free(&f->mmio);
	virtio_mmio_free(&g->mmio);
}

static void test_rng(void)
{
	struct virtio_env env = {.gm = &mem.gm, .irq = {irq_count_raise, &irqs}, .gsi = 9};
	struct kv_err *err = NULL;
	struct virtio_mmio *dev = virtio_rng_new(&env, &err);
	ok(dev != NULL, "virtio_rng_new");
	struct bus_dev bd = virtio_mmio_bus_dev(dev, 0xd0001000);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_DEVICE_ID), 4, "rng device id 4");
	struct vqb q;
	vqb_init(&q, &mem, 8);
	is_int(vdrv_bringup(&bd, FEAT_V1, &q, 1), ST_ACK | ST_DRV | ST_FOK | ST_DOK, "rng up");
	uint64_t a = vqb_alloc(&mem, 64, 8), c = vqb_alloc(&mem, 64, 8);
	struct vqb_buf bufs[] = {{a, 64, true}, {c, 64, true}};
	uint16_t head = vqb_add_chain(&q, bufs, 2);
	irqs.n = 0;
	vdrv_kick(&bd, 0);
	uint32_t id, len;
	ok(vqb_next_used(&q, &id, &len) && id == head, "rng request completed");
	is_int(len, 128, "filled both buffers");
	uint8_t zero[64] = {0};
	ok(memcmp(vqb_ptr(&mem, a), zero, 64) && memcmp(vqb_ptr(&mem, c), zero, 64),
	   "buffers hold random bytes");
	is_int(irqs.n, 1, "rng interrupt");
	uint64_t r = vqb_put(&mem, "x", 1);
	struct vqb_buf ro = {r, 1, false};
	vqb_add_chain(&q, &ro, 1);
	vdrv_kick(&bd, 0);
	ok(vqb_next_used(&q, &id, &len) && len == 0, "read-only buffer: completed with 0 bytes");
	virtio_mmio_free(dev);
}

int main(void)
{
	vqb_mem_init(&mem, BASE, MEMSZ);
	test_identity();
	test_status_table();
	test_queue_registers();
	test_requests_and_irqs();
	test_config();
	test_snapshot();
	test_rng();
	vqb_mem_free(&mem);
	return tap_done();
}
