/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent-client: drive kvrun-agent from tests and by hand, over its Unix
 * socket (or a VMM's hybrid vsock socket), through libagentproto.
 *
 *   agent-client ADDR call OP [PARAMS-JSON]   one request; prints the result
 *   agent-client ADDR raw FRAME-TEXT          send one frame as given; print the answer
 *   agent-client ADDR rawbytes HEX            send raw bytes; print the answer
 *   agent-client ADDR stream TOKEN            copy stdin to the stream, the stream to stdout
 *   agent-client ADDR run ID CONFIG [opts]    create, attach, start, relay, wait:
 *                                             exits with the container's status
 *   agent-client ADDR exec ID EXEC-ID PROCESS-JSON [opts]   the same for exec
 *   agent-client ADDR events N                print the next N events
 *
 * run/exec options: --stdin (relay our stdin), --tty ROWSxCOLS (a pty; our
 * stdin goes to it), --resize ROWSxCOLS (after start), --keep (no delete),
 * --rootfs JSON (the create request's rootfs).
 * Errors print "CODE: message" on stderr and exit 125.
 */
#include "agent/protocol.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

static const char *addr;

__attribute__((noreturn)) static void fail(struct kv_err *err)
{
	fprintf(stderr, "%s: %s\n", kv_errno_name(err ? err->errnum : EIO),
		err ? err->msg : "failed");
	exit(125);
}

/* Re-serialize a yajl tree value (the result) as compact JSON. */
static void print_val(yajl_gen g, yajl_val v)
{
	if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			yajl_gen_string(g, (const unsigned char *)v->u.object.keys[i],
					strlen(v->u.object.keys[i]));
			print_val(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			print_val(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_STRING(v)) {
		yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else {
		yajl_gen_null(g);
	}
}

static void print_json(FILE *f, yajl_val v)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	print_val(g, v);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	fprintf(f, "%.*s\n", (int)len, buf);
	yajl_gen_free(g);
}

static struct kv_agent_client *connect_agent(void)
{
	struct kv_err *err = NULL;
	struct kv_agent_client *c = kv_agent_client_connect(addr, &err);
	if (!c)
		fail(err);
	kv_agent_client_set_timeout(c, 60000);
	return c;
}

static int cmd_call(int argc, char **argv)
{
	if (argc < 1)
		return 2;
	cleanup_agent_client struct kv_agent_client *c = connect_agent();
	cleanup_msg struct kv_msg resp = {0};
	struct kv_err *err = NULL;
	if (kv_agent_client_call(c, argv[0], argc > 1 ? argv[1] : NULL, &resp, &err) < 0)
		fail(err);
	print_json(stdout, resp.result);
	return 0;
}

/* Print whatever single frame comes back (an error answer is expected). */
static int answer_raw(struct kv_agent_client *c)
{
	cleanup_msg struct kv_msg m = {0};
	struct kv_err *err = NULL;
	int r = kv_agent_client_next(c, &m, &err);
	if (r < 0)
		fail(err);
	if (r == 0) {
		fprintf(stderr, "EOF\n");
		return 1;
	}
	print_json(stdout, m.tree);
	return 0;
}

static int cmd_raw(int argc, char **argv, bool hex)
{
	if (argc < 1)
		return 2;
	cleanup_agent_client struct kv_agent_client *c = connect_agent();
	struct kv_err *err = NULL;
	if (hex) {
		size_t n = strlen(argv[0]) / 2;
		cleanup_free uint8_t *b = kv_malloc0(n + 1);
		for (size_t i = 0; i < n; i++)
			sscanf(argv[0] + 2 * i, "%2hhx", &b[i]);
		if (kv_agent_client_send_raw(c, b, n, &err) < 0)
			fail(err);
		/* An oversized length: also send that many bytes so it is skipped. */
		if (n == 4) {
			uint32_t len = (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
			cleanup_free char *zero = kv_malloc0(65536);
			for (uint32_t sent = 0; len <= (64u << 20) && sent < len;) {
				uint32_t k = len - sent < 65536 ? len - sent : 65536;
				if (kv_agent_client_send_raw(c, zero, k, &err) < 0)
					fail(err);
				sent += k;
			}
		}
	} else if (kv_frame_write(kv_agent_client_fd(c), argv[0], strlen(argv[0]), &err) < 0) {
		fail(err);
	}
	return answer_raw(c);
}

static int cmd_events(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 1;
	cleanup_agent_client struct kv_agent_client *c = connect_agent();
	for (int i = 0; i < n; i++) {
		cleanup_msg struct kv_msg ev = {0};
		struct kv_err *err = NULL;
		int r = kv_agent_client_next_event(c, &ev, &err);
		if (r < 0)
			fail(err);
		if (r == 0)
			return 1;
		print_json(stdout, ev.tree);
		fflush(stdout);
	}
	return 0;
}

/* ------------------------------------------------------------ relaying */

struct pump {
	int from, to;
	bool sock_to; /* shut down its write side at EOF */
	bool done;
};

/* Copy until every output stream ends; stdin (if any) is best effort. */
static void relay(struct pump *p, size_t n)
{
	char buf[65536];
	for (;;) {
		struct pollfd pf[4];
		size_t idx[4], np = 0;
		bool outputs_open = false;
		for (size_t i = 0; i < n; i++) {
			if (p[i].done)
				continue;
			if (p[i].from != 0)
				outputs_open = true;
			pf[np] = (struct pollfd){.fd = p[i].from, .events = POLLIN};
			idx[np++] = i;
		}
		if (!outputs_open)
			return;
		if (poll(pf, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (size_t k = 0; k < np; k++) {
			if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct pump *q = &p[idx[k]];
			ssize_t r = read(q->from, buf, sizeof(buf));
			if (r > 0 && kv_write_all(q->to, buf, r) == r)
				continue;
			q->done = true;
			if (q->sock_to)
				shutdown(q->to, SHUT_WR);
		}
	}
}

static int open_stream(yajl_val stdio, const char *kind)
{
	const char *tok = kv_jstr(stdio, kind);
	if (!tok)
		return -1;
	struct kv_err *err = NULL;
	int fd = kv_agent_stream_open(addr, tok, &err);
	if (fd < 0)
		fail(err);
	return fd;
}

struct run_opts {
	bool want_stdin, keep;
	const char *tty, *resize, *rootfs;
};

static void parse_opts(int argc, char **argv, struct run_opts *o)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--stdin") == 0)
			o->want_stdin = true;
		else if (strcmp(argv[i], "--keep") == 0)
			o->keep = true;
		else if (strcmp(argv[i], "--tty") == 0 && i + 1 < argc)
			o->tty = argv[++i];
		else if (strcmp(argv[i], "--resize") == 0 && i + 1 < argc)
			o->resize = argv[++i];
		else if (strcmp(argv[i], "--rootfs") == 0 && i + 1 < argc)
			o->rootfs = argv[++i];
	}
}

static void call_or_fail(struct kv_agent_client *c, const char *op, const char *params,
			 struct kv_msg *resp)
{
	struct kv_err *err = NULL;
	if (kv_agent_client_call(c, op, params, resp, &err) < 0)
		fail(err);
}

/* Attach the streams of a create/exec result and relay them to our stdio. */
static void attach_and_relay(struct kv_agent_client *c, yajl_val result, const char *target,
			     const struct run_opts *o, bool start)
{
	yajl_val stdio = kv_jget(result, "stdio");
	struct pump p[4];
	size_t n = 0;
	int pty = open_stream(stdio, "pty");
	int out = open_stream(stdio, "stdout"), errs = open_stream(stdio, "stderr");
	int in = open_stream(stdio, "stdin");
	if (start) {
		cleanup_msg struct kv_msg r = {0};
		call_or_fail(c, KV_OP_START, target, &r);
	}
	if (o->resize && pty >= 0) {
		/* Resize once the process has shown its first line, so that the
		 * line tells the initial size and a later one the new size. */
		char ch;
		while (read(pty, &ch, 1) == 1 && kv_write_all(1, &ch, 1) == 1 && ch != '\n')
			;
		unsigned rows = 0, cols = 0;
		sscanf(o->resize, "%ux%u", &rows, &cols);
		cleanup_free char *params = kv_asprintf(
		    "%.*s,\"rows\":%u,\"cols\":%u}", (int)strlen(target) - 1, target, rows, cols);
		cleanup_msg struct kv_msg r = {0};
		call_or_fail(c, KV_OP_RESIZE, params, &r);
	}
	if (pty >= 0) {
		p[n++] = (struct pump){pty, 1, false, false};
		if (o->want_stdin)
			p[n++] = (struct pump){0, pty, false, false};
	}
	if (out >= 0)
		p[n++] = (struct pump){out, 1, false, false};
	if (errs >= 0)
		p[n++] = (struct pump){errs, 2, false, false};
	if (in >= 0)
		p[n++] = (struct pump){0, in, true, false};
	relay(p, n);
	int fds[] = {pty, out, errs, in};
	for (size_t i = 0; i < KV_ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Wait for the process and turn its status into ours (128+signal). */
static int wait_status(struct kv_agent_client *c, const char *target)
{
	cleanup_msg struct kv_msg r = {0};
	call_or_fail(c, KV_OP_WAIT, target, &r);
	long long st = 125, sig;
	kv_jint(r.result, "status", &st);
	if (kv_jint(r.result, "signal", &sig))
		fprintf(stderr, "agent-client: killed by signal %lld (%s)\n", sig,
			kv_jstr(r.result, "signal_name"));
	return (int)st;
}

static int cmd_run(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *id = argv[0];
	struct run_opts o = {0};
	parse_opts(argc - 2, argv + 2, &o);
	struct kv_err *err = NULL;
	cleanup_free char *config = NULL;
	if (kv_read_file(argv[1], KV_AGENT_FRAME_MAX, &config, NULL, &err) < 0)
		fail(err);
	cleanup_agent_client struct kv_agent_client *c = connect_agent();
	if (kv_agent_client_hello(c, &err) < 0)
		fail(err);
	cleanup_free char *params =
	    kv_asprintf("{\"container\":\"%s\",\"stdin\":%s,\"spec\":%s%s%s}", id,
			o.want_stdin ? "true" : "false", config, o.rootfs ? ",\"rootfs\":" : "",
			o.rootfs ? o.rootfs : "");
	cleanup_msg struct kv_msg created = {0};
	call_or_fail(c, KV_OP_CREATE, params, &created);
	cleanup_free char *target = kv_asprintf("{\"container\":\"%s\"}", id);
	attach_and_relay(c, created.result, target, &o, true);
	int st = wait_status(c, target);
	if (!o.keep) {
		cleanup_msg struct kv_msg r = {0};
		call_or_fail(c, KV_OP_DELETE, target, &r);
	}
	return st;
}

static int cmd_exec(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	struct run_opts o = {0};
	parse_opts(argc - 3, argv + 3, &o);
	cleanup_agent_client struct kv_agent_client *c = connect_agent();
	cleanup_free char *params =
	    kv_asprintf("{\"container\":\"%s\",\"exec_id\":\"%s\",\"stdin\":%s,\"process\":%s}",
			argv[0], argv[1], o.want_stdin ? "true" : "false", argv[2]);
	cleanup_msg struct kv_msg r = {0};
	call_or_fail(c, KV_OP_EXEC, params, &r);
	cleanup_free char *target =
	    kv_asprintf("{\"container\":\"%s\",\"exec_id\":\"%s\"}", argv[0], argv[1]);
	attach_and_relay(c, r.result, target, &o, false);
	return wait_status(c, target);
}

static int cmd_stream(int argc, char **argv)
{
	if (argc < 1)
		return 2;
	struct kv_err *err = NULL;
	int fd = kv_agent_stream_open(addr, argv[0], &err);
	if (fd < 0)
		fail(err);
	struct pump p[2] = {{fd, 1, false, false}, {0, fd, true, false}};
	relay(p, 2);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: agent-client ADDR call|raw|rawbytes|stream|run|exec|events ...\n");
		return 2;
	}
	addr = argv[1];
	const char *cmd = argv[2];
	int r = 2;
	if (strcmp(cmd, "call") == 0)
		r = cmd_call(argc - 3, argv + 3);
	else if (strcmp(cmd, "raw") == 0)
		r = cmd_raw(argc - 3, argv + 3, false);
	else if (strcmp(cmd, "rawbytes") == 0)
		r = cmd_raw(argc - 3, argv + 3, true);
	else if (strcmp(cmd, "stream") == 0)
		r = cmd_stream(argc - 3, argv + 3);
	else if (strcmp(cmd, "run") == 0)
		r = cmd_run(argc - 3, argv + 3);
	else if (strcmp(cmd, "exec") == 0)
		r = cmd_exec(argc - 3, argv + 3);
	else if (strcmp(cmd, "events") == 0)
		r = cmd_events(argc - 3, argv + 3);
	if (r == 2 && strcmp(cmd, "run") && strcmp(cmd, "exec"))
		fprintf(stderr, "agent-client: bad usage of %s\n", cmd);
	return r;
}
