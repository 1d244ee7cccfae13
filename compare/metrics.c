/* metrics.c: dense, index-set and logit drift metrics (see metrics.h for the definitions). */
#include "compare/metrics.h"

#include <math.h>
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
