/* test_attribute_complete_hf.c: the completeness check of the knobs toward ref (issue 18, the
 * hf -> ref direction; docs/attribution.md "The other direction"): the hf layout with every
 * switch toward ref of core/knobs.h flipped (apply_hf) against the ref layout, on the tiny and
 * small presets (bf16 and fp8 weights), both passes, prefill and one decode step, W = 1, must be
 * bit-identical at every tap.
 *
 * Every knob that is a switch of the ref layout is one of the hf layout too (asserted: a knob
 * added to ref only fails here by name), so the ref side is plain ref: a tap that differs
 * names the residual. (While the hf switches were being written the ref side took over the
 * missing ones, split_sides; it now takes none.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compare/runner.h"
#include "core/fsutil.h"
#include "core/knobs.h"
#include "core/tokens.h"
#include "fixtures/generator.h"
#include "hf_layout/hf_model.h"
#include "ref/ref_model.h"
#include "tests/support/attr_util.h"

/* hf: "hf:knob=..." with every hf switch; ref: "ref" or "ref:knob=..." with every knob that is
 * a switch of ref but not of hf (topk-ties is neither: a device rule, not a layout difference).
 * Returns how many knobs the ref side takes. */
static int split_sides(char *hf, char *ref, size_t cap)
{
	size_t n;
	const dsv32_knob *k = dsv32_knob_table(&n);
	const char *hs = ":knob=", *rs = ":knob=";
	int n_ref = 0;
	snprintf(hf, cap, "hf");
	snprintf(ref, cap, "ref");
	for (size_t i = 0; i < n; i++) {
		size_t lh = strlen(hf), lr = strlen(ref);
		if (dsv32_knob_implemented_hf(&k[i])) {
			snprintf(hf + lh, cap - lh, "%s%s", hs, k[i].name);
			hs = ",";
		} else if (dsv32_knob_implemented(&k[i])) {
			snprintf(ref + lr, cap - lr, "%s%s", rs, k[i].name);
			rs = ",";
			n_ref++;
		}
	}
	return n_ref;
}

/* hf with every hf switch vs plain ref on a fresh checkpoint of a preset and weight dtype,
 * 2 x S tokens and one decode step, both passes; every tap of both passes, prefill and the
 * decode step, must be bit-identical. */
static void check_preset(const char *preset, dsv32_weight_dtype wd, int64_t S, int64_t max_seq)
{
	char hf[512], ref[512];
	int n_ref = split_sides(hf, ref, sizeof hf);
	attr_run run = {.preset = preset, .wd = wd, .side_a = ref, .side_b = hf, .B = 2, .S = S,
			.max_seq = max_seq, .seed = 1, .decode_steps = 1, .propagate = true,
			.local = true};
	dsv32_cmp_result r;
	attr_run_preset(&run, &r);
	char ms[32] = "the config's";
	if (max_seq)
		snprintf(ms, sizeof ms, "%lld", (long long)max_seq);
	printf("%s vs %s, %s preset, %s weights, 2 x %lld tokens, max_seq_len %s\n", hf, ref,
	       preset, wd == DSV32_WDTYPE_FP8 ? "fp8" : "bf16", (long long)S, ms);
	if (n_ref)
		fail_msg("%s: %d knob(s) are switches of ref but not of hf", ref, n_ref);
	attr_print_diffs(&r);
	assert_true(r.n_taps > 100);
	for (int step = 0; step <= 1; step++) /* the passes ran: a tap from each */
		for (int mode = 0; mode < DSV32_DRIFTMODE_COUNT; mode++)
			assert_non_null(attr_find_tap(&r, step, (dsv32_drift_mode)mode,
						 mode == DSV32_DRIFT_LOCAL ? "layers.1.out" : "logits"));
	for (size_t i = 0; i < r.n_taps; i++)
		if (attr_tap_differs(&r.taps[i]))
			fail_msg("step %d %s differs", r.taps[i].step, r.taps[i].name);
	dsv32_cmp_result_free(&r);
}

/* The whole tiny model, 2 x 24 tokens (beyond index_topk 16, so the indexer selects). */
static void test_hf_switches_reproduce_ref_on_tiny(void **state)
{
	(void)state;
	check_preset("tiny", DSV32_WDTYPE_BF16, 24, 0);
}

/* The tiny model at max_seq_len 32 (= original_max_position_embeddings): the reference turns
 * YaRN and its mscale off, HF keeps both; yarn-always and softmax-scale, which change nothing
 * at the config's 64, take that over here. */
static void test_hf_switches_reproduce_ref_on_tiny_without_yarn(void **state)
{
	(void)state;
	check_preset("tiny", DSV32_WDTYPE_BF16, 24, 32);
}

static void test_hf_switches_reproduce_ref_on_tiny_fp8(void **state)
{
	(void)state;
	check_preset("tiny", DSV32_WDTYPE_FP8, 24, 0);
}

/* The small preset (dim 1024, 6 layers, 32 experts, index_topk 32), 2 x 40 tokens. */
static void test_hf_switches_reproduce_ref_on_small(void **state)
{
	(void)state;
	check_preset("small", DSV32_WDTYPE_BF16, 40, 0);
}

static void test_hf_switches_reproduce_ref_on_small_fp8(void **state)
{
	(void)state;
	check_preset("small", DSV32_WDTYPE_FP8, 40, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hf_switches_reproduce_ref_on_tiny),
		cmocka_unit_test(test_hf_switches_reproduce_ref_on_tiny_without_yarn),
		cmocka_unit_test(test_hf_switches_reproduce_ref_on_tiny_fp8),
		cmocka_unit_test(test_hf_switches_reproduce_ref_on_small),
		cmocka_unit_test(test_hf_switches_reproduce_ref_on_small_fp8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
