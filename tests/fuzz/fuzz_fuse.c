/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for virtio-fs's FUSE request decoding and handlers: a
 * device (served synchronously, with a small DAX window) over a scratch
 * export, brought up and INITed; the input is a sequence of requests a
 * hostile guest sends on its queues. Each record:
 *
 *   u8 queue | u8 fixups | u16 readable length | u16 writable length | bytes
 *
 * `fixups` helps the fuzzer past the checks a real driver never fails:
 * bit 0 sets fuse_in_header.len to the readable length, bit 1 replaces the
 * nodeid with one the server returned earlier, bit 2 puts a file handle it
 * returned earlier into the first 8 argument bytes.
 *
 * Live mode (bit 7 of the first record's queue byte): the device is a live
 * one (--fs TAG/) with the export added as share "s"; a record with bit 6
 * of its queue byte set is a share change instead of a request: "s" is
 * removed (while the guest holds whatever it looked up and opened through
 * it) or added again (read-only with bit 5), so gone nodeids and handles
 * meet every handler. ASan/UBSan catch any
 * access outside the chain or the server's buffers; every request must
 * complete. The export is recreated every EXPORT_RUNS inputs, file sizes are
 * capped by RLIMIT_FSIZE (fallocate could otherwise fill the disk; run with
 * -handle_xfsz=0 so that libFuzzer leaves SIGXFSZ ignored).
 *
 * Build: make fuzz; run: make fuzz-fs-run (or build/fuzz/fuzz_fuse DIR)
 */
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "vmm/virtio/virtio_dev.h"

#define RAM_GPA	    0x10000ull
#define RAM_SIZE    (512u << 10)
#define QSIZE	    64
#define WIN_SIZE    (4u << 20)
#define EXPORT_RUNS 500
#define MAX_IDS	    32

static uint8_t *ram, *win;
static char top[64], export_dir[96];
static unsigned runs;
static uint64_t nodeids[MAX_IDS], fhs[MAX_IDS];
static unsigned n_nodeids, n_fhs;
static bool shared; /* live mode: "s" is in the root */

static void irq_nop(void *ctx, unsigned gsi) {}

static void export_make(void)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/dir'", export_dir, export_dir);
	if (system(cmd) != 0)
		abort();
	char p[160];
	snprintf(p, sizeof(p), "%s/file", export_dir);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "hello world\n", 12) != 12)
		abort();
	close(fd);
	snprintf(p, sizeof(p), "%s/link", export_dir);
	if (symlink("../outside", p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/fifo", export_dir);
	if (mkfifo(p, 0644) < 0)
		abort();
}

static void export_remove(void)
{
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_fuse: could not remove %s\n", top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kv_err *err = NULL;
	if (kv_log_init("fuzz", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &err) < 0)
		abort();
	ram = aligned_alloc(4096, RAM_SIZE);
	win = mmap(NULL, WIN_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!ram || win == MAP_FAILED)
		abort();
	snprintf(top, sizeof(top), "/tmp/kvrun-fuzz-fuse-%d", (int)getpid());
	snprintf(export_dir, sizeof(export_dir), "%s/export", top);
	struct rlimit fsize = {64 << 20, 64 << 20};
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &fsize) < 0)
		abort();
	export_make();
	atexit(export_remove);
	return 0;
}

static void wr(const struct bus_dev *bd, uint64_t off, uint32_t v)
{
	bd->write(bd->ctx, off, &v, 4);
}

/* Queues at fixed places: descriptors, avail, used; buffers from 0x4000 on. */
static void bring_up(const struct bus_dev *bd)
{
	wr(bd, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(bd, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(bd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(bd, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(bd, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 2; q++) {
		uint64_t base = RAM_GPA + q * 0x2000;
		wr(bd, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(bd, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		wr(bd, VIRTIO_MMIO_QUEUE_DESC_LOW, base);
		wr(bd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 0x400);
		wr(bd, VIRTIO_MMIO_QUEUE_USED_LOW, base + 0x800);
		wr(bd, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(bd, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	       VIRTIO_STATUS_DRIVER_OK);
}

struct driver {
	const struct bus_dev *bd;
	uint16_t avail[2];
};

static uint8_t *gpa_ptr(uint64_t gpa)
{
	return ram + (gpa - RAM_GPA);
}

/* One request: a readable and a writable descriptor, published and kicked. */
static void submit(struct driver *d, unsigned q, const uint8_t *req, size_t rlen, size_t wlen,
		   uint64_t *wgpa)
{
	uint64_t base = RAM_GPA + q * 0x2000, rbuf = RAM_GPA + 0x4000;
	uint64_t wbuf = rbuf + ((rlen + 4095) & ~4095ull);
	memcpy(gpa_ptr(rbuf), req, rlen);
	memset(gpa_ptr(wbuf), 0xee, wlen);
	uint16_t head = (uint16_t)((d->avail[q] * 2) % QSIZE);
	uint8_t *desc = gpa_ptr(base + 16ull * head);
	uint64_t a0 = rbuf, a1 = wbuf;
	uint32_t l0 = (uint32_t)rlen, l1 = (uint32_t)wlen;
	uint16_t f0 = VIRTQ_DESC_F_NEXT, f1 = VIRTQ_DESC_F_WRITE, n0 = (head + 1) % QSIZE, n1 = 0;
	memcpy(desc, &a0, 8);
	memcpy(desc + 8, &l0, 4);
	memcpy(desc + 12, &f0, 2);
	memcpy(desc + 14, &n0, 2);
	desc = gpa_ptr(base + 16ull * n0);
	memcpy(desc, &a1, 8);
	memcpy(desc + 8, &l1, 4);
	memcpy(desc + 12, &f1, 2);
	memcpy(desc + 14, &n1, 2);
	uint8_t *avail = gpa_ptr(base + 0x400);
	memcpy(avail + 4 + 2 * (d->avail[q] % QSIZE), &head, 2);
	d->avail[q]++;
	memcpy(avail + 2, &d->avail[q], 2);
	wr(d->bd, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	*wgpa = wbuf;
}

/* Remember nodeids and file handles from successful replies. */
static void learn(uint32_t opcode, uint64_t wgpa, size_t wlen)
{
	struct fuse_out_header oh;
	if (wlen < sizeof(oh))
		return;
	memcpy(&oh, gpa_ptr(wgpa), sizeof(oh));
	if (oh.error)
		return;
	const uint8_t *p = gpa_ptr(wgpa) + sizeof(oh);
	size_t n = wlen - sizeof(oh);
	bool entry = opcode == FUSE_LOOKUP || opcode == FUSE_MKDIR || opcode == FUSE_MKNOD ||
		     opcode == FUSE_SYMLINK || opcode == FUSE_LINK || opcode == FUSE_CREATE;
	if (entry && n >= sizeof(struct fuse_entry_out))
		memcpy(&nodeids[n_nodeids++ % MAX_IDS], p, 8);
	if (opcode == FUSE_CREATE && n >= sizeof(struct fuse_entry_out) + 8)
		memcpy(&fhs[n_fhs++ % MAX_IDS], p + sizeof(struct fuse_entry_out), 8);
	if ((opcode == FUSE_OPEN || opcode == FUSE_OPENDIR) && n >= 8)
		memcpy(&fhs[n_fhs++ % MAX_IDS], p, 8);
}

static void init_request(struct driver *d)
{
	struct {
		struct fuse_in_header h;
		struct fuse_init_in in;
	} req = {.h = {.len = sizeof(req), .opcode = FUSE_INIT, .unique = 1},
		 .in = {.major = 7, .minor = 37, .flags = FUSE_MAP_ALIGNMENT | FUSE_MAX_PAGES}};
	uint64_t w;
	submit(d, 1, (const uint8_t *)&req, sizeof(req), 256, &w);
}

static void run_record(struct driver *d, const uint8_t *rec, size_t rlen, size_t wlen)
{
	static uint8_t req[16384];
	unsigned q = rec[0] & 1, fix = rec[1];
	memcpy(req, rec + 6, rlen);
	struct fuse_in_header h = {0};
	if (rlen >= sizeof(h)) {
		memcpy(&h, req, sizeof(h));
		if (fix & 1)
			h.len = (uint32_t)rlen;
		if ((fix & 2) && n_nodeids)
			h.nodeid = nodeids[h.nodeid % (n_nodeids < MAX_IDS ? n_nodeids : MAX_IDS)];
		memcpy(req, &h, sizeof(h));
		if ((fix & 4) && n_fhs && rlen >= sizeof(h) + 8)
			memcpy(req + sizeof(h),
			       &fhs[h.unique % (n_fhs < MAX_IDS ? n_fhs : MAX_IDS)], 8);
	}
	uint64_t w;
	submit(d, q, req, rlen, wlen, &w);
	learn(h.opcode, w, wlen);
}

/* Live mode: add "s" (the export) if it is not there, else remove it. */
static void share_toggle(struct virtio_mmio *dev, bool ro)
{
	struct kv_err *err = NULL;
	if (shared) {
		if (virtio_fs_share_remove(dev, "s", &err) < 0)
			abort();
		shared = false;
		return;
	}
	int fd = open(export_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || virtio_fs_share_add(dev, "s", fd, ro, false, &err) < 0)
		abort();
	close(fd);
	shared = true;
}

static struct virtio_mmio *device_new(struct gm *gm, bool live)
{
	struct virtio_env env = {.gm = gm, .irq = {irq_nop, NULL}, .gsi = 5};
	struct virtio_fs_share sh = {.path = export_dir};
	struct virtio_fs_params p = {.tag = "fuzz",
				     .shares = &sh,
				     .nshares = 1,
				     .dax_gpa = 1ull << 32,
				     .dax_size = WIN_SIZE,
				     .dax_hva = win};
	if (live)
		p = (struct virtio_fs_params){.tag = "fuzz", .live = true};
	struct kv_err *err = NULL;
	struct virtio_mmio *dev = virtio_fs_new(&env, &p, &err);
	if (!dev)
		abort();
	shared = false;
	if (live)
		share_toggle(dev, false);
	return dev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (++runs % EXPORT_RUNS == 0)
		export_make();
	memset(ram, 0, RAM_SIZE);
	n_nodeids = n_fhs = 0;
	struct gm gm = {.n = 1, .r = {{.gpa = RAM_GPA, .size = RAM_SIZE, .hva = ram}}};
	bool live = size && (data[0] & 0x80);
	struct virtio_mmio *dev = device_new(&gm, live);
	struct bus_dev bd = virtio_mmio_bus_dev(dev, 0);
	bring_up(&bd);
	struct driver d = {.bd = &bd};
	init_request(&d);
	nodeids[n_nodeids++] = FUSE_ROOT_ID;
	for (unsigned i = 0; i < 64 && size >= 6; i++) {
		uint16_t rlen, wlen;
		memcpy(&rlen, data + 2, 2);
		memcpy(&wlen, data + 4, 2);
		rlen %= 16384;
		wlen %= 65536;
		if (rlen > size - 6)
			rlen = (uint16_t)(size - 6);
		if (live && (data[0] & 0x40))
			share_toggle(dev, data[0] & 0x20);
		else
			run_record(&d, data, rlen, wlen);
		data += 6 + rlen;
		size -= 6 + rlen;
	}
	virtio_mmio_free(dev);
	return 0;
}
