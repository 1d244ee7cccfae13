/* test_attribute.c: the knob table (core/knobs.h) and the attribution runs (compare/attribute.h)
 * on the built-in tiny model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compare/attribute.h"
#include "core/fsutil.h"
#include "core/tokens.h"
#include "fixtures/generator.h"
#include "hf_layout/hf_model.h"
#include "ref/ref_model.h"

/* Every difference issue 18 names has a knob, each with a row and a sentence. */
static void test_knob_table_is_complete(void **state)
{
	(void)state;
	static const char *required[] = {
		"rope-freqs", "rope-pairing", "norm-fusion", "norm-weight-dtype", "mask",
		"softmax-scale", "decode-path", "kv-fp8", "indexer-fp8", "indexer-weights-dtype",
		"act-quant", "silu-gating", "moe-accum", "logits-dtype", "topk-ties",
		"yarn-always", "reduction-order"};
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
		assert_non_null(dsv32_knob_find(required[i]));
	size_t n;
	const dsv32_knob *k = dsv32_knob_table(&n);
	assert_true(n <= DSV32_ATTR_MAX_KNOBS);
	for (size_t i = 0; i < n; i++) {
		assert_true(strlen(k[i].row) > 0 && strlen(k[i].summary) > 20);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(k[i].name, k[j].name);
	}
	assert_null(dsv32_knob_find("no-such-knob"));
}

/* A knob that says which side option it is must set exactly what that option sets. */
static void test_knobs_equal_their_side_options(void **state)
{
	(void)state;
	size_t n;
	const dsv32_knob *k = dsv32_knob_table(&n);
	for (size_t i = 0; i < n; i++) {
		if (!dsv32_knob_implemented(&k[i]) || !k[i].side_token)
			continue;
		char text[128];
		dsv32_side_spec s, base;
		snprintf(text, sizeof text, "ref:%s", k[i].side_token);
		assert_int_equal(dsv32_side_parse(text, &s, NULL), DSV32_OK);
		assert_int_equal(dsv32_side_parse("ref", &base, NULL), DSV32_OK);
		k[i].apply_ref(&base.opts);
		assert_memory_equal(&s.opts, &base.opts, sizeof s.opts);
	}
}

static dsv32_status open_model(const char *layout, const char *ckpt, const dsv32_model_opts *o,
			       dsv32_model **out, dsv32_error *err)
{
	return !strcmp(layout, "ref") ? dsv32_ref_open(out, ckpt, NULL, o, err)
				      : dsv32_hf_open(out, ckpt, NULL, o, err);
}

/* On the tiny model (2 prompts longer than index_topk 16, one decode step): the total differs,
 * every switch that applies to this configuration changes taps alone, a knob that cannot apply
 * (YaRN is already on: max_position_embeddings 64 > 32) changes none, and the path has one
 * point per switch. */
static void test_attribute_on_tiny(void **state)
{
	(void)state;
	char dir[] = "/tmp/dsv32_attr_XXXXXX", ck[64];
	assert_non_null(mkdtemp(dir));
	snprintf(ck, sizeof ck, "%s/tiny", dir);
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, ck, 0, false, NULL),
			 DSV32_OK);
	dsv32_tokens t = {0};
	assert_int_equal(dsv32_tokens_random(&t, 2, 24, 1024, 1, NULL), DSV32_OK);
	dsv32_cmp_config cfg = {.checkpoint = ck, .open = open_model, .prompt = t.ids, .batch = 2,
				.prompt_len = 24, .decode_steps = 1, .propagate = true,
				.local = true};
	dsv32_side_spec ref, hf;
	assert_int_equal(dsv32_side_parse("ref", &ref, NULL), DSV32_OK);
	assert_int_equal(dsv32_side_parse("hf", &hf, NULL), DSV32_OK);
	dsv32_attribution *a = calloc(1, sizeof *a);
	dsv32_error err = {0};
	assert_int_equal(dsv32_attribute(&cfg, &ref, &hf, NULL, NULL, a, &err), DSV32_OK);
	assert_true(a->total.taps_changed > 0 && a->total.local_ran && a->total.propagate_ran);
	int n_impl = 0;
	for (size_t k = 0; k < a->n_knobs; k++) {
		if (!dsv32_knob_implemented(&a->knobs[k]))
			continue;
		n_impl++;
		/* yarn-always: YaRN is on already; act-quant: no fp8 weights in this checkpoint */
		bool dead_here = !strcmp(a->knobs[k].name, "yarn-always") ||
				 !strcmp(a->knobs[k].name, "act-quant");
		assert_int_equal(a->alone[k].taps_changed == 0, dead_here);
		assert_true(a->alone[k].taps > 0);
	}
	assert_int_equal(a->n_path, n_impl);
	assert_string_equal(dsv32_attr_row_verdict(a, "§6 rotary / YaRN frequencies"), "no effect");
	assert_string_equal(dsv32_attr_row_verdict(a, "§7 causal mask contract"), "not measured");
	char *js = dsv32_attr_json(a, NULL), *md = dsv32_attr_markdown(a);
	assert_non_null(strstr(js, "\"schema\":\t\"dsv32-parity-attribution/1\""));
	assert_non_null(strstr(md, "| `kv-fp8` alone |"));
	free(js);
	free(md);
	free(a);
	dsv32_tokens_free(&t);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}

/* act-quant is dead on bf16 weights (above) and alive on fp8 ones: ref vs ref:knob=act-quant on
 * the fp8 tiny model differs from the first fp8 GEMM output on (q_latent of layer 0). */
static void test_act_quant_knob_on_fp8_weights(void **state)
{
	(void)state;
	char dir[] = "/tmp/dsv32_attr8_XXXXXX", ck[64];
	assert_non_null(mkdtemp(dir));
	snprintf(ck, sizeof ck, "%s/tiny8", dir);
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_FP8, 0, ck, 0, false, NULL),
			 DSV32_OK);
	dsv32_tokens t = {0};
	assert_int_equal(dsv32_tokens_random(&t, 1, 20, 1024, 1, NULL), DSV32_OK);
	dsv32_cmp_config cfg = {.checkpoint = ck, .open = open_model, .prompt = t.ids, .batch = 1,
				.prompt_len = 20, .decode_steps = 0, .local = true};
	dsv32_side_spec a, b;
	assert_int_equal(dsv32_side_parse("ref", &a, NULL), DSV32_OK);
	assert_int_equal(dsv32_side_parse("ref:knob=act-quant", &b, NULL), DSV32_OK);
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	assert_int_equal(dsv32_cmp_run(&cfg, &a, &b, &r, NULL), DSV32_OK);
	bool q_latent_moved = false;
	for (size_t i = 0; i < r.n_taps; i++)
		if (!strcmp(r.taps[i].name, "layers.0.attn.q_latent"))
			q_latent_moved = r.taps[i].dense.n_diff > 0;
	assert_true(q_latent_moved);
	dsv32_cmp_result_free(&r);
	dsv32_tokens_free(&t);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}

/* knob= on a side: by name, ref only, switches only; the label names it. */
static void test_knob_side_token(void **state)
{
	(void)state;
	dsv32_side_spec s;
	dsv32_error err = {0};
	assert_int_equal(dsv32_side_parse("ref:knob=silu-gating,act-quant", &s, &err), DSV32_OK);
	assert_true(dsv32_knob_on(&s.opts, DSV32_KNOB_SILU_GATING));
	assert_true(dsv32_knob_on(&s.opts, DSV32_KNOB_ACT_QUANT));
	assert_non_null(strstr(s.label, ":knob=act-quant"));
	assert_non_null(strstr(s.label, ":knob=silu-gating"));
	assert_int_equal(dsv32_side_parse("ref:knob=kv-fp8", &s, &err), DSV32_OK);
	assert_true(s.opts.no_fp8_kv);
	assert_int_equal(dsv32_side_parse("ref:knob=mask", &s, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "not yet a switch"));
	assert_int_equal(dsv32_side_parse("ref:knob=nope", &s, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_side_parse("hf:knob=silu-gating", &s, &err), DSV32_E_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_knob_table_is_complete),
		cmocka_unit_test(test_knobs_equal_their_side_options),
		cmocka_unit_test(test_attribute_on_tiny),
		cmocka_unit_test(test_act_quant_knob_on_fp8_weights),
		cmocka_unit_test(test_knob_side_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
