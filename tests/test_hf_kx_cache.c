/* test_hf_kx_cache.c: the hf layout keeps the keys and values expand_kv makes of past positions
 * (hf_layout/attn.c expand_kv_cached, dsv32_model_opts.hf_kx_budget) on the CPU fixed engine,
 * and expands only the new positions each call. That is a speed-up, not a numerics change:
 *   - every tap and the logits of a prefill (beyond index_topk) + 5 greedy decode steps are
 *     bit-identical with the caches and without them (budget < 0), with bf16 weights, with
 *     lazy fp8 weights (kv_b dequantized before each GEMM), and in the fp32 profile;
 *   - after a reset, a new sequence on the same model is identical to a fresh run of it (the
 *     kept positions are not reused);
 *   - the caches are in use by default, not with the host engine, and not past the budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures/generator.h"
#include "hf_layout/hf_model.h"
#include "kernels/gemm.h"
#include "tests/support/model_runs.h"
#include "tests/support/test_common.h"

#define B 2
#define S 20 /* > index_topk 16 of the tiny preset: the indexer selects */
#define STEPS 6
#define CAP 32

static char dir[64], ckpt[96], ckpt8[160];

static dsv32_model *open_hf(const char *path, int64_t budget, dsv32_profile prof, int engine)
{
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.max_batch_size = B;
	o.max_seq_len = CAP;
	o.hf_kx_budget = budget;
	o.profile = prof;
	o.gemm_engine = engine;
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	if (dsv32_hf_open_dir(&m, path, &o, &err) != DSV32_OK)
		fail_msg("open %s: %s", path, err.what);
	return m;
}

static void prompt(int64_t *p, int seed)
{
	for (int i = 0; i < B * S; i++)
		p[i] = (i * 37 + 11 * seed + 5) % 400 + 3;
}

static void check_pair(const char *path, dsv32_profile prof, const char *label)
{
	dsv32_model *kept = open_hf(path, 0, prof, DSV32_GEMM_FIXED);
	dsv32_model *fresh = open_hf(path, -1, prof, DSV32_GEMM_FIXED);
	int64_t p[B * S];
	prompt(p, 1);
	char la[96], lb[96];
	snprintf(la, sizeof la, "expanded caches kept (%s)", label);
	snprintf(lb, sizeof lb, "expanded every call (%s)", label);
	mr_assert_runs_identical(kept, la, fresh, lb, p, B, S, STEPS);
	assert_true(dsv32_hf_expanded_cache_bytes(kept) > 0);
	assert_int_equal(dsv32_hf_expanded_cache_bytes(fresh), 0);
	/* a new sequence after a reset: nothing kept from the first one is reused */
	kept->vt->reset(kept);
	fresh->vt->reset(fresh);
	prompt(p, 2);
	mr_assert_runs_identical(kept, la, fresh, lb, p, B, S, STEPS);
	kept->vt->close(kept);
	fresh->vt->close(fresh);
}

static void test_kept_equals_recomputed_bf16(void **state)
{
	(void)state;
	check_pair(ckpt, DSV32_PROFILE_BF16, "bf16 weights");
}

static void test_kept_equals_recomputed_lazy_fp8(void **state)
{
	(void)state;
	check_pair(ckpt8, DSV32_PROFILE_BF16, "lazy fp8 weights");
}

static void test_kept_equals_recomputed_fp32_profile(void **state)
{
	(void)state;
	check_pair(ckpt, DSV32_PROFILE_FP32, "fp32 profile");
}

/* Only the fixed engine keeps them (the host engine's rows may depend on the GEMM's M), and
 * only within the budget: one tiny layer's caches take B * CAP * heads * (192 + 128) * 2
 * bytes, so a budget of 1 byte keeps none. */
static void test_host_engine_and_small_budget_keep_none(void **state)
{
	(void)state;
	int64_t p[B * S];
	prompt(p, 3);
	dsv32_model *host = open_hf(ckpt, 0, DSV32_PROFILE_BF16, DSV32_GEMM_HOST);
	dsv32_model *tight = open_hf(ckpt, 1, DSV32_PROFILE_BF16, DSV32_GEMM_FIXED);
	dsv32_model *kept = open_hf(ckpt, 0, DSV32_PROFILE_BF16, DSV32_GEMM_FIXED);
	mr_assert_runs_identical(tight, "budget 1 byte", kept, "default budget", p, B, S, 2);
	dsv32_tensor lg = {0};
	dsv32_error err = {0};
	assert_int_equal(host->vt->forward(host, p, B, S, 0, &lg, &err), DSV32_OK);
	dsv32_tensor_free(&lg);
	assert_int_equal(dsv32_hf_expanded_cache_bytes(host), 0);
	assert_int_equal(dsv32_hf_expanded_cache_bytes(tight), 0);
	assert_true(dsv32_hf_expanded_cache_bytes(kept) > 0);
	host->vt->close(host);
	tight->vt->close(tight);
	kept->vt->close(kept);
}

static int group_setup(void **state)
{
	(void)state;
	return tc_fixture_tiny_pair(dir, sizeof dir, ckpt, sizeof ckpt, ckpt8, sizeof ckpt8, "kx");
}

static int group_teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_equals_recomputed_bf16),
		cmocka_unit_test(test_kept_equals_recomputed_lazy_fp8),
		cmocka_unit_test(test_kept_equals_recomputed_fp32_profile),
		cmocka_unit_test(test_host_engine_and_small_budget_keep_none),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
