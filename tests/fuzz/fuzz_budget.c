/* fuzz_budget.c: libFuzzer target for budget files (dsv32_budget_parse, compare/budget.h). An
 * accepted budget is applied to one tap result of each kind (dense, set, logits; finite values)
 * so the fnmatch patterns and metric look-ups run on hostile rules. */
#include <stdint.h>

#include "compare/budget.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	dsv32_budget b;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_budget_parse(&b, text, "fuzz/budget.json", &err);
	fuzz_check_err(rc, &err, "dsv32_budget_parse");
	free(text);
	if (rc != DSV32_OK) {
		if (b.rules || b.n_rules)
			abort(); /* a failed parse leaves an empty budget */
		return 0;
	}
	static const char *const names[] = {"layers.0.attn.out", "layers.12.indexer.topk",
					    "logits"};
	for (int k = 0; k < DSV32_FAMILY_COUNT; k++) {
		dsv32_tap_result t;
		memset(&t, 0, sizeof t);
		snprintf(t.name, sizeof t.name, "%s", names[k]);
		t.family = (dsv32_metric_family)k;
		t.mode = (dsv32_drift_mode)(k % DSV32_DRIFTMODE_COUNT);
		t.dense.rel_l2 = 0.01;
		t.dense.cosine = 0.999;
		t.set.rows = 2;
		t.set.recall = 0.5;
		dsv32_budget_apply(&b, &t);
		if (memchr(t.budget_note, '\0', sizeof t.budget_note) == NULL)
			abort();
		double v;
		for (int r = 0; r < b.n_rules; r++)
			for (int j = 0; j < b.rules[r].n_limits; j++)
				(void)dsv32_tap_metric(&t, b.rules[r].limits[j].metric, &v);
	}
	dsv32_budget_free(&b);
	return 0;
}
