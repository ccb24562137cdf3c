/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-phase timings of one command (kv.h): a fixed table of marks, no
 * allocation until the report. One process, one thread marks (kvrun's
 * command, the shim's setup).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kv.h"

struct timing_mark {
	char name[24];
	uint64_t ns;
	bool part; /* measured elsewhere, within the next phase */
};

static struct {
	uint64_t start, last;
	unsigned n;
	struct timing_mark marks[KV_TIMING_MAX];
} timing;

void kv_timing_start(void)
{
	timing.n = 0;
	timing.start = timing.last = kv_now_ns();
}

static void timing_add(const char *name, uint64_t ns, bool part)
{
	if (timing.n >= KV_TIMING_MAX)
		return;
	struct timing_mark *m = &timing.marks[timing.n++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->ns = ns;
	m->part = part;
}

void kv_timing_mark(const char *name)
{
	if (!timing.start)
		kv_timing_start();
	uint64_t now = kv_now_ns();
	timing_add(name, now - timing.last, false);
	timing.last = now;
}

void kv_timing_part(const char *name, uint64_t ns)
{
	timing_add(name, ns, true);
}

bool kv_timing_wanted(void)
{
	const char *v = getenv("KVRUN_TIMINGS");
	return v && *v && strcmp(v, "0") != 0;
}

static void timing_parts(FILE *f, unsigned from, unsigned to)
{
	for (unsigned k = from; k < to; k++)
		fprintf(f, "%s%s %.2f ms", k == from ? " [" : ", ", timing.marks[k].name,
			timing.marks[k].ns / 1e6);
	if (from < to)
		fputc(']', f);
}

char *kv_timing_line(void)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	unsigned parts = 0, phases = 0; /* parts: the first not yet shown */
	for (unsigned i = 0; i < timing.n; i++) {
		const struct timing_mark *m = &timing.marks[i];
		if (m->part)
			continue;
		/* A phase, then the parts marked during it (before it ended). */
		fprintf(f, "%s%s %.2f ms", phases++ ? ", " : "", m->name, m->ns / 1e6);
		timing_parts(f, parts, i);
		parts = i + 1;
	}
	timing_parts(f, parts, timing.n);
	fprintf(f, " = %.2f ms", (timing.last - timing.start) / 1e6);
	fclose(f);
	return out;
}

void kv_timing_json(struct kv_json *j)
{
	kv_json_array_open(j);
	for (unsigned i = 0; i < timing.n; i++) {
		kv_json_array_open(j);
		kv_json_str(j, timing.marks[i].name);
		kv_json_int(j, (long long)timing.marks[i].ns);
		kv_json_array_close(j);
	}
	kv_json_array_close(j);
}
