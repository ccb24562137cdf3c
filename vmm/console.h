/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the 8250's bytes go and where its input comes from: stdout/stdin,
 * a file (a tty path is also read), or a new pty. Output never blocks a
 * vCPU on a pty nobody reads (bytes are dropped instead).
 */
#ifndef KV_VMM_CONSOLE_H
#define KV_VMM_CONSOLE_H

#include <stdbool.h>
#include <termios.h>

#include "lib/kv.h"
#include "vmm/serial.h"
#include "vmm/vmm.h"

struct evloop;

struct console {
	int out_fd, in_fd;
	bool close_out, close_in;
	bool tty_saved;
	struct termios saved;
	char *pty_path;
	int pty_slave_fd; /* held open so the master never sees a hang-up */
	struct serial *serial;
	struct evloop *loop;
	bool in_registered, in_throttled;
	uint64_t bytes_out;
	/*
	 * A console file's cap (console_set_max): past `max` bytes written the
	 * guest's output is dropped and counted; one line says so when it
	 * starts, another gives the count at close. 0: no cap (ttys, pipes).
	 */
	uint64_t max, written, dropped;
	bool is_file;
};

int console_open(struct console *c, enum vmm_console_kind kind, const char *path,
		 struct kv_err **err) KV_WUR;
/* Cap a console file (not a tty, stdout or a pty) at max bytes; 0: none. */
void console_set_max(struct console *c, uint64_t max);
/* serial_out_fn: ctx = struct console *. */
void console_out(void *ctx, const uint8_t *buf, size_t len);
/* Feed input into the UART from the event loop. */
int console_input_start(struct console *c, struct serial *s, struct evloop *loop,
			struct kv_err **err) KV_WUR;
void console_close(struct console *c);

#endif
