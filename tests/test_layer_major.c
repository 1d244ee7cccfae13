/* test_layer_major.c: the two library pieces of layer-major runs (issue 19) that the CLI tests
 * (sh_test_layer_major.sh, sh_test_layer_major_rss.sh) do not pin on their own:
 *   - dsv32_st_release_prefix / dsv32_ckpt_release_prefix drop the resident pages of the
 *     tensors under a prefix (and only those names: "layers.1." is not "layers.10."), the
 *     bytes read afterwards are unchanged;
 *   - dsv32_cmp_result_sort_steps puts taps, skips and forced rows added layer by layer back in
 *     step order and recomputes the first divergence and the first non-finite tap as the
 *     step-major order of additions gives them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compare/result.h"
#include "core/safetensors.h"
#include "tests/support/test_common.h"

#define MIB (1024 * 1024)

/* This process's resident pages (statm's second field). */
static long resident_pages(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res;
}

/* dir/m.safetensors: "layers.1.w" and "layers.10.w", 8 MiB of U8 each, byte i = (i * 7 + k). */
static void write_two(const char *path)
{
	dsv32_st_writer *w;
	dsv32_error err = {0};
	int64_t shape[1] = {8 * MIB};
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "layers.1.w", DSV32_U8, 1, shape, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "layers.10.w", DSV32_U8, 1, shape, &err), DSV32_OK);
	uint8_t *buf = malloc(8 * MIB);
	assert_non_null(buf);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < 8 * MIB; i++)
			buf[i] = (uint8_t)(i * 7 + (size_t)k);
		assert_int_equal(dsv32_st_writer_write(w, buf, 8 * MIB, &err), DSV32_OK);
	}
	free(buf);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
}

static unsigned long touch(const uint8_t *p, size_t n)
{
	unsigned long sum = 0;
	for (size_t i = 0; i < n; i += 512)
		sum += p[i];
	return sum;
}

static void test_release_prefix(void **state)
{
	char path[512];
	snprintf(path, sizeof path, "%s/m.safetensors", (const char *)*state);
	write_two(path);
	dsv32_st_file *f;
	dsv32_error err = {0};
	assert_int_equal(dsv32_st_open(&f, path, &err), DSV32_OK);
	const dsv32_st_entry *e1 = dsv32_st_find(f, "layers.1.w"), *e10 = dsv32_st_find(f, "layers.10.w");
	const uint8_t *p1 = dsv32_st_data(f, e1), *p10 = dsv32_st_data(f, e10);
	unsigned long s1 = touch(p1, 8 * MIB), s10 = touch(p10, 8 * MIB);
	long before = resident_pages();
	assert_int_equal(dsv32_st_release_prefix(f, "layers.1."), 8 * MIB); /* not layers.10. */
	long after = resident_pages(), page_kb = sysconf(_SC_PAGESIZE) / 1024;
	/* ~8 MiB fewer resident pages; at least 6 MiB whatever else moved meanwhile */
	assert_true((before - after) * page_kb >= 6 * 1024);
	assert_int_equal(touch(p1, 8 * MIB), s1); /* faulted in again: the same bytes */
	for (size_t i = 0; i < 8 * MIB; i += 4099)
		assert_int_equal(p1[i], (uint8_t)(i * 7));
	before = resident_pages();
	assert_int_equal(dsv32_st_release_prefix(f, "layers.10."), 8 * MIB);
	assert_int_equal(dsv32_st_release_prefix(f, "layers.2."), 0);
	assert_true((before - resident_pages()) * page_kb >= 6 * 1024);
	assert_int_equal(touch(p10, 8 * MIB), s10);
	dsv32_st_close(f);
	dsv32_ckpt *c;
	assert_int_equal(dsv32_ckpt_open(&c, path, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_release_prefix(c, "layers."), 16 * MIB);
	dsv32_ckpt_close(c);
}

static dsv32_tap_result tap(const char *name, int step, int layer, bool over, bool nan)
{
	dsv32_tap_result t;
	memset(&t, 0, sizeof t);
	snprintf(t.name, sizeof t.name, "%s", name);
	snprintf(t.op, sizeof t.op, "out");
	t.step = step;
	t.layer = layer;
	t.mode = DSV32_DRIFT_LOCAL;
	t.family = DSV32_FAMILY_DENSE;
	t.over_budget = over;
	t.dense.nan_b = nan ? 1 : 0;
	return t;
}

static void test_sort_steps(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	dsv32_tap_result before = tap("embed", 0, -1, false, false); /* an earlier pass: stays */
	assert_non_null(dsv32_cmp_result_add(&r, &before));
	/* layer-major arrival: layer 0 of steps 0, 1, then layer 1 of steps 0, 1; step 1's layer 0
	 * is over budget and non-finite, step 0's layer 1 too: step order makes step 0 first */
	dsv32_tap_result in[4] = {tap("layers.0.out", 0, 0, false, false),
				  tap("layers.0.out", 1, 0, true, true),
				  tap("layers.1.out", 0, 1, true, true),
				  tap("layers.1.out", 1, 1, false, false)};
	for (int i = 0; i < 4; i++)
		assert_non_null(dsv32_cmp_result_add(&r, &in[i]));
	assert_true(dsv32_cmp_result_skip(&r, "layers.0.x", 1, "only in b"));
	assert_true(dsv32_cmp_result_skip(&r, "layers.0.x", 0, "only in b"));
	assert_true(dsv32_cmp_result_sort_steps(&r, 1, 0, 0));
	const int want_step[5] = {0, 0, 0, 1, 1}, want_layer[5] = {-1, 0, 1, 0, 1};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r.taps[i].step, want_step[i]);
		assert_int_equal(r.taps[i].layer, want_layer[i]);
	}
	assert_int_equal(r.skips[0].step, 0);
	assert_int_equal(r.skips[1].step, 1);
	assert_int_equal(r.first_divergence, 2); /* step 0, layer 1 */
	assert_true(r.nonfinite);
	assert_string_equal(r.nonfinite_tap, "step 0 layers.1.out (side b)");
	dsv32_cmp_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_release_prefix, tc_setup_tmpdir, tc_teardown_tmpdir),
		cmocka_unit_test(test_sort_steps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
