/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for snapshot state files (vmm/snapshot_fmt.c), which a
 * restore reads before it touches KVM. The input is a state file; to get
 * past the checksum, the target also tries it with the CRC32C recomputed
 * (the header field zeroed, as the format says), so the section parser and
 * every validator see fuzzer-controlled bytes. A parsed file's blobs must
 * lie inside the input; a memory header built for it must check out.
 *
 * Build: make fuzz; run: make fuzz-snapshot-run (FUZZ_SECONDS).
 */
#include <stdlib.h>
#include <string.h>

#include "vmm/snapshot.h"

static void check_blob(const struct snap_blob *b, const uint8_t *buf, size_t len)
{
	if (b->p && (b->p < buf || b->p > buf + len || b->len > (size_t)(buf + len - b->p)))
		abort();
}

static void parse_one(const uint8_t *buf, size_t len)
{
	struct snap s;
	struct kv_err *err = NULL;
	if (snap_parse(buf, len, &s, &err) < 0) {
		if (!err || !err->msg || !*err->msg)
			abort(); /* every refusal says why */
		kv_err_free(err);
		return;
	}
	for (unsigned c = 0; c < SNAP_MAX_VCPUS; c++)
		for (unsigned t = 0; t < SNAP_VCPU_SECS; t++)
			check_blob(&s.vcpu[c][t], buf, len);
	for (unsigned i = 0; i < SNAP_MAX_VIRTIO; i++)
		check_blob(&s.virtio[i], buf, len);
	check_blob(&s.pit, buf, len);
	check_blob(&s.clock, buf, len);
	check_blob(&s.serial, buf, len);
	struct snap_mem_hdr h;
	snap_mem_hdr_fill(&h, s.hdr.id, s.machine.mem_size, 0);
	if (snap_mem_hdr_check(&h, &s, SNAP_MEM_DATA_OFFSET + s.machine.mem_size, &err) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_one(data, size);
	if (size < sizeof(struct snap_hdr))
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	uint64_t fsize = size;
	memcpy(copy + offsetof(struct snap_hdr, file_size), &fsize, sizeof(fsize));
	memset(copy + offsetof(struct snap_hdr, crc32c), 0, 4);
	uint32_t crc = snap_crc32c(0, copy, size);
	memcpy(copy + offsetof(struct snap_hdr, crc32c), &crc, 4);
	parse_one(copy, size);
	free(copy);
	return 0;
}
