/* ref_golden.c: tap store, tokens.json reader and drift metrics for the ref golden tests. */
#include "tests/support/ref_golden.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

static dsv32_status store_on_tap(void *user, const char *name, const dsv32_tensor *t,
				 dsv32_error *err)
{
	ref_tap_store *s = user;
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 256;
		ref_tap_entry *e = realloc(s->e, (size_t)cap * sizeof *e);
		if (!e)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "tap store (%d taps)", cap);
		s->e = e;
		s->cap = cap;
	}
	ref_tap_entry *e = &s->e[s->n];
	size_t len = strlen(s->prefix) + strlen(name) + 1;
	e->name = malloc(len);
	if (!e->name)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tap %s", name);
	snprintf(e->name, len, "%s%s", s->prefix, name);
	dsv32_status rc = dsv32_tensor_alloc(&e->t, t->dtype, t->ndim, t->shape, err);
	if (rc != DSV32_OK) {
		free(e->name);
		return rc;
	}
	memcpy(e->t.data, t->data, dsv32_tensor_nbytes(t));
	s->n++;
	return DSV32_OK;
}

void ref_store_sink(ref_tap_store *s, dsv32_tap_sink *sink)
{
	sink->on_tap = store_on_tap;
	sink->user = s;
}

void ref_store_clear(ref_tap_store *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->e[i].name);
		dsv32_tensor_free(&s->e[i].t);
	}
	free(s->e);
	s->e = NULL;
	s->n = s->cap = 0;
}

const dsv32_tensor *ref_store_get(const ref_tap_store *s, const char *name)
{
	for (int i = s->n - 1; i >= 0; i--) /* the latest emission wins */
		if (!strcmp(s->e[i].name, name))
			return &s->e[i].t;
	return NULL;
}

static int64_t *int_matrix(const cJSON *a, int64_t *rows, int64_t *cols)
{
	*rows = cJSON_GetArraySize(a);
	*cols = *rows ? cJSON_GetArraySize(cJSON_GetArrayItem(a, 0)) : 0;
	int64_t *v = calloc((size_t)(*rows * *cols + 1), sizeof *v);
	if (!v)
		return NULL;
	for (int64_t i = 0; i < *rows; i++)
		for (int64_t j = 0; j < *cols; j++)
			v[i * *cols + j] = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(a, (int)i),
									(int)j)->valuedouble;
	return v;
}

bool ref_tokens_load(ref_tokens *t, const char *path)
{
	memset(t, 0, sizeof *t);
	char *txt = NULL;
	size_t len;
	if (dsv32_read_file(path, 1 << 20, &txt, &len, NULL) != DSV32_OK)
		return false;
	cJSON *j = cJSON_Parse(txt);
	free(txt);
	if (!j)
		return false;
	int64_t r2, c2;
	t->prompt = int_matrix(cJSON_GetObjectItem(j, "prompt"), &t->B, &t->prompt_len);
	t->generated = int_matrix(cJSON_GetObjectItem(j, "generated"), &r2, &t->n_new);
	cJSON *steps = cJSON_GetObjectItem(j, "steps");
	t->n_steps = cJSON_GetArraySize(steps);
	if (t->n_steps > 16)
		t->n_steps = 16;
	for (int i = 0; i < t->n_steps; i++) {
		cJSON *s = cJSON_GetArrayItem(steps, i);
		t->start_pos[i] = (int64_t)cJSON_GetObjectItem(s, "start_pos")->valuedouble;
		t->seqlen[i] = (int64_t)cJSON_GetObjectItem(s, "seqlen")->valuedouble;
	}
	(void)c2;
	cJSON_Delete(j);
	return t->prompt && t->generated && r2 == t->B;
}

void ref_tokens_free(ref_tokens *t)
{
	free(t->prompt);
	free(t->generated);
	memset(t, 0, sizeof *t);
}

/* Order-preserving integer of a bf16 / f32 value (for ULP distances). */
static int64_t ord16(uint16_t h)
{
	return (h & 0x8000u) ? -(int64_t)(h & 0x7fffu) : (int64_t)h;
}
static int64_t ord32(uint32_t u)
{
	return (u & 0x80000000u) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

static int cmp_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

ref_metric ref_compare(const dsv32_tensor *got, const dsv32_tensor *want,
		       const dsv32_tensor *scores, bool as_sequence)
{
	ref_metric r;
	memset(&r, 0, sizeof r);
	r.shape_ok = got && want && dsv32_tensor_same_shape(got, want);
	if (!r.shape_ok)
		return r;
	int64_t n = dsv32_tensor_numel(want);
	r.n = n;
	if (want->dtype == DSV32_I64 || want->dtype == DSV32_I32) {
		int64_t k = want->shape[want->ndim - 1], rows = k ? n / k : 0;
		const int64_t *g = got->data, *w = want->data;
		r.rows = rows;
		for (int64_t i = 0; i < rows; i++) {
			bool same = true;
			for (int64_t a = 0; a < k && same; a++) {
				if (as_sequence) {
					same = g[i * k + a] == w[i * k + a];
					continue;
				}
				bool f = false;
				for (int64_t b = 0; b < k && !f; b++)
					f = g[i * k + a] == w[i * k + b];
				same = f;
			}
			for (int64_t a = 0; a < k; a++)
				r.n_diff += g[i * k + a] != w[i * k + a];
			if (same)
				continue;
			r.rows_diff++;
			bool tied = false;
			if (scores && !as_sequence) {
				int64_t T = scores->shape[scores->ndim - 1];
				const float *sc = (const float *)scores->data + i * T;
				float *x = malloc((size_t)k * sizeof(float)), *y = malloc((size_t)k * sizeof(float));
				tied = x && y;
				for (int64_t a = 0; a < k && tied; a++) {
					if (g[i * k + a] < 0 || g[i * k + a] >= T || w[i * k + a] < 0 ||
					    w[i * k + a] >= T) {
						tied = false;
						break;
					}
					x[a] = sc[g[i * k + a]];
					y[a] = sc[w[i * k + a]];
				}
				if (tied) {
					qsort(x, (size_t)k, sizeof(float), cmp_f);
					qsort(y, (size_t)k, sizeof(float), cmp_f);
					tied = memcmp(x, y, (size_t)k * sizeof(float)) == 0;
				}
				free(x);
				free(y);
			}
			if (!tied)
				r.rows_diff_untied++;
		}
		return r;
	}
	double num = 0, den = 0;
	for (int64_t i = 0; i < n; i++) {
		double a = dsv32_load_f64(got->data, got->dtype, (size_t)i);
		double b = dsv32_load_f64(want->data, want->dtype, (size_t)i);
		bool same_bits;
		int64_t u16, u32 = 0;
		if (want->dtype == DSV32_BF16 && got->dtype == DSV32_BF16) {
			uint16_t x = ((const uint16_t *)got->data)[i], y = ((const uint16_t *)want->data)[i];
			same_bits = x == y;
			u16 = llabs(ord16(x) - ord16(y));
		} else {
			float fa = (float)a, fb = (float)b;
			uint32_t x = dsv32_f32_bits(fa), y = dsv32_f32_bits(fb);
			same_bits = x == y || (fa == fb && isinf(fa));
			u32 = isinf(fa) || isinf(fb) ? (fa == fb ? 0 : INT32_MAX) : llabs(ord32(x) - ord32(y));
			uint16_t hx = dsv32_f32_to_bf16(fa), hy = dsv32_f32_to_bf16(fb);
			u16 = llabs(ord16(hx) - ord16(hy));
			if (!same_bits && u16 == 0)
				u16 = 1;
			if (fa == fb)
				u16 = 0;
		}
		if (!same_bits)
			r.n_diff++;
		if (u16 > r.max_ulp)
			r.max_ulp = u16;
		if (u32 > r.max_ulp_f32)
			r.max_ulp_f32 = u32;
		if (isfinite(a) && isfinite(b)) {
			double d = fabs(a - b);
			if (d > r.max_abs)
				r.max_abs = d;
			num += d * d;
			den += b * b;
		} else if (!(a == b)) {
			r.max_abs = INFINITY;
		}
	}
	r.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
	return r;
}

void ref_golden_dir(char *out, size_t len)
{
	const char *src = getenv("DSV32_SOURCE_DIR");
	snprintf(out, len, "%s/fixtures/golden/ref_tiny", src ? src : DSV32_SOURCE_DIR);
}
