/* tokens.c: parsing token-id lists (see tokens.h for the accepted text, JSON and recordings). */
#include "core/tokens.h"

#include <ctype.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/infile.h"
#include "core/rng.h"
#include "core/safetensors.h"

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

/* A growing NUL-terminated string (the text form built from JSON or a recording). */
typedef struct {
	char *s;
	size_t len, cap;
} vec_text;

static bool text_printf(vec_text *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool text_printf(vec_text *v, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf)
		return false;
	if (v->len + (size_t)n + 1 > v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		while (cap < v->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(v->s, cap);
		if (!p)
			return false;
		v->s = p;
		v->cap = cap;
	}
	memcpy(v->s + v->len, buf, (size_t)n + 1);
	v->len += (size_t)n;
	return true;
}

/* One JSON row of ids appended to the text form ("5,17,42;"); false on a non-id element. */
static bool json_row_text(const cJSON *row, vec_text *out)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, row) {
		double v = cJSON_IsNumber(x) ? x->valuedouble : -1;
		if (!(v >= 0 && v < 9007199254740992.0 && v == (double)(int64_t)v))
			return false;
		if (!text_printf(out, "%s%lld", x == row->child ? "" : ",", (long long)v))
			return false;
	}
	return text_printf(out, ";");
}

/* {"prompt": rows} / rows, rows = [[ids], ...] or [ids], turned into the text form so that one
 * parser checks every id, row length and the vocabulary. */
static dsv32_status parse_json(dsv32_tokens *t, const char *body, int64_t vocab_size,
			       dsv32_error *err)
{
	cJSON *root = cJSON_Parse(body);
	const cJSON *rows = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "prompt")
						 : root;
	vec_text txt = {0};
	bool ok = cJSON_IsArray(rows) && cJSON_GetArraySize(rows) > 0;
	if (ok && cJSON_IsArray(rows->child)) {
		for (const cJSON *r = rows->child; ok && r; r = r->next)
			ok = cJSON_IsArray(r) && json_row_text(r, &txt);
	} else if (ok) {
		ok = json_row_text(rows, &txt);
	}
	cJSON_Delete(root);
	dsv32_status rc = ok ? dsv32_tokens_parse(t, txt.s, vocab_size, err)
			     : DSV32_FAIL(err, DSV32_E_USAGE,
					  "JSON token file: expected {\"prompt\": [[ids], ...]} or "
					  "[[ids], ...] of non-negative integers");
	free(txt.s);
	return rc;
}

/* A recording's prompt: step0.input_ids, I64 [B, S]. */
static dsv32_status load_recording(dsv32_tokens *t, const char *path, int64_t vocab_size,
				   dsv32_error *err)
{
	dsv32_st_file *f;
	DSV32_TRY(dsv32_st_open(&f, path, err));
	const dsv32_st_entry *e = dsv32_st_find(f, "step0.input_ids");
	dsv32_status rc = DSV32_OK;
	if (!e || e->dtype != DSV32_I64 || e->ndim != 2 || e->shape[0] < 1 || e->shape[1] < 1)
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: no step0.input_ids (I64 [B, S]): not a "
				"recording in the tap format", path);
	vec_text txt = {0};
	const unsigned char *ids = rc == DSV32_OK ? dsv32_st_data(f, e) : NULL;
	for (int64_t i = 0; ids && rc == DSV32_OK && i < e->shape[0] * e->shape[1]; i++) {
		int64_t id; /* the data section need not be 8-byte aligned */
		memcpy(&id, ids + (size_t)i * sizeof id, sizeof id);
		if (!text_printf(&txt, "%lld%s", (long long)id, (i + 1) % e->shape[1] ? "," : ";"))
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: the prompt as text", path);
	}
	dsv32_st_close(f);
	if (rc == DSV32_OK)
		rc = dsv32_tokens_parse(t, txt.s, vocab_size, err);
	free(txt.s);
	return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

dsv32_status dsv32_tokens_load(dsv32_tokens *t, const char *arg, int64_t vocab_size,
			       dsv32_error *err)
{
	memset(t, 0, sizeof *t);
	if (arg[0] != '@')
		return dsv32_tokens_parse(t, arg, vocab_size, err);
	if (ends_with(arg + 1, ".safetensors"))
		return load_recording(t, arg + 1, vocab_size, err);
	char *text = NULL;
	size_t len = 0;
	DSV32_TRY(dsv32_infile_read(arg + 1, DSV32_INFILE_TOKENS, &text, &len, err));
	if (strlen(text) != len) {
		free(text);
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: contains a NUL byte: not a token file", arg + 1);
	}
	const char *body = text + strspn(text, " \t\r\n");
	dsv32_status rc = *body == '{' || *body == '['
				  ? parse_json(t, body, vocab_size, err)
				  : dsv32_tokens_parse(t, text, vocab_size, err);
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
