/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MMIO and port-I/O buses: a short table of windows, filled during setup
 * and read-only afterwards, so vCPU threads dispatch without a lock. An
 * access must lie entirely inside one window; a miss reads as all-ones, as
 * an unclaimed ISA/PCI access does on real hardware.
 */
#include "vmm/bus.h"

#include <string.h>

static bool bus_dev_contains(const struct bus_dev *d, uint64_t addr, unsigned len)
{
	return addr >= d->base && addr - d->base < d->size && len <= d->size - (addr - d->base);
}

static bool bus_range_overlaps(const struct bus_dev *a, const struct bus_dev *b)
{
	return a->base < b->base + b->size && b->base < a->base + a->size;
}

int bus_register(struct bus *bus, const struct bus_dev *dev)
{
	if (bus->n >= BUS_MAX_DEVS || dev->size == 0 || dev->base + dev->size < dev->base)
		return -1;
	for (unsigned i = 0; i < bus->n; i++)
		if (bus_range_overlaps(&bus->devs[i], dev))
			return -1;
	bus->devs[bus->n++] = *dev;
	return 0;
}

static const struct bus_dev *bus_find(const struct bus *bus, uint64_t addr, unsigned len)
{
	for (unsigned i = 0; i < bus->n; i++)
		if (bus_dev_contains(&bus->devs[i], addr, len))
			return &bus->devs[i];
	return NULL;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len)
{
	const struct bus_dev *d = bus_find(bus, addr, len);
	if (!d || !d->read) {
		memset(data, 0xff, len);
		return d != NULL;
	}
	d->read(d->ctx, addr - d->base, data, len);
	return true;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
	const struct bus_dev *d = bus_find(bus, addr, len);
	if (!d)
		return false;
	if (d->write)
		d->write(d->ctx, addr - d->base, data, len);
	return true;
}
