/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest physical memory as the VMM sees it. Everything that touches guest
 * memory does so through gm_ptr(): it returns a host pointer only when the
 * whole range [gpa, gpa+len) lies inside one RAM region, else NULL. No raw
 * pointer arithmetic on guest addresses anywhere else (style.md).
 *
 * Tests build a `struct gm` over a plain buffer (a fake guest memory).
 */
#ifndef KV_VMM_MEM_H
#define KV_VMM_MEM_H

#include <stdint.h>
#include <stddef.h>

#define GM_MAX_REGIONS 4

struct gm_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping */
};

struct gm {
	struct gm_region r[GM_MAX_REGIONS];
	unsigned n;
};

/* Host pointer for [gpa, gpa+len), or NULL unless it lies inside one region. */
static inline void *gm_ptr(const struct gm *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->n; i++) {
		const struct gm_region *r = &gm->r[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

#endif
