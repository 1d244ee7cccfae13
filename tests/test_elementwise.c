/* test_elementwise.c: casts, adds (plain and broadcast), scalar multiply, embedding gather and
 * column copies (kernels/elementwise.h) against double oracles; the GPU twin. */
#include "tests/support/k2_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/elementwise.h"

static void test_cast_rounds_to_nearest_even(void **state)
{
	dsv32_backend *be = *state;
	int64_t s[1] = {6};
	dsv32_tensor x = k2_host(DSV32_F32, 1, s), y = k2_host(DSV32_BF16, 1, s);
	double in[6] = {1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, -(1.0 + 0x1p-8 + 0x1p-20), 1e39, -0.0, 0.1};
	for (int i = 0; i < 6; i++)
		k2_set(&x, i, in[i]);
	assert_int_equal(dsv32_cast(be, &y, &x, NULL), DSV32_OK);
	for (int i = 0; i < 6; i++)
		assert_true(k2_ulps(DSV32_BF16, k2_get(&y, i), k2_bf16_rne((float)in[i])) == 0);
	assert_true(k2_get(&y, 0) == 1.0);              /* tie to even (down) */
	assert_true(k2_get(&y, 1) == 1.0 + 4 * 0x1p-8); /* tie to even (up) */
	assert_true(isinf(k2_get(&y, 3)));
	assert_true(signbit(k2_get(&y, 4)));
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
}

static void test_add_and_broadcast_add_round_once(void **state)
{
	dsv32_backend *be = *state;
	k2_rng r;
	k2_rng_seed(&r, 71);
	enum { Bb = 2, S = 3, H = 4, T = 5 };
	int64_t ss[4] = {Bb, S, H, T}, sm[3] = {Bb, S, T};
	dsv32_tensor a = k2_host(DSV32_BF16, 4, ss), m = k2_host(DSV32_BF16, 3, sm);
	dsv32_tensor y = k2_host(DSV32_BF16, 4, ss);
	k2_fill_normal(&a, &r, 3.0);
	k2_fill_normal(&m, &r, 3.0);
	k2_set(&m, 1, -INFINITY);
	/* scores [B,S,H,T] + mask[:, :, None, :] */
	assert_int_equal(dsv32_add_bcast(be, &y, &a, &m, H, T, NULL), DSV32_OK);
	for (int b = 0; b < Bb; b++)
		for (int s = 0; s < S; s++)
			for (int h = 0; h < H; h++)
				for (int t = 0; t < T; t++) {
					int64_t i = ((b * S + s) * H + h) * T + t, j = (b * S + s) * T + t;
					double want = k2_bf16_rne((double)(float)(k2_get(&a, i) + k2_get(&m, j)));
					assert_true(k2_ulps(DSV32_BF16, k2_get(&y, i), want) == 0);
				}
	/* plain add, in place */
	dsv32_tensor c = k2_host(DSV32_BF16, 4, ss);
	memcpy(c.data, a.data, dsv32_tensor_nbytes(&a));
	assert_int_equal(dsv32_add(be, &c, &c, &y, NULL), DSV32_OK);
	for (int64_t i = 0; i < Bb * S * H * T; i++)
		assert_true(k2_ulps(DSV32_BF16, k2_get(&c, i),
				    k2_bf16_rne((double)(float)(k2_get(&a, i) + k2_get(&y, i)))) == 0);
	dsv32_error err = {0};
	assert_int_equal(dsv32_add_bcast(be, &y, &a, &m, 3, T, &err), DSV32_E_SHAPE);
	dsv32_tensor_free(&a); dsv32_tensor_free(&m); dsv32_tensor_free(&y); dsv32_tensor_free(&c);
}

static void test_scale_uses_fp32_scalar(void **state)
{
	dsv32_backend *be = *state;
	k2_rng r;
	k2_rng_seed(&r, 72);
	int64_t s[1] = {999};
	dsv32_tensor x = k2_host(DSV32_BF16, 1, s), y = k2_host(DSV32_BF16, 1, s);
	k2_fill_normal(&x, &r, 5.0);
	float c = (float)0.1352337788608801;
	assert_int_equal(dsv32_scale(be, &y, &x, c, NULL), DSV32_OK);
	int differ_bf16_scalar = 0;
	for (int i = 0; i < 999; i++) {
		double want = k2_bf16_rne((double)(float)(k2_get(&x, i) * (double)c));
		assert_true(k2_ulps(DSV32_BF16, k2_get(&y, i), want) == 0);
		/* torch 1.13's bf16 scalar (golden README P2) would differ somewhere */
		differ_bf16_scalar += want != k2_bf16_rne(k2_get(&x, i) * k2_bf16_rne(c));
	}
	assert_true(differ_bf16_scalar > 0);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
}

static void test_embedding_gathers_and_checks_ids(void **state)
{
	dsv32_backend *be = *state;
	k2_rng r;
	k2_rng_seed(&r, 73);
	int64_t st[2] = {10, 7}, si[2] = {2, 3}, sy[3] = {2, 3, 7};
	dsv32_tensor tab = k2_host(DSV32_BF16, 2, st), ids = k2_host(DSV32_I64, 2, si);
	dsv32_tensor y = k2_host(DSV32_F32, 3, sy);
	k2_fill_normal(&tab, &r, 1.0);
	int64_t idv[6] = {3, 0, 9, 9, 4, 1};
	memcpy(ids.data, idv, sizeof idv);
	assert_int_equal(dsv32_embedding(be, &y, &tab, &ids, NULL), DSV32_OK);
	for (int n = 0; n < 6; n++)
		for (int j = 0; j < 7; j++)
			assert_true(k2_get(&y, n * 7 + j) == k2_get(&tab, idv[n] * 7 + j));
	((int64_t *)ids.data)[4] = 10;
	dsv32_error err = {0};
	assert_int_equal(dsv32_embedding(be, &y, &tab, &ids, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "token id 10 at position 4"));
	dsv32_tensor_free(&tab); dsv32_tensor_free(&ids); dsv32_tensor_free(&y);
}

static void test_copy_cols_slice_put_back_and_concat(void **state)
{
	dsv32_backend *be = *state;
	k2_rng r;
	k2_rng_seed(&r, 74);
	int64_t sx[3] = {2, 3, 576}, sl[3] = {2, 3, 64}, sk[3] = {2, 3, 512};
	dsv32_tensor x = k2_host(DSV32_BF16, 3, sx), pe = k2_host(DSV32_BF16, 3, sl);
	dsv32_tensor kv = k2_host(DSV32_BF16, 3, sk), back = k2_host(DSV32_BF16, 3, sx);
	k2_fill_normal(&x, &r, 1.0);
	assert_int_equal(dsv32_copy_cols(be, &pe, &x, 512, 0, 64, NULL), DSV32_OK);
	assert_int_equal(dsv32_copy_cols(be, &kv, &x, 0, 0, 512, NULL), DSV32_OK);
	for (int row = 0; row < 6; row++)
		for (int j = 0; j < 64; j++)
			assert_true(k2_get(&pe, row * 64 + j) == k2_get(&x, row * 576 + 512 + j));
	assert_int_equal(dsv32_concat_cols(be, &back, &kv, &pe, NULL), DSV32_OK);
	assert_memory_equal(back.data, x.data, dsv32_tensor_nbytes(&x));
	dsv32_error err = {0};
	assert_int_equal(dsv32_copy_cols(be, &pe, &x, 520, 0, 64, &err), DSV32_E_SHAPE);
	assert_int_equal(dsv32_copy_cols(be, &x, &x, 0, 64, 64, &err), DSV32_E_USAGE);
	dsv32_tensor_free(&x); dsv32_tensor_free(&pe); dsv32_tensor_free(&kv);
	dsv32_tensor_free(&back);
}

static void test_elementwise_gpu_matches_cpu(void **state)
{
	dsv32_backend *gpu = tc_cuda_backend_or_null();
	if (!gpu)
		skip();
	k2_rng r;
	k2_rng_seed(&r, 75);
	int64_t s[2] = {37, 41};
	dsv32_tensor a = k2_host(DSV32_BF16, 2, s), b = k2_host(DSV32_F32, 2, s);
	dsv32_tensor y = k2_host(DSV32_BF16, 2, s), z = k2_host(DSV32_F16, 2, s);
	k2_fill_normal(&a, &r, 3.0);
	k2_fill_normal(&b, &r, 3.0);
	assert_int_equal(dsv32_add(*state, &y, &a, &b, NULL), DSV32_OK);
	assert_int_equal(dsv32_cast(*state, &z, &b, NULL), DSV32_OK);
	dsv32_tensor da = k2_to_dev(gpu, &a), db = k2_to_dev(gpu, &b), dy = k2_to_dev(gpu, &y);
	dsv32_tensor dz = k2_to_dev(gpu, &z);
	assert_int_equal(dsv32_add(gpu, &dy, &da, &db, NULL), DSV32_OK);
	assert_int_equal(dsv32_cast(gpu, &dz, &db, NULL), DSV32_OK);
	dsv32_tensor gy = k2_from_dev(gpu, &dy), gz = k2_from_dev(gpu, &dz);
	assert_memory_equal(gy.data, y.data, dsv32_tensor_nbytes(&y));
	assert_memory_equal(gz.data, z.data, dsv32_tensor_nbytes(&z));
	dsv32_backend_free(gpu, &da); dsv32_backend_free(gpu, &db); dsv32_backend_free(gpu, &dy);
	dsv32_backend_free(gpu, &dz);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&y); dsv32_tensor_free(&z);
	dsv32_tensor_free(&gy); dsv32_tensor_free(&gz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cast_rounds_to_nearest_even),
		cmocka_unit_test(test_add_and_broadcast_add_round_once),
		cmocka_unit_test(test_scale_uses_fp32_scalar),
		cmocka_unit_test(test_embedding_gathers_and_checks_ids),
		cmocka_unit_test(test_copy_cols_slice_put_back_and_concat),
		cmocka_unit_test(test_elementwise_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
