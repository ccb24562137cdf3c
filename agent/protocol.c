/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent protocol: frame encoding and decoding with strict bounds, and the
 * message shapes. Everything here treats its input as hostile: a peer can
 * send any bytes, and the worst it gets back is an error.
 */
#include "agent/protocol.h"

#include <string.h>
#include <sys/uio.h>
#include <yajl/yajl_tree.h>

/* ------------------------------------------------------------- framing */

void kv_frame_reader_init(struct kv_frame_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void kv_frame_reader_reset(struct kv_frame_reader *r)
{
	free(r->buf);
	kv_frame_reader_init(r);
}

bool kv_frame_reader_partial(const struct kv_frame_reader *r)
{
	return r->hdr_got > 0;
}

static uint32_t be32_get(const uint8_t b[4])
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int kv_frame_header(uint8_t hdr[KV_AGENT_FRAME_HDR], size_t len, struct kv_err **err)
{
	if (len == 0 || len > KV_AGENT_FRAME_MAX)
		return kv_err_plain(err, EMSGSIZE, "agent frame: length %zu outside 1..%u", len,
				    KV_AGENT_FRAME_MAX);
	hdr[0] = len >> 24;
	hdr[1] = len >> 16;
	hdr[2] = len >> 8;
	hdr[3] = len;
	return 0;
}

/* The header is complete: decide between receiving and skipping. */
static void frame_start_payload(struct kv_frame_reader *r)
{
	r->want = be32_get(r->hdr);
	r->got = 0;
	r->discard = r->want == 0 || r->want > KV_AGENT_FRAME_MAX;
	if (!r->discard)
		r->buf = kv_malloc0((size_t)r->want + 1);
}

enum kv_frame_status kv_frame_feed(struct kv_frame_reader *r, const void *data, size_t len,
				   size_t *used, char **frame, size_t *frame_len,
				   struct kv_err **err)
{
	const uint8_t *p = data;
	size_t off = 0;
	*used = 0;
	while (off < len) {
		if (r->hdr_got < KV_AGENT_FRAME_HDR) {
			size_t n = KV_AGENT_FRAME_HDR - r->hdr_got;
			if (n > len - off)
				n = len - off;
			memcpy(r->hdr + r->hdr_got, p + off, n);
			r->hdr_got += n;
			off += n;
			if (r->hdr_got < KV_AGENT_FRAME_HDR)
				break;
			frame_start_payload(r);
		}
		size_t n = r->want - r->got;
		if (n > len - off)
			n = len - off;
		if (!r->discard)
			memcpy(r->buf + r->got, p + off, n);
		r->got += n;
		off += n;
		if (r->got < r->want)
			break;
		/* One frame done (possibly an empty one). */
		*used = off;
		uint32_t want = r->want;
		if (r->discard) {
			kv_frame_reader_reset(r);
			kv_err_plain(err, EMSGSIZE, "agent frame: length %u outside 1..%u", want,
				     KV_AGENT_FRAME_MAX);
			return KV_FRAME_BAD;
		}
		r->buf[want] = '\0';
		*frame = steal_ptr(r->buf);
		*frame_len = want;
		kv_frame_reader_reset(r);
		return KV_FRAME_READY;
	}
	/* An empty frame completes as soon as its header does. */
	if (r->hdr_got == KV_AGENT_FRAME_HDR && r->want == 0) {
		*used = off;
		kv_frame_reader_reset(r);
		kv_err_plain(err, EMSGSIZE, "agent frame: length 0 outside 1..%u",
			     KV_AGENT_FRAME_MAX);
		return KV_FRAME_BAD;
	}
	*used = off;
	return KV_FRAME_MORE;
}

int kv_frame_write(int fd, const char *payload, size_t len, struct kv_err **err)
{
	uint8_t hdr[KV_AGENT_FRAME_HDR];
	if (kv_frame_header(hdr, len, err) < 0)
		return -EMSGSIZE;
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, len}};
	size_t total = sizeof(hdr) + len, done = 0;
	while (done < total) {
		ssize_t w = writev(fd, iov, 2);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return kv_err_make(err, errno, "agent frame: write");
		done += w;
		for (int i = 0; i < 2 && w > 0; i++) {
			size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
			iov[i].iov_base = (char *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			w -= k;
		}
	}
	return 0;
}

int kv_frame_read(int fd, char **payload, size_t *len, struct kv_err **err)
{
	uint8_t hdr[KV_AGENT_FRAME_HDR];
	ssize_t r = kv_read_all(fd, hdr, sizeof(hdr));
	if (r < 0)
		return kv_err_make(err, errno, "agent frame: read");
	if (r == 0)
		return 0;
	if (r < (ssize_t)sizeof(hdr))
		return kv_err_plain(err, EPROTO, "agent frame: truncated header (%zd bytes)", r);
	uint32_t n = be32_get(hdr);
	if (n == 0 || n > KV_AGENT_FRAME_MAX)
		return kv_err_plain(err, EMSGSIZE, "agent frame: length %u outside 1..%u", n,
				    KV_AGENT_FRAME_MAX);
	cleanup_free char *buf = kv_malloc0((size_t)n + 1);
	r = kv_read_all(fd, buf, n);
	if (r < 0)
		return kv_err_make(err, errno, "agent frame: read");
	if (r < (ssize_t)n)
		return kv_err_plain(err, EPROTO, "agent frame: truncated (%zd of %u bytes)", r, n);
	*payload = steal_ptr(buf);
	*len = n;
	return 1;
}

/* ------------------------------------------------------------- messages */

void kv_msg_free(struct kv_msg *msg)
{
	if (msg->tree)
		yajl_tree_free(msg->tree);
	memset(msg, 0, sizeof(*msg));
}

/*
 * A key the protocol reads appearing twice makes the frame ambiguous: refuse
 * it. (Only those keys: a full pairwise check would be quadratic in a
 * hostile frame's key count.)
 */
static bool has_duplicate_keys(yajl_val obj)
{
	static const char *const known[] = {"id", "op", "params", "event", "result", "error"};
	for (size_t k = 0; k < KV_ARRAY_SIZE(known); k++) {
		int seen = 0;
		for (size_t i = 0; i < obj->u.object.len; i++)
			seen += strcmp(obj->u.object.keys[i], known[k]) == 0;
		if (seen > 1)
			return true;
	}
	return false;
}

/*
 * yajl_tree_free() recurses once per nesting level, so a frame of a million
 * '[' would overflow the stack of PID 1. Bound the depth before parsing.
 */
#define KV_AGENT_JSON_DEPTH 64
static bool nesting_too_deep(const char *s, size_t len)
{
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > KV_AGENT_JSON_DEPTH)
				return true;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return false;
}

static int msg_decode_id(yajl_val id, uint64_t *out, struct kv_err **err)
{
	if (!YAJL_IS_INTEGER(id) || YAJL_GET_INTEGER(id) < 0 ||
	    (unsigned long long)YAJL_GET_INTEGER(id) >= KV_AGENT_ID_MAX)
		return kv_err_plain(err, EINVAL, "agent frame: id: must be an integer in 0..2^53");
	*out = YAJL_GET_INTEGER(id);
	return 0;
}

static int msg_decode_response(struct kv_msg *msg, yajl_val result, yajl_val error,
			       struct kv_err **err)
{
	msg->kind = KV_MSG_RESPONSE;
	if (!!result == !!error)
		return kv_err_plain(err, EINVAL,
				    "agent frame: a response needs exactly one of result, error");
	msg->result = result;
	if (error) {
		const char *code = kv_jstr(error, "code");
		const char *m = kv_jstr(error, "message");
		if (!YAJL_IS_OBJECT(error) || !code || !m)
			return kv_err_plain(err, EINVAL,
					    "agent frame: error: must be {code, message} strings");
		msg->err_code = kv_errno_from_name(code);
		if (msg->err_code == 0)
			msg->err_code = EIO;
		msg->err_message = m;
	}
	return 0;
}

int kv_msg_decode(const char *payload, size_t len, struct kv_msg *msg, int64_t *bad_id,
		  struct kv_err **err)
{
	memset(msg, 0, sizeof(*msg));
	*bad_id = -1;
	if (len == 0 || len > KV_AGENT_FRAME_MAX || memchr(payload, '\0', len))
		return kv_err_plain(err, EINVAL,
				    "agent frame: payload must be JSON text without NUL");
	if (nesting_too_deep(payload, len))
		return kv_err_plain(err, EINVAL, "agent frame: nested deeper than %d levels",
				    KV_AGENT_JSON_DEPTH);
	yajl_val tree = kv_json_parse(payload, "agent frame", err);
	if (!tree)
		return -EINVAL;
	msg->tree = tree;
	if (!YAJL_IS_OBJECT(tree))
		return kv_err_plain(err, EINVAL, "agent frame: must be a JSON object");
	if (has_duplicate_keys(tree))
		return kv_err_plain(err, EINVAL, "agent frame: duplicate key");
	yajl_val id = kv_jget(tree, "id"), op = kv_jget(tree, "op");
	yajl_val event = kv_jget(tree, "event");
	if (!id) {
		if (!event || !YAJL_IS_STRING(event))
			return kv_err_plain(err, EINVAL, "agent frame: id: missing");
		msg->kind = KV_MSG_EVENT;
		msg->event = event->u.string;
		return 0;
	}
	yajl_val error0 = kv_jget(tree, "error");
	if (YAJL_IS_NULL(id) && error0 && !op) {
		msg->id_null = true;
		msg->id = KV_AGENT_ID_MAX;
		return msg_decode_response(msg, NULL, error0, err);
	}
	if (msg_decode_id(id, &msg->id, err) < 0)
		return -EINVAL;
	*bad_id = (int64_t)msg->id;
	yajl_val result = kv_jget(tree, "result"), error = kv_jget(tree, "error");
	if (!op && (result || error))
		return msg_decode_response(msg, result, error, err);
	msg->kind = KV_MSG_REQUEST;
	if (!op || !YAJL_IS_STRING(op) || !op->u.string[0])
		return kv_err_plain(err, EINVAL, "agent frame: op: must be a non-empty string");
	msg->op = op->u.string;
	msg->params = kv_jget(tree, "params");
	if (msg->params && YAJL_IS_NULL(msg->params))
		msg->params = NULL;
	if (msg->params && !YAJL_IS_OBJECT(msg->params))
		return kv_err_plain(err, EINVAL, "agent frame: params: must be an object");
	return 0;
}

struct kv_json *kv_msg_begin_request(uint64_t id, const char *op)
{
	struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_key(j, "id");
	kv_json_uint(j, id);
	kv_json_kstr(j, "op", op);
	kv_json_key(j, "params");
	return j;
}

struct kv_json *kv_msg_begin_result(uint64_t id)
{
	struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_key(j, "id");
	kv_json_uint(j, id);
	kv_json_key(j, "result");
	return j;
}

struct kv_json *kv_msg_begin_event(const char *event)
{
	struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "event", event);
	return j;
}

int kv_msg_end(struct kv_json *j, const char **out, size_t *len, struct kv_err **err)
{
	kv_json_map_close(j);
	if (kv_json_finish(j, out, len, err) < 0)
		return -EINVAL;
	if (*len > KV_AGENT_FRAME_MAX)
		return kv_err_plain(err, EMSGSIZE, "agent frame: message of %zu bytes exceeds %u",
				    *len, KV_AGENT_FRAME_MAX);
	return 0;
}

/* Keep only valid UTF-8-agnostic printable bytes: messages may quote input. */
static char *sanitize_message(const char *m)
{
	size_t n = strnlen(m, 4096);
	char *s = kv_malloc0(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = m[i];
		s[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : ch;
	}
	return s;
}

char *kv_msg_error(int64_t id, int code, const char *message, size_t *len)
{
	cleanup_free char *m = sanitize_message(message ? message : "");
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_key(j, "id");
	if (id < 0)
		kv_json_null(j);
	else
		kv_json_uint(j, (uint64_t)id);
	kv_json_key(j, "error");
	kv_json_map_open(j);
	kv_json_kstr(j, "code", kv_errno_name(code));
	kv_json_kstr(j, "message", m);
	kv_json_map_close(j);
	kv_json_map_close(j);
	const char *out;
	struct kv_err *e = NULL;
	if (kv_json_finish(j, &out, len, &e) < 0) {
		/* Cannot happen with sanitized input; answer something valid. */
		kv_err_free(e);
		const char *fallback =
		    "{\"id\":null,\"error\":{\"code\":\"EIO\",\"message\":\"\"}}";
		*len = strlen(fallback);
		return kv_strdup(fallback);
	}
	char *copy = kv_malloc0(*len + 1);
	memcpy(copy, out, *len);
	return copy;
}
