/* test_exp_torch.c: kernels/exp_torch.h. The torch-cpu drivers replay every case torch recorded
 * in fixtures/exp_torch/cases.bin (fixtures/gen_exp_torch.py; format there) and must give
 * identical bits (NaN: NaN); Sleef's expf_u10 is within 1 ulp of exp() in double over a sweep;
 * the vector/tail split on hand-worked shapes. Needs no Python. $DSV32_EXP_TORCH_FILE replays
 * another recording instead (another torch or CPU). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/fsutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "compare/runner.h"
#include "kernels/exp_torch.h"
#include "kernels/expf_avx2.h"
#include "kernels/router.h"
#include "kernels/silu.h"
#include "tests/support/test_common.h"
#include "tests/support/test_util.h"

/* ---- the recorded cases: inputs as gen_exp_torch.py's input_bits ----------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static const uint32_t edges[] = {
	0xc2d00000, 0x42c80000, 0x42b17218, 0xc2aeac50, 0xc2cff1b5, 0x42b17217,
	0xc2ce8ed0, 0xc2b00000, 0x3f800000, 0xbf800000, 0x00000000, 0x80000000,
	0x7f800000, 0xff800000, 0x7fc00000, 0x00000001, 0x33800000, 0xb3800000,
};
#define NEDGES (sizeof edges / sizeof edges[0])

static void input_bits(uint64_t seed, int64_t n, uint32_t *out)
{
	if (seed >> 63) { /* every bf16 pattern: i -> (i * 40503 + seed) mod 2^16, top half */
		for (int64_t i = 0; i < n; i++)
			out[i] = (uint32_t)(((uint64_t)i * 40503u + (seed & 0xFFFF)) & 0xFFFF) << 16;
		return;
	}
	uint64_t s = seed;
	for (int64_t i = 0; i < n; i++) {
		uint64_t r = splitmix64(&s), kind = r >> 61;
		uint32_t lo = (uint32_t)r, b;
		if (kind <= 2) {
			int32_t k = (int32_t)((r >> 8) & 0xFFFFF) - (1 << 19);
			b = dsv32_f32_bits((float)k / 65536.0f); /* exact: 20 bits */
		} else if (kind <= 4) {
			uint32_t e = 127 - 30 + (uint32_t)((r >> 32) % 37);
			b = (uint32_t)((r >> 40) & 1) << 31 | e << 23 | (lo & 0x7FFFFF);
		} else if (kind == 5) {
			b = edges[(r >> 32) % NEDGES];
			int off = (int)((r >> 40) % 17) - 8;
			if ((b & 0x7F800000) != 0x7F800000 && (b & 0x7FFFFFFF) > 16)
				b = (uint32_t)((int64_t)b + off);
		} else {
			b = lo;
		}
		out[i] = b;
	}
}

typedef struct {
	int op;  /* 0 sigmoid F32, 1 silu BF16, 2 silu F32 */
	int cap; /* dsv32_torch_cap as recorded */
	int threads, full;
	int64_t n, inner;
	uint64_t seed, hash;
	const unsigned char *data; /* the stored outputs (full) or windows */
} exp_case;

static uint64_t rd_u(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned char *read_cases_file(size_t *len, char *path, size_t plen)
{
	const char *src = getenv("DSV32_SOURCE_DIR"), *other = getenv("DSV32_EXP_TORCH_FILE");
	if (other && other[0])
		snprintf(path, plen, "%s", other);
	else
		snprintf(path, plen, "%s/fixtures/exp_torch/cases.bin", src ? src : DSV32_SOURCE_DIR);
	char *buf = NULL;
	dsv32_error err = {0};
	if (dsv32_read_file(path, (size_t)1 << 30, &buf, len, &err) != DSV32_OK)
		fail_msg("%s (regenerate with fixtures/gen_exp_torch.py)", err.what);
	return (unsigned char *)buf;
}

static int out_width(const exp_case *c)
{
	return c->op == 1 ? 2 : 4;
}

/* The length in bytes of case c's stored outputs at data, or fail on a malformed file. */
static size_t stored_bytes(const exp_case *c, const unsigned char *b, size_t len, size_t p, int ci)
{
	int w = out_width(c);
	if (c->full)
		return (size_t)c->n * (size_t)w;
	if (p + 2 > len)
		fail_msg("cases.bin: case %d truncated", ci);
	size_t q = p + 2, W = rd_u(b + p, 2);
	for (size_t k = 0; k < W; k++) {
		if (q + 6 > len)
			fail_msg("cases.bin: case %d window %zu truncated", ci, k);
		q += 6 + rd_u(b + q + 4, 2) * (size_t)w;
	}
	return q - p;
}

static void decode_case(const unsigned char *b, size_t len, size_t *pos, int ci, exp_case *c)
{
	size_t p = *pos;
	if (p + 28 > len)
		fail_msg("cases.bin: case %d truncated", ci);
	c->op = b[p];
	c->cap = b[p + 1];
	c->threads = b[p + 2];
	c->full = b[p + 3] & 1;
	c->n = (int64_t)rd_u(b + p + 4, 4);
	c->inner = (int64_t)rd_u(b + p + 8, 4);
	c->seed = rd_u(b + p + 12, 8);
	c->hash = rd_u(b + p + 20, 8);
	p += 28;
	if (c->op > 2 || c->threads < 1 || c->n < 1 || c->inner < 1 || c->n % c->inner)
		fail_msg("cases.bin: case %d malformed (op %d threads %d n %lld inner %lld)", ci,
			 c->op, c->threads, (long long)c->n, (long long)c->inner);
	c->data = b + p;
	size_t sb = stored_bytes(c, b, len, p, ci);
	if (p + sb > len)
		fail_msg("cases.bin: case %d outputs truncated", ci);
	*pos = p + sb;
}

/* Our outputs of case c under rule `cap` (canonical NaN), as u32 (F32) or u16-in-u32 (BF16). */
static void run_case(const exp_case *c, dsv32_torch_cap cap, uint32_t *out)
{
	uint32_t *in = malloc((size_t)c->n * sizeof *in);
	assert_non_null(in);
	input_bits(c->seed, c->n, in);
	if (c->op == 0) {
		float *x = malloc((size_t)c->n * sizeof *x);
		assert_non_null(x);
		for (int64_t i = 0; i < c->n; i++)
			x[i] = dsv32_f32_from_bits(in[i]);
		dsv32_sigmoid_torch_cpu(x, x, c->n, c->inner, c->threads, cap); /* in place */
		for (int64_t i = 0; i < c->n; i++)
			out[i] = x[i] != x[i] ? 0x7fc00000u : dsv32_f32_bits(x[i]);
		free(x);
	} else if (c->op == 2) {
		float *x = malloc((size_t)c->n * sizeof *x), *y = malloc((size_t)c->n * sizeof *y);
		assert_true(x && y);
		for (int64_t i = 0; i < c->n; i++)
			x[i] = dsv32_f32_from_bits(in[i]);
		dsv32_silu_torch_cpu(y, DSV32_F32, x, DSV32_F32, c->n, c->inner, c->threads, cap);
		for (int64_t i = 0; i < c->n; i++)
			out[i] = y[i] != y[i] ? 0x7fc00000u : dsv32_f32_bits(y[i]);
		free(x);
		free(y);
	} else {
		dsv32_bf16 *x = malloc((size_t)c->n * sizeof *x), *y = malloc((size_t)c->n * sizeof *y);
		assert_true(x && y);
		for (int64_t i = 0; i < c->n; i++)
			x[i] = (dsv32_bf16)(in[i] >> 16);
		dsv32_silu_torch_cpu(y, DSV32_BF16, x, DSV32_BF16, c->n, c->inner, c->threads, cap);
		for (int64_t i = 0; i < c->n; i++) {
			bool nan = (y[i] & 0x7F80) == 0x7F80 && (y[i] & 0x7F);
			out[i] = nan ? 0x7fc0u : y[i];
		}
		free(x);
		free(y);
	}
	free(in);
}

static uint64_t fnv1a64(const uint32_t *v, int64_t n, int width)
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (int64_t i = 0; i < n; i++)
		for (int k = 0; k < width; k++)
			h = (h ^ ((v[i] >> (8 * k)) & 0xFF)) * 0x100000001B3ull;
	return h;
}

static const char *op_name(int op)
{
	return op == 0 ? "sigmoid f32" : op == 1 ? "silu bf16" : "silu f32";
}

/* Compare our outputs with the stored ones (every output, or the windows) and the hash of all. */
static void check_case(const exp_case *c, int ci, const uint32_t *got)
{
	int w = out_width(c);
	const unsigned char *p = c->data;
	size_t W = c->full ? 1 : rd_u(p, 2);
	if (!c->full)
		p += 2;
	for (size_t k = 0; k < W; k++) {
		int64_t a = 0, m = c->n;
		if (!c->full) {
			a = (int64_t)rd_u(p, 4);
			m = (int64_t)rd_u(p + 4, 2);
			p += 6;
		}
		for (int64_t j = 0; j < m; j++, p += w) {
			int64_t i = a + j;
			uint32_t want = (uint32_t)rd_u(p, w);
			if (i >= c->n || got[i] != want) {
				uint32_t *in = malloc((size_t)c->n * sizeof *in);
				assert_non_null(in);
				input_bits(c->seed, c->n, in);
				fail_msg("case %d (%s, %s, %d threads, n %lld inner %lld) element %lld, "
					 "input %08x = %a: bits %0*x, torch %0*x (%s body)", ci,
					 op_name(c->op),
					 dsv32_torch_cap_name((dsv32_torch_cap)c->cap), c->threads,
					 (long long)c->n, (long long)c->inner, (long long)i,
					 in[i < c->n ? i : 0], (double)dsv32_f32_from_bits(in[i < c->n ? i : 0]),
					 2 * w, got[i], 2 * w, want,
					 dsv32_torch_cpu_is_vec(i, c->n, c->inner, c->threads,
								dsv32_torch_cpu_step((dsv32_torch_cap)c->cap,
										     c->op == 1 ? DSV32_BF16 : DSV32_F32))
						 ? "vector" : "scalar tail");
			}
		}
	}
	if (fnv1a64(got, c->n, w) != c->hash)
		fail_msg("case %d (%s, %s, %d threads, n %lld inner %lld): the stored elements agree "
			 "but the hash of all %lld outputs differs from torch's", ci, op_name(c->op),
			 dsv32_torch_cap_name((dsv32_torch_cap)c->cap), c->threads, (long long)c->n,
			 (long long)c->inner, (long long)c->n);
}

static void test_torch_cpu_rule_replays_every_recorded_torch_case(void **state)
{
	(void)state; /* the drivers are plain functions; the backend is for the ops below */
	if (dsv32_expf8_cpu_ok() && !dsv32_expf8_usable()) {
		print_message("skipped: the running libm's expf is not glibc's (expf_avx2.h guard), "
			      "so torch's scalar tail (std::exp) cannot be reproduced here\n");
		skip();
	}
	char path[600];
	size_t len, pos = 16;
	unsigned char *b = read_cases_file(&len, path, sizeof path);
	assert_true(len >= 16 && memcmp(b, "DSV32EX1", 8) == 0);
	uint32_t count = (uint32_t)rd_u(b + 8, 4);
	const char *other = getenv("DSV32_EXP_TORCH_FILE");
	assert_true(count >= (other && other[0] ? 1u : 2000u)); /* the committed file: 2028 */
	int replayed = 0, skipped = 0;
	int64_t elems = 0, stored = 0, differ_libm[3][DSV32_TORCH_CAP_COUNT] = {{0}};
	for (uint32_t ci = 0; ci < count; ci++) {
		exp_case c;
		decode_case(b, len, &pos, (int)ci, &c);
		if (c.cap >= DSV32_TORCH_CAP_COUNT) {
			print_message("case %u: skipped, recorded under capability %d, which this "
				      "build does not reproduce\n", ci, c.cap);
			skipped++;
			continue;
		}
		uint32_t *got = malloc((size_t)c.n * sizeof *got);
		uint32_t *lib = malloc((size_t)c.n * sizeof *lib);
		assert_true(got && lib);
		run_case(&c, (dsv32_torch_cap)c.cap, got);
		check_case(&c, (int)ci, got);
		run_case(&c, DSV32_TORCH_CAP_DEFAULT, lib); /* the libm rule: how much was at stake */
		for (int64_t i = 0; i < c.n; i++)
			differ_libm[c.op][c.cap] += got[i] != lib[i];
		elems += c.n;
		stored += c.full ? c.n : 0;
		replayed++;
		free(got);
		free(lib);
	}
	assert_int_equal(pos, len);
	printf("%s: replayed %d torch cases, %lld outputs (%lld stored one by one, the rest "
	       "by windows and a hash): all identical; %d skipped\n",
	       path, replayed, (long long)elems, (long long)stored, skipped);
	for (int op = 0; op < 3; op++)
		for (int k = 0; k < DSV32_TORCH_CAP_COUNT; k++)
			printf("  %s, %s: %lld outputs where torch differs from the libm rule\n",
			       op_name(op), dsv32_torch_cap_name((dsv32_torch_cap)k),
			       (long long)differ_libm[op][k]);
	if (!(other && other[0])) {
		/* the committed file tells the rules apart for fp32 outputs; DEFAULT is libm */
		for (int op = 0; op < 3; op += 2) {
			assert_true(differ_libm[op][DSV32_TORCH_CAP_AVX512] > 100);
			assert_true(differ_libm[op][DSV32_TORCH_CAP_AVX2] > 100);
		}
		for (int op = 0; op < 3; op++)
			assert_int_equal(differ_libm[op][DSV32_TORCH_CAP_DEFAULT], 0);
		/* bf16 silu: Sleef and libm exp differ in 122 fp32 silu values of bf16 inputs, and
		 * no bf16 rounding flips: the exhaustive cases show torch == libm for every bf16 x */
		for (int k = 0; k < DSV32_TORCH_CAP_COUNT; k++)
			assert_int_equal(differ_libm[1][k], 0);
	}
	free(b);
}

/* ---- Sleef's expf_u10 against exp() in double ------------------------------------------------- */

/* |r − e| in units of the fp32 ulp at e (subnormal spacing 2^-149 at the bottom). */
static double ulps(float r, double e)
{
	if (isinf(r) || isinf(e))
		return isinf(r) && (isinf(e) || e > FLT_MAX) && r > 0 ? 0.0 : INFINITY;
	int ex;
	frexp(e, &ex);
	double u = ldexp(1.0, (ex - 24 < -149) ? -149 : ex - 24);
	return fabs((double)r - e) / u;
}

static void test_sleef_expf_is_within_one_ulp_of_exp(void **state)
{
	(void)state;
	double worst = 0.0;
	float wx = 0.0f;
	int64_t tried = 0;
	/* every 61st fp32 pattern of both signs with |x| <= 104, plus every pattern in [-1, 1]
	 * near 0's binades by stride 1021 */
	for (uint64_t bits = 0; bits <= 0x42d00000u; bits += 61)
		for (int sgn = 0; sgn < 2; sgn++) {
			float x = dsv32_f32_from_bits((uint32_t)bits | (uint32_t)sgn << 31);
			float r = dsv32_expf_sleef_u10(x);
			double e = exp((double)x);
			double d = x < -104.0f ? (r == 0.0f ? 0.0 : INFINITY) : ulps(r, e);
			tried++;
			if (d > worst) {
				worst = d;
				wx = x;
			}
			if (!(d <= 1.0))
				fail_msg("expf_u10(%a) = %a, exp = %a: %.3f ulp", (double)x, (double)r,
					 e, d);
		}
	assert_true(dsv32_expf_sleef_u10(NAN) != dsv32_expf_sleef_u10(NAN));
	assert_true(dsv32_expf_sleef_u10(-INFINITY) == 0.0f && !signbit(dsv32_expf_sleef_u10(-1e30f)));
	assert_true(isinf(dsv32_expf_sleef_u10(INFINITY)) && isinf(dsv32_expf_sleef_u10(100.5f)));
	assert_true(dsv32_expf_sleef_u10(0.0f) == 1.0f && dsv32_expf_sleef_u10(-0.0f) == 1.0f);
	printf("expf_u10: %lld inputs, worst %.4f ulp at %a\n", (long long)tried, worst, (double)wx);
}

/* ---- the vector / tail split ------------------------------------------------------------------ */

static void test_vector_body_and_tail_follow_torch_loops(void **state)
{
	(void)state;
	const int64_t s32 = dsv32_torch_cpu_step(DSV32_TORCH_CAP_AVX512, DSV32_F32);
	assert_int_equal(s32, 32);
	assert_int_equal(dsv32_torch_cpu_step(DSV32_TORCH_CAP_AVX512, DSV32_BF16), 64);
	assert_int_equal(dsv32_torch_cpu_step(DSV32_TORCH_CAP_AVX2, DSV32_F32), 16);
	assert_int_equal(dsv32_torch_cpu_step(DSV32_TORCH_CAP_AVX2, DSV32_BF16), 32);
	assert_int_equal(dsv32_torch_cpu_step(DSV32_TORCH_CAP_DEFAULT, DSV32_F32), 0);
	/* n 40: two 16-lane vectors, then 8 scalars */
	for (int64_t i = 0; i < 40; i++)
		assert_int_equal(dsv32_torch_cpu_is_vec(i, 40, 40, 2, s32), i < 32);
	/* n 31: all scalar */
	for (int64_t i = 0; i < 31; i++)
		assert_false(dsv32_torch_cpu_is_vec(i, 31, 31, 1, s32));
	/* n 70000, 2 threads: chunks [0, 35000) and [35000, 70000), each with a 24-element tail */
	for (int64_t i = 34970; i < 35040; i++)
		assert_int_equal(dsv32_torch_cpu_is_vec(i, 70000, 70000, 2, s32),
				 i < 34976 || i >= 35000);
	assert_false(dsv32_torch_cpu_is_vec(69976, 70000, 70000, 2, s32));
	assert_true(dsv32_torch_cpu_is_vec(69975, 70000, 70000, 2, s32));
	/* one thread, or n at the grain: no split: 70000 = 2187 steps + 16 */
	assert_true(dsv32_torch_cpu_is_vec(34990, 70000, 70000, 1, s32));
	assert_false(dsv32_torch_cpu_is_vec(69984, 70000, 70000, 1, s32));
	assert_true(dsv32_torch_cpu_is_vec(32767 - 31, 32768, 32768, 2, s32));
	/* 3 threads, n 70000: ceil(70000 / 32768) = 3 chunks of 23334 */
	assert_false(dsv32_torch_cpu_is_vec(23333, 70000, 70000, 3, s32));
	assert_true(dsv32_torch_cpu_is_vec(23334, 70000, 70000, 3, s32));
	/* rows of 40 (a chunk view): every row has its own tail */
	for (int64_t i = 0; i < 120; i++)
		assert_int_equal(dsv32_torch_cpu_is_vec(i, 120, 40, 1, s32), i % 40 < 32);
}

static void test_rule_and_capability_names_round_trip(void **state)
{
	(void)state;
	for (int r = 0; r < DSV32_EXP_RULE_COUNT; r++) {
		dsv32_exp_rule back = DSV32_EXP_RULE_COUNT;
		assert_true(dsv32_exp_rule_from_name(dsv32_exp_rule_name((dsv32_exp_rule)r), &back));
		assert_int_equal(back, r);
	}
	for (int c = 0; c < DSV32_TORCH_CAP_COUNT; c++) {
		dsv32_torch_cap back = DSV32_TORCH_CAP_COUNT;
		assert_true(dsv32_torch_cap_from_name(dsv32_torch_cap_name((dsv32_torch_cap)c), &back));
		assert_int_equal(back, c);
	}
	dsv32_exp_rule r;
	assert_false(dsv32_exp_rule_from_name("torch", &r));
	assert_false(dsv32_exp_rule_from_name(NULL, &r));
	assert_string_equal(dsv32_exp_rule_name(DSV32_EXP_TORCH_CPU), "torch-cpu");
	assert_string_equal(dsv32_exp_rule_name(DSV32_EXP_RULE_COUNT), "?");
	assert_string_equal(dsv32_torch_cap_name(DSV32_TORCH_CAP_AVX512), "AVX512");
}

/* ---- the ops under exp=torch-cpu ---------------------------------------------------------- */

static dsv32_exp_opts torch_opts(int threads, dsv32_torch_cap cap, int64_t inner)
{
	return (dsv32_exp_opts){.rule = DSV32_EXP_TORCH_CPU, .threads = threads, .cap = cap,
				.inner = inner};
}

/* The router's sigmoid is torch's kernel on the whole [T, E] tensor: with T 3, E 16 (a decode
 * step of 3 rows) the first 32 logits take Sleef's exp and the last 16 expf. */
static void test_router_sigmoid_is_torch_kernel_on_whole_logits(void **state)
{
	const int64_t T = 3, E = 16;
	dsv32_tensor lg = tu_hostv(DSV32_F32, 2, T, E), bias = tu_hostv(DSV32_F32, 1, E);
	dsv32_tensor sc = tu_hostv(DSV32_F32, 2, T, E);
	float *x = lg.data, want[48];
	uint32_t bits[48];
	input_bits(0xC0FFEE, T * E, bits);
	for (int64_t i = 0; i < T * E; i++) /* dense near 0 and a few edges, all finite */
		x[i] = isfinite(dsv32_f32_from_bits(bits[i])) ?
			       fmaxf(-90.0f, fminf(90.0f, dsv32_f32_from_bits(bits[i]))) : 0.5f;
	for (int64_t j = 0; j < E; j++)
		((float *)bias.data)[j] = 0.001f * (float)j;
	dsv32_router_params p = {.n_groups = 1, .topk_groups = 1, .topk = 4, .route_scale = 2.5f,
				 .score_func = DSV32_SCORE_SIGMOID, .mode = DSV32_ROUTER_HF,
				 .norm_topk_prob = true};
	p.exp = torch_opts(2, DSV32_TORCH_CAP_AVX512, 0);
	dsv32_sigmoid_torch_cpu(want, x, T * E, T * E, 2, DSV32_TORCH_CAP_AVX512);
	assert_int_equal(dsv32_router_scores(*state, &sc, &lg, &bias, &p, NULL), DSV32_OK);
	int sleef = 0;
	for (int64_t i = 0; i < T * E; i++) {
		float b = want[i] + 0.001f * (float)(i % E);
		assert_int_equal(dsv32_f32_bits(((float *)sc.data)[i]), dsv32_f32_bits(b));
		sleef += dsv32_torch_cpu_is_vec(i, T * E, T * E, 2, 32);
	}
	assert_int_equal(sleef, 32);
	/* the selection and weights: dsv32_router with the rule = the weights at its experts */
	dsv32_tensor w = tu_hostv(DSV32_F32, 2, T, (int64_t)4), idx = tu_hostv(DSV32_I64, 2, T, (int64_t)4);
	dsv32_tensor w2 = tu_hostv(DSV32_F32, 2, T, (int64_t)4);
	for (int ties = 0; ties < 2; ties++) {
		p.torch_cpu_ties = ties;
		assert_int_equal(dsv32_router(*state, &w, &idx, &lg, &bias, &p, NULL), DSV32_OK);
		assert_int_equal(dsv32_router_weights_at(*state, &w2, &idx, &lg, &bias, &p, NULL),
				 DSV32_OK);
		assert_memory_equal(w.data, w2.data, (size_t)(T * 4) * sizeof(float));
		for (int64_t t = 0; t < T; t++) { /* w = s[idx] normalised, from torch's s */
			float sum = 0.0f;
			for (int k = 0; k < 4; k++)
				sum += want[t * E + ((int64_t *)idx.data)[t * 4 + k]];
			sum += 1e-20f;
			for (int k = 0; k < 4; k++) {
				float e = want[t * E + ((int64_t *)idx.data)[t * 4 + k]] / sum * 2.5f;
				assert_int_equal(dsv32_f32_bits(((float *)w.data)[t * 4 + k]),
						 dsv32_f32_bits(e));
			}
		}
	}
	/* errors: CUDA, softmax, bad threads */
	dsv32_error e = {0};
	dsv32_backend fake_cuda = {0};
	fake_cuda.device = DSV32_DEV_CUDA;
	lg.device = bias.device = sc.device = DSV32_DEV_CUDA;
	assert_int_equal(dsv32_router_scores(&fake_cuda, &sc, &lg, &bias, &p, &e),
			 DSV32_E_UNSUPPORTED);
	assert_non_null(strstr(e.what, "torch-cpu"));
	lg.device = bias.device = sc.device = DSV32_DEV_CPU;
	p.score_func = DSV32_SCORE_SOFTMAX;
	p.mode = DSV32_ROUTER_REF;
	assert_int_equal(dsv32_router_scores(*state, &sc, &lg, &bias, &p, &e), DSV32_E_UNSUPPORTED);
	p.score_func = DSV32_SCORE_SIGMOID;
	p.exp.threads = 0;
	assert_int_equal(dsv32_router_scores(*state, &sc, &lg, &bias, &p, &e), DSV32_E_USAGE);
	dsv32_tensor_free(&lg);
	dsv32_tensor_free(&bias);
	dsv32_tensor_free(&sc);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&w2);
	dsv32_tensor_free(&idx);
}

/* silu_mul under exp=torch-cpu: F32 a follows torch's fp32 kernel (and differs from libm
 * somewhere); BF16 a gives exactly the libm products (no bf16 silu changes, cases.bin). */
static void test_silu_mul_rule_follows_torch_kernel(void **state)
{
	const int64_t rows = 7, I = 300, n = rows * I;
	uint32_t *bits = malloc((size_t)n * sizeof *bits);
	input_bits(0xABCD, n, bits);
	for (int dt = 0; dt < 2; dt++) {
		dsv32_dtype t = dt ? DSV32_BF16 : DSV32_F32;
		dsv32_tensor a = tu_hostv(t, 2, rows, I), b = tu_hostv(t, 2, rows, I);
		dsv32_tensor h = tu_hostv(t, 2, rows, I), hl = tu_hostv(t, 2, rows, I);
		for (int64_t i = 0; i < n; i++) {
			float v = dsv32_f32_from_bits(bits[i]);
			v = isfinite(v) ? fmaxf(-60.0f, fminf(60.0f, v)) : 1.0f;
			dsv32_act_store(a.data, t, i, v);
			dsv32_act_store(b.data, t, i, 1.0f + 0.25f * (float)(i % 5));
		}
		for (int hf = 0; hf < 2; hf++) {
			for (int64_t inner = 0; inner <= I; inner += I) {
				dsv32_exp_opts xo = torch_opts(2, DSV32_TORCH_CAP_AVX512, inner);
				dsv32_status (*rule)(dsv32_backend *, dsv32_tensor *, const dsv32_tensor *,
						     const dsv32_tensor *, const dsv32_exp_opts *,
						     dsv32_error *) =
					hf ? dsv32_silu_mul_hf_rule : dsv32_silu_mul_ref_rule;
				assert_int_equal(rule(*state, &h, &a, &b, &xo, NULL), DSV32_OK);
				assert_int_equal(rule(*state, &hl, &a, &b, NULL, NULL), DSV32_OK);
				int differ = 0;
				for (int64_t i = 0; i < n; i++) {
					float v = dsv32_act_load(a.data, t, i), s;
					bool vec = dsv32_torch_cpu_is_vec(
						i, n, inner ? inner : n, 2,
						dsv32_torch_cpu_step(DSV32_TORCH_CAP_AVX512,
								     hf ? t : DSV32_F32));
					float ex = vec ? dsv32_expf_sleef_u10(-v) : expf(-v);
					s = v / (1.0f + ex);
					if (hf)
						s = dsv32_act_round(t, s);
					float want = dsv32_act_round(t, s * dsv32_act_load(b.data, t, i));
					assert_int_equal(dsv32_f32_bits(dsv32_act_load(h.data, t, i)),
							 dsv32_f32_bits(want));
					differ += dsv32_act_load(h.data, t, i) !=
						  dsv32_act_load(hl.data, t, i);
				}
				if (t == DSV32_F32)
					assert_true(differ > 0);
				else if (hf)
					assert_int_equal(differ, 0);
			}
		}
		dsv32_exp_opts xo = torch_opts(1, DSV32_TORCH_CAP_AVX2, 0);
		dsv32_error e = {0};
		dsv32_tensor ha = tu_hostv(dt ? DSV32_F32 : DSV32_BF16, 2, rows, I);
		assert_int_equal(dsv32_silu_mul_hf_rule(*state, &ha, &a, &b, &xo, &e), DSV32_E_DTYPE);
		xo.inner = 299;
		assert_int_equal(dsv32_silu_mul_hf_rule(*state, &h, &a, &b, &xo, &e), DSV32_E_USAGE);
		xo.inner = 0;
		dsv32_backend fake_cuda = {0};
		fake_cuda.device = DSV32_DEV_CUDA;
		a.device = b.device = h.device = DSV32_DEV_CUDA;
		assert_int_equal(dsv32_silu_mul_hf_rule(&fake_cuda, &h, &a, &b, &xo, &e),
				 DSV32_E_UNSUPPORTED);
		assert_non_null(strstr(e.what, "torch-cpu"));
		a.device = b.device = h.device = DSV32_DEV_CPU;
		dsv32_tensor_free(&a);
		dsv32_tensor_free(&b);
		dsv32_tensor_free(&h);
		dsv32_tensor_free(&hl);
		dsv32_tensor_free(&ha);
	}
	free(bits);
}

static void test_side_token_sets_exp_rule_and_label(void **state)
{
	(void)state;
	dsv32_side_spec s;
	dsv32_error e = {0};
	assert_int_equal(dsv32_side_parse("hf:gemm=host:ties=torch-cpu:exp=torch-cpu", &s, &e),
			 DSV32_OK);
	assert_int_equal(s.opts.exp_rule, DSV32_EXP_TORCH_CPU);
	assert_non_null(strstr(s.label, ":exp=torch-cpu"));
	assert_int_equal(dsv32_side_parse("hf:exp=libm", &s, &e), DSV32_OK);
	assert_int_equal(s.opts.exp_rule, DSV32_EXP_LIBM);
	assert_null(strstr(s.label, "exp="));
	assert_int_not_equal(dsv32_side_parse("hf:exp=sleef", &s, &e), DSV32_OK);
	assert_non_null(strstr(e.what, "exp=libm|torch-cpu"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torch_cpu_rule_replays_every_recorded_torch_case),
		cmocka_unit_test(test_sleef_expf_is_within_one_ulp_of_exp),
		cmocka_unit_test(test_vector_body_and_tail_follow_torch_loops),
		cmocka_unit_test(test_rule_and_capability_names_round_trip),
		cmocka_unit_test(test_router_sigmoid_is_torch_kernel_on_whole_logits),
		cmocka_unit_test(test_silu_mul_rule_follows_torch_kernel),
		cmocka_unit_test(test_side_token_sets_exp_rule_and_label),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
