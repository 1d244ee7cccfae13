/* test_model_gpu.c: both layouts on CUDA against themselves on CPU (issues 4 and 5: "runs on
 * CPU and on GPU with the same code path above the op layer"), on the golden tiny HF checkpoint
 * (fixtures/golden/ref_tiny/hf: hidden 256, 3 layers, 16 experts, index_topk 16).
 *
 * Each case runs one prefill of 20 tokens (past index_topk, so the sparse mask is active) for
 * two rows and three greedy decode steps (tokens chosen from the CPU logits and fed to both),
 * with every tap collected. The two devices differ only in the op bodies' summation orders
 * (cuBLAS vs our CPU GEMM, block vs cascade reductions), so:
 *   fp32 profile: logits within 1e-5 relative (max |d| / max |logit|, as test_ref_props' TP
 *     check), every float tap within 1e-4 relative (its own max);
 *   bf16 profile: logits within 1e-1 relative (test_ref_props' TP budget for the same kind of
 *     noise: a reordered fp32 sum flips bf16 roundings, and a flip can change an index or
 *     expert choice, whose effect is discrete);
 * and in both the same tap names, dtypes and shapes in the same order.
 * Skips without a device; fails under DSV32_REQUIRE_GPU=1 (tests/gpu/run) when none opens.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype.h"
#include "hf_layout/hf_model.h"
#include "kernels/backend.h"
#include "ref/ref_model.h"
#include "tests/support/hf_golden_util.h"
#include "tests/support/test_common.h"

#define B 2
#define PROMPT 20
#define DECODE 3
typedef struct {
	const char *layout;
	dsv32_profile profile;
	int world;
} model_case;

static dsv32_model *open_model(const model_case *c, dsv32_device dev)
{
	char dir[4096];
	if (!tc_golden_path(dir, sizeof dir, "hf/config.json"))
		skip();
	*strrchr(dir, '/') = '\0';
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.device = dev;
	o.profile = c->profile;
	o.world_size = c->world;
	o.max_seq_len = 64;
	o.max_batch_size = B;
	dsv32_model *m = NULL;
	dsv32_error err = {0};
	dsv32_status rc = !strcmp(c->layout, "ref") ? dsv32_ref_open(&m, dir, NULL, &o, &err)
						    : dsv32_hf_open_dir(&m, dir, &o, &err);
	if (rc != DSV32_OK)
		print_error("open %s on %s: %s\n", c->layout, dev == DSV32_DEV_CUDA ? "cuda" : "cpu",
			    err.what);
	assert_int_equal(rc, DSV32_OK);
	return m;
}

/* max |a - b| / max |a| over two float tensors of the same shape (any float dtype), over the
 * finite elements; an element that is not finite on either side must be the same infinity on
 * both (masked scores hold -inf), never NaN. */
static double rel_max(const dsv32_tensor *a, const dsv32_tensor *b)
{
	int64_t n = dsv32_tensor_numel(a);
	assert_int_equal(n, dsv32_tensor_numel(b));
	double *x = malloc((size_t)(n ? n : 1) * sizeof *x), *y = malloc((size_t)(n ? n : 1) * sizeof *y);
	assert_non_null(x);
	assert_non_null(y);
	dsv32_convert(x, DSV32_F64, a->data, a->dtype, (size_t)n);
	dsv32_convert(y, DSV32_F64, b->data, b->dtype, (size_t)n);
	double d = 0, s = 0;
	bool finite = true;
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(x[i]) || !isfinite(y[i])) {
			finite = finite && isinf(x[i]) && x[i] == y[i];
			continue;
		}
		d = fmax(d, fabs(x[i] - y[i]));
		s = fmax(s, fabs(x[i]));
	}
	free(x);
	free(y);
	assert_true(finite);
	return s > 0 ? d / s : d;
}

static void check_taps(const model_case *c, const hf_tapset *cpu, const hf_tapset *gpu, int step)
{
	assert_true(cpu->n < HF_TAPS_MAX && gpu->n < HF_TAPS_MAX); /* none dropped */
	assert_int_equal(cpu->n, gpu->n);
	double worst = 0;
	const char *worst_name = "";
	for (int i = 0; i < cpu->n; i++) {
		const dsv32_tensor *a = &cpu->t[i], *b = &gpu->t[i];
		assert_string_equal(cpu->name[i], gpu->name[i]);
		assert_int_equal(a->dtype, b->dtype);
		assert_true(dsv32_tensor_same_shape(a, b));
		if (!dsv32_dtype_is_float(a->dtype) || c->profile != DSV32_PROFILE_FP32)
			continue;
		double r = rel_max(a, b);
		if (r > worst) {
			worst = r;
			worst_name = cpu->name[i];
		}
	}
	printf("%s %s W=%d step %d: %d taps, worst float tap %s rel max %.3g\n", c->layout,
	       c->profile == DSV32_PROFILE_FP32 ? "fp32" : "bf16", c->world, step, cpu->n,
	       worst_name, worst);
	if (c->profile == DSV32_PROFILE_FP32)
		assert_true(worst <= 1e-4);
}

static dsv32_tensor step(dsv32_model *m, hf_tapset *taps, const int64_t *tok, int64_t S, int64_t pos)
{
	dsv32_tensor lg = {0};
	dsv32_error err = {0};
	m->taps = (dsv32_tap_sink){hf_tapset_on_tap, taps};
	dsv32_status rc = m->vt->forward(m, tok, B, S, pos, &lg, &err);
	m->taps = (dsv32_tap_sink){0};
	if (rc != DSV32_OK)
		print_error("%s forward S=%lld pos=%lld: %s\n", m->vt->layout, (long long)S,
			    (long long)pos, err.what);
	assert_int_equal(rc, DSV32_OK);
	return lg;
}

static void run_case(const model_case *c)
{
	dsv32_backend *probe = tc_cuda_backend_or_null(); /* fails under DSV32_REQUIRE_GPU=1 */
	if (!probe)
		skip();
	dsv32_backend_destroy(probe);
	dsv32_model *cpu = open_model(c, DSV32_DEV_CPU), *gpu = open_model(c, DSV32_DEV_CUDA);
	int64_t tok[B * PROMPT];
	for (int64_t i = 0; i < B * PROMPT; i++)
		tok[i] = (i * 37 + 11) % cpu->cfg.vocab_size;
	int64_t S = PROMPT, pos = 0;
	double budget = c->profile == DSV32_PROFILE_FP32 ? 1e-5 : 1e-1;
	for (int s = 0; s <= DECODE; s++) {
		hf_tapset *ta = calloc(1, sizeof *ta), *tb = calloc(1, sizeof *tb);
		assert_non_null(ta);
		assert_non_null(tb);
		dsv32_tensor la = step(cpu, ta, tok, S, pos), lb = step(gpu, tb, tok, S, pos);
		check_taps(c, ta, tb, s);
		for (int64_t i = 0; i < dsv32_tensor_numel(&la); i++)
			assert_true(isfinite(((const float *)la.data)[i]));
		double r = rel_max(&la, &lb);
		printf("%s %s W=%d step %d: logits rel max %.3g (budget %.1g)\n", c->layout,
		       c->profile == DSV32_PROFILE_FP32 ? "fp32" : "bf16", c->world, s, r, budget);
		assert_true(r <= budget);
		int64_t V = la.shape[la.ndim - 1];
		for (int64_t b = 0; b < B; b++)
			tok[b] = tc_argmax_f32((const float *)la.data + b * V, V);
		pos += S;
		S = 1;
		dsv32_tensor_free(&la);
		dsv32_tensor_free(&lb);
		hf_tapset_clear(ta);
		hf_tapset_clear(tb);
		free(ta);
		free(tb);
	}
	cpu->vt->close(cpu);
	gpu->vt->close(gpu);
}

static void test_ref_fp32(void **state)
{
	(void)state;
	run_case(&(model_case){"ref", DSV32_PROFILE_FP32, 1});
}

static void test_ref_fp32_tp2(void **state)
{
	(void)state;
	run_case(&(model_case){"ref", DSV32_PROFILE_FP32, 2});
}

static void test_ref_bf16(void **state)
{
	(void)state;
	run_case(&(model_case){"ref", DSV32_PROFILE_BF16, 1});
}

static void test_hf_fp32(void **state)
{
	(void)state;
	run_case(&(model_case){"hf", DSV32_PROFILE_FP32, 1});
}

static void test_hf_bf16(void **state)
{
	(void)state;
	run_case(&(model_case){"hf", DSV32_PROFILE_BF16, 1});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_fp32), cmocka_unit_test(test_ref_fp32_tp2),
		cmocka_unit_test(test_ref_bf16), cmocka_unit_test(test_hf_fp32),
		cmocka_unit_test(test_hf_bf16),
	};
	return cmocka_run_group_tests_name("model_gpu", tests, NULL, NULL);
}
