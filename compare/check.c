/* check.c: the CI gate of `report check` over two runs' results (see check.h). */
#include "compare/check.h"

#include <math.h>
#include <string.h>

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
	const char *v = dsv32_cmp_result_prov_get(r, key);
	return v ? v : "";
}

bool dsv32_check_comparable(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
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

int dsv32_check_regressions(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		       double max_regression, FILE *out)
{
	int bad = 0;
	note_numerics_keys(baseline, current, out);
	for (size_t i = 0; i < baseline->n_taps; i++) {
		const dsv32_tap_result *b = &baseline->taps[i];
		const dsv32_tap_result *c = dsv32_cmp_result_find(current, b);
		if (!c) {
			fprintf(out, "REGRESSION step %d %s: missing in the current run\n", b->step, b->name);
			bad++;
			continue;
		}
		double vb = dsv32_tap_drift(b), vc = dsv32_tap_drift(c);
		double limit = vb * (1.0 + max_regression) + 1e-6;
		if (!(vc <= limit)) {
			fprintf(out, "REGRESSION step %d %s (%s): drift %.4g > baseline %.4g x %.3g\n",
				c->step, c->name, c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate",
				vc, vb, 1.0 + max_regression);
			bad++;
		}
	}
	for (size_t i = 0; i < current->n_taps; i++)
		if (!dsv32_cmp_result_find(baseline, &current->taps[i]))
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

/* The name of the first figure that differs between two results of one tap, or NULL: the
 * figures of the metric table's exact view, in its order (compare/metrics.h). */
static const char *first_figure_diff(const dsv32_tap_result *b, const dsv32_tap_result *c,
				     char *buf, size_t len)
{
	const dsv32_metric_desc *m;
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_EXACT, place)); place++)
		if (!same_num(dsv32_tap_figure(b, m), dsv32_tap_figure(c, m)))
			return dsv32_metric_figure_name(buf, len, m);
	return NULL;
}

int dsv32_check_exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			     FILE *out)
{
	int bad = 0;
	note_numerics_keys(baseline, current, out);
	for (size_t i = 0; i < baseline->n_taps; i++) {
		const dsv32_tap_result *b = &baseline->taps[i];
		const dsv32_tap_result *c = dsv32_cmp_result_find(current, b);
		char name[64];
		const char *what = c ? first_figure_diff(b, c, name, sizeof name) : NULL;
		if (!c)
			fprintf(out, "DIFFERENT step %d %s: missing in the current run\n", b->step,
				b->name);
		else if (what)
			fprintf(out, "DIFFERENT step %d %s: %s differs (rel_l2 %.17g vs baseline %.17g)\n",
				b->step, b->name, what, c->dense.rel_l2, b->dense.rel_l2);
		bad += !c || what;
	}
	for (size_t i = 0; i < current->n_taps; i++)
		if (!dsv32_cmp_result_find(baseline, &current->taps[i])) {
			fprintf(out, "DIFFERENT step %d %s: not in the baseline\n",
				current->taps[i].step, current->taps[i].name);
			bad++;
		}
	fprintf(out, "%d difference(s) over %zu baseline taps (exact check)\n", bad,
		baseline->n_taps);
	return bad;
}
