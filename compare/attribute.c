/* attribute.c: the attribution runs and their summaries (compare/attribute.h). */
#include "compare/attribute.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under this share of the total's worst layer drift and logits KL a row reads "small". */
#define SMALL_SHARE 0.10

static void point_reset(dsv32_attr_point *p, int n_layers)
{
	memset(p, 0, sizeof *p);
	p->n_layers = n_layers < DSV32_ATTR_MAX_LAYERS ? n_layers : DSV32_ATTR_MAX_LAYERS;
	for (int l = 0; l < DSV32_ATTR_MAX_LAYERS; l++)
		p->layer_rel_l2[l] = -1;
	p->logits_top1 = p->logits_top5 = 1;
}

static bool tap_changed(const dsv32_tap_result *t)
{
	if (t->family == DSV32_FAMILY_SET)
		return t->set.rows_equal < t->set.rows;
	return t->dense.n_diff > 0 || t->dense.n_mask_diff > 0;
}

static void add_local(dsv32_attr_point *p, const dsv32_tap_result *t)
{
	p->local_ran = true;
	if (t->family == DSV32_FAMILY_SET)
		p->flip_rows += t->set.rows - t->set.rows_tie_equal;
	if (t->layer >= 0 && t->layer < p->n_layers && !strcmp(t->op, dsv32_layer_tap_op(DSV32_LTAP_OUT)))
		p->layer_rel_l2[t->layer] = fmax(p->layer_rel_l2[t->layer], t->dense.rel_l2);
}

static void add_propagated(dsv32_attr_point *p, const dsv32_tap_result *t)
{
	p->propagate_ran = true;
	if (t->family != DSV32_FAMILY_LOGITS)
		return;
	p->logits_kl = fmax(p->logits_kl, t->logits.kl);
	p->logits_top1 = fmin(p->logits_top1, t->logits.top1_agree);
	p->logits_top5 = fmin(p->logits_top5, t->logits.top5_overlap);
	p->logits_rel_l2 = fmax(p->logits_rel_l2, t->dense.rel_l2);
}

static void summarise(const dsv32_cmp_result *r, int n_layers, dsv32_attr_point *p)
{
	point_reset(p, n_layers);
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		p->taps++;
		p->taps_changed += tap_changed(t);
		if (t->mode == DSV32_DRIFT_LOCAL)
			add_local(p, t);
		else
			add_propagated(p, t);
	}
}

typedef struct {
	const dsv32_cmp_config *cfg;
	dsv32_attr_progress progress;
	void *user;
	int run, n_runs;
} runs;

static dsv32_status one_run(runs *rs, const dsv32_side_spec *a, const dsv32_side_spec *b,
			    const char *what, dsv32_attr_point *p, dsv32_error *err)
{
	if (rs->progress)
		rs->progress(rs->user, rs->run, rs->n_runs, what);
	rs->run++;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	dsv32_status rc = dsv32_cmp_run(rs->cfg, a, b, &r, err);
	if (rc == DSV32_OK)
		summarise(&r, r.n_layers, p);
	else
		dsv32_error_prefix(err, "attribute, %s", what);
	dsv32_cmp_result_free(&r);
	return rc;
}

const char *dsv32_attr_direction_name(dsv32_attr_direction d)
{
	return d == DSV32_ATTR_HF_TO_REF ? "hf-to-ref" : "ref-to-hf";
}

bool dsv32_attr_direction_from_name(const char *name, dsv32_attr_direction *d)
{
	for (int i = 0; i < DSV32_ATTR_DIRECTION_COUNT; i++)
		if (!strcmp(name, dsv32_attr_direction_name((dsv32_attr_direction)i))) {
			*d = (dsv32_attr_direction)i;
			return true;
		}
	return false;
}

bool dsv32_attr_switch(const dsv32_attribution *a, const dsv32_knob *k)
{
	return a->direction == DSV32_ATTR_HF_TO_REF ? dsv32_knob_implemented_hf(k)
						    : dsv32_knob_implemented(k);
}

const char *dsv32_attr_base(const dsv32_attribution *a)
{
	return a->direction == DSV32_ATTR_HF_TO_REF ? "hf" : "ref";
}

const char *dsv32_attr_target(const dsv32_attribution *a)
{
	return a->direction == DSV32_ATTR_HF_TO_REF ? "ref" : "hf";
}

static void flip(const dsv32_attribution *a, const dsv32_knob *k, dsv32_side_spec *s)
{
	if (a->direction == DSV32_ATTR_HF_TO_REF)
		k->apply_hf(&s->opts);
	else
		k->apply_ref(&s->opts);
}

/* Knob k alone on the base side and the next point of the path; the total is always ref vs
 * hf (a = ref), and so is every path point (the knobs on whichever side they are flipped). */
static dsv32_status knob_runs(runs *rs, dsv32_attribution *out, size_t k,
			      const dsv32_side_spec *base, const dsv32_side_spec *target,
			      dsv32_side_spec *cumulative, dsv32_error *err)
{
	const dsv32_knob *kb = &out->knobs[k];
	const char *b = dsv32_attr_base(out), *t = dsv32_attr_target(out);
	bool to_ref = out->direction == DSV32_ATTR_HF_TO_REF;
	dsv32_side_spec alone = *base;
	char what[96];
	flip(out, kb, &alone);
	snprintf(what, sizeof what, "%s vs %s+%s", b, b, kb->name);
	DSV32_TRY(one_run(rs, base, &alone, what, &out->alone[k], err));
	flip(out, kb, cumulative);
	if (to_ref)
		snprintf(what, sizeof what, "%s vs %s+...+%s", t, b, kb->name);
	else
		snprintf(what, sizeof what, "%s+...+%s vs %s", b, kb->name, t);
	DSV32_TRY(one_run(rs, to_ref ? target : cumulative, to_ref ? cumulative : target, what,
			  &out->path[out->n_path], err));
	out->path_knob[out->n_path++] = (int)k;
	return DSV32_OK;
}

dsv32_status dsv32_attribute_dir(const dsv32_cmp_config *cfg, const dsv32_side_spec *ref,
				 const dsv32_side_spec *hf, dsv32_attr_direction dir,
				 dsv32_attr_progress progress, void *user, dsv32_attribution *out,
				 dsv32_error *err)
{
	memset(out, 0, sizeof *out);
	out->direction = dir;
	out->knobs = dsv32_knob_table(&out->n_knobs);
	if (out->n_knobs > DSV32_ATTR_MAX_KNOBS)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%zu knobs, at most %d", out->n_knobs,
				  DSV32_ATTR_MAX_KNOBS);
	int n_impl = 0;
	for (size_t k = 0; k < out->n_knobs; k++)
		n_impl += dsv32_attr_switch(out, &out->knobs[k]);
	dsv32_cmp_config c = *cfg;
	c.budget = NULL; /* measuring, not judging */
	runs rs = {&c, progress, user, 0, 1 + 2 * n_impl};
	DSV32_TRY(one_run(&rs, ref, hf, "ref vs hf", &out->total, err));
	bool to_ref = dir == DSV32_ATTR_HF_TO_REF;
	const dsv32_side_spec *base = to_ref ? hf : ref, *target = to_ref ? ref : hf;
	dsv32_side_spec cumulative = *base;
	for (size_t k = 0; k < out->n_knobs; k++)
		if (dsv32_attr_switch(out, &out->knobs[k]))
			DSV32_TRY(knob_runs(&rs, out, k, base, target, &cumulative, err));
	return DSV32_OK;
}

dsv32_status dsv32_attribute(const dsv32_cmp_config *cfg, const dsv32_side_spec *ref,
			     const dsv32_side_spec *hf, dsv32_attr_progress progress, void *user,
			     dsv32_attribution *out, dsv32_error *err)
{
	return dsv32_attribute_dir(cfg, ref, hf, DSV32_ATTR_REF_TO_HF, progress, user, out, err);
}

double dsv32_attr_max_layer(const dsv32_attr_point *p)
{
	double m = 0;
	for (int l = 0; l < p->n_layers; l++)
		m = fmax(m, p->layer_rel_l2[l]);
	return m;
}

const char *dsv32_attr_row_verdict(const dsv32_attribution *a, const char *row)
{
	bool any = false, changed = false, large = false;
	double tl = dsv32_attr_max_layer(&a->total), tk = a->total.logits_kl;
	for (size_t k = 0; k < a->n_knobs; k++) {
		const dsv32_knob *kb = &a->knobs[k];
		if (strcmp(kb->row, row) != 0 || !dsv32_attr_switch(a, kb))
			continue;
		const dsv32_attr_point *p = &a->alone[k];
		any = true;
		changed |= p->taps_changed > 0;
		large |= dsv32_attr_max_layer(p) >= SMALL_SHARE * tl ||
			 p->logits_kl >= SMALL_SHARE * tk || p->flip_rows > 0;
	}
	if (!any)
		return "not measured";
	return !changed ? "no effect" : large ? "matters" : "small";
}

/* ---- outputs ---- */

static cJSON *point_json(const dsv32_attr_point *p)
{
	cJSON *o = cJSON_CreateObject();
	if (p->local_ran) {
		cJSON *l = cJSON_AddArrayToObject(o, "layer_rel_l2");
		for (int i = 0; i < p->n_layers; i++)
			cJSON_AddItemToArray(l, cJSON_CreateNumber(p->layer_rel_l2[i]));
		cJSON_AddNumberToObject(o, "decision_flip_rows", (double)p->flip_rows);
	}
	if (p->propagate_ran) {
		cJSON *g = cJSON_AddObjectToObject(o, "logits");
		cJSON_AddNumberToObject(g, "kl", p->logits_kl);
		cJSON_AddNumberToObject(g, "top1_agree", p->logits_top1);
		cJSON_AddNumberToObject(g, "top5_overlap", p->logits_top5);
		cJSON_AddNumberToObject(g, "rel_l2", p->logits_rel_l2);
	}
	cJSON_AddNumberToObject(o, "taps", (double)p->taps);
	cJSON_AddNumberToObject(o, "taps_changed", (double)p->taps_changed);
	return o;
}

int dsv32_attr_rows(const dsv32_attribution *a, const char **rows, int cap)
{
	int n = 0;
	for (size_t k = 0; k < a->n_knobs; k++) {
		bool seen = false;
		for (int i = 0; i < n; i++)
			seen |= !strcmp(rows[i], a->knobs[k].row);
		if (!seen && n < cap)
			rows[n++] = a->knobs[k].row;
	}
	return n;
}

char *dsv32_attr_json(const dsv32_attribution *a, const dsv32_cmp_result *prov)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "schema", "dsv32-parity-attribution/1");
	bool to_ref = a->direction == DSV32_ATTR_HF_TO_REF; /* toward hf: the original document */
	if (to_ref)
		cJSON_AddStringToObject(root, "direction", dsv32_attr_direction_name(a->direction));
	cJSON *pv = cJSON_AddObjectToObject(root, "provenance");
	for (int i = 0; prov && i < prov->n_prov; i++)
		cJSON_AddStringToObject(pv, prov->prov[i].key, prov->prov[i].value);
	cJSON_AddItemToObject(root, "total", point_json(&a->total));
	cJSON *ks = cJSON_AddArrayToObject(root, "knobs");
	for (size_t k = 0; k < a->n_knobs; k++) {
		const dsv32_knob *kb = &a->knobs[k];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", kb->name);
		cJSON_AddStringToObject(o, "row", kb->row);
		cJSON_AddStringToObject(o, "summary", kb->summary);
		cJSON_AddBoolToObject(o, "implemented", dsv32_attr_switch(a, kb));
		if (to_ref) {
			cJSON *sw = cJSON_AddObjectToObject(o, "switch");
			cJSON_AddBoolToObject(sw, "ref-to-hf", dsv32_knob_implemented(kb));
			cJSON_AddBoolToObject(sw, "hf-to-ref", dsv32_knob_implemented_hf(kb));
		}
		if (dsv32_attr_switch(a, kb))
			cJSON_AddItemToObject(o, "alone", point_json(&a->alone[k]));
		cJSON_AddItemToArray(ks, o);
	}
	cJSON *path = cJSON_AddArrayToObject(root, "path");
	for (int i = 0; i < a->n_path; i++) {
		cJSON *o = point_json(&a->path[i]);
		cJSON_AddStringToObject(o, "after", a->knobs[a->path_knob[i]].name);
		cJSON_AddItemToArray(path, o);
	}
	const char *rows[DSV32_ATTR_MAX_KNOBS];
	int nr = dsv32_attr_rows(a, rows, DSV32_ATTR_MAX_KNOBS);
	cJSON *rs = cJSON_AddArrayToObject(root, "rows");
	for (int i = 0; i < nr; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "row", rows[i]);
		cJSON_AddStringToObject(o, "verdict", dsv32_attr_row_verdict(a, rows[i]));
		cJSON_AddItemToArray(rs, o);
	}
	char *s = cJSON_Print(root);
	cJSON_Delete(root);
	return s;
}

typedef struct {
	char *buf;
	size_t len, cap;
	bool oom;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
	va_list ap;
	for (int pass = 0; pass < 2 && !t->oom; pass++) {
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *b = realloc(t->buf, cap);
		if (!b) {
			t->oom = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

static void md_point_cells(text *t, const dsv32_attr_point *p)
{
	if (p->local_ran)
		put(t, " %.3g | %lld |", dsv32_attr_max_layer(p), (long long)p->flip_rows);
	else
		put(t, " n/a | n/a |");
	if (p->propagate_ran)
		put(t, " %.3g | %.3f |", p->logits_kl, p->logits_top1);
	else
		put(t, " n/a | n/a |");
	put(t, " %lld of %lld |\n", (long long)p->taps_changed, (long long)p->taps);
}

/* The headline's mark of a knob that is not a switch in a's direction ("" if it is). */
static const char *not_switch(const dsv32_attribution *a, const dsv32_knob *k)
{
	if (dsv32_attr_switch(a, k))
		return "";
	return a->direction == DSV32_ATTR_HF_TO_REF ? " (not yet a switch of hf)"
						    : " (not yet a switch)";
}

static void md_rows(text *t, const dsv32_attribution *a)
{
	const char *rows[DSV32_ATTR_MAX_KNOBS];
	int nr = dsv32_attr_rows(a, rows, DSV32_ATTR_MAX_KNOBS);
	put(t, "| status-table row | knobs | verdict |\n|---|---|---|\n");
	for (int i = 0; i < nr; i++) {
		put(t, "| %s |", rows[i]);
		const char *sep = " ";
		for (size_t k = 0; k < a->n_knobs; k++)
			if (!strcmp(a->knobs[k].row, rows[i])) {
				put(t, "%s`%s`%s", sep, a->knobs[k].name, not_switch(a, &a->knobs[k]));
				sep = ", ";
			}
		put(t, " | %s |\n", dsv32_attr_row_verdict(a, rows[i]));
	}
}

/* The second table's runs, named by the direction's base and target. */
static void md_runs(text *t, const dsv32_attribution *a)
{
	const char *g = dsv32_attr_target(a);
	for (size_t k = 0; k < a->n_knobs; k++)
		if (dsv32_attr_switch(a, &a->knobs[k])) {
			put(t, "| `%s` alone |", a->knobs[k].name);
			md_point_cells(t, &a->alone[k]);
		}
	for (int i = 0; i < a->n_path; i++) {
		put(t, "| path: + `%s`, vs %s |", a->knobs[a->path_knob[i]].name, g);
		md_point_cells(t, &a->path[i]);
	}
}

char *dsv32_attr_markdown(const dsv32_attribution *a)
{
	text t = {0};
	const char *b = dsv32_attr_base(a), *g = dsv32_attr_target(a);
	put(&t, "## dsv32-parity attribute: which difference between ref and hf causes how much\n\n");
	if (a->direction == DSV32_ATTR_HF_TO_REF)
		put(&t, "Direction: hf-to-ref (each knob flipped on the hf layout toward ref).\n\n");
	md_rows(&t, a);
	put(&t, "\nEach knob alone (%s vs %s with the knob flipped), the total (ref vs hf) and the "
		"path (knobs flipped one after another toward %s, compared with %s):\n\n"
		"| run | worst layer rel_l2 (teacher-forced) | decision rows | logits KL | top-1 | "
		"taps changed |\n|---|---|---|---|---|---|\n| ref vs hf |", b, b, g, g);
	md_point_cells(&t, &a->total);
	md_runs(&t, a);
	put(&t, "\nThe last path line is what the knobs that are not yet switches%s leave "
		"unattributed.\n", a->direction == DSV32_ATTR_HF_TO_REF ? " of hf" : "");
	if (t.oom) {
		free(t.buf);
		return NULL;
	}
	return t.buf;
}
