/* test_namemap.c: the HF <-> reference name map, split dims, expert owners and rank slices
 * against docs/spec/checkpoints.md §6.3, §6.4 and §8 (expected values written from the spec). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "convert/namemap.h"

typedef struct {
	const char *hf, *ref;
	dsv32_split split;
	int64_t layer, expert;
} name_case;

/* docs/spec/checkpoints.md §6.3 (full table) with §6.2's split dims and §8.3's experts. */
static const name_case cases[] = {
	{"model.embed_tokens.weight", "embed.weight", DSV32_SPLIT_DIM0, -1, -1},
	{"lm_head.weight", "head.weight", DSV32_SPLIT_DIM0, -1, -1},
	{"model.norm.weight", "norm.weight", DSV32_SPLIT_NONE, -1, -1},
	{"model.layers.0.input_layernorm.weight", "layers.0.attn_norm.weight", DSV32_SPLIT_NONE, 0, -1},
	{"model.layers.60.post_attention_layernorm.weight", "layers.60.ffn_norm.weight",
	 DSV32_SPLIT_NONE, 60, -1},
	{"model.layers.7.self_attn.q_a_proj.weight", "layers.7.attn.wq_a.weight", DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.q_a_proj.weight_scale_inv", "layers.7.attn.wq_a.scale",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.q_a_layernorm.weight", "layers.7.attn.q_norm.weight",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.q_b_proj.weight", "layers.7.attn.wq_b.weight", DSV32_SPLIT_DIM0, 7, -1},
	{"model.layers.7.self_attn.q_b_proj.weight_scale_inv", "layers.7.attn.wq_b.scale",
	 DSV32_SPLIT_DIM0, 7, -1},
	{"model.layers.7.self_attn.kv_a_proj_with_mqa.weight", "layers.7.attn.wkv_a.weight",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.kv_a_layernorm.weight", "layers.7.attn.kv_norm.weight",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.kv_b_proj.weight_scale_inv", "layers.7.attn.wkv_b.scale",
	 DSV32_SPLIT_DIM0, 7, -1},
	{"model.layers.7.self_attn.o_proj.weight", "layers.7.attn.wo.weight", DSV32_SPLIT_DIM1, 7, -1},
	{"model.layers.7.self_attn.o_proj.weight_scale_inv", "layers.7.attn.wo.scale", DSV32_SPLIT_DIM1,
	 7, -1},
	{"model.layers.7.self_attn.indexer.wq_b.weight", "layers.7.attn.indexer.wq_b.weight",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.indexer.wq_b.weight_scale_inv", "layers.7.attn.indexer.wq_b.scale",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.indexer.wk.weight", "layers.7.attn.indexer.wk.weight",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.indexer.k_norm.weight", "layers.7.attn.indexer.k_norm.weight",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.indexer.k_norm.bias", "layers.7.attn.indexer.k_norm.bias",
	 DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.7.self_attn.indexer.weights_proj.weight",
	 "layers.7.attn.indexer.weights_proj.weight", DSV32_SPLIT_NONE, 7, -1},
	{"model.layers.1.mlp.gate_proj.weight", "layers.1.ffn.w1.weight", DSV32_SPLIT_DIM0, 1, -1},
	{"model.layers.1.mlp.up_proj.weight_scale_inv", "layers.1.ffn.w3.scale", DSV32_SPLIT_DIM0, 1, -1},
	{"model.layers.1.mlp.down_proj.weight", "layers.1.ffn.w2.weight", DSV32_SPLIT_DIM1, 1, -1},
	{"model.layers.3.mlp.gate.weight", "layers.3.ffn.gate.weight", DSV32_SPLIT_NONE, 3, -1},
	{"model.layers.3.mlp.gate.e_score_correction_bias", "layers.3.ffn.gate.bias", DSV32_SPLIT_NONE,
	 3, -1},
	{"model.layers.3.mlp.experts.255.gate_proj.weight", "layers.3.ffn.experts.255.w1.weight",
	 DSV32_SPLIT_EXPERT, 3, 255},
	{"model.layers.3.mlp.experts.0.up_proj.weight_scale_inv", "layers.3.ffn.experts.0.w3.scale",
	 DSV32_SPLIT_EXPERT, 3, 0},
	{"model.layers.3.mlp.experts.10.down_proj.weight", "layers.3.ffn.experts.10.w2.weight",
	 DSV32_SPLIT_EXPERT, 3, 10},
	{"model.layers.3.mlp.shared_experts.gate_proj.weight", "layers.3.ffn.shared_experts.w1.weight",
	 DSV32_SPLIT_DIM0, 3, -1},
	{"model.layers.3.mlp.shared_experts.up_proj.weight", "layers.3.ffn.shared_experts.w3.weight",
	 DSV32_SPLIT_DIM0, 3, -1},
	{"model.layers.3.mlp.shared_experts.down_proj.weight_scale_inv",
	 "layers.3.ffn.shared_experts.w2.scale", DSV32_SPLIT_DIM1, 3, -1},
};

static void test_namemap_table_both_directions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const name_case *c = &cases[i];
		char out[DSV32_NAME_MAX];
		dsv32_name_info info;
		dsv32_error err = {0};
		assert_int_equal(dsv32_name_hf_to_ref(c->hf, 61, out, sizeof out, &info, &err), DSV32_OK);
		assert_string_equal(out, c->ref);
		assert_int_equal(info.split, c->split);
		assert_int_equal(info.layer, c->layer);
		assert_int_equal(info.expert, c->expert);
		assert_false(info.dropped);
		assert_int_equal(dsv32_name_ref_to_hf(c->ref, out, sizeof out, &info, &err), DSV32_OK);
		assert_string_equal(out, c->hf);
		assert_int_equal(info.split, c->split);
		assert_int_equal(info.expert, c->expert);
	}
}

static void test_namemap_mtp_layers_are_dropped(void **state)
{
	(void)state;
	char out[DSV32_NAME_MAX] = "x";
	dsv32_name_info info;
	/* Layer 61 of the released model: known and unknown module names alike. */
	assert_int_equal(dsv32_name_hf_to_ref("model.layers.61.eh_proj.weight", 61, out, sizeof out,
					      &info, NULL), DSV32_OK);
	assert_true(info.dropped);
	assert_string_equal(out, "");
	assert_int_equal(dsv32_name_hf_to_ref("model.layers.3.self_attn.o_proj.weight", 3, out,
					      sizeof out, &info, NULL), DSV32_OK);
	assert_true(info.dropped);
	/* Not dropped below n_layers, nor when n_layers is unknown (0): then eh_proj is unknown. */
	assert_int_equal(dsv32_name_hf_to_ref("model.layers.61.eh_proj.weight", 0, out, sizeof out,
					      &info, NULL), DSV32_E_NOTFOUND);
}

static void test_namemap_unknown_names_are_errors(void **state)
{
	(void)state;
	static const char *bad_hf[] = {
		"model.layers.0.self_attn.q_b_proj.bias", /* module known, parameter not */
		"model.layers.0.self_attn.rotary_emb.inv_freq",
		"model.layers.01.input_layernorm.weight", /* leading zero */
		"model.layers.x.input_layernorm.weight",
		"model.layers.0.input_layernorm.weight_scale_inv",
		"model.layers.0.mlp.experts.3.gate_proj", /* no parameter: module as parameter */
		"embed_tokens.weight",
		"weight",
		"",
		"layers.0.attn.wq_b.weight", /* a reference name is not an HF one */
	};
	for (size_t i = 0; i < sizeof bad_hf / sizeof bad_hf[0]; i++) {
		char out[DSV32_NAME_MAX];
		dsv32_error err = {0};
		assert_int_equal(dsv32_name_hf_to_ref(bad_hf[i], 61, out, sizeof out, NULL, &err),
				 DSV32_E_NOTFOUND);
		assert_non_null(strstr(err.what, "not a tensor name"));
	}
	char out[DSV32_NAME_MAX];
	assert_int_equal(dsv32_name_ref_to_hf("layers.0.attn.wq_b.weight_scale_inv", out, sizeof out,
					      NULL, NULL), DSV32_E_NOTFOUND);
	assert_int_equal(dsv32_name_ref_to_hf("layers.0.attn.indexer.k_norm.scale", out, sizeof out,
					      NULL, NULL), DSV32_E_NOTFOUND);
	assert_int_equal(dsv32_name_ref_to_hf("model.layers.0.attn_norm.weight", out, sizeof out, NULL,
					      NULL), DSV32_E_NOTFOUND);
	/* Too small an output buffer is a usage error, not a silent truncation. */
	char tiny[8];
	assert_int_equal(dsv32_name_ref_to_hf("layers.0.attn_norm.weight", tiny, sizeof tiny, NULL,
					      NULL), DSV32_E_USAGE);
}

static void test_namemap_expert_owner_follows_convert_py(void **state)
{
	(void)state;
	/* §8.3: 256 experts, mp 8: 32 per rank. */
	assert_int_equal(dsv32_expert_owner(0, 256, 8), 0);
	assert_int_equal(dsv32_expert_owner(31, 256, 8), 0);
	assert_int_equal(dsv32_expert_owner(32, 256, 8), 1);
	assert_int_equal(dsv32_expert_owner(255, 256, 8), 7);
	assert_int_equal(dsv32_expert_owner(9, 16, 2), 1);
	assert_int_equal(dsv32_expert_owner(16, 16, 2), -1);
	assert_int_equal(dsv32_expert_owner(1, 16, 3), -1);
	dsv32_name_info e = {DSV32_SPLIT_EXPERT, 1, 5, false};
	assert_true(dsv32_rank_holds(&e, 1, 4, 16));
	assert_false(dsv32_rank_holds(&e, 0, 4, 16));
	dsv32_name_info r = {DSV32_SPLIT_NONE, 1, -1, false};
	assert_true(dsv32_rank_holds(&r, 3, 4, 16));
}

static void test_namemap_slices_match_spec_local_shapes(void **state)
{
	(void)state;
	dsv32_slice s;
	/* §8.5 wo (7168, 16384) F8 at mp 8, rank 3: (7168, 2048), columns 6144..8191 of each row. */
	int64_t wo[2] = {7168, 16384};
	assert_int_equal(dsv32_slice_for_rank(&s, "wo", DSV32_SPLIT_DIM1, DSV32_F8_E4M3, 2, wo, 3, 8,
					      NULL), DSV32_OK);
	assert_int_equal(s.shape[0], 7168);
	assert_int_equal(s.shape[1], 2048);
	assert_int_equal(s.runs, 7168);
	assert_int_equal(s.run_bytes, 2048);
	assert_int_equal(s.offset, 3 * 2048);
	assert_int_equal(s.stride, 16384);
	assert_int_equal(s.nbytes, 7168 * 2048);
	/* wo scale (56, 128) F32 splits the same way: (56, 16). */
	int64_t wos[2] = {56, 128};
	assert_int_equal(dsv32_slice_for_rank(&s, "wo.scale", DSV32_SPLIT_DIM1, DSV32_F32, 2, wos, 7, 8,
					      NULL), DSV32_OK);
	assert_int_equal(s.shape[1], 16);
	assert_int_equal(s.run_bytes, 16 * 4);
	assert_int_equal(s.offset, 7 * 16 * 4);
	/* embed (129280, 7168) BF16, mp 8 rank 1: one run of 16160 rows. */
	int64_t emb[2] = {129280, 7168};
	assert_int_equal(dsv32_slice_for_rank(&s, "embed", DSV32_SPLIT_DIM0, DSV32_BF16, 2, emb, 1, 8,
					      NULL), DSV32_OK);
	assert_int_equal(s.shape[0], 16160);
	assert_int_equal(s.runs, 1);
	assert_int_equal(s.offset, (uint64_t)16160 * 7168 * 2);
	assert_int_equal(s.nbytes, (uint64_t)16160 * 7168 * 2);
	/* Replicated: whole tensor. */
	int64_t n[1] = {7168};
	assert_int_equal(dsv32_slice_for_rank(&s, "norm", DSV32_SPLIT_NONE, DSV32_F32, 1, n, 5, 8, NULL),
			 DSV32_OK);
	assert_int_equal(s.nbytes, 7168 * 4);
	assert_int_equal(s.offset, 0);
	/* Not divisible: shared-expert w2 scale (56, 2) at mp 4 (§8.6). */
	int64_t sh[2] = {56, 2};
	dsv32_error err = {0};
	assert_int_equal(dsv32_slice_for_rank(&s, "layers.3.ffn.shared_experts.w2.scale",
					      DSV32_SPLIT_DIM1, DSV32_F32, 2, sh, 0, 4, &err),
			 DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "layers.3.ffn.shared_experts.w2.scale"));
	assert_non_null(strstr(err.what, "does not divide by world size 4"));
	/* Split dim 1 of a 1-D tensor. */
	assert_int_equal(dsv32_slice_for_rank(&s, "x", DSV32_SPLIT_DIM1, DSV32_F32, 1, n, 0, 2, NULL),
			 DSV32_E_SHAPE);
	int64_t full[2];
	int64_t loc[2] = {7168, 2048};
	assert_int_equal(dsv32_full_shape(full, "wo", DSV32_SPLIT_DIM1, 2, loc, 8, NULL), DSV32_OK);
	assert_int_equal(full[1], 16384);
	assert_int_equal(full[0], 7168);
}

static void test_namemap_shard_file_names(void **state)
{
	(void)state;
	char buf[64];
	int r, w;
	assert_true(dsv32_shard_file_name(buf, sizeof buf, 3, 8));
	assert_string_equal(buf, "model3-mp8.safetensors");
	assert_true(dsv32_shard_file_parse("model3-mp8.safetensors", &r, &w));
	assert_int_equal(r, 3);
	assert_int_equal(w, 8);
	assert_false(dsv32_shard_file_parse("model8-mp8.safetensors", &r, &w)); /* rank >= W */
	assert_false(dsv32_shard_file_parse("model0-mp2.safetensors.tmp", &r, &w));
	assert_false(dsv32_shard_file_parse("model-00001-of-00002.safetensors", &r, &w));
	assert_false(dsv32_shard_file_parse("model00-mp2.safetensors", &r, &w));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namemap_table_both_directions),
		cmocka_unit_test(test_namemap_mtp_layers_are_dropped),
		cmocka_unit_test(test_namemap_unknown_names_are_errors),
		cmocka_unit_test(test_namemap_expert_owner_follows_convert_py),
		cmocka_unit_test(test_namemap_slices_match_spec_local_shapes),
		cmocka_unit_test(test_namemap_shard_file_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
