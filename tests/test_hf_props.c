/* test_hf_props.c: properties of the HF-layout model (hf_layout/) on the tiny checkpoint
 * (fixtures/golden/ref_tiny/hf), independent of transformers:
 *   - decode with the cache == a full prefill of the same tokens (fp32 profile, 1e-5 relative);
 *   - chunked prefill (two multi-token calls) == one prefill (fp32 1e-5; bf16 measured);
 *   - a left-padded batch row == that row run alone (bf16, within reduction noise, measured);
 *   - logits_to_keep (the last k positions, bit-identical to the same rows of keep = 0);
 *   - bad input gets DSV32_E_USAGE with a message naming the values.
 * "relative" = max |a - b| / max |b| over a logits row. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hf_layout/hf_model.h"

#define CKPT DSV32_SOURCE_DIR "/fixtures/golden/ref_tiny/hf"
#define S_MAX 20

static const int64_t PROMPT[2][S_MAX] = {
	{5, 17, 42, 7, 300, 901, 12, 77, 512, 3, 64, 128, 999, 1000, 8, 21, 34, 55, 89, 144},
	{11, 250, 33, 470, 2, 618, 71, 840, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67},
};

static dsv32_model *open_model(dsv32_profile prof, int64_t max_b)
{
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.profile = prof;
	o.max_batch_size = max_b;
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	if (dsv32_hf_open_dir(&m, CKPT, &o, &err) != DSV32_OK)
		fail_msg("open: %s", err.what);
	return m;
}

static float lval(const dsv32_tensor *t, int64_t i)
{
	return t->dtype == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)t->data)[i])
				      : ((const float *)t->data)[i];
}

/* max over rows of max|a-b| / max|b|, rows of V values at a_off / b_off (in rows) */
static double row_rel(const dsv32_tensor *a, int64_t ar, const dsv32_tensor *b, int64_t br,
		      int64_t V)
{
	double md = 0, mb = 0;
	for (int64_t v = 0; v < V; v++) {
		double x = lval(a, ar * V + v), y = lval(b, br * V + v);
		md = fmax(md, fabs(x - y));
		mb = fmax(mb, fabs(y));
	}
	return md / mb;
}

static void fwd(dsv32_model *m, const int64_t *ids, int64_t B, int64_t S, const int64_t *am,
		const int64_t *pos, int64_t keep, dsv32_tensor *out)
{
	dsv32_error err = {0};
	if (dsv32_hf_forward(m, ids, B, S, am, pos, keep, out, &err) != DSV32_OK)
		fail_msg("forward: %s", err.what);
}

/* One row of B tokens at step s of the prompt rows [0, B). */
static void ids_range(int64_t *dst, int64_t B, int64_t s0, int64_t n)
{
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < n; s++)
			dst[b * n + s] = PROMPT[b][s0 + s];
}

static void test_decode_matches_prefill_fp32(void **state)
{
	(void)state;
	const int64_t B = 2, S = S_MAX, P = 12, V = 1024;
	dsv32_model *m = open_model(DSV32_PROFILE_FP32, B);
	int64_t ids[2 * S_MAX];
	dsv32_tensor full = {0};
	ids_range(ids, B, 0, S);
	fwd(m, ids, B, S, NULL, NULL, 0, &full);
	assert_int_equal(full.dtype, DSV32_F32);
	m->vt->reset(m);
	dsv32_tensor part = {0};
	ids_range(ids, B, 0, P);
	fwd(m, ids, B, P, NULL, NULL, 1, &part);
	double worst = 0;
	for (int64_t b = 0; b < B; b++)
		worst = fmax(worst, row_rel(&part, b, &full, b * S + P - 1, V));
	dsv32_tensor_free(&part);
	for (int64_t s = P; s < S; s++) { /* decode one token at a time */
		ids_range(ids, B, s, 1);
		fwd(m, ids, B, 1, NULL, NULL, 0, &part);
		assert_int_equal(dsv32_hf_cache_length(m), s + 1);
		for (int64_t b = 0; b < B; b++)
			worst = fmax(worst, row_rel(&part, b, &full, b * S + s, V));
		dsv32_tensor_free(&part);
	}
	printf("  decode vs prefill (fp32): max relative %.3e\n", worst);
	assert_true(worst <= 1e-5);
	dsv32_tensor_free(&full);
	m->vt->close(m);
}

static void chunked(dsv32_profile prof, double *rel_out, int64_t *ndiff_out)
{
	const int64_t B = 2, S = S_MAX, C1 = 7, V = 1024;
	dsv32_model *m = open_model(prof, B);
	int64_t ids[2 * S_MAX];
	dsv32_tensor full = {0}, a = {0}, b2 = {0};
	ids_range(ids, B, 0, S);
	fwd(m, ids, B, S, NULL, NULL, 0, &full);
	m->vt->reset(m);
	ids_range(ids, B, 0, C1);
	fwd(m, ids, B, C1, NULL, NULL, 0, &a);
	ids_range(ids, B, C1, S - C1);
	fwd(m, ids, B, S - C1, NULL, NULL, 0, &b2);
	assert_int_equal(dsv32_hf_cache_length(m), S);
	double worst = 0;
	int64_t ndiff = 0;
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < S; s++) {
			const dsv32_tensor *t = s < C1 ? &a : &b2;
			int64_t r = s < C1 ? b * C1 + s : b * (S - C1) + s - C1;
			worst = fmax(worst, row_rel(t, r, &full, b * S + s, V));
			for (int64_t v = 0; v < V; v++)
				ndiff += lval(t, r * V + v) != lval(&full, (b * S + s) * V + v);
		}
	*rel_out = worst;
	*ndiff_out = ndiff;
	dsv32_tensor_free(&full);
	dsv32_tensor_free(&a);
	dsv32_tensor_free(&b2);
	m->vt->close(m);
}

static void test_chunked_prefill(void **state)
{
	(void)state;
	double rel;
	int64_t nd;
	chunked(DSV32_PROFILE_FP32, &rel, &nd);
	printf("  chunked vs one prefill (fp32): max relative %.3e, %lld logits differ\n", rel,
	       (long long)nd);
	assert_true(rel <= 1e-5);
	/* bf16: every row is its own GEMM row and the attention of a query row reads the same
	 * keys in the same order, so the bf16 profile is bit-identical too (measured: 0 differ) */
	chunked(DSV32_PROFILE_BF16, &rel, &nd);
	printf("  chunked vs one prefill (bf16): max relative %.3e, %lld logits differ\n", rel,
	       (long long)nd);
	assert_int_equal(nd, 0);
}

static void test_left_padded_row_matches_alone(void **state)
{
	(void)state;
	const int64_t L1 = 13, S = S_MAX, NPAD = S - L1, V = 1024, NDEC = 3;
	/* row 0: full prompt row 0; row 1: NPAD pad ids (0) then the first L1 tokens of row 1 */
	int64_t ids[2 * S_MAX], am[2 * (S_MAX + 4)], pos[2 * S_MAX];
	for (int64_t s = 0; s < S; s++) {
		ids[s] = PROMPT[0][s];
		ids[S + s] = s < NPAD ? 0 : PROMPT[1][s - NPAD];
		pos[s] = s;
		pos[S + s] = s < NPAD ? 1 : s - NPAD; /* generate(): cumsum - 1, pads 1 */
	}
	dsv32_model *m = open_model(DSV32_PROFILE_BF16, 2);
	dsv32_model *m1 = open_model(DSV32_PROFILE_BF16, 1);
	double worst = 0;
	int64_t ndiff = 0, nover1 = 0, n = 0;
	int64_t T = S;
	dsv32_tensor lb = {0}, l1 = {0};
	for (int64_t step = 0; step <= NDEC; step++) {
		for (int64_t b = 0; b < 2; b++)
			for (int64_t t = 0; t < T; t++)
				am[b * T + t] = b == 1 && t < NPAD ? 0 : 1;
		if (step == 0) {
			fwd(m, ids, 2, S, am, pos, 1, &lb);
			fwd(m1, ids + S + NPAD, 1, L1, NULL, NULL, 1, &l1);
		} else { /* decode a fixed token in both rows */
			int64_t d[2] = {PROMPT[0][step], PROMPT[1][L1 + step]};
			int64_t dp[2] = {S - 1 + step, L1 - 1 + step};
			fwd(m, d, 2, 1, am, dp, 1, &lb);
			fwd(m1, &d[1], 1, 1, NULL, NULL, 1, &l1);
		}
		worst = fmax(worst, row_rel(&lb, 1, &l1, 0, V));
		const uint16_t *x = (const uint16_t *)lb.data + V, *y = l1.data;
		for (int64_t v = 0; v < V; v++, n++) {
			int dx = (x[v] & 0x8000) ? -(int)(x[v] & 0x7fff) : (int)(x[v] & 0x7fff);
			int dy = (y[v] & 0x8000) ? -(int)(y[v] & 0x7fff) : (int)(y[v] & 0x7fff);
			ndiff += dx != dy;
			nover1 += abs(dx - dy) > 1;
		}
		dsv32_tensor_free(&lb);
		dsv32_tensor_free(&l1);
		T++;
	}
	printf("  left-padded row vs alone (bf16, prefill + %lld decode steps): %lld of %lld logits "
	       "differ, %lld by > 1 ulp, max relative %.3e\n", (long long)NDEC, (long long)ndiff,
	       (long long)n, (long long)nover1, worst);
	/* The padded row's valid keys, positions and weights are the same; what differs is the
	 * key count (masked pad keys contribute exp(finfo.min - max) = 0 exactly, so softmax sums
	 * are the same) and the GEMM batch (M = 2·20 rows vs 13): bf16 reduction noise only.
	 * Budget: every logit within 1 bf16 ulp (measured above). */
	assert_int_equal(nover1, 0);
	m->vt->close(m);
	m1->vt->close(m1);
}

static void test_logits_to_keep(void **state)
{
	(void)state;
	const int64_t B = 2, S = 9, V = 1024;
	dsv32_model *m = open_model(DSV32_PROFILE_BF16, B);
	int64_t ids[2 * 9];
	ids_range(ids, B, 0, S);
	dsv32_tensor all = {0}, k3 = {0}, kbig = {0};
	fwd(m, ids, B, S, NULL, NULL, 0, &all);
	assert_int_equal(all.ndim, 3);
	assert_int_equal(all.shape[1], S);
	assert_int_equal(all.shape[2], V);
	m->vt->reset(m);
	fwd(m, ids, B, S, NULL, NULL, 3, &k3);
	assert_int_equal(k3.shape[0], B);
	assert_int_equal(k3.shape[1], 3);
	for (int64_t b = 0; b < B; b++)
		assert_memory_equal((const uint16_t *)k3.data + b * 3 * V,
				    (const uint16_t *)all.data + (b * S + S - 3) * V, 3 * V * 2);
	m->vt->reset(m);
	fwd(m, ids, B, S, NULL, NULL, 100, &kbig); /* more than S: all S positions */
	assert_int_equal(kbig.shape[1], S);
	assert_memory_equal(kbig.data, all.data, (size_t)(B * S * V * 2));
	dsv32_error err = {0};
	dsv32_tensor x = {0};
	m->vt->reset(m);
	assert_int_equal(dsv32_hf_forward(m, ids, B, S, NULL, NULL, -1, &x, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "logits_to_keep = -1"));
	dsv32_tensor_free(&all);
	dsv32_tensor_free(&k3);
	dsv32_tensor_free(&kbig);
	m->vt->close(m);
}

static void test_bad_input(void **state)
{
	(void)state;
	dsv32_model *m = open_model(DSV32_PROFILE_BF16, 2);
	dsv32_error err = {0};
	dsv32_tensor x = {0};
	int64_t ids[4] = {5, 1024, 7, 8};
	assert_int_equal(dsv32_hf_forward(m, ids, 2, 2, NULL, NULL, 0, &x, &err), DSV32_E_USAGE);
	printf("  %s\n", err.what);
	assert_non_null(strstr(err.what, "input_ids[0][1] = 1024"));
	assert_non_null(strstr(err.what, "[0, 1024)"));
	ids[1] = -3;
	assert_int_equal(dsv32_hf_forward(m, ids, 2, 2, NULL, NULL, 0, &x, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "= -3"));
	assert_int_equal(dsv32_hf_cache_length(m), 0); /* nothing cached by a failed call */
	ids[1] = 6;
	/* a sequence of batch 2, then a call with batch 1 */
	fwd(m, ids, 2, 2, NULL, NULL, 0, &x);
	dsv32_tensor_free(&x);
	assert_int_equal(dsv32_hf_forward(m, ids, 1, 1, NULL, NULL, 0, &x, &err), DSV32_E_USAGE);
	printf("  %s\n", err.what);
	assert_non_null(strstr(err.what, "batch 1"));
	assert_non_null(strstr(err.what, "batch 2"));
	/* positions that do not match the cache (the common start_pos API) */
	assert_int_equal(m->vt->forward(m, ids, 2, 1, 5, &x, &err), DSV32_E_USAGE);
	printf("  %s\n", err.what);
	assert_non_null(strstr(err.what, "start_pos 5"));
	assert_non_null(strstr(err.what, "cache length 2"));
	/* negative position ids, a mask value other than 0/1, the cache capacity */
	int64_t pos[2] = {2, -1};
	assert_int_equal(dsv32_hf_forward(m, ids, 2, 1, NULL, pos, 0, &x, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "position_ids[1][0] = -1"));
	int64_t am[6] = {1, 1, 1, 1, 2, 1};
	assert_int_equal(dsv32_hf_forward(m, ids, 2, 1, am, NULL, 0, &x, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "attention_mask[1][1] = 2"));
	int64_t big[2 * 64] = {0};
	assert_int_equal(dsv32_hf_forward(m, big, 2, 63, NULL, NULL, 0, &x, &err), DSV32_E_USAGE);
	printf("  %s\n", err.what);
	assert_non_null(strstr(err.what, "capacity 64"));
	assert_int_equal(dsv32_hf_cache_length(m), 2);
	m->vt->close(m);
	/* open errors always fill err (a missing checkpoint, a config that is not HF) */
	dsv32_model *mm = (dsv32_model *)1;
	memset(&err, 0, sizeof err);
	/* a missing config is E_NOTFOUND since inputs open through core/infile (issue 14) */
	assert_int_equal(dsv32_hf_open_dir(&mm, "/nonexistent-hf2", NULL, &err), DSV32_E_NOTFOUND);
	assert_null(mm);
	assert_int_not_equal(err.code, DSV32_OK);
	assert_non_null(strstr(err.what, "/nonexistent-hf2/config.json"));
	memset(&err, 0, sizeof err);
	assert_int_not_equal(dsv32_hf_open(&mm, CKPT, "/nonexistent-hf2.json", NULL, &err), DSV32_OK);
	assert_int_not_equal(err.code, DSV32_OK);
	assert_non_null(strstr(err.what, "/nonexistent-hf2.json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_matches_prefill_fp32),
		cmocka_unit_test(test_chunked_prefill),
		cmocka_unit_test(test_left_padded_row_matches_alone),
		cmocka_unit_test(test_logits_to_keep),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
