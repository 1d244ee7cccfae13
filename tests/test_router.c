/* test_router.c: dsv32_router against an oracle written from docs/spec/ref_layout.md §A.11 and
 * docs/spec/hf_layout.md §6 (fp32 arithmetic in the contract's order; selection by full sorts), known-
 * answer group-masking cases, and the CUDA twin when a device is present; dsv32_router_weights_at
 * (bit-identical to the router at its own selection) and dsv32_router_scores (the router's
 * selection is their top-k). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/router.h"
#include "kernels/topk_torch.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"

typedef struct { float v; int i; } item;

static int by_value_desc(const void *pa, const void *pb)
{
	const item *a = pa, *b = pb;
	if (a->v != b->v)
		return a->v > b->v ? -1 : 1;
	return a->i - b->i;
}

/* Oracle for one token (no NaN inputs here). */
static void oracle(const float *l, const float *bias, int E, const dsv32_router_params *p,
		   int64_t *idx, float *w)
{
	float s[256], b[256];
	item it[256];
	if (p->score_func == DSV32_SCORE_SOFTMAX) {
		double m = -INFINITY;
		for (int j = 0; j < E; j++)
			m = l[j] > m ? l[j] : m;
		float Z = 0.0f;
		for (int j = 0; j < E; j++)
			Z += expf(l[j] - (float)m);
		for (int j = 0; j < E; j++)
			s[j] = expf(l[j] - (float)m) / Z;
	} else {
		for (int j = 0; j < E; j++)
			s[j] = 1.0f / (1.0f + expf(-l[j]));
	}
	for (int j = 0; j < E; j++)
		b[j] = bias ? s[j] + bias[j] : s[j];
	if (p->n_groups > 1) {
		int G = p->n_groups, gs = E / G;
		item g[64];
		for (int q = 0; q < G; q++) {
			for (int j = 0; j < gs; j++)
				it[j] = (item){b[q * gs + j], j};
			qsort(it, (size_t)gs, sizeof *it, by_value_desc);
			bool top2 = bias || p->mode == DSV32_ROUTER_HF;
			g[q] = (item){top2 ? it[0].v + it[1].v : it[0].v, q};
		}
		qsort(g, (size_t)G, sizeof *g, by_value_desc);
		for (int r = p->topk_groups; r < G; r++)
			for (int j = 0; j < gs; j++)
				b[g[r].i * gs + j] = -INFINITY;
	}
	for (int j = 0; j < E; j++)
		it[j] = (item){b[j], j};
	qsort(it, (size_t)E, sizeof *it, by_value_desc);
	float sum = 0.0f;
	for (int r = 0; r < p->topk; r++) {
		idx[r] = it[r].i;
		w[r] = s[it[r].i];
		sum = r == 0 ? w[r] : sum + w[r];
	}
	bool norm = p->mode == DSV32_ROUTER_HF ? p->norm_topk_prob : p->score_func == DSV32_SCORE_SIGMOID;
	if (p->mode == DSV32_ROUTER_HF)
		sum = sum + 1e-20f;
	for (int r = 0; r < p->topk; r++)
		w[r] = (norm ? w[r] / sum : w[r]) * p->route_scale;
}

static void check_case(dsv32_backend *be, int T, int E, const dsv32_router_params *p, bool with_bias,
		       uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t ls[2] = {T, E}, bs[1] = {E}, os[2] = {T, p->topk};
	dsv32_tensor lg = tu_host(DSV32_F32, 2, ls), bias = tu_host(DSV32_F32, 1, bs);
	dsv32_tensor w = tu_host(DSV32_F32, 2, os), idx = tu_host(DSV32_I64, 2, os);
	for (int64_t i = 0; i < (int64_t)T * E; i++)
		((float *)lg.data)[i] = (float)(tu_uniform(&r) * 6 - 3);
	for (int j = 0; j < E; j++) /* bf16-representable, as in the golden data */
		((float *)bias.data)[j] = dsv32_round_bf16((float)(tu_uniform(&r) * 0.2 - 0.1));
	dsv32_error e;
	assert_int_equal(dsv32_router(be, &w, &idx, &lg, with_bias ? &bias : NULL, p, &e), DSV32_OK);
	for (int t = 0; t < T; t++) {
		int64_t wi[64];
		float ww[64];
		oracle((float *)lg.data + (int64_t)t * E, with_bias ? bias.data : NULL, E, p, wi, ww);
		double tot = 0;
		for (int s = 0; s < p->topk; s++) {
			int64_t gi = ((int64_t *)idx.data)[t * p->topk + s];
			float gw = ((float *)w.data)[t * p->topk + s];
			if (gi != wi[s] || dsv32_f32_bits(gw) != dsv32_f32_bits(ww[s]))
				fail_msg("router seed %llu token %d slot %d: (%lld, %.9g), expected (%lld, %.9g)",
					 (unsigned long long)seed, t, s, (long long)gi, gw, (long long)wi[s], ww[s]);
			tot += gw;
		}
		bool norm = p->mode == DSV32_ROUTER_HF ? p->norm_topk_prob
						       : p->score_func == DSV32_SCORE_SIGMOID;
		if (norm) /* k roundings of relative 2^-24 each, plus the scale */
			assert_true(fabs(tot - p->route_scale) <= p->route_scale * (p->topk + 2) * 0x1p-24);
	}
	dsv32_tensor_free(&lg);
	dsv32_tensor_free(&bias);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&idx);
}

static void test_router_ref_matches_oracle_and_sums_to_route_scale(void **state)
{
	dsv32_router_params p = {4, 2, 4, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	check_case(*state, 37, 16, &p, true, 1);   /* the golden tiny config */
	check_case(*state, 9, 16, &p, false, 2);   /* no bias: group max */
	dsv32_router_params big = {8, 4, 8, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	check_case(*state, 5, 256, &big, true, 3); /* 671B shape */
	dsv32_router_params flat = {1, 1, 6, 1.0f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	check_case(*state, 4, 64, &flat, true, 4);
}

static void test_router_hf_and_softmax_match_oracle(void **state)
{
	dsv32_router_params hf = {4, 2, 4, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_HF, true, false, {0}};
	check_case(*state, 21, 16, &hf, true, 5);
	hf.norm_topk_prob = false;
	check_case(*state, 7, 16, &hf, true, 6);
	check_case(*state, 7, 16, &hf, false, 7); /* HF sums the top 2 even without a bias */
	dsv32_router_params sm = {1, 1, 3, 1.5f, DSV32_SCORE_SOFTMAX, DSV32_ROUTER_REF, false, false, {0}};
	check_case(*state, 6, 32, &sm, false, 8); /* softmax: not renormalized */
}

static float logit_of(double p)
{
	return (float)log(p / (1 - p));
}

/* Group 0 holds the single best expert (0.99) but the weaker top-2 sum (0.99 + 0.01 = 1.0)
 * against group 1 (0.6 + 0.6 = 1.2). Top-2 sums (bias present) pick group 1; the group max
 * (no bias, ref) picks group 0. */
static void test_router_group_masking_known_answer(void **state)
{
	dsv32_backend *be = *state;
	float l[8] = {logit_of(0.99), logit_of(0.01), logit_of(0.6), logit_of(0.6),
		      logit_of(0.3),  logit_of(0.2),  logit_of(0.1), logit_of(0.1)};
	float zb[8] = {0};
	int64_t ls[2] = {1, 8}, bs[1] = {8}, os[2] = {1, 2};
	dsv32_tensor lg = dsv32_tensor_view(l, DSV32_F32, 2, ls), bias = dsv32_tensor_view(zb, DSV32_F32, 1, bs);
	dsv32_tensor w = tu_host(DSV32_F32, 2, os), idx = tu_host(DSV32_I32, 2, os);
	dsv32_router_params p = {4, 1, 2, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	assert_int_equal(dsv32_router(be, &w, &idx, &lg, &bias, &p, NULL), DSV32_OK);
	assert_int_equal(((int32_t *)idx.data)[0], 2); /* equal scores: lower index first */
	assert_int_equal(((int32_t *)idx.data)[1], 3);
	assert_true(((float *)w.data)[0] == 1.25f && ((float *)w.data)[1] == 1.25f);
	assert_int_equal(dsv32_router(be, &w, &idx, &lg, NULL, &p, NULL), DSV32_OK);
	assert_int_equal(((int32_t *)idx.data)[0], 0);
	assert_int_equal(((int32_t *)idx.data)[1], 1);
	/* bias only steers the selection: a large bias on expert 7 selects it, but its weight is
	 * its unbiased score */
	zb[7] = 5.0f;
	assert_int_equal(dsv32_router(be, &w, &idx, &lg, &bias, &p, NULL), DSV32_OK);
	assert_int_equal(((int32_t *)idx.data)[0], 7);
	float s7 = 1.0f / (1.0f + expf(-l[7])), s6 = 1.0f / (1.0f + expf(-l[6]));
	assert_int_equal(((int32_t *)idx.data)[1], 6);
	assert_true(((float *)w.data)[0] == s7 / (s7 + s6) * 2.5f);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&idx);
}

static void test_router_rejects_bad_params(void **state)
{
	float l[8] = {0};
	int64_t ls[2] = {1, 8}, os[2] = {1, 2};
	dsv32_tensor lg = dsv32_tensor_view(l, DSV32_F32, 2, ls);
	dsv32_tensor w = tu_host(DSV32_F32, 2, os), idx = tu_host(DSV32_I64, 2, os);
	dsv32_router_params p = {3, 1, 2, 1.0f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	dsv32_error e;
	assert_int_equal(dsv32_router(*state, &w, &idx, &lg, NULL, &p, &e), DSV32_E_USAGE);
	p.n_groups = 4;
	p.topk_groups = 5;
	assert_int_equal(dsv32_router(*state, &w, &idx, &lg, NULL, &p, &e), DSV32_E_USAGE);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&idx);
}

static void test_router_cuda_twin(void **state)
{
	(void)state;
	dsv32_backend *g = tc_cuda_backend_or_null(), *c = NULL;
	if (!g)
		skip();
	assert_int_equal(dsv32_backend_create(&c, DSV32_DEV_CPU, NULL), DSV32_OK);
	const int T = 300, E = 256;
	tu_rng r = tu_rng_xorshift64star(77);
	int64_t ls[2] = {T, E}, bs[1] = {E}, os[2] = {T, 8};
	dsv32_tensor lg = tu_host(DSV32_F32, 2, ls), bias = tu_host(DSV32_F32, 1, bs);
	for (int64_t i = 0; i < (int64_t)T * E; i++)
		((float *)lg.data)[i] = (float)(tu_uniform(&r) * 6 - 3);
	for (int j = 0; j < E; j++)
		((float *)bias.data)[j] = (float)(tu_uniform(&r) * 0.2 - 0.1);
	dsv32_router_params p = {8, 4, 8, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	dsv32_tensor wc = tu_host(DSV32_F32, 2, os), ic = tu_host(DSV32_I64, 2, os);
	dsv32_tensor wg = tu_host(DSV32_F32, 2, os), ig = tu_host(DSV32_I64, 2, os);
	assert_int_equal(dsv32_router(c, &wc, &ic, &lg, &bias, &p, NULL), DSV32_OK);
	dsv32_tensor ld = tu_to_dev(g, &lg), bd = tu_to_dev(g, &bias), wd = tu_to_dev(g, &wg),
		     id = tu_to_dev(g, &ig);
	dsv32_error e;
	assert_int_equal(dsv32_router(g, &wd, &id, &ld, &bd, &p, &e), DSV32_OK);
	tu_download(g, &wg, &wd);
	tu_download(g, &ig, &id);
	/* CUDA expf vs glibc expf (<= 2 ulp each): weights within 16 fp32 ulps; selections equal
	 * (random logits have no near-ties at this size) */
	assert_memory_equal(ic.data, ig.data, dsv32_tensor_nbytes(&ic));
	for (int64_t i = 0; i < (int64_t)T * 8; i++) {
		float a = ((float *)wc.data)[i], b = ((float *)wg.data)[i];
		assert_true(fabsf(a - b) <= 16 * 0x1p-24f * fabsf(a));
	}
	/* weights_at on the device at the device router's own selection: its weights, bit for
	 * bit; the device's selection scores: the CPU's within the expf difference, the same
	 * groups masked */
	dsv32_tensor w2 = tu_host(DSV32_F32, 2, os), w2d = tu_to_dev(g, &w2);
	assert_int_equal(dsv32_router_weights_at(g, &w2d, &id, &ld, &bd, &p, &e), DSV32_OK);
	tu_download(g, &w2, &w2d);
	assert_memory_equal(w2.data, wg.data, dsv32_tensor_nbytes(&wg));
	int64_t gsh[2] = {T, p.n_groups};
	dsv32_tensor sc = tu_host(DSV32_F32, 2, ls), sg = tu_host(DSV32_F32, 2, ls);
	dsv32_tensor gc = tu_host(DSV32_F32, 2, gsh), gg = tu_host(DSV32_F32, 2, gsh);
	dsv32_tensor sgd = tu_to_dev(g, &sg), ggd = tu_to_dev(g, &gg);
	assert_int_equal(dsv32_router_scores_groups(c, &sc, &gc, &lg, &bias, &p, &e), DSV32_OK);
	assert_int_equal(dsv32_router_scores_groups(g, &sgd, &ggd, &ld, &bd, &p, &e), DSV32_OK);
	tu_download(g, &sg, &sgd);
	tu_download(g, &gg, &ggd);
	for (int64_t i = 0; i < (int64_t)T * E; i++) {
		float a = ((float *)sc.data)[i], b = ((float *)sg.data)[i];
		assert_true(a == b || fabsf(a - b) <= 16 * 0x1p-24f * fabsf(a));
	}
	for (int64_t i = 0; i < (int64_t)T * p.n_groups; i++) { /* sums of two such scores */
		float a = ((float *)gc.data)[i], b = ((float *)gg.data)[i];
		assert_true(a == b || fabsf(a - b) <= 32 * 0x1p-24f * fabsf(a));
	}
	dsv32_backend_free(g, &ggd);
	dsv32_tensor_free(&gc);
	dsv32_tensor_free(&gg);
	dsv32_backend_free(g, &w2d);
	dsv32_backend_free(g, &sgd);
	dsv32_tensor_free(&w2);
	dsv32_tensor_free(&sc);
	dsv32_tensor_free(&sg);
	dsv32_backend_free(g, &ld);
	dsv32_backend_free(g, &bd);
	dsv32_backend_free(g, &wd);
	dsv32_backend_free(g, &id);
	dsv32_tensor_free(&lg);
	dsv32_tensor_free(&bias);
	dsv32_tensor_free(&wc);
	dsv32_tensor_free(&ic);
	dsv32_tensor_free(&wg);
	dsv32_tensor_free(&ig);
	dsv32_backend_destroy(c);
	dsv32_backend_destroy(g);
}

/* The top-2 sum (top2) or the max of n values, as router.h step 3 defines the group score. */
static float group_score_oracle(const float *v, int n, bool top2)
{
	int i1 = 0, i2 = -1;
	for (int j = 1; j < n; j++)
		if (v[j] > v[i1])
			i1 = j;
	for (int j = 0; j < n; j++)
		if (j != i1 && (i2 < 0 || v[j] > v[i2]))
			i2 = j;
	return top2 ? v[i1] + v[i2] : v[i1];
}

/* dsv32_router_scores_groups: the same scores as dsv32_router_scores, bit for bit, and group
 * scores that are the top-2 sum (max) of each group's b: from the unmasked scores for the
 * kept groups, from b recomputed for the dropped ones (sigmoid); every kept group's score is
 * above every dropped one's (ties: lower index kept). */
static void check_group_scores(dsv32_backend *be, const dsv32_tensor *lg, const dsv32_tensor *bp,
			       const dsv32_tensor *sc, const dsv32_router_params *p)
{
	int T = (int)lg->shape[0], E = (int)lg->shape[1], G = p->n_groups, size = E / G;
	int64_t ls[2] = {T, E}, gs[2] = {T, G};
	dsv32_tensor sc2 = tu_host(DSV32_F32, 2, ls), g = tu_host(DSV32_F32, 2, gs);
	dsv32_error e;
	assert_int_equal(dsv32_router_scores_groups(be, &sc2, &g, lg, bp, p, &e), DSV32_OK);
	assert_memory_equal(sc2.data, sc->data, dsv32_tensor_nbytes(sc));
	bool top2 = bp || p->mode == DSV32_ROUTER_HF;
	for (int t = 0; t < T; t++) {
		const float *s = (const float *)sc->data + (int64_t)t * E;
		const float *gt = (const float *)g.data + (int64_t)t * G;
		const float *l = (const float *)lg->data + (int64_t)t * E;
		for (int q = 0; q < G; q++) {
			float b[256] = {0};
			bool kept = s[q * size] != -INFINITY;
			for (int j = 0; j < size; j++)
				b[j] = kept ? s[q * size + j]
					    : 1.0f / (1.0f + expf(-l[q * size + j])) +
						      (bp ? ((const float *)bp->data)[q * size + j] : 0.0f);
			if (kept || p->score_func == DSV32_SCORE_SIGMOID)
				assert_true(dsv32_f32_bits(gt[q]) ==
					    dsv32_f32_bits(group_score_oracle(b, size, top2)));
			for (int r = 0; kept && r < G; r++)
				if (s[r * size] == -INFINITY)
					assert_true(gt[q] > gt[r] || (gt[q] == gt[r] && q < r));
		}
	}
	dsv32_tensor_free(&sc2);
	dsv32_tensor_free(&g);
}

/* weights_at at the router's own selection gives the router's weights bit for bit; at
 * another selection, the oracle's arithmetic over those experts; the scores' top-k (key desc,
 * index asc) is the router's selection, and the masked groups are -inf. */
static void check_weights_at_and_scores(dsv32_backend *be, int T, int E,
					const dsv32_router_params *p, bool with_bias, uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t ls[2] = {T, E}, bs[1] = {E}, os[2] = {T, p->topk};
	dsv32_tensor lg = tu_host(DSV32_F32, 2, ls), bias = tu_host(DSV32_F32, 1, bs);
	dsv32_tensor w = tu_host(DSV32_F32, 2, os), idx = tu_host(DSV32_I64, 2, os);
	dsv32_tensor w2 = tu_host(DSV32_F32, 2, os), sc = tu_host(DSV32_F32, 2, ls);
	for (int64_t i = 0; i < (int64_t)T * E; i++)
		((float *)lg.data)[i] = (float)(tu_uniform(&r) * 6 - 3);
	for (int j = 0; j < E; j++)
		((float *)bias.data)[j] = dsv32_round_bf16((float)(tu_uniform(&r) * 0.2 - 0.1));
	const dsv32_tensor *bp = with_bias ? &bias : NULL;
	dsv32_error e;
	assert_int_equal(dsv32_router(be, &w, &idx, &lg, bp, p, &e), DSV32_OK);
	assert_int_equal(dsv32_router_weights_at(be, &w2, &idx, &lg, bp, p, &e), DSV32_OK);
	assert_memory_equal(w.data, w2.data, dsv32_tensor_nbytes(&w));
	assert_int_equal(dsv32_router_scores(be, &sc, &lg, bp, p, &e), DSV32_OK);
	int k = p->topk;
	for (int t = 0; t < T; t++) {
		const float *s = (const float *)sc.data + (int64_t)t * E;
		const int64_t *id = (const int64_t *)idx.data + (int64_t)t * k;
		int n_masked = 0;
		for (int j = 0; j < E; j++)
			n_masked += s[j] == -INFINITY;
		if (p->n_groups > 1) /* whole groups outside the topk_groups best */
			assert_int_equal(n_masked, (p->n_groups - p->topk_groups) * (E / p->n_groups));
		for (int a = 0; a < k; a++) /* every pick beats (or ties lower-indexed) every other */
			for (int j = 0; j < E; j++) {
				bool picked = false;
				for (int b = 0; b < k; b++)
					picked |= id[b] == j;
				if (!picked)
					assert_true(dsv32_topk_key(s[id[a]]) > dsv32_topk_key(s[j]) ||
						    (s[id[a]] == s[j] && id[a] < j));
			}
	}
	if (p->n_groups > 1)
		check_group_scores(be, &lg, bp, &sc, p);
	/* a forced selection: the last slot of every row replaced by the best unpicked expert;
	 * the weights follow the oracle's formula over the forced ids */
	for (int t = 0; t < T; t++) {
		int64_t *id = (int64_t *)idx.data + (int64_t)t * k;
		for (int j = 0; j < E; j++) {
			bool picked = false;
			for (int b = 0; b < k; b++)
				picked |= id[b] == j;
			if (!picked) {
				id[k - 1] = j;
				break;
			}
		}
	}
	assert_int_equal(dsv32_router_weights_at(be, &w2, &idx, &lg, bp, p, &e), DSV32_OK);
	for (int t = 0; t < T; t++) {
		const int64_t *id = (const int64_t *)idx.data + (int64_t)t * k;
		const float *l = (const float *)lg.data + (int64_t)t * E;
		float ww[64], sum = 0.0f;
		for (int a = 0; a < k; a++) {
			float x = l[id[a]];
			if (p->score_func == DSV32_SCORE_SOFTMAX) {
				float m = l[0], Z = 0.0f;
				for (int j = 1; j < E; j++)
					m = l[j] > m ? l[j] : m;
				for (int j = 0; j < E; j++)
					Z += expf(l[j] - m);
				ww[a] = expf(x - m) / Z;
			} else {
				ww[a] = 1.0f / (1.0f + expf(-x));
			}
			sum = a == 0 ? ww[a] : sum + ww[a];
		}
		bool norm = p->mode == DSV32_ROUTER_HF ? p->norm_topk_prob
						       : p->score_func == DSV32_SCORE_SIGMOID;
		if (p->mode == DSV32_ROUTER_HF)
			sum = sum + 1e-20f;
		for (int a = 0; a < k; a++) {
			float want = (norm ? ww[a] / sum : ww[a]) * p->route_scale;
			float got = ((float *)w2.data)[(int64_t)t * k + a];
			if (dsv32_f32_bits(got) != dsv32_f32_bits(want))
				fail_msg("weights_at token %d slot %d: %.9g, expected %.9g", t, a, got, want);
		}
	}
	/* an id out of range is refused, naming the row */
	((int64_t *)idx.data)[k] = E;
	assert_int_equal(dsv32_router_weights_at(be, &w2, &idx, &lg, bp, p, &e), DSV32_E_USAGE);
	assert_non_null(strstr(e.what, "row 1"));
	dsv32_tensor_free(&lg);
	dsv32_tensor_free(&bias);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&w2);
	dsv32_tensor_free(&idx);
	dsv32_tensor_free(&sc);
}

static void test_router_weights_at_own_selection_is_bit_identical(void **state)
{
	dsv32_router_params ref = {4, 2, 4, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	check_weights_at_and_scores(*state, 37, 16, &ref, true, 11);
	check_weights_at_and_scores(*state, 9, 16, &ref, false, 12);
	dsv32_router_params hf = {4, 2, 4, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_HF, true, false, {0}};
	check_weights_at_and_scores(*state, 21, 16, &hf, true, 13);
	hf.norm_topk_prob = false;
	check_weights_at_and_scores(*state, 7, 16, &hf, true, 14);
	dsv32_router_params big = {8, 4, 8, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_REF, false, false, {0}};
	check_weights_at_and_scores(*state, 5, 256, &big, true, 15);
	big.torch_cpu_ties = true; /* its group mask leaves the group scores as the index rule's */
	check_weights_at_and_scores(*state, 5, 256, &big, true, 17);
	dsv32_router_params sm = {1, 1, 3, 1.5f, DSV32_SCORE_SOFTMAX, DSV32_ROUTER_REF, false, false, {0}};
	check_weights_at_and_scores(*state, 6, 32, &sm, false, 16);
}

/* ties=torch-cpu (HF's router on a CPU): with tied scores the groups and experts are the ones
 * torch.topk(sorted=False) picks (kernels/topk_torch.h, replayed against torch itself in
 * test_topk_torch), in its slot order, and the weights follow that order; without ties the
 * selection is the index rule's set and each expert's weight agrees to the normalisation's
 * rounding (the sum runs over the slots in another order). */
static void test_router_torch_cpu_ties(void **state)
{
	dsv32_backend *be = *state;
	enum { E = 16, K = 4, G = 4 };
	dsv32_router_params p = {G, 2, K, 2.5f, DSV32_SCORE_SIGMOID, DSV32_ROUTER_HF, true, true, {0}};
	dsv32_tensor lg = tu_hostv(DSV32_F32, 2, (int64_t)2, (int64_t)E);
	dsv32_tensor w = tu_hostv(DSV32_F32, 2, (int64_t)2, (int64_t)K);
	dsv32_tensor idx = tu_hostv(DSV32_I64, 2, (int64_t)2, (int64_t)K);
	dsv32_tensor w0 = tu_hostv(DSV32_F32, 2, (int64_t)2, (int64_t)K);
	dsv32_tensor idx0 = tu_hostv(DSV32_I64, 2, (int64_t)2, (int64_t)K);
	float *l = lg.data;
	tu_rng r = tu_rng_seed(11);
	for (int j = 0; j < E; j++) {
		l[j] = 0.25f;                          /* row 0: every score tied */
		l[E + j] = (float)tu_normal(&r);       /* row 1: no ties */
	}
	assert_int_equal(dsv32_router(be, &w, &idx, &lg, NULL, &p, NULL), DSV32_OK);
	/* row 0 by hand: all group scores tie, so torch's group pick decides the groups */
	float g[G], b[E];
	int64_t gi[2], want[K];
	unsigned char scratch[4096];
	for (int q = 0; q < G; q++)
		g[q] = dsv32_router_sigmoid(0.25f) + dsv32_router_sigmoid(0.25f);
	dsv32_topk_torch_cpu_row(g, G, 2, false, gi, NULL, scratch);
	for (int j = 0; j < E; j++)
		b[j] = (j / (E / G) == gi[0] || j / (E / G) == gi[1]) ? dsv32_router_sigmoid(0.25f)
								     : -INFINITY;
	dsv32_topk_torch_cpu_row(b, E, K, false, want, NULL, scratch);
	const int64_t *got = idx.data;
	for (int s = 0; s < K; s++)
		assert_int_equal(got[s], want[s]);
	/* row 1: the index rule's set, and the same weight per expert to an ulp or two */
	p.torch_cpu_ties = false;
	assert_int_equal(dsv32_router(be, &w0, &idx0, &lg, NULL, &p, NULL), DSV32_OK);
	const int64_t *i0 = idx0.data;
	const float *wt = w.data, *wi = w0.data;
	for (int s = 0; s < K; s++) {
		int hit = -1;
		for (int u = 0; u < K; u++)
			if (got[K + u] == i0[K + s])
				hit = u;
		assert_true(hit >= 0);
		assert_true(fabsf(wt[K + hit] - wi[K + s]) <= 4 * 0x1p-24f * fabsf(wi[K + s]));
	}
	dsv32_tensor_free(&lg);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&idx);
	dsv32_tensor_free(&w0);
	dsv32_tensor_free(&idx0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router_ref_matches_oracle_and_sums_to_route_scale),
		cmocka_unit_test(test_router_hf_and_softmax_match_oracle),
		cmocka_unit_test(test_router_group_masking_known_answer),
		cmocka_unit_test(test_router_rejects_bad_params),
		cmocka_unit_test(test_router_cuda_twin),
		cmocka_unit_test(test_router_weights_at_own_selection_is_bit_identical),
		cmocka_unit_test(test_router_torch_cpu_ties),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
