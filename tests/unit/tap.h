/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny TAP producer for the C unit tests. Each test file:
 *   int main(void) { ok(1 + 1 == 2, "adds"); ...; return tap_done(); }
 * The plan is printed at the end ("1..N"), which TAP allows.
 */
#ifndef KV_TAP_H
#define KV_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3), unused)) static int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 1, 2), unused)) static void skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("ok %d # skip ", ++tap_n);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

/* mkdtemp(TEMPLATE) for a test's scratch; false (and a skip saying why)
 * when it cannot be made. */
__attribute__((unused)) static bool tap_tmpdir(char *template)
{
	if (mkdtemp(template))
		return true;
	skip("mkdtemp %s failed", template);
	return false;
}

__attribute__((format(printf, 1, 2), unused)) static void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

#define is_int(got, want, name)                                                                    \
	({                                                                                         \
		long long _g = (long long)(got), _w = (long long)(want);                           \
		int _r = ok(_g == _w, "%s", name);                                                 \
		if (!_r)                                                                           \
			diag("  got %lld, want %lld (%s:%d)", _g, _w, __FILE__, __LINE__);         \
		_r;                                                                                \
	})

#define is_str(got, want, name)                                                                    \
	({                                                                                         \
		const char *_g = (got), *_w = (want);                                              \
		int _r = ok(_g && _w && strcmp(_g, _w) == 0, "%s", name);                          \
		if (!_r)                                                                           \
			diag("  got \"%s\", want \"%s\" (%s:%d)", _g ? _g : "(null)",              \
			     _w ? _w : "(null)", __FILE__, __LINE__);                              \
		_r;                                                                                \
	})

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
