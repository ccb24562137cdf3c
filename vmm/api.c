/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON control socket; see api.h for the protocol. */
#include "vmm/api.h"

#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <yajl/yajl_tree.h>

#include "vmm/evloop.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

struct api_conn {
	struct api *api;
	int fd;
	size_t len;
	char buf[API_MAX_REQUEST];
	/* Files passed with the request (SCM_RIGHTS), for "snapshot"; closed after it. */
	int fds[API_MAX_FDS];
	unsigned nfds;
};

struct api {
	struct machine *m;
	int fd;
	char *path;
	struct api_conn *conns[API_MAX_CONNS];
};

static char *api_json_done(struct kv_json *j)
{
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_json_finish(j, &out, &len, &err) < 0) {
		kv_err_free(err);
		return kv_strdup(
		    "{\"ok\":false,\"error\":{\"code\":\"EIO\",\"message\":\"json\"}}");
	}
	return kv_asprintf("%.*s", (int)len, out);
}

char *api_error(int errnum, const char *msg)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", false);
	kv_json_key(j, "error");
	kv_json_map_open(j);
	kv_json_kstr(j, "code", kv_errno_name(errnum));
	kv_json_kstr(j, "message", msg);
	kv_json_map_close(j);
	kv_json_map_close(j);
	return api_json_done(j);
}

const char *api_state(struct machine *m)
{
	if (atomic_load(&m->stopping))
		return "stopping";
	return machine_paused(m) ? "paused" : "running";
}

static char *api_status(struct machine *m, bool full)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", true);
	kv_json_kstr(j, "state", api_state(m));
	if (full) {
		kv_json_kint(j, "pid", getpid());
		kv_json_kint(j, "vcpus", m->ncpus);
		kv_json_key(j, "mem");
		kv_json_uint(j, m->cfg->mem);
		kv_json_kbool(j, "pvm", m->pvm);
		kv_json_key(j, "uptime_ms");
		kv_json_uint(j, (kv_now_ns() - m->t_start_ns) / 1000000);
		kv_json_key(j, "exits");
		kv_json_uint(j, machine_exits_total(m));
		kv_json_kstr(j, "version", VMM_VERSION);
	}
	kv_json_map_close(j);
	return api_json_done(j);
}

static char *api_op_snapshot(struct machine *m, yajl_val req, const int *fds, unsigned nfds)
{
	static const char *const thens[] = {
	    [SNAP_THEN_RESUME] = "resume", [SNAP_THEN_PAUSE] = "pause", [SNAP_THEN_EXIT] = "exit"};
	const char *path[] = {"then", NULL};
	yajl_val t = yajl_tree_get(req, path, yajl_t_any);
	if (!t)
		return snapshot_api_op(m, SNAP_THEN_RESUME, fds, nfds);
	const char *ts = YAJL_IS_STRING(t) ? YAJL_GET_STRING(t) : NULL;
	for (unsigned i = 0; ts && i < KV_ARRAY_SIZE(thens); i++)
		if (strcmp(ts, thens[i]) == 0)
			return snapshot_api_op(m, i, fds, nfds);
	return api_error(EINVAL, "snapshot: \"then\" must be resume, pause or exit");
}

static char *api_op_run(struct machine *m, const char *op, yajl_val req, const int *fds,
			unsigned nfds)
{
	if (strcmp(op, "snapshot") == 0)
		return api_op_snapshot(m, req, fds, nfds);
	if (strcmp(op, "status") == 0)
		return api_status(m, true);
	if (strcmp(op, "pause") == 0) {
		struct kv_err *err = NULL;
		if (machine_pause(m, &err) < 0) {
			char *r = api_error(err->errnum, err->msg);
			kv_err_free(err);
			return r;
		}
		return api_status(m, false);
	}
	if (strcmp(op, "resume") == 0) {
		machine_resume(m);
		return api_status(m, false);
	}
	if (strcmp(op, "shutdown") == 0) {
		machine_stop(m, VMM_EXIT_POWEROFF, "shutdown requested through the API");
		return api_status(m, false);
	}
	char *r = api_fs_op(m, op, req, fds, nfds);
	if (!r)
		r = api_net_op(m, op, fds, nfds);
	if (!r)
		r = api_pmem_op(m, op, req, fds, nfds);
	if (r)
		return r;
	return api_error(EINVAL, "unknown op (status, pause, resume, shutdown, snapshot, fs-add, "
				 "fs-remove, net-attach, net-detach, pmem-bind)");
}

char *api_request_handle(struct machine *m, const char *line, size_t len)
{
	return api_request_handle_fds(m, line, len, NULL, 0);
}

char *api_request_handle_fds(struct machine *m, const char *line, size_t len, const int *fds,
			     unsigned nfds)
{
	if (len >= API_MAX_REQUEST)
		return api_error(EMSGSIZE, "request too long");
	char text[API_MAX_REQUEST];
	memcpy(text, line, len);
	text[len] = '\0';
	struct kv_err *err = NULL;
	cleanup_yajl_val yajl_val v = kv_json_parse(text, "API request", &err);
	if (!v) {
		char *r = api_error(EINVAL, err->msg);
		kv_err_free(err);
		return r;
	}
	const char *path[] = {"op", NULL};
	yajl_val op = yajl_tree_get(v, path, yajl_t_string);
	if (!YAJL_IS_OBJECT(v) || !op)
		return api_error(EINVAL, "request must be an object with a string \"op\"");
	return api_op_run(m, YAJL_GET_STRING(op), v, fds, nfds);
}

static void api_conn_fds_close(struct api_conn *c)
{
	for (unsigned i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
}

/* recv() that also collects SCM_RIGHTS fds (at most API_MAX_FDS are kept). */
static ssize_t api_conn_recv(struct api_conn *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(API_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = {c->buf + c->len, sizeof(c->buf) - c->len};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl)};
	ssize_t r = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	if (r < 0)
		return r;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (unsigned i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
			if (c->nfds < API_MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				close(fd);
		}
	}
	return r;
}

static void api_conn_close(struct api_conn *c)
{
	struct api *a = c->api;
	for (unsigned i = 0; i < API_MAX_CONNS; i++)
		if (a->conns[i] == c)
			a->conns[i] = NULL;
	(void)evloop_del(a->m->loop, c->fd);
	close(c->fd);
	api_conn_fds_close(c);
	free(c);
}

static bool api_conn_reply(struct api_conn *c, const char *line, size_t len)
{
	cleanup_free char *resp = api_request_handle_fds(c->api->m, line, len, c->fds, c->nfds);
	api_conn_fds_close(c);
	size_t rl = strlen(resp);
	resp[rl] = '\n'; /* replaces the NUL: send rl + 1 bytes */
	ssize_t w = send(c->fd, resp, rl + 1, MSG_NOSIGNAL);
	resp[rl] = '\0';
	return w == (ssize_t)(rl + 1);
}

static void api_conn_ready(void *ctx, uint32_t events)
{
	struct api_conn *c = ctx;
	ssize_t r = api_conn_recv(c);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		api_conn_close(c);
		return;
	}
	c->len += r;
	char *nl;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t ll = nl - c->buf;
		if (!api_conn_reply(c, c->buf, ll)) {
			api_conn_close(c);
			return;
		}
		memmove(c->buf, nl + 1, c->len - ll - 1);
		c->len -= ll + 1;
	}
	if (c->len == sizeof(c->buf)) {
		cleanup_free char *e = api_error(EMSGSIZE, "request too long");
		(void)send(c->fd, e, strlen(e), MSG_NOSIGNAL);
		api_conn_close(c);
	}
}

static void api_accept_ready(void *ctx, uint32_t events)
{
	struct api *a = ctx;
	int fd = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (unsigned i = 0; i < API_MAX_CONNS; i++) {
		if (a->conns[i])
			continue;
		struct api_conn *c = kv_malloc0(sizeof(*c));
		c->api = a;
		c->fd = fd;
		if (evloop_add(a->m->loop, fd, EPOLLIN, api_conn_ready, c) < 0) {
			free(c);
			break;
		}
		a->conns[i] = c;
		return;
	}
	close(fd); /* too many clients */
}

static int api_listen(const char *path, struct kv_err **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return kv_err_plain(err, ENAMETOOLONG, "API socket %s: longer than %zu bytes", path,
				    sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "API socket");
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale socket from an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kv_err_make(err, errno, "API socket: bind %s", path);
	(void)chmod(path, 0600);
	if (listen(fd, API_MAX_CONNS) < 0)
		return kv_err_make(err, errno, "API socket: listen %s", path);
	return steal_fd(fd);
}

struct api *api_start(struct machine *m, const char *path, struct kv_err **err)
{
	int fd = api_listen(path, err);
	if (fd < 0)
		return NULL;
	struct api *a = kv_malloc0(sizeof(*a));
	a->m = m;
	a->fd = fd;
	a->path = kv_strdup(path);
	if (evloop_add(m->loop, fd, EPOLLIN, api_accept_ready, a) < 0) {
		kv_err_make(err, errno, "API socket: watch");
		api_stop(a);
		return NULL;
	}
	return a;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < API_MAX_CONNS; i++)
		if (a->conns[i])
			api_conn_close(a->conns[i]);
	(void)evloop_del(a->m->loop, a->fd);
	close(a->fd);
	unlink(a->path);
	free(a->path);
	free(a);
}

/*
 * sock's address. A path too long for sun_path (a sandbox directory deep in
 * a runtime's state tree) goes through /proc/self/fd/N of an O_PATH fd of
 * its directory (*dirfd, to keep open until connected), as shim/ does for
 * vsock.
 */
static int api_client_addr(const char *sock, struct sockaddr_un *sa, int *dirfd,
			   struct kv_err **err)
{
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(sock) < sizeof(sa->sun_path)) {
		strcpy(sa->sun_path, sock);
		return 0;
	}
	const char *slash = strrchr(sock, '/');
	if (!slash || slash == sock)
		return kv_err_plain(err, ENAMETOOLONG,
				    "API socket %s: longer than %zu bytes, with no directory to "
				    "reach it through",
				    sock, sizeof(sa->sun_path) - 1);
	cleanup_free char *dir = kv_asprintf("%.*s", (int)(slash - sock), sock);
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return kv_err_make(err, errno, "API socket %s: open %s", sock, dir);
	int n =
	    snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", *dirfd, slash + 1);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return kv_err_plain(err, ENAMETOOLONG,
				    "API socket %s: its name is longer than %zu bytes even "
				    "through /proc/self/fd",
				    sock, sizeof(sa->sun_path) - 1);
	return 0;
}

int api_client_connect(const char *sock, struct kv_err **err)
{
	struct sockaddr_un sa;
	cleanup_close int dirfd = -1;
	if (api_client_addr(sock, &sa, &dirfd, err) < 0)
		return -1;
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "API socket");
	struct timeval tv = {.tv_sec = 10};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kv_err_make(err, errno, "connect to the VMM API %s", sock);
	return steal_fd(fd);
}

int api_client_send(int sock, const char *line, size_t len, const int *fds, unsigned nfds)
{
	if (nfds > API_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	ssize_t w = kv_send_fds(sock, line, len, fds, nfds);
	if (w < 0)
		return -1;
	/* The fds went with the first byte; the rest of a long line follows plainly. */
	if ((size_t)w < len && kv_write_all(sock, line + w, len - w) != (ssize_t)(len - w))
		return -1;
	return 0;
}

int api_client_read_line(int fd, const char *what, char **out, struct kv_err **err)
{
	char buf[API_MAX_REQUEST];
	size_t n = 0;
	while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return kv_err_make(err, r < 0 ? errno : EPIPE, "%s", what);
		n += r;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	*out = kv_strdup(buf);
	return 0;
}

/* The VMM's answer: 0 when ok, else its error code and message as *err. */
static int api_client_answer(const char *sock, const char *what, const char *resp,
			     struct kv_err **err)
{
	cleanup_err struct kv_err *perr = NULL;
	cleanup_yajl_val yajl_val v = kv_json_parse(resp, "VMM API answer", &perr);
	const char *okp[] = {"ok", NULL}, *codep[] = {"error", "code", NULL},
		   *msgp[] = {"error", "message", NULL};
	yajl_val ok = v ? yajl_tree_get(v, okp, yajl_t_any) : NULL;
	if (ok && YAJL_IS_TRUE(ok))
		return 0;
	yajl_val code = v ? yajl_tree_get(v, codep, yajl_t_string) : NULL;
	yajl_val msg = v ? yajl_tree_get(v, msgp, yajl_t_string) : NULL;
	int errnum = code ? kv_errno_from_name(YAJL_GET_STRING(code)) : 0;
	if (!errnum)
		errnum = EIO;
	if (msg) /* it names the op and what it acted on */
		return kv_err_plain(err, errnum, "VMM API %s: %s", sock, YAJL_GET_STRING(msg));
	return kv_err_plain(err, errnum, "VMM API %s: %s: %s", sock, what, resp);
}

int api_client_request(const char *sock, const char *what, struct kv_json *j, const int *fds,
		       unsigned nfds, struct kv_err **err)
{
	size_t len;
	cleanup_free char *req = kv_json_finish_dup(j, &len, err);
	if (!req)
		return -1;
	cleanup_free char *line = kv_asprintf("%s\n", req);
	cleanup_close int fd = api_client_connect(sock, err);
	if (fd < 0)
		return -1;
	if (api_client_send(fd, line, len + 1, fds, nfds) < 0)
		return kv_err_make(err, errno, "send to the VMM API %s", sock);
	cleanup_free char *resp = NULL;
	if (api_client_read_line(fd, "read the VMM's answer", &resp, err) < 0)
		return kv_err_wrap(err, "VMM API %s: %s", sock, what);
	return api_client_answer(sock, what, resp, err);
}

int vmm_api_call(const char *sock, const char *op, char **response, struct kv_err **err)
{
	*response = NULL;
	cleanup_close int fd = api_client_connect(sock, err);
	if (fd < 0)
		return -1;
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", op);
	kv_json_map_close(j);
	const char *req;
	size_t len;
	if (kv_json_finish(j, &req, &len, err) < 0)
		return -1;
	if (kv_write_all(fd, req, len) != (ssize_t)len || kv_write_all(fd, "\n", 1) != 1)
		return kv_err_make(err, errno, "send to the VMM API %s", sock);
	cleanup_free char *what = kv_asprintf("read from the VMM API %s", sock);
	if (api_client_read_line(fd, what, response, err) < 0)
		return -1;
	if (!strstr(*response, "\"ok\":true"))
		return kv_err_plain(err, 0, "VMM API %s: %s", op, *response);
	return 0;
}
