/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process stdio over separate data connections. Each stream (stdin, stdout,
 * stderr, or one pty) gets a token; the host connects to the data port and
 * names it. Bytes move through a bounded buffer per direction: when the host
 * stops reading, the agent stops reading the pipe, the pipe fills and the
 * container blocks. Nothing is lost and nothing grows. Until the host
 * attaches, output waits in the pipe.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <termios.h>

/* Chunks moved per wakeup before yielding to the other streams. */
#define RELAY_BURST 16

static void stream_pump(struct agent *a, struct stream *s);
static void stream_end_cb(struct agent *a, struct ev_src *src, uint32_t events);
static void stream_conn_cb(struct agent *a, struct ev_src *src, uint32_t events);

static const char *const kind_names[STREAM_NKINDS] = {"stdin", "stdout", "stderr", "pty"};

/*
 * Random hex tokens. One getrandom() fills a pool for several streams: a
 * syscall saved per stream on the create path.
 */
void agent_token(char out[KV_AGENT_TOKEN_LEN + 1])
{
	static uint8_t pool[4 * KV_AGENT_TOKEN_LEN / 2];
	static size_t avail;
	static uint64_t counter;
	const size_t n = KV_AGENT_TOKEN_LEN / 2;
	if (avail < n) {
		if (getrandom(pool, sizeof(pool), GRND_NONBLOCK) != (ssize_t)sizeof(pool)) {
			/* Early boot without a seeded CRNG: still unique, less secret. */
			for (size_t i = 0; i + 16 <= sizeof(pool); i += 16) {
				uint64_t t = kv_now_ns() ^ ((uint64_t)getpid() << 32),
					 c = ++counter;
				memcpy(pool + i, &t, 8);
				memcpy(pool + i + 8, &c, 8);
			}
		}
		avail = sizeof(pool);
	}
	const uint8_t *raw = pool + sizeof(pool) - avail;
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", raw[i]);
	/* Used bytes are wiped: a token is never handed out twice. */
	memset(pool + sizeof(pool) - avail, 0, n);
	avail -= n;
}

static struct stream *stream_new(struct agent *a, struct proc *p, enum stream_kind kind, int end)
{
	struct stream *s = kv_malloc0(sizeof(*s));
	s->kind = kind;
	s->proc = p;
	s->end.fd = end;
	s->conn.fd = -1;
	s->end.cb = stream_end_cb;
	s->conn.cb = stream_conn_cb;
	s->out.enabled = kind != STREAM_STDIN;
	s->in.enabled = kind == STREAM_STDIN || kind == STREAM_PTY;
	agent_token(s->token);
	s->next = a->streams;
	a->streams = s;
	p->streams[kind] = s;
	return s;
}

static int pipe_for(struct agent *a, struct proc *p, enum stream_kind kind, int *child_end,
		    struct kv_err **err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return kv_err_make(err, errno, "pipe for %s", kind_names[kind]);
	int mine = kind == STREAM_STDIN ? fds[1] : fds[0];
	*child_end = kind == STREAM_STDIN ? fds[0] : fds[1];
	/* Only the agent's end is non-blocking: the container's stays normal. */
	if (fcntl(mine, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno; /* before close() can change it */
		close(fds[0]);
		close(fds[1]);
		return kv_err_make(err, e, "pipe for %s: O_NONBLOCK", kind_names[kind]);
	}
	stream_new(a, p, kind, mine);
	return 0;
}

int stdio_prepare(struct agent *a, struct proc *p, bool want_stdin, bool terminal, int child_fds[3],
		  struct kv_err **err)
{
	if (terminal) {
		/* The child opens the pty inside the container and sends the master. */
		stream_new(a, p, STREAM_PTY, -1);
		return 0;
	}
	child_fds[0] = a->devnull;
	if (want_stdin && pipe_for(a, p, STREAM_STDIN, &child_fds[0], err) < 0)
		goto fail;
	if (pipe_for(a, p, STREAM_STDOUT, &child_fds[1], err) < 0)
		goto fail;
	if (pipe_for(a, p, STREAM_STDERR, &child_fds[2], err) < 0)
		goto fail;
	return 0;
fail:
	for (int i = 0; i < 3; i++)
		if (child_fds[i] >= 0 && child_fds[i] != a->devnull)
			close(child_fds[i]);
	stdio_free(a, p);
	return -1;
}

void stdio_set_pty(struct agent *a, struct proc *p, int master)
{
	struct stream *s = p->streams[STREAM_PTY];
	if (!s || s->end.fd >= 0) {
		close(master);
		return;
	}
	fcntl(master, F_SETFL, O_NONBLOCK);
	s->end.fd = master;
	if (s->attached)
		stream_pump(a, s);
}

void stdio_result(struct proc *p, struct kv_json *j)
{
	kv_json_key(j, "stdio");
	kv_json_map_open(j);
	for (int k = 0; k < STREAM_NKINDS; k++)
		if (p->streams[k])
			kv_json_kstr(j, kind_names[k], p->streams[k]->token);
	kv_json_map_close(j);
}

/* Close and unlink (no more lookups by token); memory goes in stdio_free. */
void stdio_close(struct agent *a, struct proc *p)
{
	for (int k = 0; k < STREAM_NKINDS; k++) {
		struct stream *s = p->streams[k];
		if (!s)
			continue;
		for (struct stream **pp = &a->streams; *pp; pp = &(*pp)->next)
			if (*pp == s) {
				*pp = s->next;
				break;
			}
		ev_close(a, &s->end);
		ev_close(a, &s->conn);
		s->out.enabled = s->in.enabled = false;
	}
}

void stdio_free(struct agent *a, struct proc *p)
{
	stdio_close(a, p);
	for (int k = 0; k < STREAM_NKINDS; k++) {
		struct stream *s = steal_ptr(p->streams[k]);
		if (!s)
			continue;
		free(s->out.buf);
		free(s->in.buf);
		free(s);
	}
}

/*
 * Register or update an fd's interest; an fd is added on first use. One we
 * wait for nothing on leaves the epoll set: epoll reports EPOLLHUP and
 * EPOLLERR whatever the interest, so a hung-up pipe or connection kept there
 * with an empty mask (stdin after EOF whose host then closed, a silent
 * process's stdout whose host went away) would wake the loop forever.
 */
static void want(struct agent *a, struct ev_src *src, uint32_t events)
{
	if (src->fd < 0)
		return;
	if (!events) {
		ev_del(a, src);
		return;
	}
	if (!src->registered) {
		if (ev_add(a, src, events) < 0)
			kv_warn("stdio: epoll add: %s", strerror(errno));
		return;
	}
	ev_mod(a, src, events);
}

/* Move bytes from `from` to `to` through r. Returns true on progress. */
static bool relay_step(struct relay *r, int from, int to, bool from_is_sock, bool to_is_sock,
		       bool *to_broken)
{
	bool progress = false;
	if (r->len == 0 && !r->eof && from >= 0) {
		if (!r->buf)
			r->buf = kv_malloc0(STDIO_RELAY_BUF);
		ssize_t n = from_is_sock ? recv(from, r->buf, STDIO_RELAY_BUF, MSG_DONTWAIT)
					 : read(from, r->buf, STDIO_RELAY_BUF);
		if (n > 0) {
			r->off = 0;
			r->len = n;
			progress = true;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			r->eof = true; /* EOF, or EIO from a pty whose slave closed */
			progress = true;
		}
	}
	if (r->len > 0 && to >= 0) {
		ssize_t n = to_is_sock
				? send(to, r->buf + r->off, r->len, MSG_DONTWAIT | MSG_NOSIGNAL)
				: write(to, r->buf + r->off, r->len);
		if (n > 0) {
			r->off += n;
			r->len -= n;
			progress = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			*to_broken = true;
			r->len = 0;
			progress = true;
		}
	}
	return progress;
}

static void stream_pump(struct agent *a, struct stream *s)
{
	bool pty = s->kind == STREAM_PTY;
	for (int i = 0; i < RELAY_BURST; i++) {
		bool conn_broken = false, end_broken = false, progress = false;
		if (s->out.enabled)
			progress |=
			    relay_step(&s->out, s->end.fd, s->conn.fd, false, true, &conn_broken);
		if (s->in.enabled)
			progress |=
			    relay_step(&s->in, s->conn.fd, s->end.fd, true, false, &end_broken);
		if (conn_broken) {
			/* The host went away: the writer gets EPIPE, like a closed pipe. */
			ev_close(a, &s->conn);
			ev_close(a, &s->end);
			s->out.enabled = s->in.enabled = false;
		}
		if (end_broken && !pty) {
			ev_close(a, &s->end); /* the process closed its stdin */
			s->in.enabled = false;
		}
		if (s->out.enabled && s->out.eof && s->out.len == 0) {
			/* Output ended: the host sees EOF (a pty also ends its input). */
			ev_close(a, &s->conn);
			ev_close(a, &s->end);
			s->out.enabled = s->in.enabled = false;
		}
		if (s->in.enabled && s->in.eof && s->in.len == 0) {
			s->in.enabled = false;
			if (!pty)
				ev_close(a, &s->end); /* stdin EOF reaches the process */
		}
		if (!progress)
			break;
	}
	uint32_t end_ev = 0, conn_ev = 0;
	if (s->out.enabled && !s->out.eof && s->out.len == 0)
		end_ev |= EPOLLIN;
	if (s->out.enabled && s->out.len > 0)
		conn_ev |= EPOLLOUT;
	if (s->in.enabled && !s->in.eof && s->in.len == 0)
		conn_ev |= EPOLLIN;
	if (s->in.enabled && s->in.len > 0)
		end_ev |= EPOLLOUT;
	want(a, &s->end, end_ev);
	want(a, &s->conn, conn_ev);
}

static void stream_end_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct stream *s = container_of(src, struct stream, end);
	if (s->attached)
		stream_pump(a, s);
}

static void stream_conn_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	stream_pump(a, container_of(src, struct stream, conn));
}

void stdio_close_stdin(struct agent *a, struct proc *p)
{
	struct stream *s = p->streams[STREAM_STDIN];
	if (!s)
		return;
	s->in.eof = true;
	if (s->attached)
		stream_pump(a, s);
	else
		ev_close(a, &s->end);
}

int stdio_resize(struct proc *p, unsigned rows, unsigned cols, struct kv_err **err)
{
	struct stream *s = p->streams[STREAM_PTY];
	if (!s || s->end.fd < 0)
		return kv_err_plain(err, ENOTTY, "resize: the process has no terminal");
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	if (ioctl(s->end.fd, TIOCSWINSZ, &ws) < 0)
		return kv_err_make(err, errno, "resize: TIOCSWINSZ");
	return 0;
}

/* --------------------------------------------------- data connections */

static void pending_free(struct agent *a, struct pending_data *pd, bool close_fd)
{
	for (struct pending_data **pp = &a->pending_data; *pp; pp = &(*pp)->next)
		if (*pp == pd) {
			*pp = pd->next;
			break;
		}
	if (close_fd)
		ev_close(a, &pd->src);
	else
		ev_del(a, &pd->src);
	free(pd);
}

static void stream_attach(struct agent *a, struct pending_data *pd)
{
	struct stream *s = a->streams;
	while (s && (s->attached || strcmp(s->token, pd->line) != 0))
		s = s->next;
	if (!s) {
		static const char msg[] = "ERR unknown or used token\n";
		(void)!send(pd->src.fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		pending_free(a, pd, true);
		return;
	}
	(void)!send(pd->src.fd, "OK\n", 3, MSG_DONTWAIT | MSG_NOSIGNAL);
	s->conn.fd = pd->src.fd;
	s->attached = true;
	pending_free(a, pd, false);
	stream_pump(a, s);
}

static void pending_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct pending_data *pd = container_of(src, struct pending_data, src);
	/* Read at most the token line: what follows is the stream's data. */
	size_t want_n = KV_AGENT_TOKEN_LEN + 1 - pd->got;
	char buf[KV_AGENT_TOKEN_LEN + 1];
	ssize_t n = recv(src->fd, buf, want_n, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pending_free(a, pd, true);
		return;
	}
	memcpy(pd->line + pd->got, buf, n);
	pd->got += n;
	if (pd->got < KV_AGENT_TOKEN_LEN + 1 && !memchr(buf, '\n', n))
		return;
	if (pd->got != KV_AGENT_TOKEN_LEN + 1 || pd->line[KV_AGENT_TOKEN_LEN] != '\n') {
		static const char msg[] = "ERR bad token line\n";
		(void)!send(src->fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		pending_free(a, pd, true);
		return;
	}
	pd->line[KV_AGENT_TOKEN_LEN] = '\0';
	stream_attach(a, pd);
}

void stdio_data_accept(struct agent *a, int fd)
{
	size_t n = 0;
	for (struct pending_data *pd = a->pending_data; pd; pd = pd->next)
		n++;
	if (n >= STDIO_PENDING_MAX) {
		close(fd); /* too many silent connections: refuse more */
		return;
	}
	struct pending_data *pd = kv_malloc0(sizeof(*pd));
	pd->src.fd = fd;
	pd->src.cb = pending_cb;
	if (ev_add(a, &pd->src, EPOLLIN) < 0) {
		close(fd);
		free(pd);
		return;
	}
	pd->next = a->pending_data;
	a->pending_data = pd;
}
