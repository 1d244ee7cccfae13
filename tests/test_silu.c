/* test_silu.c: the SiLU-gated products (kernels/silu.h) against double oracles: one rounding
 * (reference) and two (HF); the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/silu.h"
#include "tests/support/gpu_twin.h"

#define N 1001

static void test_silu_mul_ref_and_hf_match_oracles(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(51);
	int64_t s[1] = {N};
	dsv32_tensor a = tu_host(DSV32_BF16, 1, s), b = tu_host(DSV32_BF16, 1, s);
	dsv32_tensor hr = tu_host(DSV32_BF16, 1, s), hh = tu_host(DSV32_BF16, 1, s);
	tu_fill_normal(&a, &r, 4.0);
	tu_fill_normal(&b, &r, 2.0);
	tu_set(&a, 0, 0.0); tu_set(&a, 1, -0.0); tu_set(&a, 2, 100.0); tu_set(&a, 3, -100.0);
	tu_set(&a, 4, 1e-30);
	double wr[N], wh[N];
	for (int i = 0; i < N; i++) {
		double x = tu_get(&a, i), silu = x / (1.0 + exp(-x));
		wr[i] = tu_bf16_rne(silu * tu_get(&b, i));
		wh[i] = tu_bf16_rne(tu_bf16_rne(silu) * tu_get(&b, i));
	}
	assert_int_equal(dsv32_silu_mul_ref(be, &hr, &a, &b, NULL), DSV32_OK);
	assert_int_equal(dsv32_silu_mul_hf(be, &hh, &a, &b, NULL), DSV32_OK);
	/* fp32 exp/add/divide/multiply before one rounding: <= 1 bf16 ulp */
	tu_check_ulps_d("silu_mul_ref", &hr, wr, 1);
	/* the bf16(silu) point can sit on the other side of a tie: <= 1 ulp */
	tu_check_ulps_d("silu_mul_hf", &hh, wh, 1);
	int differ = 0;
	for (int i = 0; i < N; i++)
		differ += tu_get(&hr, i) != tu_get(&hh, i);
	assert_true(differ > 0); /* the second rounding is visible */
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&hr); dsv32_tensor_free(&hh);
}

static void test_silu_mul_f32_output_is_unrounded(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(52);
	int64_t s[1] = {N};
	dsv32_tensor a = tu_host(DSV32_F32, 1, s), b = tu_host(DSV32_F32, 1, s);
	dsv32_tensor h = tu_host(DSV32_F32, 1, s);
	tu_fill_normal(&a, &r, 4.0);
	tu_fill_normal(&b, &r, 2.0);
	double w[N];
	for (int i = 0; i < N; i++) {
		double x = tu_get(&a, i);
		w[i] = x / (1.0 + exp(-x)) * tu_get(&b, i);
	}
	assert_int_equal(dsv32_silu_mul_hf(be, &h, &a, &b, NULL), DSV32_OK);
	tu_check_ulps_d("silu_mul_hf f32", &h, w, 4); /* exp, add, divide, multiply in fp32 */
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&h);
}

static void test_silu_gpu_matches_cpu(void **state)
{
	dsv32_backend *gpu = gt_dev_backend_or_null();
	if (!gpu)
		skip();
	tu_rng r;
	r = tu_rng_seed(53);
	int64_t s[1] = {N};
	dsv32_tensor a = tu_host(DSV32_BF16, 1, s), b = tu_host(DSV32_BF16, 1, s);
	dsv32_tensor h = tu_host(DSV32_BF16, 1, s);
	tu_fill_normal(&a, &r, 4.0);
	tu_fill_normal(&b, &r, 2.0);
	assert_int_equal(dsv32_silu_mul_hf(*state, &h, &a, &b, NULL), DSV32_OK);
	dsv32_tensor da = tu_to_dev(gpu, &a), db = tu_to_dev(gpu, &b), dh = tu_to_dev(gpu, &h);
	assert_int_equal(dsv32_silu_mul_hf(gpu, &dh, &da, &db, NULL), DSV32_OK);
	dsv32_tensor g = tu_from_dev(gpu, &dh);
	/* silu.h: device expf vs glibc expf can flip bf16(silu) by one ulp, which moves h by up to
	 * 2 ulps (not 1: s 1.0 -> 1.0078125 with b = 1.75 gives h 1.75 -> 1.765625) */
	tu_check_ulps("gpu silu_mul_hf", &g, &h, 2);
	dsv32_backend_free(gpu, &da); dsv32_backend_free(gpu, &db); dsv32_backend_free(gpu, &dh);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&h); dsv32_tensor_free(&g);
}

/* ---- GPU twin of silu_mul_ref: mixed dtypes, in place, one element ----
 * twin_silu takes the second backend (gt_dev_backend_or_null: CUDA, or a CPU backend in a
 * dry-run build). silu.h: both bodies run dsv32_silu_elem and one fp32 multiply; the only
 * difference is expf (glibc on the host, CUDA expf on the device), a few fp32 ulps at most,
 * far below a bf16 ulp. With a BF16 h and ONE rounding (the reference form) the results may
 * differ only where the fp32 value sits at a bf16 rounding boundary: <= 1 bf16 ulp. (The HF
 * form's bound, 2 ulps, is test_silu_gpu_matches_cpu's.) */
static void twin_silu_case(dsv32_backend *cpu, dsv32_backend *dev, int64_t n, dsv32_dtype at,
			   dsv32_dtype bt, int alias, uint64_t seed)
{
	tu_rng r;
	r = tu_rng_seed(seed);
	int64_t s[1] = {n};
	dsv32_tensor a = tu_host(at, 1, s), b = tu_host(bt, 1, s), h = tu_host(DSV32_BF16, 1, s);
	tu_fill_normal(&a, &r, 4.0);
	tu_fill_normal(&b, &r, 2.0);
	const double edge[6] = {0.0, -0.0, 100.0, -100.0, 1e-30, -20.0};
	for (int e = 0; e < 6 && e < n; e++)
		tu_set(&a, e * 37 % n, edge[e]);
	dsv32_tensor da = gt_to_dev(dev, &a), db = gt_to_dev(dev, &b), dh = gt_to_dev(dev, &h);
	/* alias 0: h separate; 1: h = a; 2: h = b (both need a BF16 operand there) */
	dsv32_tensor *hh = alias == 1 ? &a : alias == 2 ? &b : &h;
	dsv32_tensor *dhh = alias == 1 ? &da : alias == 2 ? &db : &dh;
	assert_int_equal(dsv32_silu_mul_ref(cpu, hh, &a, &b, NULL), DSV32_OK);
	assert_int_equal(dsv32_silu_mul_ref(dev, dhh, &da, &db, NULL), DSV32_OK);
	dsv32_tensor g = gt_from_dev(dev, dhh);
	tu_check_ulps(alias ? "gpu silu_mul_ref in place" : "gpu silu_mul_ref", &g, hh, 1);
	gt_free(dev, &da); gt_free(dev, &db); gt_free(dev, &dh);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&h); dsv32_tensor_free(&g);
}

static void twin_silu(dsv32_backend *cpu, dsv32_backend *dev)
{
	twin_silu_case(cpu, dev, N, DSV32_BF16, DSV32_BF16, 0, 601);
	twin_silu_case(cpu, dev, N, DSV32_F32, DSV32_BF16, 0, 602);  /* fp32 gate input */
	twin_silu_case(cpu, dev, N, DSV32_BF16, DSV32_F32, 1, 603);  /* h = a */
	twin_silu_case(cpu, dev, N, DSV32_F32, DSV32_BF16, 2, 604);  /* h = b */
	twin_silu_case(cpu, dev, 1, DSV32_BF16, DSV32_BF16, 0, 605); /* one element */
}

static void test_silu_mul_ref_gpu_matches_cpu(void **state)
{
	dsv32_backend *dev = gt_dev_backend_or_null();
	if (!dev)
		skip();
	twin_silu(*state, dev);
	dsv32_backend_destroy(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silu_mul_ref_and_hf_match_oracles),
		cmocka_unit_test(test_silu_mul_f32_output_is_unrounded),
		cmocka_unit_test(test_silu_gpu_matches_cpu),
		cmocka_unit_test(test_silu_mul_ref_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
