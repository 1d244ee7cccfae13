/* test_config.c: HF and reference config parsing, the mapping between them (docs/spec/checkpoints.md §4),
 * writers that parse back to the same config, and validation errors that name the field. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "fixtures/presets.h"
#include "tests/support/test_common.h"

/* The golden HF config text, embedded so the test does not need /work/shared. It equals
 * fixtures/presets/tiny.json, which test_fixture checks against the golden file. */
static const char *tiny_hf(void)
{
	return dsv32_preset_find("tiny");
}

static const char ref_tiny[] =
	"{\"max_batch_size\": 4, \"max_seq_len\": 64, \"dtype\": \"bf16\", \"scale_fmt\": \"ue8m0\","
	" \"vocab_size\": 1024, \"dim\": 256, \"inter_dim\": 512, \"moe_inter_dim\": 128,"
	" \"n_layers\": 3, \"n_dense_layers\": 1, \"n_heads\": 4, \"n_routed_experts\": 16,"
	" \"n_shared_experts\": 1, \"n_activated_experts\": 4, \"n_expert_groups\": 4,"
	" \"n_limited_groups\": 2, \"score_func\": \"sigmoid\", \"route_scale\": 2.5,"
	" \"q_lora_rank\": 128, \"kv_lora_rank\": 128, \"qk_nope_head_dim\": 32,"
	" \"qk_rope_head_dim\": 64, \"v_head_dim\": 32, \"original_seq_len\": 32,"
	" \"rope_theta\": 10000.0, \"rope_factor\": 40, \"beta_fast\": 32, \"beta_slow\": 1,"
	" \"mscale\": 1.0, \"index_n_heads\": 4, \"index_head_dim\": 128, \"index_topk\": 16}";

/* Fields both forms carry (every ModelArgs field except max_batch_size). */
static void assert_model_args_equal(const dsv32_config *a, const dsv32_config *b)
{
#define EQ(f) assert_true(a->f == b->f)
	EQ(max_seq_len); EQ(dtype); EQ(scale_fmt_ue8m0); EQ(vocab_size); EQ(dim); EQ(inter_dim);
	EQ(moe_inter_dim); EQ(n_layers); EQ(n_dense_layers); EQ(n_heads); EQ(n_routed_experts);
	EQ(n_shared_experts); EQ(n_activated_experts); EQ(n_expert_groups); EQ(n_limited_groups);
	EQ(score_func); EQ(route_scale); EQ(q_lora_rank); EQ(kv_lora_rank); EQ(qk_nope_head_dim);
	EQ(qk_rope_head_dim); EQ(v_head_dim); EQ(original_seq_len); EQ(rope_theta);
	EQ(rope_factor); EQ(beta_fast); EQ(beta_slow); EQ(mscale); EQ(index_n_heads);
	EQ(index_head_dim); EQ(index_topk); EQ(rope_yarn); EQ(has_quant);
}

static void assert_config_equal(const dsv32_config *a, const dsv32_config *b)
{
	assert_model_args_equal(a, b);
	EQ(max_batch_size); EQ(rms_norm_eps); EQ(mscale_all_dim); EQ(has_attention_factor);
	EQ(attention_factor); EQ(max_position_embeddings); EQ(norm_topk_prob);
	EQ(num_nextn_predict_layers); EQ(bos_token_id); EQ(eos_token_id); EQ(quant_block[0]);
	EQ(quant_block[1]);
#undef EQ
}

static void test_golden_hf_and_ref_configs_agree(void **state)
{
	(void)state;
	dsv32_config hf, ref;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_hf_json(&hf, tiny_hf(), "tiny", &err), DSV32_OK);
	assert_int_equal(dsv32_config_from_ref_json(&ref, ref_tiny, "ref", &err), DSV32_OK);
	assert_model_args_equal(&hf, &ref);
	assert_int_equal(hf.dim, 256);
	assert_int_equal(hf.max_seq_len, 64); /* max_position_embeddings 64 < 16384 */
	assert_true(hf.rope_yarn && dsv32_config_ref_yarn_on(&hf));
	assert_int_equal(hf.score_func, DSV32_SCORE_SIGMOID);
	assert_int_equal(ref.max_batch_size, 4);
	assert_int_equal(hf.max_batch_size, 8); /* HF lacks it: ModelArgs default */
	assert_int_equal(dsv32_config_validate(&hf, 1, &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&ref, 2, &err), DSV32_OK);
}

static void test_golden_files_load_with_form_detection(void **state)
{
	(void)state;
	char hfp[600], mp2[600];
	if (!tc_golden_path(hfp, sizeof hfp, "hf/config.json") ||
	    !tc_golden_path(mp2, sizeof mp2, "mp2/config.json"))
		skip();
	dsv32_config hf, ref, emb;
	bool is_hf = false;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_load(&hf, hfp, &is_hf, &err), DSV32_OK);
	assert_true(is_hf);
	assert_int_equal(dsv32_config_load(&ref, mp2, &is_hf, &err), DSV32_OK);
	assert_false(is_hf);
	assert_model_args_equal(&hf, &ref);
	assert_int_equal(dsv32_config_from_ref_json(&emb, ref_tiny, "ref", &err), DSV32_OK);
	assert_config_equal(&ref, &emb);
	assert_int_equal(dsv32_config_load(&hf, "/nonexistent/config.json", NULL, &err),
			 DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "/nonexistent/config.json"));
}

static void round_trip_hf(const dsv32_config *c)
{
	dsv32_config back;
	char *text = dsv32_config_to_hf_json(c);
	assert_non_null(text);
	assert_int_equal(dsv32_config_from_hf_json(&back, text, "round trip", NULL), DSV32_OK);
	/* max_batch_size is not in the HF form */
	back.max_batch_size = c->max_batch_size;
	assert_config_equal(c, &back);
	free(text);
}

static void round_trip_ref(const dsv32_config *c)
{
	dsv32_config back;
	char *text = dsv32_config_to_ref_json(c);
	assert_non_null(text);
	assert_int_equal(dsv32_config_from_ref_json(&back, text, "round trip", NULL), DSV32_OK);
	assert_model_args_equal(c, &back);
	assert_int_equal(back.max_batch_size, c->max_batch_size);
	free(text);
}

static void test_writers_round_trip(void **state)
{
	(void)state;
	dsv32_config c, r;
	assert_int_equal(dsv32_config_from_hf_json(&c, tiny_hf(), "tiny", NULL), DSV32_OK);
	round_trip_hf(&c);
	round_trip_ref(&c);
	assert_int_equal(dsv32_config_from_ref_json(&r, ref_tiny, "ref", NULL), DSV32_OK);
	round_trip_ref(&r);
	round_trip_hf(&r);
	/* cross form: HF -> reference text -> parse gives the same ModelArgs */
	char *t = dsv32_config_to_ref_json(&c);
	assert_int_equal(dsv32_config_from_ref_json(&r, t, "x", NULL), DSV32_OK);
	assert_model_args_equal(&c, &r);
	free(t);
	/* fp8, odd values, no YaRN, attention_factor, mscale_all_dim absent */
	c.dtype = DSV32_WDTYPE_FP8;
	c.has_quant = true;
	c.scale_fmt_ue8m0 = false;
	c.route_scale = 1.0 / 3.0;
	c.rms_norm_eps = 1e-5;
	c.has_attention_factor = true;
	c.attention_factor = 0.7071067811865476;
	c.mscale_all_dim = 0.0;
	c.norm_topk_prob = false;
	c.num_nextn_predict_layers = 1;
	round_trip_hf(&c);
	round_trip_ref(&c);
	c.rope_yarn = false; /* without rope_scaling its sub-fields take their defaults */
	c.original_seq_len = c.max_position_embeddings;
	c.mscale_all_dim = 1.0;
	c.has_attention_factor = false;
	c.attention_factor = 1.0;
	round_trip_hf(&c);
	/* every preset */
	for (size_t i = 0; i < dsv32_preset_count(); i++) {
		assert_int_equal(dsv32_config_from_hf_json(&c, dsv32_preset_find(dsv32_preset_name(i)),
							   "preset", NULL),
				 DSV32_OK);
		round_trip_hf(&c);
		round_trip_ref(&c);
	}
}

static void test_rope_parameters_form_equals_rope_scaling_form(void **state)
{
	(void)state;
	cJSON *o = cJSON_Parse(tiny_hf());
	cJSON *rs = cJSON_DetachItemFromObject(o, "rope_scaling");
	cJSON_DeleteItemFromObject(o, "rope_theta");
	cJSON_DeleteItemFromObject(rs, "type");
	cJSON_AddStringToObject(rs, "rope_type", "yarn");
	cJSON_AddNumberToObject(rs, "rope_theta", 10000.0);
	cJSON_AddItemToObject(o, "rope_parameters", rs);
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	dsv32_config a, b;
	assert_int_equal(dsv32_config_from_hf_json(&a, text, "v5", NULL), DSV32_OK);
	assert_int_equal(dsv32_config_from_hf_json(&b, tiny_hf(), "v4", NULL), DSV32_OK);
	assert_config_equal(&a, &b);
	free(text);
}

static void test_hf_max_seq_len_rule(void **state)
{
	(void)state;
	dsv32_config c;
	cJSON *o = cJSON_Parse(tiny_hf());
	cJSON_DeleteItemFromObject(o, "max_position_embeddings");
	char *text = cJSON_Print(o);
	assert_int_equal(dsv32_config_from_hf_json(&c, text, "x", NULL), DSV32_OK);
	assert_int_equal(c.max_position_embeddings, 163840); /* HF default */
	assert_int_equal(c.max_seq_len, 16384);               /* ModelArgs default */
	free(text);
	cJSON_AddNumberToObject(o, "max_position_embeddings", 100);
	cJSON_DeleteItemFromObject(o, "rope_scaling");
	text = cJSON_Print(o);
	assert_int_equal(dsv32_config_from_hf_json(&c, text, "x", NULL), DSV32_OK);
	assert_int_equal(c.max_seq_len, 100);
	assert_false(c.rope_yarn);
	assert_false(dsv32_config_ref_yarn_on(&c)); /* original = max_position_embeddings */
	free(text);
	cJSON_Delete(o);
}

/* Parse the tiny HF config with `key` removed (value NULL) or replaced by the JSON `value`;
 * expect status `want` and `needle` in the message (parse or validate). */
static void expect_hf_error(const char *key, const char *value, dsv32_status want,
			    const char *needle)
{
	cJSON *o = cJSON_Parse(tiny_hf());
	if (strchr(key, '.')) { /* one level of nesting: "rope_scaling.type" */
		char parent[64];
		snprintf(parent, sizeof parent, "%.*s", (int)(strchr(key, '.') - key), key);
		cJSON *p = cJSON_GetObjectItem(o, parent);
		if (!p) {
			p = cJSON_AddObjectToObject(o, parent);
			cJSON_AddStringToObject(p, "quant_method", "fp8");
		}
		cJSON_DeleteItemFromObject(p, strchr(key, '.') + 1);
		if (value)
			cJSON_AddItemToObject(p, strchr(key, '.') + 1, cJSON_Parse(value));
	} else {
		cJSON_DeleteItemFromObject(o, key);
		if (value)
			cJSON_AddItemToObject(o, key, cJSON_Parse(value));
	}
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	dsv32_config c;
	dsv32_error err = {0};
	dsv32_status st = dsv32_config_from_hf_json(&c, text, "cfg.json", &err);
	if (st == DSV32_OK)
		st = dsv32_config_validate(&c, 0, &err);
	free(text);
	if (st != want || !strstr(err.what, needle))
		fail_msg("%s=%s: status %d '%s', expected %d with '%s'", key, value ? value : "(none)",
			 st, err.what, want, needle);
}

static void test_each_missing_required_hf_field_is_named(void **state)
{
	(void)state;
	static const char *required[] = {
		"vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
		"num_hidden_layers", "num_attention_heads", "n_shared_experts", "n_routed_experts",
		"routed_scaling_factor", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
		"qk_nope_head_dim", "v_head_dim", "n_group", "topk_group", "num_experts_per_tok",
		"first_k_dense_replace", "index_n_heads", "index_head_dim", "index_topk"};
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		char needle[96];
		snprintf(needle, sizeof needle, "cfg.json: %s: required field missing", required[i]);
		expect_hf_error(required[i], NULL, DSV32_E_FORMAT, needle);
	}
	expect_hf_error("rope_scaling.factor", NULL, DSV32_E_FORMAT, "rope_scaling.factor");
	expect_hf_error("rope_scaling.original_max_position_embeddings", NULL, DSV32_E_FORMAT,
			"rope_scaling.original_max_position_embeddings");
	expect_hf_error("rope_scaling.type", NULL, DSV32_E_FORMAT, "rope_scaling.type");
}

static void test_each_invalid_value_is_named(void **state)
{
	(void)state;
	const dsv32_status F = DSV32_E_FORMAT, U = DSV32_E_UNSUPPORTED;
	expect_hf_error("n_group", "3", F, "n_routed_experts: 16 not divisible by n_expert_groups 3");
	expect_hf_error("index_head_dim", "96", F, "index_head_dim: 96 is not a power of two");
	expect_hf_error("index_head_dim", "64", F, "index_head_dim: 64 not divisible");
	expect_hf_error("qk_rope_head_dim", "63", F, "qk_rope_head_dim: 63, expected an even size");
	expect_hf_error("qk_rope_head_dim", "258", F, "qk_rope_head_dim: 258, expected an even size "
			"up to 256 (RoPE)");
	expect_hf_error("index_head_dim", "8192", F, "index_head_dim: 8192 exceeds 4096 (the "
			"Hadamard transform's limit)");
	expect_hf_error("qk_rope_head_dim", "256", F, "qk_rope_head_dim: 256 exceeds index_head_dim");
	expect_hf_error("topk_group", "5", F, "n_limited_groups: 5 exceeds n_expert_groups 4");
	expect_hf_error("num_experts_per_tok", "9", F, "n_activated_experts: 9 exceeds");
	expect_hf_error("num_experts_per_tok", "0", F, "n_activated_experts: 0, must be >= 1");
	expect_hf_error("first_k_dense_replace", "4", F, "n_dense_layers: 4 exceeds n_layers 3");
	expect_hf_error("hidden_size", "0", F, "dim: 0, must be >= 1");
	expect_hf_error("hidden_size", "256.5", F, "hidden_size: 256.5 is not an integer");
	expect_hf_error("vocab_size", "\"1024\"", F, "vocab_size: expected a number");
	expect_hf_error("kv_lora_rank", "100", F, "kv_lora_rank: 100 not divisible");
	expect_hf_error("q_lora_rank", "0", F, "q_lora_rank: 0, must be >= 1");
	expect_hf_error("index_topk", "0", F, "index_topk: 0");
	expect_hf_error("n_routed_experts", "4", F, "n_expert_groups: 4 leaves 1 expert per group");
	expect_hf_error("rms_norm_eps", "0", F, "rms_norm_eps: 0");
	expect_hf_error("scoring_func", "\"relu\"", F, "scoring_func");
	expect_hf_error("num_key_value_heads", "2", F, "num_key_value_heads: 2");
	expect_hf_error("rope_scaling.type", "\"linear\"", U, "rope_scaling.type: \"linear\"");
	expect_hf_error("rope_scaling.beta_fast", "0.5", F, "beta_fast: 0.5 must exceed beta_slow");
	expect_hf_error("quantization_config.weight_block_size", "[64, 64]", U,
			"weight_block_size: [64, 64]");
	expect_hf_error("quantization_config.quant_method", "\"awq\"", U,
			"quantization_config.quant_method");
	expect_hf_error("quantization_config.scale_fmt", "\"e8m0\"", U,
			"quantization_config.scale_fmt");
	dsv32_config c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_hf_json(&c, "{\"hidden_size\": ", "bad.json", &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "bad.json: invalid JSON at line 1, column 17"));
	assert_int_equal(dsv32_config_from_hf_json(&c, "[1]", "arr.json", &err), DSV32_E_FORMAT);
}

static void test_reference_form_rules(void **state)
{
	(void)state;
	dsv32_config c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_ref_json(&c, "{\"dim\": 256, \"n_experts\": 4}", "r.json",
						    &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "r.json: n_experts: not a ModelArgs field"));
	assert_int_equal(dsv32_config_from_ref_json(&c, "{\"dtype\": \"fp16\"}", "r.json", &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "dtype"));
	assert_int_equal(dsv32_config_from_ref_json(&c, "{\"score_func\": 1}", "r.json", &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "score_func"));
	/* missing keys take the ModelArgs defaults (a small model), which has q_lora_rank 0 */
	assert_int_equal(dsv32_config_from_ref_json(&c, "{\"scale_fmt\": null}", "r.json", &err),
			 DSV32_OK);
	assert_int_equal(c.dim, 2048);
	assert_int_equal(c.n_routed_experts, 64);
	assert_int_equal(c.score_func, DSV32_SCORE_SOFTMAX);
	assert_false(c.scale_fmt_ue8m0);
	assert_int_equal(dsv32_config_validate(&c, 0, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "q_lora_rank: 0"));
}

static void test_presets_validate(void **state)
{
	(void)state;
	for (size_t i = 0; i < dsv32_preset_count(); i++) {
		dsv32_config c;
		dsv32_error err = {0};
		const char *name = dsv32_preset_name(i);
		assert_int_equal(dsv32_config_from_hf_json(&c, dsv32_preset_find(name), name, &err),
				 DSV32_OK);
		if (dsv32_config_validate(&c, 1, &err) != DSV32_OK)
			fail_msg("preset %s: %s", name, err.what);
		c.dtype = DSV32_WDTYPE_FP8;
		c.has_quant = true;
		if (dsv32_config_validate(&c, 1, &err) != DSV32_OK)
			fail_msg("preset %s fp8: %s", name, err.what);
		assert_true(c.rope_yarn && dsv32_config_ref_yarn_on(&c));
		assert_true(c.n_dense_layers >= 1 && c.n_layers > c.n_dense_layers);
		assert_true(c.n_expert_groups > 1 && c.n_shared_experts >= 1);
	}
	assert_null(dsv32_preset_find("huge"));
}

static void test_tensor_parallel_divisibility(void **state)
{
	(void)state;
	dsv32_config c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_hf_json(&c, tiny_hf(), "tiny", &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&c, 2, &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&c, 4, &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&c, 3, &err), DSV32_E_FORMAT);
	assert_string_equal(err.what, "n_heads: 4 not divisible by world size 3");
	assert_int_equal(dsv32_config_validate(&c, 8, &err), DSV32_E_FORMAT);
	assert_string_equal(err.what, "n_heads: 4 not divisible by world size 8");
	assert_int_equal(dsv32_config_validate(&c, -1, &err), DSV32_E_USAGE);
	/* fp8: the shared expert (128 rows) cannot split into 128-row scale blocks over 2 ranks */
	c.dtype = DSV32_WDTYPE_FP8;
	assert_int_equal(dsv32_config_validate(&c, 1, &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&c, 2, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "moe_inter_dim*n_shared_experts/world_size (shared expert scale split): 64"));
	/* real width: mp in {1, 2, 4, 8, 16} with fp8, 32 fails on the 16 experts */
	assert_int_equal(dsv32_config_from_hf_json(&c, dsv32_preset_find("real-width"), "rw", &err),
			 DSV32_OK);
	c.dtype = DSV32_WDTYPE_FP8;
	for (int w = 1; w <= 16; w *= 2)
		assert_int_equal(dsv32_config_validate(&c, w, &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&c, 32, &err), DSV32_E_FORMAT);
	assert_string_equal(err.what, "n_routed_experts: 16 not divisible by world size 32");
	c.n_routed_experts = 64;
	c.n_heads = 96;
	c.vocab_size = 129281;
	assert_int_equal(dsv32_config_validate(&c, 1, &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate(&c, 2, &err), DSV32_E_FORMAT);
	assert_string_equal(err.what, "vocab_size: 129281 not divisible by world size 2");
	c.vocab_size = 129280;
	c.inter_dim = 18432 + 128; /* 18560 = 145 blocks: /2 = 9280, not a multiple of 128 */
	assert_int_equal(dsv32_config_validate(&c, 2, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "inter_dim/world_size (dense w1/w2/w3 scale split): 9280"));
}

/* The tiny HF config text with the number after the first "key": replaced by value (the
 * test writes the text itself: cJSON would print 2^53 + 1 back as another number). */
static char *hf_with_number(const char *key, const char *value)
{
	const char *t = tiny_hf();
	char pat[96];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *at = strstr(t, pat);
	assert_non_null(at);
	const char *v = at + strlen(pat) + strspn(at + strlen(pat), " \t");
	const char *end = v + strspn(v, "0123456789.eE+-");
	char *out = malloc(strlen(t) + strlen(value) + 1);
	assert_non_null(out);
	sprintf(out, "%.*s%s%s", (int)(v - t), t, value, end);
	return out;
}

/* 2^53 + 1 reads back as 2^53: the reason given is representability, not "not an integer". */
static void test_integers_from_2p53_are_not_representable(void **state)
{
	(void)state;
	const struct {
		const char *key, *value, *needle;
	} cases[] = {
		{"hidden_size", "9007199254740993",
		 "cfg.json: hidden_size: 9007199254740992 is not exactly representable (>= 2^53"},
		{"hidden_size", "-9007199254740993", "hidden_size: -9007199254740992 is not exactly"},
		{"hidden_size", "1e300", "hidden_size: 1.0000000000000001e+300 is not exactly"},
		{"original_max_position_embeddings", "9007199254740993",
		 "rope_scaling.original_max_position_embeddings: 9007199254740992 is not exactly"},
		{"hidden_size", "256.5", "hidden_size: 256.5 is not an integer"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = hf_with_number(cases[i].key, cases[i].value);
		dsv32_config c;
		dsv32_error err = {0};
		dsv32_status st = dsv32_config_from_hf_json(&c, text, "cfg.json", &err);
		free(text);
		if (st != DSV32_E_FORMAT || !strstr(err.what, cases[i].needle))
			fail_msg("%s=%s: status %d '%s', expected '%s'", cases[i].key, cases[i].value,
				 st, err.what, cases[i].needle);
	}
	/* 2^53 - 1 is exact: accepted by the parser (validation bounds it later) */
	char *text = hf_with_number("hidden_size", "9007199254740991");
	dsv32_config c;
	assert_int_equal(dsv32_config_from_hf_json(&c, text, "cfg.json", NULL), DSV32_OK);
	assert_true(c.dim == INT64_C(9007199254740991));
	free(text);
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_ref_json(&c, "{\"dim\": 9007199254740993}", "r.json",
						    &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "r.json: dim: 9007199254740992 is not exactly"));
}

/* cJSON keeps the first of two equal keys, Python's json the last: both forms refuse them,
 * naming the file and the key, wherever in the tree they are. */
static void test_duplicate_keys_are_refused(void **state)
{
	(void)state;
	dsv32_config c;
	dsv32_error err = {0};
	char *text = malloc(strlen(tiny_hf()) + 64);
	assert_non_null(text);
	sprintf(text, "{\"hidden_size\": 128, %s", strchr(tiny_hf(), '{') + 1);
	assert_int_equal(dsv32_config_from_hf_json(&c, text, "cfg.json", &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "cfg.json: duplicate key \"hidden_size\" at the top level"));
	free(text);
	assert_int_equal(dsv32_config_from_hf_json(&c, "{\"rope_scaling\": {\"factor\": 1, "
						   "\"factor\": 40}}", "cfg.json", &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "duplicate key \"factor\" in rope_scaling"));
	assert_int_equal(dsv32_config_from_ref_json(&c, "{\"dim\": 256, \"dim\": 512}", "r.json",
						    &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "r.json: duplicate key \"dim\""));
}

/* The check inspect runs names the file and the key as the file spells it (hidden_size, not the
 * reference field dim the validator checks). */
static void test_validate_file_names_the_hf_key(void **state)
{
	(void)state;
	dsv32_config c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_hf_json(&c, tiny_hf(), "cfg.json", &err), DSV32_OK);
	assert_int_equal(dsv32_config_validate_file(&c, true, 0, "cfg.json", &err), DSV32_OK);
	c.dim = 0;
	assert_int_equal(dsv32_config_validate_file(&c, true, 0, "cfg.json", &err), DSV32_E_FORMAT);
	assert_string_equal(err.what, "cfg.json: invalid config: hidden_size: 0, must be >= 1");
	assert_int_equal(dsv32_config_validate_file(&c, false, 0, "ref.json", &err), DSV32_E_FORMAT);
	assert_string_equal(err.what, "ref.json: invalid config: dim: 0, must be >= 1");
	c.dim = 256;
	c.rms_norm_eps = -1;
	assert_int_equal(dsv32_config_validate_file(&c, true, 0, "cfg.json", &err), DSV32_E_FORMAT);
	assert_string_equal(err.what,
			    "cfg.json: invalid config: rms_norm_eps: -1, must be positive and finite");
	c.rms_norm_eps = 1e-6;
	c.n_expert_groups = 3; /* a message about two fields keeps the validator's wording */
	assert_int_equal(dsv32_config_validate_file(&c, true, 0, "cfg.json", &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "cfg.json: invalid config: n_routed_experts: 16 not "
				   "divisible by n_expert_groups 3"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_hf_and_ref_configs_agree),
		cmocka_unit_test(test_golden_files_load_with_form_detection),
		cmocka_unit_test(test_writers_round_trip),
		cmocka_unit_test(test_rope_parameters_form_equals_rope_scaling_form),
		cmocka_unit_test(test_hf_max_seq_len_rule),
		cmocka_unit_test(test_each_missing_required_hf_field_is_named),
		cmocka_unit_test(test_each_invalid_value_is_named),
		cmocka_unit_test(test_reference_form_rules),
		cmocka_unit_test(test_presets_validate),
		cmocka_unit_test(test_tensor_parallel_divisibility),
		cmocka_unit_test(test_integers_from_2p53_are_not_representable),
		cmocka_unit_test(test_duplicate_keys_are_refused),
		cmocka_unit_test(test_validate_file_names_the_hf_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
