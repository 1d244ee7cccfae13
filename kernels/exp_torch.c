/* exp_torch.c: Sleef's expf_u10 in scalar fp32 and the torch-cpu drivers of silu and sigmoid
 * (exp_torch.h). Written from the algorithm's description (Cody-Waite reduction by ln 2 split
 * in two fp32 parts, a degree-5 fused Horner polynomial, scaling by two powers of two). */
#include "kernels/exp_torch.h"
#include "kernels/cpu_parallel.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/elementwise.h"

/* core/model.h stores the rule as an int (core/ does not include kernels/) */
_Static_assert(DSV32_EXP_LIBM == 0 && DSV32_EXP_TORCH_CPU == 1, "model opts exp_rule values");

#define SLEEF_R_LN2 1.442695040888963407359924681001892137426645954152985934135449406931f
#define SLEEF_L2U 0.693145751953125f       /* ln 2, upper part: few mantissa bits, q·L2U exact */
#define SLEEF_L2L 1.428606765330187045e-06f /* ln 2 − L2U */
/* exp(s) ≈ 1 + s + s²·(c0 + c1·s + ... + c5·s⁵), c0 = 1/2 */
static const float sleef_c[6] = {
	0.000198527617612853646278381f, 0.00139304355252534151077271f,
	0.00833336077630519866943359f,  0.0416664853692054748535156f,
	0.166666671633720397949219f,    0.5f,
};

static const char *const rule_names[DSV32_EXP_RULE_COUNT] = {"libm", "torch-cpu"};
static const char *const cap_names[DSV32_TORCH_CAP_COUNT] = {"DEFAULT", "AVX2", "AVX512"};

const char *dsv32_exp_rule_name(dsv32_exp_rule rule)
{
	return (unsigned)rule < DSV32_EXP_RULE_COUNT ? rule_names[rule] : "?";
}

bool dsv32_exp_rule_from_name(const char *name, dsv32_exp_rule *out)
{
	for (int r = 0; name && r < DSV32_EXP_RULE_COUNT; r++)
		if (!strcmp(name, rule_names[r])) {
			*out = (dsv32_exp_rule)r;
			return true;
		}
	return false;
}

const char *dsv32_torch_cap_name(dsv32_torch_cap cap)
{
	return (unsigned)cap < DSV32_TORCH_CAP_COUNT ? cap_names[cap] : "?";
}

bool dsv32_torch_cap_from_name(const char *name, dsv32_torch_cap *out)
{
	for (int c = 0; name && c < DSV32_TORCH_CAP_COUNT; c++)
		if (!strcmp(name, cap_names[c])) {
			*out = (dsv32_torch_cap)c;
			return true;
		}
	return false;
}

dsv32_torch_cap dsv32_torch_cap_of_host(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
		return DSV32_TORCH_CAP_AVX512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return DSV32_TORCH_CAP_AVX2;
#endif
	return DSV32_TORCH_CAP_DEFAULT;
}

dsv32_exp_opts dsv32_exp_opts_torch_cpu_host(void)
{
	return (dsv32_exp_opts){.rule = DSV32_EXP_TORCH_CPU, .threads = omp_get_max_threads(),
				.cap = dsv32_torch_cap_of_host(), .inner = 0};
}

int64_t dsv32_torch_cpu_step(dsv32_torch_cap cap, dsv32_dtype dt)
{
	int64_t lanes = cap == DSV32_TORCH_CAP_AVX512 ? 16 : cap == DSV32_TORCH_CAP_AVX2 ? 8 : 0;
	/* Vectorized<BFloat16> holds twice the lanes of Vectorized<float>; two vectors a step */
	return 2 * (dt == DSV32_BF16 ? 2 * lanes : lanes);
}

/* 2^e for -126 <= e <= 127, from the exponent bits. */
static float pow2i(int e)
{
	return dsv32_f32_from_bits((uint32_t)(e + 127) << 23);
}

float dsv32_expf_sleef_u10(float x)
{
	if (x != x)
		return dsv32_f32_from_bits(0xffffffffu);
	if (x < -104.0f)
		return 0.0f;
	if (x > 100.0f)
		return INFINITY;
	float qf = rintf(x * SLEEF_R_LN2); /* |q| <= 151: exact as an int and as a float */
	int q = (int)qf;
	float s = fmaf(qf, -SLEEF_L2U, x);
	s = fmaf(qf, -SLEEF_L2L, s);
	float u = sleef_c[0];
	for (int i = 1; i < 6; i++)
		u = fmaf(u, s, sleef_c[i]);
	u = 1.0f + fmaf(s * s, u, s);
	int h = q >> 1; /* arithmetic shift, as vsra: floor(q / 2) */
	return u * pow2i(h) * pow2i(q - h);
}

bool dsv32_torch_cpu_is_vec(int64_t i, int64_t n, int64_t inner, int threads, int64_t step)
{
	if (step <= 0)
		return false;
	int64_t nt = 1;
	if (threads > 1 && n > DSV32_TORCH_GRAIN) {
		int64_t want = (n + DSV32_TORCH_GRAIN - 1) / DSV32_TORCH_GRAIN;
		nt = want < threads ? want : threads;
	}
	int64_t chunk = (n + nt - 1) / nt;
	int64_t c0 = i / chunk * chunk, c1 = c0 + chunk < n ? c0 + chunk : n;
	int64_t r0 = i / inner * inner, r1 = r0 + inner;
	int64_t p0 = r0 > c0 ? r0 : c0, p1 = r1 < c1 ? r1 : c1; /* i's piece [p0, p1) */
	int64_t len = p1 - p0;
	return i - p0 < len - len % step;
}

/* The per-element formulas of the two bodies (exp_torch.h "Rounds"). */
static float silu_elem(float v, bool vec)
{
	float e = vec ? dsv32_expf_sleef_u10(-v) : expf(-v);
	return dsv32_fdiv_rn(v, dsv32_fadd_rn(1.0f, e));
}

static float sigmoid_elem(float v, bool vec)
{
	float e = vec ? dsv32_expf_sleef_u10(0.0f - v) : expf(-v);
	return dsv32_fdiv_rn(1.0f, dsv32_fadd_rn(1.0f, e));
}

void dsv32_silu_torch_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t n,
			  int64_t inner, int threads, dsv32_torch_cap cap)
{
	int64_t step = dsv32_torch_cpu_step(cap, xt);
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n * 8))
	for (int64_t i = 0; i < n; i++) {
		float v = dsv32_act_load(x, xt, i);
		dsv32_act_store(y, yt, i, silu_elem(v, dsv32_torch_cpu_is_vec(i, n, inner, threads,
									      step)));
	}
}

void dsv32_sigmoid_torch_cpu(float *y, const float *x, int64_t n, int64_t inner, int threads,
			     dsv32_torch_cap cap)
{
	int64_t step = dsv32_torch_cpu_step(cap, DSV32_F32);
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n * 8))
	for (int64_t i = 0; i < n; i++)
		y[i] = sigmoid_elem(x[i], dsv32_torch_cpu_is_vec(i, n, inner, threads, step));
}
