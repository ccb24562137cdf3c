/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What device models see of the machine: an MMIO/PIO bus they register on,
 * an interrupt sink they raise, and an event loop for host-side fds. Device
 * models never call KVM (style.md): tests inject all three.
 */
#ifndef KV_VMM_BUS_H
#define KV_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* Raise (edge) interrupt line `gsi`. Implemented with KVM_IRQ_LINE or an irqfd. */
struct irq_sink {
	void (*raise)(void *ctx, unsigned gsi);
	void *ctx;
};

/* One device window on the MMIO or port-I/O bus; offsets are window-relative. */
struct bus_dev {
	const char *name;
	uint64_t base, size;
	void (*read)(void *ctx, uint64_t off, void *data, unsigned len);
	void (*write)(void *ctx, uint64_t off, const void *data, unsigned len);
	void *ctx;
};

#define BUS_MAX_DEVS 32
struct bus {
	struct bus_dev devs[BUS_MAX_DEVS];
	unsigned n;
};

/* Returns 0, or -1 when the window overlaps another or the bus is full. */
int bus_register(struct bus *bus, const struct bus_dev *dev);
/* Dispatch an access; false when no device claims `addr` (reads then return all-ones). */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len);

/*
 * The VMM's event loop (one thread, epoll). Device models hand it host fds
 * (vsock sockets, ioeventfds, timers). Callbacks run on the loop thread.
 */
struct evloop;
typedef void (*evloop_cb)(void *ctx, uint32_t epoll_events);
int evloop_add(struct evloop *loop, int fd, uint32_t epoll_events, evloop_cb cb, void *ctx);
int evloop_mod(struct evloop *loop, int fd, uint32_t epoll_events);
int evloop_del(struct evloop *loop, int fd);

#endif
