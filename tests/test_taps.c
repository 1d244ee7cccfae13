/* test_taps.c: the tap grammar of core/taps.h: names, kinds, order, and that the table is the
 * order docs/tap-format.md promises for first divergences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/taps.h"

static void test_layer_order_is_documented(void **state)
{
	(void)state;
	/* docs/tap-format.md "What compare refuses": the tap's place in the layer */
	static const char *const doc[] = {"attn_norm", "attn.q_latent", "attn.kv_latent",
					  "attn.q_rope", "attn.k_rope", "indexer.scores",
					  "indexer.topk", "attn.out", "attn_residual", "ffn_norm",
					  "moe.experts", "moe.weights", "ffn.out", "an.extra", "out"};
	for (size_t i = 1; i < sizeof doc / sizeof doc[0]; i++)
		assert_true(dsv32_layer_op_rank(doc[i - 1]) < dsv32_layer_op_rank(doc[i]));
}

static void test_names_round_trip(void **state)
{
	(void)state;
	char buf[64];
	for (int t = 0; t < DSV32_LTAP_COUNT; t++) {
		dsv32_layer_tap_name(buf, sizeof buf, 17, (dsv32_layer_tap)t);
		int layer;
		char op[64];
		dsv32_tap_split_name(buf, &layer, op, sizeof op);
		assert_int_equal(layer, 17);
		assert_string_equal(op, dsv32_layer_tap_op((dsv32_layer_tap)t));
		assert_int_equal(dsv32_layer_tap_find(op), t);
	}
	assert_string_equal(dsv32_layer_tap_name(buf, sizeof buf, 3, DSV32_LTAP_Q_ROPE),
			    "layers.3.attn.q_rope");
	assert_string_equal(dsv32_model_tap_name(DSV32_MTAP_EMBED), "embed");
	int layer;
	char op[64];
	dsv32_tap_split_name("logits", &layer, op, sizeof op);
	assert_int_equal(layer, -1);
	assert_string_equal(op, "logits");
	dsv32_tap_split_name("layers.x.out", &layer, op, sizeof op); /* not a layer number */
	assert_int_equal(layer, -1);
}

static void test_kinds(void **state)
{
	(void)state;
	assert_int_equal(dsv32_tap_class_of("layers.0.indexer.topk"), DSV32_TAPC_INDEX_SET);
	assert_int_equal(dsv32_tap_class_of("layers.2.moe.experts"), DSV32_TAPC_INDEX_SET);
	assert_int_equal(dsv32_tap_class_of("layers.2.moe.weights"), DSV32_TAPC_ROUTE_WEIGHTS);
	assert_int_equal(dsv32_tap_class_of("layers.1.indexer.scores"), DSV32_TAPC_MASKED_SCORES);
	assert_int_equal(dsv32_tap_class_of("layers.1.my.scores"), DSV32_TAPC_MASKED_SCORES);
	assert_int_equal(dsv32_tap_class_of("layers.1.attn.out"), DSV32_TAPC_DENSE);
	assert_int_equal(dsv32_tap_class_of("layers.1.something_new"), DSV32_TAPC_DENSE);
	assert_int_equal(dsv32_tap_class_of("logits"), DSV32_TAPC_LOGITS);
	assert_int_equal(dsv32_tap_class_of("embed"), DSV32_TAPC_DENSE);
	assert_true(dsv32_tap_is_input("input_ids"));
	assert_true(dsv32_tap_is_input("position_ids"));
	assert_false(dsv32_tap_is_input("layers.0.input_ids")); /* a layer's op, not a step input */
	assert_false(dsv32_tap_is_input("embed"));
}

/* Each selection is paired with the scores it is the top-k of (DSV32_SELECTION_TAPS), both
 * ways, and nothing else is; only the indexer's masked picks do nothing. */
static void test_selections_pair_with_their_scores(void **state)
{
	(void)state;
	assert_int_equal(dsv32_layer_tap_scores_of(DSV32_LTAP_INDEXER_TOPK), DSV32_LTAP_INDEXER_SCORES);
	assert_int_equal(dsv32_layer_tap_scores_of(DSV32_LTAP_MOE_EXPERTS), DSV32_LTAP_MOE_SCORES);
	assert_int_equal(dsv32_layer_tap_selection_of(DSV32_LTAP_INDEXER_SCORES), DSV32_LTAP_INDEXER_TOPK);
	assert_int_equal(dsv32_layer_tap_selection_of(DSV32_LTAP_MOE_SCORES), DSV32_LTAP_MOE_EXPERTS);
	/* the router's selection has a group stage; the indexer's has none */
	assert_int_equal(dsv32_layer_tap_group_scores_of(DSV32_LTAP_MOE_EXPERTS),
			 DSV32_LTAP_MOE_GROUP_SCORES);
	assert_int_equal(dsv32_layer_tap_group_scores_of(DSV32_LTAP_INDEXER_TOPK), -1);
	assert_int_equal(dsv32_layer_tap_group_selection_of(DSV32_LTAP_MOE_GROUP_SCORES),
			 DSV32_LTAP_MOE_EXPERTS);
	assert_int_equal(dsv32_layer_tap_group_selection_of(DSV32_LTAP_MOE_SCORES), -1);
	assert_int_equal(dsv32_tap_class_of("layers.3.moe.group_scores"), DSV32_TAPC_MASKED_SCORES);
	int sets = 0;
	for (int t = 0; t < DSV32_LTAP_COUNT; t++) {
		int sc = dsv32_layer_tap_scores_of((dsv32_layer_tap)t);
		if (sc < 0)
			continue;
		sets++;
		/* a selection is an index set, its scores are masked scores */
		char name[64];
		assert_int_equal(dsv32_tap_class_of(dsv32_layer_tap_name(name, sizeof name, 2,
									 (dsv32_layer_tap)t)),
				 DSV32_TAPC_INDEX_SET);
		assert_int_equal(dsv32_tap_class_of(dsv32_layer_tap_name(name, sizeof name, 2,
									 (dsv32_layer_tap)sc)),
				 DSV32_TAPC_MASKED_SCORES);
	}
	assert_int_equal(sets, 2);
	assert_int_equal(dsv32_layer_tap_scores_of(DSV32_LTAP_ATTN_OUT), -1);
	assert_int_equal(dsv32_layer_tap_selection_of(DSV32_LTAP_ATTN_SCORES), -1);
	assert_true(dsv32_layer_tap_masked_picks_unused(DSV32_LTAP_INDEXER_TOPK));
	assert_false(dsv32_layer_tap_masked_picks_unused(DSV32_LTAP_MOE_EXPERTS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layer_order_is_documented),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_selections_pair_with_their_scores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
