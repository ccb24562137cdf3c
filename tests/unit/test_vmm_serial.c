/* SPDX-License-Identifier: Apache-2.0 */
/* The 8250 as Linux's driver probes and uses it. */
#include <string.h>

#include "tap.h"
#include "vmm/serial.h"

static char out[256];
static size_t out_len;
static unsigned irqs;

static void capture(void *ctx, const uint8_t *buf, size_t len)
{
	memcpy(out + out_len, buf, len);
	out_len += len;
}

static void irq(void *ctx, unsigned gsi)
{
	if (gsi == 4)
		irqs++;
}

static uint8_t rd(struct serial *s, unsigned off)
{
	uint8_t v;
	serial_bus_read(s, off, &v, 1);
	return v;
}

static void wr(struct serial *s, unsigned off, uint8_t v)
{
	serial_bus_write(s, off, &v, 1);
}

int main(void)
{
	struct serial s;
	serial_init(&s, (struct irq_sink){irq, NULL}, 4, capture, NULL);

	/* autoconfig: IER existence test, scratch, FIFO, loopback. */
	wr(&s, UART_IER, 0);
	is_int(rd(&s, UART_IER), 0, "IER reads back 0");
	wr(&s, UART_IER, 0x0f);
	is_int(rd(&s, UART_IER), 0x0f, "IER reads back 0x0f");
	wr(&s, UART_IER, 0xff);
	is_int(rd(&s, UART_IER), 0x0f, "IER keeps only the 4 defined bits");
	wr(&s, UART_IER, 0);
	wr(&s, UART_SCR, 0xa5);
	is_int(rd(&s, UART_SCR), 0xa5, "scratch register");
	is_int(rd(&s, UART_IIR) & 0xc0, 0, "IIR: FIFO bits off before FCR");
	wr(&s, UART_FCR, UART_FCR_ENABLE_FIFO);
	is_int(rd(&s, UART_IIR) & 0xc0, 0xc0, "IIR: FIFO bits on (16550A)");
	wr(&s, UART_MCR, UART_MCR_LOOP | 0x0a);
	is_int(rd(&s, UART_MSR) & 0xf0, 0x90, "loopback: RTS->CTS, OUT2->DCD (0x90)");
	wr(&s, UART_TX, 'L');
	ok(rd(&s, UART_LSR) & UART_LSR_DR, "loopback: THR byte arrives in RBR");
	is_int(rd(&s, UART_RX), 'L', "loopback: byte read back");
	is_int(out_len, 0, "loopback: nothing sent out");
	wr(&s, UART_MCR, UART_MCR_OUT2);

	/* Divisor latch. */
	wr(&s, UART_LCR, UART_LCR_DLAB | 3);
	wr(&s, UART_DLL, 1);
	wr(&s, UART_DLM, 0);
	is_int(rd(&s, UART_DLL), 1, "DLAB: divisor low");
	wr(&s, UART_LCR, 3);
	is_int(rd(&s, UART_IER), 0, "DLAB off: IER again");

	/* Transmit. (The IER test above raised THRE once: start counting here.) */
	(void)rd(&s, UART_IIR);
	irqs = 0;
	ok((rd(&s, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT)) == 0x60, "LSR: THR empty");
	wr(&s, UART_TX, 'h');
	wr(&s, UART_TX, 'i');
	ok(out_len == 2 && memcmp(out, "hi", 2) == 0, "THR bytes reach the console");
	is_int(irqs, 0, "no interrupt with IER 0");

	/* THRE interrupt: raised when THRI is enabled with THR empty (UART_BUG_THRE test). */
	wr(&s, UART_IER, UART_IER_THRI);
	is_int(irqs, 1, "THRI enabled: interrupt");
	is_int(rd(&s, UART_IIR) & 0x0f, UART_IIR_THRI, "IIR: THRE pending");
	is_int(rd(&s, UART_IIR) & 0x0f, UART_IIR_NO_INT, "IIR read acknowledged THRE");
	wr(&s, UART_IER, 0);
	wr(&s, UART_IER, UART_IER_THRI);
	is_int(rd(&s, UART_IIR) & 0x0f, UART_IIR_THRI, "THRE re-asserted on THRI 0->1");
	wr(&s, UART_TX, '!');
	is_int(irqs, 3, "a write with THRI on raises again once sent");
	wr(&s, UART_IER, 0);
	(void)rd(&s, UART_IIR);

	/* Receive. */
	unsigned before = irqs;
	wr(&s, UART_IER, UART_IER_RDI);
	is_int(serial_rx_push(&s, (const uint8_t *)"ab", 2), 2, "rx: bytes taken");
	is_int(irqs, before + 1, "rx: interrupt");
	is_int(rd(&s, UART_IIR) & 0x0f, UART_IIR_RDI, "IIR: data available");
	ok(rd(&s, UART_LSR) & UART_LSR_DR, "LSR: data ready");
	is_int(rd(&s, UART_RX), 'a', "rx: first byte");
	is_int(rd(&s, UART_RX), 'b', "rx: second byte");
	ok(!(rd(&s, UART_LSR) & UART_LSR_DR), "LSR: drained");
	is_int(rd(&s, UART_IIR) & 0x0f, UART_IIR_NO_INT, "IIR: nothing pending");
	uint8_t many[100];
	memset(many, 'x', sizeof(many));
	is_int(serial_rx_push(&s, many, sizeof(many)), SERIAL_FIFO_SIZE, "rx: FIFO bounds input");
	is_int(serial_rx_space(&s), 0, "rx: FIFO full");
	wr(&s, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
	is_int(serial_rx_space(&s), SERIAL_FIFO_SIZE, "FCR clears the receiver");
	is_int(rd(&s, UART_RX), 0, "empty RBR reads 0");

	/* Bad accesses are ignored. */
	uint32_t wide = 0;
	serial_bus_read(&s, 0, &wide, 4);
	is_int(wide, 0xffffffff, "4-byte read: all-ones");
	uint8_t v = 0;
	serial_bus_read(&s, 9, &v, 1);
	is_int(v, 0xff, "offset past the registers: all-ones");
	serial_destroy(&s);
	return tap_done();
}
