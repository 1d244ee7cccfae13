/* dtype.c: dtype names, sizes and bulk conversion (per-element math is in dtype.h). */
#include "core/dtype.h"

/* bits, not bytes: F4 and F6_* pack below a byte. readable: dsv32_convert / load_f64 know the
 * values (every type but the listed-only ones appended after F8_E8M0). */
static const struct {
	const char *name;
	unsigned bits;
	bool is_float, readable;
} dtype_info[DSV32_DTYPE_COUNT] = {
	[DSV32_F32] = {"F32", 32, true, true},
	[DSV32_BF16] = {"BF16", 16, true, true},
	[DSV32_F16] = {"F16", 16, true, true},
	[DSV32_F8_E4M3] = {"F8_E4M3", 8, true, true},
	[DSV32_F8_E5M2] = {"F8_E5M2", 8, true, true},
	[DSV32_F64] = {"F64", 64, true, true},
	[DSV32_I64] = {"I64", 64, false, true},
	[DSV32_I32] = {"I32", 32, false, true},
	[DSV32_I16] = {"I16", 16, false, true},
	[DSV32_I8] = {"I8", 8, false, true},
	[DSV32_U8] = {"U8", 8, false, true},
	[DSV32_BOOL] = {"BOOL", 8, false, true},
	[DSV32_U16] = {"U16", 16, false, true},
	[DSV32_U32] = {"U32", 32, false, true},
	[DSV32_U64] = {"U64", 64, false, true},
	[DSV32_F8_E8M0] = {"F8_E8M0", 8, true, true},
	[DSV32_F4] = {"F4", 4, false, false},
	[DSV32_F6_E2M3] = {"F6_E2M3", 6, false, false},
	[DSV32_F6_E3M2] = {"F6_E3M2", 6, false, false},
	[DSV32_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8, false, false},
	[DSV32_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8, false, false},
	[DSV32_C64] = {"C64", 64, false, false},
};

const char *dsv32_dtype_name(dsv32_dtype t)
{
	if ((unsigned)t >= DSV32_DTYPE_COUNT)
		return "?";
	return dtype_info[t].name;
}

bool dsv32_dtype_from_name(const char *name, dsv32_dtype *out)
{
	for (int t = 0; t < DSV32_DTYPE_COUNT; t++) {
		if (strcmp(name, dtype_info[t].name) == 0) {
			*out = (dsv32_dtype)t;
			return true;
		}
	}
	return false;
}

size_t dsv32_dtype_size(dsv32_dtype t)
{
	unsigned b = dsv32_dtype_bits(t);
	return b % 8 == 0 ? b / 8 : 0;
}

unsigned dsv32_dtype_bits(dsv32_dtype t)
{
	return (unsigned)t < DSV32_DTYPE_COUNT ? dtype_info[t].bits : 0;
}

bool dsv32_dtype_is_float(dsv32_dtype t)
{
	return (unsigned)t < DSV32_DTYPE_COUNT && dtype_info[t].is_float;
}

bool dsv32_dtype_is_readable(dsv32_dtype t)
{
	return (unsigned)t < DSV32_DTYPE_COUNT && dtype_info[t].readable;
}

double dsv32_load_f64(const void *p, dsv32_dtype t, size_t i)
{
	switch (t) {
	case DSV32_F32: return ((const float *)p)[i];
	case DSV32_F64: return ((const double *)p)[i];
	case DSV32_BF16: return dsv32_bf16_to_f32(((const uint16_t *)p)[i]);
	case DSV32_F16: return dsv32_f16_to_f32(((const uint16_t *)p)[i]);
	case DSV32_F8_E4M3: return dsv32_e4m3_to_f32(((const uint8_t *)p)[i]);
	case DSV32_F8_E5M2: return dsv32_e5m2_to_f32(((const uint8_t *)p)[i]);
	case DSV32_F8_E8M0: return dsv32_e8m0_to_f32(((const uint8_t *)p)[i]);
	case DSV32_I64: return (double)((const int64_t *)p)[i];
	case DSV32_I32: return ((const int32_t *)p)[i];
	case DSV32_I16: return ((const int16_t *)p)[i];
	case DSV32_I8: return ((const int8_t *)p)[i];
	case DSV32_U8: case DSV32_BOOL: return ((const uint8_t *)p)[i];
	case DSV32_U16: return ((const uint16_t *)p)[i];
	case DSV32_U32: return ((const uint32_t *)p)[i];
	case DSV32_U64: return (double)((const uint64_t *)p)[i];
	default: return 0.0;
	}
}

/* f64 -> narrow goes through f32 first only for f32 itself; narrow types are rounded from the
 * f32 value, which is exact for every narrow input (wider-than-f32 inputs are F64 only). */
static void store_f32(void *p, dsv32_dtype t, size_t i, float v)
{
	switch (t) {
	case DSV32_F32: ((float *)p)[i] = v; break;
	case DSV32_BF16: ((uint16_t *)p)[i] = dsv32_f32_to_bf16(v); break;
	case DSV32_F16: ((uint16_t *)p)[i] = dsv32_f32_to_f16(v); break;
	case DSV32_F8_E4M3: ((uint8_t *)p)[i] = dsv32_f32_to_e4m3(v); break;
	case DSV32_F8_E5M2: ((uint8_t *)p)[i] = dsv32_f32_to_e5m2(v); break;
	case DSV32_F8_E8M0: ((uint8_t *)p)[i] = dsv32_f32_to_e8m0(v); break;
	default: break;
	}
}

/* A float-typed element as f32 (every narrow float is exact in f32; no detour through f64). */
static float load_f32(const void *p, dsv32_dtype t, size_t i)
{
	switch (t) {
	case DSV32_F32: return ((const float *)p)[i];
	case DSV32_BF16: return dsv32_bf16_to_f32(((const uint16_t *)p)[i]);
	case DSV32_F16: return dsv32_f16_to_f32(((const uint16_t *)p)[i]);
	case DSV32_F8_E4M3: return dsv32_e4m3_to_f32(((const uint8_t *)p)[i]);
	case DSV32_F8_E5M2: return dsv32_e5m2_to_f32(((const uint8_t *)p)[i]);
	case DSV32_F8_E8M0: return dsv32_e8m0_to_f32(((const uint8_t *)p)[i]);
	default: return (float)dsv32_load_f64(p, t, i);
	}
}

/* The pairs the weight loaders convert in bulk (the F32 head and norms of ref, bf16 staging),
 * one loop each instead of a dispatch per element: the same function per element, so the same
 * values (the load of a real-width checkpoint spent a quarter of its time in the generic loop). */
static bool convert_bulk(void *dst, dsv32_dtype dst_t, const void *src, dsv32_dtype src_t,
			 size_t n)
{
	if (src_t == DSV32_BF16 && dst_t == DSV32_F32) {
		const uint16_t *s = src;
		float *d = dst;
		for (size_t i = 0; i < n; i++)
			d[i] = dsv32_bf16_to_f32(s[i]);
		return true;
	}
	if (src_t == DSV32_F32 && dst_t == DSV32_BF16) {
		const float *s = src;
		uint16_t *d = dst;
		for (size_t i = 0; i < n; i++)
			d[i] = dsv32_f32_to_bf16(s[i]);
		return true;
	}
	if (src_t == DSV32_F8_E4M3 && dst_t == DSV32_F32) {
		const uint8_t *s = src;
		float *d = dst;
		for (size_t i = 0; i < n; i++)
			d[i] = dsv32_e4m3_to_f32(s[i]);
		return true;
	}
	return false;
}

bool dsv32_convert(void *dst, dsv32_dtype dst_t, const void *src, dsv32_dtype src_t, size_t n)
{
	if (!dsv32_dtype_is_float(dst_t) || !dsv32_dtype_is_float(src_t))
		return false;
	if (dst_t == src_t) {
		memmove(dst, src, n * dsv32_dtype_size(src_t));
		return true;
	}
	if (dst_t == DSV32_F64) {
		for (size_t i = 0; i < n; i++)
			((double *)dst)[i] = dsv32_load_f64(src, src_t, i);
		return true;
	}
	if (src_t == DSV32_F64 && dst_t != DSV32_F32)
		return false; /* would double-round through f32; not needed by any caller */
	if (convert_bulk(dst, dst_t, src, src_t, n))
		return true;
	for (size_t i = 0; i < n; i++)
		store_f32(dst, dst_t, i, load_f32(src, src_t, i));
	return true;
}
