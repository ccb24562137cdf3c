/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host side of the agent protocol: connect (a Unix socket when the agent
 * runs on the host for tests, or a VMM's hybrid vsock socket), send requests
 * and await the matching response while queuing the events that arrive.
 */
#include "agent/protocol.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <yajl/yajl_tree.h>

struct ev_node {
	struct kv_msg msg;
	struct ev_node *next;
};

struct kv_agent_client {
	int fd;
	uint64_t next_id;
	int timeout_ms;
	struct ev_node *head, *tail;
};

static int unix_connect(const char *path, struct kv_err **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return kv_err_plain(err, ENAMETOOLONG,
				    "agent socket path %s: longer than %zu bytes", path,
				    sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kv_err_make(err, errno, "connect %s", path);
	return steal_fd(fd);
}

/*
 * Wait until fd has something to read, unless watch_fd (>= 0) hangs up
 * first: then ECANCELED. A VMM holds a CONNECT until the guest's vsock
 * driver takes it, which is the whole of a cold boot (tens of seconds on
 * a PVM host); whoever waits for it may have to give up when its own
 * caller goes away (kvrun-shim, when kvrun dies).
 */
static int wait_readable(int fd, int watch_fd, struct kv_err **err)
{
	if (watch_fd < 0)
		return 0;
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = watch_fd, .events = POLLRDHUP}};
	for (;;) {
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kv_err_make(err, errno, "poll");
		if (p[0].revents)
			return 0;
		if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
			return kv_err_plain(err, ECANCELED, "handshake: given up (fd %d hung up)",
					    watch_fd);
	}
}

/* Read one line (without consuming anything after its '\n'). */
static int read_line(int fd, int watch_fd, char *buf, size_t size, struct kv_err **err)
{
	size_t n = 0;
	while (n + 1 < size) {
		if (wait_readable(fd, watch_fd, err) < 0)
			return -1;
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kv_err_make(err, errno, "read handshake line");
		if (r == 0)
			return kv_err_plain(err, ECONNRESET, "handshake: connection closed");
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return kv_err_plain(err, EPROTO, "handshake: line too long");
}

static int connect_port(const char *addr, unsigned port, int watch_fd, struct kv_err **err)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		if (port == KV_AGENT_PORT)
			return unix_connect(addr + 5, err);
		cleanup_free char *p = kv_asprintf("%s_%u", addr + 5, port);
		return unix_connect(p, err);
	}
	if (strncmp(addr, "hvsock:", 7) != 0)
		return kv_err_plain(err, EINVAL, "agent address %s: want unix:PATH or hvsock:PATH",
				    addr);
	cleanup_close int fd = unix_connect(addr + 7, err);
	if (fd < 0)
		return fd;
	char line[64];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (kv_write_all(fd, line, n) < 0)
		return kv_err_make(err, errno, "hybrid vsock %s: write CONNECT", addr + 7);
	if (read_line(fd, watch_fd, line, sizeof(line), err) < 0)
		return kv_err_wrap(err, "hybrid vsock %s port %u", addr + 7, port);
	if (strncmp(line, "OK ", 3) != 0)
		return kv_err_plain(err, ECONNREFUSED,
				    "hybrid vsock %s port %u: refused (answer '%s')", addr + 7,
				    port, line);
	return steal_fd(fd);
}

int kv_agent_connect_port(const char *addr, unsigned port, struct kv_err **err)
{
	return connect_port(addr, port, -1, err);
}

struct kv_agent_client *kv_agent_client_connect(const char *addr, struct kv_err **err)
{
	return kv_agent_client_connect_watch(addr, -1, err);
}

struct kv_agent_client *kv_agent_client_connect_watch(const char *addr, int watch_fd,
						      struct kv_err **err)
{
	int fd = connect_port(addr, KV_AGENT_PORT, watch_fd, err);
	if (fd < 0)
		return NULL;
	struct kv_agent_client *c = kv_malloc0(sizeof(*c));
	c->fd = fd;
	c->next_id = 1;
	return c;
}

void kv_agent_client_free(struct kv_agent_client *c)
{
	if (!c)
		return;
	while (c->head) {
		struct ev_node *n = c->head;
		c->head = n->next;
		kv_msg_free(&n->msg);
		free(n);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int kv_agent_client_fd(const struct kv_agent_client *c)
{
	return c->fd;
}
void kv_agent_client_set_timeout(struct kv_agent_client *c, int ms)
{
	c->timeout_ms = ms;
}

int kv_agent_client_send_raw(struct kv_agent_client *c, const void *buf, size_t len,
			     struct kv_err **err)
{
	if (kv_write_all(c->fd, buf, len) < 0)
		return kv_err_make(err, errno, "agent: write");
	return 0;
}

/* Read and decode one frame from the socket. 0 on EOF. */
static int client_read_msg(struct kv_agent_client *c, struct kv_msg *msg, struct kv_err **err)
{
	if (c->timeout_ms > 0) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r;
		do
			r = poll(&p, 1, c->timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			return kv_err_plain(err, ETIMEDOUT, "agent: no answer in %d ms",
					    c->timeout_ms);
	}
	cleanup_free char *payload = NULL;
	size_t len;
	int r = kv_frame_read(c->fd, &payload, &len, err);
	if (r <= 0)
		return r;
	int64_t bad_id;
	if (kv_msg_decode(payload, len, msg, &bad_id, err) < 0) {
		kv_msg_free(msg);
		return kv_err_wrap(err, "agent answered");
	}
	return 1;
}

static void queue_event(struct kv_agent_client *c, struct kv_msg *msg)
{
	struct ev_node *n = kv_malloc0(sizeof(*n));
	n->msg = *msg;
	memset(msg, 0, sizeof(*msg));
	if (c->tail)
		c->tail->next = n;
	else
		c->head = n;
	c->tail = n;
}

bool kv_agent_client_pending(const struct kv_agent_client *c)
{
	return c->head != NULL;
}

int kv_agent_client_next(struct kv_agent_client *c, struct kv_msg *msg, struct kv_err **err)
{
	if (c->head) {
		struct ev_node *n = c->head;
		c->head = n->next;
		if (!c->head)
			c->tail = NULL;
		*msg = n->msg;
		free(n);
		return 1;
	}
	return client_read_msg(c, msg, err);
}

int kv_agent_client_next_event(struct kv_agent_client *c, struct kv_msg *ev, struct kv_err **err)
{
	for (;;) {
		int r = kv_agent_client_next(c, ev, err);
		if (r <= 0 || ev->kind == KV_MSG_EVENT)
			return r;
		/* A response nobody waits for (an abandoned call): drop it. */
		kv_msg_free(ev);
	}
}

static int client_send_request(struct kv_agent_client *c, uint64_t id, const char *op,
			       const char *params_json, struct kv_err **err)
{
	if (!params_json)
		params_json = "{}";
	/* kv_json_raw() checks the text is one value; this, that it is an object. */
	if (params_json[strspn(params_json, " \t\r\n")] != '{')
		return kv_err_plain(err, EINVAL, "request params: must be an object");
	if (!*op)
		return kv_err_plain(err, EINVAL, "request op: empty");
	cleanup_json struct kv_json *j = kv_msg_begin_request(id, op);
	kv_json_raw(j, params_json, strlen(params_json));
	const char *text;
	size_t len;
	int r = kv_msg_end(j, &text, &len, err);
	if (r < 0)
		return r == -EMSGSIZE ? r : kv_err_wrap(err, "request params");
	return kv_frame_write(c->fd, text, len, err);
}

int kv_agent_client_call(struct kv_agent_client *c, const char *op, const char *params_json,
			 struct kv_msg *resp, struct kv_err **err)
{
	uint64_t id = c->next_id++;
	memset(resp, 0, sizeof(*resp));
	if (client_send_request(c, id, op, params_json, err) < 0)
		return kv_err_wrap(err, "agent %s", op);
	for (;;) {
		struct kv_msg m;
		int r = client_read_msg(c, &m, err);
		if (r < 0)
			return kv_err_wrap(err, "agent %s", op);
		if (r == 0)
			return kv_err_plain(err, ECONNRESET, "agent %s: connection closed", op);
		if (m.kind == KV_MSG_EVENT) {
			queue_event(c, &m);
			continue;
		}
		if (m.kind != KV_MSG_RESPONSE || m.id != id) {
			kv_msg_free(&m);
			continue;
		}
		if (m.err_message) {
			int code = m.err_code;
			kv_err_plain(err, code, "agent %s: %s (%s)", op, m.err_message,
				     kv_errno_name(code));
			kv_msg_free(&m);
			return -code;
		}
		*resp = m;
		return 0;
	}
}

int kv_agent_client_hello(struct kv_agent_client *c, struct kv_err **err)
{
	cleanup_free char *params = kv_req_version(err);
	cleanup_msg struct kv_msg resp = {0};
	if (!params || kv_agent_client_call(c, KV_OP_VERSION, params, &resp, err) < 0)
		return -1;
	long long v;
	if (!kv_jint(resp.result, "version", &v))
		return kv_err_plain(err, EPROTO, "agent version: no version in the answer");
	if (v != KV_AGENT_PROTO_VERSION)
		return kv_err_plain(err, EPROTONOSUPPORT, "agent speaks protocol %lld, we speak %d",
				    v, KV_AGENT_PROTO_VERSION);
	return 0;
}

int kv_agent_stream_open(const char *addr, const char *token, struct kv_err **err)
{
	if (strlen(token) != KV_AGENT_TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != KV_AGENT_TOKEN_LEN)
		return kv_err_plain(err, EINVAL, "stream token: want %d hex digits",
				    KV_AGENT_TOKEN_LEN);
	cleanup_close int fd = kv_agent_connect_port(addr, KV_AGENT_DATA_PORT, err);
	if (fd < 0)
		return fd;
	char line[KV_AGENT_TOKEN_LEN + 2];
	snprintf(line, sizeof(line), "%s\n", token);
	if (kv_write_all(fd, line, strlen(line)) < 0)
		return kv_err_make(err, errno, "stream %s: write token", token);
	char ans[256];
	if (read_line(fd, -1, ans, sizeof(ans), err) < 0)
		return kv_err_wrap(err, "stream %s", token);
	if (strcmp(ans, "OK") != 0)
		return kv_err_plain(err, ENOENT, "stream %s: agent answered: %s", token, ans);
	return steal_fd(fd);
}
