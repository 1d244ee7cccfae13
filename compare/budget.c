/* budget.c: parsing budget files and checking tap results against them. */
#include "compare/budget.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/infile.h"

static bool metric_known(const char *m)
{
	return dsv32_metric_by_budget_key(m) != NULL;
}

/* The budget names of the metric table (compare/metrics.h): a metric of another family than
 * t's does not apply to it. */
bool dsv32_tap_metric(const dsv32_tap_result *t, const char *name, double *out)
{
	const dsv32_metric_desc *m = dsv32_metric_by_budget_key(name);
	if (!m || !dsv32_tap_has_metric(t, m))
		return false;
	*out = dsv32_tap_figure(t, m);
	return true;
}

static dsv32_status parse_limits(dsv32_budget_rule *r, const cJSON *obj, bool is_min,
				 const char *label, int idx, dsv32_error *err)
{
	if (!obj)
		return DSV32_OK;
	if (!cJSON_IsObject(obj))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d].%s must be an object", label,
				  idx, is_min ? "min" : "max");
	const cJSON *it;
	cJSON_ArrayForEach(it, obj) {
		if (!metric_known(it->string))
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d]: unknown metric '%s'",
					  label, idx, it->string);
		if (!cJSON_IsNumber(it))
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d].%s: not a number",
					  label, idx, it->string);
		if (r->n_limits >= DSV32_BUDGET_MAX_LIMITS)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d]: more than %d limits",
					  label, idx, DSV32_BUDGET_MAX_LIMITS);
		dsv32_budget_limit *l = &r->limits[r->n_limits++];
		snprintf(l->metric, sizeof l->metric, "%s", it->string);
		l->value = it->valuedouble;
		l->is_min = is_min;
	}
	return DSV32_OK;
}

static dsv32_status parse_rule(dsv32_budget_rule *r, const cJSON *o, const char *label, int idx,
			       dsv32_error *err)
{
	memset(r, 0, sizeof *r);
	r->mode = -1;
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
	if (!cJSON_IsString(pat) || strlen(pat->valuestring) >= sizeof r->pattern)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d].pattern missing or too long",
				  label, idx);
	snprintf(r->pattern, sizeof r->pattern, "%s", pat->valuestring);
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
	if (mode) {
		if (!cJSON_IsString(mode))
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d].mode not a string",
					  label, idx);
		if (!strcmp(mode->valuestring, "propagate")) r->mode = DSV32_DRIFT_PROPAGATE;
		/* compare's --mode spells the local drift "teacher-forced": both name it here */
		else if (!strcmp(mode->valuestring, "local") ||
			 !strcmp(mode->valuestring, "teacher-forced"))
			r->mode = DSV32_DRIFT_LOCAL;
		else if (strcmp(mode->valuestring, "any") != 0)
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: rules[%d].mode '%s', expected propagate|local (= teacher-forced)|any",
					  label, idx, mode->valuestring);
	}
	DSV32_TRY(parse_limits(r, cJSON_GetObjectItemCaseSensitive(o, "max"), false, label, idx, err));
	DSV32_TRY(parse_limits(r, cJSON_GetObjectItemCaseSensitive(o, "min"), true, label, idx, err));
	return DSV32_OK;
}

dsv32_status dsv32_budget_parse(dsv32_budget *b, const char *json, const char *label,
				dsv32_error *err)
{
	memset(b, 0, sizeof *b);
	cJSON *root = cJSON_Parse(json);
	if (!root)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: invalid JSON", label);
	dsv32_status rc = dsv32_json_check_unique_keys(root, label, err);
	if (rc != DSV32_OK)
		goto out_free_json;
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
	if (!cJSON_IsArray(rules)) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: 'rules' must be an array", label);
		goto out_free_json;
	}
	int n = cJSON_GetArraySize(rules);
	b->rules = calloc((size_t)(n ? n : 1), sizeof *b->rules);
	if (!b->rules) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %d rules", label, n);
		goto out_free_json;
	}
	for (int i = 0; i < n && rc == DSV32_OK; i++) {
		const cJSON *o = cJSON_GetArrayItem(rules, i);
		if (!cJSON_IsObject(o))
			rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: rules[%d] not an object", label, i);
		else
			rc = parse_rule(&b->rules[i], o, label, i, err);
		b->n_rules = i + 1;
	}
	if (rc != DSV32_OK)
		dsv32_budget_free(b);
out_free_json:
	cJSON_Delete(root);
	return rc;
}

dsv32_status dsv32_budget_load(dsv32_budget *b, const char *path, dsv32_error *err)
{
	char *text = NULL;
	size_t len = 0;
	DSV32_TRY(dsv32_infile_read(path, DSV32_INFILE_BUDGET, &text, &len, err));
	dsv32_status rc = dsv32_budget_parse(b, text, path, err);
	free(text);
	return rc;
}

void dsv32_budget_free(dsv32_budget *b)
{
	free(b->rules);
	memset(b, 0, sizeof *b);
}

static bool rule_matches(const dsv32_budget_rule *r, const dsv32_tap_result *t)
{
	if (r->mode >= 0 && r->mode != (int)t->mode)
		return false;
	return fnmatch(r->pattern, t->name, 0) == 0;
}

bool dsv32_budget_covers(const dsv32_budget *b, const dsv32_tap_result *t)
{
	for (int i = 0; b && i < b->n_rules; i++)
		if (rule_matches(&b->rules[i], t))
			return true;
	return false;
}

void dsv32_budget_apply(const dsv32_budget *b, dsv32_tap_result *t)
{
	t->over_budget = false;
	t->budget_note[0] = '\0';
	if (t->family != DSV32_FAMILY_SET && (t->dense.nan_a || t->dense.nan_b || t->dense.inf_a != t->dense.inf_b)) {
		t->over_budget = true;
		snprintf(t->budget_note, sizeof t->budget_note, "non-finite values (NaN a %lld, b %lld; Inf a %lld, b %lld)",
			 (long long)t->dense.nan_a, (long long)t->dense.nan_b,
			 (long long)t->dense.inf_a, (long long)t->dense.inf_b);
		return;
	}
	if (!b)
		return;
	for (int i = 0; i < b->n_rules; i++) {
		const dsv32_budget_rule *r = &b->rules[i];
		if (!rule_matches(r, t))
			continue;
		for (int j = 0; j < r->n_limits; j++) {
			const dsv32_budget_limit *l = &r->limits[j];
			double v;
			if (!dsv32_tap_metric(t, l->metric, &v))
				continue;
			bool bad = l->is_min ? v < l->value : v > l->value;
			if (bad) {
				t->over_budget = true;
				snprintf(t->budget_note, sizeof t->budget_note, "%s %.4g %s %.4g (rule '%s')",
					 l->metric, v, l->is_min ? "<" : ">", l->value, r->pattern);
				return;
			}
		}
		return; /* first matching rule decides */
	}
}
