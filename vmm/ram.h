/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest RAM: one host mapping split into the guest's RAM regions (below
 * 3 GiB, and from 4 GiB for the rest). Backed by a memfd (MAP_SHARED, the
 * default), or by a file mapped MAP_PRIVATE (a snapshot's memory file: the
 * clone shares every page it never writes) or MAP_SHARED.
 *
 * The guest's memory is what the mapping (base) shows, not necessarily what
 * the backing fd holds: direct boot maps the kernel and initrd files over
 * parts of it, MAP_PRIVATE (x86/boot.c). Save guest memory from the mapping.
 */
#ifndef KV_VMM_RAM_H
#define KV_VMM_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/mem.h"

#define RAM_MIN_SIZE (16ULL << 20)
#define RAM_ALIGN    (2ULL << 20)

struct ram {
	struct gm gm;
	uint8_t *base; /* the one host mapping */
	uint64_t size;
	int fd; /* backing memfd or file, -1 when none */
	bool private_map;
};

/* Regions (gpa/size, hva left NULL) for `size` bytes of RAM. */
int ram_layout(struct gm *gm, uint64_t size, struct kv_err **err) KV_WUR;
/* Anonymous guest RAM on a memfd, MAP_SHARED. */
int ram_create(struct ram *ram, uint64_t size, struct kv_err **err) KV_WUR;
/* Guest RAM backed by the file at path (its size must be >= size). */
int ram_create_from_file(struct ram *ram, const char *path, uint64_t size, bool private_map,
			 struct kv_err **err) KV_WUR;
/* Guest RAM mapped from fd at offset (a snapshot's memory file); takes fd on success. */
int ram_create_from_fd(struct ram *ram, int fd, uint64_t offset, uint64_t size, bool private_map,
		       struct kv_err **err) KV_WUR;
void ram_destroy(struct ram *ram);

#endif
