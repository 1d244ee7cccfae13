/* test_elementwise.c: casts, adds (plain and broadcast), scalar multiply, embedding gather and
 * column copies (kernels/elementwise.h) against double oracles; the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/elementwise.h"
#include "tests/support/gpu_twin.h"

static void test_cast_rounds_to_nearest_even(void **state)
{
	dsv32_backend *be = *state;
	int64_t s[1] = {6};
	dsv32_tensor x = tu_host(DSV32_F32, 1, s), y = tu_host(DSV32_BF16, 1, s);
	double in[6] = {1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, -(1.0 + 0x1p-8 + 0x1p-20), 1e39, -0.0, 0.1};
	for (int i = 0; i < 6; i++)
		tu_set(&x, i, in[i]);
	assert_int_equal(dsv32_cast(be, &y, &x, NULL), DSV32_OK);
	for (int i = 0; i < 6; i++)
		assert_true(tu_ulps(DSV32_BF16, tu_get(&y, i), tu_bf16_rne((float)in[i])) == 0);
	assert_true(tu_get(&y, 0) == 1.0);              /* tie to even (down) */
	assert_true(tu_get(&y, 1) == 1.0 + 4 * 0x1p-8); /* tie to even (up) */
	assert_true(isinf(tu_get(&y, 3)));
	assert_true(signbit(tu_get(&y, 4)));
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
}

static void test_add_and_broadcast_add_round_once(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(71);
	enum { Bb = 2, S = 3, H = 4, T = 5 };
	int64_t ss[4] = {Bb, S, H, T}, sm[3] = {Bb, S, T};
	dsv32_tensor a = tu_host(DSV32_BF16, 4, ss), m = tu_host(DSV32_BF16, 3, sm);
	dsv32_tensor y = tu_host(DSV32_BF16, 4, ss);
	tu_fill_normal(&a, &r, 3.0);
	tu_fill_normal(&m, &r, 3.0);
	tu_set(&m, 1, -INFINITY);
	/* scores [B,S,H,T] + mask[:, :, None, :] */
	assert_int_equal(dsv32_add_bcast(be, &y, &a, &m, H, T, NULL), DSV32_OK);
	for (int b = 0; b < Bb; b++)
		for (int s = 0; s < S; s++)
			for (int h = 0; h < H; h++)
				for (int t = 0; t < T; t++) {
					int64_t i = ((b * S + s) * H + h) * T + t, j = (b * S + s) * T + t;
					double want = tu_bf16_rne((double)(float)(tu_get(&a, i) + tu_get(&m, j)));
					assert_true(tu_ulps(DSV32_BF16, tu_get(&y, i), want) == 0);
				}
	/* plain add, in place */
	dsv32_tensor c = tu_host(DSV32_BF16, 4, ss);
	memcpy(c.data, a.data, dsv32_tensor_nbytes(&a));
	assert_int_equal(dsv32_add(be, &c, &c, &y, NULL), DSV32_OK);
	for (int64_t i = 0; i < Bb * S * H * T; i++)
		assert_true(tu_ulps(DSV32_BF16, tu_get(&c, i),
				    tu_bf16_rne((double)(float)(tu_get(&a, i) + tu_get(&y, i)))) == 0);
	dsv32_error err = {0};
	assert_int_equal(dsv32_add_bcast(be, &y, &a, &m, 3, T, &err), DSV32_E_SHAPE);
	dsv32_tensor_free(&a); dsv32_tensor_free(&m); dsv32_tensor_free(&y); dsv32_tensor_free(&c);
}

/* Rows long enough for the 8-lane body (inner 37: four vectors and a tail of 5) and a plain
 * add longer than one piece of the parallel loop (70001 elements), every dtype mix, against
 * the double oracle (one fp32 add, one rounding to y's dtype). */
static void test_add_long_rows_round_once(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r = tu_rng_seed(73);
	const dsv32_dtype mix[][3] = {{DSV32_BF16, DSV32_BF16, DSV32_BF16},
				      {DSV32_F32, DSV32_BF16, DSV32_BF16},
				      {DSV32_BF16, DSV32_F32, DSV32_F32},
				      {DSV32_F32, DSV32_F32, DSV32_F32}};
	for (size_t t = 0; t < sizeof mix / sizeof mix[0]; t++) {
		enum { O = 2, MID = 3, IN = 37 };
		int64_t sa[3] = {O, MID, IN}, sb[2] = {O, IN}, sp[1] = {70001};
		dsv32_tensor a = tu_host(mix[t][0], 3, sa), b = tu_host(mix[t][1], 2, sb);
		dsv32_tensor y = tu_host(mix[t][2], 3, sa);
		tu_fill_normal(&a, &r, 3.0);
		tu_fill_normal(&b, &r, 3.0);
		assert_int_equal(dsv32_add_bcast(be, &y, &a, &b, MID, IN, NULL), DSV32_OK);
		for (int64_t i = 0; i < O * MID * IN; i++) {
			int64_t j = (i / (MID * IN)) * IN + i % IN;
			double v = (double)(float)(tu_get(&a, i) + tu_get(&b, j));
			double want = mix[t][2] == DSV32_BF16 ? tu_bf16_rne(v) : v;
			assert_true(tu_ulps(mix[t][2], tu_get(&y, i), want) == 0);
		}
		dsv32_tensor pa = tu_host(mix[t][0], 1, sp), pb = tu_host(mix[t][1], 1, sp);
		dsv32_tensor py = tu_host(mix[t][2], 1, sp);
		tu_fill_normal(&pa, &r, 3.0);
		tu_fill_normal(&pb, &r, 3.0);
		assert_int_equal(dsv32_add(be, &py, &pa, &pb, NULL), DSV32_OK);
		for (int64_t i = 0; i < sp[0]; i++) {
			double v = (double)(float)(tu_get(&pa, i) + tu_get(&pb, i));
			double want = mix[t][2] == DSV32_BF16 ? tu_bf16_rne(v) : v;
			assert_true(tu_ulps(mix[t][2], tu_get(&py, i), want) == 0);
		}
		dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&y);
		dsv32_tensor_free(&pa); dsv32_tensor_free(&pb); dsv32_tensor_free(&py);
	}
}

static void test_scale_uses_fp32_scalar(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(72);
	int64_t s[1] = {999};
	dsv32_tensor x = tu_host(DSV32_BF16, 1, s), y = tu_host(DSV32_BF16, 1, s);
	tu_fill_normal(&x, &r, 5.0);
	float c = (float)0.1352337788608801;
	assert_int_equal(dsv32_scale(be, &y, &x, c, NULL), DSV32_OK);
	int differ_bf16_scalar = 0;
	for (int i = 0; i < 999; i++) {
		double want = tu_bf16_rne((double)(float)(tu_get(&x, i) * (double)c));
		assert_true(tu_ulps(DSV32_BF16, tu_get(&y, i), want) == 0);
		/* torch 1.13's bf16 scalar (golden README P2) would differ somewhere */
		differ_bf16_scalar += want != tu_bf16_rne(tu_get(&x, i) * tu_bf16_rne(c));
	}
	assert_true(differ_bf16_scalar > 0);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
}

static void test_embedding_gathers_and_checks_ids(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(73);
	int64_t st[2] = {10, 7}, si[2] = {2, 3}, sy[3] = {2, 3, 7};
	dsv32_tensor tab = tu_host(DSV32_BF16, 2, st), ids = tu_host(DSV32_I64, 2, si);
	dsv32_tensor y = tu_host(DSV32_F32, 3, sy);
	tu_fill_normal(&tab, &r, 1.0);
	int64_t idv[6] = {3, 0, 9, 9, 4, 1};
	memcpy(ids.data, idv, sizeof idv);
	assert_int_equal(dsv32_embedding(be, &y, &tab, &ids, NULL), DSV32_OK);
	for (int n = 0; n < 6; n++)
		for (int j = 0; j < 7; j++)
			assert_true(tu_get(&y, n * 7 + j) == tu_get(&tab, idv[n] * 7 + j));
	((int64_t *)ids.data)[4] = 10;
	dsv32_error err = {0};
	assert_int_equal(dsv32_embedding(be, &y, &tab, &ids, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "token id 10 at position 4"));
	dsv32_tensor_free(&tab); dsv32_tensor_free(&ids); dsv32_tensor_free(&y);
}

static void test_copy_cols_slice_put_back_and_concat(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(74);
	int64_t sx[3] = {2, 3, 576}, sl[3] = {2, 3, 64}, sk[3] = {2, 3, 512};
	dsv32_tensor x = tu_host(DSV32_BF16, 3, sx), pe = tu_host(DSV32_BF16, 3, sl);
	dsv32_tensor kv = tu_host(DSV32_BF16, 3, sk), back = tu_host(DSV32_BF16, 3, sx);
	tu_fill_normal(&x, &r, 1.0);
	assert_int_equal(dsv32_copy_cols(be, &pe, &x, 512, 0, 64, NULL), DSV32_OK);
	assert_int_equal(dsv32_copy_cols(be, &kv, &x, 0, 0, 512, NULL), DSV32_OK);
	for (int row = 0; row < 6; row++)
		for (int j = 0; j < 64; j++)
			assert_true(tu_get(&pe, row * 64 + j) == tu_get(&x, row * 576 + 512 + j));
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
	dsv32_backend *gpu = gt_dev_backend_or_null();
	if (!gpu)
		skip();
	tu_rng r;
	r = tu_rng_seed(75);
	int64_t s[2] = {37, 41};
	dsv32_tensor a = tu_host(DSV32_BF16, 2, s), b = tu_host(DSV32_F32, 2, s);
	dsv32_tensor y = tu_host(DSV32_BF16, 2, s), z = tu_host(DSV32_F16, 2, s);
	tu_fill_normal(&a, &r, 3.0);
	tu_fill_normal(&b, &r, 3.0);
	assert_int_equal(dsv32_add(*state, &y, &a, &b, NULL), DSV32_OK);
	assert_int_equal(dsv32_cast(*state, &z, &b, NULL), DSV32_OK);
	dsv32_tensor da = tu_to_dev(gpu, &a), db = tu_to_dev(gpu, &b), dy = tu_to_dev(gpu, &y);
	dsv32_tensor dz = tu_to_dev(gpu, &z);
	assert_int_equal(dsv32_add(gpu, &dy, &da, &db, NULL), DSV32_OK);
	assert_int_equal(dsv32_cast(gpu, &dz, &db, NULL), DSV32_OK);
	dsv32_tensor gy = tu_from_dev(gpu, &dy), gz = tu_from_dev(gpu, &dz);
	assert_memory_equal(gy.data, y.data, dsv32_tensor_nbytes(&y));
	assert_memory_equal(gz.data, z.data, dsv32_tensor_nbytes(&z));
	dsv32_backend_free(gpu, &da); dsv32_backend_free(gpu, &db); dsv32_backend_free(gpu, &dy);
	dsv32_backend_free(gpu, &dz);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&y); dsv32_tensor_free(&z);
	dsv32_tensor_free(&gy); dsv32_tensor_free(&gz);
}

/* ---- GPU twins of add_bcast, scale, embedding and copy_cols ----
 * Each twin_* runs the op on the CPU backend `cpu` and on `dev` (gt_dev_backend_or_null: CUDA,
 * or a CPU backend in a dry-run build) and compares. Tolerance: elementwise.h gives every one of
 * these ops the same per-element expression on both bodies (one fp32 add / multiply, one
 * rounding to y's dtype, or a plain copy), so the results must agree bit for bit.
 * Inputs avoid NaN and inf - inf: the bit pattern of a generated NaN is not part of the
 * contract (x86 and CUDA make different default NaNs). */

/* Fill with normals times scale, plus edges: 0, -0, a bf16 subnormal, a huge value, -inf. */
static void ew_fill_edges(dsv32_tensor *t, tu_rng *r, double scale, bool neg_inf)
{
	tu_fill_normal(t, r, scale);
	int64_t n = dsv32_tensor_numel(t);
	const double edge[5] = {0.0, -0.0, 3e-39, 2.5e38, -INFINITY};
	for (int e = 0; e < (neg_inf ? 5 : 4) && e < n; e++)
		tu_set(t, (e * 7919) % n, edge[e]);
}

/* y[o,m,k] = a + b[o % b_outer, k] for one dtype mix, out of place and in place. */
static void twin_add_bcast_case(dsv32_backend *cpu, dsv32_backend *dev, int64_t outer,
				int64_t mid, int64_t inner, int64_t b_outer, dsv32_dtype at,
				dsv32_dtype bt, dsv32_dtype yt)
{
	tu_rng r;
	r = tu_rng_seed(200 + (uint64_t)(outer * 31 + mid * 7 + inner));
	int64_t sa[3] = {outer, mid, inner}, sb[2] = {b_outer, inner};
	dsv32_tensor a = tu_host(at, 3, sa), b = tu_host(bt, 2, sb), y = tu_host(yt, 3, sa);
	ew_fill_edges(&a, &r, 3.0, false);
	ew_fill_edges(&b, &r, 3.0, true); /* the mask's -inf */
	assert_int_equal(dsv32_add_bcast(cpu, &y, &a, &b, mid, inner, NULL), DSV32_OK);
	dsv32_tensor da = gt_to_dev(dev, &a), db = gt_to_dev(dev, &b), dy = gt_to_dev(dev, &y);
	dsv32_error err = {0};
	assert_int_equal(dsv32_add_bcast(dev, &dy, &da, &db, mid, inner, &err), DSV32_OK);
	dsv32_tensor gy = gt_from_dev(dev, &dy);
	gt_assert_bits_equal("gpu add_bcast y", &gy, &y);
	if (at == yt) { /* in place: y = a */
		assert_int_equal(dsv32_add_bcast(cpu, &a, &a, &b, mid, inner, NULL), DSV32_OK);
		assert_int_equal(dsv32_add_bcast(dev, &da, &da, &db, mid, inner, &err), DSV32_OK);
		dsv32_tensor ga = gt_from_dev(dev, &da);
		gt_assert_bits_equal("gpu add_bcast in place", &ga, &a);
		dsv32_tensor_free(&ga);
	}
	gt_free(dev, &da); gt_free(dev, &db); gt_free(dev, &dy);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&y); dsv32_tensor_free(&gy);
}

static void twin_add_bcast(dsv32_backend *cpu, dsv32_backend *dev)
{
	/* scores [B*S, H, T] + mask [B*S, T]: 6 x 5 x 67 = 2010 elements, not a block multiple */
	twin_add_bcast_case(cpu, dev, 6, 5, 67, 6, DSV32_BF16, DSV32_BF16, DSV32_BF16);
	twin_add_bcast_case(cpu, dev, 6, 5, 67, 6, DSV32_BF16, DSV32_F32, DSV32_F32);
	/* b repeats over outer (o % b_outer) */
	twin_add_bcast_case(cpu, dev, 6, 5, 67, 3, DSV32_F32, DSV32_BF16, DSV32_BF16);
	twin_add_bcast_case(cpu, dev, 4, 1, 1, 1, DSV32_F32, DSV32_F32, DSV32_F32); /* inner 1 */
	twin_add_bcast_case(cpu, dev, 1, 1, 1, 1, DSV32_BF16, DSV32_BF16, DSV32_BF16); /* n = 1 */
}

static void twin_scale(dsv32_backend *cpu, dsv32_backend *dev)
{
	const dsv32_dtype mix[4][2] = {{DSV32_BF16, DSV32_BF16}, {DSV32_F32, DSV32_F32},
				       {DSV32_BF16, DSV32_F32}, {DSV32_F32, DSV32_BF16}};
	const int64_t sizes[2] = {1001, 1};
	const float cs[2] = {(float)0.1352337788608801, -3.0e-3f};
	for (int m = 0; m < 4; m++)
		for (int si = 0; si < 2; si++) {
			tu_rng r;
			r = tu_rng_seed(210 + (uint64_t)(m * 2 + si));
			int64_t s[1] = {sizes[si]};
			float c = cs[(m + si) % 2];
			dsv32_tensor x = tu_host(mix[m][0], 1, s), y = tu_host(mix[m][1], 1, s);
			ew_fill_edges(&x, &r, 5.0, true);
			assert_int_equal(dsv32_scale(cpu, &y, &x, c, NULL), DSV32_OK);
			dsv32_tensor dx = gt_to_dev(dev, &x), dy = gt_to_dev(dev, &y);
			assert_int_equal(dsv32_scale(dev, &dy, &dx, c, NULL), DSV32_OK);
			dsv32_tensor gy = gt_from_dev(dev, &dy);
			gt_assert_bits_equal("gpu scale", &gy, &y);
			if (mix[m][0] == mix[m][1]) { /* in place */
				assert_int_equal(dsv32_scale(cpu, &x, &x, c, NULL), DSV32_OK);
				assert_int_equal(dsv32_scale(dev, &dx, &dx, c, NULL), DSV32_OK);
				dsv32_tensor gx = gt_from_dev(dev, &dx);
				gt_assert_bits_equal("gpu scale in place", &gx, &x);
				dsv32_tensor_free(&gx);
			}
			gt_free(dev, &dx); gt_free(dev, &dy);
			dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&gy);
		}
}

static void twin_embedding(dsv32_backend *cpu, dsv32_backend *dev)
{
	const dsv32_dtype mix[3][2] = {{DSV32_BF16, DSV32_BF16}, {DSV32_BF16, DSV32_F32},
				       {DSV32_F32, DSV32_BF16}};
	enum { V = 50, Dm = 37 };
	for (int m = 0; m < 3; m++)
		for (int N = 1; N <= 7; N += 6) {
			tu_rng r;
			r = tu_rng_seed(220 + (uint64_t)(m * 8 + N));
			int64_t st[2] = {V, Dm}, si[1] = {N}, sy[2] = {N, Dm};
			dsv32_tensor tab = tu_host(mix[m][0], 2, st), ids = tu_host(DSV32_I64, 1, si);
			dsv32_tensor y = tu_host(mix[m][1], 2, sy);
			ew_fill_edges(&tab, &r, 1.0, false);
			const int64_t idv[7] = {V - 1, 0, 17, 17, 3, V - 1, 42};
			memcpy(ids.data, idv, sizeof(int64_t) * (size_t)N);
			assert_int_equal(dsv32_embedding(cpu, &y, &tab, &ids, NULL), DSV32_OK);
			dsv32_tensor dt = gt_to_dev(dev, &tab), di = gt_to_dev(dev, &ids);
			dsv32_tensor dy = gt_to_dev(dev, &y);
			assert_int_equal(dsv32_embedding(dev, &dy, &dt, &di, NULL), DSV32_OK);
			dsv32_tensor gy = gt_from_dev(dev, &dy);
			gt_assert_bits_equal("gpu embedding", &gy, &y);
			dsv32_tensor_free(&gy);
			/* an id out of range: DSV32_E_USAGE and y untouched (ids checked on the host) */
			((int64_t *)ids.data)[N - 1] = V;
			gt_free(dev, &di);
			di = gt_to_dev(dev, &ids);
			dsv32_error err = {0};
			assert_int_equal(dsv32_embedding(dev, &dy, &dt, &di, &err), DSV32_E_USAGE);
			assert_non_null(strstr(err.what, "token id 50"));
			gy = gt_from_dev(dev, &dy);
			gt_assert_bits_equal("gpu embedding after a bad id", &gy, &y);
			gt_free(dev, &dt); gt_free(dev, &di); gt_free(dev, &dy);
			dsv32_tensor_free(&tab); dsv32_tensor_free(&ids); dsv32_tensor_free(&y);
			dsv32_tensor_free(&gy);
		}
}

/* copy_cols x[:, x_off:x_off+n] -> y[:, y_off:...] with y pre-filled (untouched columns
 * must survive on both sides). */
static void twin_copy_cols_case(dsv32_backend *cpu, dsv32_backend *dev, int64_t rows,
				int64_t dx, int64_t dy, int64_t x_off, int64_t y_off, int64_t n,
				dsv32_dtype xt, dsv32_dtype yt)
{
	tu_rng r;
	r = tu_rng_seed(230 + (uint64_t)(dx + dy + n));
	int64_t sx[3] = {1, rows, dx}, sy[2] = {rows, dy};
	dsv32_tensor x = tu_host(xt, 3, sx), y = tu_host(yt, 2, sy);
	ew_fill_edges(&x, &r, 2.0, true);
	tu_fill_normal(&y, &r, 1.0);
	dsv32_tensor dxx = gt_to_dev(dev, &x), dyy = gt_to_dev(dev, &y);
	assert_int_equal(dsv32_copy_cols(cpu, &y, &x, x_off, y_off, n, NULL), DSV32_OK);
	assert_int_equal(dsv32_copy_cols(dev, &dyy, &dxx, x_off, y_off, n, NULL), DSV32_OK);
	dsv32_tensor gy = gt_from_dev(dev, &dyy);
	gt_assert_bits_equal("gpu copy_cols", &gy, &y);
	gt_free(dev, &dxx); gt_free(dev, &dyy);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&gy);
}

static void twin_copy_cols(dsv32_backend *cpu, dsv32_backend *dev)
{
	/* slice out the rope part of wkv_a's output, then put it back into a wider row */
	twin_copy_cols_case(cpu, dev, 7, 576, 64, 512, 0, 64, DSV32_BF16, DSV32_BF16);
	twin_copy_cols_case(cpu, dev, 7, 64, 576, 0, 512, 64, DSV32_BF16, DSV32_BF16);
	twin_copy_cols_case(cpu, dev, 5, 61, 100, 3, 37, 55, DSV32_F32, DSV32_BF16); /* rounds */
	twin_copy_cols_case(cpu, dev, 5, 61, 100, 3, 37, 55, DSV32_BF16, DSV32_F32);
	twin_copy_cols_case(cpu, dev, 1, 9, 4, 8, 3, 1, DSV32_F32, DSV32_F32); /* one element */
	/* concat_cols: two copy_cols calls into one y */
	tu_rng r;
	r = tu_rng_seed(239);
	int64_t sa[2] = {3, 29}, sb[2] = {3, 4}, sy[2] = {3, 33};
	dsv32_tensor a = tu_host(DSV32_BF16, 2, sa), b = tu_host(DSV32_F32, 2, sb);
	dsv32_tensor y = tu_host(DSV32_BF16, 2, sy);
	tu_fill_normal(&a, &r, 1.0);
	tu_fill_normal(&b, &r, 1.0);
	dsv32_tensor da = gt_to_dev(dev, &a), db = gt_to_dev(dev, &b), dy = gt_to_dev(dev, &y);
	assert_int_equal(dsv32_concat_cols(cpu, &y, &a, &b, NULL), DSV32_OK);
	assert_int_equal(dsv32_concat_cols(dev, &dy, &da, &db, NULL), DSV32_OK);
	dsv32_tensor gy = gt_from_dev(dev, &dy);
	gt_assert_bits_equal("gpu concat_cols", &gy, &y);
	gt_free(dev, &da); gt_free(dev, &db); gt_free(dev, &dy);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&y); dsv32_tensor_free(&gy);
}

/* cast: every pair of the float dtypes CUDA takes (elementwise.h: dsv32_convert semantics, the
 * shared conversions of core/dtype.h on both bodies), so bit-exact. No NaN inputs: the CPU copies
 * same-dtype NaNs bit for bit, the device goes through fp32 (quieting): not in the contract. */
static void twin_cast(dsv32_backend *cpu, dsv32_backend *dev)
{
	const dsv32_dtype ts[5] = {DSV32_F32, DSV32_BF16, DSV32_F16, DSV32_F8_E4M3, DSV32_F8_E5M2};
	enum { NC = 1001 };
	tu_rng r;
	r = tu_rng_seed(240);
	int64_t s[1] = {NC};
	dsv32_tensor src = tu_host(DSV32_F32, 1, s);
	for (int64_t i = 0; i < NC; i++) /* magnitudes 2^-30 .. 2^20: subnormal to overflowing */
		((float *)src.data)[i] = (float)(tu_normal(&r) * ldexp(1.0, (int)(i % 51) - 30));
	const float edge[6] = {0.0f, -0.0f, INFINITY, -INFINITY, 448.0f, 57344.0f};
	for (int e = 0; e < 6; e++)
		((float *)src.data)[e * 101] = edge[e];
	for (int a = 0; a < 5; a++) {
		dsv32_tensor x;
		assert_int_equal(dsv32_backend_alloc(cpu, &x, ts[a], 1, s, NULL), DSV32_OK);
		assert_int_equal(dsv32_cast(cpu, &x, &src, NULL), DSV32_OK); /* inputs of dtype a */
		dsv32_tensor dx = gt_to_dev(dev, &x);
		for (int b = 0; b < 5; b++) {
			dsv32_tensor y = tu_host(ts[b], 1, s);
			dsv32_tensor dy = gt_to_dev(dev, &y);
			assert_int_equal(dsv32_cast(cpu, &y, &x, NULL), DSV32_OK);
			assert_int_equal(dsv32_cast(dev, &dy, &dx, NULL), DSV32_OK);
			dsv32_tensor gy = gt_from_dev(dev, &dy);
			char what[64];
			snprintf(what, sizeof what, "gpu cast %s -> %s", dsv32_dtype_name(ts[a]),
				 dsv32_dtype_name(ts[b]));
			gt_assert_bits_equal(what, &gy, &y);
			gt_free(dev, &dy);
			dsv32_tensor_free(&y); dsv32_tensor_free(&gy);
		}
		gt_free(dev, &dx);
		dsv32_backend_free(cpu, &x);
	}
	dsv32_tensor_free(&src);
}

/* One cmocka test per op: the second backend, or skip (fails under DSV32_REQUIRE_GPU=1). */
#define EW_GPU_TWIN(name, fn)                                \
	static void name(void **state)                       \
	{                                                    \
		dsv32_backend *dev = gt_dev_backend_or_null(); \
		if (!dev)                                    \
			skip();                              \
		fn(*state, dev);                             \
		dsv32_backend_destroy(dev);                  \
	}
EW_GPU_TWIN(test_add_bcast_gpu_is_bit_exact, twin_add_bcast)
EW_GPU_TWIN(test_scale_gpu_is_bit_exact, twin_scale)
EW_GPU_TWIN(test_embedding_gpu_is_bit_exact, twin_embedding)
EW_GPU_TWIN(test_copy_cols_gpu_is_bit_exact, twin_copy_cols)
EW_GPU_TWIN(test_cast_all_float_pairs_gpu_is_bit_exact, twin_cast)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cast_rounds_to_nearest_even),
		cmocka_unit_test(test_add_and_broadcast_add_round_once),
		cmocka_unit_test(test_add_long_rows_round_once),
		cmocka_unit_test(test_scale_uses_fp32_scalar),
		cmocka_unit_test(test_embedding_gathers_and_checks_ids),
		cmocka_unit_test(test_copy_cols_slice_put_back_and_concat),
		cmocka_unit_test(test_elementwise_gpu_matches_cpu),
		cmocka_unit_test(test_add_bcast_gpu_is_bit_exact),
		cmocka_unit_test(test_scale_gpu_is_bit_exact),
		cmocka_unit_test(test_embedding_gpu_is_bit_exact),
		cmocka_unit_test(test_copy_cols_gpu_is_bit_exact),
		cmocka_unit_test(test_cast_all_float_pairs_gpu_is_bit_exact),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
