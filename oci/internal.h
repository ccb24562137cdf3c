/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to oci/: the parse context (owner of allocations, JSON path for
 * messages) and the typed field readers every section parser uses.
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
void oa_free_all(struct oci_alloc *head);

#define OCI_PATH_MAX 320

struct pctx {
	struct oci_alloc **owner;
	struct kv_err **err;
	char path[OCI_PATH_MAX];
	size_t len;
};

/* Extend the path with ".key" or "[i]"; return the old length for pc_pop. */
size_t pc_push_key(struct pctx *c, const char *key);
size_t pc_push_idx(struct pctx *c, size_t i);
static inline void pc_pop(struct pctx *c, size_t old)
{
	c->len = old;
	c->path[old] = '\0';
}
/* "<path>: <message>"; returns negative. */
int pc_fail(struct pctx *c, const char *fmt, ...) KV_PRINTF(2, 3);
/* The same for a member: "<path>.<key>: <message>". */
int pc_fail_at(struct pctx *c, const char *key, const char *fmt, ...) KV_PRINTF(3, 4);

void *pc_alloc(struct pctx *c, size_t n);
char *pc_strdup(struct pctx *c, const char *s);

/* A member of an object; NULL when absent or JSON null. */
yajl_val pc_get(yajl_val obj, const char *key);

/*
 * Typed members. `present` (may be NULL) tells whether it was there; when
 * `required` and absent the error is "<path>: required field is missing".
 */
int pc_str(struct pctx *c, yajl_val obj, const char *key, bool required, char **out) KV_WUR;
int pc_bool(struct pctx *c, yajl_val obj, const char *key, bool *out) KV_WUR;
int pc_u64(struct pctx *c, yajl_val obj, const char *key, bool required, uint64_t max,
	   uint64_t *out, bool *present) KV_WUR;
int pc_i64(struct pctx *c, yajl_val obj, const char *key, bool required, int64_t min, int64_t max,
	   int64_t *out, bool *present) KV_WUR;
int pc_u32(struct pctx *c, yajl_val obj, const char *key, bool required, uint32_t *out,
	   bool *present) KV_WUR;
/* Object / array members: type-checked; *out NULL when absent. */
int pc_obj(struct pctx *c, yajl_val obj, const char *key, bool required, yajl_val *out) KV_WUR;
int pc_arr(struct pctx *c, yajl_val obj, const char *key, bool required, yajl_val *out) KV_WUR;
/*
 * An optional array of objects: allocate *n elements of elem_size in *out,
 * and run fn(c, element, i, &(*out)[i]) on each with "key[i]" in the path,
 * up to the first failure. A non-object element is "must be an object".
 */
typedef int (*pc_elem_fn)(struct pctx *c, yajl_val v, size_t i, void *elem);
int pc_each(struct pctx *c, yajl_val obj, const char *key, size_t *n, size_t elem_size, void **out,
	    pc_elem_fn fn) KV_WUR;
/* An array of strings. */
int pc_strv(struct pctx *c, yajl_val obj, const char *key, struct oci_strv *out) KV_WUR;
/* An object whose values are all strings. */
int pc_map(struct pctx *c, yajl_val obj, const char *key, struct oci_map *out) KV_WUR;
/* The value itself (path already pushed). */
int pc_val_u64(struct pctx *c, yajl_val v, uint64_t max, uint64_t *out) KV_WUR;
int pc_val_i64(struct pctx *c, yajl_val v, int64_t min, int64_t max, int64_t *out) KV_WUR;

static inline size_t pc_arr_len(yajl_val a)
{
	return a ? a->u.array.len : 0;
}

/* Parse text into a tree, with the size and depth limits applied. */
yajl_val oci_tree_parse(const char *text, size_t len, const char *what, struct kv_err **err);

/* Section parsers (config.c, linux.c). The path names the section. */
int oci_parse_process(struct pctx *c, yajl_val v, struct oci_process **out) KV_WUR;
int oci_parse_linux(struct pctx *c, yajl_val v, struct oci_linux **out) KV_WUR;
int oci_parse_resources(struct pctx *c, yajl_val v, struct oci_resources **out) KV_WUR;
int oci_parse_seccomp(struct pctx *c, yajl_val v, struct oci_seccomp **out) KV_WUR;

bool oci_path_is_abs(const char *p);
int oci_rlimit_from_name(const char *name); /* -1 when unknown */
bool oci_name_in(const char *name, const char *const *list, size_t n);
bool oci_seccomp_arch_accepted(const char *name);

#endif
