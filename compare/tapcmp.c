/* tapcmp.c: the comparison of one tap pair by tap class (see tapcmp.h). */
#include "compare/tapcmp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/taps.h"

bool dsv32_tapcmp_is_set(const dsv32_tensor *t)
{
	return t->dtype == DSV32_I64 || t->dtype == DSV32_I32;
}

void dsv32_tapcmp_header(dsv32_tap_result *r, const char *name, int step, dsv32_drift_mode mode,
			 const dsv32_tensor *a, const dsv32_tensor *b)
{
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	dsv32_tap_split_name(name, &r->layer, r->op, sizeof r->op);
	r->step = step;
	r->mode = mode;
	snprintf(r->dtype_a, sizeof r->dtype_a, "%s", dsv32_dtype_name(a->dtype));
	snprintf(r->dtype_b, sizeof r->dtype_b, "%s", dsv32_dtype_name(b->dtype));
	r->ndim = b->ndim;
	for (int i = 0; i < b->ndim; i++)
		r->shape[i] = b->shape[i];
}

/* The tap of the same layer as `name` whose op is `companion`, from s (NULL when `name` is not
 * the layer op `self`, or s lacks it): a selection's scores, routing weights' expert ids. */
static const dsv32_tensor *companion_tap(dsv32_tapstore *s, const char *name, dsv32_layer_tap self,
					 dsv32_layer_tap companion)
{
	int layer;
	char op[64], cname[96];
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	if (!s || layer < 0 || dsv32_layer_tap_find(op) != (int)self)
		return NULL;
	dsv32_tap_entry *e = dsv32_tapstore_get(s, dsv32_layer_tap_name(cname, sizeof cname, layer,
									 companion));
	return e ? &e->t : NULL;
}

/* The name of the tap of set_name's layer that core/taps.h's table `of` pairs with its op
 * (scores, group scores); false when there is none. */
static bool paired_name(char *buf, size_t len, const char *set_name,
			int (*of)(dsv32_layer_tap set))
{
	int layer;
	char op[64];
	dsv32_tap_split_name(set_name, &layer, op, sizeof op);
	int set = dsv32_layer_tap_find(op);
	int t = set >= 0 ? of((dsv32_layer_tap)set) : -1;
	if (layer < 0 || t < 0)
		return false;
	dsv32_layer_tap_name(buf, len, layer, (dsv32_layer_tap)t);
	return true;
}

bool dsv32_tapcmp_scores_name(char *buf, size_t len, const char *set_name)
{
	return paired_name(buf, len, set_name, dsv32_layer_tap_scores_of);
}

bool dsv32_tapcmp_group_scores_name(char *buf, size_t len, const char *set_name)
{
	return paired_name(buf, len, set_name, dsv32_layer_tap_group_scores_of);
}

bool dsv32_tapcmp_is_selection_scores(const char *name)
{
	int layer;
	char op[64];
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	int t = dsv32_layer_tap_find(op);
	return layer >= 0 && t >= 0 &&
	       (dsv32_layer_tap_selection_of((dsv32_layer_tap)t) >= 0 ||
		dsv32_layer_tap_group_selection_of((dsv32_layer_tap)t) >= 0);
}

/* The F32 tap that names(set_name) gives, from store s, when it is `rows` whole rows; or NULL. */
static const dsv32_tensor *rows_in(dsv32_tapstore *s, const char *set_name, int64_t rows,
				   bool (*names)(char *buf, size_t len, const char *set_name))
{
	char cname[96];
	if (!s || !names(cname, sizeof cname, set_name))
		return NULL;
	dsv32_tap_entry *e = dsv32_tapstore_get(s, cname);
	const dsv32_tensor *t = e ? &e->t : NULL;
	if (!t || t->dtype != DSV32_F32 || t->ndim < 1 || rows < 1 ||
	    dsv32_tensor_numel(t) % rows != 0)
		return NULL;
	return t;
}

/* Scores a selection was made from (the tap table's pairing, core/taps.h
 * DSV32_SELECTION_TAPS), from store s, or NULL. */
static const dsv32_tensor *scores_in(dsv32_tapstore *s, const char *name, int64_t rows)
{
	return rows_in(s, name, rows, dsv32_tapcmp_scores_name);
}

/* The held side's selection scores (for the tie-tolerant check and the flip margins). */
static const dsv32_tensor *set_scores(const dsv32_tapcmp_peers *p, const char *name, int64_t rows)
{
	return scores_in(p->held, name, rows);
}

/* The streamed side's selection scores, or NULL. */
static const dsv32_tensor *other_scores(const dsv32_tapcmp_peers *p, const char *name,
					int64_t rows)
{
	dsv32_tapstore *streamed = p->sets_a == p->held ? p->sets_b : p->sets_a;
	return streamed == p->held ? NULL : scores_in(streamed, name, rows);
}

static bool masked(float v)
{
	return v <= -1e37f;
}

/* The group scores tap of selection `set_name` in s (F32, whole rows), or NULL. */
static const dsv32_tensor *group_scores_in(dsv32_tapstore *s, const char *set_name, int64_t rows)
{
	return rows_in(s, set_name, rows, dsv32_tapcmp_group_scores_name);
}

bool dsv32_tapcmp_group_stage(dsv32_group_stage *gs, const char *set_name, dsv32_tapstore *held,
			      dsv32_tapstore *store_a, dsv32_tapstore *store_b, int64_t rows)
{
	memset(gs, 0, sizeof *gs);
	const dsv32_tensor *sa = scores_in(store_a, set_name, rows);
	const dsv32_tensor *sb = scores_in(store_b, set_name, rows);
	dsv32_tapstore *other = held == store_a ? store_b : store_a;
	const dsv32_tensor *g = group_scores_in(held, set_name, rows);
	const dsv32_tensor *g_other = group_scores_in(other, set_name, rows);
	if (store_a == store_b || !sa || !sb || !g ||
	    dsv32_tensor_numel(sa) != dsv32_tensor_numel(sb))
		return false;
	*gs = (dsv32_group_stage){.sa = sa->data, .sb = sb->data, .g = g->data,
				  .n_cols = dsv32_tensor_numel(sa) / rows,
				  .n_groups = dsv32_tensor_numel(g) / rows,
				  .noise = dsv32_tapcmp_score_noise(g, g_other)};
	return true;
}

/* The largest |a - b| over the positions both score tensors leave unmasked: how far the two
 * sides' scores of one selection disagree (-1 when they cannot be paired). */
double dsv32_tapcmp_score_noise(const dsv32_tensor *a, const dsv32_tensor *b)
{
	if (!a || !b || dsv32_tensor_numel(a) != dsv32_tensor_numel(b))
		return -1;
	int64_t n = dsv32_tensor_numel(a);
	const float *x = a->data, *y = b->data;
	double worst = 0;
	for (int64_t i = 0; i < n; i++) {
		if (masked(x[i]) || masked(y[i]) || !isfinite(x[i]) || !isfinite(y[i]))
			continue;
		double d = fabs((double)x[i] - (double)y[i]);
		worst = d > worst ? d : worst;
	}
	return worst;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

typedef struct {
	double lo, hi;
	bool any, masked; /* masked: a pick whose score is masked (no margin to it) */
} score_range;

static void range_add(score_range *r, const float *s, int64_t n_cols, int64_t j)
{
	if (j < 0 || j >= n_cols)
		return;
	double v = s[j];
	if (masked(s[j])) {
		r->masked = true;
		return;
	}
	r->lo = r->any && r->lo < v ? r->lo : v;
	r->hi = r->any && r->hi > v ? r->hi : v;
	r->any = true;
}

/* The flip margin of one row (metrics.h): the largest |s[i] - s[j]| over i picked by a only
 * and j picked by b only, from the held side's scores s; that is max(hi_a - lo_b, hi_b - lo_a)
 * over the score ranges of the two differences, found by one merge of the sorted picks
 * (O(k log k): index_topk is 2048 on the real model). Sorts a and b in place. -1 when a
 * differing pick's score is masked: no margin measures that flip (it stays unclassified). */
static double flip_margin(int64_t *a, int64_t na, int64_t *b, int64_t nb, const float *s,
			  int64_t n_cols)
{
	qsort(a, (size_t)na, sizeof *a, cmp_i64);
	qsort(b, (size_t)nb, sizeof *b, cmp_i64);
	score_range only_a = {0}, only_b = {0};
	int64_t p = 0, q = 0;
	while (p < na || q < nb) {
		if (q == nb || (p < na && a[p] < b[q]))
			range_add(&only_a, s, n_cols, a[p++]);
		else if (p == na || b[q] < a[p])
			range_add(&only_b, s, n_cols, b[q++]);
		else
			p++, q++;
	}
	if (only_a.masked || only_b.masked) /* e.g. an expert of a group the held side dropped */
		return -1;
	if (!only_a.any || !only_b.any)
		return 0;
	double x = only_a.hi - only_b.lo, y = only_b.hi - only_a.lo;
	return x > y ? x : y;
}

/* The groups (bit q: group q) one side kept in a row: those its scores leave unmasked. */
static uint64_t kept_groups(const float *s, int64_t n_cols, int64_t G)
{
	uint64_t kept = 0;
	int64_t size = n_cols / G;
	for (int64_t q = 0; q < G; q++)
		for (int64_t j = q * size; j < (q + 1) * size; j++)
			if (!masked(s[j])) {
				kept |= (uint64_t)1 << q;
				break;
			}
	return kept;
}

/* The largest |g[i] - g[j]| over a group i in only_a and a group j in only_b; -1 when either
 * is empty (the kept groups agree: no group flip). */
static double group_margin(const float *g, uint64_t only_a, uint64_t only_b, int64_t G)
{
	double m = -1;
	for (int64_t i = 0; i < G; i++)
		for (int64_t j = 0; only_a >> i & 1 && j < G; j++)
			if (only_b >> j & 1) {
				double d = fabs((double)g[i] - (double)g[j]);
				m = d > m ? d : m;
			}
	return m;
}

/* Keeps the picks of p (n, sorted) that lie in the groups of `keep` (G groups of `size`);
 * returns how many. */
static int64_t picks_in_groups(int64_t *p, int64_t n, uint64_t keep, int64_t G, int64_t size)
{
	int64_t out = 0;
	for (int64_t i = 0; i < n; i++)
		if (p[i] >= 0 && p[i] / size < G && (keep >> (p[i] / size) & 1))
			p[out++] = p[i];
	return out;
}

/* Whether the two sides' score difference (noise: the largest |s_a - s_b|) explains a flip of
 * this margin (metrics.h "Decision flips"): if side a ranks i over j and side b j over i, then
 * s_a[i] - s_a[j] <= (s_b[i] - s_b[j]) + |d_i| + |d_j| <= 2·noise, so each side following its
 * own scores flips by at most twice the noise; a margin beyond it is a selection its scores do
 * not explain. */
static bool explained(double margin, double noise)
{
	return margin <= 2 * noise;
}

/* Whether the two sides kept different groups in this row (then its flip is measured at the
 * group stage); ka, kb: the groups each kept. False without a usable group stage. */
static bool groups_differ(const dsv32_group_stage *gs, int64_t row, int64_t n_cols, uint64_t *ka,
			  uint64_t *kb)
{
	int64_t G = gs ? gs->n_groups : 0;
	if (!gs || !gs->g || gs->noise < 0 || G < 2 || G > 64 || gs->n_cols != n_cols ||
	    n_cols % G)
		return false;
	*ka = kept_groups(gs->sa + row * n_cols, n_cols, G);
	*kb = kept_groups(gs->sb + row * n_cols, n_cols, G);
	return *ka != *kb;
}

/* A row whose sides kept different groups (a, b its picks), by its group stage (tapcmp.h
 * dsv32_group_stage): the group margin, and the expert margin over the picks in the groups
 * both kept. */
static dsv32_flip_class staged_class(int64_t *a, int64_t na, int64_t *b, int64_t nb,
				     const float *s, int64_t n_cols, double noise,
				     const dsv32_group_stage *gs, int64_t row, uint64_t ka,
				     uint64_t kb, double *margin)
{
	int64_t G = gs->n_groups;
	double mg = group_margin(gs->g + row * G, ka & ~kb, kb & ~ka, G);
	qsort(a, (size_t)na, sizeof *a, cmp_i64);
	qsort(b, (size_t)nb, sizeof *b, cmp_i64);
	na = picks_in_groups(a, na, ka & kb, G, n_cols / G);
	nb = picks_in_groups(b, nb, ka & kb, G, n_cols / G);
	double me = flip_margin(a, na, b, nb, s, n_cols);
	*margin = -1;
	if (mg < 0 || me < 0)
		return DSV32_FLIP_UNCLASSIFIED;
	*margin = mg > me ? mg : me;
	return explained(mg, gs->noise) && explained(me, noise) ? DSV32_FLIP_NEAR_TIE
								 : DSV32_FLIP_GENUINE;
}

/* Margin and class of a row that differs beyond ties (metrics.h "Decision flips"); sorts a, b.
 * A row whose sides kept different router groups is measured at the group stage (whichever
 * side is held: a pick of the other side's groups is no competitor of this side's picks). */
static dsv32_flip_class row_class(int64_t *a, int64_t na, int64_t *b, int64_t nb, const float *s,
				  int64_t n_cols, double noise, const dsv32_group_stage *gs,
				  int64_t row, double *margin)
{
	uint64_t ka, kb;
	if (groups_differ(gs, row, n_cols, &ka, &kb))
		return staged_class(a, na, b, nb, s, n_cols, noise, gs, row, ka, kb, margin);
	*margin = flip_margin(a, na, b, nb, s, n_cols);
	if (*margin < 0) /* a masked pick that no group stage measures */
		return DSV32_FLIP_UNCLASSIFIED;
	return explained(*margin, noise) ? DSV32_FLIP_NEAR_TIE : DSV32_FLIP_GENUINE;
}

/* Classify a row that differs beyond ties into acc. */
static void classify_flip(dsv32_set_metrics *acc, int64_t *a, int64_t na, int64_t *b, int64_t nb,
			  const float *s, int64_t n_cols, const dsv32_group_stage *gs, int64_t row)
{
	if (acc->score_noise < 0)
		return;
	double m;
	dsv32_flip_class cls = row_class(a, na, b, nb, s, n_cols, acc->score_noise, gs, row, &m);
	if (cls == DSV32_FLIP_UNCLASSIFIED)
		return;
	acc->flip_margin_max = m > acc->flip_margin_max ? m : acc->flip_margin_max;
	if (cls == DSV32_FLIP_NEAR_TIE)
		acc->rows_near_tie++;
	else
		acc->rows_genuine++;
}

/* Whether picks at masked scores do nothing in selection `name` (the tap table's column). */
static bool masked_picks_unused(const char *name)
{
	int layer;
	char op[64];
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	int t = dsv32_layer_tap_find(op);
	return t < 0 || dsv32_layer_tap_masked_picks_unused((dsv32_layer_tap)t);
}

/* Copy of a row's picks without the ones whose score is masked (-inf / finfo.min): a row with
 * fewer visible keys than k picks masked positions arbitrarily, and the mask removes them.
 * Only for selections whose masked picks do nothing (core/taps.h DSV32_SELECTION_TAPS). */
static int64_t visible_picks(int64_t *out, const int64_t *row, int64_t k, const float *scores,
			     int64_t n_cols, bool drop_masked)
{
	int64_t n = 0;
	for (int64_t i = 0; i < k; i++) {
		int64_t j = row[i];
		if (drop_masked && scores && j >= 0 && j < n_cols && scores[j] <= -1e37f)
			continue;
		out[n++] = j;
	}
	return n;
}

/* Set metrics over the visible picks of each row (all picks when no scores are recorded). */
static bool sets_visible(dsv32_set_metrics *m, const int64_t *a, int64_t ka, const int64_t *b,
			 int64_t kb, int64_t rows, const float *scores, int64_t n_cols, double noise,
			 bool drop_masked, const dsv32_group_stage *gs)
{
	if (!scores)
		return dsv32_metrics_sets(m, a, ka, b, kb, rows, NULL, 0);
	int64_t k = ka > kb ? ka : kb;
	int64_t *ra = malloc((size_t)k * sizeof *ra), *rb = malloc((size_t)k * sizeof *rb);
	dsv32_set_metrics acc = {.rows = rows, .first_diff_row = -1, .score_noise = noise};
	bool ok = ra && rb;
	double rec = 0, jac = 0;
	for (int64_t r = 0; ok && r < rows; r++) {
		const float *sc = scores + r * n_cols;
		int64_t na = visible_picks(ra, a + r * ka, ka, sc, n_cols, drop_masked);
		int64_t nb = visible_picks(rb, b + r * kb, kb, sc, n_cols, drop_masked);
		dsv32_set_metrics one;
		/* a row at a time: sizes may differ per row once masked picks are dropped */
		ok = dsv32_metrics_sets(&one, ra, na, rb, nb, 1, sc, n_cols);
		rec += one.recall;
		jac += one.jaccard;
		acc.rows_equal += one.rows_equal;
		acc.rows_tie_equal += one.rows_tie_equal;
		if (one.rows_equal == 0 && acc.first_diff_row < 0)
			acc.first_diff_row = r;
		if (one.rows_tie_equal == 0)
			classify_flip(&acc, ra, na, rb, nb, sc, n_cols, gs, r);
	}
	acc.recall = rows ? rec / (double)rows : 1.0;
	acc.jaccard = rows ? jac / (double)rows : 1.0;
	*m = acc;
	free(ra);
	free(rb);
	return ok;
}

dsv32_flip_class dsv32_tapcmp_classify_row(const char *name, const int64_t *a, int64_t ka,
					   const int64_t *b, int64_t kb, const float *scores,
					   int64_t n_cols, double noise,
					   const dsv32_group_stage *gs, int64_t row,
					   double *margin)
{
	bool drop = masked_picks_unused(name);
	*margin = -1;
	if (!scores)
		return DSV32_FLIP_UNCLASSIFIED;
	int64_t k = ka > kb ? ka : kb;
	int64_t *ra = malloc((size_t)(k + 1) * sizeof *ra), *rb = malloc((size_t)(k + 1) * sizeof *rb);
	dsv32_flip_class cls = DSV32_FLIP_UNCLASSIFIED;
	dsv32_set_metrics one;
	if (ra && rb) {
		int64_t na = visible_picks(ra, a, ka, scores, n_cols, drop);
		int64_t nb = visible_picks(rb, b, kb, scores, n_cols, drop);
		if (dsv32_metrics_sets(&one, ra, na, rb, nb, 1, scores, n_cols) &&
		    one.rows_tie_equal == 1) {
			cls = DSV32_FLIP_TIE;
			*margin = 0;
		} else if (noise >= 0) {
			cls = row_class(ra, na, rb, nb, scores, n_cols, noise, gs, row, margin);
		}
	}
	free(ra);
	free(rb);
	return cls;
}

static bool compare_sets(dsv32_tap_result *r, const dsv32_tapcmp_peers *p, const char *name,
			 const dsv32_tensor *a, const dsv32_tensor *b)
{
	if (a->dtype != DSV32_I64 || b->dtype != DSV32_I64 || a->ndim < 1 || b->ndim < 1)
		return false;
	int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim - 1];
	int64_t rows = ka ? dsv32_tensor_numel(a) / ka : 0;
	if (!kb || rows != dsv32_tensor_numel(b) / kb)
		return false;
	const dsv32_tensor *sc = set_scores(p, name, rows);
	double noise = sc ? dsv32_tapcmp_score_noise(sc, other_scores(p, name, rows)) : -1;
	dsv32_group_stage gs;
	bool staged = dsv32_tapcmp_group_stage(&gs, name, p->held, p->sets_a, p->sets_b, rows);
	r->family = DSV32_FAMILY_SET;
	return sets_visible(&r->set, a->data, ka, b->data, kb, rows, sc ? sc->data : NULL,
			    sc ? dsv32_tensor_numel(sc) / rows : 0, noise, masked_picks_unused(name),
			    staged ? &gs : NULL);
}

/* Logits may come as [B,V] (last position) on one side and [B,S,V] on the other: compare the
 * last position. Gives the rows, the vocabulary and each side's positions per row. */
static bool logits_align(const dsv32_tensor *a, const dsv32_tensor *b, int64_t *rows, int64_t *V,
			 int64_t *S_a, int64_t *S_b)
{
	*V = a->shape[a->ndim - 1];
	if (b->shape[b->ndim - 1] != *V || a->ndim < 2 || b->ndim < 2)
		return false;
	*rows = a->shape[0];
	if (b->shape[0] != *rows)
		return false;
	*S_a = a->ndim == 3 ? a->shape[1] : 1;
	*S_b = b->ndim == 3 ? b->shape[1] : 1;
	return true;
}

/* Row i's last position of logits [rows, S, V] at row i of a new [rows, V] buffer (S > 1). */
static char *last_positions(const dsv32_tensor *t, int64_t rows, int64_t S, int64_t V)
{
	size_t es = dsv32_dtype_size(t->dtype), row = (size_t)V * es;
	char *out = malloc((size_t)rows * row);
	for (int64_t i = 0; out && i < rows; i++)
		memcpy(out + (size_t)i * row, (const char *)t->data + (size_t)(i * S + S - 1) * row,
		       row);
	return out;
}

static bool compare_logits(dsv32_tap_result *r, const dsv32_tensor *a, const dsv32_tensor *b)
{
	int64_t rows, V, Sa, Sb;
	if (!logits_align(a, b, &rows, &V, &Sa, &Sb))
		return false;
	char *ga = Sa > 1 ? last_positions(a, rows, Sa, V) : NULL;
	char *gb = Sb > 1 ? last_positions(b, rows, Sb, V) : NULL;
	const void *pa = Sa > 1 ? ga : a->data, *pb = Sb > 1 ? gb : b->data;
	bool ok = pa && pb;
	r->family = DSV32_FAMILY_LOGITS;
	ok = ok && dsv32_metrics_dense(&r->dense, pa, a->dtype, pb, b->dtype, rows * V) &&
	     dsv32_metrics_logits(&r->logits, pa, a->dtype, pb, b->dtype, rows, V);
	free(ga);
	free(gb);
	return ok;
}

/* Mixing weights as a dense [rows, E] routing matrix (0 for experts not selected), so slot
 * order is not drift and a different expert counts as its weight moving from one expert to
 * another. E = 1 + the largest id on either side. */
static int64_t max_id(const dsv32_tensor *ids)
{
	int64_t m = -1;
	for (int64_t i = 0; i < dsv32_tensor_numel(ids); i++)
		m = ((const int64_t *)ids->data)[i] > m ? ((const int64_t *)ids->data)[i] : m;
	return m;
}

static float *weights_dense(const dsv32_tensor *w, const dsv32_tensor *ids, int64_t E)
{
	int64_t n = dsv32_tensor_numel(w), k = w->shape[w->ndim - 1];
	if (!ids || dsv32_tensor_numel(ids) != n || k < 1 || E < 1 || E > (1 << 20))
		return NULL;
	float *out = calloc((size_t)(n / k * E), sizeof *out);
	if (!out)
		return NULL;
	const int64_t *id = ids->data;
	for (int64_t i = 0; i < n; i++) {
		if (id[i] < 0 || id[i] >= E) {
			free(out);
			return NULL;
		}
		out[i / k * E + id[i]] += (float)dsv32_load_f64(w->data, w->dtype, (size_t)i);
	}
	return out;
}

/* The expert ids that go with routing weights, from one side's set taps. */
static const dsv32_tensor *experts_for(dsv32_tapstore *s, const char *weights_name)
{
	const dsv32_tensor *t = companion_tap(s, weights_name, DSV32_LTAP_MOE_WEIGHTS,
					      DSV32_LTAP_MOE_EXPERTS);
	return t && t->dtype == DSV32_I64 ? t : NULL;
}

static bool compare_route_weights(dsv32_tap_result *r, const dsv32_tapcmp_peers *p,
				  const char *name, const dsv32_tensor *a, const dsv32_tensor *b)
{
	const dsv32_tensor *ia = experts_for(p->sets_a, name), *ib = experts_for(p->sets_b, name);
	int64_t E = 0;
	if (ia && ib) {
		E = max_id(ia) > max_id(ib) ? max_id(ia) : max_id(ib);
		E += 1;
	}
	float *wa = E ? weights_dense(a, ia, E) : NULL;
	float *wb = E ? weights_dense(b, ib, E) : NULL;
	bool ok;
	if (wa && wb)
		ok = dsv32_metrics_dense(&r->dense, wa, DSV32_F32, wb, DSV32_F32,
					 dsv32_tensor_numel(a) / a->shape[a->ndim - 1] * E);
	else
		ok = dsv32_metrics_dense(&r->dense, a->data, a->dtype, b->data, b->dtype,
					 dsv32_tensor_numel(a));
	free(wa);
	free(wb);
	return ok;
}

/* The most entries of one row (the last dimension) that a or b leaves unmasked: how many a
 * selection made from these scores could choose among (result.h visible_max). */
static int64_t visible_max(const dsv32_tensor *a, const dsv32_tensor *b)
{
	int64_t n = dsv32_tensor_numel(a), cols = a->ndim ? a->shape[a->ndim - 1] : 0, most = 0;
	if (cols < 1 || n % cols)
		return 0;
	for (int64_t r0 = 0; r0 < n; r0 += cols) {
		int64_t v = 0;
		for (int64_t j = r0; j < r0 + cols; j++)
			v += !masked((float)dsv32_load_f64(a->data, a->dtype, (size_t)j)) ||
			     !masked((float)dsv32_load_f64(b->data, b->dtype, (size_t)j));
		most = v > most ? v : most;
	}
	return most;
}

/* Element-wise metrics of two tensors of one size; scores compare with their mask. */
static bool compare_dense(dsv32_tap_result *r, const dsv32_tensor *a, const dsv32_tensor *b,
			  bool masked)
{
	int64_t n = dsv32_tensor_numel(a);
	if (n != dsv32_tensor_numel(b))
		return false;
	if (masked) {
		r->visible_max = visible_max(a, b);
		return dsv32_metrics_dense_masked(&r->dense, a->data, a->dtype, b->data, b->dtype, n);
	}
	return dsv32_metrics_dense(&r->dense, a->data, a->dtype, b->data, b->dtype, n);
}

/* A set is known by its dtype (an extra I64 tap is one); every other tap by its class. */
static bool compare_by_class(dsv32_tap_result *r, const dsv32_tapcmp_peers *p, const char *name,
			     const dsv32_tensor *a, const dsv32_tensor *b)
{
	if (dsv32_tapcmp_is_set(a) || dsv32_tapcmp_is_set(b))
		return compare_sets(r, p, name, a, b);
	switch (dsv32_tap_class_of(name)) {
	case DSV32_TAPC_LOGITS:
		return compare_logits(r, a, b);
	case DSV32_TAPC_ROUTE_WEIGHTS:
		if (dsv32_tensor_numel(a) == dsv32_tensor_numel(b))
			return compare_route_weights(r, p, name, a, b);
		return compare_dense(r, a, b, false);
	case DSV32_TAPC_MASKED_SCORES:
		return compare_dense(r, a, b, true);
	default:
		return compare_dense(r, a, b, false);
	}
}

bool dsv32_tapcmp(dsv32_tap_result *r, const dsv32_tapcmp_peers *peers, const char *name,
		  const dsv32_tensor *a, const dsv32_tensor *b, char *why, size_t why_len)
{
	if (compare_by_class(r, peers, name, a, b))
		return true;
	char sa[64], sb[64];
	snprintf(why, why_len, "not comparable: %s %s vs %s %s", dsv32_dtype_name(a->dtype),
		 dsv32_shape_str(sa, sizeof sa, a->ndim, a->shape), dsv32_dtype_name(b->dtype),
		 dsv32_shape_str(sb, sizeof sb, b->ndim, b->shape));
	return false;
}
