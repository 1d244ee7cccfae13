/* metrics.c: dense, index-set and logit drift metrics (see metrics.h for the definitions). */
#include "compare/metrics.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ULP_HIST_SIZE (DSV32_ULP_CAP + 1u)

int32_t dsv32_bf16_ordinal(float x)
{
	uint16_t h = dsv32_f32_to_bf16(x);
	int32_t mag = h & 0x7fff;
	return (h & 0x8000) ? -mag : mag;
}

/* Spacing of the bf16 grid at |x| (x already a bf16 value): 2^(e-7) for a normal x of exponent
 * e, and the subnormal spacing 2^-133 below 2^-126. */
static double bf16_spacing(double ax)
{
	if (ax < 0x1.0p-126)
		return 0x1.0p-133;
	int e;
	frexp(ax, &e); /* ax = f 2^e, f in [0.5, 1) */
	return ldexp(1.0, e - 1 - 7);
}

uint32_t dsv32_bf16_ulp_distance(float a, float b)
{
	double x = dsv32_round_bf16(a), y = dsv32_round_bf16(b);
	if (x == y)
		return 0;
	double d = fabs(x - y);
	if (isinf(d))
		return DSV32_ULP_CAP;
	double m = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
	double u = ceil(d / bf16_spacing(m));
	return u >= DSV32_ULP_CAP ? DSV32_ULP_CAP : (uint32_t)u;
}

static uint32_t hist_quantile(const uint32_t *hist, int64_t n, double q)
{
	if (n <= 0)
		return 0;
	int64_t target = (int64_t)ceil(q * (double)n);
	if (target < 1)
		target = 1;
	int64_t seen = 0;
	for (uint32_t i = 0; i < ULP_HIST_SIZE; i++) {
		seen += hist[i];
		if (seen >= target)
			return i;
	}
	return ULP_HIST_SIZE - 1;
}

static int dtype_rank(dsv32_dtype t)
{
	switch (t) {
	case DSV32_F8_E5M2: return 0;
	case DSV32_F8_E4M3: return 1;
	case DSV32_BF16: return 2;
	case DSV32_F16: return 3;
	case DSV32_F32: return 4;
	default: return 5;
	}
}

void dsv32_dtype_tolerance(dsv32_dtype ta, dsv32_dtype tb, double *rtol, double *atol)
{
	static const double rt[6] = {0.25, 0.125, 1.6e-2, 1e-3, 1.3e-6, 1e-7};
	static const double at[6] = {1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-7};
	int r = dtype_rank(ta) < dtype_rank(tb) ? dtype_rank(ta) : dtype_rank(tb);
	*rtol = rt[r];
	*atol = at[r];
}

static bool is_masked(double x)
{
	return x <= -1e37; /* -inf, finfo(f32).min, finfo(bf16).min */
}

static bool dense(dsv32_metrics *m, const void *a, dsv32_dtype ta, const void *b, dsv32_dtype tb,
		  int64_t n, bool masks);

bool dsv32_metrics_dense(dsv32_metrics *m, const void *a, dsv32_dtype ta, const void *b,
			 dsv32_dtype tb, int64_t n)
{
	return dense(m, a, ta, b, tb, n, false);
}

bool dsv32_metrics_dense_masked(dsv32_metrics *m, const void *a, dsv32_dtype ta, const void *b,
				dsv32_dtype tb, int64_t n)
{
	return dense(m, a, ta, b, tb, n, true);
}

static bool dense(dsv32_metrics *m, const void *a, dsv32_dtype ta, const void *b, dsv32_dtype tb,
		  int64_t n, bool masks)
{
	double rtol, atol;
	dsv32_dtype_tolerance(ta, tb, &rtol, &atol);
	memset(m, 0, sizeof *m);
	m->max_abs_at = -1;
	if (!dsv32_dtype_is_float(ta) || !dsv32_dtype_is_float(tb))
		return false;
	uint32_t *hist = calloc(ULP_HIST_SIZE, sizeof *hist);
	if (!hist)
		return false;
	double sum_abs = 0, sum_sq = 0, sum_aa = 0, sum_bb = 0, sum_ab = 0, sum_ulp = 0;
	int64_t over = 0;
	for (int64_t i = 0; i < n; i++) {
		double x = dsv32_load_f64(a, ta, (size_t)i), y = dsv32_load_f64(b, tb, (size_t)i);
		bool xn = isnan(x), yn = isnan(y);
		m->nan_a += xn;
		m->nan_b += yn;
		m->inf_a += isinf(x) && !(masks && x < 0);
		m->inf_b += isinf(y) && !(masks && y < 0);
		if (xn || yn)
			continue;
		if (masks && (is_masked(x) || is_masked(y))) {
			bool both = is_masked(x) && is_masked(y);
			m->n_masked += both;
			m->n_mask_diff += !both;
			over += !both;
			continue;
		}
		double d = (x == y) ? 0.0 : fabs(x - y); /* inf == inf gives 0, not NaN */
		m->n_diff += x != y;
		if (d > m->max_abs || m->max_abs_at < 0) {
			m->max_abs = d;
			m->max_abs_at = i;
		}
		uint32_t u = dsv32_bf16_ulp_distance((float)x, (float)y);
		hist[u]++;
		if (u > m->ulp_max)
			m->ulp_max = u;
		over += d > atol + rtol * fabs(x);
		sum_ulp += u;
		sum_abs += d;
		sum_sq += d * d;
		if (isfinite(x) && isfinite(y)) {
			sum_aa += x * x;
			sum_bb += y * y;
			sum_ab += x * y;
		}
		m->n++;
	}
	if (m->n > 0) {
		m->mean_abs = sum_abs / (double)m->n;
		m->rms = sqrt(sum_sq / (double)m->n);
		m->ulp_mean = sum_ulp / (double)m->n;
	}
	if (m->n + m->n_mask_diff > 0)
		m->frac_over_tol = (double)over / (double)(m->n + m->n_mask_diff);
	m->ulp_p99 = hist_quantile(hist, m->n, 0.99);
	if (sum_aa > 0)
		m->rel_l2 = sqrt(sum_sq) / sqrt(sum_aa);
	else
		m->rel_l2 = sum_sq > 0 ? INFINITY : 0.0;
	if (sum_aa > 0 && sum_bb > 0)
		m->cosine = sum_ab / (sqrt(sum_aa) * sqrt(sum_bb));
	else
		m->cosine = (sum_aa == 0 && sum_bb == 0) ? 1.0 : 0.0;
	free(hist);
	return true;
}

static bool contains(const int64_t *v, int64_t k, int64_t x)
{
	for (int64_t i = 0; i < k; i++)
		if (v[i] == x)
			return true;
	return false;
}

static int cmp_float_desc(const void *pa, const void *pb)
{
	float a = *(const float *)pa, b = *(const float *)pb;
	return (a < b) - (a > b);
}

/* Scores of a selection, sorted, so two selections can be compared as multisets. */
static bool row_scores(float *out, const int64_t *sel, int64_t k, const float *scores,
		       int64_t n_cols)
{
	for (int64_t i = 0; i < k; i++) {
		if (sel[i] < 0 || sel[i] >= n_cols)
			return false;
		out[i] = scores[sel[i]];
	}
	qsort(out, (size_t)k, sizeof *out, cmp_float_desc);
	return true;
}

static bool tie_equal(const int64_t *ra, const int64_t *rb, int64_t k, const float *scores,
		      int64_t n_cols, float *sa, float *sb)
{
	if (!row_scores(sa, ra, k, scores, n_cols) || !row_scores(sb, rb, k, scores, n_cols))
		return false;
	for (int64_t i = 0; i < k; i++)
		if (!(sa[i] == sb[i] || (isinf(sa[i]) && sa[i] == sb[i])))
			return false;
	return true;
}

bool dsv32_metrics_sets(dsv32_set_metrics *m, const int64_t *a, int64_t ka, const int64_t *b,
			int64_t kb, int64_t rows, const float *scores, int64_t n_cols)
{
	memset(m, 0, sizeof *m);
	m->rows = rows;
	m->first_diff_row = -1;
	m->score_noise = -1;
	int64_t kmax = ka > kb ? ka : kb;
	float *sa = malloc((size_t)(kmax ? kmax : 1) * sizeof *sa);
	float *sb = malloc((size_t)(kmax ? kmax : 1) * sizeof *sb);
	if (!sa || !sb) {
		free(sa);
		free(sb);
		return false;
	}
	double sum_recall = 0, sum_jacc = 0;
	for (int64_t r = 0; r < rows; r++) {
		const int64_t *ra = a + r * ka, *rb = b + r * kb;
		int64_t inter = 0;
		for (int64_t i = 0; i < ka; i++)
			inter += contains(rb, kb, ra[i]);
		int64_t uni = ka + kb - inter;
		sum_recall += ka ? (double)inter / (double)ka : 1.0;
		sum_jacc += uni ? (double)inter / (double)uni : 1.0;
		bool equal = (ka == kb && inter == ka);
		m->rows_equal += equal;
		bool teq = equal || (scores && ka == kb &&
				     tie_equal(ra, rb, ka, scores + r * n_cols, n_cols, sa, sb));
		m->rows_tie_equal += teq;
		if (!equal && m->first_diff_row < 0)
			m->first_diff_row = r;
	}
	if (rows > 0) {
		m->recall = sum_recall / (double)rows;
		m->jaccard = sum_jacc / (double)rows;
	} else {
		m->recall = m->jaccard = 1.0;
	}
	free(sa);
	free(sb);
	return true;
}

static void top_n(const double *v, int64_t V, int64_t n, int64_t *out)
{
	for (int64_t j = 0; j < n; j++) {
		int64_t best = -1;
		for (int64_t i = 0; i < V; i++) {
			if (contains(out, j, i))
				continue;
			if (best < 0 || v[i] > v[best])
				best = i;
		}
		out[j] = best;
	}
}

static void log_softmax(double *v, int64_t V)
{
	double mx = -INFINITY, s = 0;
	for (int64_t i = 0; i < V; i++)
		mx = v[i] > mx ? v[i] : mx;
	for (int64_t i = 0; i < V; i++)
		s += exp(v[i] - mx);
	double lse = mx + log(s);
	for (int64_t i = 0; i < V; i++)
		v[i] -= lse;
}

bool dsv32_metrics_logits(dsv32_logit_metrics *m, const void *a, dsv32_dtype ta, const void *b,
			  dsv32_dtype tb, int64_t rows, int64_t V)
{
	memset(m, 0, sizeof *m);
	m->rows = rows;
	if (!dsv32_dtype_is_float(ta) || !dsv32_dtype_is_float(tb) || V <= 0)
		return false;
	double *la = malloc((size_t)V * sizeof *la), *lb = malloc((size_t)V * sizeof *lb);
	if (!la || !lb) {
		free(la);
		free(lb);
		return false;
	}
	double kl = 0, top1 = 0, top5 = 0;
	int64_t n5 = V < 5 ? V : 5;
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t i = 0; i < V; i++) {
			la[i] = dsv32_load_f64(a, ta, (size_t)(r * V + i));
			lb[i] = dsv32_load_f64(b, tb, (size_t)(r * V + i));
		}
		int64_t ta5[5], tb5[5];
		top_n(la, V, n5, ta5);
		top_n(lb, V, n5, tb5);
		top1 += ta5[0] == tb5[0];
		int64_t inter = 0;
		for (int64_t j = 0; j < n5; j++)
			inter += contains(tb5, n5, ta5[j]);
		top5 += (double)inter / (double)n5;
		log_softmax(la, V);
		log_softmax(lb, V);
		double k = 0;
		for (int64_t i = 0; i < V; i++)
			k += exp(la[i]) * (la[i] - lb[i]);
		kl += k;
	}
	if (rows > 0) {
		m->kl = kl / (double)rows;
		m->top1_agree = top1 / (double)rows;
		m->top5_overlap = top5 / (double)rows;
	}
	free(la);
	free(lb);
	return true;
}

/* ---- the metric table ---- */

static double nan_count(const void *fam)
{
	const dsv32_metrics *d = fam;
	return (double)(d->nan_a + d->nan_b);
}

static double rows_tie_equal_frac(const void *fam)
{
	const dsv32_set_metrics *s = fam;
	return s->rows ? (double)s->rows_tie_equal / (double)s->rows : 1.0;
}

/* Rows whose selection flipped beyond ties and near-ties, as a fraction of all rows. */
static double genuine_flip_frac(const void *fam)
{
	const dsv32_set_metrics *s = fam;
	return s->rows ? (double)s->rows_genuine / (double)s->rows : 0.0;
}

/* Where a figure lives: its family and the offset in that family's struct. */
#define DENSE_(f) .family = DSV32_FAMILY_DENSE, .offset = offsetof(dsv32_metrics, f)
#define SET_(f) .family = DSV32_FAMILY_SET, .offset = offsetof(dsv32_set_metrics, f)
#define LOGITS_(f) .family = DSV32_FAMILY_LOGITS, .offset = offsetof(dsv32_logit_metrics, f)
#define JSON_(key) .json_key = key
#define I64_ .type = DSV32_FIG_I64
#define U32_ .type = DSV32_FIG_U32
/* A metric budget files name `key`, bounded from above (larger is worse) or below, that applies
 * to results of the families `on` (logits results carry dense figures too). */
#define BMAX_(key, on) .budget_key = key, .applies = on, .dir = DSV32_DIR_MAX
#define BMIN_(key, on) .budget_key = key, .applies = on, .dir = DSV32_DIR_MIN
#define ON_DENSE_ (1u << DSV32_FAMILY_DENSE | 1u << DSV32_FAMILY_LOGITS)
#define ON_SET_ (1u << DSV32_FAMILY_SET)
#define ON_LOGITS_ (1u << DSV32_FAMILY_LOGITS)
#define ON_ALL_ (ON_DENSE_ | ON_SET_)
/* A column of the per-tap tables: place, terminal header and width, HTML and Markdown header. */
#define COL_(place, term, width, html, md) \
	.col = place, .col_term = term, .col_width = width, .col_html = html, .col_md = md
/* A place in the one-line summaries and the label there. */
#define SUM_(place, lbl) .summary = place, .label = lbl

/* Stored figures in JSON order within each family (the order the writer emits them), derived
 * ones after them. */
const dsv32_metric_desc dsv32_metric_table[] = {
	{DENSE_(n), JSON_("n"), I64_, .exact = 1},
	{DENSE_(n_diff), JSON_("n_diff"), I64_, .exact = 2},
	{DENSE_(max_abs), JSON_("max_abs"), BMAX_("max_abs", ON_DENSE_), .exact = 3,
	 .fmt = "%.3g", COL_(2, "max|d|", 10, "max |a-b|", "max abs")},
	{DENSE_(max_abs_at), JSON_("max_abs_at"), I64_},
	{DENSE_(mean_abs), JSON_("mean_abs"), BMAX_("mean_abs", ON_DENSE_), .exact = 4},
	{DENSE_(rms), JSON_("rms"), BMAX_("rms", ON_DENSE_), .exact = 5},
	{DENSE_(rel_l2), JSON_("rel_l2"), BMAX_("rel_l2", ON_DENSE_), .exact = 6,
	 .fmt = "%.3e", COL_(1, "rel_l2", 11, "rel_l2", "rel_l2"), .chart = 1},
	{DENSE_(cosine), JSON_("cosine"), BMIN_("cosine", ON_DENSE_), .exact = 7,
	 .fmt = "%.6f", COL_(5, "cosine", 9, "cosine", "cosine")},
	{DENSE_(ulp_max), JSON_("ulp_max"), U32_, BMAX_("ulp_max", ON_DENSE_), .exact = 8,
	 .fmt = "%u", COL_(3, "ulp_max", 7, "ulp max", NULL)},
	{DENSE_(ulp_mean), JSON_("ulp_mean"), BMAX_("ulp_mean", ON_DENSE_), .exact = 9},
	{DENSE_(ulp_p99), JSON_("ulp_p99"), U32_, BMAX_("ulp_p99", ON_DENSE_), .exact = 10,
	 .fmt = "%u", COL_(4, "ulp_p99", 7, "ulp p99", "ulp p99"), .chart = 2},
	{DENSE_(frac_over_tol), JSON_("frac_over_tol"), BMAX_("frac_over_tol", ON_DENSE_),
	 .exact = 11},
	{DENSE_(nan_a), JSON_("nan_a"), I64_},
	{DENSE_(nan_b), JSON_("nan_b"), I64_},
	{DENSE_(inf_a), JSON_("inf_a"), I64_},
	{DENSE_(inf_b), JSON_("inf_b"), I64_},
	{DENSE_(n_masked), JSON_("n_masked"), I64_},
	{DENSE_(n_mask_diff), JSON_("n_mask_diff"), I64_, BMAX_("mask_diff", ON_DENSE_)},
	{.family = DSV32_FAMILY_DENSE, .derive = nan_count, BMAX_("nan", ON_ALL_)},
	{SET_(rows), JSON_("rows"), I64_},
	{SET_(recall), JSON_("recall"), BMIN_("recall", ON_SET_), .exact = 15, .fmt = "%.4f",
	 SUM_(2, "recall")},
	{SET_(jaccard), JSON_("jaccard"), BMIN_("jaccard", ON_SET_), .exact = 14, .fmt = "%.4f",
	 SUM_(1, "jaccard")},
	{SET_(rows_equal), JSON_("rows_equal"), I64_, .exact = 12},
	{SET_(rows_tie_equal), JSON_("rows_tie_equal"), I64_, .exact = 13},
	{SET_(first_diff_row), JSON_("first_diff_row"), I64_},
	{SET_(rows_near_tie), JSON_("rows_near_tie"), I64_, .exact = 19},
	{SET_(rows_genuine), JSON_("rows_genuine"), I64_, .exact = 20},
	{SET_(flip_margin_max), JSON_("flip_margin_max"), .exact = 21},
	{SET_(score_noise), JSON_("score_noise"), .exact = 22},
	{.family = DSV32_FAMILY_SET, .derive = rows_tie_equal_frac,
	 BMIN_("rows_tie_equal_frac", ON_SET_)},
	{.family = DSV32_FAMILY_SET, .derive = genuine_flip_frac,
	 BMAX_("genuine_flip_frac", ON_SET_)},
	{LOGITS_(rows), JSON_("rows"), I64_},
	{LOGITS_(kl), JSON_("kl"), BMAX_("kl", ON_LOGITS_), .exact = 16, .fmt = "%.3e",
	 SUM_(3, "KL")},
	{LOGITS_(top1_agree), JSON_("top1_agree"), BMIN_("top1", ON_LOGITS_), .exact = 17,
	 .fmt = "%.3f", SUM_(4, "top1")},
	{LOGITS_(top5_overlap), JSON_("top5_overlap"), BMIN_("top5", ON_LOGITS_), .exact = 18,
	 .fmt = "%.3f", SUM_(5, "top5")},
};
const size_t dsv32_metric_count = sizeof dsv32_metric_table / sizeof dsv32_metric_table[0];

const dsv32_metric_desc *dsv32_metric_by_budget_key(const char *key)
{
	for (size_t i = 0; i < dsv32_metric_count; i++)
		if (dsv32_metric_table[i].budget_key && !strcmp(dsv32_metric_table[i].budget_key, key))
			return &dsv32_metric_table[i];
	return NULL;
}

static int place_in(const dsv32_metric_desc *m, dsv32_metric_view view)
{
	switch (view) {
	case DSV32_VIEW_COLUMN: return m->col;
	case DSV32_VIEW_SUMMARY: return m->summary;
	case DSV32_VIEW_EXACT: return m->exact;
	default: return m->chart;
	}
}

const dsv32_metric_desc *dsv32_metric_at(dsv32_metric_view view, int place)
{
	for (size_t i = 0; place > 0 && i < dsv32_metric_count; i++)
		if (place_in(&dsv32_metric_table[i], view) == place)
			return &dsv32_metric_table[i];
	return NULL;
}

const char *dsv32_metric_figure_name(char *buf, size_t len, const dsv32_metric_desc *m)
{
	static const char *const prefix[DSV32_FAMILY_COUNT] = {"", "set.", "logits."};
	snprintf(buf, len, "%s%s", prefix[m->family], m->json_key ? m->json_key : m->budget_key);
	return buf;
}
