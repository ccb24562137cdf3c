/* SPDX-License-Identifier: Apache-2.0 */
/* The exit device and a minimal i8042: just enough for a reset. */
#include "vmm/power.h"

#include <string.h>

#include "vmm/vmm.h"
#include "vmm/x86/layout.h"

static void power_exit_read(void *ctx, uint64_t off, void *data, unsigned len)
{
	memset(data, 0, len);
}

static void power_exit_write(void *ctx, uint64_t off, const void *data, unsigned len)
{
	struct power *p = ctx;
	uint8_t code = *(const uint8_t *)data; /* little endian: the low byte */
	switch (code) {
	case VMM_EXIT_PORT_POWEROFF: p->stop(p->ctx, VMM_EXIT_POWEROFF, "guest powered off"); break;
	case VMM_EXIT_PORT_PANIC:
		if (p->panic)
			p->panic(p->ctx);
		break;
	default: p->stop(p->ctx, code, "guest reported its exit status"); break;
	}
}

static void power_i8042_read(void *ctx, uint64_t off, void *data, unsigned len)
{
	/* Status: nothing to read, ready for a command; data: nothing. */
	memset(data, I8042_STATUS_IDLE, len);
}

static void power_i8042_data_write(void *ctx, uint64_t off, const void *data, unsigned len) {}

static void power_i8042_cmd_write(void *ctx, uint64_t off, const void *data, unsigned len)
{
	struct power *p = ctx;
	if (*(const uint8_t *)data == I8042_CMD_RESET)
		p->stop(p->ctx, VMM_EXIT_RESET, "guest reset (i8042 reset)");
}

struct bus_dev power_exit_bus_dev(struct power *p)
{
	return (struct bus_dev){.name = "exit",
				.base = VMM_EXIT_PORT,
				.size = 1,
				.read = power_exit_read,
				.write = power_exit_write,
				.ctx = p};
}

struct bus_dev power_i8042_data_bus_dev(struct power *p)
{
	return (struct bus_dev){.name = "i8042-data",
				.base = LAYOUT_I8042_DATA,
				.size = 1,
				.read = power_i8042_read,
				.write = power_i8042_data_write,
				.ctx = p};
}

struct bus_dev power_i8042_cmd_bus_dev(struct power *p)
{
	return (struct bus_dev){.name = "i8042-cmd",
				.base = LAYOUT_I8042_CMD,
				.size = 1,
				.read = power_i8042_read,
				.write = power_i8042_cmd_write,
				.ctx = p};
}
