/* test_safetensors.c: safetensors reader validation (every hostile case of
 * docs/spec/checkpoints.md §1.5 on its own), writer round trips and atomicity, sharded checkpoints.
 * Extra modes for tests/py_test_safetensors_interop.py:
 *   test_safetensors --interop-read DIR    check files written by Python's safetensors
 *   test_safetensors --interop-write DIR   write files for Python to check
 * and for tests/py_test_e8m0_ml_dtypes.py:
 *   test_safetensors --e8m0 DIR            F32 -> F8_E8M0 and back, for ml_dtypes to judge */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "tests/support/test_common.h"
#include "core/safetensors.h"

/* ---- helpers ---- */

/* A file image: 8-byte little-endian N, the header text (N = strlen), then data_len bytes. */
static uint8_t *make_image(const char *header, size_t data_len, size_t *len)
{
	size_t n = strlen(header);
	*len = 8 + n + data_len;
	uint8_t *buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
	memcpy(buf + 8, header, n);
	for (size_t i = 0; i < data_len; i++)
		buf[8 + n + i] = (uint8_t)(i * 7 + 3);
	return buf;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* open_mem must fail with code and a message containing both needles (needle2 may be NULL). */
static void expect_reject_buf(const uint8_t *buf, size_t len, dsv32_status code,
			      const char *needle, const char *needle2)
{
	dsv32_st_file *f = (dsv32_st_file *)(uintptr_t)1;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_st_open_mem(&f, buf, len, "hostile.safetensors", &err);
	if (rc != code || !strstr(err.what, needle) || (needle2 && !strstr(err.what, needle2)))
		print_error("got rc %d (%s), message: %s\n", rc, dsv32_status_str(rc), err.what);
	assert_int_equal(rc, code);
	assert_null(f);
	assert_non_null(strstr(err.what, needle));
	if (needle2)
		assert_non_null(strstr(err.what, needle2));
	assert_non_null(strstr(err.what, "hostile.safetensors"));
}

static void expect_reject(const char *header, size_t data_len, const char *needle,
			  const char *needle2)
{
	size_t len;
	uint8_t *buf = make_image(header, data_len, &len);
	expect_reject_buf(buf, len, DSV32_E_FORMAT, needle, needle2);
	free(buf);
}

static dsv32_st_file *open_ok(const uint8_t *buf, size_t len)
{
	dsv32_st_file *f = NULL;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_st_open_mem(&f, buf, len, "ok.safetensors", &err);
	if (rc != DSV32_OK)
		print_error("unexpected failure: %s\n", err.what);
	assert_int_equal(rc, DSV32_OK);
	assert_non_null(f);
	return f;
}

static void join(char *out, const char *dir, const char *name)
{
	assert_true(dsv32_path_join(out, 4096, dir, name));
}

/* Deterministic bytes of tensor number t (shared with the Python interop test). */
static uint8_t pattern_byte(size_t t, size_t k, dsv32_dtype dt)
{
	uint8_t b = (uint8_t)((k * 131u + t * 17u + 1u) & 0xffu);
	return dt == DSV32_BOOL ? (uint8_t)(b & 1u) : b;
}

typedef struct {
	const char *name;
	dsv32_dtype dtype;
	int ndim;
	int64_t shape[DSV32_MAX_DIMS];
} spec_t;

/* The tensor set of the round trip and of the interop test (same list in the .py file). */
static const spec_t SET[] = {
	{"a.f32", DSV32_F32, 2, {3, 5}},
	{"b.bf16", DSV32_BF16, 2, {4, 3}},
	{"c.f8_e4m3", DSV32_F8_E4M3, 2, {8, 16}},
	{"d.f8_e5m2", DSV32_F8_E5M2, 1, {7}},
	{"e.i64.scalar", DSV32_I64, 0, {0}},
	{"f.u8.empty", DSV32_U8, 2, {0, 4}},
	{"g.f16", DSV32_F16, 1, {9}},
	{"h.bool", DSV32_BOOL, 1, {3}},
	{"i.i32", DSV32_I32, 3, {2, 2, 2}},
	{"j.f64", DSV32_F64, 6, {1, 2, 1, 1, 1, 1}},
	{"k.i8", DSV32_I8, 1, {5}},
	{"l.u16", DSV32_U16, 1, {3}},
	{"m.i16", DSV32_I16, 1, {2}},
	{"n.u32", DSV32_U32, 1, {2}},
	{"o.u64", DSV32_U64, 1, {1}},
	{"p.f32.zero", DSV32_F32, 3, {2, 0, 3}},
	{"q.f8_e8m0", DSV32_F8_E8M0, 2, {2, 3}},
};
#define NSET (sizeof SET / sizeof SET[0])

static size_t spec_bytes(const spec_t *s)
{
	return (size_t)dsv32_shape_numel(s->ndim, s->shape) * dsv32_dtype_size(s->dtype);
}

static size_t set_index(const char *name)
{
	for (size_t i = 0; i < NSET; i++)
		if (strcmp(SET[i].name, name) == 0)
			return i;
	return NSET;
}

/* Write SET (in the order given by idx) with the writer, each tensor in up to 3 chunks. */
static dsv32_status write_set(const char *path, const size_t *idx, size_t n,
			      const char *const *meta, size_t nmeta, dsv32_error *err)
{
	dsv32_st_writer *w;
	DSV32_TRY(dsv32_st_writer_open(&w, path, err));
	dsv32_status rc = DSV32_OK;
	for (size_t i = 0; i < nmeta && rc == DSV32_OK; i++)
		rc = dsv32_st_writer_meta(w, meta[2 * i], meta[2 * i + 1], err);
	for (size_t i = 0; i < n && rc == DSV32_OK; i++) {
		const spec_t *s = &SET[idx[i]];
		rc = dsv32_st_writer_declare(w, s->name, s->dtype, s->ndim, s->shape, err);
	}
	for (size_t i = 0; i < n && rc == DSV32_OK; i++) {
		const spec_t *s = &SET[idx[i]];
		size_t nb = spec_bytes(s);
		uint8_t *buf = malloc(nb + 1);
		if (!buf) {
			rc = DSV32_E_NOMEM;
			break;
		}
		for (size_t k = 0; k < nb; k++)
			buf[k] = pattern_byte(idx[i], k, s->dtype);
		size_t c1 = nb / 3, c2 = nb / 2;
		rc = dsv32_st_writer_write(w, buf, c1, err);
		if (rc == DSV32_OK)
			rc = dsv32_st_writer_write(w, buf + c1, c2 - c1, err);
		if (rc == DSV32_OK)
			rc = dsv32_st_writer_write(w, buf + c2, nb - c2, err);
		free(buf);
	}
	if (rc != DSV32_OK) {
		dsv32_st_writer_abort(w);
		return rc;
	}
	return dsv32_st_writer_commit(w, err);
}

/* Check that f holds the tensors of SET named in it, with the pattern bytes. Returns the
 * number of mismatches (and prints them). */
static int check_set(const dsv32_st_file *f, size_t expect_count)
{
	int bad = 0;
	if (dsv32_st_count(f) != expect_count) {
		fprintf(stderr, "%s: %zu tensors, expected %zu\n", dsv32_st_path(f),
			dsv32_st_count(f), expect_count);
		bad++;
	}
	for (size_t i = 0; i < NSET; i++) {
		const spec_t *s = &SET[i];
		const dsv32_st_entry *e = dsv32_st_find(f, s->name);
		if (!e) {
			fprintf(stderr, "%s: missing %s\n", dsv32_st_path(f), s->name);
			bad++;
			continue;
		}
		if (e->dtype != s->dtype || e->ndim != s->ndim ||
		    memcmp(e->shape, s->shape, sizeof(int64_t) * (size_t)s->ndim) != 0) {
			fprintf(stderr, "%s: %s has dtype %s ndim %d\n", dsv32_st_path(f), s->name,
				dsv32_dtype_name(e->dtype), e->ndim);
			bad++;
			continue;
		}
		const uint8_t *p = dsv32_st_data(f, e);
		size_t nb = spec_bytes(s);
		if (e->end - e->begin != nb) {
			bad++;
			continue;
		}
		for (size_t k = 0; k < nb; k++)
			if (p[k] != pattern_byte(i, k, s->dtype)) {
				fprintf(stderr, "%s: %s byte %zu is %u, expected %u\n",
					dsv32_st_path(f), s->name, k, p[k],
					pattern_byte(i, k, s->dtype));
				bad++;
				break;
			}
	}
	return bad;
}

/* ---- hostile inputs: one rule each ---- */

static void test_empty_file_is_header_too_small(void **state)
{
	(void)state;
	expect_reject_buf(NULL, 0, DSV32_E_FORMAT, "HeaderTooSmall", NULL);
	uint8_t one = 0;
	expect_reject_buf(&one, 0, DSV32_E_FORMAT, "HeaderTooSmall", NULL);
}

static void test_file_shorter_than_8_bytes_is_rejected(void **state)
{
	(void)state;
	const uint8_t buf[5] = {2, 0, 0, 0, 0};
	expect_reject_buf(buf, sizeof buf, DSV32_E_FORMAT, "HeaderTooSmall", "5 bytes");
}

static void test_header_length_below_8_is_rejected(void **state)
{
	(void)state;
	expect_reject("{}", 0, "HeaderTooSmall", "header length 2");
}

static void test_header_length_past_file_end_is_rejected(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = make_image("{}      ", 0, &len);
	put_le64(buf, 9); /* one byte more than the file holds */
	expect_reject_buf(buf, len, DSV32_E_FORMAT, "InvalidHeaderLength", "9");
	put_le64(buf, UINT64_MAX - 3); /* would overflow 8 + N */
	expect_reject_buf(buf, len, DSV32_E_FORMAT, "HeaderTooLarge", NULL);
	free(buf);
}

static void test_header_length_over_cap_is_rejected(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = make_image("{}      ", 0, &len);
	put_le64(buf, (uint64_t)DSV32_ST_MAX_HEADER + 1);
	expect_reject_buf(buf, len, DSV32_E_FORMAT, "HeaderTooLarge", "100000001");
	free(buf);
}

static void test_truncated_data_is_incomplete_buffer(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10,
		      "MetadataIncompleteBuffer", "\"w\" runs past the end");
}

static void test_invalid_json_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F32\",}   ", 0, "InvalidHeaderDeserialization",
		      "syntax");
	expect_reject("{\"w\" 1}  ", 0, "InvalidHeaderDeserialization", "syntax");
}

static void test_json_not_an_object_is_rejected(void **state)
{
	(void)state;
	expect_reject("[1, 2]  ", 0, "InvalidHeaderStart", NULL);
	expect_reject("  {}    ", 0, "InvalidHeaderStart", NULL);
	expect_reject("{\"w\":5} ", 0, "InvalidHeaderDeserialization", "\"w\": entry is not an object");
}

static void test_bytes_after_the_object_are_rejected(void **state)
{
	(void)state;
	expect_reject("{}  x   ", 0, "InvalidHeaderDeserialization", "only spaces");
	expect_reject("{}\n     ", 0, "InvalidHeaderDeserialization", "only spaces");
	size_t len;
	uint8_t *buf = make_image("{}      ", 0, &len);
	buf[8 + 3] = '\0';
	expect_reject_buf(buf, len, DSV32_E_FORMAT, "InvalidHeaderDeserialization", "0x00");
	free(buf);
}

static void test_invalid_utf8_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\xff\":{}}   ", 0, "InvalidHeader:", "UTF-8");
	expect_reject("{\"\xed\xa0\x80\":1}", 0, "InvalidHeader:", "UTF-8"); /* surrogate */
}

static void test_missing_data_offsets_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "InvalidHeaderDeserialization",
		      "tensor \"w\": missing field \"data_offsets\"");
	expect_reject("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing field \"dtype\"",
		      NULL);
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
		      "missing field \"shape\"", NULL);
}

static void test_wrong_json_types_are_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		      "\"w\": dtype is not a string", NULL);
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
		      "\"w\": shape is not an array", NULL);
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
		      "\"w\": shape[0] is not a non-negative integer", NULL);
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
		      "\"w\": data_offsets is not [BEGIN, END]", NULL);
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
		      "\"w\": data_offsets is not [BEGIN, END]", NULL);
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", 4,
		      "\"w\": data_offsets is not [BEGIN, END]", NULL);
}

static void test_unknown_dtype_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F8_E3M4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		      "InvalidHeaderDeserialization", "tensor \"w\": unknown dtype \"F8_E3M4\"");
	expect_reject("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		      "unknown dtype \"f32\"", NULL);
}

/* Every dtype the Python library knows opens; F8_E8M0 reads, the listed-only ones (F4, F6_*,
 * FNUZ, C64) are listed with their sizes, and a view of one fails naming tensor and dtype. */
static void test_listed_only_dtypes_open_and_refuse_views(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		dsv32_dtype t;
		uint64_t bytes;
	} want[] = {
		{"a.e8m0", DSV32_F8_E8M0, 3},   {"b.f4", DSV32_F4, 3},
		{"c.f6a", DSV32_F6_E2M3, 3},    {"d.f6b", DSV32_F6_E3M2, 6},
		{"e.e4fnuz", DSV32_F8_E4M3FNUZ, 1}, {"f.e5fnuz", DSV32_F8_E5M2FNUZ, 1},
		{"g.c64", DSV32_C64, 8},
	};
	const char *h =
		"{\"a.e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[3],\"data_offsets\":[0,3]},"
		"\"b.f4\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[3,6]},"
		"\"c.f6a\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[6,9]},"
		"\"d.f6b\":{\"dtype\":\"F6_E3M2\",\"shape\":[2,4],\"data_offsets\":[9,15]},"
		"\"e.e4fnuz\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[1],\"data_offsets\":[15,16]},"
		"\"f.e5fnuz\":{\"dtype\":\"F8_E5M2FNUZ\",\"shape\":[1],\"data_offsets\":[16,17]},"
		"\"g.c64\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[17,25]}}";
	size_t len;
	uint8_t *buf = make_image(h, 25, &len);
	dsv32_st_file *f = open_ok(buf, len);
	assert_int_equal(dsv32_st_count(f), 7);
	for (size_t i = 0; i < 7; i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		assert_string_equal(e->name, want[i].name);
		assert_int_equal(e->dtype, want[i].t);
		assert_int_equal(e->end - e->begin, want[i].bytes);
	}
	dsv32_tensor t;
	dsv32_error err = {0};
	assert_int_equal(dsv32_st_tensor(f, "a.e8m0", &t, &err), DSV32_OK);
	assert_int_equal(t.dtype, DSV32_F8_E8M0);
	float v[3];
	assert_true(dsv32_convert(v, DSV32_F32, t.data, t.dtype, 3)); /* bytes 3, 10, 17 */
	assert_true(v[0] == ldexpf(1.0f, 3 - 127) && v[1] == ldexpf(1.0f, 10 - 127));
	for (size_t i = 1; i < 7; i++) {
		assert_int_equal(dsv32_st_tensor(f, want[i].name, &t, &err), DSV32_E_DTYPE);
		assert_non_null(strstr(err.what, want[i].name));
		assert_non_null(strstr(err.what, dsv32_dtype_name(want[i].t)));
		assert_non_null(strstr(err.what, "not supported"));
	}
	dsv32_st_close(f);
	free(buf);
}

static void test_sub_byte_tensor_off_a_byte_boundary_is_misaligned(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
		      "MisalignedSlice: tensor \"w\"", "12 bits");
	expect_reject("{\"w\":{\"dtype\":\"F6_E2M3\",\"shape\":[1,3],\"data_offsets\":[0,3]}}",
		      3, "MisalignedSlice", "F6_E2M3");
	expect_reject("{\"w\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
		      "TensorInvalidInfo", "needs 2 bytes");
}

static void test_shape_size_mismatch_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8,
		      "TensorInvalidInfo", "\"w\": shape [2, 3] of BF16 needs 12 bytes");
	expect_reject("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}", 0,
		      "TensorInvalidInfo", "needs 4 bytes");
}

static void test_shape_product_overflow_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
		      "\"data_offsets\":[0,4]}}", 4, "ValidationOverflow", "\"w\"");
	/* fits in u64 as elements, overflows with the itemsize */
	expect_reject("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,536870912],"
		      "\"data_offsets\":[0,8]}}", 8, "ValidationOverflow", "\"w\"");
}

static void test_zero_dim_after_huge_dims_is_empty_not_overflow(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = make_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,"
				  "1099511627776,0],\"data_offsets\":[0,0]}}", 0, &len);
	dsv32_st_file *f = open_ok(buf, len);
	assert_int_equal(dsv32_st_count(f), 1);
	assert_int_equal(dsv32_st_find(f, "w")->shape[2], 0);
	dsv32_st_close(f);
	free(buf);
}

static void test_non_integer_shapes_and_offsets_are_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
		      "InvalidHeaderDeserialization", "tensor \"w\": number 2.0 is not");
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8,
		      "InvalidHeaderDeserialization", "number -1 is not");
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}", 8,
		      "InvalidHeaderDeserialization", "number 8e0 is not");
	expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8,
		      "InvalidHeaderDeserialization", "number 02 is not");
	expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,"
		      "18446744073709551617]}}", 1, "\"w\": data_offsets is not", NULL);
}

static void test_more_than_6_dims_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
		      1, "TensorInvalidInfo", "\"w\": 7 dims");
}

static void test_offsets_out_of_bounds_are_rejected(void **state)
{
	(void)state;
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 6,
		      "MetadataIncompleteBuffer", "\"b\" runs past the end");
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":"
		      "[9007199254740000,9007199254740004]}}", 4, "InvalidOffset", "\"a\"");
}

static void test_overlapping_offsets_are_rejected(void **state)
{
	(void)state;
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6,
		      "InvalidOffset", "tensor \"b\": begins at 2, expected 4 (overlaps");
	/* the same range twice */
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
		      "InvalidOffset", "overlaps");
}

static void test_gap_between_tensors_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}", 10,
		      "InvalidOffset", "tensor \"b\": begins at 6, expected 4 (gap");
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 5,
		      "MetadataIncompleteBuffer", "cover 4 bytes, the data section has 5");
}

static void test_begin_after_end_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
		      "InvalidOffset", "tensor \"a\": data_offsets [4, 0] begin > end");
}

static void test_bad_metadata_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", 0,
		      "InvalidHeaderDeserialization", "__metadata__ value of \"n\" is not a string");
	expect_reject("{\"__metadata__\":{\"x\":{\"y\":\"z\"}}}", 0,
		      "__metadata__ value of \"x\" is not a string", NULL);
	expect_reject("{\"__metadata__\":[\"a\"]}", 0, "__metadata__ is not an object", NULL);
	expect_reject("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0,
		      "duplicate __metadata__ key \"k\"", NULL);
	expect_reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0,
		      "duplicate key \"__metadata__\"", NULL);
}

static void test_duplicate_keys_are_rejected(void **state)
{
	(void)state;
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		      "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8,
		      "InvalidHeaderDeserialization", "duplicate tensor name \"a\"");
	expect_reject("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"I8\",\"shape\":[4],"
		      "\"data_offsets\":[0,4]}}", 4, "\"a\": duplicate field \"dtype\"", NULL);
	/* a NUL escape would make two distinct JSON names equal as C strings */
	expect_reject("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
		      "InvalidHeaderDeserialization", "\\u0000");
}

static void test_control_character_in_name_is_rejected(void **state)
{
	(void)state;
	expect_reject("{\"a\nb\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
		      "InvalidHeaderDeserialization", "control character 0x0a");
}

/* ---- well-formed inputs ---- */

static void test_empty_header_gives_zero_tensors(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = make_image("{}      ", 0, &len);
	dsv32_st_file *f = open_ok(buf, len);
	assert_int_equal(dsv32_st_count(f), 0);
	assert_null(dsv32_st_find(f, "x"));
	assert_null(dsv32_st_entry_at(f, 0));
	assert_int_equal(dsv32_st_metadata_count(f), 0);
	assert_null(dsv32_st_metadata(f, "format"));
	dsv32_tensor t;
	dsv32_error err = {0};
	assert_int_equal(dsv32_st_tensor(f, "x", &t, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "\"x\" not found"));
	dsv32_st_close(f);
	free(buf);
}

static void test_unpadded_header_and_unaligned_data_are_accepted(void **state)
{
	(void)state;
	/* N is odd, so the F32 data starts at an odd file offset; keys are not in offset order;
	 * an unknown field is ignored; whitespace inside the JSON. */
	const char *h = "{ \"b\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5], \"x\":\"y\"},"
			"\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
	size_t len;
	assert_int_equal(strlen(h) % 2, 1);
	uint8_t *buf = make_image(h, 5, &len);
	dsv32_st_file *f = open_ok(buf, len);
	assert_int_equal(dsv32_st_count(f), 2);
	assert_string_equal(dsv32_st_entry_at(f, 0)->name, "a"); /* offset order */
	assert_string_equal(dsv32_st_entry_at(f, 1)->name, "b");
	const dsv32_st_entry *b = dsv32_st_find(f, "b");
	assert_non_null(b);
	assert_int_equal(b->begin, 1);
	assert_ptr_equal(dsv32_st_data(f, b), buf + 8 + strlen(h) + 1);
	dsv32_st_close(f);
	free(buf);
}

static void test_metadata_is_readable_by_key_and_index(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = make_image("{\"__metadata__\":{\"zeta\":\"1\",\"format\":\"pt\",\"e\":\"\\u00e9\\n\"}}",
				  0, &len);
	dsv32_st_file *f = open_ok(buf, len);
	assert_int_equal(dsv32_st_metadata_count(f), 3);
	assert_string_equal(dsv32_st_metadata(f, "format"), "pt");
	assert_string_equal(dsv32_st_metadata(f, "e"), "\xc3\xa9\n");
	assert_null(dsv32_st_metadata(f, "missing"));
	const char *k, *v;
	dsv32_st_metadata_at(f, 2, &k, &v); /* sorted by key */
	assert_string_equal(k, "zeta");
	assert_string_equal(v, "1");
	dsv32_st_close(f);
	free(buf);
}

static void test_writer_header_matches_python_bytes(void **state)
{
	/* Known answer: the bytes Python's safetensors writes for
	 * save_file({"a": np.array([1, 2], np.float32)}, metadata={"format": "pt"}). */
	char path[4096];
	join(path, *state, "ka.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_meta(w, "format", "pt", &err), DSV32_OK);
	int64_t shape[1] = {2};
	assert_int_equal(dsv32_st_writer_declare(w, "a", DSV32_F32, 1, shape, &err), DSV32_OK);
	const float v[2] = {1.0f, 2.0f};
	assert_int_equal(dsv32_st_writer_write(w, v, sizeof v, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	const char want_hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\","
				"\"shape\":[2],\"data_offsets\":[0,8]}}   "; /* N = 88 */
	char *got;
	size_t len;
	assert_int_equal(dsv32_read_file(path, 1 << 20, &got, &len, &err), DSV32_OK);
	size_t n = sizeof want_hdr - 1;
	assert_int_equal(n % 8, 0);
	assert_int_equal(len, 8 + n + 8);
	assert_int_equal((unsigned char)got[0], n);
	for (int i = 1; i < 8; i++)
		assert_int_equal(got[i], 0);
	assert_memory_equal(got + 8, want_hdr, n);
	assert_memory_equal(got + 8 + n, v, 8);
	free(got);
}

static void test_writer_round_trip_keeps_every_dtype_and_shape(void **state)
{
	char path[4096];
	join(path, *state, "rt.safetensors");
	size_t idx[NSET];
	for (size_t i = 0; i < NSET; i++)
		idx[i] = i;
	const char *meta[] = {"format", "pt", "quote\"key", "line\nvalue\\"};
	dsv32_error err = {0};
	assert_int_equal(write_set(path, idx, NSET, meta, 2, &err), DSV32_OK);
	assert_int_equal(tc_count_dir_entries(*state), 1); /* no temporary left */

	dsv32_st_file *f;
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_OK);
	assert_int_equal(check_set(f, NSET), 0);
	for (size_t i = 0; i < NSET; i++) /* contiguous, in declaration order */
		assert_string_equal(dsv32_st_entry_at(f, i)->name, SET[i].name);
	assert_string_equal(dsv32_st_metadata(f, "format"), "pt");
	assert_string_equal(dsv32_st_metadata(f, "quote\"key"), "line\nvalue\\");
	dsv32_tensor t;
	assert_int_equal(dsv32_st_tensor(f, "e.i64.scalar", &t, &err), DSV32_OK);
	assert_int_equal(t.ndim, 0);
	assert_int_equal(t.dtype, DSV32_I64);
	assert_false(t.owned);
	assert_int_equal(dsv32_tensor_numel(&t), 1);
	assert_int_equal(dsv32_tensor_nbytes(&t), 8);
	assert_int_equal(((const uint8_t *)t.data)[0], pattern_byte(4, 0, DSV32_I64));
	assert_int_equal(dsv32_st_tensor(f, "p.f32.zero", &t, &err), DSV32_OK);
	assert_int_equal(dsv32_tensor_nbytes(&t), 0);
	assert_int_equal(t.shape[1], 0);
	assert_string_equal(dsv32_st_path(f), path);
	dsv32_st_close(f);

	/* the header is padded with spaces to a multiple of 8 */
	char *raw;
	size_t len;
	assert_int_equal(dsv32_read_file(path, 1 << 20, &raw, &len, &err), DSV32_OK);
	uint64_t N = 0;
	for (int i = 7; i >= 0; i--)
		N = (N << 8) | (uint8_t)raw[i];
	assert_int_equal(N % 8, 0);
	assert_int_equal(raw[8], '{');
	free(raw);

	/* a single file also opens as a checkpoint */
	dsv32_ckpt *c;
	assert_int_equal(dsv32_ckpt_open(&c, path, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_count(c), NSET);
	assert_int_equal(dsv32_ckpt_file_count(c), 1);
	const dsv32_st_file *cf;
	assert_non_null(dsv32_ckpt_find(c, "b.bf16", &cf));
	assert_ptr_equal(cf, dsv32_ckpt_file_at(c, 0));
	dsv32_ckpt_close(c);
}

static void test_writer_commit_leaves_only_the_final_file(void **state)
{
	char path[4096];
	join(path, *state, "out.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	assert_int_equal(tc_count_dir_entries(*state), 1); /* the temporary */
	assert_false(dsv32_path_exists(path));
	int64_t shape[2] = {2, 2};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_BF16, 2, shape, &err), DSV32_OK);
	const uint16_t v[4] = {1, 2, 3, 4};
	assert_int_equal(dsv32_st_writer_write(w, v, 8, &err), DSV32_OK);
	assert_false(dsv32_path_exists(path));
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	assert_true(dsv32_path_exists(path));
	assert_int_equal(tc_count_dir_entries(*state), 1);
}

/* The writer's O_DIRECT stage against plain writes (DSV32_NO_DIRECT_IO=1): writes and skips of
 * every alignment (inside a block, across blocks, over whole stages, a trailing hole) give the
 * same file, whose bytes are the written pattern and zeros in the skips, and the long skip stays
 * a hole. The pattern of op i: byte at data offset o is (o·131 + i) & 0xff | 1 (never 0). */
static const struct {
	bool skip;
	uint64_t n;
} MIXED_OPS[] = {{false, 5},	      {true, 3},	     {false, 4093},
		 {true, 9000},	      {false, (10u << 20) + 7}, {true, (40u << 20) + 123},
		 {false, 1},	      {true, 4096},	     {false, 8192},
		 {true, (20u << 20) + 5}};
#define MIXED_N (sizeof MIXED_OPS / sizeof MIXED_OPS[0])

static uint64_t mixed_total(void)
{
	uint64_t t = 0;
	for (size_t i = 0; i < MIXED_N; i++)
		t += MIXED_OPS[i].n;
	return t;
}

static void write_mixed(const char *path, bool direct)
{
	setenv("DSV32_NO_DIRECT_IO", direct ? "0" : "1", 1);
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {(int64_t)mixed_total()};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	uint64_t o = 0;
	for (size_t i = 0; i < MIXED_N; i++) {
		uint64_t n = MIXED_OPS[i].n;
		if (MIXED_OPS[i].skip) {
			assert_int_equal(dsv32_st_writer_skip(w, n, &err), DSV32_OK);
		} else {
			unsigned char *b = malloc(n);
			assert_non_null(b);
			for (uint64_t j = 0; j < n; j++)
				b[j] = (unsigned char)(((o + j) * 131 + i) | 1);
			assert_int_equal(dsv32_st_writer_write(w, b, n, &err), DSV32_OK);
			free(b);
		}
		o += n;
	}
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	unsetenv("DSV32_NO_DIRECT_IO");
}

/* The file's data section against the ops; its allocated bytes. */
static uint64_t check_mixed(const char *path)
{
	dsv32_error err = {0};
	dsv32_st_file *f;
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_OK);
	const dsv32_st_entry *e = dsv32_st_find(f, "x");
	assert_non_null(e);
	assert_int_equal(e->end - e->begin, mixed_total());
	const unsigned char *p = dsv32_st_data(f, e);
	uint64_t o = 0, bad = 0;
	for (size_t i = 0; i < MIXED_N; i++) {
		for (uint64_t j = 0; j < MIXED_OPS[i].n; j++, o++) {
			unsigned char want =
				MIXED_OPS[i].skip ? 0 : (unsigned char)((o * 131 + i) | 1);
			bad += p[o] != want;
		}
	}
	assert_int_equal(bad, 0);
	dsv32_st_close(f);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_blocks * 512;
}

static unsigned char *read_whole(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	unsigned char *b = len >= 0 ? malloc((size_t)len + 1) : NULL;
	if (b && fread(b, 1, (size_t)len, fp) != (size_t)len) {
		free(b);
		b = NULL;
	}
	fclose(fp);
	*n = (size_t)len;
	return b;
}

static void test_writer_direct_stage_equals_plain_writes(void **state)
{
	char pd[4096], pp[4096];
	join(pd, *state, "direct.safetensors");
	join(pp, *state, "plain.safetensors");
	write_mixed(pd, true);
	write_mixed(pp, false);
	uint64_t ad = check_mixed(pd), ap = check_mixed(pp);
	size_t n, m;
	unsigned char *a = read_whole(pd, &n), *b = read_whole(pp, &m);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(n, m);
	assert_memory_equal(a, b, n);
	free(a);
	free(b);
	/* where the file system makes holes, both leave the 40 MiB skip unallocated (each skip
	 * costs the stage at most two partly written blocks) */
	if (ap < (40u << 20))
		assert_true(ad <= ap + 2 * 4096 * 5 && ad < (40u << 20));
}

static void test_writer_with_no_tensors_writes_an_empty_file(void **state)
{
	char path[4096];
	join(path, *state, "empty.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	dsv32_st_file *f;
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_OK);
	assert_int_equal(dsv32_st_count(f), 0);
	dsv32_st_close(f);
}

static void test_writer_abort_leaves_nothing(void **state)
{
	char path[4096];
	join(path, *state, "ab.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {4};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, "ab", 2, &err), DSV32_OK);
	dsv32_st_writer_abort(w);
	assert_int_equal(tc_count_dir_entries(*state), 0);
}

static void test_writer_too_many_bytes_fails_and_leaves_nothing(void **state)
{
	char path[4096];
	join(path, *state, "more.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {4};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, "abc", 3, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, "de", 2, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "past the 4 declared bytes"));
	assert_int_equal(tc_count_dir_entries(*state), 0); /* removed at the failure */
	assert_int_equal(dsv32_st_writer_write(w, "d", 1, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_E_USAGE);
	assert_int_equal(tc_count_dir_entries(*state), 0);
}

static void test_writer_too_few_bytes_fails_commit_and_leaves_nothing(void **state)
{
	char path[4096];
	join(path, *state, "fewer.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {4};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "y", DSV32_F32, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, "abcd", 4, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "4 data bytes written, 20 declared"));
	assert_int_equal(tc_count_dir_entries(*state), 0);
}

static void test_writer_rejects_bad_declarations(void **state)
{
	char path[4096];
	join(path, *state, "bad.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[7] = {1, 1, 1, 1, 1, 1, 1};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 7, shape, &err), DSV32_E_SHAPE);
	int64_t neg[1] = {-1};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, neg, &err), DSV32_E_SHAPE);
	assert_int_equal(dsv32_st_writer_declare(w, "__metadata__", DSV32_U8, 1, shape, &err),
			 DSV32_E_USAGE);
	assert_int_equal(dsv32_st_writer_declare(w, "bad\xff", DSV32_U8, 1, shape, &err),
			 DSV32_E_USAGE);
	assert_int_equal(dsv32_st_writer_meta(w, "k", "v", &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_meta(w, "k", "w", &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, "a", 1, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "y", DSV32_U8, 1, shape, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "after data was written"));
	dsv32_st_writer_abort(w);
	assert_int_equal(tc_count_dir_entries(*state), 0);
}

/* Packed dtypes are written by bit size (F4 [2, 3] is 3 bytes) and read back; a shape that
 * does not fill whole bytes is refused at declare. */
static void test_writer_sizes_packed_dtypes_by_bits(void **state)
{
	char path[4096];
	join(path, *state, "packed.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t odd[1] = {3}, s23[2] = {2, 3}, s4[1] = {4};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_F4, 1, odd, &err), DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "not a whole number of bytes"));
	assert_int_equal(dsv32_st_writer_declare(w, "f4", DSV32_F4, 2, s23, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "f6", DSV32_F6_E3M2, 1, s4, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "e8", DSV32_F8_E8M0, 1, s4, &err), DSV32_OK);
	const uint8_t data[10] = {1, 2, 3, 4, 5, 6, 0, 127, 254, 255};
	assert_int_equal(dsv32_st_writer_write(w, data, sizeof data, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	dsv32_st_file *f;
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_OK);
	const dsv32_st_entry *e = dsv32_st_find(f, "f6");
	assert_true(e && e->dtype == DSV32_F6_E3M2 && e->begin == 3 && e->end == 6);
	dsv32_tensor t;
	assert_int_equal(dsv32_st_tensor(f, "e8", &t, &err), DSV32_OK);
	assert_memory_equal(t.data, data + 6, 4);
	dsv32_st_close(f);
}

static void test_writer_duplicate_name_fails_and_leaves_nothing(void **state)
{
	char path[4096];
	join(path, *state, "dup.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {1};
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "\"x\" declared twice"));
	assert_int_equal(tc_count_dir_entries(*state), 0);
}

/* ---- checkpoints ---- */

static void write_small(const char *dir, const char *file, const char *const *names, size_t n)
{
	char path[4096];
	join(path, dir, file);
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {2};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(dsv32_st_writer_declare(w, names[i], DSV32_F32, 1, shape, &err),
				 DSV32_OK);
	for (size_t i = 0; i < n; i++) {
		float v[2] = {(float)i, (float)strlen(names[i])};
		assert_int_equal(dsv32_st_writer_write(w, v, sizeof v, &err), DSV32_OK);
	}
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
}

static void write_index(const char *dir, const char *json)
{
	char path[4096];
	join(path, dir, "model.safetensors.index.json");
	assert_int_equal(dsv32_write_file_atomic(path, json, strlen(json), NULL), DSV32_OK);
}

static void test_ckpt_index_joins_two_files(void **state)
{
	const char *a[] = {"model.norm.weight", "lm_head.weight"};
	const char *b[] = {"model.embed.weight"};
	write_small(*state, "model-00001-of-00002.safetensors", a, 2);
	write_small(*state, "model-00002-of-00002.safetensors", b, 1);
	write_index(*state, "{\"metadata\":{\"total_size\":24},\"weight_map\":{"
			    "\"model.norm.weight\":\"model-00001-of-00002.safetensors\","
			    "\"model.embed.weight\":\"model-00002-of-00002.safetensors\","
			    "\"lm_head.weight\":\"model-00001-of-00002.safetensors\"}}");
	dsv32_ckpt *c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_count(c), 3);
	assert_int_equal(dsv32_ckpt_file_count(c), 2);
	const dsv32_st_file *f;
	const char *sorted[] = {"lm_head.weight", "model.embed.weight", "model.norm.weight"};
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(dsv32_ckpt_entry_at(c, i, &f)->name, sorted[i]);
	assert_null(dsv32_ckpt_entry_at(c, 3, &f));
	assert_non_null(dsv32_ckpt_find(c, "model.embed.weight", &f));
	assert_non_null(strstr(dsv32_st_path(f), "model-00002-of-00002.safetensors"));
	dsv32_tensor t;
	assert_int_equal(dsv32_ckpt_tensor(c, "lm_head.weight", &t, &err), DSV32_OK);
	assert_float_equal(((const float *)t.data)[0], 1.0f, 0.0f);
	assert_float_equal(((const float *)t.data)[1], 14.0f, 0.0f);
	assert_int_equal(dsv32_ckpt_tensor(c, "nope", &t, &err), DSV32_E_NOTFOUND);
	assert_null(dsv32_ckpt_find(c, "nope", &f));
	assert_null(f);
	dsv32_ckpt_close(c);
}

static void test_ckpt_index_naming_a_missing_file_fails(void **state)
{
	const char *a[] = {"x"};
	write_small(*state, "one.safetensors", a, 1);
	write_index(*state, "{\"weight_map\":{\"x\":\"one.safetensors\",\"y\":\"two.safetensors\"}}");
	dsv32_ckpt *c = (dsv32_ckpt *)(uintptr_t)1;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_NOTFOUND);
	assert_null(c);
	assert_non_null(strstr(err.what, "two.safetensors"));
	assert_non_null(strstr(err.what, "model.safetensors.index.json"));
}

static void test_ckpt_index_naming_the_wrong_file_fails(void **state)
{
	const char *a[] = {"x"};
	const char *b[] = {"y"};
	write_small(*state, "one.safetensors", a, 1);
	write_small(*state, "two.safetensors", b, 1);
	write_index(*state, "{\"weight_map\":{\"x\":\"two.safetensors\",\"y\":\"two.safetensors\"}}");
	dsv32_ckpt *c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "names \"x\" in two.safetensors, which does not hold it"));
	write_index(*state, "{\"weight_map\":{\"x\":\"one.safetensors\",\"y\":\"one.safetensors\"}}");
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "\"y\" in one.safetensors, which does not hold it"));
	write_index(*state, "{\"weight_map\":{\"x\":\"../one.safetensors\"}}");
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "not a file name inside"));
	write_index(*state, "{\"weight_map\":[]}");
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "no \"weight_map\" object"));
}

static void test_ckpt_index_missing_a_tensor_fails(void **state)
{
	const char *a[] = {"x", "z"};
	write_small(*state, "one.safetensors", a, 2);
	write_index(*state, "{\"weight_map\":{\"x\":\"one.safetensors\"}}");
	dsv32_ckpt *c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "tensor \"z\""));
	assert_non_null(strstr(err.what, "missing from weight_map"));
}

static void test_ckpt_tensor_in_two_files_fails_naming_both(void **state)
{
	const char *a[] = {"x", "shared"};
	const char *b[] = {"shared", "y"};
	write_small(*state, "b.safetensors", a, 2);
	write_small(*state, "a.safetensors", b, 2);
	dsv32_ckpt *c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "\"shared\" is in both"));
	assert_non_null(strstr(err.what, "a.safetensors"));
	assert_non_null(strstr(err.what, "b.safetensors"));
	/* also through an index, which maps the name to one of them */
	write_index(*state, "{\"weight_map\":{\"x\":\"b.safetensors\",\"shared\":\"b.safetensors\","
			    "\"y\":\"a.safetensors\"}}");
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "\"shared\" is in both"));
}

static void test_ckpt_directory_scan_sorts_files(void **state)
{
	const char *a[] = {"t1"};
	const char *b[] = {"t0"};
	write_small(*state, "z.safetensors", a, 1);
	write_small(*state, "m.safetensors", b, 1);
	char other[4096];
	join(other, *state, "notes.txt");
	assert_int_equal(dsv32_write_file_atomic(other, "x", 1, NULL), DSV32_OK);
	dsv32_ckpt *c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&c, *state, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_file_count(c), 2);
	assert_non_null(strstr(dsv32_st_path(dsv32_ckpt_file_at(c, 0)), "m.safetensors"));
	assert_non_null(strstr(dsv32_st_path(dsv32_ckpt_file_at(c, 1)), "z.safetensors"));
	assert_null(dsv32_ckpt_file_at(c, 2));
	assert_int_equal(dsv32_ckpt_count(c), 2);
	dsv32_ckpt_close(c);
	/* an empty directory and a missing path are "not found" */
	char sub[4096];
	join(sub, *state, "emptydir");
	assert_int_equal(dsv32_mkdirs(sub, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_open(&c, sub, &err), DSV32_E_NOTFOUND);
	join(sub, *state, "absent");
	assert_int_equal(dsv32_ckpt_open(&c, sub, &err), DSV32_E_NOTFOUND);
}

static void test_hostile_file_on_disk_is_rejected_by_open(void **state)
{
	char path[4096];
	join(path, *state, "short.safetensors");
	assert_int_equal(dsv32_write_file_atomic(path, "abc", 3, NULL), DSV32_OK);
	dsv32_st_file *f;
	dsv32_error err = {0};
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "HeaderTooSmall"));
	assert_non_null(strstr(err.what, path));
	join(path, *state, "zero.safetensors");
	assert_int_equal(dsv32_write_file_atomic(path, "", 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "HeaderTooSmall"));
	join(path, *state, "absent.safetensors");
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_E_NOTFOUND);
}

/* ---- scale: 100k tensors open quickly ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_open_100k_tensors_is_fast(void **state)
{
	enum { NT = 100000 };
	char path[4096];
	join(path, *state, "big.safetensors");
	dsv32_error err = {0};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	int64_t shape[1] = {1};
	char name[64];
	for (int i = 0; i < NT; i++) {
		/* names not in offset order once sorted: reverse-numbered */
		snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.weight", (NT - i) % 61,
			 NT - i);
		assert_int_equal(dsv32_st_writer_declare(w, name, DSV32_I32, 1, shape, &err),
				 DSV32_OK);
	}
	int32_t *data = malloc(sizeof(int32_t) * NT);
	assert_non_null(data);
	for (int i = 0; i < NT; i++)
		data[i] = NT - i;
	assert_int_equal(dsv32_st_writer_write(w, data, sizeof(int32_t) * NT, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	free(data);

	double t0 = now_s();
	dsv32_ckpt *c;
	assert_int_equal(dsv32_ckpt_open(&c, path, &err), DSV32_OK);
	double t_open = now_s() - t0;
	assert_int_equal(dsv32_ckpt_count(c), NT);
	t0 = now_s();
	for (int i = 0; i < NT; i++) {
		snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.weight", (NT - i) % 61,
			 NT - i);
		const dsv32_st_file *f;
		const dsv32_st_entry *e = dsv32_ckpt_find(c, name, &f);
		assert_non_null(e);
		int32_t v;
		memcpy(&v, dsv32_st_data(f, e), 4);
		assert_int_equal(v, NT - i);
	}
	double t_find = now_s() - t0;
	for (size_t i = 1; i < dsv32_ckpt_count(c); i++)
		assert_true(strcmp(dsv32_ckpt_entry_at(c, i - 1, NULL)->name,
				   dsv32_ckpt_entry_at(c, i, NULL)->name) < 0);
	dsv32_ckpt_close(c);
	print_message("100k tensors: open %.3f s, 100k finds %.3f s\n", t_open, t_find);
	/* generous bound (O(n^2) would take minutes); sanitizer builds are slower */
	assert_true(t_open < 10.0);
}

/* ---- interop modes (driven by tests/py_test_safetensors_interop.py) ---- */

/* listed.safetensors holds one tensor of every dtype the Python library knows beyond ours:
 * print "listed NAME DTYPE BYTES readable|refused" for the .py side to check. */
static int interop_list(const char *dir)
{
	char path[4096];
	dsv32_error err = {0};
	dsv32_st_file *f;
	snprintf(path, sizeof path, "%s/listed.safetensors", dir);
	if (dsv32_st_open(&f, path, &err) != DSV32_OK) {
		fprintf(stderr, "FAIL: %s\n", err.what);
		return 1;
	}
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		dsv32_tensor t;
		dsv32_status rc = dsv32_st_tensor(f, e->name, &t, &err);
		printf("listed %s %s %llu %s\n", e->name, dsv32_dtype_name(e->dtype),
		       (unsigned long long)(e->end - e->begin),
		       rc == DSV32_OK ? "readable" : rc == DSV32_E_DTYPE ? "refused" : "error");
	}
	dsv32_st_close(f);
	return 0;
}

/* A file holding "enc" then "dec" (commit frees the writer, abort only before it). */
static dsv32_status write_two(const char *path, const dsv32_tensor *enc, const dsv32_tensor *dec,
			      dsv32_error *err)
{
	dsv32_st_writer *w;
	DSV32_TRY(dsv32_st_writer_open(&w, path, err));
	dsv32_status rc = dsv32_st_writer_declare(w, "enc", enc->dtype, 1, enc->shape, err);
	if (rc == DSV32_OK)
		rc = dsv32_st_writer_declare(w, "dec", dec->dtype, 1, dec->shape, err);
	if (rc == DSV32_OK)
		rc = dsv32_st_writer_write(w, enc->data, dsv32_tensor_nbytes(enc), err);
	if (rc == DSV32_OK)
		rc = dsv32_st_writer_write(w, dec->data, dsv32_tensor_nbytes(dec), err);
	if (rc != DSV32_OK) {
		dsv32_st_writer_abort(w);
		return rc;
	}
	return dsv32_st_writer_commit(w, err);
}

/* --e8m0 DIR: e8m0_in.safetensors holds F32 "x"; write e8m0_c.safetensors with "enc" = x as
 * F8_E8M0 (dsv32_convert) and "dec" = the 256 codes decoded to F32, for the ml_dtypes check. */
static int e8m0_mode(const char *dir)
{
	char path[4096];
	dsv32_error err = {0};
	dsv32_st_file *f;
	dsv32_tensor x, enc = {0}, dec = {0};
	int64_t n256 = 256;
	snprintf(path, sizeof path, "%s/e8m0_in.safetensors", dir);
	if (dsv32_st_open(&f, path, &err) != DSV32_OK || dsv32_st_tensor(f, "x", &x, &err) ||
	    x.dtype != DSV32_F32 || x.ndim != 1 ||
	    dsv32_tensor_alloc(&enc, DSV32_F8_E8M0, 1, x.shape, &err) ||
	    dsv32_tensor_alloc(&dec, DSV32_F32, 1, &n256, &err)) {
		fprintf(stderr, "FAIL: %s\n", err.what[0] ? err.what : "x is not F32 [n]");
		return 1;
	}
	uint8_t codes[256];
	for (int i = 0; i < 256; i++)
		codes[i] = (uint8_t)i;
	bool ok = dsv32_convert(enc.data, DSV32_F8_E8M0, x.data, DSV32_F32, (size_t)x.shape[0]) &&
		  dsv32_convert(dec.data, DSV32_F32, codes, DSV32_F8_E8M0, 256);
	dsv32_st_close(f);
	snprintf(path, sizeof path, "%s/e8m0_c.safetensors", dir);
	dsv32_status rc = ok ? write_two(path, &enc, &dec, &err) : DSV32_E_INTERNAL;
	dsv32_tensor_free(&enc);
	dsv32_tensor_free(&dec);
	if (rc != DSV32_OK) {
		fprintf(stderr, "FAIL: e8m0: %s\n", err.what);
		return 1;
	}
	printf("e8m0 OK\n");
	return 0;
}

static int interop_read(const char *dir)
{
	char path[4096];
	dsv32_error err = {0};
	dsv32_st_file *f;
	int bad = 0;
	snprintf(path, sizeof path, "%s/py.safetensors", dir);
	if (dsv32_st_open(&f, path, &err) != DSV32_OK) {
		fprintf(stderr, "FAIL: %s\n", err.what);
		return 1;
	}
	bad += check_set(f, NSET);
	const char *fmt = dsv32_st_metadata(f, "format");
	if (!fmt || strcmp(fmt, "pt") != 0) {
		fprintf(stderr, "FAIL: py.safetensors metadata format = %s\n", fmt ? fmt : "(none)");
		bad++;
	}
	dsv32_st_close(f);

	/* values written by safetensors.numpy.save_file */
	snprintf(path, sizeof path, "%s/np.safetensors", dir);
	if (dsv32_st_open(&f, path, &err) != DSV32_OK) {
		fprintf(stderr, "FAIL: %s\n", err.what);
		return 1;
	}
	dsv32_tensor t;
	if (dsv32_st_tensor(f, "x", &t, &err) != DSV32_OK || t.dtype != DSV32_F32 ||
	    t.ndim != 2 || t.shape[0] != 3 || t.shape[1] != 4) {
		fprintf(stderr, "FAIL: np x\n");
		bad++;
	} else {
		for (size_t i = 0; i < 12; i++)
			if (dsv32_load_f64(t.data, t.dtype, i) != 0.5 * (double)i - 1.0) {
				fprintf(stderr, "FAIL: x[%zu]\n", i);
				bad++;
			}
	}
	if (dsv32_st_tensor(f, "y", &t, &err) != DSV32_OK || t.dtype != DSV32_I64 || t.ndim != 1) {
		fprintf(stderr, "FAIL: np y\n");
		bad++;
	} else {
		for (int64_t i = 0; i < t.shape[0]; i++)
			if (dsv32_load_f64(t.data, t.dtype, (size_t)i) != (double)(i - 3)) {
				fprintf(stderr, "FAIL: y[%lld]\n", (long long)i);
				bad++;
			}
	}
	const double zwant[3] = {0.5, -2.0, 65504.0};
	if (dsv32_st_tensor(f, "z", &t, &err) != DSV32_OK || t.dtype != DSV32_F16 || t.ndim != 1 ||
	    t.shape[0] != 3) {
		fprintf(stderr, "FAIL: np z\n");
		bad++;
	} else {
		for (size_t i = 0; i < 3; i++)
			if (dsv32_load_f64(t.data, t.dtype, i) != zwant[i]) {
				fprintf(stderr, "FAIL: z[%zu]\n", i);
				bad++;
			}
	}
	dsv32_st_close(f);

	/* a sharded checkpoint with an index written by the Python side */
	snprintf(path, sizeof path, "%s/sharded", dir);
	dsv32_ckpt *c;
	if (dsv32_ckpt_open(&c, path, &err) != DSV32_OK) {
		fprintf(stderr, "FAIL: %s\n", err.what);
		return 1;
	}
	if (dsv32_ckpt_count(c) != NSET || dsv32_ckpt_file_count(c) != 2) {
		fprintf(stderr, "FAIL: sharded: %zu tensors in %zu files\n", dsv32_ckpt_count(c),
			dsv32_ckpt_file_count(c));
		bad++;
	}
	for (size_t i = 0; i < NSET; i++) {
		const dsv32_st_file *sf;
		const dsv32_st_entry *e = dsv32_ckpt_find(c, SET[i].name, &sf);
		if (!e || e->dtype != SET[i].dtype) {
			fprintf(stderr, "FAIL: sharded: %s\n", SET[i].name);
			bad++;
			continue;
		}
		const uint8_t *p = dsv32_st_data(sf, e);
		for (size_t k = 0; k < spec_bytes(&SET[i]); k++)
			if (p[k] != pattern_byte(i, k, SET[i].dtype)) {
				fprintf(stderr, "FAIL: sharded: %s byte %zu\n", SET[i].name, k);
				bad++;
				break;
			}
	}
	dsv32_ckpt_close(c);
	bad += interop_list(dir);
	if (bad)
		return 1;
	printf("interop-read OK\n");
	return 0;
}

static int interop_write(const char *dir)
{
	char path[4096];
	dsv32_error err = {0};
	dsv32_st_file *f;
	size_t idx[NSET];
	/* c_same: the tensors of py.safetensors in its offset order, same metadata: the bytes
	 * must equal Python's */
	snprintf(path, sizeof path, "%s/py.safetensors", dir);
	if (dsv32_st_open(&f, path, &err) != DSV32_OK) {
		fprintf(stderr, "FAIL: %s\n", err.what);
		return 1;
	}
	size_t n = dsv32_st_count(f);
	for (size_t i = 0; i < n && i < NSET; i++)
		idx[i] = set_index(dsv32_st_entry_at(f, i)->name);
	const char *meta[2] = {"format", dsv32_st_metadata(f, "format")};
	snprintf(path, sizeof path, "%s/c_same.safetensors", dir);
	dsv32_status rc = n == NSET && meta[1] ? write_set(path, idx, n, meta, 1, &err)
					       : DSV32_E_FORMAT;
	dsv32_st_close(f);
	if (rc != DSV32_OK) {
		fprintf(stderr, "FAIL: c_same: %s\n", err.what);
		return 1;
	}
	/* c_own: declaration order of SET, two metadata keys */
	for (size_t i = 0; i < NSET; i++)
		idx[i] = i;
	const char *meta2[4] = {"format", "pt", "writer", "dsv32 \"st\"\n\xc3\xa9"};
	snprintf(path, sizeof path, "%s/c_own.safetensors", dir);
	if (write_set(path, idx, NSET, meta2, 2, &err) != DSV32_OK) {
		fprintf(stderr, "FAIL: c_own: %s\n", err.what);
		return 1;
	}
	printf("interop-write OK\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--interop-read") == 0)
		return interop_read(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--interop-write") == 0)
		return interop_write(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--e8m0") == 0)
		return e8m0_mode(argv[2]);
#define T(f) cmocka_unit_test(f)
#define TD(f) cmocka_unit_test_setup_teardown(f, tc_setup_tmpdir, tc_teardown_tmpdir)
	const struct CMUnitTest tests[] = {
		T(test_empty_file_is_header_too_small),
		T(test_file_shorter_than_8_bytes_is_rejected),
		T(test_header_length_below_8_is_rejected),
		T(test_header_length_past_file_end_is_rejected),
		T(test_header_length_over_cap_is_rejected),
		T(test_truncated_data_is_incomplete_buffer),
		T(test_invalid_json_is_rejected),
		T(test_json_not_an_object_is_rejected),
		T(test_bytes_after_the_object_are_rejected),
		T(test_invalid_utf8_is_rejected),
		T(test_missing_data_offsets_is_rejected),
		T(test_wrong_json_types_are_rejected),
		T(test_unknown_dtype_is_rejected),
		T(test_listed_only_dtypes_open_and_refuse_views),
		T(test_sub_byte_tensor_off_a_byte_boundary_is_misaligned),
		T(test_shape_size_mismatch_is_rejected),
		T(test_shape_product_overflow_is_rejected),
		T(test_zero_dim_after_huge_dims_is_empty_not_overflow),
		T(test_non_integer_shapes_and_offsets_are_rejected),
		T(test_more_than_6_dims_is_rejected),
		T(test_offsets_out_of_bounds_are_rejected),
		T(test_overlapping_offsets_are_rejected),
		T(test_gap_between_tensors_is_rejected),
		T(test_begin_after_end_is_rejected),
		T(test_bad_metadata_is_rejected),
		T(test_duplicate_keys_are_rejected),
		T(test_control_character_in_name_is_rejected),
		T(test_empty_header_gives_zero_tensors),
		T(test_unpadded_header_and_unaligned_data_are_accepted),
		T(test_metadata_is_readable_by_key_and_index),
		TD(test_writer_header_matches_python_bytes),
		TD(test_writer_round_trip_keeps_every_dtype_and_shape),
		TD(test_writer_commit_leaves_only_the_final_file),
		TD(test_writer_with_no_tensors_writes_an_empty_file),
		TD(test_writer_direct_stage_equals_plain_writes),
		TD(test_writer_abort_leaves_nothing),
		TD(test_writer_too_many_bytes_fails_and_leaves_nothing),
		TD(test_writer_too_few_bytes_fails_commit_and_leaves_nothing),
		TD(test_writer_rejects_bad_declarations),
		TD(test_writer_sizes_packed_dtypes_by_bits),
		TD(test_writer_duplicate_name_fails_and_leaves_nothing),
		TD(test_ckpt_index_joins_two_files),
		TD(test_ckpt_index_naming_a_missing_file_fails),
		TD(test_ckpt_index_naming_the_wrong_file_fails),
		TD(test_ckpt_index_missing_a_tensor_fails),
		TD(test_ckpt_tensor_in_two_files_fails_naming_both),
		TD(test_ckpt_directory_scan_sorts_files),
		TD(test_hostile_file_on_disk_is_rejected_by_open),
		TD(test_open_100k_tensors_is_fast),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
