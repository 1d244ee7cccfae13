/* expf_avx2.c: glibc's expf (the __expf_fma variant) in 8 lanes, bit for bit (expf_avx2.h). */
#include "kernels/expf_avx2.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define EXPF8_X86 1
#include <immintrin.h>
#define EXPF8_FN __attribute__((target("avx2,fma")))
#endif

/* The constants of glibc's __exp2f_data (EXP2F_TABLE_BITS 5, N = 32), as bits. tab[i] is the
 * bits of 2^(i/32) minus i << 47, so that adding k << 47 (k the rounded z, low 5 bits i) gives
 * the bits of 2^(k/32). */
static const uint64_t expf8_tab[32] = {
	0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
	0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
	0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
	0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
	0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
	0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
	0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
	0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
#define EXPF8_INVLN2N 0x1.71547652b82fep+5 /* 32 / ln 2 */
#define EXPF8_SHIFT 0x1.8p+52 /* 0x1.8p52 / 32 scaled: k lands in the low mantissa bits */
#define EXPF8_C0 0x1.c6af84b912394p-20
#define EXPF8_C1 0x1.ebfce50fac4f3p-13
#define EXPF8_C2 0x1.62e42ff0c52d6p-6
/* glibc's special-case thresholds (float): above OFLOW overflow, below UFLOW +0, from UFLOW up
 * to (not including) MAYUF the "may underflow" result; NaN/inf also leave the main path. */
#define EXPF8_OFLOW 0x1.62e42ep6f
#define EXPF8_UFLOW (-0x1.9fe368p6f)
#define EXPF8_MAYUF (-0x1.9d1d9ep6f)

/* Inputs that tell this expf from other float exps (found by the exhaustive harness outside the
 * tree, docs/perf.md): the first two are the only inputs where glibc 2.36's __expf_fma and its
 * non-FMA __expf round differently (32.56463 and -63.09946), so a libm without the FMA variant
 * fails the guard; the other 32 are spread over the 170,045 inputs in 2^-10 <= |x| <= 104 where
 * glibc's expf is not correctly rounded, so a correctly rounded expf fails it too. */
static const uint32_t expf8_witness[] = {
	0x4202422fu, 0xc27c65d9u, 0x3a8420f2u, 0xbb9a5fb2u, 0x3be76cccu, 0xbc5634cau,
	0xbcd8be8au, 0xbd4ab10cu, 0xbdc26590u, 0x3e4b30ccu, 0xbecebd92u, 0x3f550966u,
	0x3fda8eecu, 0xc0616d6cu, 0x40e7da5eu, 0x416cf07cu, 0xc1f0f410u, 0xc27ab890u,
	0xba843811u, 0xbb98a09bu, 0x3be50d15u, 0x3c51a2f1u, 0xbcd37dd9u, 0x3d4761a1u,
	0x3dbf20efu, 0x3e3eccffu, 0x3ec4fb11u, 0x3f4b7543u, 0x3fce3047u, 0xc0521973u,
	0x40dadc5du, 0xc162f81du, 0x41e823f9u, 0xc26fce57u,
};
#define EXPF8_NWIT ((int)(sizeof(expf8_witness) / sizeof(expf8_witness[0])))

#ifdef EXPF8_X86
/* Four lanes of the main path: d is x widened to double (exact). */
EXPF8_FN static inline __m128 expf4_main(__m256d d)
{
	const __m256d inv = _mm256_set1_pd(EXPF8_INVLN2N), shift = _mm256_set1_pd(EXPF8_SHIFT);
	__m256d kd = _mm256_fmadd_pd(inv, d, shift); /* z + shift, fused as glibc's build */
	__m256i ki = _mm256_castpd_si256(kd);
	kd = _mm256_sub_pd(kd, shift);
	__m256d r = _mm256_fmsub_pd(inv, d, kd); /* z − k with z recomputed exactly in the fma */
	__m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
	__m256i t = _mm256_i64gather_epi64((const long long *)expf8_tab, idx, 8);
	t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
	__m256d s = _mm256_castsi256_pd(t);
	__m256d z = _mm256_fmadd_pd(_mm256_set1_pd(EXPF8_C0), r, _mm256_set1_pd(EXPF8_C1));
	__m256d r2 = _mm256_mul_pd(r, r);
	__m256d y = _mm256_fmadd_pd(_mm256_set1_pd(EXPF8_C2), r, _mm256_set1_pd(1.0));
	y = _mm256_fmadd_pd(z, r2, y);
	return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

/* 8 lanes; lanes that glibc sends to a special case other than +0 are redone with expf. */
EXPF8_FN static inline void expf8_body(float *y, const float *x)
{
	__m256 v = _mm256_loadu_ps(x);
	__m128 lo = expf4_main(_mm256_cvtps_pd(_mm256_castps256_ps128(v)));
	__m128 hi = expf4_main(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
	__m256 e = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
	__m256 ok = _mm256_and_ps(_mm256_cmp_ps(v, _mm256_set1_ps(EXPF8_MAYUF), _CMP_GE_OQ),
				  _mm256_cmp_ps(v, _mm256_set1_ps(EXPF8_OFLOW), _CMP_LE_OQ));
	__m256 zero = _mm256_cmp_ps(v, _mm256_set1_ps(EXPF8_UFLOW), _CMP_LT_OQ);
	e = _mm256_andnot_ps(zero, e);
	int other = ~_mm256_movemask_ps(_mm256_or_ps(ok, zero)) & 0xff;
	if (!other) {
		_mm256_storeu_ps(y, e);
		return;
	}
	float tmp[8], in[8];
	_mm256_storeu_ps(tmp, e);
	_mm256_storeu_ps(in, v);
	for (int l = 0; l < 8; l++)
		if (other >> l & 1)
			tmp[l] = expf(in[l]);
	memcpy(y, tmp, sizeof(tmp));
}
#endif

bool dsv32_expf8_cpu_ok(void)
{
#ifdef EXPF8_X86
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	return false;
#endif
}

void dsv32_expf8_raw(float *y, const float *x)
{
#ifdef EXPF8_X86
	expf8_body(y, x);
#else
	for (int l = 0; l < 8; l++)
		y[l] = expf(x[l]);
#endif
}

static float bits_f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static uint32_t f_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

/* The guard's inputs: the special inputs and thresholds, the FMA witnesses, then values with a
 * pseudo-random mantissa in every binade from 2^-30 to 2^6 of both signs. */
static void spot_inputs(float *x)
{
	static const uint32_t special[] = {
		0x7fc00000, 0xffc00000, 0x7f800000, 0xff800000, 0x00000000, 0x80000000,
		0x00000001, 0x80000001, 0x7f7fffff, 0xff7fffff,
	};
	const float edge[] = { EXPF8_OFLOW, nextafterf(EXPF8_OFLOW, INFINITY), EXPF8_UFLOW,
			       nextafterf(EXPF8_UFLOW, 0.0f), nextafterf(EXPF8_UFLOW, -INFINITY),
			       EXPF8_MAYUF, nextafterf(EXPF8_MAYUF, -INFINITY),
			       nextafterf(EXPF8_MAYUF, 0.0f), 88.0f, -88.0f, 0x1.fffffep6f,
			       -0x1.fffffep6f };
	int n = 0;
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		x[n++] = bits_f(special[i]);
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		x[n++] = edge[i];
	for (int i = 0; i < EXPF8_NWIT && n < DSV32_EXPF8_SPOTS; i++)
		x[n++] = bits_f(expf8_witness[i]);
	uint32_t lcg = 12345u;
	for (int i = 0; n < DSV32_EXPF8_SPOTS; i++) {
		lcg = lcg * 1664525u + 1013904223u;
		uint32_t e = 127u - 30u + (uint32_t)(i / 2) % 37u; /* 2^-30 .. 2^6 */
		uint32_t sign = (uint32_t)(i & 1) << 31;
		x[n++] = bits_f(sign | e << 23 | (lcg >> 9));
	}
}

bool dsv32_expf8_selfcheck(float (*ref)(float))
{
	if (!dsv32_expf8_cpu_ok())
		return false;
	float x[DSV32_EXPF8_SPOTS], y[DSV32_EXPF8_SPOTS];
	spot_inputs(x);
	for (int i = 0; i < DSV32_EXPF8_SPOTS; i += 8)
		dsv32_expf8_raw(y + i, x + i);
	for (int i = 0; i < DSV32_EXPF8_SPOTS; i++) {
		float r = ref(x[i]);
		if (r != r ? y[i] == y[i] : f_bits(r) != f_bits(y[i]))
			return false;
	}
	return true;
}

static float libm_expf(float x)
{
	return expf(x);
}

bool dsv32_expf8_usable(void)
{
	/* 0 unknown, 1 usable, 2 not: racing first callers compute the same answer. */
	static int state;
	int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	if (s == 0) {
		s = dsv32_expf8_selfcheck(libm_expf) ? 1 : 2;
		__atomic_store_n(&state, s, __ATOMIC_RELEASE);
	}
	return s == 1;
}

void dsv32_expf_inplace(float *v, int64_t n)
{
	int64_t i = 0;
#ifdef EXPF8_X86
	if (dsv32_expf8_usable())
		for (; i + 8 <= n; i += 8)
			expf8_body(v + i, v + i);
#endif
	for (; i < n; i++)
		v[i] = expf(v[i]);
}
