/* model_runs.c: see model_runs.h. */
#include "tests/support/model_runs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/hf_golden_util.h"
#include "tests/support/test_common.h"

/* One forward with taps kept; logits into *lg; next tokens (greedy) into next[B]. */
static void step(dsv32_model *m, const char *label, const int64_t *tok, int64_t B, int64_t len,
		 int64_t pos, hf_tapset *taps, dsv32_tensor *lg, int64_t *next)
{
	dsv32_error err = {0};
	m->taps = (dsv32_tap_sink){hf_tapset_on_tap, taps};
	dsv32_status rc = m->vt->forward(m, tok, B, len, pos, lg, &err);
	m->taps = (dsv32_tap_sink){0};
	if (rc != DSV32_OK)
		fail_msg("%s: forward at position %lld: %s", label, (long long)pos, err.what);
	int64_t V = lg->shape[lg->ndim - 1];
	for (int64_t b = 0; b < B; b++)
		next[b] = tc_argmax_f32((const float *)lg->data + b * V, V);
}

static bool same(const dsv32_tensor *x, const dsv32_tensor *y)
{
	return x->dtype == y->dtype && dsv32_tensor_same_shape(x, y) &&
	       memcmp(x->data, y->data, dsv32_tensor_nbytes(y)) == 0;
}

static void compare_step(const hf_tapset *ta, const hf_tapset *tb, const dsv32_tensor *la,
			 const dsv32_tensor *lb, const char *label_a, const char *label_b, int s)
{
	assert_int_equal(ta->n, tb->n);
	assert_true(tb->n > 20);
	for (int i = 0; i < tb->n; i++) {
		const dsv32_tensor *x = hf_tapset_get(ta, tb->name[i]);
		if (!x)
			fail_msg("step %d: tap %s missing in the %s run", s, tb->name[i], label_a);
		if (!same(x, &tb->t[i]))
			fail_msg("step %d: tap %s differs between %s and %s", s, tb->name[i], label_a,
				 label_b);
	}
	if (!same(la, lb))
		fail_msg("step %d: logits differ between %s and %s", s, label_a, label_b);
}

void mr_assert_runs_identical(dsv32_model *a, const char *label_a, dsv32_model *b,
			      const char *label_b, const int64_t *prompt, int64_t B, int64_t S,
			      int steps)
{
	int64_t *ca = malloc((size_t)(B * S) * sizeof *ca), *cb = malloc((size_t)(B * S) * sizeof *cb);
	assert_non_null(ca);
	assert_non_null(cb);
	memcpy(ca, prompt, (size_t)(B * S) * sizeof *ca);
	memcpy(cb, prompt, (size_t)(B * S) * sizeof *cb);
	int64_t pos = 0, len = S;
	for (int s = 0; s < steps; s++) {
		hf_tapset *ta = calloc(1, sizeof *ta), *tb = calloc(1, sizeof *tb);
		assert_non_null(ta);
		assert_non_null(tb);
		dsv32_tensor la = {0}, lb = {0};
		step(a, label_a, ca, B, len, pos, ta, &la, ca);
		step(b, label_b, cb, B, len, pos, tb, &lb, cb);
		compare_step(ta, tb, &la, &lb, label_a, label_b, s);
		hf_tapset_clear(ta);
		hf_tapset_clear(tb);
		free(ta);
		free(tb);
		dsv32_tensor_free(&la);
		dsv32_tensor_free(&lb);
		pos += len;
		len = 1;
	}
	free(ca);
	free(cb);
}
