/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recvtty: the receiving end of --console-socket for tests (runc's
 * tests/cmd/recvtty, cut down). Listens on SOCKET, takes one terminal
 * master (SCM_RIGHTS), optionally resizes it and types into it, then copies
 * what the terminal prints to stdout until the other side is gone.
 *
 *   recvtty [--resize ROWSxCOLS] [--input TEXT] [--hold SECONDS] SOCKET
 *
 * --hold keeps the master open (and unread) that long before copying.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

static int listen_on(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		return -1;
	return fd;
}

static int recv_fd(int sock)
{
	char name[256], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) < 0)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	const char *resize = NULL, *input = NULL;
	int hold = 0, i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--resize") == 0)
			resize = argv[i + 1];
		else if (strcmp(argv[i], "--input") == 0)
			input = argv[i + 1];
		else if (strcmp(argv[i], "--hold") == 0)
			hold = atoi(argv[i + 1]);
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: recvtty [--resize RxC] [--input TEXT] [--hold S] SOCKET\n");
		return 2;
	}
	int lfd = listen_on(argv[i]);
	int conn = lfd < 0 ? -1 : accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int master = conn < 0 ? -1 : recv_fd(conn);
	if (master < 0) {
		fprintf(stderr, "recvtty: %s: %s\n", argv[i], strerror(errno));
		return 1;
	}
	unsigned rows, cols;
	if (resize && sscanf(resize, "%ux%u", &rows, &cols) == 2) {
		struct winsize ws = {.ws_row = rows, .ws_col = cols};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	if (input && write(master, input, strlen(input)) < 0)
		return 1;
	sleep(hold);
	char buf[4096];
	ssize_t n;
	/* Unbuffered: a test reads the file while the terminal is still open. */
	while ((n = read(master, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && write(1, buf, n) != n)
			return 1;
	return 0;
}
