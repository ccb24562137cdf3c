/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the guest ends the VM (see vmm.h): the kvrun exit device (port
 * VMM_EXIT_PORT: the byte written is the exit status) and the i8042
 * controller's reset command (0xfe to port 0x64, Linux `reboot=k`).
 * Both are pure bus devices that call `stop` (or `panic`, see vmm.h).
 */
#ifndef KV_VMM_POWER_H
#define KV_VMM_POWER_H

#include "vmm/bus.h"

#define I8042_CMD_RESET	  0xfe
#define I8042_STATUS_IDLE 0x00 /* output buffer empty, input buffer empty */

struct power {
	/* status: VMM_EXIT_* or the guest's byte; why: a fixed string. */
	void (*stop)(void *ctx, int status, const char *why);
	/* The guest reported a panic (exit port value 1); a reset follows. */
	void (*panic)(void *ctx);
	void *ctx;
};

struct bus_dev power_exit_bus_dev(struct power *p);
struct bus_dev power_i8042_data_bus_dev(struct power *p);
struct bus_dev power_i8042_cmd_bus_dev(struct power *p);

#endif
