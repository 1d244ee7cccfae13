/* dtype.h: element types and the exact conversions between them (host and device).
 *
 * Every conversion to a narrow type rounds to nearest, ties to even (RNE), the rounding of
 * PyTorch's .to(dtype) on CPU and CUDA. Per type:
 *   bf16      8 exp / 7 mantissa bits; f32 -> bf16 keeps NaN (sign kept, made quiet) and
 *             overflows to inf as RNE dictates.
 *   f16       IEEE binary16: subnormals, overflow to inf, NaN kept (quiet).
 *   f8 e4m3fn bias 7, no inf, NaN = S.1111.111, max 448, subnormal quantum 2^-9.
 *             f32 -> e4m3 SATURATES: |x| > 448 (inf included) gives +-448; NaN gives NaN.
 *             (The reference clamps to +-448 before casting, so saturation is its semantics.)
 *   f8 e5m2   bias 15, IEEE-like with inf and NaN; overflow to inf as RNE dictates.
 *   f8 e8m0   (F8_E8M0, OCP MX "ue8m0", the block-scale format of DeepSeek's checkpoints)
 *             no sign, no mantissa: code e is 2^(e-127), 0xff is NaN, no zero, no inf.
 *             f32 -> e8m0 matches ml_dtypes' float8_e8m0fnu, NOT RNE: see dsv32_f32_to_e8m0.
 * Listed only: F4, F6_E2M3, F6_E3M2, F8_E4M3FNUZ, F8_E5M2FNUZ and C64 are dtypes the Python
 * safetensors library knows. Files holding them open and list them (bits and byte sizes are
 * known), but their values are not readable here (dsv32_dtype_is_readable is false).
 * Decoding any narrow code to f32 is exact. The math is DSV32_HD so kernels share it.
 */
#ifndef DSV32_DTYPE_H
#define DSV32_DTYPE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define DSV32_HD __host__ __device__
#else
#define DSV32_HD
#endif

typedef enum {
	DSV32_F32 = 0,
	DSV32_BF16,
	DSV32_F16,
	DSV32_F8_E4M3,
	DSV32_F8_E5M2,
	DSV32_F64,
	DSV32_I64,
	DSV32_I32,
	DSV32_I16,
	DSV32_I8,
	DSV32_U8,
	DSV32_BOOL,
	DSV32_U16,
	DSV32_U32,
	DSV32_U64,
	DSV32_F8_E8M0,
	DSV32_F4,          /* F4 .. C64: listed only (no value conversion), see above */
	DSV32_F6_E2M3,
	DSV32_F6_E3M2,
	DSV32_F8_E4M3FNUZ,
	DSV32_F8_E5M2FNUZ,
	DSV32_C64,
	DSV32_DTYPE_COUNT /* append only, above this line */
} dsv32_dtype;

typedef uint16_t dsv32_bf16; /* raw bits */
typedef uint16_t dsv32_f16;
typedef uint8_t dsv32_f8; /* e4m3fn, e5m2 or e8m0 raw bits, by context */

/* Safetensors name ("BF16", "F8_E4M3", ...) and back; from_name returns false if unknown. */
const char *dsv32_dtype_name(dsv32_dtype t);
bool dsv32_dtype_from_name(const char *name, dsv32_dtype *out);
/* Bytes per element; 0 for the sub-byte types (F4, F6_*: use dsv32_dtype_bits) and unknown t. */
size_t dsv32_dtype_size(dsv32_dtype t);
/* Bits per element (4 for F4, 6 for F6_*); 0 for an unknown t. Safetensors packs sub-byte
 * types: a tensor of n elements holds n * bits / 8 bytes, and n * bits must be a multiple of 8. */
unsigned dsv32_dtype_bits(dsv32_dtype t);
/* A float type whose values dsv32_convert / dsv32_load_f64 read (F8_E8M0 included). */
bool dsv32_dtype_is_float(dsv32_dtype t);
/* False for the listed-only types (F4 .. C64): present in a file, values not readable. */
bool dsv32_dtype_is_readable(dsv32_dtype t);

DSV32_HD static inline uint32_t dsv32_f32_bits(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	return u;
}

DSV32_HD static inline float dsv32_f32_from_bits(uint32_t u)
{
	float x;
	memcpy(&x, &u, 4);
	return x;
}

/* ---- bf16 ---- */
DSV32_HD static inline float dsv32_bf16_to_f32(dsv32_bf16 h)
{
	return dsv32_f32_from_bits((uint32_t)h << 16);
}

DSV32_HD static inline dsv32_bf16 dsv32_f32_to_bf16(float x)
{
	uint32_t u = dsv32_f32_bits(x);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (dsv32_bf16)((u >> 16) | 0x0040u); /* NaN: keep sign and payload, quiet */
	u += 0x7fffu + ((u >> 16) & 1u);
	return (dsv32_bf16)(u >> 16);
}

/* Round an f32 to the nearest bf16 value, returned as f32 (a "rounding point"). */
DSV32_HD static inline float dsv32_round_bf16(float x)
{
	return dsv32_bf16_to_f32(dsv32_f32_to_bf16(x));
}

/* ---- generic small float decode/encode (exact decode; RNE encode) ---- */
DSV32_HD static inline float dsv32_minifloat_decode(uint32_t code, int ebits, int mbits, int bias)
{
	uint32_t sign = (code >> (ebits + mbits)) & 1u;
	uint32_t e = (code >> mbits) & ((1u << ebits) - 1u);
	uint32_t m = code & ((1u << mbits) - 1u);
	float v;
	if (e == 0)
		v = ldexpf((float)m, 1 - bias - mbits);
	else
		v = ldexpf((float)(m | (1u << mbits)), (int)e - bias - mbits);
	return sign ? -v : v;
}

/* Encode a finite, non-negative a (already range-checked by the caller) with RNE. The result
 * may be the code just above the largest finite one; callers handle overflow. */
DSV32_HD static inline uint32_t dsv32_minifloat_encode_abs(float a, int mbits, int bias)
{
	int min_exp = 1 - bias; /* exponent of the smallest normal */
	if (a < ldexpf(1.0f, min_exp)) {
		float q = rintf(ldexpf(a, mbits - min_exp)); /* multiples of the subnormal quantum */
		return (uint32_t)q; /* q == 2^mbits lands exactly on the smallest normal code */
	}
	int e;
	frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
	e -= 1;        /* a in [2^e, 2^(e+1)) */
	float m = rintf(ldexpf(a, mbits - e));
	if (m >= ldexpf(1.0f, mbits + 1)) {
		m = ldexpf(1.0f, mbits);
		e += 1;
	}
	return ((uint32_t)(e + bias) << mbits) | ((uint32_t)m - (1u << mbits));
}

/* ---- f16 ---- */
DSV32_HD static inline float dsv32_f16_to_f32(dsv32_f16 h)
{
	uint32_t e = (h >> 10) & 0x1fu;
	if (e == 0x1fu) {
		uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
		uint32_t m = (uint32_t)(h & 0x3ffu);
		return dsv32_f32_from_bits(sign | 0x7f800000u | (m << 13));
	}
	return dsv32_minifloat_decode(h, 5, 10, 15);
}

DSV32_HD static inline dsv32_f16 dsv32_f32_to_f16(float x)
{
	uint32_t u = dsv32_f32_bits(x);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
	float a = fabsf(x);
	if (a != a)
		return (dsv32_f16)(sign | 0x7e00u | ((u >> 13) & 0x3ffu));
	if (a >= 65520.0f) /* 65504 + half an ulp rounds to inf (tie goes to the even inf) */
		return (dsv32_f16)(sign | 0x7c00u);
	return (dsv32_f16)(sign | dsv32_minifloat_encode_abs(a, 10, 15));
}

/* ---- fp8 e4m3fn ---- */
#define DSV32_E4M3_MAX 448.0f

DSV32_HD static inline float dsv32_e4m3_to_f32(dsv32_f8 c)
{
	if ((c & 0x7fu) == 0x7fu)
		return dsv32_f32_from_bits((c & 0x80u ? 0x80000000u : 0u) | 0x7fc00000u);
	return dsv32_minifloat_decode(c, 4, 3, 7);
}

/* lut[c] = dsv32_e4m3_to_f32(c) for all 256 codes, built from the bits (no ldexpf: the decode
 * tables of the CPU bodies are built per call; tests/test_vec_scores.c checks every code). */
static inline void dsv32_e4m3_table(float lut[256])
{
	for (uint32_t c = 0; c < 256; c++) {
		uint32_t s = (c & 0x80u) << 24, e = (c >> 3) & 0xfu, m = c & 7u;
		float v;
		if ((c & 0x7fu) == 0x7fu)
			v = dsv32_f32_from_bits(s | 0x7fc00000u);
		else if (e == 0) /* zero or subnormal: m · 2^-9, exact; code 0x80 gives -0 */
			v = s ? -((float)m * 0.001953125f) : (float)m * 0.001953125f;
		else
			v = dsv32_f32_from_bits(s | ((e + 120u) << 23) | (m << 20));
		lut[c] = v;
	}
}

/* Branch-free, so loops over it vectorise: the normal range rounds the f32 bits to 3 mantissa
 * bits (RNE: add half an ulp less one plus the kept lsb; a carry moves into the exponent), then
 * rebiases 127 -> 7; subnormal codes are |x| * 2^9 (exact) rounded to an integer by adding 2^23
 * in the current rounding mode, as rintf. The same codes as
 * sign | dsv32_minifloat_encode_abs(|x|, 3, 7) with saturation and NaN on all 2^32 inputs,
 * without its frexpf/ldexpf/rintf calls (half of the fp8 fixture's time). */
DSV32_HD static inline dsv32_f8 dsv32_f32_to_e4m3(float x)
{
	uint32_t u = dsv32_f32_bits(x), a = u & 0x7fffffffu;
	uint32_t nrm = ((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3);
	uint32_t sub = dsv32_f32_bits(dsv32_f32_from_bits(a) * 512.0f + 0x1p23f) - 0x4b000000u;
	/* selected by masks: a ?: may become a branch, and a branch stops vectorising */
	uint32_t is_nrm = 0u - (uint32_t)(a >= 0x3c800000u); /* |x| >= 2^-6, the smallest normal */
	uint32_t is_sat = 0u - (uint32_t)(a >= 0x43e00000u); /* |x| >= 448, inf included */
	uint32_t is_nan = 0u - (uint32_t)(a > 0x7f800000u);
	uint32_t code = (nrm & is_nrm) | (sub & ~is_nrm);
	code = (0x7eu & is_sat) | (code & ~is_sat);
	code = (0x7fu & is_nan) | (code & ~is_nan);
	return (dsv32_f8)(((u >> 24) & 0x80u) | code);
}

/* ---- fp8 e5m2 ---- */
DSV32_HD static inline float dsv32_e5m2_to_f32(dsv32_f8 c)
{
	return dsv32_f16_to_f32((dsv32_f16)((uint16_t)c << 8));
}

DSV32_HD static inline dsv32_f8 dsv32_f32_to_e5m2(float x)
{
	uint32_t u = dsv32_f32_bits(x);
	uint8_t sign = (u >> 24) & 0x80u;
	float a = fabsf(x);
	if (a != a)
		return (dsv32_f8)(sign | 0x7eu);
	if (a >= 61440.0f) /* 57344 + half an ulp (4096) rounds to inf */
		return (dsv32_f8)(sign | 0x7cu);
	return (dsv32_f8)(sign | dsv32_minifloat_encode_abs(a, 2, 15));
}

/* ---- fp8 e8m0fnu (ue8m0) ---- */
DSV32_HD static inline float dsv32_e8m0_to_f32(dsv32_f8 c)
{
	if (c == 0xffu)
		return dsv32_f32_from_bits(0x7fc00000u);
	if (c == 0)
		return dsv32_f32_from_bits(0x00400000u); /* 2^-127: an f32 subnormal */
	return dsv32_f32_from_bits((uint32_t)c << 23); /* the f32 exponent has the same bias */
}

/* Nearest power of two with ties UP (1.5 -> 2, 3 -> 4, 0.75 -> 1), as ml_dtypes'
 * float8_e8m0fnu casts (tests/py_test_e8m0_ml_dtypes.py checks it code by code). Below 2^-127
 * saturates to code 0 (there is no zero); from 1.5 * 2^127 up it is NaN, as are +-0,
 * negatives, inf and NaN (ml_dtypes again). Scales that DeepSeek stores are exact powers of
 * two, which every rounding rule keeps. */
DSV32_HD static inline dsv32_f8 dsv32_f32_to_e8m0(float x)
{
	uint32_t u = dsv32_f32_bits(x);
	if (u == 0 || u >= 0x7f800000u) /* +0, inf, NaN, and everything with the sign bit */
		return 0xffu;
	uint32_t e = u >> 23, m = u & 0x7fffffu;
	if (e == 0) /* f32 subnormal: 2^-127 is m = 2^22, the tie up to 2^-126 is 1.5 * 2^22 */
		return m >= 0x600000u ? 1u : 0u;
	e += m >= 0x400000u ? 1u : 0u; /* mantissa >= .5: the tie goes up */
	return e > 254u ? 0xffu : (dsv32_f8)e;
}

/* Convert n elements between any two float dtypes (F32, BF16, F16, F8_*, F64), with the RNE /
 * saturation rules above (a NaN stays a NaN; its sign and payload are unspecified,
 * docs/numerics.md). dst may equal src when the dtypes are the same or dst's is narrower.
 * Returns false if either dtype is not a float type. */
bool dsv32_convert(void *dst, dsv32_dtype dst_t, const void *src, dsv32_dtype src_t, size_t n);

/* Read element i of a float buffer as f64 / f32 (exact for every narrow type). */
double dsv32_load_f64(const void *p, dsv32_dtype t, size_t i);

#endif
