/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 8250/16550A UART. Transmission is instantaneous (THR is always empty
 * again by the time the guest looks), which is what Linux's 8250 driver
 * copes with best. The guest-visible behaviours the driver probes for:
 *  - IER keeps what was written (existence test), SCR is a scratch byte;
 *  - FCR bit 0 turns IIR bits 7:6 on (the driver then says "16550A");
 *  - loopback (MCR bit 4) maps RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD and
 *    loops THR back into the receiver;
 *  - THRE is re-asserted whenever IER.THRI goes from 0 to 1 with THR empty
 *    (else the driver flags UART_BUG_THRE and polls on a timer).
 */
#include "vmm/serial.h"

#include <string.h>

#define UART_IER_MASK 0x0f
#define UART_MCR_MASK 0x1f

static uint8_t serial_iir_compute(const struct serial *s)
{
	uint8_t fifo = (s->fcr & UART_FCR_ENABLE_FIFO) ? UART_IIR_FIFO_ON : 0;
	if ((s->ier & UART_IER_RDI) && s->rx_len)
		return fifo | UART_IIR_RDI;
	if ((s->ier & UART_IER_THRI) && s->thri_pending)
		return fifo | UART_IIR_THRI;
	if ((s->ier & UART_IER_MSI) && (s->msr & 0x0f))
		return fifo | UART_IIR_MSI;
	return fifo | UART_IIR_NO_INT;
}

/* Raise an edge when the interrupt condition rises. */
static void serial_irq_update(struct serial *s)
{
	bool high = !(serial_iir_compute(s) & UART_IIR_NO_INT);
	if (high && !s->irq_high && s->irq.raise)
		s->irq.raise(s->irq.ctx, s->gsi);
	s->irq_high = high;
}

static void serial_rx_put(struct serial *s, uint8_t b)
{
	if (s->rx_len == SERIAL_FIFO_SIZE)
		return; /* overrun: the byte is lost, as on the wire */
	s->rx[(s->rx_head + s->rx_len) % SERIAL_FIFO_SIZE] = b;
	s->rx_len++;
}

static uint8_t serial_msr_read(struct serial *s)
{
	uint8_t msr;
	if (s->mcr & UART_MCR_LOOP) {
		msr = 0;
		if (s->mcr & UART_MCR_RTS)
			msr |= UART_MSR_CTS;
		if (s->mcr & UART_MCR_DTR)
			msr |= UART_MSR_DSR;
		if (s->mcr & UART_MCR_OUT1)
			msr |= UART_MSR_RI;
		if (s->mcr & UART_MCR_OUT2)
			msr |= UART_MSR_DCD;
	} else {
		msr = s->msr;
	}
	s->msr &= 0xf0; /* reading clears the delta bits */
	return msr;
}

/* One register read; returns the byte and whether the rx FIFO was drained. */
static uint8_t serial_reg_read(struct serial *s, unsigned off, bool *drained)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	uint8_t v = 0, iir;
	switch (off) {
	case UART_RX:
		if (dlab)
			return s->dll;
		if (s->rx_len) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
			s->rx_len--;
			*drained = s->rx_len == 0;
		}
		return v;
	case UART_IER: return dlab ? s->dlm : s->ier;
	case UART_IIR:
		iir = serial_iir_compute(s);
		/* Reading IIR acknowledges a THRE interrupt it reports. */
		if ((iir & 0x0f) == UART_IIR_THRI)
			s->thri_pending = false;
		return iir;
	case UART_LCR: return s->lcr;
	case UART_MCR: return s->mcr;
	case UART_LSR: return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_len ? UART_LSR_DR : 0);
	case UART_MSR: return serial_msr_read(s);
	case UART_SCR: return s->scr;
	default: return 0xff;
	}
}

static void serial_tx(struct serial *s, uint8_t b)
{
	if (s->mcr & UART_MCR_LOOP)
		serial_rx_put(s, b);
	else if (s->out)
		s->out(s->out_ctx, &b, 1);
	s->thri_pending = true; /* sent at once: THR is empty again */
}

static void serial_reg_write(struct serial *s, unsigned off, uint8_t v)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	switch (off) {
	case UART_TX:
		if (dlab)
			s->dll = v;
		else
			serial_tx(s, v);
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		if ((v & UART_IER_THRI) && !(s->ier & UART_IER_THRI))
			s->thri_pending = true;
		s->ier = v & UART_IER_MASK;
		break;
	case UART_FCR:
		s->fcr = v & UART_FCR_ENABLE_FIFO;
		if (v & UART_FCR_CLEAR_RCVR)
			s->rx_len = s->rx_head = 0;
		break;
	case UART_LCR: s->lcr = v; break;
	case UART_MCR: s->mcr = v & UART_MCR_MASK; break;
	case UART_SCR: s->scr = v; break;
	default: break; /* LSR and MSR are read-only */
	}
}

void serial_init(struct serial *s, struct irq_sink irq, unsigned gsi, serial_out_fn out,
		 void *out_ctx)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->irq = irq;
	s->gsi = gsi;
	s->out = out;
	s->out_ctx = out_ctx;
	s->mcr = UART_MCR_OUT2;
	s->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	s->dll = 0x0c; /* 9600 baud */
	s->lcr = 0x03; /* 8N1 */
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

void serial_bus_read(void *ctx, uint64_t off, void *data, unsigned len)
{
	struct serial *s = ctx;
	bool drained = false;
	memset(data, 0xff, len);
	if (len != 1 || off >= SERIAL_NR_REGS)
		return;
	pthread_mutex_lock(&s->lock);
	*(uint8_t *)data = serial_reg_read(s, off, &drained);
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
	if (drained && s->rx_space)
		s->rx_space(s->rx_space_ctx);
}

void serial_bus_write(void *ctx, uint64_t off, const void *data, unsigned len)
{
	struct serial *s = ctx;
	if (len != 1 || off >= SERIAL_NR_REGS)
		return;
	pthread_mutex_lock(&s->lock);
	serial_reg_write(s, off, *(const uint8_t *)data);
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
}

struct bus_dev serial_bus_dev(struct serial *s, uint64_t port)
{
	return (struct bus_dev){.name = "serial",
				.base = port,
				.size = SERIAL_NR_REGS,
				.read = serial_bus_read,
				.write = serial_bus_write,
				.ctx = s};
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	size_t n = 0;
	/* Loopback mode disconnects the receiver from the outside. */
	while (!(s->mcr & UART_MCR_LOOP) && n < len && s->rx_len < SERIAL_FIFO_SIZE)
		serial_rx_put(s, buf[n++]);
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_space(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = SERIAL_FIFO_SIZE - s->rx_len;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ------------------------------------------------------------ snapshots */

void serial_save(struct serial *s, struct serial_state *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	out->ier = s->ier;
	out->lcr = s->lcr;
	out->mcr = s->mcr;
	out->msr = s->msr;
	out->scr = s->scr;
	out->dll = s->dll;
	out->dlm = s->dlm;
	out->fcr = s->fcr;
	out->thri_pending = s->thri_pending;
	out->irq_high = s->irq_high;
	out->rx_head = s->rx_head;
	out->rx_len = s->rx_len;
	memcpy(out->rx, s->rx, sizeof(out->rx));
	pthread_mutex_unlock(&s->lock);
}

int serial_state_check(const struct serial_state *in, struct kv_err **err)
{
	if ((in->ier & ~UART_IER_MASK) || (in->mcr & ~UART_MCR_MASK) || in->thri_pending > 1 ||
	    in->irq_high > 1 || in->rx_head >= SERIAL_FIFO_SIZE || in->rx_len > SERIAL_FIFO_SIZE ||
	    in->reserved[0] || in->reserved[1] || in->reserved2)
		return kv_err_plain(err, EINVAL, "serial: registers out of range");
	return 0;
}

void serial_restore(struct serial *s, const struct serial_state *in)
{
	pthread_mutex_lock(&s->lock);
	s->ier = in->ier;
	s->lcr = in->lcr;
	s->mcr = in->mcr;
	s->msr = in->msr;
	s->scr = in->scr;
	s->dll = in->dll;
	s->dlm = in->dlm;
	s->fcr = in->fcr;
	s->thri_pending = in->thri_pending;
	/*
	 * irq_high as saved, not recomputed: the edge it recorded is already
	 * in the irqchip state restored with the VM, and a recomputation here
	 * would raise it a second time.
	 */
	s->irq_high = in->irq_high;
	s->rx_head = in->rx_head;
	s->rx_len = in->rx_len;
	memcpy(s->rx, in->rx, sizeof(s->rx));
	pthread_mutex_unlock(&s->lock);
}
