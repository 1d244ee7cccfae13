/* test_topk_torch.c: dsv32_topk_rule. ties=torch-cpu replays every case torch.topk recorded in
 * fixtures/topk_ties/cases.bin (fixtures/gen_topk_ties.py; format there) and requires identical
 * indices in identical slots and values = x[idx]; plus properties of both rules and the errors.
 * Needs no Python. $DSV32_TOPK_TIES_FILE replays another recording instead (another torch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/fsutil.h"

#include "kernels/topk_torch.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"

/* ---- the recorded cases --------------------------------------------------------------------- */

typedef struct {
	int64_t n, k;
	bool sorted, bf16;
	float *x;      /* n values (exact bf16 values when bf16) */
	int64_t *want; /* torch's k indices, slot order */
} tie_case;

static uint32_t rd_u(const unsigned char *p, int bytes)
{
	uint32_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned char *read_cases_file(size_t *len)
{
	/* $DSV32_TOPK_TIES_FILE: a cases.bin written by another torch (gen_topk_ties.py --out) */
	const char *src = getenv("DSV32_SOURCE_DIR"), *other = getenv("DSV32_TOPK_TIES_FILE");
	char path[600];
	if (other && other[0])
		snprintf(path, sizeof path, "%s", other);
	else
		snprintf(path, sizeof path, "%s/fixtures/topk_ties/cases.bin",
			 src ? src : DSV32_SOURCE_DIR);
	char *buf = NULL;
	dsv32_error err = {0};
	if (dsv32_read_file(path, (size_t)1 << 30, &buf, len, &err) != DSV32_OK)
		fail_msg("%s (regenerate with fixtures/gen_topk_ties.py)", err.what);
	return (unsigned char *)buf;
}

/* Decode case number c at *pos into *tc (allocates); fails the test on a malformed file. */
static void decode_case(const unsigned char *b, size_t len, size_t *pos, int c, tie_case *tc)
{
	size_t p = *pos;
	if (p + 8 > len)
		fail_msg("cases.bin: case %d truncated", c);
	tc->n = rd_u(b + p, 2);
	tc->k = rd_u(b + p + 2, 2);
	tc->sorted = b[p + 4] & 1;
	tc->bf16 = (b[p + 4] >> 1) & 1;
	int bits = b[p + 5];
	uint32_t P = rd_u(b + p + 6, 2);
	p += 8;
	size_t code_bytes = ((size_t)tc->n * (size_t)bits + 7) / 8;
	int iw = tc->n <= 256 ? 1 : 2;
	if (tc->k < 1 || tc->k > tc->n || P < 1 || (bits != 1 && bits != 2 && bits != 4 &&
						     bits != 8 && bits != 16) ||
	    p + 4 * (size_t)P + code_bytes + (size_t)iw * (size_t)tc->k > len)
		fail_msg("cases.bin: case %d malformed (n %lld k %lld bits %d P %u)", c,
			 (long long)tc->n, (long long)tc->k, bits, P);
	const unsigned char *pal = b + p;
	p += 4 * (size_t)P;
	tc->x = malloc((size_t)tc->n * sizeof *tc->x);
	tc->want = malloc((size_t)tc->k * sizeof *tc->want);
	assert_true(tc->x && tc->want);
	for (int64_t j = 0; j < tc->n; j++) {
		size_t bit = (size_t)j * (size_t)bits;
		uint32_t code = rd_u(b + p + bit / 8, (int)((bit % 8 + (size_t)bits + 7) / 8));
		code = (code >> (bit % 8)) & ((1u << bits) - 1u);
		if (code >= P)
			fail_msg("cases.bin: case %d code %u >= palette %u", c, code, P);
		tc->x[j] = dsv32_f32_from_bits(rd_u(pal + 4 * code, 4));
	}
	p += code_bytes;
	for (int64_t j = 0; j < tc->k; j++)
		tc->want[j] = rd_u(b + p + (size_t)iw * (size_t)j, iw);
	p += (size_t)iw * (size_t)tc->k;
	*pos = p;
}

static uint32_t bits_of(const dsv32_tensor *t, int64_t i)
{
	if (t->dtype == DSV32_BF16)
		return ((const dsv32_bf16 *)t->data)[i];
	if (t->dtype == DSV32_F32)
		return dsv32_f32_bits(((const float *)t->data)[i]);
	return t->dtype == DSV32_I64 ? (uint32_t)((const int64_t *)t->data)[i]
				     : (uint32_t)((const int32_t *)t->data)[i];
}

/* Run case tc through dsv32_topk_rule as `rows` copies of the row, with the given output
 * dtypes; every row must give torch's indices and values (x[idx]; BF16 NaN as 0x7FC0). */
static void replay_case(dsv32_backend *be, const tie_case *tc, int c, int64_t rows,
			dsv32_dtype it, dsv32_dtype vt)
{
	dsv32_dtype xt = tc->bf16 ? DSV32_BF16 : DSV32_F32;
	dsv32_tensor x = tu_hostv(xt, 2, rows, tc->n), idx = tu_hostv(it, 2, rows, tc->k);
	dsv32_tensor val = tu_hostv(vt, 2, rows, tc->k);
	for (int64_t r = 0; r < rows; r++)
		for (int64_t j = 0; j < tc->n; j++) {
			if (tc->bf16)
				((dsv32_bf16 *)x.data)[r * tc->n + j] =
					(dsv32_bf16)(dsv32_f32_bits(tc->x[j]) >> 16);
			else
				((float *)x.data)[r * tc->n + j] = tc->x[j];
		}
	dsv32_error e = {0};
	if (dsv32_topk_rule(be, &idx, &val, &x, tc->k, DSV32_TIES_TORCH_CPU, tc->sorted, &e) !=
	    DSV32_OK)
		fail_msg("case %d: %s", c, e.what);
	for (int64_t r = 0; r < rows; r++)
		for (int64_t j = 0; j < tc->k; j++) {
			int64_t got = (int64_t)(int32_t)bits_of(&idx, r * tc->k + j);
			if (it == DSV32_I64)
				got = ((int64_t *)idx.data)[r * tc->k + j];
			if (got != tc->want[j])
				fail_msg("case %d (n %lld k %lld sorted %d %s) row %lld slot %lld: "
					 "index %lld, torch %lld (x = %g there, torch's x = %g)",
					 c, (long long)tc->n, (long long)tc->k, tc->sorted,
					 tc->bf16 ? "bf16" : "f32", (long long)r, (long long)j,
					 (long long)got, (long long)tc->want[j],
					 got >= 0 && got < tc->n ? (double)tc->x[got] : 0.0,
					 (double)tc->x[tc->want[j]]);
			float w = tc->x[tc->want[j]];
			uint32_t wb = vt == DSV32_F32 ? dsv32_f32_bits(w)
				      : (w != w ? 0x7fc0u : dsv32_f32_bits(w) >> 16);
			if (bits_of(&val, r * tc->k + j) != wb)
				fail_msg("case %d slot %lld: value bits %08x, expected %08x", c,
					 (long long)j, bits_of(&val, r * tc->k + j), wb);
		}
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&idx);
	dsv32_tensor_free(&val);
}

static void test_torch_cpu_rule_replays_every_recorded_torch_case(void **state)
{
	size_t len, pos = 16;
	unsigned char *b = read_cases_file(&len);
	assert_true(len >= 16 && memcmp(b, "DSV32TK1", 8) == 0);
	uint32_t count = rd_u(b + 8, 4);
	const char *other = getenv("DSV32_TOPK_TIES_FILE");
	assert_true(count >= (other && other[0] ? 1u : 1000u)); /* the committed file: 3520 */
	int64_t slots = 0;
	for (uint32_t c = 0; c < count; c++) {
		tie_case tc;
		decode_case(b, len, &pos, (int)c, &tc);
		dsv32_dtype xt = tc.bf16 ? DSV32_BF16 : DSV32_F32;
		/* every case once; every 7th also as 3 rows (threads), I32 indices, x-dtype values */
		replay_case(*state, &tc, (int)c, 1, DSV32_I64, DSV32_F32);
		if (c % 7 == 0)
			replay_case(*state, &tc, (int)c, 3, DSV32_I32, xt);
		slots += tc.k;
		free(tc.x);
		free(tc.want);
	}
	assert_int_equal(pos, len);
	printf("replayed %u torch.topk cases, %lld slots: all identical\n", count, (long long)slots);
	free(b);
}

/* ---- properties ----------------------------------------------------------------------------- */

/* ATen's comparator: NaN above all, NaNs equal, -0 == +0. */
static bool torch_before(float a, float b)
{
	return (isnan(a) && !isnan(b)) || a > b;
}

static float tie_value(tu_rng *r, int distinct)
{
	switch (tu_int(r, 0, 11)) {
	case 0: return -0.0f;
	case 1: return 0.0f;
	case 2: return NAN;
	case 3: return -INFINITY;
	default: return (float)tu_int(r, 0, distinct - 1);
	}
}

static void row_top(dsv32_backend *be, const float *x, int64_t n, int64_t k, dsv32_tie_rule rule,
		    bool sorted, int64_t *idx)
{
	dsv32_tensor xt = dsv32_tensor_view((void *)x, DSV32_F32, 1, (int64_t[]){n});
	dsv32_tensor it = dsv32_tensor_view(idx, DSV32_I64, 1, (int64_t[]){k});
	dsv32_error e = {0};
	if (dsv32_topk_rule(be, &it, NULL, &xt, k, rule, sorted, &e) != DSV32_OK)
		fail_msg("topk_rule %s n %lld k %lld: %s", dsv32_tie_rule_name(rule), (long long)n,
			 (long long)k, e.what);
}

static void test_torch_cpu_without_ties_sorted_equals_index_rule(void **state)
{
	tu_rng r = tu_rng_seed(17);
	for (int t = 0; t < 300; t++) {
		int64_t n = tu_int(&r, 1, t < 200 ? 300 : 5000), k = tu_int(&r, 1, (int)n);
		float *x = malloc((size_t)n * sizeof *x);
		int64_t *a = malloc((size_t)k * sizeof *a), *b = malloc((size_t)k * sizeof *b);
		for (int64_t j = 0; j < n; j++) /* distinct, no zero, no NaN: a permutation */
			x[j] = (float)(j + 1) * (tu_int(&r, 0, 1) ? 1.0f : -1.0f);
		for (int64_t j = n - 1; j > 0; j--) {
			int64_t s = tu_int(&r, 0, (int)j);
			float v = x[j];
			x[j] = x[s];
			x[s] = v;
		}
		row_top(*state, x, n, k, DSV32_TIES_TORCH_CPU, true, a);
		row_top(*state, x, n, k, DSV32_TIES_INDEX, true, b);
		for (int64_t j = 0; j < k; j++)
			if (a[j] != b[j])
				fail_msg("n %lld k %lld slot %lld: torch-cpu %lld, index %lld",
					 (long long)n, (long long)k, (long long)j, (long long)a[j],
					 (long long)b[j]);
		free(x);
		free(a);
		free(b);
	}
}

/* The k indices are distinct and in range, nothing left out is before a selected one, and the
 * order is non-increasing when sorted (or when ATen takes partial_sort, k*64 <= n). sorted and
 * unsorted select the same set with the same k-th slot. */
static void check_valid_topk(const float *x, int64_t n, int64_t k, bool sorted, const int64_t *idx)
{
	char *used = calloc((size_t)n, 1);
	for (int64_t j = 0; j < k; j++) {
		if (idx[j] < 0 || idx[j] >= n || used[idx[j]])
			fail_msg("n %lld k %lld slot %lld: index %lld out of range or repeated",
				 (long long)n, (long long)k, (long long)j, (long long)idx[j]);
		used[idx[j]] = 1;
		if (j > 0 && (sorted || k * 64 <= n) && torch_before(x[idx[j]], x[idx[j - 1]]))
			fail_msg("n %lld k %lld slot %lld: not sorted", (long long)n, (long long)k,
				 (long long)j);
	}
	int64_t w = idx[0]; /* the lowest-ranked selected */
	for (int64_t j = 1; j < k; j++)
		if (torch_before(x[w], x[idx[j]]))
			w = idx[j];
	for (int64_t i = 0; i < n; i++)
		if (!used[i] && torch_before(x[i], x[w]))
			fail_msg("n %lld k %lld: x[%lld] = %g left out, x[%lld] = %g taken",
				 (long long)n, (long long)k, (long long)i, (double)x[i], (long long)w,
				 (double)x[w]);
	free(used);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_torch_cpu_selects_a_valid_topk_set_sorted_or_not(void **state)
{
	tu_rng r = tu_rng_seed(4);
	for (int t = 0; t < 400; t++) {
		int64_t n = tu_int(&r, 1, t < 300 ? 200 : 3000), k = tu_int(&r, 1, (int)n);
		if (t % 4 == 0) /* ATen's partial_sort side */
			k = tu_int(&r, 1, (int)(n / 64 > 0 ? n / 64 : 1));
		float *x = malloc((size_t)n * sizeof *x);
		int64_t *s = malloc((size_t)k * sizeof *s), *u = malloc((size_t)k * sizeof *u);
		int distinct = tu_int(&r, 1, 6);
		for (int64_t j = 0; j < n; j++)
			x[j] = tie_value(&r, distinct);
		row_top(*state, x, n, k, DSV32_TIES_TORCH_CPU, true, s);
		row_top(*state, x, n, k, DSV32_TIES_TORCH_CPU, false, u);
		check_valid_topk(x, n, k, true, s);
		check_valid_topk(x, n, k, false, u);
		assert_int_equal(s[k - 1], u[k - 1]); /* nth_element's slot, untouched by the sort */
		qsort(s, (size_t)k, sizeof *s, cmp_i64);
		qsort(u, (size_t)k, sizeof *u, cmp_i64);
		assert_memory_equal(s, u, (size_t)k * sizeof *s);
		free(x);
		free(s);
		free(u);
	}
}

/* A large all-equal row and a large ascending row finish (O(n log n), not quadratic). */
static void test_torch_cpu_large_rows_are_fast_and_valid(void **state)
{
	const int64_t n = 1 << 20, k = 2048;
	float *x = malloc((size_t)n * sizeof *x);
	int64_t *idx = malloc((size_t)n * sizeof *idx);
	for (int pass = 0; pass < 3; pass++) {
		for (int64_t j = 0; j < n; j++)
			x[j] = pass == 0 ? 0.0f : pass == 1 ? (float)j : (float)(j % 3);
		row_top(*state, x, n, k, DSV32_TIES_TORCH_CPU, true, idx);
		if (pass == 1)
			for (int64_t j = 0; j < k; j++)
				assert_int_equal(idx[j], n - 1 - j);
		check_valid_topk(x, n, k, true, idx);
		row_top(*state, x, n, n / 2, DSV32_TIES_TORCH_CPU, pass == 2, idx);
		check_valid_topk(x, n, n / 2, pass == 2, idx);
	}
	free(x);
	free(idx);
}

static void test_index_rule_is_dsv32_topk(void **state)
{
	tu_rng r = tu_rng_seed(9);
	const int64_t n = 333, k = 40;
	float x[333];
	int64_t a[40], b[40];
	for (int64_t j = 0; j < n; j++)
		x[j] = tie_value(&r, 3);
	row_top(*state, x, n, k, DSV32_TIES_INDEX, false, a);
	dsv32_tensor xt = dsv32_tensor_view(x, DSV32_F32, 1, (int64_t[]){n});
	dsv32_tensor it = dsv32_tensor_view(b, DSV32_I64, 1, (int64_t[]){k});
	assert_int_equal(dsv32_topk(*state, &it, NULL, &xt, k, NULL), DSV32_OK);
	assert_memory_equal(a, b, sizeof a);
}

static void test_tie_rule_names_round_trip_and_errors_are_reported(void **state)
{
	for (int r = 0; r < DSV32_TIES_COUNT; r++) {
		dsv32_tie_rule back = DSV32_TIES_COUNT;
		assert_true(dsv32_tie_rule_from_name(dsv32_tie_rule_name((dsv32_tie_rule)r), &back));
		assert_int_equal(back, r);
	}
	dsv32_tie_rule out;
	assert_false(dsv32_tie_rule_from_name("torch", &out));
	assert_false(dsv32_tie_rule_from_name(NULL, &out));
	assert_string_equal(dsv32_tie_rule_name(DSV32_TIES_TORCH_CPU), "torch-cpu");

	float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	int64_t idx[8];
	dsv32_tensor xt = dsv32_tensor_view(x, DSV32_F32, 1, (int64_t[]){8});
	dsv32_tensor it = dsv32_tensor_view(idx, DSV32_I64, 1, (int64_t[]){3});
	dsv32_tensor i9 = dsv32_tensor_view(idx, DSV32_I64, 1, (int64_t[]){9});
	dsv32_tensor bad = dsv32_tensor_view(idx, DSV32_F32, 1, (int64_t[]){3});
	dsv32_error e = {0};
	assert_int_equal(dsv32_topk_rule(*state, &i9, NULL, &xt, 9, DSV32_TIES_TORCH_CPU, true, &e),
			 DSV32_E_USAGE);
	assert_int_equal(dsv32_topk_rule(*state, &bad, NULL, &xt, 3, DSV32_TIES_TORCH_CPU, true, &e),
			 DSV32_E_DTYPE);
	assert_int_equal(dsv32_topk_rule(*state, &it, NULL, &xt, 4, DSV32_TIES_TORCH_CPU, true, &e),
			 DSV32_E_SHAPE);
	assert_int_equal(dsv32_topk_rule(*state, &it, NULL, &xt, 3, DSV32_TIES_COUNT, true, &e),
			 DSV32_E_USAGE);
	dsv32_backend fake_cuda = {0};
	fake_cuda.device = DSV32_DEV_CUDA;
	assert_int_equal(dsv32_topk_rule(&fake_cuda, &it, NULL, &xt, 3, DSV32_TIES_TORCH_CPU, true,
					 &e),
			 DSV32_E_UNSUPPORTED);
	assert_non_null(strstr(e.what, "torch-cpu"));
	assert_int_equal(dsv32_topk_rule(*state, &it, NULL, &xt, 3, DSV32_TIES_TORCH_CPU, true, &e),
			 DSV32_OK);
	assert_int_equal(idx[0], 7);
	assert_int_equal(idx[2], 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torch_cpu_rule_replays_every_recorded_torch_case),
		cmocka_unit_test(test_torch_cpu_without_ties_sorted_equals_index_rule),
		cmocka_unit_test(test_torch_cpu_selects_a_valid_topk_set_sorted_or_not),
		cmocka_unit_test(test_torch_cpu_large_rows_are_fast_and_valid),
		cmocka_unit_test(test_index_rule_is_dsv32_topk),
		cmocka_unit_test(test_tie_rule_names_round_trip_and_errors_are_reported),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
