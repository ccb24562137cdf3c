/* SPDX-License-Identifier: Apache-2.0 */
/* Console backends for the 8250. */
#include "vmm/console.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "vmm/evloop.h"

#define CONSOLE_READ_MAX SERIAL_FIFO_SIZE

static void console_tty_raw(struct console *c, int fd)
{
	if (!isatty(fd) || tcgetattr(fd, &c->saved) < 0)
		return;
	struct termios t = c->saved;
	/* Characters go to the guest as typed; ^C still reaches the VMM. */
	t.c_lflag &= ~(ICANON | ECHO);
	t.c_iflag &= ~(ICRNL);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t) == 0)
		c->tty_saved = true;
}

static int console_pty_open(struct console *c, struct kv_err **err)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return kv_err_make(err, errno, "console: posix_openpt");
	if (grantpt(fd) < 0 || unlockpt(fd) < 0) {
		close(fd);
		return kv_err_make(err, errno, "console: unlockpt");
	}
	char name[128];
	if (ptsname_r(fd, name, sizeof(name)) != 0) {
		close(fd);
		return kv_err_make(err, errno, "console: ptsname");
	}
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		(void)tcsetattr(fd, TCSANOW, &t);
	}
	/* Hold the other side open ourselves: with no slave open, the master
	 * reports HUP/EIO, and input would stop before a user ever attached. */
	c->pty_slave_fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	c->pty_path = kv_strdup(name);
	c->out_fd = c->in_fd = fd;
	c->close_out = true;
	fprintf(stderr, "kvrun-vmm: console on %s\n", name);
	return 0;
}

static int console_path_open(struct console *c, const char *path, struct kv_err **err)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
		int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return kv_err_make(err, errno, "console: open %s", path);
		c->out_fd = c->in_fd = fd;
		c->close_out = true;
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return kv_err_make(err, errno, "console: open %s", path);
	c->out_fd = fd;
	c->close_out = true;
	c->is_file = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	return 0;
}

void console_set_max(struct console *c, uint64_t max)
{
	c->max = c->is_file ? max : 0;
}

int console_open(struct console *c, enum vmm_console_kind kind, const char *path,
		 struct kv_err **err)
{
	memset(c, 0, sizeof(*c));
	c->out_fd = c->in_fd = c->pty_slave_fd = -1;
	switch (kind) {
	case VMM_CONSOLE_STDIO:
		c->out_fd = STDOUT_FILENO;
		c->in_fd = STDIN_FILENO;
		return 0;
	case VMM_CONSOLE_FILE: return console_path_open(c, path, err);
	case VMM_CONSOLE_PTY: return console_pty_open(c, err);
	default: return 0;
	}
}

static void console_write(struct console *c, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t r = write(c->out_fd, buf, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return; /* EAGAIN on a pty nobody reads, EPIPE, ...: drop */
		buf += r;
		len -= r;
	}
}

__attribute__((format(printf, 2, 3))) static void console_note(struct console *c, const char *fmt,
							       ...)
{
	char line[128];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (k > 0)
		console_write(c, (const uint8_t *)line,
			      (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
}

/*
 * The guest is hostile: a console file must not fill the host's disk. Past
 * the cap, output is dropped (counted) rather than rotated: rotating takes
 * open and rename, which the confined VMM does not have, and the head of
 * the log (the boot) is what the runtime shows when a VM fails to start.
 */
void console_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct console *c = ctx;
	if (c->out_fd < 0)
		return;
	c->bytes_out += len;
	if (c->max) {
		size_t room = c->written < c->max ? c->max - c->written : 0;
		size_t keep = len < room ? len : room;
		c->written += keep;
		console_write(c, buf, keep);
		if (keep == len)
			return;
		if (!c->dropped)
			console_note(c,
				     "\n[kvrun-vmm: console output past %llu bytes is dropped "
				     "(--console-max)]\n",
				     (unsigned long long)c->max);
		c->dropped += len - keep;
		return;
	}
	console_write(c, buf, len);
}

static void console_input_ready(void *ctx, uint32_t events)
{
	struct console *c = ctx;
	size_t space = serial_rx_space(c->serial);
	if (space == 0) {
		/* The guest has not drained the FIFO: wait for serial's rx_space. */
		c->in_throttled = true;
		(void)evloop_mod(c->loop, c->in_fd, 0);
		return;
	}
	uint8_t buf[CONSOLE_READ_MAX];
	ssize_t r = read(c->in_fd, buf, space < sizeof(buf) ? space : sizeof(buf));
	if (r > 0) {
		serial_rx_push(c->serial, buf, r);
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EOF or error (a pty whose other side closed): stop reading. */
	(void)evloop_del(c->loop, c->in_fd);
	c->in_registered = false;
}

static void console_rx_space(void *ctx)
{
	struct console *c = ctx;
	if (c->in_throttled && c->in_registered) {
		c->in_throttled = false;
		(void)evloop_mod(c->loop, c->in_fd, EPOLLIN);
	}
}

int console_input_start(struct console *c, struct serial *s, struct evloop *loop,
			struct kv_err **err)
{
	c->serial = s;
	c->loop = loop;
	if (c->in_fd < 0)
		return 0;
	s->rx_space = console_rx_space;
	s->rx_space_ctx = c;
	if (evloop_add(loop, c->in_fd, EPOLLIN, console_input_ready, c) < 0) {
		/* A regular file or /dev/null on stdin cannot be polled: no input. */
		if (errno == EPERM)
			return 0;
		return kv_err_make(err, errno, "console: watch input");
	}
	c->in_registered = true;
	if (c->in_fd == STDIN_FILENO)
		console_tty_raw(c, STDIN_FILENO);
	return 0;
}

void console_close(struct console *c)
{
	if (c->tty_saved)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
	c->tty_saved = false;
	if (c->dropped && c->out_fd >= 0)
		console_note(c, "[kvrun-vmm: %llu bytes of console output dropped]\n",
			     (unsigned long long)c->dropped);
	c->dropped = 0;
	if (c->close_out && c->out_fd >= 0)
		close(c->out_fd);
	if (c->close_in && c->in_fd >= 0 && c->in_fd != c->out_fd)
		close(c->in_fd);
	if (c->pty_slave_fd >= 0)
		close(c->pty_slave_fd);
	c->out_fd = c->in_fd = c->pty_slave_fd = -1;
	free(c->pty_path);
	c->pty_path = NULL;
}
