/* tokens.c: parsing token-id lists (see tokens.h for the accepted text). */
#include "core/tokens.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/infile.h"
#include "core/rng.h"

#define TOKENS_MAX_ID (INT64_C(1) << 62)

void dsv32_tokens_free(dsv32_tokens *t)
{
	free(t->ids);
	memset(t, 0, sizeof *t);
}

typedef struct {
	int64_t *v;
	size_t n, cap;
} vec;

static bool vec_push(vec *a, int64_t x)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		int64_t *p = realloc(a->v, nc * sizeof *p);
		if (!p)
			return false;
		a->v = p;
		a->cap = nc;
	}
	a->v[a->n++] = x;
	return true;
}

/* Close a row: check its length against the first row. */
static dsv32_status end_row(vec *a, int64_t *rows, int64_t *cols, int64_t row_len,
			    dsv32_error *err)
{
	if (row_len == 0)
		return DSV32_OK; /* blank lines and trailing separators */
	if (*rows == 0)
		*cols = row_len;
	else if (row_len != *cols)
		return DSV32_FAIL(err, DSV32_E_USAGE, "tokens: row %lld has %lld ids, row 0 has %lld",
				  (long long)*rows, (long long)row_len, (long long)*cols);
	(*rows)++;
	(void)a;
	return DSV32_OK;
}

dsv32_status dsv32_tokens_parse(dsv32_tokens *t, const char *text, int64_t vocab_size,
				dsv32_error *err)
{
	memset(t, 0, sizeof *t);
	vec a = {0};
	int64_t rows = 0, cols = 0, row_len = 0;
	dsv32_status rc = DSV32_OK;
	const char *p = text;
	while (*p && rc == DSV32_OK) {
		if (*p == '#') {
			while (*p && *p != '\n')
				p++;
		} else if (*p == ';' || *p == '\n') {
			rc = end_row(&a, &rows, &cols, row_len, err);
			row_len = 0;
			p++;
		} else if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r') {
			p++;
		} else if (isdigit((unsigned char)*p)) {
			errno = 0;
			char *end;
			long long v = strtoll(p, &end, 10);
			if (errno == ERANGE || v >= TOKENS_MAX_ID)
				rc = DSV32_FAIL(err, DSV32_E_USAGE, "tokens: row %lld, id %lld: '%.20s' is too large",
						(long long)rows, (long long)row_len, p);
			else if (vocab_size > 0 && v >= vocab_size)
				rc = DSV32_FAIL(err, DSV32_E_USAGE,
						"tokens: row %lld, id %lld: %lld is outside the vocabulary [0, %lld)",
						(long long)rows, (long long)row_len, v, (long long)vocab_size);
			else if (!vec_push(&a, v))
				rc = DSV32_FAIL(err, DSV32_E_NOMEM, "tokens: %zu ids", a.n);
			row_len++;
			p = end;
		} else {
			rc = DSV32_FAIL(err, DSV32_E_USAGE,
					"tokens: row %lld, id %lld: unexpected '%c' (expected ids separated by ',' and rows by ';')",
					(long long)rows, (long long)row_len, isprint((unsigned char)*p) ? *p : '?');
		}
	}
	if (rc == DSV32_OK)
		rc = end_row(&a, &rows, &cols, row_len, err);
	if (rc == DSV32_OK && rows == 0)
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "tokens: no token ids given");
	if (rc != DSV32_OK) {
		free(a.v);
		return rc;
	}
	t->ids = a.v;
	t->rows = rows;
	t->cols = cols;
	return DSV32_OK;
}

dsv32_status dsv32_tokens_load(dsv32_tokens *t, const char *arg, int64_t vocab_size,
			       dsv32_error *err)
{
	memset(t, 0, sizeof *t);
	if (arg[0] != '@')
		return dsv32_tokens_parse(t, arg, vocab_size, err);
	char *text = NULL;
	size_t len = 0;
	DSV32_TRY(dsv32_infile_read(arg + 1, DSV32_INFILE_TOKENS, &text, &len, err));
	if (strlen(text) != len) {
		free(text);
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: contains a NUL byte: not a token file", arg + 1);
	}
	dsv32_status rc = dsv32_tokens_parse(t, text, vocab_size, err);
	free(text);
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "%s", arg + 1);
	return rc;
}

dsv32_status dsv32_tokens_random(dsv32_tokens *t, int64_t rows, int64_t cols, int64_t vocab_size,
				 uint64_t seed, dsv32_error *err)
{
	memset(t, 0, sizeof *t);
	if (rows < 1 || cols < 1 || vocab_size < 3)
		return DSV32_FAIL(err, DSV32_E_USAGE, "random tokens: %lld x %lld ids over vocab %lld",
				  (long long)rows, (long long)cols, (long long)vocab_size);
	t->ids = malloc((size_t)(rows * cols) * sizeof *t->ids);
	if (!t->ids)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "random tokens");
	dsv32_rng r;
	dsv32_rng_seed_named(&r, seed, "prompt");
	for (int64_t i = 0; i < rows * cols; i++)
		t->ids[i] = dsv32_rng_range(&r, 2, vocab_size - 1);
	t->rows = rows;
	t->cols = cols;
	return DSV32_OK;
}
