/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stdio: the guest process's streams (one vsock connection each, bound by
 * the tokens the agent returned) relayed to what the shim inherited as fds
 * 0-2 (pipes, fifos, files, a terminal) or to the host pty of a console
 * socket. The stream sockets are ours and non-blocking. The inherited fds
 * are shared with whoever gave them to us, so their flags stay untouched:
 * they are read only after POLLIN and written in PIPE_BUF pieces only after
 * POLLOUT, which never blocks on a pipe and never for long on anything else.
 */
#include "shim/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yajl/yajl_tree.h>

static int stream_open(struct shim *s, yajl_val stdio, const char *kind, int *out,
		       struct kv_err **err)
{
	*out = -1;
	const char *tok = kv_jstr(stdio, kind);
	if (!tok)
		return 0;
	int fd = kv_agent_stream_open(s->addr, tok, err);
	if (fd < 0)
		return kv_err_wrap(err, "attach %s", kind);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		close(fd);
		return kv_err_make(err, errno, "attach %s", kind);
	}
	*out = fd;
	return 0;
}

int shim_streams_open(struct shim *s, yajl_val result, struct kv_err **err)
{
	yajl_val stdio = kv_jget(result, "stdio");
	if (!stdio || !YAJL_IS_OBJECT(stdio))
		return kv_err_make(err, EPROTO, "the agent's answer has no stdio");
	if (stream_open(s, stdio, "pty", &s->s_pty, err) < 0 ||
	    stream_open(s, stdio, "stdin", &s->s_in, err) < 0 ||
	    stream_open(s, stdio, "stdout", &s->s_out, err) < 0 ||
	    stream_open(s, stdio, "stderr", &s->s_err, err) < 0)
		return -1;
	if (s->req.terminal && s->s_pty < 0)
		return kv_err_make(err, EPROTO, "the agent gave no terminal stream");
	return 0;
}

static void relay_add(struct shim *s, const char *name, int from, bool from_ours, int to,
		      bool to_ours)
{
	if (from < 0 || s->nrelays >= SHIM_RELAYS)
		return;
	/* Not zeroed: the buffer's pages stay untouched (no memory of ours)
	 * until data passes, and most containers write little. */
	struct relay *r = malloc(sizeof(*r));
	if (!r)
		abort();
	memset(r, 0, offsetof(struct relay, buf));
	r->name = name;
	r->from = from;
	r->to = to;
	r->from_ours = from_ours;
	r->to_ours = to_ours;
	r->release_fd = to_ours ? -1 : to;
	s->relays[s->nrelays++] = r;
}

void shim_relays_setup(struct shim *s)
{
	if (s->s_pty >= 0) {
		bool console = s->tty_slave >= 0;
		int local_in = console ? s->tty_slave : 0, local_out = console ? s->tty_slave : 1;
		relay_add(s, "terminal output", s->s_pty, true, local_out, false);
		relay_add(s, "terminal input", local_in, false, s->s_pty, true);
		return;
	}
	relay_add(s, "stdout", s->s_out, true, 1, false);
	relay_add(s, "stderr", s->s_err, true, 2, false);
	if (s->s_in >= 0) {
		relay_add(s, "stdin", 0, false, s->s_in, true);
		s->relays[s->nrelays - 1]->close_to_at_eof = true;
	}
}

size_t shim_relays_poll(struct shim *s, struct pollfd *pfd, size_t max, struct relay **owner,
			short *dir)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nrelays && n < max; i++) {
		struct relay *r = s->relays[i];
		if (r->done)
			continue;
		if (r->len == 0 && !r->eof && r->from >= 0) {
			pfd[n] = (struct pollfd){.fd = r->from, .events = POLLIN};
			owner[n] = r;
			dir[n++] = POLLIN;
		} else if (r->len > 0 && r->to >= 0) {
			pfd[n] = (struct pollfd){.fd = r->to, .events = POLLOUT};
			owner[n] = r;
			dir[n++] = POLLOUT;
		}
	}
	return n;
}

static int stdio_null = -1;

void shim_stdio_null_set(int fd)
{
	stdio_null = fd;
}

int shim_stdio_null(void)
{
	if (stdio_null < 0)
		stdio_null = open("/dev/null", O_RDWR | O_CLOEXEC);
	return stdio_null;
}

void shim_stdio_release(int fd)
{
	int null = shim_stdio_null();
	if (null < 0 || (null != fd && dup2(null, fd) < 0))
		kv_warn("let go of fd %d: %s", fd, strerror(errno));
}

static void relay_finish(struct relay *r)
{
	r->done = true;
	/* The stream socket itself is closed with the others in shim_relays_free. */
	if (r->close_to_at_eof && r->to >= 0)
		shutdown(r->to, SHUT_WR);
	/* The guest closed its end: so do we, as the container's own fd would
	 * be the only holder with runc (a caller reading to EOF goes on). */
	if (r->release_fd >= 0)
		shim_stdio_release(r->release_fd);
	r->release_fd = -1;
}

static void relay_read(struct relay *r)
{
	ssize_t n = r->from_ours ? recv(r->from, r->buf, sizeof(r->buf), MSG_DONTWAIT)
				 : read(r->from, r->buf, sizeof(r->buf));
	if (n > 0) {
		r->off = 0;
		r->len = (size_t)n;
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EOF, or EIO from a pty whose other side is gone. */
	r->eof = true;
}

static void relay_write(struct relay *r)
{
	size_t chunk = r->to_ours ? r->len : (r->len < PIPE_BUF ? r->len : PIPE_BUF);
	ssize_t n = r->to_ours ? send(r->to, r->buf + r->off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
			       : write(r->to, r->buf + r->off, chunk);
	if (n > 0) {
		r->off += (size_t)n;
		r->len -= (size_t)n;
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* The reader is gone: drop what comes, so the guest never blocks on it. */
	kv_debug("%s: write: %s; discarding the rest", r->name, strerror(errno));
	r->len = 0;
	r->to = -1;
}

void shim_relay_step(struct relay *r, bool can_read, bool can_write)
{
	if (can_read && r->len == 0 && !r->eof)
		relay_read(r);
	if (r->len > 0 && r->to < 0)
		r->len = 0; /* discarding */
	if ((can_write || r->to_ours) && r->len > 0 && r->to >= 0)
		relay_write(r);
	if (r->eof && r->len == 0)
		relay_finish(r);
}

bool shim_outputs_done(const struct shim *s)
{
	for (size_t i = 0; i < s->nrelays; i++) {
		const struct relay *r = s->relays[i];
		/* Output is whatever comes from one of our sockets. */
		if (r->from_ours && !r->done)
			return false;
	}
	return true;
}

void shim_relays_free(struct shim *s)
{
	for (size_t i = 0; i < s->nrelays; i++)
		free(s->relays[i]);
	s->nrelays = 0;
	int *fds[] = {&s->s_in, &s->s_out, &s->s_err, &s->s_pty, &s->tty_slave};
	for (size_t i = 0; i < KV_ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}
