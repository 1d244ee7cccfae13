/* test_rope.c: YaRN tables (kernels/yarn.h) against docs/spec/ref_layout.md §A.4 / §A.8 and
 * docs/spec/hf_layout.md §3.1 / §4.2 values; RoPE (kernels/rope.h) against double oracles; the pairing
 * and permutation properties; the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rope.h"
#include "kernels/yarn.h"
#include "tests/support/gpu_twin.h"

static dsv32_yarn_params params_671b(void)
{
	dsv32_yarn_params p = {.dim = 64, .base = 10000, .factor = 40, .original_seq_len = 4096,
			       .beta_fast = 32, .beta_slow = 1, .mscale = 1, .mscale_all_dim = 1,
			       .max_seq_len = 16384, .truncate = true, .yarn = true};
	return p;
}

static void test_yarn_ref_freqs_match_spec_table(void **state)
{
	(void)state;
	dsv32_yarn_params p = params_671b();
	float f[32];
	dsv32_yarn_ref_freqs(&p, f);
	/* docs/spec/ref_layout.md §A.4, printed with 9 significant digits (round-trips fp32) */
	static const struct { int i; double v; } want[] = {
		{0, 1.0}, {1, 0.749894202}, {2, 0.562341332}, {3, 0.421696514}, {4, 0.316227764},
		{5, 0.237137362}, {6, 0.177827939}, {7, 0.133352146}, {8, 0.100000001},
		{9, 0.0749894157}, {10, 0.0562341288}, {11, 0.0390069261}, {12, 0.0268793609},
		{13, 0.0183781441}, {14, 0.012447956}, {15, 0.0083345091}, {16, 0.00550000044},
		{17, 0.00356199732}, {18, 0.00224936521}, {19, 0.00137051346},
		{20, 0.000790569407}, {21, 0.000414990413}, {22, 0.00017782794},
		{23, 3.33380376e-05}, {31, 3.33380376e-06}};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		int64_t d = tu_ulps(DSV32_F32, f[want[k].i], (float)want[k].v);
		if (d > 0)
			print_error("freq %d: got %.9g want %.9g (%lld ulps)\n", want[k].i, f[want[k].i],
				    want[k].v, (long long)d);
		assert_true(d == 0); /* the spec's values come from the same double pow */
	}
	/* without YaRN (max_seq_len <= original) the base frequencies are kept */
	p.max_seq_len = 4096;
	dsv32_yarn_ref_freqs(&p, f);
	assert_true(tu_ulps(DSV32_F32, f[31], 1.0 / pow(10000.0, 62.0 / 64)) <= 1);
}

static void test_yarn_softmax_scales(void **state)
{
	(void)state;
	dsv32_yarn_params p = params_671b();
	double s = dsv32_softmax_scale_ref(192, &p);
	assert_true(fabs(s - 0.1352337788608801) < 1e-15);
	assert_true((float)s == 0.1352337748f);
	double h = dsv32_softmax_scale_hf(192, &p);
	assert_true(fabs(h - 0.1352337788608801) < 1e-15);
	p.max_seq_len = 4096; /* the reference silently drops m² here (Part E.7) */
	assert_true(fabs(dsv32_softmax_scale_ref(192, &p) - pow(192, -0.5)) < 1e-17);
	/* golden ref_tiny: 96^-0.5 · (0.1 ln 40 + 1)² = 0.1912494442 */
	p.max_seq_len = 64;
	p.original_seq_len = 32;
	assert_true(fabs(dsv32_softmax_scale_ref(96, &p) - 0.1912494442) < 1e-10);
}

static void test_yarn_hf_inv_freq_and_attention_factor(void **state)
{
	(void)state;
	dsv32_yarn_params p = params_671b();
	float f[32], r[32];
	double af = 0;
	dsv32_yarn_hf_inv_freq(&p, f, &af);
	dsv32_yarn_ref_freqs(&p, r);
	assert_true(af == 1.0); /* mscale == mscale_all_dim */
	assert_true(f[0] == 1.0f);
	assert_true(fabs(f[1] - 0.7499) < 1e-4);
	assert_true(fabs(f[22] - 1.778e-4) < 1e-7);
	assert_true(fabs(f[31] - 3.334e-6) < 1e-9);
	for (int i = 0; i < 32; i++) /* same formula up to the order of fp32 steps */
		assert_true(tu_ulps(DSV32_F32, f[i], r[i]) <= 2);
	p.mscale_all_dim = 0; /* the trap of docs/spec/hf_layout.md §3.1 step 4 */
	dsv32_yarn_hf_inv_freq(&p, f, &af);
	assert_true(fabs(af - (0.1 * log(40.0) + 1.0)) < 1e-15);
}

/* ---- RoPE ---- */
#define B 2
#define S 5
#define H 3
#define D 80
#define OFF 16
#define RD 64

static dsv32_tensor small_table(dsv32_yarn_params *p)
{
	*p = params_671b();
	p->original_seq_len = 32;
	p->max_seq_len = 64;
	int64_t sh[3] = {64, 32, 2};
	dsv32_tensor t = tu_host(DSV32_F32, 3, sh);
	dsv32_yarn_ref_table_host(p, t.data);
	return t;
}

static void test_rope_ref_matches_oracle(void **state)
{
	dsv32_backend *be = *state;
	dsv32_yarn_params p;
	dsv32_tensor tab = small_table(&p);
	/* the table itself: cos/sin of fp32(t)·freq in double, <= 1 fp32 ulp (glibc cosf/sinf) */
	float fr[32];
	dsv32_yarn_ref_freqs(&p, fr);
	for (int t = 0; t < 64; t++)
		for (int i = 0; i < 32; i++) {
			double th = (double)(float)((float)t * fr[i]);
			assert_true(tu_ulps(DSV32_F32, tu_get(&tab, (t * 32 + i) * 2), cos(th)) <= 1);
			assert_true(tu_ulps(DSV32_F32, tu_get(&tab, (t * 32 + i) * 2 + 1), sin(th)) <= 1);
		}
	tu_rng r;
	r = tu_rng_seed(31);
	int64_t sh[4] = {B, S, H, D};
	int64_t pos0 = 7;
	for (int il = 0; il < 2; il++) {
		dsv32_tensor x = tu_host(DSV32_BF16, 4, sh), y = tu_host(DSV32_BF16, 4, sh);
		tu_fill_normal(&x, &r, 2.0);
		for (int64_t i = 0; i < B * S * H * D; i++)
			tu_set(&y, i, 1234.0); /* sentinel outside the rope columns */
		double *want = malloc(sizeof(double) * B * S * H * D);
		for (int64_t i = 0; i < B * S * H * D; i++)
			want[i] = 1234.0;
		for (int64_t row = 0; row < B * S * H; row++) {
			int64_t s = (row / H) % S, base = row * D + OFF;
			for (int i = 0; i < 32; i++) {
				int64_t a = il ? 2 * i : i, b = il ? 2 * i + 1 : i + 32;
				double c = tu_get(&tab, ((pos0 + s) * 32 + i) * 2);
				double sn = tu_get(&tab, ((pos0 + s) * 32 + i) * 2 + 1);
				double re = tu_get(&x, base + a), im = tu_get(&x, base + b);
				want[base + a] = tu_bf16_rne(re * c - im * sn);
				want[base + b] = tu_bf16_rne(re * sn + im * c);
			}
		}
		assert_int_equal(dsv32_rope_ref(be, &y, &x, &tab, pos0, OFF, il, NULL), DSV32_OK);
		/* fp32 products and sum before one bf16 rounding: <= 1 ulp */
		tu_check_ulps_d(il ? "rope_ref interleaved" : "rope_ref half-split", &y, want, 1);
		free(want);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&y);
	}
	dsv32_tensor_free(&tab);
}

static void test_rope_preserves_norms_in_fp32(void **state)
{
	dsv32_backend *be = *state;
	dsv32_yarn_params p;
	dsv32_tensor tab = small_table(&p);
	tu_rng r;
	r = tu_rng_seed(32);
	int64_t sh[4] = {B, S, H, D};
	dsv32_tensor x = tu_host(DSV32_F32, 4, sh), y = tu_host(DSV32_F32, 4, sh);
	tu_fill_normal(&x, &r, 1.0);
	assert_int_equal(dsv32_rope_ref(be, &y, &x, &tab, 50, OFF, true, NULL), DSV32_OK);
	for (int64_t row = 0; row < B * S * H; row++)
		for (int i = 0; i < 32; i++) {
			int64_t a = row * D + OFF + 2 * i;
			double n0 = hypot(tu_get(&x, a), tu_get(&x, a + 1));
			double n1 = hypot(tu_get(&y, a), tu_get(&y, a + 1));
			assert_true(fabs(n1 - n0) <= 4e-7 * n0 + 1e-30); /* cos²+sin² = 1 ± 2^-23 */
		}
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
	dsv32_tensor_free(&tab);
}

static void test_rope_pairings_agree_after_permutation(void **state)
{
	dsv32_backend *be = *state;
	dsv32_yarn_params p;
	dsv32_tensor tab = small_table(&p);
	tu_rng r;
	r = tu_rng_seed(33);
	int64_t sh[4] = {B, S, H, D};
	dsv32_tensor x = tu_host(DSV32_BF16, 4, sh), yi = tu_host(DSV32_BF16, 4, sh);
	dsv32_tensor xp = tu_host(DSV32_BF16, 4, sh), yh = tu_host(DSV32_BF16, 4, sh);
	dsv32_tensor yip = tu_host(DSV32_BF16, 4, sh), back = tu_host(DSV32_BF16, 4, sh);
	tu_fill_normal(&x, &r, 1.0);
	memcpy(xp.data, x.data, dsv32_tensor_nbytes(&x));
	/* P = [0, 2, ..., 62, 1, 3, ..., 63]: y[j] = x[P[j]] */
	assert_int_equal(dsv32_permute_deinterleave(be, &xp, &x, OFF, RD, false, NULL), DSV32_OK);
	for (int64_t row = 0; row < B * S * H; row++)
		for (int j = 0; j < RD; j++) {
			int pj = j < 32 ? 2 * j : 2 * (j - 32) + 1;
			assert_true(tu_get(&xp, row * D + OFF + j) == tu_get(&x, row * D + OFF + pj));
		}
	assert_int_equal(dsv32_rope_ref(be, &yi, &x, &tab, 3, OFF, true, NULL), DSV32_OK);
	assert_int_equal(dsv32_rope_ref(be, &yh, &xp, &tab, 3, OFF, false, NULL), DSV32_OK);
	memcpy(yip.data, yi.data, dsv32_tensor_nbytes(&yi));
	assert_int_equal(dsv32_permute_deinterleave(be, &yip, &yi, OFF, RD, false, NULL), DSV32_OK);
	tu_check_ulps("interleaved then P == P then half-split", &yip, &yh, 0);
	/* the inverse restores the reference order, bit for bit, also in place */
	memcpy(back.data, yh.data, dsv32_tensor_nbytes(&yh));
	assert_int_equal(dsv32_permute_deinterleave(be, &back, &back, OFF, RD, true, NULL), DSV32_OK);
	tu_check_ulps("inverse permutation", &back, &yi, 0);
	dsv32_tensor_free(&x); dsv32_tensor_free(&yi); dsv32_tensor_free(&xp);
	dsv32_tensor_free(&yh); dsv32_tensor_free(&yip); dsv32_tensor_free(&back);
	dsv32_tensor_free(&tab);
}

static void test_rope_hf_rounds_each_op(void **state)
{
	dsv32_backend *be = *state;
	dsv32_yarn_params p = params_671b();
	float inv[32];
	double af;
	dsv32_yarn_hf_inv_freq(&p, inv, &af);
	int64_t pos[B * S];
	for (int i = 0; i < B * S; i++)
		pos[i] = 100 + 37 * i;
	int64_t cs[3] = {B, S, RD};
	dsv32_tensor c = tu_host(DSV32_BF16, 3, cs), sn = tu_host(DSV32_BF16, 3, cs);
	assert_int_equal(dsv32_yarn_hf_cos_sin(be, &c, &sn, inv, af, pos, B, S, NULL), DSV32_OK);
	for (int64_t i = 0; i < B * S; i++)
		for (int j = 0; j < RD; j++) {
			double th = (double)(float)((float)pos[i] * inv[j % 32]);
			/* bf16 of fp32 cosf: <= 1 bf16 ulp from the double value rounded once */
			assert_true(tu_ulps(DSV32_BF16, tu_get(&c, i * RD + j), tu_bf16_rne(cos(th))) <= 1);
			assert_true(tu_ulps(DSV32_BF16, tu_get(&sn, i * RD + j), tu_bf16_rne(sin(th))) <= 1);
		}
	tu_rng r;
	r = tu_rng_seed(34);
	int64_t sh[4] = {B, S, H, D};
	dsv32_tensor x = tu_host(DSV32_BF16, 4, sh), y = tu_host(DSV32_BF16, 4, sh);
	tu_fill_normal(&x, &r, 1.0);
	double *want = malloc(sizeof(double) * B * S * H * D);
	for (int64_t row = 0; row < B * S * H; row++) {
		int64_t b = row / (S * H), s = (row / H) % S, base = row * D + OFF;
		for (int j = 0; j < RD; j++) {
			double xv = tu_get(&x, base + j);
			double rot = j < 32 ? -tu_get(&x, base + j + 32) : tu_get(&x, base + j - 32);
			double cv = tu_get(&c, (b * S + s) * RD + j), sv = tu_get(&sn, (b * S + s) * RD + j);
			double a1 = tu_bf16_rne(xv * cv), a2 = tu_bf16_rne(rot * sv);
			want[base + j] = tu_bf16_rne((double)(float)(a1 + a2));
		}
	}
	assert_int_equal(dsv32_rope_hf(be, &y, &x, &c, &sn, OFF, NULL), DSV32_OK);
	/* bf16 × bf16 products are exact in fp32 and double: bit-exact */
	int64_t n = 0;
	for (int64_t row = 0; row < B * S * H; row++)
		for (int j = 0; j < RD; j++, n++)
			if (tu_get(&y, row * D + OFF + j) != want[row * D + OFF + j])
				fail_msg("rope_hf row %lld ch %d: got %g want %g", (long long)row, j,
					 tu_get(&y, row * D + OFF + j), want[row * D + OFF + j]);
	assert_int_equal(n, B * S * H * RD);
	free(want);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&c); dsv32_tensor_free(&sn);
}

static void test_rope_rejects_bad_layout(void **state)
{
	dsv32_backend *be = *state;
	dsv32_yarn_params p;
	dsv32_tensor tab = small_table(&p);
	int64_t sh[4] = {B, S, H, D};
	dsv32_tensor x = tu_host(DSV32_BF16, 4, sh);
	dsv32_error err = {0};
	assert_int_equal(dsv32_rope_ref(be, &x, &x, &tab, 0, 20, true, &err), DSV32_E_SHAPE);
	assert_int_equal(dsv32_rope_ref(be, &x, &x, &tab, 60, 0, true, &err), DSV32_E_SHAPE);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&tab);
}

static void test_rope_gpu_is_bit_identical(void **state)
{
	dsv32_backend *gpu = gt_dev_backend_or_null();
	if (!gpu)
		skip();
	dsv32_yarn_params p;
	dsv32_tensor tab = small_table(&p);
	tu_rng r;
	r = tu_rng_seed(35);
	int64_t sh[4] = {B, S, H, D};
	dsv32_tensor x = tu_host(DSV32_BF16, 4, sh), y = tu_host(DSV32_BF16, 4, sh);
	tu_fill_normal(&x, &r, 1.0);
	/* the device side runs in place: columns outside the rope part keep x's values there, so
	 * the CPU side's y starts as x too (a fresh y would hold zeros in those columns) */
	memcpy(y.data, x.data, dsv32_tensor_nbytes(&x));
	assert_int_equal(dsv32_rope_ref(*state, &y, &x, &tab, 2, OFF, true, NULL), DSV32_OK);
	dsv32_tensor dx = tu_to_dev(gpu, &x), dt = tu_to_dev(gpu, &tab);
	assert_int_equal(dsv32_rope_ref(gpu, &dx, &dx, &dt, 2, OFF, true, NULL), DSV32_OK);
	dsv32_tensor g = tu_from_dev(gpu, &dx);
	tu_check_ulps("gpu rope_ref", &g, &y, 0); /* same per-row function */
	dsv32_backend_free(gpu, &dx);
	dsv32_backend_free(gpu, &dt);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&g); dsv32_tensor_free(&tab);
}

/* ---- GPU twins of rope_hf, permute_deinterleave and the half-split rope_ref ----
 * twin_* takes the second backend (gt_dev_backend_or_null: CUDA, or a CPU backend in a dry-run
 * build). rope.h / rope.cu: both bodies run the shared dsv32_rope_row per (b, s, h) row, so
 * every result must agree bit for bit, including the columns outside [off, off + rd) that the
 * ops leave untouched (y is pre-filled with other values). Rows: B * S * H = 30 or 10, not a
 * multiple of the CUDA block (128). */

/* Run op on CPU (host y) and dev (device copy of the same y), compare all of y. */
typedef dsv32_status (*rope_op_fn)(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				   const dsv32_tensor *aux1, const dsv32_tensor *aux2, int mode);

static dsv32_status rope_hf_op(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			       const dsv32_tensor *c, const dsv32_tensor *s, int off)
{
	return dsv32_rope_hf(be, y, x, c, s, off, NULL);
}

static dsv32_status permute_op(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			       const dsv32_tensor *unused1, const dsv32_tensor *unused2, int mode)
{
	(void)unused1;
	(void)unused2;
	/* mode: off * 2 + inverse */
	return dsv32_permute_deinterleave(be, y, x, mode / 2, RD, mode % 2, NULL);
}

static dsv32_status rope_ref_half_op(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				     const dsv32_tensor *tab, const dsv32_tensor *unused, int pos0)
{
	(void)unused;
	return dsv32_rope_ref(be, y, x, tab, pos0, 0, false, NULL);
}

static void twin_rope_case(const char *what, dsv32_backend *cpu, dsv32_backend *dev,
			   rope_op_fn op, int ndim, const int64_t *shape, dsv32_dtype xt,
			   dsv32_dtype yt, bool in_place, const dsv32_tensor *aux1,
			   const dsv32_tensor *aux2, int mode, uint64_t seed)
{
	tu_rng r;
	r = tu_rng_seed(seed);
	dsv32_tensor x = tu_host(xt, ndim, shape), y = tu_host(yt, ndim, shape);
	tu_fill_normal(&x, &r, 2.0);
	tu_fill_normal(&y, &r, 1.0);
	tu_set(&x, 0, -0.0);
	tu_set(&x, 1, 3e-39);
	dsv32_tensor dx = gt_to_dev(dev, &x), dy = gt_to_dev(dev, &y);
	dsv32_tensor d1 = aux1 ? gt_to_dev(dev, aux1) : (dsv32_tensor){0};
	dsv32_tensor d2 = aux2 ? gt_to_dev(dev, aux2) : (dsv32_tensor){0};
	dsv32_tensor *hy = in_place ? &x : &y, *dyy = in_place ? &dx : &dy;
	assert_int_equal(op(cpu, hy, &x, aux1, aux2, mode), DSV32_OK);
	assert_int_equal(op(dev, dyy, &dx, aux1 ? &d1 : NULL, aux2 ? &d2 : NULL, mode), DSV32_OK);
	dsv32_tensor g = gt_from_dev(dev, dyy);
	gt_assert_bits_equal(what, &g, hy);
	gt_free(dev, &dx); gt_free(dev, &dy); gt_free(dev, &d1); gt_free(dev, &d2);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&g);
}

/* cos/sin of HF's rotary embedding at positions p0 + s (cos[j] = cos[j + rd/2]), dtype t,
 * shape [S, RD] (cb = 0) or [B, S, RD] (batch row b starts at position 3 b). */
static void hf_cos_sin(dsv32_tensor *c, dsv32_tensor *sn, dsv32_dtype t, bool per_batch)
{
	int64_t s3[3] = {B, S, RD}, s2[2] = {S, RD};
	*c = per_batch ? tu_host(t, 3, s3) : tu_host(t, 2, s2);
	*sn = per_batch ? tu_host(t, 3, s3) : tu_host(t, 2, s2);
	int nb = per_batch ? B : 1;
	for (int b = 0; b < nb; b++)
		for (int s = 0; s < S; s++)
			for (int j = 0; j < RD; j++) {
				double f = pow(10000.0, -(double)(2 * (j % (RD / 2))) / RD);
				double ang = (3 * b + s + 1) * f;
				tu_set(c, (b * S + s) * RD + j, cos(ang));
				tu_set(sn, (b * S + s) * RD + j, sin(ang));
			}
}

static void twin_rope_hf(dsv32_backend *cpu, dsv32_backend *dev)
{
	int64_t sh4[4] = {B, S, H, D}, sh3[3] = {B, S, D};
	dsv32_tensor cb, sb, cf, sf;
	hf_cos_sin(&cb, &sb, DSV32_BF16, false);
	hf_cos_sin(&cf, &sf, DSV32_F32, true);
	twin_rope_case("gpu rope_hf bf16", cpu, dev, rope_hf_op, 4, sh4, DSV32_BF16, DSV32_BF16,
		       false, &cb, &sb, OFF, 401);
	twin_rope_case("gpu rope_hf bf16 in place", cpu, dev, rope_hf_op, 4, sh4, DSV32_BF16,
		       DSV32_BF16, true, &cb, &sb, OFF, 402);
	twin_rope_case("gpu rope_hf f32, per-batch cos/sin", cpu, dev, rope_hf_op, 4, sh4,
		       DSV32_F32, DSV32_F32, false, &cf, &sf, 0, 403);
	twin_rope_case("gpu rope_hf bf16 x, f32 y, [B,S,D]", cpu, dev, rope_hf_op, 3, sh3,
		       DSV32_BF16, DSV32_F32, false, &cf, &sf, D - RD, 404);
	dsv32_tensor_free(&cb); dsv32_tensor_free(&sb); dsv32_tensor_free(&cf); dsv32_tensor_free(&sf);
}

static void twin_permute(dsv32_backend *cpu, dsv32_backend *dev)
{
	int64_t sh4[4] = {B, S, H, D}, sh3[3] = {B, S, D};
	for (int inv = 0; inv < 2; inv++) {
		twin_rope_case("gpu permute bf16", cpu, dev, permute_op, 4, sh4, DSV32_BF16,
			       DSV32_BF16, false, NULL, NULL, OFF * 2 + inv, 410 + (uint64_t)inv);
		twin_rope_case("gpu permute in place", cpu, dev, permute_op, 4, sh4, DSV32_BF16,
			       DSV32_BF16, true, NULL, NULL, OFF * 2 + inv, 412 + (uint64_t)inv);
		twin_rope_case("gpu permute f32 -> bf16 [B,S,D]", cpu, dev, permute_op, 3, sh3,
			       DSV32_F32, DSV32_BF16, false, NULL, NULL, (D - RD) * 2 + inv,
			       414 + (uint64_t)inv);
	}
}

static void twin_rope_ref_half_split(dsv32_backend *cpu, dsv32_backend *dev)
{
	dsv32_yarn_params p;
	dsv32_tensor tab = small_table(&p);
	int64_t sh4[4] = {B, S, H, RD}, sh3[3] = {B, S, RD};
	twin_rope_case("gpu rope_ref half-split f32", cpu, dev, rope_ref_half_op, 4, sh4,
		       DSV32_F32, DSV32_F32, false, &tab, NULL, 0, 420);
	twin_rope_case("gpu rope_ref half-split bf16 in place", cpu, dev, rope_ref_half_op, 3,
		       sh3, DSV32_BF16, DSV32_BF16, true, &tab, NULL, 64 - S, 421); /* last rows */
	dsv32_tensor_free(&tab);
}

static void test_rope_hf_permute_and_half_split_gpu_are_bit_identical(void **state)
{
	dsv32_backend *dev = gt_dev_backend_or_null();
	if (!dev)
		skip();
	twin_rope_hf(*state, dev);
	twin_permute(*state, dev);
	twin_rope_ref_half_split(*state, dev);
	dsv32_backend_destroy(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yarn_ref_freqs_match_spec_table),
		cmocka_unit_test(test_yarn_softmax_scales),
		cmocka_unit_test(test_yarn_hf_inv_freq_and_attention_factor),
		cmocka_unit_test(test_rope_ref_matches_oracle),
		cmocka_unit_test(test_rope_preserves_norms_in_fp32),
		cmocka_unit_test(test_rope_pairings_agree_after_permutation),
		cmocka_unit_test(test_rope_hf_rounds_each_op),
		cmocka_unit_test(test_rope_rejects_bad_layout),
		cmocka_unit_test(test_rope_gpu_is_bit_identical),
		cmocka_unit_test(test_rope_hf_permute_and_half_split_gpu_are_bit_identical),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
