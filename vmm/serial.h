/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An 8250/16550A UART as a pure register state machine: the bus calls
 * serial_bus_read/write, transmitted bytes go to an output callback, input
 * is pushed with serial_rx_push, and interrupts go to an irq_sink (edge on
 * every rise of the interrupt condition, as the ISA line would give).
 * Thread-safe: vCPU threads and the event loop may call it concurrently.
 */
#ifndef KV_VMM_SERIAL_H
#define KV_VMM_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/bus.h"

#define SERIAL_FIFO_SIZE 64
#define SERIAL_NR_REGS	 8

/* Register offsets (DLAB=0 unless noted). */
#define UART_RX	 0 /* in: receive buffer */
#define UART_TX	 0 /* out: transmit holding */
#define UART_DLL 0 /* DLAB=1: divisor latch low */
#define UART_IER 1
#define UART_DLM 1 /* DLAB=1: divisor latch high */
#define UART_IIR 2 /* in */
#define UART_FCR 2 /* out */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI	     0x01
#define UART_IER_THRI	     0x02
#define UART_IER_RLSI	     0x04
#define UART_IER_MSI	     0x08
#define UART_IIR_NO_INT	     0x01
#define UART_IIR_MSI	     0x00
#define UART_IIR_THRI	     0x02
#define UART_IIR_RDI	     0x04
#define UART_IIR_FIFO_ON     0xc0
#define UART_FCR_ENABLE_FIFO 0x01
#define UART_FCR_CLEAR_RCVR  0x02
#define UART_LCR_DLAB	     0x80
#define UART_MCR_DTR	     0x01
#define UART_MCR_RTS	     0x02
#define UART_MCR_OUT1	     0x04
#define UART_MCR_OUT2	     0x08
#define UART_MCR_LOOP	     0x10
#define UART_LSR_DR	     0x01
#define UART_LSR_THRE	     0x20
#define UART_LSR_TEMT	     0x40
#define UART_MSR_CTS	     0x10
#define UART_MSR_DSR	     0x20
#define UART_MSR_RI	     0x40
#define UART_MSR_DCD	     0x80

typedef void (*serial_out_fn)(void *ctx, const uint8_t *buf, size_t len);

struct serial {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
	uint8_t rx[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_len;
	bool thri_pending; /* THR empty interrupt not yet acknowledged */
	bool irq_high;	   /* the interrupt condition, as last computed */
	struct irq_sink irq;
	unsigned gsi;
	serial_out_fn out;
	void *out_ctx;
	void (*rx_space)(void *ctx); /* called when the guest drained the FIFO */
	void *rx_space_ctx;
};

void serial_init(struct serial *s, struct irq_sink irq, unsigned gsi, serial_out_fn out,
		 void *out_ctx);
void serial_destroy(struct serial *s);
/* bus_dev callbacks (ctx = struct serial *), offsets 0..7, 1-byte accesses. */
void serial_bus_read(void *ctx, uint64_t off, void *data, unsigned len);
void serial_bus_write(void *ctx, uint64_t off, const void *data, unsigned len);
struct bus_dev serial_bus_dev(struct serial *s, uint64_t port);
/* Queue input for the guest; returns how many bytes were taken (FIFO space). */
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len);
size_t serial_rx_space(struct serial *s);

/*
 * Snapshot state: the registers and the receive FIFO, in the layout of a
 * snapshot's "serial" section (snapshot.h; 88 bytes, little-endian, the
 * reserved fields zero). The irq sink, output and rx_space callbacks are
 * the restoring VMM's own.
 */
struct serial_state {
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
	uint8_t thri_pending, irq_high, reserved[2];
	uint32_t rx_head, rx_len;
	uint8_t rx[SERIAL_FIFO_SIZE];
	uint32_t reserved2;
};
void serial_save(struct serial *s, struct serial_state *out);
/* Whether a state (from an untrusted file) is one serial_save() could give. */
int serial_state_check(const struct serial_state *in, struct kv_err **err) KV_WUR;
/* in must have passed serial_state_check(). Raises no interrupt (see serial.c). */
void serial_restore(struct serial *s, const struct serial_state *in);

#endif
