/* test_hf_lazy.c: lazy fp8 weights of the hf layout (hf_layout/weights.c, docs/hf_layout.md
 * "Lazy fp8 weights") on a generated tiny fp8 checkpoint (dsv32_fixture_write, preset tiny):
 *   - on CPU the default keeps the fp8 matrices as codes + scales (dsv32_hf_lazy_matrices > 0),
 *     opts.eager_dequant keeps none, a bf16 checkpoint has none;
 *   - every tap and the logits of a prefill + 2 greedy decode steps are bit-identical between
 *     lazy and eager, for both experts implementations and both profiles (bf16, fp32): the lazy
 *     path runs the same dsv32_weight_dequant right before each GEMM;
 *   - lazy and opts.layers combine (the first 2 layers, still bit-identical to eager). */
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
#include "tests/support/model_runs.h"
#include "tests/support/test_common.h"

#define B 2
#define S 5
#define STEPS 3 /* prefill + 2 decode steps */

static const int64_t PROMPT[B * S] = {5, 17, 42, 7, 300, 11, 250, 33, 470, 2};
static char dir[64], ckpt[96];

static dsv32_model *open_hf(const char *path, bool eager_dequant, dsv32_experts_impl ex,
			    dsv32_profile prof, int layers)
{
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.max_batch_size = B;
	o.max_seq_len = 16;
	o.eager_dequant = eager_dequant;
	o.experts = ex;
	o.profile = prof;
	o.layers = layers;
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	if (dsv32_hf_open_dir(&m, path, &o, &err) != DSV32_OK)
		fail_msg("open %s: %s", path, err.what);
	return m;
}

static void test_default_is_lazy_on_cpu(void **state)
{
	(void)state;
	dsv32_model *lazy = open_hf(ckpt, false, DSV32_EXPERTS_GROUPED_MM, DSV32_PROFILE_BF16, 0);
	dsv32_model *eager = open_hf(ckpt, true, DSV32_EXPERTS_GROUPED_MM, DSV32_PROFILE_BF16, 0);
	/* tiny: per layer q_a, q_b, kv_a, kv_b, o_proj, wq_b, wk (7) + dense 3 / MoE 3 shared +
	 * 16 x 3 experts */
	int64_t want = 3 * 7 + 3 + 2 * (3 + 16 * 3);
	assert_int_equal(dsv32_hf_lazy_matrices(lazy), want);
	assert_int_equal(dsv32_hf_lazy_matrices(eager), 0);
	lazy->vt->close(lazy);
	eager->vt->close(eager);
	char golden[4096];
	if (tc_golden_path(golden, sizeof golden, "hf/config.json")) { /* a bf16 checkpoint */
		golden[strlen(golden) - strlen("/config.json")] = '\0';
		dsv32_model *m = open_hf(golden, false, DSV32_EXPERTS_GROUPED_MM, DSV32_PROFILE_BF16, 0);
		assert_int_equal(dsv32_hf_lazy_matrices(m), 0);
		m->vt->close(m);
	}
}

static void check_pair(dsv32_experts_impl ex, dsv32_profile prof, int layers, const char *label)
{
	dsv32_model *lazy = open_hf(ckpt, false, ex, prof, layers);
	dsv32_model *eager = open_hf(ckpt, true, ex, prof, layers);
	assert_true(dsv32_hf_lazy_matrices(lazy) > 0);
	char la[96], le[96];
	snprintf(la, sizeof la, "lazy (%s)", label);
	snprintf(le, sizeof le, "eager (%s)", label);
	mr_assert_runs_identical(lazy, la, eager, le, PROMPT, B, S, STEPS);
	lazy->vt->close(lazy);
	eager->vt->close(eager);
}

static void test_lazy_equals_eager_grouped_mm(void **state)
{
	(void)state;
	check_pair(DSV32_EXPERTS_GROUPED_MM, DSV32_PROFILE_BF16, 0, "grouped_mm bf16");
}

static void test_lazy_equals_eager_experts_eager(void **state)
{
	(void)state;
	check_pair(DSV32_EXPERTS_EAGER, DSV32_PROFILE_BF16, 0, "experts=eager bf16");
}

static void test_lazy_equals_eager_fp32_profile(void **state)
{
	(void)state;
	check_pair(DSV32_EXPERTS_GROUPED_MM, DSV32_PROFILE_FP32, 0, "grouped_mm fp32");
}

static void test_lazy_with_layer_limit(void **state)
{
	(void)state;
	check_pair(DSV32_EXPERTS_GROUPED_MM, DSV32_PROFILE_BF16, 2, "grouped_mm bf16 layers=2");
}

static int group_setup(void **state)
{
	(void)state;
	return tc_fixture_tmp(dir, sizeof dir, ckpt, sizeof ckpt, "lazy", "tiny", 1, 3, "tiny-fp8");
}

static int group_teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_is_lazy_on_cpu),
		cmocka_unit_test(test_lazy_equals_eager_grouped_mm),
		cmocka_unit_test(test_lazy_equals_eager_experts_eager),
		cmocka_unit_test(test_lazy_equals_eager_fp32_profile),
		cmocka_unit_test(test_lazy_with_layer_limit),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
