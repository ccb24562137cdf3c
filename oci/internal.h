/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to oci/: the allocation list behind the parse context (whose
 * readers, public, are in oci.h) and the section parsers.
 */
#ifndef KV_OCI_INTERNAL_H
#define KV_OCI_INTERNAL_H

#include "oci/oci.h"

#include <yajl/yajl_tree.h>

/* Allocations owned by a config (or a state): freed together. */
struct oci_alloc {
	struct oci_alloc *next;
	max_align_t data[];
};
void *oa_alloc(struct oci_alloc **owner, size_t n);
char *oa_strdup(struct oci_alloc **owner, const char *s);

/* Parse text into a tree, with the size and depth limits applied. */
yajl_val oci_tree_parse(const char *text, size_t len, const char *what, struct kv_err **err);

/* Section parsers (config.c, linux.c). The path names the section. */
int oci_parse_process(struct pctx *c, yajl_val v, struct oci_process **out) KV_WUR;
int oci_parse_linux(struct pctx *c, yajl_val v, struct oci_linux **out) KV_WUR;
int oci_parse_resources(struct pctx *c, yajl_val v, struct oci_resources **out) KV_WUR;

bool oci_path_is_abs(const char *p);
bool oci_name_in(const char *name, const char *const *list, size_t n);
bool oci_seccomp_arch_accepted(const char *name);

#endif
