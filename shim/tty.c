/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Terminals. The guest process's pty lives in the guest; on the host:
 *  - with --console-socket: a host pty whose master goes to the socket
 *    (SCM_RIGHTS, with the pty's name as the message, as runc sends it) and
 *    whose slave the shim keeps, raw, as its controlling terminal, so that a
 *    resize of the master reaches us as SIGWINCH and goes on to the guest;
 *  - without (kvrun run in the foreground): our own stdin/stdout, put in raw
 *    mode when it is a terminal and restored at exit.
 */
#include "shim/internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

static struct termios saved_termios;

static int send_master(const char *sock_path, int master, const char *name, struct kv_err **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return kv_err_make(err, ENAMETOOLONG, "console socket %s", sock_path);
	strcpy(sa.sun_path, sock_path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "console socket: socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kv_err_make(err, errno, "connect to console socket %s", sock_path);
	if (kv_send_fds(fd, name, strlen(name), &master, 1) < 0)
		return kv_err_make(err, errno, "send the terminal to console socket %s", sock_path);
	return 0;
}

static int console_socket_setup(struct shim *s, struct kv_err **err)
{
	/* kvrun's /dev/ptmx (opened before we joined the container's cgroup,
	 * whose device policy may deny it), else our own. */
	cleanup_close int master =
	    s->ptmx_fd >= 0 ? steal_fd(s->ptmx_fd) : posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		return kv_err_make(err, errno, "open a pty");
	char name[128];
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return kv_err_make(err, errno, "ptsname");
	/* The slave through the master (no path lookup, so no device policy),
	 * by name on kernels before 4.13. */
	cleanup_close int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return kv_err_make(err, errno, "open %s", name);
	/* The guest's pty does the line discipline; ours passes bytes as they are. */
	struct termios t;
	if (tcgetattr(slave, &t) == 0) {
		cfmakeraw(&t);
		(void)tcsetattr(slave, TCSANOW, &t);
	}
	/* As our controlling terminal, a resize of the master signals us. */
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		kv_warn("%s: TIOCSCTTY: %s (window size changes will not be forwarded)", name,
			strerror(errno));
	if (send_master(s->req.console_socket, master, name, err) < 0)
		return -1;
	s->tty_slave = steal_fd(slave);
	/* The terminal is the container's stdio now: what our caller gave us
	 * as 0-2 (containerd's or a $(...)'s pipes) must see EOF when it exits,
	 * as it does with runc, whose create leaves nothing holding them. */
	for (int fd = 0; fd < 3; fd++)
		shim_stdio_release(fd);
	return 0;
}

int shim_console_setup(struct shim *s, struct kv_err **err)
{
	if (!s->req.terminal)
		return 0;
	if (s->req.console_socket)
		return console_socket_setup(s, err);
	if (isatty(0) && tcgetattr(0, &saved_termios) == 0) {
		struct termios t = saved_termios;
		cfmakeraw(&t);
		if (tcsetattr(0, TCSANOW, &t) == 0)
			s->tty_restore = true;
	}
	return 0;
}

void shim_tty_restore(struct shim *s)
{
	if (s->tty_restore)
		(void)tcsetattr(0, TCSANOW, &saved_termios);
	s->tty_restore = false;
}

void shim_tty_resize(struct shim *s)
{
	int fd = s->tty_slave >= 0 ? s->tty_slave : (s->req.terminal && isatty(0) ? 0 : -1);
	struct winsize ws;
	if (fd < 0 || !s->agent || ioctl(fd, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
		return;
	cleanup_msg struct kv_msg resp = {0};
	cleanup_err struct kv_err *e = NULL;
	cleanup_free char *p =
	    kv_req_resize(s->req.container, s->req.exec_id, ws.ws_row, ws.ws_col, &e);
	if (!p || kv_agent_client_call(s->agent, KV_OP_RESIZE, p, &resp, &e) < 0)
		kv_debug("resize: %s", e->msg);
}
