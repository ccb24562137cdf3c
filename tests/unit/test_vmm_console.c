/* SPDX-License-Identifier: Apache-2.0 */
/* Console backends: a file, a pty (both ways through the event loop), none. */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <termios.h>

#include "tap.h"
#include "vmm/console.h"
#include "vmm/evloop.h"

static void quiet_irq(void *ctx, unsigned gsi) {}

static void *stop_after(void *p)
{
	usleep(50000);
	evloop_stop(p);
	return NULL;
}

int main(void)
{
	struct console c;
	struct kv_err *err = NULL;
	char path[] = "/tmp/kvrun-test-console-XXXXXX";
	int tfd = mkstemp(path);
	close(tfd);
	ok(console_open(&c, VMM_CONSOLE_FILE, path, &err) == 0, "file console opens");
	console_out(&c, (const uint8_t *)"boot: ", 6);
	console_out(&c, (const uint8_t *)"ok\n", 3);
	console_close(&c);
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	ok(read(fd, buf, sizeof(buf)) == 9 && strcmp(buf, "boot: ok\n") == 0,
	   "file holds the output");
	close(fd);
	ok(console_open(&c, VMM_CONSOLE_FILE, path, &err) == 0, "reopen truncates");
	console_close(&c);
	fd = open(path, O_RDONLY);
	ok(read(fd, buf, sizeof(buf)) == 0, "file is empty again");
	close(fd);
	unlink(path);
	ok(console_open(&c, VMM_CONSOLE_FILE, "/nonexistent/dir/c.log", &err) < 0 &&
	       strstr(err->msg, "/nonexistent/dir/c.log"),
	   "unwritable path: error names it");
	kv_err_free(err);
	err = NULL;

	ok(console_open(&c, VMM_CONSOLE_NONE, NULL, &err) == 0, "no console");
	console_out(&c, (const uint8_t *)"x", 1);
	console_close(&c);

	int r = console_open(&c, VMM_CONSOLE_PTY, NULL, &err);
	ok(r == 0 && c.pty_path, "pty console: %s", c.pty_path ? c.pty_path : "-");
	int slave = open(c.pty_path, O_RDWR | O_NOCTTY);
	struct termios t;
	tcgetattr(slave, &t);
	cfmakeraw(&t);
	tcsetattr(slave, TCSANOW, &t);
	console_out(&c, (const uint8_t *)"to-user", 7);
	struct pollfd p = {slave, POLLIN, 0};
	memset(buf, 0, sizeof(buf));
	ok(poll(&p, 1, 2000) == 1 && read(slave, buf, sizeof(buf)) == 7 &&
	       strcmp(buf, "to-user") == 0,
	   "pty: output reaches the other side");
	struct serial s;
	serial_init(&s, (struct irq_sink){quiet_irq, NULL}, 4, console_out, &c);
	struct evloop *loop = evloop_new(&err);
	ok(console_input_start(&c, &s, loop, &err) == 0, "pty: input watched");
	ok(write(slave, "hi", 2) == 2, "typed on the pty");
	pthread_t th;
	pthread_create(&th, NULL, stop_after, loop);
	ok(evloop_run(loop, &err) == 0, "loop ran");
	pthread_join(th, NULL);
	uint8_t v1 = 0, v2 = 0;
	serial_bus_read(&s, UART_RX, &v1, 1);
	serial_bus_read(&s, UART_RX, &v2, 1);
	ok(v1 == 'h' && v2 == 'i', "pty: input reaches the UART's receiver");
	close(slave);
	console_close(&c);
	evloop_free(loop);
	serial_destroy(&s);
	return tap_done();
}
