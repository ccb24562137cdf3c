/* SPDX-License-Identifier: Apache-2.0 */
/* Console backends: a file, a pty (both ways through the event loop), none. */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
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

/* A hostile guest cannot fill the host's disk through a console file. */
static void test_cap(void)
{
	struct console c;
	struct kv_err *err = NULL;
	char path[] = "/tmp/kvrun-test-console-XXXXXX";
	int tfd = mkstemp(path);
	close(tfd);
	ok(console_open(&c, VMM_CONSOLE_FILE, path, &err) == 0, "capped file console opens");
	console_set_max(&c, 4096);
	uint8_t chunk[1000];
	memset(chunk, 'k', sizeof(chunk));
	for (int i = 0; i < 3000; i++) /* 3 MB of guest output */
		console_out(&c, chunk, sizeof(chunk));
	struct stat st;
	ok(stat(path, &st) == 0 && st.st_size < 4096 + 128, "capped: %lld bytes on disk",
	   (long long)st.st_size);
	console_close(&c);
	char *text = NULL;
	size_t len = 0;
	ok(kv_read_file(path, 1 << 20, &text, &len, NULL) == 0, "read back");
	ok(text && len > 4096 && len < 4096 + 256, "under the cap plus two lines: %zu bytes", len);
	ok(text && memchr(text, 'k', 4096) && text[4095] == 'k', "the first 4096 bytes kept");
	ok(text && strstr(text + 4096, "past 4096 bytes is dropped"), "a line says it is capped");
	ok(text && strstr(text + 4096, "[kvrun-vmm: 2995904 bytes of console output dropped]\n"),
	   "the count dropped, at close");
	free(text);
	unlink(path);

	ok(console_open(&c, VMM_CONSOLE_FILE, path, &err) == 0, "uncapped (0)");
	console_set_max(&c, 0);
	for (int i = 0; i < 10; i++)
		console_out(&c, chunk, sizeof(chunk));
	console_close(&c);
	ok(stat(path, &st) == 0 && st.st_size == 10000, "0: every byte kept");
	unlink(path);
	ok(console_open(&c, VMM_CONSOLE_FILE, "/dev/null", &err) == 0, "a character device");
	console_set_max(&c, 10);
	ok(c.max == 0, "no cap on a device (a tty)");
	console_close(&c);
}

int main(void)
{
	test_cap();
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
