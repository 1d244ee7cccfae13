/* json.c: the JSON drift report (schema_version 1), written and read back. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/infile.h"
#include "reports/report.h"

static const char *const kind_names[DSV32_FAMILY_COUNT] = {"dense", "set", "logits"};
static const char *const mode_names[DSV32_DRIFTMODE_COUNT] = {"propagate", "local"};
/* The tap object member that holds each family's figures. */
static const char *const family_keys[DSV32_FAMILY_COUNT] = {"metrics", "set", "logits"};

static void add_num(cJSON *o, const char *k, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

/* The stored figures of one family, in table order (compare/metrics.h). */
static void family_json(cJSON *o, const dsv32_tap_result *t, dsv32_metric_family f)
{
	for (size_t i = 0; i < dsv32_metric_count; i++) {
		const dsv32_metric_desc *m = &dsv32_metric_table[i];
		if (m->family == f && m->json_key)
			add_num(o, m->json_key, dsv32_tap_figure(t, m));
	}
}

static cJSON *tap_json(const dsv32_tap_result *t, const dsv32_tap_result *first_flip)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "op", t->op);
	cJSON_AddNumberToObject(o, "layer", t->layer);
	cJSON_AddNumberToObject(o, "step", t->step);
	cJSON_AddStringToObject(o, "mode", mode_names[t->mode]);
	cJSON_AddStringToObject(o, "kind", kind_names[t->family]);
	cJSON_AddStringToObject(o, "dtype_a", t->dtype_a);
	cJSON_AddStringToObject(o, "dtype_b", t->dtype_b);
	cJSON *shape = cJSON_AddArrayToObject(o, "shape");
	for (int i = 0; i < t->ndim; i++)
		cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[i]));
	if (t->family == DSV32_FAMILY_SET)
		family_json(cJSON_AddObjectToObject(o, family_keys[DSV32_FAMILY_SET]), t,
			    DSV32_FAMILY_SET);
	else
		family_json(cJSON_AddObjectToObject(o, family_keys[DSV32_FAMILY_DENSE]), t,
			    DSV32_FAMILY_DENSE);
	if (t->family == DSV32_FAMILY_LOGITS)
		family_json(cJSON_AddObjectToObject(o, family_keys[DSV32_FAMILY_LOGITS]), t,
			    DSV32_FAMILY_LOGITS);
	if (t->noise_ratio_a > 0 || t->noise_ratio_b > 0) {
		add_num(o, "noise_ratio_a", t->noise_ratio_a);
		add_num(o, "noise_ratio_b", t->noise_ratio_b);
	}
	cJSON_AddBoolToObject(o, "over_budget", t->over_budget);
	if (t->budget_note[0])
		cJSON_AddStringToObject(o, "budget_note", t->budget_note);
	if (dsv32_tap_after_flip(t, first_flip)) /* free-running, after the first decision flip */
		cJSON_AddBoolToObject(o, "after_decision_flip", true);
	if (t->decides_nothing) /* only when set: reports without it keep their bytes */
		cJSON_AddBoolToObject(o, "decides_nothing", true);
	return o;
}

/* forced_decisions: every row the teacher-forced pass forced (compare/result.h). */
static void forced_json(cJSON *root, const dsv32_cmp_result *r)
{
	cJSON *arr = cJSON_AddArrayToObject(root, "forced_decisions");
	for (size_t i = 0; i < r->n_forced; i++) {
		const dsv32_forced_row *f = &r->forced[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "step", f->step);
		cJSON_AddNumberToObject(o, "layer", f->layer);
		cJSON_AddStringToObject(o, "tap", f->tap);
		cJSON_AddNumberToObject(o, "row", (double)f->row);
		cJSON_AddStringToObject(o, "class", dsv32_flip_class_name(f->cls));
		add_num(o, "margin", f->margin);
		cJSON_AddItemToArray(arr, o);
	}
}

static const char *const side_names[2] = {"a", "b"};

static double per_s(int64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

/* timing: the run's wall time and peak RSS, and per live side its load and forward times
 * (compare/result.h dsv32_side_timing; not a figure: `report check` never compares it). */
static void timing_json(cJSON *root, const dsv32_cmp_result *r)
{
	if (r->wall_s <= 0)
		return;
	cJSON *t = cJSON_AddObjectToObject(root, "timing");
	cJSON_AddNumberToObject(t, "wall_s", r->wall_s);
	cJSON_AddNumberToObject(t, "peak_rss_mb", r->peak_rss_mb);
	cJSON *sides = cJSON_AddArrayToObject(t, "sides");
	for (int i = 0; i < 2; i++) {
		const dsv32_side_timing *s = &r->timing[i];
		if (!s->live)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "side", side_names[i]);
		cJSON_AddNumberToObject(o, "load_s", s->load_s);
		cJSON_AddNumberToObject(o, "prefill_s", s->prefill_s);
		cJSON_AddNumberToObject(o, "decode_s", s->decode_s);
		cJSON_AddNumberToObject(o, "prefill_tok_s", per_s(s->prefill_tokens, s->prefill_s));
		cJSON_AddNumberToObject(o, "decode_tok_s", per_s(s->decode_tokens, s->decode_s));
		cJSON_AddItemToArray(sides, o);
	}
}

/* provenance.sides[i]: the GEMM engine and host fingerprint of each side (compare/result.h
 * dsv32_side_host); the structured host fields only for a live side. */
static void sides_json(cJSON *prov, const dsv32_cmp_result *r)
{
	if (!r->host[0].present && !r->host[1].present)
		return;
	cJSON *sides = cJSON_AddArrayToObject(prov, "sides");
	for (int i = 0; i < 2; i++) {
		const dsv32_side_host *h = &r->host[i];
		if (!h->present)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "side", side_names[i]);
		cJSON_AddStringToObject(o, "label", i ? r->side_b : r->side_a);
		cJSON_AddStringToObject(o, "source", h->recorded ? "recording" : "live");
		cJSON_AddStringToObject(o, "engine", h->engine);
		cJSON_AddStringToObject(o, "numerics_key", h->numerics_key);
		cJSON_AddStringToObject(o, "fingerprint", h->line);
		if (h->ties[0]) {
			cJSON_AddStringToObject(o, "ties", h->ties);
			cJSON_AddStringToObject(o, "ties_from", h->ties_from);
		}
		if (h->exp[0]) {
			cJSON_AddStringToObject(o, "exp", h->exp);
			cJSON_AddStringToObject(o, "exp_from", h->exp_from);
		}
		if (!h->recorded) {
			cJSON_AddStringToObject(o, "cpu_model", h->cpu_model);
			cJSON_AddStringToObject(o, "isa", h->isa);
			cJSON_AddStringToObject(o, "onednn_impl", h->onednn_impl);
			cJSON_AddStringToObject(o, "openblas_core", h->openblas_core);
			cJSON_AddStringToObject(o, "versions", h->versions);
			cJSON_AddNumberToObject(o, "threads", h->threads);
		}
		cJSON_AddItemToArray(sides, o);
	}
}

char *dsv32_report_json_string(const dsv32_cmp_result *r)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return NULL;
	cJSON_AddNumberToObject(root, "schema_version", DSV32_REPORT_SCHEMA_VERSION);
	cJSON_AddStringToObject(root, "tool", "dsv32-parity");
	cJSON_AddStringToObject(root, "tool_version", DSV32_VERSION);
	cJSON *prov = cJSON_AddObjectToObject(root, "provenance");
	for (int i = 0; i < r->n_prov; i++)
		cJSON_AddStringToObject(prov, r->prov[i].key, r->prov[i].value);
	sides_json(prov, r);
	cJSON_AddStringToObject(root, "side_a", r->side_a);
	cJSON_AddStringToObject(root, "side_b", r->side_b);
	cJSON_AddStringToObject(root, "mode", r->mode);
	cJSON_AddStringToObject(root, "verdict", dsv32_cmp_result_passed(r) ? "pass" : "fail");
	if (r->first_divergence >= 0) {
		const dsv32_tap_result *t = &r->taps[r->first_divergence];
		cJSON *fd = cJSON_AddObjectToObject(root, "first_divergence");
		cJSON_AddStringToObject(fd, "name", t->name);
		cJSON_AddNumberToObject(fd, "step", t->step);
		cJSON_AddStringToObject(fd, "mode", mode_names[t->mode]);
		cJSON_AddStringToObject(fd, "note", t->budget_note);
	} else {
		cJSON_AddNullToObject(root, "first_divergence");
	}
	if (r->nonfinite)
		cJSON_AddStringToObject(root, "first_nonfinite", r->nonfinite_tap);
	else
		cJSON_AddNullToObject(root, "first_nonfinite");
	cJSON *taps = cJSON_AddArrayToObject(root, "taps");
	const dsv32_tap_result *first_flip = dsv32_cmp_result_first_flip(r);
	for (size_t i = 0; i < r->n_taps; i++)
		cJSON_AddItemToArray(taps, tap_json(&r->taps[i], first_flip));
	if (r->n_forced || dsv32_cmp_result_prov_get(r, "force_decisions"))
		forced_json(root, r);
	timing_json(root, r);
	cJSON *skips = cJSON_AddArrayToObject(root, "skipped");
	for (size_t i = 0; i < r->n_skips; i++) {
		cJSON *s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "name", r->skips[i].name);
		cJSON_AddNumberToObject(s, "step", r->skips[i].step);
		cJSON_AddStringToObject(s, "reason", r->skips[i].reason);
		cJSON_AddItemToArray(skips, s);
	}
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	return text;
}

dsv32_status dsv32_report_write_json(const dsv32_cmp_result *r, const char *path, dsv32_error *err)
{
	char *text = dsv32_report_json_string(r);
	if (!text)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: serializing the report", path);
	dsv32_status rc = dsv32_write_file_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}

/* ---- reading back ---- */

static double get_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsNumber(v))
		return v->valuedouble;
	return cJSON_IsNull(v) ? INFINITY : 0.0;
}

/* Counts and indices read back: non-finite and out-of-range values (a hostile file, or the +inf
 * a null stands for) saturate instead of converting with undefined behaviour. */
static int64_t get_i64_item(const cJSON *item)
{
	double v = cJSON_IsNumber(item) ? item->valuedouble : 0.0;
	if (v != v)
		return 0;
	if (v >= 9.2e18)
		return INT64_MAX;
	if (v <= -9.2e18)
		return INT64_MIN;
	return (int64_t)v;
}

static int64_t get_i64(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNull(v) ? INT64_MAX : get_i64_item(v);
}

static uint32_t get_u32(const cJSON *o, const char *k)
{
	double v = get_num(o, k);
	return !(v > 0) ? 0 : v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
}

/* An integer field that must lie in [lo, hi]; false (and *out untouched) otherwise. */
static bool get_int_in(const cJSON *o, const char *k, int lo, int hi, int *out)
{
	double v = get_num(o, k);
	if (!(v >= lo && v <= hi) || v != floor(v))
		return false;
	*out = (int)v;
	return true;
}

static void get_str(const cJSON *o, const char *k, char *out, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	snprintf(out, len, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static int name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

/* One family's stored figures back from its JSON object (absent keys read 0). */
static void read_family(dsv32_tap_result *t, const cJSON *o, dsv32_metric_family f)
{
	for (size_t i = 0; i < dsv32_metric_count; i++) {
		const dsv32_metric_desc *m = &dsv32_metric_table[i];
		void *p = m->family == f && m->json_key ? dsv32_tap_figure_ptr(t, m) : NULL;
		if (!p)
			continue;
		if (m->type == DSV32_FIG_I64)
			*(int64_t *)p = get_i64(o, m->json_key);
		else if (m->type == DSV32_FIG_U32)
			*(uint32_t *)p = get_u32(o, m->json_key);
		else
			*(double *)p = get_num(o, m->json_key);
	}
}

/* provenance.sides back into r->host (absent in reports that predate it: left empty). */
static void read_sides(dsv32_cmp_result *r, const cJSON *prov)
{
	const cJSON *sides = cJSON_GetObjectItemCaseSensitive(prov, "sides");
	const cJSON *o;
	if (!cJSON_IsArray(sides))
		return;
	cJSON_ArrayForEach(o, sides) {
		char side[4], source[16];
		get_str(o, "side", side, sizeof side);
		int i = name_index(side_names, 2, side);
		if (i < 0 || !cJSON_IsObject(o))
			continue;
		dsv32_side_host *h = &r->host[i];
		memset(h, 0, sizeof *h);
		h->present = true;
		get_str(o, "source", source, sizeof source);
		h->recorded = !strcmp(source, "recording");
		get_str(o, "engine", h->engine, sizeof h->engine);
		get_str(o, "numerics_key", h->numerics_key, sizeof h->numerics_key);
		get_str(o, "fingerprint", h->line, sizeof h->line);
		get_str(o, "ties", h->ties, sizeof h->ties);
		get_str(o, "ties_from", h->ties_from, sizeof h->ties_from);
		get_str(o, "exp", h->exp, sizeof h->exp);
		get_str(o, "exp_from", h->exp_from, sizeof h->exp_from);
		get_str(o, "cpu_model", h->cpu_model, sizeof h->cpu_model);
		get_str(o, "isa", h->isa, sizeof h->isa);
		get_str(o, "onednn_impl", h->onednn_impl, sizeof h->onednn_impl);
		get_str(o, "openblas_core", h->openblas_core, sizeof h->openblas_core);
		get_str(o, "versions", h->versions, sizeof h->versions);
		(void)get_int_in(o, "threads", 0, 1 << 20, &h->threads);
	}
}

static dsv32_status read_tap(dsv32_tap_result *t, const cJSON *o, const char *label, int idx,
			     dsv32_error *err)
{
	memset(t, 0, sizeof *t);
	char buf[32];
	get_str(o, "name", t->name, sizeof t->name);
	if (!t->name[0])
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: taps[%d] has no name", label, idx);
	get_str(o, "op", t->op, sizeof t->op);
	if (!get_int_in(o, "layer", -1, DSV32_REPORT_MAX_LAYER, &t->layer) ||
	    !get_int_in(o, "step", 0, DSV32_REPORT_MAX_STEP, &t->step))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: taps[%d] (%s): layer must be an integer in "
				  "[-1, %d] and step in [0, %d]", label, idx, t->name,
				  DSV32_REPORT_MAX_LAYER, DSV32_REPORT_MAX_STEP);
	get_str(o, "mode", buf, sizeof buf);
	int mode = name_index(mode_names, DSV32_DRIFTMODE_COUNT, buf);
	get_str(o, "kind", buf, sizeof buf);
	int kind = name_index(kind_names, DSV32_FAMILY_COUNT, buf);
	if (mode < 0 || kind < 0)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: taps[%d] (%s): bad mode or kind", label,
				  idx, t->name);
	t->mode = (dsv32_drift_mode)mode;
	t->family = (dsv32_metric_family)kind;
	get_str(o, "dtype_a", t->dtype_a, sizeof t->dtype_a);
	get_str(o, "dtype_b", t->dtype_b, sizeof t->dtype_b);
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
	int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : 0;
	t->ndim = nd > 6 ? 6 : nd;
	for (int i = 0; i < t->ndim; i++)
		t->shape[i] = get_i64_item(cJSON_GetArrayItem(shape, i));
	for (int f = 0; f < DSV32_FAMILY_COUNT; f++) {
		const cJSON *fo = cJSON_GetObjectItemCaseSensitive(o, family_keys[f]);
		if (fo)
			read_family(t, fo, (dsv32_metric_family)f);
	}
	if (cJSON_GetObjectItemCaseSensitive(o, "noise_ratio_a")) {
		t->noise_ratio_a = get_num(o, "noise_ratio_a");
		t->noise_ratio_b = get_num(o, "noise_ratio_b");
	}
	t->over_budget = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "over_budget"));
	t->decides_nothing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "decides_nothing"));
	get_str(o, "budget_note", t->budget_note, sizeof t->budget_note);
	return DSV32_OK;
}

/* forced_decisions back (absent in reports that predate it: none). */
static dsv32_status read_forced(dsv32_cmp_result *r, const cJSON *arr, const char *label,
				dsv32_error *err)
{
	const cJSON *it, *list = cJSON_IsArray(arr) ? arr : NULL;
	int i = 0;
	cJSON_ArrayForEach(it, list) {
		dsv32_forced_row f = {0};
		char cls[32];
		get_str(it, "tap", f.tap, sizeof f.tap);
		get_str(it, "class", cls, sizeof cls);
		int c = dsv32_flip_class_find(cls);
		if (!get_int_in(it, "step", 0, DSV32_REPORT_MAX_STEP, &f.step) ||
		    !get_int_in(it, "layer", -1, DSV32_REPORT_MAX_LAYER, &f.layer) || c < 0 || !f.tap[0])
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: forced_decisions[%d]: needs tap, an "
					  "integer step and layer and a class of tie|near-tie|genuine|"
					  "unclassified", label, i);
		f.cls = (dsv32_flip_class)c;
		f.row = get_i64(it, "row");
		f.margin = get_num(it, "margin");
		if (!dsv32_cmp_result_force(r, &f))
			return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: reading forced decisions", label);
		i++;
	}
	return DSV32_OK;
}

dsv32_status dsv32_report_parse_json(dsv32_cmp_result *r, const char *text, const char *label,
				     dsv32_error *err)
{
	dsv32_cmp_result_init(r);
	cJSON *root = cJSON_Parse(text);
	if (!root)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: invalid JSON", label);
	dsv32_status rc = dsv32_json_check_unique_keys(root, label, err);
	if (rc != DSV32_OK)
		goto out;
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "schema_version");
	const cJSON *taps = cJSON_GetObjectItemCaseSensitive(root, "taps");
	if (!cJSON_IsNumber(ver) || ver->valueint != DSV32_REPORT_SCHEMA_VERSION) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: schema_version %s, expected %d", label,
				cJSON_IsNumber(ver) ? "other" : "missing", DSV32_REPORT_SCHEMA_VERSION);
		goto out;
	}
	if (!cJSON_IsArray(taps)) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: 'taps' missing or not an array", label);
		goto out;
	}
	get_str(root, "side_a", r->side_a, sizeof r->side_a);
	get_str(root, "side_b", r->side_b, sizeof r->side_b);
	get_str(root, "mode", r->mode, sizeof r->mode);
	const cJSON *prov = cJSON_GetObjectItemCaseSensitive(root, "provenance");
	const cJSON *it;
	const cJSON *prov_map = cJSON_IsObject(prov) ? prov : NULL; /* key -> string */
	cJSON_ArrayForEach(it, prov_map) {
		if (cJSON_IsString(it))
			dsv32_cmp_result_prov(r, it->string, it->valuestring);
	}
	if (prov_map)
		read_sides(r, prov_map);
	int i = 0;
	cJSON_ArrayForEach(it, taps) {
		dsv32_tap_result t;
		rc = read_tap(&t, it, label, i++, err);
		if (rc != DSV32_OK)
			goto out;
		if (!dsv32_cmp_result_add(r, &t)) {
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: reading taps", label);
			goto out;
		}
	}
	const cJSON *skips = cJSON_GetObjectItemCaseSensitive(root, "skipped");
	cJSON_ArrayForEach(it, skips) {
		char name[96], reason[128];
		get_str(it, "name", name, sizeof name);
		get_str(it, "reason", reason, sizeof reason);
		int step = 0;
		(void)get_int_in(it, "step", 0, DSV32_REPORT_MAX_STEP, &step);
		if (!dsv32_cmp_result_skip(r, name, step, reason)) {
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: reading skipped taps", label);
			goto out;
		}
	}
	rc = read_forced(r, cJSON_GetObjectItemCaseSensitive(root, "forced_decisions"), label, err);
	if (rc != DSV32_OK)
		goto out;
	const cJSON *nf = cJSON_GetObjectItemCaseSensitive(root, "first_nonfinite");
	if (cJSON_IsString(nf)) {
		r->nonfinite = true;
		snprintf(r->nonfinite_tap, sizeof r->nonfinite_tap, "%s", nf->valuestring);
	}
out:
	if (rc != DSV32_OK)
		dsv32_cmp_result_free(r);
	cJSON_Delete(root);
	return rc;
}

dsv32_status dsv32_report_read_json(dsv32_cmp_result *r, const char *path, dsv32_error *err)
{
	char *text = NULL;
	size_t len = 0;
	dsv32_cmp_result_init(r);
	DSV32_TRY(dsv32_infile_read(path, DSV32_INFILE_REPORT, &text, &len, err));
	dsv32_status rc = dsv32_report_parse_json(r, text, path, err);
	free(text);
	return rc;
}
