/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON text helpers: Go-style indentation (so `kvrun spec`, `state` and
 * `features` print what runc prints), a nesting-depth pre-check, and
 * RFC 3339 timestamps as Go's time.RFC3339Nano formats them.
 */
#include "oci/internal.h"

#include <string.h>

/* Length of the JSON string starting at s[0] == '"', quotes included. */
static size_t string_len(const char *s, size_t len)
{
	size_t i = 1;
	while (i < len && s[i] != '"')
		i += (s[i] == '\\' && i + 1 < len) ? 2 : 1;
	return i < len ? i + 1 : len;
}

struct obuf {
	char *p;
	size_t len, cap;
};

static void ob_put(struct obuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void ob_newline(struct obuf *b, const char *indent, unsigned depth)
{
	ob_put(b, "\n", 1);
	for (unsigned i = 0; i < depth; i++)
		ob_put(b, indent, strlen(indent));
}

char *oci_json_indent(const char *s, size_t len, const char *indent)
{
	struct obuf b = {0};
	unsigned depth = 0;
	ob_put(&b, "", 0);
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '"') {
			size_t n = string_len(s + i, len - i);
			ob_put(&b, s + i, n);
			i += n - 1;
		} else if (ch == '{' || ch == '[') {
			ob_put(&b, &ch, 1);
			if (i + 1 < len && (s[i + 1] == '}' || s[i + 1] == ']')) {
				ob_put(&b, &s[++i], 1);
				continue;
			}
			ob_newline(&b, indent, ++depth);
		} else if (ch == '}' || ch == ']') {
			ob_newline(&b, indent, depth ? --depth : 0);
			ob_put(&b, &ch, 1);
		} else if (ch == ',') {
			ob_put(&b, ",", 1);
			ob_newline(&b, indent, depth);
		} else if (ch == ':') {
			ob_put(&b, ": ", 2);
		} else if (ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') {
			ob_put(&b, &ch, 1);
		}
	}
	return b.p;
}

int oci_json_check_depth(const char *s, size_t len, unsigned max)
{
	unsigned depth = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"') {
			i += string_len(s + i, len - i) - 1;
		} else if (s[i] == '{' || s[i] == '[') {
			if (++depth > max)
				return -1;
		} else if ((s[i] == '}' || s[i] == ']') && depth) {
			depth--;
		}
	}
	return 0;
}

void oci_time_format(const struct timespec *ts, char buf[64])
{
	struct tm tm;
	time_t t = ts->tv_sec;
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts->tv_nsec > 0 && ts->tv_nsec < 1000000000) {
		char frac[16];
		snprintf(frac, sizeof(frac), ".%09ld", ts->tv_nsec);
		size_t f = strlen(frac);
		while (frac[f - 1] == '0')
			frac[--f] = '\0';
		snprintf(buf + n, 64 - n, "%s", frac);
		n += f;
	}
	snprintf(buf + n, 64 - n, "Z");
}

static bool take_digits(const char **s, int n, long *out)
{
	long v = 0;
	for (int i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return false;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool take_char(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

int oci_time_parse(const char *s, struct timespec *out)
{
	long y, mo, d, h, mi, se, ns = 0;
	if (!take_digits(&s, 4, &y) || !take_char(&s, '-') || !take_digits(&s, 2, &mo) ||
	    !take_char(&s, '-') || !take_digits(&s, 2, &d) || !take_char(&s, 'T') ||
	    !take_digits(&s, 2, &h) || !take_char(&s, ':') || !take_digits(&s, 2, &mi) ||
	    !take_char(&s, ':') || !take_digits(&s, 2, &se))
		return -1;
	if (take_char(&s, '.')) {
		int n = 0;
		for (; *s >= '0' && *s <= '9' && n < 9; s++, n++)
			ns = ns * 10 + (*s - '0');
		if (n == 0)
			return -1;
		for (; n < 9; n++)
			ns *= 10;
	}
	if (!take_char(&s, 'Z') || *s)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	struct tm tm = {.tm_year = (int)y - 1900,
			.tm_mon = (int)mo - 1,
			.tm_mday = (int)d,
			.tm_hour = (int)h,
			.tm_min = (int)mi,
			.tm_sec = (int)se};
	out->tv_sec = timegm(&tm);
	out->tv_nsec = ns;
	return 0;
}
