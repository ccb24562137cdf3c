/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The table layout of `runc list`: Go's text/tabwriter with minwidth 12,
 * padding 3, padded with spaces. Every cell but a row's last is padded to
 * its column's width (widest cell + 3, at least 12); the last is printed
 * as it is. Widths count UTF-8 characters, as tabwriter counts runes.
 */
#include "runtime/runtime.h"

#include <string.h>

#define TABLE_MINWIDTH 12
#define TABLE_PADDING  3

struct table {
	size_t ncols, nrows, cap;
	char **cells; /* nrows * ncols */
};

struct table *table_new(size_t ncols)
{
	struct table *t = kv_malloc0(sizeof(*t));
	t->ncols = ncols;
	return t;
}

void table_add_row(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
		if (!t->cells)
			abort();
	}
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = kv_strdup(cells[c]);
	t->nrows++;
}

static size_t text_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

void table_print(struct table *t, FILE *f)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (c + 1 == t->ncols) {
				fprintf(f, "%s\n", cell);
				break;
			}
			size_t w = TABLE_MINWIDTH;
			for (size_t k = 0; k < t->nrows; k++) {
				size_t cw = text_width(t->cells[k * t->ncols + c]) + TABLE_PADDING;
				if (cw > w)
					w = cw;
			}
			fputs(cell, f);
			for (size_t pad = text_width(cell); pad < w; pad++)
				fputc(' ', f);
		}
	}
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
