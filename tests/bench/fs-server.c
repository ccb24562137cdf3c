/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM side of virtio-fs, natively (tests/bench/fs.sh): the device is
 * driven through its virtio-mmio window with requests laid into a fake guest
 * memory (as in the unit tests), served synchronously, over a scratch
 * export in DIR. Each measure is the FUSE server's rate next to the same
 * work done with plain host syscalls, so the ratio is the server's overhead
 * per operation (decoding, the inode table, O_PATH re-opens, copies into
 * the chain). Prints "name rate unit native ratio" lines, then JSON.
 *
 * Usage: fs-server DIR [SECONDS-PER-MEASURE]
 */
#include "tap.h"
#include "fs_helpers.h"

#include <sys/mman.h>
#include <time.h>

static double secs = 0.5;
static struct fsdev dev;
static char json[4096];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *name, double rate, const char *unit, double native)
{
	double ratio = native > 0 ? rate / native : 0;
	if (native > 0)
		printf("%-24s %12.1f %-9s native %12.1f  ratio %.3f\n", name, rate, unit, native,
		       ratio);
	else
		printf("%-24s %12.1f %-9s\n", name, rate, unit);
	size_t n = strlen(json);
	snprintf(json + n, sizeof(json) - n,
		 "%s\"%s\":{\"rate\":%.1f,\"unit\":\"%s\",\"native\":%.1f,"
		 "\"ratio\":%.3f}",
		 n > 1 ? "," : "", name, rate, unit, native, ratio);
}

/* Run body repeatedly for `secs`; returns calls per second. */
#define RATE(...)                                                                                  \
	({                                                                                         \
		double _t0 = now(), _t;                                                            \
		unsigned long _n = 0;                                                              \
		do {                                                                               \
			for (int _i = 0; _i < 64; _i++, _n++) {                                    \
				__VA_ARGS__;                                                       \
			}                                                                          \
		} while ((_t = now()) - _t0 < secs);                                               \
		_n / (_t - _t0);                                                                   \
	})

static void bench_lookup(void)
{
	struct fuse_entry_out e;
	struct stat st;
	double r = RATE({
		if (fs_lookup(&dev, 1, "hello.txt", &e) == 0)
			fs_forget(&dev, e.nodeid, 1);
	});
	char p[256];
	path_of(p, sizeof(p), "hello.txt");
	double native = RATE({
		int fd = open(p, O_PATH | O_NOFOLLOW);
		fstat(fd, &st);
		close(fd);
	});
	report("lookup+forget", r, "ops/s", native);
	fs_lookup(&dev, 1, "hello.txt", &e);
	struct fuse_attr_out a;
	r = RATE(fs_getattr(&dev, e.nodeid, &a));
	int fd = open(p, O_PATH);
	native = RATE(fstatat(fd, "", &st, AT_EMPTY_PATH));
	close(fd);
	report("getattr", r, "ops/s", native);
}

static void bench_create(void)
{
	struct fs_created c;
	struct fuse_entry_out d;
	fs_mkdir(&dev, 1, "many", 0755, &d);
	unsigned i = 0;
	char name[32], p[256];
	double r = RATE({
		snprintf(name, sizeof(name), "f%u", i++);
		if (fs_create(&dev, d.nodeid, name, O_WRONLY, 0644, &c) == 0) {
			fs_release(&dev, c.e.nodeid, c.o.fh, false);
			fs_forget(&dev, c.e.nodeid, 1);
		}
	});
	unsigned j = 0;
	double native = RATE({
		snprintf(p, sizeof(p), "%s/many/n%u", exp_dir, j++);
		close(open(p, O_WRONLY | O_CREAT | O_EXCL, 0644));
	});
	report("create+release", r, "files/s", native);

	/* READDIRPLUS of the directory just filled. */
	uint64_t fh;
	static uint8_t buf[65536];
	unsigned entries = 0;
	double t0 = now();
	for (int round = 0; round < 5; round++) {
		fs_open(&dev, d.nodeid, O_RDONLY, &fh, true);
		for (uint64_t off = 0;;) {
			struct freq rq;
			freq_init(&rq);
			struct fuse_read_in in = {.fh = fh, .offset = off, .size = 4096};
			freq_add(&rq, &in, sizeof(in));
			uint32_t got;
			if (fs_call(&dev, FUSE_READDIR, d.nodeid, &rq, buf, sizeof(buf), &got) ||
			    !got)
				break;
			for (uint32_t pos = 0; pos < got; entries++) {
				struct fuse_dirent de;
				memcpy(&de, buf + pos, sizeof(de));
				off = de.off;
				pos += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
			}
		}
		fs_release(&dev, d.nodeid, fh, true);
	}
	double rd = entries / (now() - t0);
	printf("# %u files in many/\n", i + j);
	report("readdir", rd, "entries/s", 0);
}

static void bench_io(void)
{
	const uint32_t chunk = 128 << 10, total = 64 << 20;
	static uint8_t data[128 << 10];
	memset(data, 0x5a, sizeof(data));
	struct fs_created c;
	fs_create(&dev, 1, "big", O_RDWR, 0644, &c);
	double t0 = now();
	for (uint32_t off = 0; off < total; off += chunk)
		fs_write(&dev, c.e.nodeid, c.o.fh, off, data, chunk, NULL);
	double w = (total >> 20) / (now() - t0);
	t0 = now();
	for (uint32_t off = 0; off < total; off += chunk)
		fs_read(&dev, c.e.nodeid, c.o.fh, off, data, chunk, NULL);
	double rd = (total >> 20) / (now() - t0);
	char p[256];
	path_of(p, sizeof(p), "big.native");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	t0 = now();
	for (uint32_t off = 0; off < total; off += chunk)
		(void)!pwrite(fd, data, chunk, off);
	double wn = (total >> 20) / (now() - t0);
	t0 = now();
	for (uint32_t off = 0; off < total; off += chunk)
		(void)!pread(fd, data, chunk, off);
	double rn = (total >> 20) / (now() - t0);
	close(fd);
	report("write 128K", w, "MiB/s", wn);
	report("read 128K", rd, "MiB/s", rn);
	fs_release(&dev, c.e.nodeid, c.o.fh, false);
}

static void bench_dax(void)
{
	const uint64_t size = 64ull << 20;
	void *win = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct virtio_fs_share sh = {.path = exp_dir};
	struct virtio_fs_params p = {.tag = "bench",
				     .shares = &sh,
				     .nshares = 1,
				     .dax_gpa = 1ull << 34,
				     .dax_size = size,
				     .dax_hva = win};
	struct fsdev d;
	if (win == MAP_FAILED || !fs_open_dev(&d, &p) || fs_init(&d, FUSE_MAP_ALIGNMENT, NULL)) {
		printf("# dax: no device\n");
		return;
	}
	struct fuse_entry_out e;
	fs_lookup(&d, 1, "big", &e);
	unsigned i = 0;
	double r = RATE({
		struct freq rq;
		freq_init(&rq);
		uint64_t moff = (uint64_t)(i++ % 32) << 21;
		struct fuse_setupmapping_in in = {.fh = UINT64_MAX,
						  .foffset = moff,
						  .len = 2 << 20,
						  .flags = FUSE_SETUPMAPPING_FLAG_READ |
							   FUSE_SETUPMAPPING_FLAG_WRITE,
						  .moffset = moff};
		freq_add(&rq, &in, sizeof(in));
		fs_call(&d, FUSE_SETUPMAPPING, e.nodeid, &rq, NULL, 0, NULL);
		freq_init(&rq);
		struct fuse_removemapping_in rin = {.count = 1};
		struct fuse_removemapping_one one = {.moffset = moff, .len = 2 << 20};
		freq_add(&rq, &rin, sizeof(rin));
		freq_add(&rq, &one, sizeof(one));
		fs_call(&d, FUSE_REMOVEMAPPING, 1, &rq, NULL, 0, NULL);
	});
	report("dax setup+remove 2M", r, "maps/s", 0);
	fs_close_dev(&d);
	munmap(win, size);
}

int main(int argc, char **argv)
{
	struct kv_err *lerr = NULL;
	if (kv_log_init("fs-server", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &lerr) < 0)
		return 1;
	if (argc > 2)
		secs = atof(argv[2]);
	if (argc > 1)
		snprintf(top, sizeof(top), "%s/kvrun-fs-XXXXXX", argv[1]);
	fs_test_setup();
	struct virtio_fs_share sh = {.path = exp_dir};
	struct virtio_fs_params p = {.tag = "bench", .shares = &sh, .nshares = 1};
	if (!fs_open_dev(&dev, &p) || fs_init(&dev, FUSE_MAX_PAGES, NULL)) {
		fprintf(stderr, "fs-server: no device\n");
		return 1;
	}
	strcpy(json, "{");
	bench_lookup();
	bench_create();
	bench_io();
	bench_dax();
	fs_close_dev(&dev);
	printf("{\"bench\":\"fs-server\",%s}}\n", json + 1);
	fs_test_cleanup();
	return 0;
}
