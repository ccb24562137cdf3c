/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stdio.c driven through fake data connections (socketpairs: the agent holds
 * one end, the test is the host at the other) and the pipes or pty a process
 * would hold: the token line, bytes each way, EOF each way, back-pressure
 * through the bounded relay buffer, a host that goes away, and the bound on
 * connections that never name a stream.
 */
#include "agent_fake.h"

#include <pty.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <termios.h>

static struct agent A;

/* A process with pipes (stdin when asked); the child's ends in fds[]. */
static struct proc *fake_proc(struct container *c, const char *exec_id, bool want_stdin, int fds[3])
{
	struct proc *p = fake_exec(c, exec_id);
	struct kv_err *err = NULL;
	fds[0] = fds[1] = fds[2] = -1;
	if (stdio_prepare(&A, p, want_stdin, false, fds, &err) < 0) {
		diag("stdio_prepare: %s", err->msg);
		exit(1);
	}
	if (fds[0] == A.devnull)
		fds[0] = -1;
	return p;
}

/* Connect a data connection and send `line`; the host's end is returned. */
static int data_connect(const char *line)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		diag("socketpair: %s", strerror(errno));
		exit(1);
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK); /* as accept4(SOCK_NONBLOCK) */
	stdio_data_accept(&A, sv[0]);
	if (line && send(sv[1], line, strlen(line), MSG_NOSIGNAL) < 0)
		diag("send: %s", strerror(errno));
	return sv[1];
}

/*
 * Read from fd what is there, running the agent meanwhile, until `want`
 * bytes came, EOF, or about a second passed with nothing to do (a pty moves
 * its bytes on a kernel worker: under load they can take a while). Returns
 * the count; *eof says whether the stream ended.
 */
static size_t host_read(int fd, char *buf, size_t want, bool *eof)
{
	size_t got = 0;
	*eof = false;
	for (int idle = 0; got < want && idle < 100;) {
		ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n == 0) {
			*eof = true;
			break;
		}
		if (n > 0) {
			got += n;
			idle = 0;
			continue;
		}
		idle += ev_poll(&A, 10) <= 0;
		conns_gc(&A);
		agent_gc(&A);
	}
	return got;
}

/* Attach with the token; true when the agent said OK. */
static int attach(const char *token)
{
	char line[KV_AGENT_TOKEN_LEN + 2];
	snprintf(line, sizeof(line), "%s\n", token);
	int fd = data_connect(line);
	char ok_line[3];
	bool eof;
	if (host_read(fd, ok_line, 3, &eof) != 3 || memcmp(ok_line, "OK\n", 3) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* ----------------------------------------------------------------- tokens */

static void test_tokens(struct container *c)
{
	int fds[3];
	struct proc *p = fake_proc(c, "tok", true, fds);
	bool hex = true, distinct = true;
	for (int k = 0; k < STREAM_NKINDS; k++) {
		if (k == STREAM_PTY) {
			ok(!p->streams[k], "tokens: no pty stream without a terminal");
			continue;
		}
		const char *t = p->streams[k]->token;
		hex &= strlen(t) == KV_AGENT_TOKEN_LEN &&
		       strspn(t, "0123456789abcdef") == KV_AGENT_TOKEN_LEN;
		for (int l = 0; l < k; l++)
			distinct &= strcmp(t, p->streams[l]->token) != 0;
	}
	ok(hex, "  each is %d lowercase hex digits", KV_AGENT_TOKEN_LEN);
	ok(distinct, "  and they differ");
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	stdio_result(p, j);
	kv_json_map_close(j);
	const char *text = "";
	size_t len;
	struct kv_err *err = NULL;
	if (kv_json_finish(j, &text, &len, &err) < 0)
		diag("stdio_result: %s", err->msg);
	kv_err_free(err);
	char eb[64];
	yajl_val v = yajl_tree_parse(text, eb, sizeof(eb));
	yajl_val st = kv_jget(v, "stdio");
	ok(st && strcmp(msg_str(st, "stdin"), p->streams[STREAM_STDIN]->token) == 0 &&
	       strcmp(msg_str(st, "stdout"), p->streams[STREAM_STDOUT]->token) == 0 &&
	       strcmp(msg_str(st, "stderr"), p->streams[STREAM_STDERR]->token) == 0 &&
	       !kv_jget(st, "pty"),
	   "  the result's stdio names stdin, stdout and stderr");
	yajl_tree_free(v);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

static void test_bad_tokens(struct container *c)
{
	static const char unknown[] = "ERR unknown or used token\n", bad[] = "ERR bad token line\n";
	char buf[64];
	bool eof;
	int fd = data_connect("0123456789abcdef0123456789abcdef\n");
	size_t n = host_read(fd, buf, sizeof(buf), &eof);
	ok(n == sizeof(unknown) - 1 && memcmp(buf, unknown, n) == 0 && eof,
	   "an unknown token is refused and the connection closed");
	close(fd);
	fd = data_connect("abc\n");
	n = host_read(fd, buf, sizeof(buf), &eof);
	ok(n == sizeof(bad) - 1 && memcmp(buf, bad, n) == 0 && eof,
	   "a short token line is refused");
	close(fd);
	fd = data_connect("0123456789abcdef0123456789abcdef0123\n");
	n = host_read(fd, buf, sizeof(buf), &eof);
	ok(n == sizeof(bad) - 1 && memcmp(buf, bad, n) == 0 && eof,
	   "a line longer than a token is refused");
	close(fd);
	fd = data_connect("0123456789abcdef");
	close(fd);
	fake_settle(&A);
	ok(!A.pending_data, "a connection that hangs up before its token is dropped");

	int fds[3];
	struct proc *p = fake_proc(c, "used", false, fds);
	int out = attach(p->streams[STREAM_STDOUT]->token);
	ok(out >= 0, "a token attaches once");
	char line[KV_AGENT_TOKEN_LEN + 2];
	snprintf(line, sizeof(line), "%s\n", p->streams[STREAM_STDOUT]->token);
	fd = data_connect(line);
	n = host_read(fd, buf, sizeof(buf), &eof);
	ok(n == sizeof(unknown) - 1 && memcmp(buf, unknown, n) == 0, "  not twice");
	close(fd);
	snprintf(line, sizeof(line), "%s\n", p->streams[STREAM_STDERR]->token);
	stdio_close(&A, p);
	fd = data_connect(line);
	n = host_read(fd, buf, sizeof(buf), &eof);
	ok(n == sizeof(unknown) - 1 && memcmp(buf, unknown, n) == 0,
	   "  nor once the process's stdio is closed");
	close(fd);
	n = host_read(out, buf, sizeof(buf), &eof);
	ok(n == 0 && eof, "  and the attached stream ends");
	close(out);
	for (int i = 1; i < 3; i++)
		close(fds[i]);
}

static void test_pending_bounded(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * STDIO_PENDING_MAX + 64) {
		skip("pending bound: RLIMIT_NOFILE %llu is too low",
		     (unsigned long long)rl.rlim_cur);
		return;
	}
	int hosts[STDIO_PENDING_MAX + 1];
	for (int i = 0; i <= STDIO_PENDING_MAX; i++)
		hosts[i] = data_connect(NULL);
	size_t n = 0;
	for (struct pending_data *pd = A.pending_data; pd; pd = pd->next)
		n++;
	is_int(n, STDIO_PENDING_MAX, "silent data connections: the agent keeps at most 256");
	char c;
	ok(recv(hosts[STDIO_PENDING_MAX], &c, 1, MSG_DONTWAIT) == 0,
	   "  the one over is closed at once");
	ok(recv(hosts[0], &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "  the others wait");
	for (int i = 0; i <= STDIO_PENDING_MAX; i++)
		close(hosts[i]);
	fake_settle(&A);
	ok(!A.pending_data, "  and are dropped when they hang up");
}

/* ------------------------------------------------------------------ bytes */

static void test_output(struct container *c)
{
	int fds[3];
	struct proc *p = fake_proc(c, "out", false, fds);
	ok(write(fds[1], "early\n", 6) == 6, "output: the process writes before the host attaches");
	fake_settle(&A);
	int out = attach(p->streams[STREAM_STDOUT]->token);
	int err = attach(p->streams[STREAM_STDERR]->token);
	ok(out >= 0 && err >= 0, "  stdout and stderr attach");
	char buf[64] = {0};
	bool eof;
	size_t n = host_read(out, buf, 6, &eof);
	ok(n == 6 && memcmp(buf, "early\n", 6) == 0, "  what waited in the pipe arrives");
	ok(write(fds[2], "oops\n", 5) == 5 && write(fds[1], "more\n", 5) == 5, "  more of each");
	n = host_read(err, buf, 5, &eof);
	ok(n == 5 && memcmp(buf, "oops\n", 5) == 0, "  stderr on its own connection");
	n = host_read(out, buf, 5, &eof);
	ok(n == 5 && memcmp(buf, "more\n", 5) == 0, "  stdout on its own");
	close(fds[1]);
	n = host_read(out, buf, sizeof(buf), &eof);
	ok(n == 0 && eof, "EOF: the process closes stdout, the host reads EOF");
	ok(recv(err, buf, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "  stderr stays open");
	ok(p->streams[STREAM_STDOUT]->end.fd < 0 && p->streams[STREAM_STDOUT]->conn.fd < 0,
	   "  the agent holds nothing of stdout");
	close(fds[2]);
	n = host_read(err, buf, sizeof(buf), &eof);
	ok(n == 0 && eof, "  then stderr ends too");
	close(out);
	close(err);
}

static void test_input(struct container *c)
{
	int fds[3];
	struct proc *p = fake_proc(c, "in", true, fds);
	int in = attach(p->streams[STREAM_STDIN]->token);
	ok(in >= 0, "input: stdin attaches");
	ok(send(in, "hello", 5, MSG_NOSIGNAL) == 5, "  the host writes");
	fake_settle(&A);
	char buf[16] = {0};
	ok(read(fds[0], buf, sizeof(buf)) == 5 && memcmp(buf, "hello", 5) == 0,
	   "  the process reads it");
	shutdown(in, SHUT_WR);
	fake_settle(&A);
	ok(read(fds[0], buf, sizeof(buf)) == 0, "  the host's half-close is the process's EOF");
	ok(p->streams[STREAM_STDIN]->end.fd < 0, "  the agent closed its end");
	close(in);
	fake_settle(&A);
	ok(fake_idle(&A), "  the host then closing the connection leaves the agent idle");
	for (int i = 0; i < 3; i++)
		close(fds[i]);

	p = fake_proc(c, "in2", true, fds);
	stdio_close_stdin(&A, p);
	ok(read(fds[0], buf, sizeof(buf)) == 0, "close_stdin before attach: EOF at once");
	for (int i = 0; i < 3; i++)
		close(fds[i]);

	p = fake_proc(c, "in3", true, fds);
	in = attach(p->streams[STREAM_STDIN]->token);
	ok(send(in, "last", 4, MSG_NOSIGNAL) == 4, "close_stdin after attach:");
	fake_settle(&A);
	stdio_close_stdin(&A, p);
	fake_settle(&A);
	memset(buf, 0, sizeof(buf));
	ok(read(fds[0], buf, sizeof(buf)) == 4 && strcmp(buf, "last") == 0,
	   "  what was sent arrives");
	ok(read(fds[0], buf, sizeof(buf)) == 0, "  then EOF");
	close(in);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

/* A host that stops reading: the agent stops reading the pipe; nothing is lost. */
static void test_backpressure(struct container *c)
{
	int fds[3];
	struct proc *p = fake_proc(c, "bp", false, fds);
	struct stream *s = p->streams[STREAM_STDOUT];
	int out = attach(s->token);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	static unsigned char chunk[4096];
	size_t written = 0;
	for (int round = 0; round < 64; round++) {
		for (;;) {
			for (size_t i = 0; i < sizeof(chunk); i++)
				chunk[i] =
				    (unsigned char)((written + i) * 7 + ((written + i) >> 12));
			ssize_t w = write(fds[1], chunk, sizeof(chunk));
			if (w <= 0)
				break;
			written += w;
		}
		fake_settle(&A);
	}
	ok(written > STDIO_RELAY_BUF, "back-pressure: the process wrote %zu bytes, then blocked",
	   written);
	ok(s->out.len <= STDIO_RELAY_BUF, "  the agent buffers at most one relay buffer");
	ok(!(s->end.events & EPOLLIN), "  and stops reading the pipe");
	ok(write(fds[1], chunk, sizeof(chunk)) < 0 && errno == EAGAIN, "  so the pipe stays full");
	close(fds[1]);
	fake_settle(&A);
	ok(fake_idle(&A), "  the process exiting meanwhile leaves the agent idle");
	size_t got = 0;
	bool eof = false, same = true;
	unsigned char buf[8192];
	while (!eof) {
		size_t n = host_read(out, (char *)buf, sizeof(buf), &eof);
		for (size_t i = 0; i < n; i++)
			same &= buf[i] == (unsigned char)((got + i) * 7 + ((got + i) >> 12));
		got += n;
		if (n == 0 && !eof)
			break;
	}
	is_int(got, written, "  once the host reads, every byte arrives");
	ok(same && eof, "  in order, then EOF");
	close(out);
	close(fds[2]);
}

/* The host goes away: the process's next write fails as on a closed pipe. */
static void test_host_gone(struct container *c)
{
	int fds[3];
	struct proc *p = fake_proc(c, "gone", false, fds);
	int out = attach(p->streams[STREAM_STDOUT]->token);
	close(out);
	fake_settle(&A);
	ok(fake_idle(&A), "host gone: the agent stays idle while the process is silent");
	ok(write(fds[1], "x", 1) == 1, "  the process writes");
	fake_settle(&A);
	ok(write(fds[1], "y", 1) < 0 && errno == EPIPE, "  its next write gets EPIPE");
	ok(p->streams[STREAM_STDOUT]->end.fd < 0 && p->streams[STREAM_STDOUT]->conn.fd < 0,
	   "  the agent closed both ends");
	for (int i = 1; i < 3; i++)
		close(fds[i]);
}

/* ------------------------------------------------------------------- pty */

static void test_pty(struct container *c)
{
	struct proc *p = fake_exec(c, "pty");
	struct kv_err *err = NULL;
	int fds[3] = {-1, -1, -1};
	ok(stdio_prepare(&A, p, true, true, fds, &err) == 0 && p->streams[STREAM_PTY] &&
	       !p->streams[STREAM_STDOUT],
	   "pty: one stream");
	ok(stdio_resize(p, 24, 80, &err) < 0 && err && err->errnum == ENOTTY,
	   "  resize before the master arrives: ENOTTY");
	kv_err_free(err);
	err = NULL;
	int master, slave;
	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		skip("openpty: %s", strerror(errno));
		return;
	}
	struct termios t;
	tcgetattr(slave, &t);
	cfmakeraw(&t);
	tcsetattr(slave, TCSANOW, &t);
	int host = attach(p->streams[STREAM_PTY]->token);
	ok(host >= 0, "  the host attaches before the master is there");
	stdio_set_pty(&A, p, master);
	int extra = dup(slave);
	stdio_set_pty(&A, p, extra);
	ok(fd_closed(extra), "  a second master is closed, not used");
	ok(send(host, "ls\n", 3, MSG_NOSIGNAL) == 3, "  the host types");
	fake_settle(&A);
	char buf[16] = {0};
	ok(read(slave, buf, sizeof(buf)) == 3 && memcmp(buf, "ls\n", 3) == 0,
	   "  the terminal reads it");
	ok(write(slave, "out", 3) == 3, "  the process writes");
	bool eof;
	ok(host_read(host, buf, 3, &eof) == 3 && memcmp(buf, "out", 3) == 0, "  the host reads it");
	ok(stdio_resize(p, 40, 100, &err) == 0, "  resize");
	struct winsize ws = {0};
	ok(ioctl(slave, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 40 && ws.ws_col == 100,
	   "  the terminal has the new size");
	kv_err_free(err);
	close(slave);
	ok(host_read(host, buf, sizeof(buf), &eof) == 0 && eof,
	   "  the terminal's last close ends the host's stream");
	close(host);
}

int main(void)
{
	fake_agent_init(&A);
	struct container *c = fake_container(&A, "s1");
	test_tokens(c);
	test_bad_tokens(c);
	test_pending_bounded();
	test_output(c);
	test_input(c);
	test_backpressure(c);
	test_host_gone(c);
	test_pty(c);
	fake_agent_fini(&A);
	return tap_done();
}
