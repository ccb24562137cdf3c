/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-pmem (vmm/virtio/pmem.c): config space and flush requests. */
#include "tap.h"
#include "vq_builder.h"

#include "vmm/machine.h"

#include <fcntl.h>
#include <sys/mman.h>

#define BASE  0x10000ull
#define MEMSZ (1u << 20)

static struct vqb_mem mem;
static struct irq_count irqs;

/* Send one request of `type` (4 bytes) with a 4-byte response buffer; returns ret or -1. */
static long flush(const struct bus_dev *bd, struct vqb *q, uint32_t type, uint32_t req_len,
		  uint32_t resp_len, uint32_t *used)
{
	uint8_t req[8] = {0};
	virtio_put_le32(req, type);
	uint64_t r = vqb_put(&mem, req, 8), s = vqb_alloc(&mem, 4, 4);
	memset(vqb_ptr(&mem, s), 0xff, 4);
	struct vqb_buf bufs[] = {{r, req_len, false}, {s, resp_len, true}};
	uint16_t head = vqb_add_chain(q, bufs, resp_len ? 2 : 1);
	vdrv_kick(bd, 0);
	uint32_t id;
	if (!vqb_next_used(q, &id, used) || id != head)
		return -1;
	return virtio_get_le32(vqb_ptr(&mem, s));
}

static void test_pmem(bool shared)
{
	char path[] = "/tmp/kvrun-pmem-XXXXXX";
	int fd = mkstemp(path);
	size_t len = 1 << 16;
	ok(fd >= 0 && ftruncate(fd, len) == 0, "backing file");
	uint8_t *map =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
	ok(map != MAP_FAILED, "mapped");
	struct virtio_env env = {.gm = &mem.gm, .irq = {irq_count_raise, &irqs}, .gsi = 7};
	struct kv_err *err = NULL;
	struct virtio_mmio *dev = virtio_pmem_new(&env, 0x100000000ull, len, map, shared, &err);
	ok(dev != NULL, "virtio_pmem_new (%s)", shared ? "shared" : "private");
	struct bus_dev bd = virtio_mmio_bus_dev(dev, 0xd0002000);
	is_int(vdrv_r32(&bd, VIRTIO_MMIO_DEVICE_ID), 27, "pmem device id 27");
	uint64_t start, size;
	vdrv_config(&bd, 0, &start, 8);
	vdrv_config(&bd, 8, &size, 8);
	is_int(start, 0x100000000ull, "config start");
	is_int(size, len, "config size");
	struct vqb q;
	vqb_init(&q, &mem, 8);
	ok(vdrv_bringup(&bd, 1ull << VIRTIO_F_VERSION_1, &q, 1) & VIRTIO_STATUS_DRIVER_OK, "up");
	memcpy(map, "persist", 7);
	uint32_t used;
	irqs.n = 0;
	is_int(flush(&bd, &q, 0, 4, 4, &used), 0, "flush: ret 0");
	is_int(used, 4, "flush: used length 4");
	is_int(irqs.n, 1, "flush interrupt");
	char back[8] = {0};
	ok(pread(fd, back, 7, 0) == 7, "read the file");
	if (shared)
		is_str(back, "persist", "shared mapping: data reached the file");
	else
		ok(back[0] == 0, "private mapping: file untouched");
	is_int(flush(&bd, &q, 7, 4, 4, &used), 1, "unknown request type: error");
	is_int(flush(&bd, &q, 0, 2, 4, &used), 1, "short request: error");
	is_int(flush(&bd, &q, 0, 4, 0, &used), 0xffffffff, "no response buffer: nothing written");
	is_int(used, 0, "and completed with length 0");
	virtio_mmio_free(dev);
	munmap(map, len);
	close(fd);
	unlink(path);
}

/* A temporary file holding `text` (unlinked; the fd stays). */
static int text_file(const char *text)
{
	char path[] = "/tmp/kvrun-pmem-bind-XXXXXX";
	int fd = mkstemp(path);
	if (fd >= 0) {
		unlink(path);
		if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* The API's pmem-bind (machine_pmem_bind): a slot's window takes another
 * file in place, then zeroes; what is not a slot, or too big, is refused. */
static void test_bind(void)
{
	size_t win = 2 << 20;
	struct machine m;
	memset(&m, 0, sizeof(m));
	char *hva = mmap(NULL, win, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	m.pmem[0] = (struct machine_pmem){.hva = hva, .size = win, .slot = true};
	m.pmem[1] = (struct machine_pmem){.hva = hva, .size = win, .slot = false};
	m.npmem = 2;
	int a = text_file("layer A"), b = text_file("layer B");
	struct kv_err *err = NULL;
	ok(a >= 0 && b >= 0 && machine_pmem_bind(&m, 0, a, &err) == 0 &&
	       memcmp(hva, "layer A", 7) == 0 && hva[7] == 0 && hva[win - 1] == 0,
	   "pmem-bind: the window shows the file, zeroes after it");
	ok(machine_pmem_bind(&m, 0, b, &err) == 0 && memcmp(hva, "layer B", 7) == 0,
	   "  bound again: the other file, at the same address");
	ok(machine_pmem_bind(&m, 0, -1, &err) == 0 && hva[0] == 0,
	   "  no fd: zeroes (the file no longer mapped)");
	ok(machine_pmem_bind(&m, 1, a, &err) < 0 && err->errnum == EPERM, "  not a slot: EPERM");
	kv_err_free(err);
	err = NULL;
	ok(machine_pmem_bind(&m, 2, a, &err) < 0 && err->errnum == ENOENT,
	   "  no such device: ENOENT");
	kv_err_free(err);
	err = NULL;
	ok(ftruncate(a, (off_t)win + 1) == 0 && machine_pmem_bind(&m, 0, a, &err) < 0 &&
	       err->errnum == EFBIG && strstr(err->msg, "larger than the window"),
	   "  a file larger than the window: EFBIG");
	kv_err_free(err);
	err = NULL;
	int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(machine_pmem_bind(&m, 0, dir, &err) < 0 && err->errnum == EINVAL,
	   "  a directory: EINVAL");
	kv_err_free(err);
	close(dir);
	close(a);
	close(b);
	munmap(hva, win);
}

int main(void)
{
	vqb_mem_init(&mem, BASE, MEMSZ);
	test_pmem(true);
	test_pmem(false);
	test_bind();
	struct virtio_env env = {.gm = &mem.gm};
	struct kv_err *err = NULL;
	ok(virtio_pmem_new(&env, 0x1000, 0, NULL, false, &err) == NULL, "size 0 refused");
	kv_err_free(err);
	err = NULL;
	ok(virtio_pmem_new(&env, UINT64_MAX - 10, 4096, NULL, false, &err) == NULL,
	   "region wrapping 2^64 refused");
	kv_err_free(err);
	vqb_mem_free(&mem);
	return tap_done();
}
