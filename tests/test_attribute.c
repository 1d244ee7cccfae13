/* test_attribute.c: the knob table (core/knobs.h) and the attribution runs (compare/attribute.h)
 * on the built-in tiny model. */
#include <math.h>
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
#include "tests/support/attr_util.h"

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

/* On the tiny model (2 prompts longer than index_topk 16, one decode step): the total differs,
 * every switch that applies to this configuration changes taps alone, a knob that cannot apply
 * (YaRN is already on: max_position_embeddings 64 > 32) changes none, and the path has one
 * point per switch and ends at hf. */
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
	dsv32_cmp_config cfg = {.checkpoint = ck, .open = attr_open_model, .prompt = t.ids, .batch = 2,
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
		/* yarn-always: YaRN is on already; act-quant: no fp8 weights in this checkpoint;
		 * softmax-scale: with YaRN on and mscale == mscale_all_dim both formulas give the
		 * same fp32 scale (alive below with YaRN off); mask: only masked entries change
		 * (-inf vs finfo.min), which comparisons exclude, and no row is fully masked (the
		 * raw bits differ, below); rope-pairing: the rotation gives the same values in
		 * another channel order, which shows only if the fp32 order of an attention dot
		 * product moves a bf16 rounding, and on this prompt none does */
		bool dead_here = !strcmp(a->knobs[k].name, "yarn-always") ||
				 !strcmp(a->knobs[k].name, "rope-pairing") ||
				 !strcmp(a->knobs[k].name, "act-quant") ||
				 !strcmp(a->knobs[k].name, "softmax-scale") ||
				 !strcmp(a->knobs[k].name, "mask");
		assert_int_equal(a->alone[k].taps_changed == 0, dead_here);
		assert_true(a->alone[k].taps > 0);
	}
	assert_int_equal(a->n_path, n_impl);
	/* every knob that matters here is a switch: the path ends at hf, bit for bit */
	assert_int_equal(a->path[a->n_path - 1].taps_changed, 0);
	assert_string_equal(dsv32_attr_row_verdict(a, "§6 rotary / YaRN frequencies"), "matters");
	assert_string_equal(dsv32_attr_row_verdict(a, "§7 causal mask contract"), "no effect");
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
	attr_run run = {.preset = "tiny", .wd = DSV32_WDTYPE_FP8, .side_a = "ref",
			.side_b = "ref:knob=act-quant", .B = 1, .S = 20, .seed = 1, .local = true};
	dsv32_cmp_result r;
	attr_run_preset(&run, &r);
	const dsv32_tap_result *q = attr_find_tap(&r, 0, DSV32_DRIFT_LOCAL, "layers.0.attn.q_latent");
	assert_non_null(q);
	assert_true(q->dense.n_diff > 0);
	dsv32_cmp_result_free(&r);
}

static void forward_grab(const char *ck, const char *side, const int64_t *ids, int64_t S,
			 attr_tap_grab *g, int64_t max_seq_len)
{
	dsv32_side_spec s;
	assert_int_equal(dsv32_side_parse(side, &s, NULL), DSV32_OK);
	s.opts.max_seq_len = max_seq_len;
	dsv32_model *m = NULL;
	assert_int_equal(dsv32_ref_open(&m, ck, NULL, &s.opts, NULL), DSV32_OK);
	m->taps = (dsv32_tap_sink){.on_tap = attr_grab_tap, .user = g};
	dsv32_tensor lg = {0};
	assert_int_equal(m->vt->forward(m, ids, 1, S, 0, &lg, NULL), DSV32_OK);
	dsv32_tensor_free(&lg);
	m->vt->close(m);
	assert_non_null(g->v);
}

/* The two knobs dead in test_attribute_on_tiny act where they can:
 * mask: the indexer scores of ref and ref:knob=mask differ exactly at the causally masked
 * entries (-inf vs bf16 finfo.min) and nowhere else;
 * softmax-scale: with max_seq_len 32 (= original_max_position_embeddings) the reference turns
 * YaRN off and uses no mscale, HF's scaling keeps mscale^2: layer 0's attention output moves. */
static void test_mask_and_softmax_scale_knobs_act(void **state)
{
	(void)state;
	char dir[] = "/tmp/dsv32_attrm_XXXXXX", ck[64];
	assert_non_null(mkdtemp(dir));
	snprintf(ck, sizeof ck, "%s/tiny", dir);
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, ck, 0, false, NULL),
			 DSV32_OK);
	dsv32_tokens t = {0};
	int64_t S = 20;
	assert_int_equal(dsv32_tokens_random(&t, 1, S, 1024, 1, NULL), DSV32_OK);
	attr_tap_grab a = {.name = "layers.0.indexer.scores"}, b = a;
	forward_grab(ck, "ref", t.ids, S, &a, 0);
	forward_grab(ck, "ref:knob=mask", t.ids, S, &b, 0);
	assert_int_equal(a.n, S * S);
	for (int64_t i = 0; i < S; i++)
		for (int64_t j = 0; j < S; j++) {
			float x = a.v[i * S + j], y = b.v[i * S + j];
			if (j > i) {
				assert_true(x == -INFINITY);
				assert_true(y == -3.3895313892515355e38f);
			} else {
				assert_memory_equal(&x, &y, sizeof x);
			}
		}
	free(a.v);
	free(b.v);
	attr_tap_grab c = {.name = "layers.0.attn.out"}, d = c;
	forward_grab(ck, "ref", t.ids, S, &c, 32);
	forward_grab(ck, "ref:knob=softmax-scale", t.ids, S, &d, 32);
	assert_int_equal(c.n, d.n);
	assert_true(memcmp(c.v, d.v, sizeof(float) * (size_t)c.n) != 0);
	free(c.v);
	free(d.v);
	dsv32_tokens_free(&t);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}

/* The two knobs test_attribute_on_tiny finds dead that the tests above do not wake, alive
 * where they can act:
 * yarn-always: with max_seq_len 32 (= original_max_position_embeddings) the reference turns
 * YaRN off; the knob keeps it on, as HF: layer 0's attention output moves;
 * rope-pairing: bit-neutral in the rotation (the same values in another channel order), it
 * shows only where the fp32 order of an attention dot product moves a bf16 rounding of a
 * score; of the tiny model's random prompts 4 x 40 from seed 1 meets one (2 x 24, 2 x 60
 * and 4 x 24 from seed 1 and 4 x 60 from seeds 2 and 3 meet none): layer 0's attention output
 * of the prefill moves. */
static void test_yarn_always_and_rope_pairing_knobs_act(void **state)
{
	(void)state;
	char dir[] = "/tmp/dsv32_attry_XXXXXX", ck[64];
	assert_non_null(mkdtemp(dir));
	snprintf(ck, sizeof ck, "%s/tiny", dir);
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, ck, 0, false, NULL),
			 DSV32_OK);
	dsv32_tokens t = {0};
	assert_int_equal(dsv32_tokens_random(&t, 4, 40, 1024, 1, NULL), DSV32_OK);
	attr_tap_grab c = {.name = "layers.0.attn.out"}, d = c;
	forward_grab(ck, "ref", t.ids, 20, &c, 32);
	forward_grab(ck, "ref:knob=yarn-always", t.ids, 20, &d, 32);
	assert_int_equal(c.n, d.n);
	assert_true(memcmp(c.v, d.v, sizeof(float) * (size_t)c.n) != 0);
	free(c.v);
	free(d.v);
	dsv32_cmp_config cfg = {.checkpoint = ck, .open = attr_open_model, .prompt = t.ids, .batch = 4,
				.prompt_len = 40, .decode_steps = 0, .propagate = true};
	dsv32_side_spec a, b;
	assert_int_equal(dsv32_side_parse("ref", &a, NULL), DSV32_OK);
	assert_int_equal(dsv32_side_parse("ref:knob=rope-pairing", &b, NULL), DSV32_OK);
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	assert_int_equal(dsv32_cmp_run(&cfg, &a, &b, &r, NULL), DSV32_OK);
	int64_t moved = -1;
	for (size_t i = 0; i < r.n_taps; i++)
		if (!strcmp(r.taps[i].name, "layers.0.attn.out"))
			moved = r.taps[i].dense.n_diff;
	assert_true(moved > 0);
	dsv32_cmp_result_free(&r);
	dsv32_tokens_free(&t);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}

/* knob= on a ref side: by name, switches only; the label names it. */
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
	assert_int_equal(dsv32_side_parse("ref:knob=topk-ties", &s, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "not yet a switch"));
	assert_int_equal(dsv32_side_parse("ref:knob=nope", &s, &err), DSV32_E_USAGE);
	/* on an hf side knob= takes the switches toward ref (tests/test_attribute_hf.c) */
	assert_int_equal(dsv32_side_parse("hf:knob=topk-ties", &s, &err), DSV32_E_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_knob_table_is_complete),
		cmocka_unit_test(test_knobs_equal_their_side_options),
		cmocka_unit_test(test_attribute_on_tiny),
		cmocka_unit_test(test_act_quant_knob_on_fp8_weights),
		cmocka_unit_test(test_mask_and_softmax_scale_knobs_act),
		cmocka_unit_test(test_yarn_always_and_rope_pairing_knobs_act),
		cmocka_unit_test(test_knob_side_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
