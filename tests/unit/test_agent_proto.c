/* SPDX-License-Identifier: Apache-2.0 */
/* The agent protocol's framing and message decoding, fed hostile input. */
#include "agent/protocol.h"
#include "tap.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

static void hdr(uint8_t *b, uint32_t n)
{
	b[0] = n >> 24;
	b[1] = n >> 16;
	b[2] = n >> 8;
	b[3] = n;
}

/* Feed a whole buffer in chunks of `step`; count frames and errors. */
static void feed_all(const uint8_t *buf, size_t len, size_t step, int *frames, int *bad,
		     char **last)
{
	struct kv_frame_reader r;
	kv_frame_reader_init(&r);
	*frames = *bad = 0;
	size_t off = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used = 0, flen = 0;
		char *frame = NULL;
		struct kv_err *err = NULL;
		enum kv_frame_status st =
		    kv_frame_feed(&r, buf + off, n, &used, &frame, &flen, &err);
		off += used;
		if (st == KV_FRAME_READY) {
			(*frames)++;
			free(*last);
			*last = frame;
		} else if (st == KV_FRAME_BAD) {
			(*bad)++;
		} else if (used == 0) {
			break;
		}
		kv_err_free(err);
	}
	kv_frame_reader_reset(&r);
}

static void test_framing(void)
{
	uint8_t buf[64];
	const char *p = "{\"id\":1,\"op\":\"ping\"}";
	size_t n = strlen(p);
	hdr(buf, n);
	memcpy(buf + 4, p, n);
	memcpy(buf + 4 + n, buf, 4 + n); /* two frames back to back */
	for (size_t step = 1; step <= 2 * (4 + n); step += 7) {
		int frames, bad;
		char *last = NULL;
		feed_all(buf, 2 * (4 + n), step, &frames, &bad, &last);
		ok(frames == 2 && bad == 0 && last && strcmp(last, p) == 0,
		   "two frames decode in chunks of %zu", step);
		free(last);
	}

	/* A truncated frame: no frame, and the reader says it is partial. */
	struct kv_frame_reader r;
	kv_frame_reader_init(&r);
	size_t used, flen;
	char *frame = NULL;
	struct kv_err *err = NULL;
	is_int(kv_frame_feed(&r, buf, 4 + n - 3, &used, &frame, &flen, &err), KV_FRAME_MORE,
	       "truncated frame: more wanted");
	ok(kv_frame_reader_partial(&r), "truncated frame: partial");
	kv_frame_reader_reset(&r);
	is_int(kv_frame_feed(&r, buf, 2, &used, &frame, &flen, &err), KV_FRAME_MORE,
	       "2 bytes of a length: more wanted");
	ok(kv_frame_reader_partial(&r), "truncated length: partial");
	kv_frame_reader_reset(&r);
}

static void test_bad_lengths(void)
{
	/* Oversized: skipped whole, reported once, then the next frame decodes. */
	size_t big = KV_AGENT_FRAME_MAX + 1;
	const char *p = "{\"id\":2,\"op\":\"ping\"}";
	size_t n = strlen(p), total = 4 + big + 4 + n;
	uint8_t *buf = kv_malloc0(total);
	hdr(buf, big);
	hdr(buf + 4 + big, n);
	memcpy(buf + 8 + big, p, n);
	int frames, bad;
	char *last = NULL;
	feed_all(buf, total, 65536, &frames, &bad, &last);
	ok(bad == 1 && frames == 1 && last && strcmp(last, p) == 0,
	   "oversized frame skipped, the stream stays in sync");
	free(last);
	last = NULL;
	/* Zero length: an error, then in sync. */
	hdr(buf, 0);
	hdr(buf + 4, n);
	memcpy(buf + 8, p, n);
	feed_all(buf, 8 + n, 3, &frames, &bad, &last);
	ok(bad == 1 && frames == 1, "empty frame refused, the stream stays in sync");
	free(last);
	free(buf);
	/* 0xffffffff: never allocated. */
	uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
	struct kv_frame_reader r;
	kv_frame_reader_init(&r);
	size_t used, flen;
	char *frame = NULL;
	struct kv_err *err = NULL;
	is_int(kv_frame_feed(&r, ff, 4, &used, &frame, &flen, &err), KV_FRAME_MORE,
	       "4 GiB length: waits to skip, allocates nothing");
	ok(r.buf == NULL && r.discard, "4 GiB length: discarding");
	kv_frame_reader_reset(&r);
	uint8_t h[4];
	ok(kv_frame_header(h, KV_AGENT_FRAME_MAX + 1, &err) < 0 && err->errnum == EMSGSIZE,
	   "encoder refuses > 1 MiB");
	char want[80];
	snprintf(want, sizeof(want), "agent frame: length %u outside 1..%u", KV_AGENT_FRAME_MAX + 1,
		 KV_AGENT_FRAME_MAX);
	is_str(err ? err->msg : NULL, want, "  the verdict alone (no strerror)");
	kv_err_free(err);
}

static int decode(const char *s, struct kv_msg *m, int64_t *bad_id, char **msg)
{
	struct kv_err *err = NULL;
	int r = kv_msg_decode(s, strlen(s), m, bad_id, &err);
	*msg = err ? kv_strdup(err->msg) : NULL;
	kv_err_free(err);
	return r;
}

static void expect_bad(const char *in, const char *want, int64_t want_id)
{
	struct kv_msg m;
	int64_t bad_id;
	char *msg = NULL;
	int r = decode(in, &m, &bad_id, &msg);
	ok(r < 0 && msg && strstr(msg, want) && bad_id == want_id, "refused %.40s: %s", in,
	   msg ? msg : "(accepted)");
	free(msg);
	kv_msg_free(&m);
}

static void test_messages(void)
{
	struct kv_msg m;
	int64_t bad_id;
	char *msg = NULL;
	ok(decode("{\"id\":7,\"op\":\"create\",\"params\":{\"container\":\"a\"}}", &m, &bad_id,
		  &msg) == 0 &&
	       m.kind == KV_MSG_REQUEST && m.id == 7 && strcmp(m.op, "create") == 0 &&
	       strcmp(kv_jstr(m.params, "container"), "a") == 0,
	   "a request decodes");
	kv_msg_free(&m);
	ok(decode("{\"id\":7,\"error\":{\"code\":\"ENOENT\",\"message\":\"x\"}}", &m, &bad_id,
		  &msg) == 0 &&
	       m.kind == KV_MSG_RESPONSE && m.err_code == ENOENT,
	   "an error response decodes");
	kv_msg_free(&m);
	ok(decode("{\"id\":null,\"error\":{\"code\":\"EINVAL\",\"message\":\"x\"}}", &m, &bad_id,
		  &msg) == 0 &&
	       m.id_null,
	   "an error answer with a null id decodes");
	kv_msg_free(&m);
	ok(decode("{\"event\":\"exit\",\"status\":3}", &m, &bad_id, &msg) == 0 &&
	       m.kind == KV_MSG_EVENT && strcmp(m.event, "exit") == 0,
	   "an event decodes");
	kv_msg_free(&m);

	expect_bad("[1,2]", "must be a JSON object", -1);
	expect_bad("\"str\"", "must be a JSON object", -1);
	expect_bad("42", "must be a JSON object", -1);
	expect_bad("{\"op\":\"ping\"}", "id: missing", -1);
	expect_bad("{\"id\":\"x\",\"op\":\"ping\"}", "id: must be an integer", -1);
	expect_bad("{\"id\":-1,\"op\":\"ping\"}", "id: must be an integer", -1);
	expect_bad("{\"id\":1.5,\"op\":\"ping\"}", "id: must be an integer", -1);
	expect_bad("{\"id\":9007199254740993,\"op\":\"ping\"}", "id: must be an integer", -1);
	expect_bad("{\"id\":3}", "op: must be a non-empty string", 3);
	expect_bad("{\"id\":3,\"op\":\"\"}", "op: must be a non-empty string", 3);
	expect_bad("{\"id\":3,\"op\":5}", "op: must be a non-empty string", 3);
	expect_bad("{\"id\":3,\"op\":\"x\",\"params\":[]}", "params: must be an object", 3);
	expect_bad("{\"id\":3,\"id\":4,\"op\":\"x\"}", "duplicate key", -1);
	expect_bad("{\"id\":3,", "invalid JSON", -1);
	expect_bad("{\"id\":3,\"op\":\"x\"} {}", "invalid JSON", -1);
	expect_bad("{\"id\":3,\"result\":{},\"error\":{}}", "exactly one of", 3);
	/* Verdicts: the message is the whole reason, no strerror after it. */
	ok(decode("[1,2]", &m, &bad_id, &msg) < 0, "a non-object: refused");
	is_str(msg, "agent frame: must be a JSON object", "  the verdict alone");
	free(msg);
	kv_msg_free(&m);
	ok(decode("{\"id\":3,\"op\":\"x\",\"params\":[]}", &m, &bad_id, &msg) < 0,
	   "params not an object: refused");
	is_str(msg, "agent frame: params: must be an object", "  the verdict alone");
	free(msg);
	msg = NULL;
	kv_msg_free(&m);
	/* Deep nesting would overflow yajl_tree_free's recursion: refused early. */
	size_t depth = 100000;
	char *deep = kv_malloc0(depth + 32);
	strcpy(deep, "{\"id\":1,\"op\":\"x\",\"params\":");
	memset(deep + strlen(deep), '[', depth);
	expect_bad(deep, "nested deeper", -1);
	free(deep);
	/* An embedded NUL is not JSON text. */
	struct kv_err *err = NULL;
	ok(kv_msg_decode("{\"id\":1}\0x", 10, &m, &bad_id, &err) < 0, "embedded NUL refused");
	kv_err_free(err);
	kv_msg_free(&m);
}

static void test_builders(void)
{
	struct kv_json *j = kv_msg_begin_result(9);
	kv_json_map_open(j);
	kv_json_kint(j, "pid", 1);
	kv_json_map_close(j);
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	ok(kv_msg_end(j, &out, &len, &err) == 0 &&
	       strcmp(out, "{\"id\":9,\"result\":{\"pid\":1}}") == 0,
	   "result frame");
	kv_json_free(j);
	char *e = kv_msg_error(-1, ENOENT, "bad \x01\xff bytes", &len);
	is_str(e, "{\"id\":null,\"error\":{\"code\":\"ENOENT\",\"message\":\"bad ?? bytes\"}}",
	       "error frame with null id and sanitized message");
	free(e);
}

/* The client against a fake agent on a socketpair: events queue up while
 * it waits for its answer. */
static void test_client_roundtrip(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	struct kv_err *err = NULL;
	const char *ev = "{\"event\":\"exit\",\"container\":\"c\"}";
	const char *resp = "{\"id\":1,\"result\":{\"pid\":1}}";
	ok(kv_frame_write(sv[1], ev, strlen(ev), &err) == 0 &&
	       kv_frame_write(sv[1], resp, strlen(resp), &err) == 0,
	   "fake agent writes an event then the answer");
	char *payload;
	size_t len;
	/* Read back what a client would and decode it. */
	ok(kv_frame_read(sv[0], &payload, &len, &err) == 1 && strcmp(payload, ev) == 0,
	   "frame read back");
	free(payload);
	ok(kv_frame_read(sv[0], &payload, &len, &err) == 1, "second frame read back");
	free(payload);
	close(sv[1]);
	ok(kv_frame_read(sv[0], &payload, &len, &err) == 0, "EOF between frames is clean");
	close(sv[0]);
	kv_err_free(err);
}

/*
 * A fake VMM on a hybrid vsock socket: it expects "CONNECT 1024", answers
 * "OK", then plays the agent: an event first, a stray answer, the real one.
 */
static void fake_vmm(int lfd)
{
	int fd = accept(lfd, NULL, NULL);
	char line[32] = "";
	size_t n = 0;
	while (n + 1 < sizeof(line) && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	if (strncmp(line, "CONNECT 1024", 12) != 0)
		_exit(3);
	if (write(fd, "OK 7\n", 5) != 5)
		_exit(4);
	char *req;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_frame_read(fd, &req, &len, &err) != 1 || !strstr(req, "\"op\":\"ping\""))
		_exit(5);
	const char *frames[] = {"{\"event\":\"exit\",\"container\":\"c\",\"status\":3}",
				"{\"id\":99,\"result\":{}}", "{\"id\":1,\"result\":{\"pid\":1}}"};
	for (size_t i = 0; i < 3; i++)
		if (kv_frame_write(fd, frames[i], strlen(frames[i]), &err) < 0)
			_exit(6);
	_exit(0);
}

/* A fake VMM's hybrid vsock socket, DIR/vsock.sock, listening; *sock names it. */
static int fake_vmm_listen(const char *dir, int backlog, char **sock)
{
	*sock = kv_asprintf("%s/vsock.sock", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, *sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ok(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, backlog) == 0,
	   "fake VMM listens");
	return lfd;
}

static void test_client_hvsock(void)
{
	char path[] = "/tmp/kv-test-hvsock-XXXXXX";
	if (!tap_tmpdir(path))
		return;
	char *sock = NULL;
	int lfd = fake_vmm_listen(path, 1, &sock);
	pid_t pid = fork();
	if (pid == 0)
		fake_vmm(lfd);
	close(lfd);
	char *addr = kv_asprintf("hvsock:%s", sock);
	struct kv_err *err = NULL;
	struct kv_agent_client *c = kv_agent_client_connect(addr, &err);
	ok(c != NULL, "hybrid vsock CONNECT/OK handshake");
	struct kv_msg resp = {0};
	long long pidv = 0;
	ok(c && kv_agent_client_call(c, "ping", NULL, &resp, &err) == 0 &&
	       kv_jint(resp.result, "pid", &pidv) && pidv == 1,
	   "the answer with our id is returned, the stray one skipped");
	kv_msg_free(&resp);
	ok(c && kv_agent_client_pending(c), "  pending: the socket will not poll readable for it");
	struct kv_msg ev = {0};
	ok(c && kv_agent_client_next_event(c, &ev, &err) == 1 && ev.kind == KV_MSG_EVENT &&
	       strcmp(ev.event, "exit") == 0,
	   "the event that came first was queued");
	kv_msg_free(&ev);
	ok(c && !kv_agent_client_pending(c), "  and no longer pending once read");
	kv_agent_client_free(c);
	int st = -1;
	waitpid(pid, &st, 0);
	is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 100, 0, "fake VMM saw what it expected");
	ok(kv_agent_client_connect("tcp:1.2.3.4", &err) == NULL && err && err->errnum == EINVAL,
	   "an unknown address form is refused");
	kv_err_free(err);
	unlink(sock);
	rmdir(path);
	free(sock);
	free(addr);
}

/*
 * A VMM holds a CONNECT while its guest boots. connect_watch gives up with
 * ECANCELED once the watched fd hangs up (kvrun-shim's sync socket, when
 * kvrun dies), and connects as usual while it does not.
 */
static void test_client_connect_watch(void)
{
	char path[] = "/tmp/kv-test-hvsock-XXXXXX";
	if (!tap_tmpdir(path))
		return;
	char *sock = NULL;
	int lfd = fake_vmm_listen(path, 4, &sock);
	char *addr = kv_asprintf("hvsock:%s", sock);
	/* Nobody accepts: the CONNECT waits in the backlog, as in a booting guest. */
	int sv[2];
	ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "a watched socket");
	pid_t killer = fork();
	if (killer == 0) {
		usleep(100 * 1000);
		_exit(0); /* and with it our copy of sv[1] */
	}
	close(sv[1]);
	struct kv_err *err = NULL;
	uint64_t t0 = kv_now_ms();
	struct kv_agent_client *c = kv_agent_client_connect_watch(addr, sv[0], &err);
	ok(c == NULL && err && err->errnum == ECANCELED, "the watched fd's hang-up ends the wait");
	ok(kv_now_ms() - t0 < 5000, "at once, not at some timeout");
	kv_err_free(err);
	err = NULL;
	waitpid(killer, NULL, 0);
	close(sv[0]);
	/* A watched fd that stays: the handshake completes as without one (a
	 * fresh listener: the abandoned CONNECT still waits in the old one). */
	close(lfd);
	unlink(sock);
	free(sock);
	lfd = fake_vmm_listen(path, 4, &sock);
	ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "a watched socket that stays");
	pid_t pid = fork();
	if (pid == 0)
		fake_vmm(lfd);
	c = kv_agent_client_connect_watch(addr, sv[0], &err);
	ok(c != NULL, "the handshake completes while the watched fd is open");
	kv_agent_client_free(c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(sv[0]);
	close(sv[1]);
	close(lfd);
	kv_err_free(err);
	unlink(sock);
	rmdir(path);
	free(sock);
	free(addr);
}

int main(void)
{
	test_framing();
	test_bad_lengths();
	test_messages();
	test_builders();
	test_client_roundtrip();
	test_client_hvsock();
	test_client_connect_watch();
	return tap_done();
}
