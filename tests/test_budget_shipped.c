/* test_budget_shipped.c: the two shipped budgets (compare/budget_default.c, docs/budgets.md).
 *   - both parse, hold the same rules in the same order, and the fp8 one is nowhere tighter;
 *   - compare picks the budget from the checkpoint's weight format and names it in the report;
 *   - the fp8 budget is needed: ref vs hf on the tiny preset written with fp8 weights passes
 *     it but fails the bf16 one, first at a GEMM output the reference computes on fp8
 *     activations (q_latent, q_rope, k_rope, kv_latent).
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compare/budget.h"
#include "core/fsutil.h"
#include "tests/support/test_common.h"

static char dir[64];
static const char *cli;

static int setup(void **state)
{
	(void)state;
	static const char *const fx[] = {"bf16", "", "fp8", "--dtype fp8", NULL};
	return tc_cli_fixture_dir(&cli, "budget", dir, sizeof dir, fx);
}

static int teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

static void parse_shipped(bool fp8, dsv32_budget *b)
{
	char *json = dsv32_default_budget_json(fp8);
	assert_non_null(json);
	dsv32_error err = {0};
	dsv32_status rc = dsv32_budget_parse(b, json, fp8 ? "fp8" : "bf16", &err);
	free(json);
	if (rc != DSV32_OK)
		fail_msg("shipped budget (%s): %s", fp8 ? "fp8" : "bf16", err.what);
}

static void test_fp8_budget_has_the_same_rules_and_is_nowhere_tighter(void **state)
{
	(void)state;
	dsv32_budget a, b;
	parse_shipped(false, &a);
	parse_shipped(true, &b);
	assert_int_equal(a.n_rules, b.n_rules);
	assert_true(a.n_rules > 5);
	int wider = 0;
	for (int i = 0; i < a.n_rules; i++) {
		const dsv32_budget_rule *x = &a.rules[i], *y = &b.rules[i];
		assert_string_equal(x->pattern, y->pattern);
		assert_int_equal(x->mode, y->mode);
		assert_int_equal(x->n_limits, y->n_limits);
		for (int k = 0; k < x->n_limits; k++) {
			const dsv32_budget_limit *l = &x->limits[k], *m = &y->limits[k];
			assert_string_equal(l->metric, m->metric);
			assert_int_equal(l->is_min, m->is_min);
			if (l->is_min)
				assert_true(m->value <= l->value);
			else
				assert_true(m->value >= l->value);
			wider += m->value != l->value;
		}
	}
	assert_true(wider >= 4); /* q_latent, q_rope, k_rope, kv_latent at least */
	dsv32_budget_free(&a);
	dsv32_budget_free(&b);
}

/* Run compare on dir/ckpt (budget file or NULL); returns the exit code, the report in *rep. */
static int compare(const char *ckpt, const char *budget, cJSON **rep)
{
	char args[1024], out[1 << 16], path[128];
	snprintf(path, sizeof path, "%s/%s-%s.json", dir, ckpt, budget ? "file" : "auto");
	snprintf(args, sizeof args, "compare --checkpoint %s/%s --quiet --json %s%s%s", dir, ckpt,
		 path, budget ? " --budget " : "", budget ? budget : "");
	int rc = tc_run_cli(cli, args, out, sizeof out);
	*rep = tc_load_json(path);
	if (!*rep)
		fail_msg("compare %s: no report (exit %d): %s", ckpt, rc, out);
	return rc;
}

static const char *prov_budget(const cJSON *rep)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(rep, "provenance");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "budget");
	assert_true(cJSON_IsString(b));
	return b->valuestring;
}

static void test_compare_picks_the_budget_of_the_weight_format(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	cJSON *rep;
	assert_int_equal(compare("bf16", NULL, &rep), 0);
	assert_non_null(strstr(prov_budget(rep), "bf16 weights"));
	cJSON_Delete(rep);
	assert_int_equal(compare("fp8", NULL, &rep), 0);
	assert_non_null(strstr(prov_budget(rep), "fp8 weights"));
	cJSON_Delete(rep);
}

static void test_fp8_weights_fail_the_bf16_budget_at_an_fp8_gemm_output(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	char path[128];
	snprintf(path, sizeof path, "%s/bf16-budget.json", dir);
	char *json = dsv32_default_budget_json(false);
	assert_non_null(json);
	assert_int_equal(dsv32_write_file_atomic(path, json, strlen(json), NULL), DSV32_OK);
	free(json);
	cJSON *rep;
	assert_int_equal(compare("fp8", path, &rep), 1);
	const cJSON *fd = cJSON_GetObjectItemCaseSensitive(rep, "first_divergence");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(fd, "name");
	assert_true(cJSON_IsString(name));
	printf("fp8 weights under the bf16 budget: first divergence %s\n", name->valuestring);
	const char *ops[] = {"attn.q_latent", "attn.q_rope", "attn.k_rope", "attn.kv_latent"};
	bool known = false;
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		known = known || strstr(name->valuestring, ops[i]);
	assert_true(known);
	cJSON_Delete(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fp8_budget_has_the_same_rules_and_is_nowhere_tighter),
		cmocka_unit_test(test_compare_picks_the_budget_of_the_weight_format),
		cmocka_unit_test(test_fp8_weights_fail_the_bf16_budget_at_an_fp8_gemm_output),
	};
	return cmocka_run_group_tests_name("budget_shipped", tests, setup, teardown);
}
