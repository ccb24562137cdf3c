/* SPDX-License-Identifier: Apache-2.0 */
/* A checked JSON writer over yajl_gen, a yajl_tree reader and typed lookups in its trees. */
#include "kv.h"

#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

struct kv_json {
	yajl_gen g;
	yajl_gen_status first_bad; /* first non-ok status, or yajl_gen_status_ok */
	bool bad_raw;		   /* a kv_json_raw() text was not one JSON value */
};

static const char *gen_status_str(yajl_gen_status s)
{
	switch (s) {
	case yajl_gen_keys_must_be_strings: return "a key where a value belongs";
	case yajl_max_depth_exceeded: return "nesting too deep";
	case yajl_gen_in_error_state: return "writer already in error";
	case yajl_gen_generation_complete: return "value after the end of the document";
	case yajl_gen_invalid_number: return "invalid number";
	case yajl_gen_no_buf: return "no buffer";
	case yajl_gen_invalid_string: return "invalid UTF-8 in a string";
	default: return "unknown error";
	}
}

struct kv_json *kv_json_new(bool pretty)
{
	struct kv_json *j = kv_malloc0(sizeof(*j));
	j->g = yajl_gen_alloc(NULL);
	if (!j->g)
		abort();
	yajl_gen_config(j->g, yajl_gen_beautify, pretty ? 1 : 0);
	yajl_gen_config(j->g, yajl_gen_validate_utf8, 1);
	j->first_bad = yajl_gen_status_ok;
	return j;
}

void kv_json_free(struct kv_json *j)
{
	if (!j)
		return;
	yajl_gen_free(j->g);
	free(j);
}

static void note(struct kv_json *j, yajl_gen_status s)
{
	if (s != yajl_gen_status_ok && j->first_bad == yajl_gen_status_ok)
		j->first_bad = s;
}

void kv_json_map_open(struct kv_json *j)
{
	note(j, yajl_gen_map_open(j->g));
}
void kv_json_map_close(struct kv_json *j)
{
	note(j, yajl_gen_map_close(j->g));
}
void kv_json_array_open(struct kv_json *j)
{
	note(j, yajl_gen_array_open(j->g));
}
void kv_json_array_close(struct kv_json *j)
{
	note(j, yajl_gen_array_close(j->g));
}
void kv_json_strn(struct kv_json *j, const char *s, size_t n)
{
	note(j, yajl_gen_string(j->g, (const unsigned char *)s, n));
}
void kv_json_str(struct kv_json *j, const char *s)
{
	if (!s)
		kv_json_null(j);
	else
		kv_json_strn(j, s, strlen(s));
}
void kv_json_key(struct kv_json *j, const char *key)
{
	kv_json_str(j, key);
}
void kv_json_int(struct kv_json *j, long long v)
{
	note(j, yajl_gen_integer(j->g, v));
}
void kv_json_uint(struct kv_json *j, unsigned long long v)
{
	/* yajl_gen_integer takes long long; larger values go through number. */
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", v);
	note(j, yajl_gen_number(j->g, buf, n));
}
void kv_json_bool(struct kv_json *j, bool v)
{
	note(j, yajl_gen_bool(j->g, v));
}
void kv_json_null(struct kv_json *j)
{
	note(j, yajl_gen_null(j->g));
}
void kv_json_kstr(struct kv_json *j, const char *key, const char *s)
{
	kv_json_key(j, key);
	kv_json_str(j, s);
}
void kv_json_kint(struct kv_json *j, const char *key, long long v)
{
	kv_json_key(j, key);
	kv_json_int(j, v);
}
void kv_json_kbool(struct kv_json *j, const char *key, bool v)
{
	kv_json_key(j, key);
	kv_json_bool(j, v);
}

/* Exactly one JSON value (yajl's defaults: UTF-8 checked, no comments, nothing after it). */
static bool one_json_value(const char *text, size_t len)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	if (!h)
		abort();
	bool good = yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
		    yajl_complete_parse(h) == yajl_status_ok;
	yajl_free(h);
	return good;
}

void kv_json_raw(struct kv_json *j, const char *text, size_t len)
{
	if (!text || !one_json_value(text, len)) {
		j->bad_raw = true;
		return;
	}
	/*
	 * yajl_gen_number() writes its bytes as they are, with the separator
	 * and the key/value bookkeeping of any value: what a checked value
	 * needs (a number is refused where a key belongs, as this must be).
	 */
	note(j, yajl_gen_number(j->g, text, len));
}

int kv_json_finish(struct kv_json *j, const char **out, size_t *len, struct kv_err **err)
{
	if (j->bad_raw)
		return kv_err_make(err, EINVAL, "JSON writer: embedded text is not one JSON value");
	if (j->first_bad != yajl_gen_status_ok)
		return kv_err_make(err, EINVAL, "JSON writer: %s", gen_status_str(j->first_bad));
	const unsigned char *buf;
	size_t n;
	if (yajl_gen_get_buf(j->g, &buf, &n) != yajl_gen_status_ok)
		return kv_err_make(err, EINVAL, "JSON writer: no output");
	/*
	 * yajl_gen accepts an unfinished document; an unbalanced one ends in a
	 * state other than "complete". Probe: a further value must be refused.
	 */
	if (n == 0 || yajl_gen_null(j->g) != yajl_gen_generation_complete)
		return kv_err_make(err, EINVAL, "JSON writer: unbalanced document");
	*out = (const char *)buf;
	*len = n;
	return 0;
}

char *kv_json_finish_dup(struct kv_json *j, size_t *len, struct kv_err **err)
{
	const char *text;
	size_t n;
	if (kv_json_finish(j, &text, &n, err) < 0)
		return NULL;
	char *copy = kv_malloc0(n + 1);
	memcpy(copy, text, n);
	if (len)
		*len = n;
	return copy;
}

void kv_json_error_at(const char *text, size_t len, char *buf, size_t n)
{
	/* A parser with no callbacks finds where yajl_tree_parse stopped. */
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	if (!h) {
		snprintf(buf, n, "?");
		return;
	}
	size_t at = len;
	if (yajl_parse(h, (const unsigned char *)text, len) != yajl_status_ok)
		at = yajl_get_bytes_consumed(h);
	yajl_free(h);
	/* yajl counts the byte it stopped on as consumed: point at it. */
	if (at > 0 && at <= len && at != len)
		at--;
	size_t line = 1, col = 1;
	for (size_t i = 0; i < at && i < len; i++) {
		if (text[i] == '\n')
			line++, col = 1;
		else
			col++;
	}
	snprintf(buf, n, "byte %zu (line %zu, column %zu)", at, line, col);
}

struct yajl_val_s *kv_json_parse(const char *text, const char *what, struct kv_err **err)
{
	char ebuf[256] = "";
	yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
	if (!v) {
		/* yajl's message spans lines; keep the first for a one-line error. */
		char *nl = strchr(ebuf, '\n');
		if (nl)
			*nl = '\0';
		char at[80];
		kv_json_error_at(text, strlen(text), at, sizeof(at));
		kv_err_make(err, EINVAL, "%s: invalid JSON at %s: %s", what, at,
			    ebuf[0] ? ebuf : "parse error");
		return NULL;
	}
	return v;
}

void kv_yajl_freep(struct yajl_val_s **v)
{
	if (*v)
		yajl_tree_free(*v);
}

/* ------------------------------------------------------- typed lookups */

yajl_val kv_jget(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

const char *kv_jstr(yajl_val obj, const char *key)
{
	yajl_val v = kv_jget(obj, key);
	return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

bool kv_jint(yajl_val obj, const char *key, long long *out)
{
	yajl_val v = kv_jget(obj, key);
	if (!v || !YAJL_IS_INTEGER(v))
		return false;
	*out = YAJL_GET_INTEGER(v);
	return true;
}

bool kv_jbool(yajl_val obj, const char *key, bool *out)
{
	yajl_val v = kv_jget(obj, key);
	if (!v || !(YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
		return false;
	*out = YAJL_IS_TRUE(v);
	return true;
}
