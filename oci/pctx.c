/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parse context: owned allocations, the JSON path that every message
 * names, and typed readers for yajl_tree members. Numbers are read from
 * yajl's unparsed text, so a uint64 above LLONG_MAX (seccomp argument
 * values) is read exactly and "1.5" or "1e3" is refused as a non-integer.
 */
#include "oci/internal.h"

#include <inttypes.h>
#include <string.h>

void *oa_alloc(struct oci_alloc **owner, size_t n)
{
	if (n > SIZE_MAX - sizeof(struct oci_alloc))
		abort();
	struct oci_alloc *a = kv_malloc0(sizeof(*a) + n);
	a->next = *owner;
	*owner = a;
	return a->data;
}

char *oa_strdup(struct oci_alloc **owner, const char *s)
{
	size_t n = strlen(s);
	char *p = oa_alloc(owner, n + 1);
	memcpy(p, s, n);
	return p;
}

void oci_alloc_free(struct oci_alloc *head)
{
	while (head) {
		struct oci_alloc *next = head->next;
		free(head);
		head = next;
	}
}

void *pc_alloc(struct pctx *c, size_t n)
{
	return oa_alloc(c->owner, n);
}
char *pc_strdup(struct pctx *c, const char *s)
{
	return oa_strdup(c->owner, s);
}

static size_t pc_append(struct pctx *c, const char *s)
{
	size_t old = c->len, n = strlen(s);
	/* A path this long only comes from hostile input: keep a marked prefix. */
	if (c->len + n + 4 >= sizeof(c->path)) {
		if (c->len + 4 < sizeof(c->path)) {
			memcpy(c->path + c->len, "...", 4);
			c->len += 3;
		}
		return old;
	}
	memcpy(c->path + c->len, s, n + 1);
	c->len += n;
	return old;
}

size_t pc_push_key(struct pctx *c, const char *key)
{
	size_t old = c->len;
	if (c->len)
		pc_append(c, ".");
	pc_append(c, key);
	return old;
}

size_t pc_push_idx(struct pctx *c, size_t i)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "[%zu]", i);
	size_t old = c->len;
	pc_append(c, buf);
	return old;
}

KV_PRINTF(2, 0) static int pc_vfail(struct pctx *c, const char *fmt, va_list ap)
{
	cleanup_free char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	if (c->len == 0)
		return kv_err_make(c->err, 0, "%s", msg);
	return kv_err_make(c->err, 0, "%s: %s", c->path, msg);
}

int pc_fail(struct pctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = pc_vfail(c, fmt, ap);
	va_end(ap);
	return r;
}

/* "<path>.<key>: " or, with i < SIZE_MAX, "<path>.<key>[i]: "; path put back. */
KV_PRINTF(4, 0)
static int pc_vfail_in(struct pctx *c, const char *key, size_t i, const char *fmt, va_list ap)
{
	size_t old = pc_push_key(c, key);
	if (i != SIZE_MAX)
		pc_push_idx(c, i);
	int r = pc_vfail(c, fmt, ap);
	pc_pop(c, old);
	return r;
}

int pc_fail_at(struct pctx *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = pc_vfail_in(c, key, SIZE_MAX, fmt, ap);
	va_end(ap);
	return r;
}

int pc_fail_idx(struct pctx *c, const char *key, size_t i, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = pc_vfail_in(c, key, i, fmt, ap);
	va_end(ap);
	return r;
}

yajl_val pc_get(yajl_val obj, const char *key)
{
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		if (strcmp(obj->u.object.keys[i], key) == 0) {
			yajl_val v = obj->u.object.values[i];
			return YAJL_IS_NULL(v) ? NULL : v;
		}
	}
	return NULL;
}

/* Split yajl's number text into sign and digits; false unless an integer. */
static bool number_digits(yajl_val v, bool *neg, const char **digits)
{
	if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
		return false;
	const char *s = v->u.number.r;
	*neg = (*s == '-');
	if (*neg)
		s++;
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return false;
	*digits = s;
	return true;
}

/* Digits to uint64; false on overflow. */
static bool digits_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int pc_val_u64(struct pctx *c, yajl_val v, uint64_t max, uint64_t *out)
{
	bool neg;
	const char *digits;
	uint64_t u;
	if (!number_digits(v, &neg, &digits))
		return pc_fail(c, "must be an integer");
	if (!digits_u64(digits, &u) || (!neg && u > max))
		return pc_fail(c, "out of range (maximum %" PRIu64 ")", max);
	if (neg && u != 0)
		return pc_fail(c, "must not be negative");
	*out = neg ? 0 : u;
	return 0;
}

int pc_val_i64(struct pctx *c, yajl_val v, int64_t min, int64_t max, int64_t *out)
{
	bool neg;
	const char *digits;
	uint64_t u;
	if (!number_digits(v, &neg, &digits))
		return pc_fail(c, "must be an integer");
	bool fits = digits_u64(digits, &u) && u <= (neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX);
	int64_t s = !fits ? 0 : neg ? (int64_t)(0 - u) : (int64_t)u;
	if (!fits || s < min || s > max)
		return pc_fail(c, "out of range (%" PRId64 " to %" PRId64 ")", min, max);
	*out = s;
	return 0;
}

static int pc_missing(struct pctx *c, const char *key)
{
	return pc_fail_at(c, key, "required field is missing");
}

int pc_str(struct pctx *c, yajl_val obj, const char *key, bool required, char **out)
{
	yajl_val v = pc_get(obj, key);
	if (!v)
		return required ? pc_missing(c, key) : 0;
	if (!YAJL_IS_STRING(v))
		return pc_fail_at(c, key, "must be a string");
	*out = pc_strdup(c, v->u.string);
	return 0;
}

int pc_bool(struct pctx *c, yajl_val obj, const char *key, bool *out)
{
	yajl_val v = pc_get(obj, key);
	if (!v)
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return pc_fail_at(c, key, "must be a boolean");
	*out = YAJL_IS_TRUE(v);
	return 0;
}

int pc_u64(struct pctx *c, yajl_val obj, const char *key, bool required, uint64_t max,
	   uint64_t *out, bool *present)
{
	yajl_val v = pc_get(obj, key);
	if (!v)
		return required ? pc_missing(c, key) : 0;
	size_t old = pc_push_key(c, key);
	int r = pc_val_u64(c, v, max, out);
	pc_pop(c, old);
	if (r == 0 && present)
		*present = true;
	return r;
}

int pc_i64(struct pctx *c, yajl_val obj, const char *key, bool required, int64_t min, int64_t max,
	   int64_t *out, bool *present)
{
	yajl_val v = pc_get(obj, key);
	if (!v)
		return required ? pc_missing(c, key) : 0;
	size_t old = pc_push_key(c, key);
	int r = pc_val_i64(c, v, min, max, out);
	pc_pop(c, old);
	if (r == 0 && present)
		*present = true;
	return r;
}

int pc_u32(struct pctx *c, yajl_val obj, const char *key, bool required, uint32_t *out,
	   bool *present)
{
	uint64_t v = 0;
	int r = pc_u64(c, obj, key, required, UINT32_MAX, &v, present);
	if (r == 0)
		*out = (uint32_t)v;
	return r;
}

int pc_obj(struct pctx *c, yajl_val obj, const char *key, bool required, yajl_val *out)
{
	yajl_val v = pc_get(obj, key);
	*out = NULL;
	if (!v)
		return required ? pc_missing(c, key) : 0;
	if (!YAJL_IS_OBJECT(v))
		return pc_fail_at(c, key, "must be an object");
	*out = v;
	return 0;
}

int pc_arr(struct pctx *c, yajl_val obj, const char *key, bool required, yajl_val *out)
{
	yajl_val v = pc_get(obj, key);
	*out = NULL;
	if (!v)
		return required ? pc_missing(c, key) : 0;
	if (!YAJL_IS_ARRAY(v))
		return pc_fail_at(c, key, "must be an array");
	*out = v;
	return 0;
}

int pc_sub(struct pctx *c, yajl_val obj, const char *key, pc_sub_fn fn, void *out)
{
	yajl_val o;
	if (pc_obj(c, obj, key, false, &o) < 0)
		return -1;
	if (!o)
		return 0;
	size_t old = pc_push_key(c, key);
	int r = fn(c, o, out);
	pc_pop(c, old);
	return r;
}

int pc_each(struct pctx *c, yajl_val obj, const char *key, size_t *n, size_t elem_size, void **out,
	    pc_elem_fn fn)
{
	yajl_val a;
	if (pc_arr(c, obj, key, false, &a) < 0)
		return -1;
	*n = pc_arr_len(a);
	*out = pc_alloc(c, *n * elem_size);
	size_t old = pc_push_key(c, key);
	int r = 0;
	for (size_t i = 0; i < *n && r == 0; i++) {
		size_t kl = pc_push_idx(c, i);
		yajl_val e = a->u.array.values[i];
		r = YAJL_IS_OBJECT(e) ? fn(c, e, i, (char *)*out + i * elem_size)
				      : pc_fail(c, "must be an object");
		pc_pop(c, kl);
	}
	pc_pop(c, old);
	return r < 0 ? -1 : 0;
}

int pc_strv(struct pctx *c, yajl_val obj, const char *key, struct oci_strv *out)
{
	yajl_val a;
	if (pc_arr(c, obj, key, false, &a) < 0)
		return -1;
	size_t n = pc_arr_len(a);
	out->n = 0;
	out->v = NULL;
	if (n == 0)
		return 0;
	out->v = pc_alloc(c, (n + 1) * sizeof(char *));
	size_t old = pc_push_key(c, key);
	for (size_t i = 0; i < n; i++) {
		yajl_val e = a->u.array.values[i];
		if (!YAJL_IS_STRING(e)) {
			pc_push_idx(c, i);
			int r = pc_fail(c, "must be a string");
			pc_pop(c, old);
			return r;
		}
		out->v[i] = pc_strdup(c, e->u.string);
	}
	pc_pop(c, old);
	out->n = n;
	return 0;
}

int pc_map(struct pctx *c, yajl_val obj, const char *key, struct oci_map *out)
{
	yajl_val o;
	if (pc_obj(c, obj, key, false, &o) < 0)
		return -1;
	out->n = 0;
	out->v = NULL;
	if (!o || o->u.object.len == 0)
		return 0;
	size_t n = o->u.object.len;
	out->v = pc_alloc(c, n * sizeof(*out->v));
	size_t old = pc_push_key(c, key);
	for (size_t i = 0; i < n; i++) {
		const char *k = o->u.object.keys[i];
		yajl_val e = o->u.object.values[i];
		if (*k == '\0') {
			int r = pc_fail(c, "keys must not be empty");
			pc_pop(c, old);
			return r;
		}
		if (!YAJL_IS_STRING(e)) {
			int r = pc_fail_at(c, k, "must be a string");
			pc_pop(c, old);
			return r;
		}
		out->v[i].key = pc_strdup(c, k);
		out->v[i].value = pc_strdup(c, e->u.string);
	}
	pc_pop(c, old);
	out->n = n;
	return 0;
}

yajl_val oci_tree_parse(const char *text, size_t len, const char *what, struct kv_err **err)
{
	if (len > OCI_CONFIG_MAX_SIZE) {
		kv_err_plain(err, EFBIG, "%s: larger than %u bytes", what, OCI_CONFIG_MAX_SIZE);
		return NULL;
	}
	if (memchr(text, '\0', len)) {
		kv_err_plain(err, EINVAL, "%s: invalid JSON: contains a NUL byte", what);
		return NULL;
	}
	if (oci_json_check_depth(text, len, OCI_JSON_MAX_DEPTH) < 0) {
		kv_err_plain(err, EINVAL, "%s: invalid JSON: nested deeper than %d levels", what,
			     OCI_JSON_MAX_DEPTH);
		return NULL;
	}
	char ebuf[256] = "";
	yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
	if (!v) {
		/* yajl's message spans lines (a caret under the spot): keep the first. */
		ebuf[strcspn(ebuf, "\n")] = '\0';
		char at[80];
		kv_json_error_at(text, len, at, sizeof(at));
		kv_err_plain(err, EINVAL, "%s: invalid JSON at %s: %s", what, at,
			     ebuf[0] ? ebuf : "parse error");
	}
	return v;
}

bool oci_path_is_abs(const char *p)
{
	return p && p[0] == '/';
}

bool oci_path_is_abs_clean(const char *p)
{
	if (!oci_path_is_abs(p))
		return false;
	/* No ".." component: paths are resolved inside the container's root. */
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '/' || s[2] == '\0'))
			return false;
	return true;
}

bool oci_name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}
