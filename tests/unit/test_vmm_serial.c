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

/* serial_save/serial_restore (snapshots): the same state, the same behaviour after. */
static void test_state_round_trip(void)
{
	struct serial a, b;
	serial_init(&a, (struct irq_sink){irq, NULL}, 4, capture, NULL);
	/* Every register off its reset value, a FIFO that wraps, a THRE interrupt pending. */
	wr(&a, UART_LCR, UART_LCR_DLAB | 0x03);
	wr(&a, UART_DLL, 0x01);
	wr(&a, UART_DLM, 0x02);
	wr(&a, UART_LCR, 0x1b);
	wr(&a, UART_FCR, UART_FCR_ENABLE_FIFO);
	wr(&a, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
	wr(&a, UART_SCR, 0x5a);
	uint8_t bytes[SERIAL_FIFO_SIZE];
	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = 'A' + i % 26;
	serial_rx_push(&a, bytes, 60);
	for (unsigned i = 0; i < 50; i++)
		rd(&a, UART_RX);
	serial_rx_push(&a, bytes + 7, 20);
	wr(&a, UART_IER, UART_IER_RDI | UART_IER_THRI);

	struct serial_state st, again;
	serial_save(&a, &st);
	is_int(st.rx_head, 50, "saved: the FIFO's head");
	is_int(st.rx_len, 30, "saved: the FIFO's length (wrapped)");
	ok(st.irq_high && st.thri_pending, "saved: the interrupt condition and THRE");
	struct kv_err *err = NULL;
	ok(serial_state_check(&st, &err) == 0, "a saved state passes serial_state_check");
	kv_err_free(err);
	err = NULL;

	serial_init(&b, (struct irq_sink){irq, NULL}, 4, capture, NULL);
	unsigned before = irqs;
	serial_restore(&b, &st);
	is_int(irqs, before, "restore raises no interrupt (the restored irqchip holds it)");
	serial_save(&b, &again);
	ok(memcmp(&st, &again, sizeof(st)) == 0, "save, restore, save: the same state");

	bool same = true;
	static const unsigned regs[] = {UART_IER, UART_IIR, UART_LCR, UART_MCR,
					UART_LSR, UART_MSR, UART_SCR};
	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		same &= rd(&a, regs[i]) == rd(&b, regs[i]);
	ok(same, "restored: every register reads as the original's");
	same = true;
	for (unsigned i = 0; i < 31; i++)
		same &= rd(&a, UART_RX) == rd(&b, UART_RX);
	ok(same, "restored: the FIFO gives the same bytes in the same order");
	wr(&a, UART_LCR, UART_LCR_DLAB);
	wr(&b, UART_LCR, UART_LCR_DLAB);
	ok(rd(&a, UART_DLL) == rd(&b, UART_DLL) && rd(&a, UART_DLM) == rd(&b, UART_DLM) &&
	       rd(&b, UART_DLL) == 0x01 && rd(&b, UART_DLM) == 0x02,
	   "restored: the divisor latch");

	/* What no UART could have saved is refused (snapshot files are untrusted). */
	struct serial_state bad = st;
	bad.ier = 0x10;
	ok(serial_state_check(&bad, &err) < 0 && strstr(err->msg, "serial"),
	   "check: IER bits the UART does not have");
	kv_err_free(err);
	err = NULL;
	bad = st;
	bad.rx_len = SERIAL_FIFO_SIZE + 1;
	ok(serial_state_check(&bad, NULL) < 0, "check: a FIFO longer than the UART's");
	bad = st;
	bad.rx_head = SERIAL_FIFO_SIZE;
	ok(serial_state_check(&bad, NULL) < 0, "check: the FIFO's head outside it");
	bad = st;
	bad.reserved2 = 1;
	ok(serial_state_check(&bad, NULL) < 0, "check: reserved bytes not zero");
	serial_destroy(&a);
	serial_destroy(&b);
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
	test_state_round_trip();
	return tap_done();
}
