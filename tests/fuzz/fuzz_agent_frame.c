/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the agent's frame decoder and message/spec decoding, the
 * parsers a (compromised) host or a hostile peer controls. Input is split
 * into chunks by its first byte, as a socket would deliver it.
 */
#include "agent/protocol.h"
#include "agent/spec.h"

#include <yajl/yajl_tree.h>

static void decode_frame(const char *frame, size_t len)
{
	struct kv_msg m;
	int64_t bad_id;
	struct kv_err *err = NULL;
	if (kv_msg_decode(frame, len, &m, &bad_id, &err) == 0 && m.kind == KV_MSG_REQUEST) {
		struct kv_err *e2 = NULL;
		struct kv_spec *s = kv_spec_decode(kv_jget(m.params, "spec"), &e2);
		if (s && kv_rootfs_decode(kv_jget(m.params, "rootfs"), s, &e2) == 0)
			(void)s->rootfs.type;
		kv_spec_free(s);
		kv_err_free(e2);
		e2 = NULL;
		struct kv_process p;
		if (kv_process_decode(kv_jget(m.params, "process"), "process", &p, &e2) < 0)
			kv_err_free(e2);
		kv_process_clear(&p);
	}
	kv_err_free(err);
	kv_msg_free(&m);
	size_t elen;
	free(kv_msg_error(bad_id, EINVAL, frame, &elen));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = data[0] ? data[0] : 1;
	data++;
	size--;
	struct kv_frame_reader r;
	kv_frame_reader_init(&r);
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, used = 0, flen = 0;
		char *frame = NULL;
		struct kv_err *err = NULL;
		enum kv_frame_status st =
		    kv_frame_feed(&r, data + off, n, &used, &frame, &flen, &err);
		kv_err_free(err);
		off += used;
		if (st == KV_FRAME_READY) {
			decode_frame(frame, flen);
			free(frame);
		} else if (st == KV_FRAME_MORE && used == 0) {
			break;
		}
	}
	kv_frame_reader_reset(&r);
	return 0;
}
