/* markdown.c: the terminal drift table, the Markdown CI summary and the regression check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "reports/report.h"

static double drift_value(const dsv32_tap_result *t)
{
	if (t->kind == DSV32_TAP_SET)
		return 1.0 - t->set.jaccard;
	return t->dense.rel_l2;
}

static void describe(const dsv32_tap_result *t, char *buf, size_t len)
{
	if (t->kind == DSV32_TAP_SET)
		snprintf(buf, len, "jaccard %.4f, %lld/%lld rows equal (%lld up to ties)",
			 t->set.jaccard, (long long)t->set.rows_equal, (long long)t->set.rows,
			 (long long)t->set.rows_tie_equal);
	else if (t->kind == DSV32_TAP_LOGITS)
		snprintf(buf, len, "rel_l2 %.3e, max abs %.3g, KL %.3e, top1 %.3f, top5 %.3f",
			 t->dense.rel_l2, t->dense.max_abs, t->logits.kl, t->logits.top1_agree,
			 t->logits.top5_overlap);
	else
		snprintf(buf, len, "rel_l2 %.3e, max abs %.3g, ulp max %u p99 %u, cos %.6f",
			 t->dense.rel_l2, t->dense.max_abs, t->dense.ulp_max, t->dense.ulp_p99,
			 t->dense.cosine);
}

void dsv32_report_table(const dsv32_cmp_result *r, FILE *out)
{
	fprintf(out, "%s vs %s (%s)\n", r->side_a, r->side_b, r->mode);
	fprintf(out, "%-4s %-5s %-34s %11s %10s %7s %7s %9s  %s\n", "step", "mode", "tap", "rel_l2",
		"max|d|", "ulp_max", "ulp_p99", "cosine", "");
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		const char *flag = t->over_budget ? "OVER" : "";
		const char *mode = t->mode == DSV32_DRIFT_LOCAL ? "local" : "prop";
		if (t->kind == DSV32_TAP_SET) {
			fprintf(out, "%-4d %-5s %-34s  jaccard %.4f  recall %.4f  rows equal %lld/%lld (ties %lld) %s\n",
				t->step, mode, t->name, t->set.jaccard, t->set.recall,
				(long long)t->set.rows_equal, (long long)t->set.rows,
				(long long)t->set.rows_tie_equal, flag);
			continue;
		}
		fprintf(out, "%-4d %-5s %-34s %11.3e %10.3g %7u %7u %9.6f  %s", t->step, mode, t->name,
			t->dense.rel_l2, t->dense.max_abs, t->dense.ulp_max, t->dense.ulp_p99,
			t->dense.cosine, flag);
		if (t->noise_ratio_a > 0 || t->noise_ratio_b > 0)
			fprintf(out, " noise x%.3g / x%.3g", t->noise_ratio_a, t->noise_ratio_b);
		fprintf(out, "\n");
		if (t->kind == DSV32_TAP_LOGITS)
			fprintf(out, "%-4s %-5s %-34s  KL %.3e  top1 %.3f  top5 %.3f\n", "", "", "",
				t->logits.kl, t->logits.top1_agree, t->logits.top5_overlap);
	}
	for (size_t i = 0; i < r->n_skips; i++)
		fprintf(out, "skipped step %d %s: %s\n", r->skips[i].step, r->skips[i].name,
			r->skips[i].reason);
	if (r->nonfinite)
		fprintf(out, "NON-FINITE values first at %s\n", r->nonfinite_tap);
	if (r->first_divergence >= 0) {
		const dsv32_tap_result *t = &r->taps[r->first_divergence];
		fprintf(out, "verdict: FAIL; first divergence: step %d %s (%s)\n", t->step, t->name,
			t->budget_note);
	} else if (!r->nonfinite) {
		fprintf(out, "verdict: PASS (%zu taps within budget)\n", r->n_taps);
	}
}

static int cmp_worst(const void *pa, const void *pb)
{
	const dsv32_tap_result *a = *(const dsv32_tap_result *const *)pa;
	const dsv32_tap_result *b = *(const dsv32_tap_result *const *)pb;
	double da = drift_value(a), db = drift_value(b);
	return (da < db) - (da > db);
}

static void markdown_layers(const dsv32_cmp_result *r, FILE *out)
{
	fprintf(out, "\n### Per layer (step 0, residual stream `layers.N.out`)\n\n");
	fprintf(out, "| layer | mode | rel_l2 | max abs | ulp p99 | cosine |\n|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		if (t->step != 0 || t->layer < 0 || strcmp(t->op, "out") != 0)
			continue;
		fprintf(out, "| %d | %s | %.3e | %.3g | %u | %.6f |\n", t->layer,
			t->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate", t->dense.rel_l2,
			t->dense.max_abs, t->dense.ulp_p99, t->dense.cosine);
	}
}

/* The "layers" provenance of a --layers run ("4 of 61"), NULL for a whole model. */
static const char *layer_limit(const dsv32_cmp_result *r)
{
	for (int i = 0; i < r->n_prov; i++)
		if (!strcmp(r->prov[i].key, "layers"))
			return r->prov[i].value;
	return NULL;
}

/* One "Host" line per side that has one: engine and one-line fingerprint (live), or what the
 * recording states. */
static void markdown_hosts(const dsv32_cmp_result *r, FILE *out)
{
	bool any = false;
	for (int i = 0; i < 2; i++) {
		const dsv32_side_host *h = &r->host[i];
		if (!h->present)
			continue;
		any = true;
		fprintf(out, "- **Host %c** (%s, engine `%s`, numerics key `%s`): %s\n", 'a' + i,
			h->recorded ? "recording" : "live", h->engine, h->numerics_key, h->line);
	}
	if (any)
		fprintf(out, "\n");
}

void dsv32_report_markdown(const dsv32_cmp_result *r, FILE *out)
{
	bool pass = dsv32_cmp_result_passed(r);
	fprintf(out, "## dsv32-parity: `%s` vs `%s` (%s) — %s\n\n", r->side_a, r->side_b, r->mode,
		pass ? "✅ pass" : "❌ fail");
	markdown_hosts(r, out);
	if (layer_limit(r))
		fprintf(out, "**Truncated model:** decoder layers %s (`--layers`); `final_norm` and "
			"`logits` are the truncated model's, not the model's.\n\n", layer_limit(r));
	if (r->nonfinite)
		fprintf(out, "**Non-finite values** first appear at `%s`.\n\n", r->nonfinite_tap);
	if (r->first_divergence >= 0) {
		const dsv32_tap_result *t = &r->taps[r->first_divergence];
		fprintf(out, "**First divergence:** step %d, `%s` (%s)\n\n", t->step, t->name,
			t->budget_note);
	} else {
		fprintf(out, "%zu taps compared, all within budget.\n\n", r->n_taps);
	}
	const dsv32_tap_result **order = malloc((r->n_taps ? r->n_taps : 1) * sizeof *order);
	if (order) {
		for (size_t i = 0; i < r->n_taps; i++)
			order[i] = &r->taps[i];
		qsort(order, r->n_taps, sizeof *order, cmp_worst);
		fprintf(out, "### Worst taps\n\n| step | tap | mode | drift |\n|---|---|---|---|\n");
		for (size_t i = 0; i < r->n_taps && i < 10; i++) {
			char d[160];
			describe(order[i], d, sizeof d);
			fprintf(out, "| %d | `%s` | %s | %s%s |\n", order[i]->step, order[i]->name,
				order[i]->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate", d,
				order[i]->over_budget ? " **over budget**" : "");
		}
		free(order);
	}
	markdown_layers(r, out);
	if (r->n_skips) {
		fprintf(out, "\n### Skipped taps\n\n");
		for (size_t i = 0; i < r->n_skips && i < 50; i++)
			fprintf(out, "- step %d `%s`: %s\n", r->skips[i].step, r->skips[i].name,
				r->skips[i].reason);
	}
}

dsv32_status dsv32_report_write_markdown(const dsv32_cmp_result *r, const char *path,
					 dsv32_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: rendering Markdown", path);
	dsv32_report_markdown(r, f);
	fclose(f);
	dsv32_status rc = dsv32_write_file_atomic(path, buf, len, err);
	free(buf);
	return rc;
}

static const dsv32_tap_result *find_tap(const dsv32_cmp_result *r, const dsv32_tap_result *t)
{
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *c = &r->taps[i];
		if (c->step == t->step && c->mode == t->mode && strcmp(c->name, t->name) == 0)
			return c;
	}
	return NULL;
}

/* A numerics key both reports state (not absent, not "unknown"). */
static bool key_known(const dsv32_side_host *h)
{
	return h->present && h->numerics_key[0] && strcmp(h->numerics_key, "unknown") != 0;
}

/* One note line when a side's numerics key differs between the runs: their bits are then not
 * expected to agree, whatever the code did. Does not change the verdict. */
static void note_numerics_keys(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			       FILE *out)
{
	bool differ = false;
	for (int i = 0; i < 2; i++)
		differ = differ || (key_known(&baseline->host[i]) && key_known(&current->host[i]) &&
				    strcmp(baseline->host[i].numerics_key,
					   current->host[i].numerics_key) != 0);
	if (!differ)
		return;
	fprintf(out, "note: numerics keys differ (baseline a=%s b=%s; current a=%s b=%s): the GEMM "
		"engine or host changed, so drift may differ for reasons other than the code\n",
		baseline->host[0].numerics_key[0] ? baseline->host[0].numerics_key : "-",
		baseline->host[1].numerics_key[0] ? baseline->host[1].numerics_key : "-",
		current->host[0].numerics_key[0] ? current->host[0].numerics_key : "-",
		current->host[1].numerics_key[0] ? current->host[1].numerics_key : "-");
}

static const char *prov_value(const dsv32_cmp_result *r, const char *key)
{
	for (int i = 0; i < r->n_prov; i++)
		if (!strcmp(r->prov[i].key, key))
			return r->prov[i].value;
	return "";
}

bool dsv32_report_comparable(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			     char *why, size_t len)
{
	/* what decides the numbers compared; the checkpoint path, the budget, the build and the
	 * host are not (the host has its own note) */
	static const char *const keys[] = {"weights_fingerprint_sha256", "config", "layers",
					   "tokens", "seed", "decode_steps"};
	const struct {
		const char *what, *x, *y;
	} top[] = {{"mode", baseline->mode, current->mode},
		   {"side a", baseline->side_a, current->side_a},
		   {"side b", baseline->side_b, current->side_b}};
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		if (strcmp(top[i].x, top[i].y) != 0) {
			snprintf(why, len, "%s differs: \"%.60s\" (baseline) vs \"%.60s\" (current)",
				 top[i].what, top[i].x, top[i].y);
			return false;
		}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *x = prov_value(baseline, keys[i]), *y = prov_value(current, keys[i]);
		if (strcmp(x, y) != 0) {
			snprintf(why, len, "provenance \"%s\" differs: \"%.40s%s\" (baseline) vs "
				 "\"%.40s%s\" (current)", keys[i], x, strlen(x) > 40 ? "..." : "", y,
				 strlen(y) > 40 ? "..." : "");
			return false;
		}
	}
	return true;
}

int dsv32_report_check(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		       double max_regression, FILE *out)
{
	int bad = 0;
	note_numerics_keys(baseline, current, out);
	for (size_t i = 0; i < baseline->n_taps; i++) {
		const dsv32_tap_result *b = &baseline->taps[i];
		const dsv32_tap_result *c = find_tap(current, b);
		if (!c) {
			fprintf(out, "REGRESSION step %d %s: missing in the current run\n", b->step, b->name);
			bad++;
			continue;
		}
		double vb = drift_value(b), vc = drift_value(c);
		double limit = vb * (1.0 + max_regression) + 1e-6;
		if (!(vc <= limit)) {
			fprintf(out, "REGRESSION step %d %s (%s): drift %.4g > baseline %.4g x %.3g\n",
				c->step, c->name, c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate",
				vc, vb, 1.0 + max_regression);
			bad++;
		}
	}
	for (size_t i = 0; i < current->n_taps; i++)
		if (!find_tap(baseline, &current->taps[i]))
			fprintf(out, "new tap (not in baseline): step %d %s\n", current->taps[i].step,
				current->taps[i].name);
	if (!current->nonfinite && baseline->nonfinite)
		fprintf(out, "note: the baseline had non-finite values, the current run has none\n");
	if (current->nonfinite && !baseline->nonfinite) {
		fprintf(out, "REGRESSION: non-finite values at %s\n", current->nonfinite_tap);
		bad++;
	}
	fprintf(out, "%d regression(s) over %zu baseline taps (max regression %.3g)\n", bad,
		baseline->n_taps, max_regression);
	return bad;
}

static bool same_num(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

/* The name of the first figure that differs between two results of one tap, or NULL. */
static const char *first_figure_diff(const dsv32_tap_result *b, const dsv32_tap_result *c)
{
	const dsv32_metrics *x = &b->dense, *y = &c->dense;
	const dsv32_set_metrics *s = &b->set, *t = &c->set;
	const dsv32_logit_metrics *l = &b->logits, *m = &c->logits;
	struct {
		const char *name;
		double a, b;
	} f[] = {
		{"n", (double)x->n, (double)y->n}, {"n_diff", (double)x->n_diff, (double)y->n_diff},
		{"max_abs", x->max_abs, y->max_abs}, {"mean_abs", x->mean_abs, y->mean_abs},
		{"rms", x->rms, y->rms}, {"rel_l2", x->rel_l2, y->rel_l2},
		{"cosine", x->cosine, y->cosine}, {"ulp_max", x->ulp_max, y->ulp_max},
		{"ulp_mean", x->ulp_mean, y->ulp_mean}, {"ulp_p99", x->ulp_p99, y->ulp_p99},
		{"frac_over_tol", x->frac_over_tol, y->frac_over_tol},
		{"set.rows_equal", (double)s->rows_equal, (double)t->rows_equal},
		{"set.rows_tie_equal", (double)s->rows_tie_equal, (double)t->rows_tie_equal},
		{"set.jaccard", s->jaccard, t->jaccard}, {"set.recall", s->recall, t->recall},
		{"logits.kl", l->kl, m->kl}, {"logits.top1_agree", l->top1_agree, m->top1_agree},
		{"logits.top5_overlap", l->top5_overlap, m->top5_overlap},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!same_num(f[i].a, f[i].b))
			return f[i].name;
	return NULL;
}

int dsv32_report_check_exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			     FILE *out)
{
	int bad = 0;
	note_numerics_keys(baseline, current, out);
	for (size_t i = 0; i < baseline->n_taps; i++) {
		const dsv32_tap_result *b = &baseline->taps[i];
		const dsv32_tap_result *c = find_tap(current, b);
		const char *what = c ? first_figure_diff(b, c) : NULL;
		if (!c)
			fprintf(out, "DIFFERENT step %d %s: missing in the current run\n", b->step,
				b->name);
		else if (what)
			fprintf(out, "DIFFERENT step %d %s: %s differs (rel_l2 %.17g vs baseline %.17g)\n",
				b->step, b->name, what, c->dense.rel_l2, b->dense.rel_l2);
		bad += !c || what;
	}
	for (size_t i = 0; i < current->n_taps; i++)
		if (!find_tap(baseline, &current->taps[i])) {
			fprintf(out, "DIFFERENT step %d %s: not in the baseline\n",
				current->taps[i].step, current->taps[i].name);
			bad++;
		}
	fprintf(out, "%d difference(s) over %zu baseline taps (exact check)\n", bad,
		baseline->n_taps);
	return bad;
}
