/* hf_golden_util.h: helpers of the hf_layout tests: a tap sink that keeps host copies by name,
 * bf16 ulp statistics, and golden-file access. Test support only. */
#ifndef DSV32_TESTS_HF_GOLDEN_UTIL_H
#define DSV32_TESTS_HF_GOLDEN_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "core/model.h"

#define HF_TAPS_MAX 512

typedef struct {
	int n;
	char *name[HF_TAPS_MAX];
	dsv32_tensor t[HF_TAPS_MAX];
} hf_tapset;

static inline dsv32_status hf_tapset_copy(dsv32_tensor *dst, const dsv32_tensor *t,
					  dsv32_error *err)
{
	DSV32_TRY(dsv32_tensor_alloc(dst, t->dtype, t->ndim, t->shape, err));
	memcpy(dst->data, t->data, dsv32_tensor_nbytes(t));
	return DSV32_OK;
}

static inline dsv32_status hf_tapset_on_tap(void *user, const char *name, const dsv32_tensor *t,
					    dsv32_error *err)
{
	hf_tapset *s = user;
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0) { /* replace (a later forward) */
			dsv32_tensor_free(&s->t[i]);
			return hf_tapset_copy(&s->t[i], t, err);
		}
	if (s->n >= HF_TAPS_MAX)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "test tap set full (%d taps)", HF_TAPS_MAX);
	s->name[s->n] = strdup(name);
	if (!s->name[s->n])
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tap %s", name);
	dsv32_status rc = hf_tapset_copy(&s->t[s->n], t, err);
	if (rc != DSV32_OK) {
		free(s->name[s->n]);
		return rc;
	}
	s->n++;
	return DSV32_OK;
}

static inline const dsv32_tensor *hf_tapset_get(const hf_tapset *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return &s->t[i];
	return NULL;
}

static inline void hf_tapset_clear(hf_tapset *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->name[i]);
		dsv32_tensor_free(&s->t[i]);
	}
	s->n = 0;
}

static inline int hf_bf16_ord(uint16_t u)
{
	return (u & 0x8000u) ? -(int)(u & 0x7fffu) : (int)(u & 0x7fffu);
}

/* bf16 ulp distance statistics between two BF16 tensors of equal numel. */
typedef struct {
	int64_t n, over1, over0;
	int max_ulp;
	double max_abs;
} hf_ulp_stats;

static inline hf_ulp_stats hf_ulp_compare(const dsv32_tensor *a, const dsv32_tensor *b)
{
	hf_ulp_stats st = {0};
	int64_t n = dsv32_tensor_numel(a);
	const uint16_t *x = a->data, *y = b->data;
	st.n = n;
	for (int64_t i = 0; i < n; i++) {
		int d = abs(hf_bf16_ord(x[i]) - hf_bf16_ord(y[i]));
		double fa = dsv32_bf16_to_f32(x[i]), fb = dsv32_bf16_to_f32(y[i]);
		if (d > st.max_ulp)
			st.max_ulp = d;
		if (d > 1)
			st.over1++;
		if (d > 0)
			st.over0++;
		if (fabs(fa - fb) > st.max_abs)
			st.max_abs = fabs(fa - fb);
	}
	return st;
}

#endif
