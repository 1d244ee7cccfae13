/* test_ref_props.c: properties of the reference-layout model (issue 4 "Tests") on the golden tiny
 * HF checkpoint (fixtures/golden/ref_tiny/hf: hidden 256, 3 layers, 16 experts, index_topk 16)
 * and a generated tiny fp8 checkpoint. Budgets are measured (docs/ref.md) and stated per check.
 *   prefill vs decode, TP W = 1/2/4, sparse mask (cache perturbation), a known-answer MoE of one
 *   layer in double, refused inputs, the fp8 weight path and its dequantized bf16 twin, and the
 *   W identity of the collectives front (ref/comm.h): the in-process communicator gives the
 *   emulation's bits for W = 1, 2, 4 (the W-process identity is tests/sh_test_mpi.sh).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "core/safetensors.h"
#include "fixtures/generator.h"
#include "kernels/backend.h"
#include "ref/comm.h"
#include "ref/ref_model.h"
#include "tests/support/ref_golden.h"
#include "tests/support/test_common.h"

#ifndef DSV32_SOURCE_DIR
#define DSV32_SOURCE_DIR "."
#endif
#define HF_DIR DSV32_SOURCE_DIR "/fixtures/golden/ref_tiny/hf"

static dsv32_model *open_ref(const char *dir, dsv32_profile prof, int W)
{
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.profile = prof;
	o.world_size = W;
	o.max_seq_len = 64;
	o.max_batch_size = 2;
	dsv32_model *m = NULL;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_ref_open(&m, dir, NULL, &o, &err);
	if (rc != DSV32_OK)
		print_error("open %s: %s\n", dir, err.what);
	assert_int_equal(rc, DSV32_OK);
	return m;
}

static void tokens(int64_t *t, int64_t n, int64_t salt)
{
	for (int64_t i = 0; i < n; i++)
		t[i] = (i * 37 + 11 + salt * 101) % 1024;
}

/* Logits of the last position (host fp32 [B, V], owned). */
static dsv32_tensor fwd(dsv32_model *m, const int64_t *tok, int64_t B, int64_t S, int64_t P)
{
	dsv32_tensor lg = {0};
	dsv32_error err = {0};
	dsv32_status rc = dsv32_ref_forward(m, tok, B, S, P, &lg, &err);
	if (rc != DSV32_OK)
		print_error("forward S=%lld P=%lld: %s\n", (long long)S, (long long)P, err.what);
	assert_int_equal(rc, DSV32_OK);
	return lg;
}

/* max |a - b| / max |a| over n fp32 values; also fails on a non-finite value. */
static double rel_max(const dsv32_tensor *a, const dsv32_tensor *b)
{
	int64_t n = dsv32_tensor_numel(a);
	assert_int_equal(n, dsv32_tensor_numel(b));
	const float *x = a->data, *y = b->data;
	double d = 0, s = 0;
	for (int64_t i = 0; i < n; i++) {
		assert_true(isfinite(x[i]) && isfinite(y[i]));
		d = fmax(d, fabs((double)x[i] - y[i]));
		s = fmax(s, fabs((double)x[i]));
	}
	return s > 0 ? d / s : d;
}

/* ---- prefill vs decode ---------------------------------------------------------------------
 * logits of token t (position t) from prefill(t + 1 tokens) vs prefill(t) + one decode step.
 * The two paths differ by design (§A.10): prefill = explicit K/V from wkv_b over this call's
 * keys (the bf16 k_nope/v of the fp8 latent round trip), decode = absorbed MQA against the latent
 * cache (q·W_UK in bf16, W_UV after the softmax). fp32 profile: the same math up to fp32
 * association, budget 1e-5 relative (max |d| / max |logit|). bf16 profile: the bf16 roundings of
 * the two association orders differ (a few bf16 ulps in attention outputs that the MoE and
 * later layers carry): measured <= 2e-2 relative on this checkpoint at t = 8 and 20, budget
 * 5e-2 (the fp32 profile's greedy argmax must agree; in bf16 the random model's top-2 margin
 * can be below the noise). */
static void check_prefill_decode(dsv32_profile prof, int64_t t, double budget, double *meas)
{
	dsv32_model *m = open_ref(HF_DIR, prof, 1);
	int64_t tok[64];
	tokens(tok, t + 1, 0);
	dsv32_tensor full = fwd(m, tok, 1, t + 1, 0);
	dsv32_tensor pre = fwd(m, tok, 1, t, 0);
	dsv32_tensor dec = fwd(m, tok + t, 1, 1, t);
	double r = rel_max(&full, &dec);
	printf("prefill vs decode (%s, t = %lld): rel max %.3g (budget %.1g)\n",
	       prof == DSV32_PROFILE_FP32 ? "fp32" : "bf16", (long long)t, r, budget);
	*meas = r;
	assert_true(r <= budget);
	int64_t V = full.shape[1];
	if (prof == DSV32_PROFILE_FP32) /* bf16: the random model's top-2 margins can be smaller */
		assert_int_equal(tc_argmax_f32(full.data, V), tc_argmax_f32(dec.data, V));
	dsv32_tensor_free(&full);
	dsv32_tensor_free(&pre);
	dsv32_tensor_free(&dec);
	m->vt->close(m);
}

static void test_prefill_vs_decode(void **state)
{
	(void)state;
	double r;
	check_prefill_decode(DSV32_PROFILE_FP32, 8, 1e-5, &r);
	check_prefill_decode(DSV32_PROFILE_FP32, 20, 1e-5, &r); /* past index_topk = 16 */
	check_prefill_decode(DSV32_PROFILE_BF16, 8, 5e-2, &r);
	check_prefill_decode(DSV32_PROFILE_BF16, 20, 5e-2, &r);
}

/* ---- TP: W = 1, 2, 4 -----------------------------------------------------------------------
 * fp32 profile: the rank partials are summed in fp32 in rank order, so W only re-associates
 * fp32 sums (wo, w2, the MoE buffers): budget 1e-5 relative. bf16: W > 1 rounds each rank's
 * partial to bf16 before the fp32 sum (§C.4) where W = 1 rounds the full sum once: bf16
 * reduction noise, amplified where a 1-ulp change moves an fp8 rounding (the KV latent round
 * trip, the indexer act_quant: one e4m3 step is up to 2^4 bf16 ulps). Measured on this CPU:
 * prefill (S = 12) 2.3e-2 / 1.7e-2, the following decode 5.5e-2 / 2.7e-2 (W = 2 / 4);
 * budget 1e-1 (room for another CPU's GEMM order; the bf16 differences include discrete flips: the decode step's expert and index
 * selections are compared and the differing rows printed). fp32: the argmax must agree. */
static int64_t rows_differ(const ref_tap_store *a, const ref_tap_store *b, const char *fmt,
			   int n_layers)
{
	int64_t d = 0;
	for (int L = 0; L < n_layers; L++) {
		char nm[64];
		snprintf(nm, sizeof nm, fmt, L);
		const dsv32_tensor *x = ref_store_get(a, nm), *y = ref_store_get(b, nm);
		if (!x || !y)
			continue;
		int64_t k = x->shape[x->ndim - 1], R = dsv32_tensor_numel(x) / k;
		for (int64_t r = 0; r < R; r++) {
			const int64_t *u = (const int64_t *)x->data + r * k, *v = (const int64_t *)y->data + r * k;
			for (int64_t i = 0; i < k; i++) {
				bool found = false;
				for (int64_t j = 0; j < k; j++)
					found |= u[i] == v[j];
				if (!found) {
					d++;
					break;
				}
			}
		}
	}
	return d;
}
static void test_tp_world_sizes(void **state)
{
	(void)state;
	int64_t tok[16];
	tokens(tok, 13, 1);
	for (int p = 0; p < 2; p++) {
		dsv32_profile prof = p ? DSV32_PROFILE_BF16 : DSV32_PROFILE_FP32;
		double budget = p ? 1e-1 : 1e-5;
		dsv32_tensor base[2] = {{0}};
		ref_tap_store st1 = {0}, stw = {0};
		for (int wi = 0; wi < 3; wi++) {
			int W = 1 << wi;
			dsv32_model *m = open_ref(HF_DIR, prof, W);
			dsv32_tensor lg[2];
			lg[0] = fwd(m, tok, 1, 12, 0);
			ref_store_sink(W == 1 ? &st1 : &stw, &m->taps);
			lg[1] = fwd(m, tok + 12, 1, 1, 12);
			m->taps = (dsv32_tap_sink){0};
			if (W > 1)
				printf("TP %s W=%d decode: rows with other experts %lld, other index "
				       "sets %lld\n", p ? "bf16" : "fp32", W,
				       (long long)rows_differ(&st1, &stw, "layers.%d.moe.experts", 3),
				       (long long)rows_differ(&st1, &stw, "layers.%d.indexer.topk", 3));
			if (W > 1)
				ref_store_clear(&stw);
			for (int s = 0; s < 2; s++) {
				if (W == 1) {
					base[s] = lg[s];
					continue;
				}
				double r = rel_max(&base[s], &lg[s]);
				printf("TP %s W=%d vs W=1, %s: rel max %.3g (budget %.1g)\n",
				       p ? "bf16" : "fp32", W, s ? "decode" : "prefill", r, budget);
				assert_true(r <= budget);
				if (!p) {
					int64_t n = base[s].shape[1];
					assert_int_equal(tc_argmax_f32(base[s].data, n),
							 tc_argmax_f32(lg[s].data, lg[s].shape[1]));
				}
				dsv32_tensor_free(&lg[s]);
			}
			m->vt->close(m);
		}
		dsv32_tensor_free(&base[0]);
		dsv32_tensor_free(&base[1]);
		ref_store_clear(&st1);
	}
}

/* ---- sparse mask ---------------------------------------------------------------------------
 * Prompt of 24 tokens > index_topk = 16; decode at position 24 selects 16 of 25 positions per
 * layer. Overwriting the MLA caches (kv latent, k_rope) at every unselected position of every
 * layer with garbage must leave the decode logits bit-identical (exactly zero attention weight);
 * overwriting one selected position must change them (the check can fail). The indexer key
 * cache is left alone, so the selections stay the same. */
typedef struct {
	ref_tap_store st;
} sparse_ctx;

static void decode_with_garbage(dsv32_profile prof, int mode /* 0 none, 1 unselected, 2 one
								 selected */, dsv32_tensor *out,
				int64_t sel[3][16])
{
	dsv32_model *m = open_ref(HF_DIR, prof, 1);
	const dsv32_config *c = &m->cfg;
	int64_t tok[32];
	tokens(tok, 25, 2);
	dsv32_tensor pre = fwd(m, tok, 1, 24, 0);
	dsv32_tensor_free(&pre);
	if (mode) {
		int64_t sk[3] = {1, 1, c->kv_lora_rank}, sr[3] = {1, 1, c->qk_rope_head_dim};
		dsv32_tensor kv, kr;
		assert_int_equal(dsv32_tensor_alloc(&kv, DSV32_F32, 3, sk, NULL), DSV32_OK);
		assert_int_equal(dsv32_tensor_alloc(&kr, DSV32_F32, 3, sr, NULL), DSV32_OK);
		for (int64_t i = 0; i < sk[2]; i++)
			((float *)kv.data)[i] = (float)(37.0 * ((i % 7) - 3));
		for (int64_t i = 0; i < sr[2]; i++)
			((float *)kr.data)[i] = (float)(-50.0 + i);
		for (int L = 0; L < c->n_layers; L++)
			for (int64_t pos = 0; pos < 24; pos++) {
				bool in = false;
				for (int j = 0; j < 16; j++)
					in |= sel[L][j] == pos;
				bool hit = mode == 1 ? !in : (L == 1 && pos == sel[1][0] && pos < 24);
				if (hit)
					assert_int_equal(dsv32_ref_cache_set(m, L, pos, &kv, &kr, NULL,
									     NULL, NULL),
							 DSV32_OK);
			}
		dsv32_tensor_free(&kv);
		dsv32_tensor_free(&kr);
	}
	ref_tap_store st = {0};
	ref_store_sink(&st, &m->taps);
	*out = fwd(m, tok + 24, 1, 1, 24);
	for (int L = 0; L < c->n_layers; L++) {
		char nm[64];
		snprintf(nm, sizeof nm, "layers.%d.indexer.topk", L);
		const dsv32_tensor *t = ref_store_get(&st, nm);
		assert_non_null(t);
		assert_int_equal(dsv32_tensor_numel(t), 16);
		if (mode == 0)
			memcpy(sel[L], t->data, 16 * sizeof(int64_t));
		else if (mode == 1) /* the selections did not move */
			assert_memory_equal(sel[L], t->data, 16 * sizeof(int64_t));
	}
	m->taps = (dsv32_tap_sink){0};
	ref_store_clear(&st);
	m->vt->close(m);
}

static void test_sparse_mask_unselected_positions_have_zero_weight(void **state)
{
	(void)state;
	for (int p = 0; p < 2; p++) {
		dsv32_profile prof = p ? DSV32_PROFILE_FP32 : DSV32_PROFILE_BF16;
		int64_t sel[3][16];
		dsv32_tensor a, b, c;
		decode_with_garbage(prof, 0, &a, sel);
		int64_t unsel = 0;
		for (int L = 0; L < 3; L++) {
			int64_t mx = 0;
			for (int j = 0; j < 16; j++)
				mx = sel[L][j] > mx ? sel[L][j] : mx;
			unsel += 25 - 16;
			assert_true(mx <= 24);
		}
		decode_with_garbage(prof, 1, &b, sel);
		assert_memory_equal(a.data, b.data, dsv32_tensor_nbytes(&a));
		/* the selected position 24 (this step's own key) is written by the step itself; pick
		 * the first selected one below 24 for the counter-check */
		int j = 0;
		while (sel[1][j] >= 24)
			j++;
		int64_t keep = sel[1][0];
		sel[1][0] = sel[1][j];
		decode_with_garbage(prof, 2, &c, sel);
		sel[1][0] = keep;
		assert_true(memcmp(a.data, c.data, dsv32_tensor_nbytes(&a)) != 0);
		printf("sparse mask (%s): %lld unselected cache rows overwritten, logits bit-identical; "
		       "one selected row overwritten: rel max %.3g\n", p ? "fp32" : "bf16",
		       (long long)unsel, rel_max(&a, &c));
		dsv32_tensor_free(&a);
		dsv32_tensor_free(&b);
		dsv32_tensor_free(&c);
	}
}

/* ---- known answer: the MoE of layer 1 in double ---------------------------------------------
 * fp32 profile, the layer driven by dsv32_ref_layer_step; its ffn_norm tap is the MoE input x.
 * Oracle from the HF weights, in double, from the spec (§A.11-A.13): logits = x·Wgᵀ,
 * s = sigmoid(logits), biased b = s + bias, groups of E/G experts scored by the sum of their
 * top-2 b, the best topk_groups groups kept, top-K experts of b in those, w = s[idx] /
 * Σ s[idx] · route_scale; y = Σ_k w_k · W2(silu(W1 x) ⊙ W3 x) + shared(x). Budget: identical
 * expert sets, max |y - ref| <= 1e-5 · max |ref| (fp32 GEMM accumulation only). */
static void matvec(const dsv32_tensor *W, const double *x, double *y)
{
	int64_t N = W->shape[0], K = W->shape[1];
	for (int64_t n = 0; n < N; n++) {
		double s = 0;
		for (int64_t k = 0; k < K; k++) {
			double w = W->dtype == DSV32_BF16
					   ? dsv32_bf16_to_f32(((const dsv32_bf16 *)W->data)[n * K + k])
					   : ((const float *)W->data)[n * K + k];
			s += w * x[k];
		}
		y[n] = s;
	}
}

static void mlp_d(const dsv32_ckpt *ck, const char *pre, const double *x, double *y)
{
	char nm[160];
	dsv32_tensor g, u, d;
	snprintf(nm, sizeof nm, "%s.gate_proj.weight", pre);
	assert_int_equal(dsv32_ckpt_tensor(ck, nm, &g, NULL), DSV32_OK);
	snprintf(nm, sizeof nm, "%s.up_proj.weight", pre);
	assert_int_equal(dsv32_ckpt_tensor(ck, nm, &u, NULL), DSV32_OK);
	snprintf(nm, sizeof nm, "%s.down_proj.weight", pre);
	assert_int_equal(dsv32_ckpt_tensor(ck, nm, &d, NULL), DSV32_OK);
	int64_t I = g.shape[0];
	double *a = malloc(sizeof(double) * (size_t)I), *b = malloc(sizeof(double) * (size_t)I);
	matvec(&g, x, a);
	matvec(&u, x, b);
	for (int64_t i = 0; i < I; i++)
		a[i] = a[i] / (1.0 + exp(-a[i])) * b[i];
	matvec(&d, a, y);
	free(a);
	free(b);
}

static void test_moe_layer_known_answer(void **state)
{
	(void)state;
	dsv32_model *m = open_ref(HF_DIR, DSV32_PROFILE_FP32, 1);
	const dsv32_config *c = &m->cfg;
	int64_t dim = c->dim, E = c->n_routed_experts, K = c->n_activated_experts, S = 5;
	int64_t G = c->n_expert_groups, TG = c->n_limited_groups;
	dsv32_tensor x, res, xo, ro;
	int64_t sh[3] = {1, S, dim};
	assert_int_equal(dsv32_tensor_alloc(&x, DSV32_F32, 3, sh, NULL), DSV32_OK);
	assert_int_equal(dsv32_tensor_alloc(&res, DSV32_F32, 3, sh, NULL), DSV32_OK);
	uint64_t r = 12345;
	for (int64_t i = 0; i < S * dim; i++) {
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		((float *)x.data)[i] = (float)(((double)(r >> 11) / 9007199254740992.0) * 4.0 - 2.0);
	}
	ref_tap_store st = {0};
	ref_store_sink(&st, &m->taps);
	assert_int_equal(dsv32_ref_layer_step(m, 1, &x, &res, 0, &xo, &ro, NULL), DSV32_OK);
	const dsv32_tensor *xin = ref_store_get(&st, "layers.1.ffn_norm");
	const dsv32_tensor *ex = ref_store_get(&st, "layers.1.moe.experts");
	assert_non_null(xin);
	assert_non_null(ex);
	assert_int_equal(xin->dtype, DSV32_F32);
	dsv32_ckpt *ck;
	assert_int_equal(dsv32_ckpt_open(&ck, HF_DIR, NULL), DSV32_OK);
	dsv32_tensor gw, gb;
	assert_int_equal(dsv32_ckpt_tensor(ck, "model.layers.1.mlp.gate.weight", &gw, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_tensor(ck, "model.layers.1.mlp.gate.e_score_correction_bias", &gb,
					   NULL), DSV32_OK);
	double *xd = malloc(sizeof(double) * (size_t)dim), *y = malloc(sizeof(double) * (size_t)dim);
	double *t = malloc(sizeof(double) * (size_t)dim), lg[64], s[64], b[64];
	double maxd = 0, maxr = 0;
	for (int64_t tk = 0; tk < S; tk++) {
		for (int64_t i = 0; i < dim; i++)
			xd[i] = ((const float *)xin->data)[tk * dim + i];
		matvec(&gw, xd, lg);
		for (int64_t e = 0; e < E; e++) {
			s[e] = 1.0 / (1.0 + exp(-lg[e]));
			b[e] = s[e] + ((const float *)gb.data)[e];
		}
		/* groups */
		int64_t per = E / G;
		double gs[16];
		bool keepg[16] = {0};
		for (int64_t g = 0; g < G; g++) {
			double m1 = -INFINITY, m2 = -INFINITY;
			for (int64_t j = 0; j < per; j++) {
				double v = b[g * per + j];
				if (v > m1) {
					m2 = m1;
					m1 = v;
				} else if (v > m2) {
					m2 = v;
				}
			}
			gs[g] = m1 + m2;
		}
		for (int64_t k = 0; k < TG; k++) {
			int64_t best = -1;
			for (int64_t g = 0; g < G; g++)
				if (!keepg[g] && (best < 0 || gs[g] > gs[best]))
					best = g;
			keepg[best] = true;
		}
		bool pick[64] = {0};
		int64_t idx[16];
		double wsum = 0;
		for (int64_t k = 0; k < K; k++) {
			int64_t best = -1;
			for (int64_t e = 0; e < E; e++)
				if (keepg[e / per] && !pick[e] && (best < 0 || b[e] > b[best]))
					best = e;
			pick[best] = true;
			idx[k] = best;
			wsum += s[best];
		}
		/* expert sets agree */
		for (int64_t k = 0; k < K; k++) {
			int64_t got = ((const int64_t *)ex->data)[tk * K + k];
			assert_true(got >= 0 && got < E && pick[got]);
		}
		mlp_d(ck, "model.layers.1.mlp.shared_experts", xd, y);
		for (int64_t k = 0; k < K; k++) {
			char pre[96];
			snprintf(pre, sizeof pre, "model.layers.1.mlp.experts.%lld", (long long)idx[k]);
			mlp_d(ck, pre, xd, t);
			double w = s[idx[k]] / wsum * c->route_scale;
			for (int64_t i = 0; i < dim; i++)
				y[i] += w * t[i];
		}
		for (int64_t i = 0; i < dim; i++) {
			double g = ((const float *)xo.data)[tk * dim + i];
			maxd = fmax(maxd, fabs(g - y[i]));
			maxr = fmax(maxr, fabs(y[i]));
		}
	}
	printf("MoE layer 1 known answer (fp32 profile vs double): max |d| / max |ref| = %.3g "
	       "(budget 1e-5)\n", maxd / maxr);
	assert_true(maxd <= 1e-5 * maxr);
	free(xd);
	free(y);
	free(t);
	dsv32_ckpt_close(ck);
	m->taps = (dsv32_tap_sink){0};
	ref_store_clear(&st);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&res);
	dsv32_tensor_free(&xo);
	dsv32_tensor_free(&ro);
	m->vt->close(m);
}

/* ---- refused inputs ---- */
static void test_refuses_chunked_prefill_and_bad_tokens(void **state)
{
	(void)state;
	dsv32_model *m = open_ref(HF_DIR, DSV32_PROFILE_BF16, 1);
	int64_t tok[8];
	tokens(tok, 8, 3);
	dsv32_tensor lg = fwd(m, tok, 1, 4, 0);
	dsv32_tensor_free(&lg);
	dsv32_error err = {0};
	assert_int_equal(dsv32_ref_forward(m, tok + 4, 1, 2, 4, &lg, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "chunked prefill"));
	assert_null(lg.data);
	int64_t bad[2] = {5, 1024};
	assert_int_equal(dsv32_ref_forward(m, bad, 1, 2, 0, &lg, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "1024"));
	assert_non_null(strstr(err.what, "vocabulary"));
	bad[1] = -1;
	assert_int_equal(dsv32_ref_forward(m, bad, 1, 2, 0, &lg, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_ref_forward(m, tok, 3, 1, 0, &lg, &err), DSV32_E_USAGE); /* B > 2 */
	m->vt->close(m);
}

/* ---- fp8 weights ---------------------------------------------------------------------------
 * A tiny fp8 checkpoint from the fixture generator (seed 7) runs in the bf16 profile (finite
 * logits, the act_quant + fp8 GEMM path); its twin with every fp8 weight dequantized to bf16
 * (exact: e4m3 value times a power-of-two scale) gives, in the fp32 profile, logits within 1e-5
 * relative (both load the same F32 weights: measured bit-identical). */
static void write_bf16_twin(const char *src, const char *dst)
{
	dsv32_ckpt *ck;
	assert_int_equal(dsv32_ckpt_open(&ck, src, NULL), DSV32_OK);
	assert_int_equal(dsv32_mkdirs(dst, NULL), DSV32_OK);
	char path[4096];
	snprintf(path, sizeof path, "%s/model.safetensors", dst);
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, NULL), DSV32_OK);
	size_t n = dsv32_ckpt_count(ck);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			const dsv32_st_file *f;
			const dsv32_st_entry *e = dsv32_ckpt_entry_at(ck, i, &f);
			dsv32_tensor t;
			assert_int_equal(dsv32_ckpt_tensor(ck, e->name, &t, NULL), DSV32_OK);
			if (strstr(e->name, "weight_scale_inv"))
				continue;
			bool q = t.dtype == DSV32_F8_E4M3;
			if (pass == 0) {
				assert_int_equal(dsv32_st_writer_declare(w, e->name,
									  q ? DSV32_BF16 : t.dtype,
									  t.ndim, t.shape, NULL),
						 DSV32_OK);
				continue;
			}
			if (!q) {
				assert_int_equal(dsv32_st_writer_write(w, t.data, dsv32_tensor_nbytes(&t),
								       NULL), DSV32_OK);
				continue;
			}
			char sn[200];
			snprintf(sn, sizeof sn, "%s_scale_inv", e->name);
			dsv32_tensor s;
			assert_int_equal(dsv32_ckpt_tensor(ck, sn, &s, NULL), DSV32_OK);
			int64_t R = t.shape[0], C = t.shape[1], sc = s.shape[1];
			dsv32_bf16 *o = malloc(sizeof(dsv32_bf16) * (size_t)(R * C));
			for (int64_t r = 0; r < R; r++)
				for (int64_t cc = 0; cc < C; cc++) {
					float v = dsv32_e4m3_to_f32(((const dsv32_f8 *)t.data)[r * C + cc]) *
						  ((const float *)s.data)[(r / 128) * sc + cc / 128];
					assert_true(dsv32_round_bf16(v) == v); /* exact */
					o[r * C + cc] = dsv32_f32_to_bf16(v);
				}
			assert_int_equal(dsv32_st_writer_write(w, o, sizeof(dsv32_bf16) * (size_t)(R * C),
							       NULL), DSV32_OK);
			free(o);
		}
	assert_int_equal(dsv32_st_writer_commit(w, NULL), DSV32_OK);
	dsv32_ckpt_close(ck);
	/* config without quantization_config */
	snprintf(path, sizeof path, "%s/config.json", src);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char buf[16384];
	size_t len = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[len] = 0;
	cJSON *j = cJSON_Parse(buf);
	assert_non_null(j);
	cJSON_DeleteItemFromObject(j, "quantization_config");
	char *txt = cJSON_Print(j);
	snprintf(path, sizeof path, "%s/config.json", dst);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	fputs(txt, fp);
	fclose(fp);
	free(txt);
	cJSON_Delete(j);
}

static void test_fp8_checkpoint_and_bf16_twin(void **state)
{
	(void)state;
	char base[256], d8[300], d16[300];
	snprintf(base, sizeof base, "/tmp/dsv32_ref_props.%d", (int)getpid());
	snprintf(d8, sizeof d8, "%s/fp8", base);
	snprintf(d16, sizeof d16, "%s/bf16", base);
	assert_int_equal(dsv32_mkdirs(base, NULL), DSV32_OK);
	dsv32_error err = {0};
	dsv32_status rc = dsv32_fixture_write("tiny", DSV32_WDTYPE_FP8, 7, d8, 0, true, &err);
	if (rc != DSV32_OK)
		print_error("fixture: %s\n", err.what);
	assert_int_equal(rc, DSV32_OK);
	write_bf16_twin(d8, d16);
	int64_t tok[8];
	tokens(tok, 7, 4);
	/* bf16 profile: the fp8 path runs and decodes */
	dsv32_model *m = open_ref(d8, DSV32_PROFILE_BF16, 1);
	dsv32_tensor a = fwd(m, tok, 1, 6, 0), a2 = fwd(m, tok + 6, 1, 1, 6);
	dsv32_tensor z = {0};
	assert_true(rel_max(&a, &a) == 0 && rel_max(&a2, &a2) == 0); /* finite */
	m->vt->close(m);
	/* fp32 profile: fp8 vs its dequantized twin */
	dsv32_tensor lg[2][2];
	for (int k = 0; k < 2; k++) {
		m = open_ref(k ? d16 : d8, DSV32_PROFILE_FP32, 1);
		lg[k][0] = fwd(m, tok, 1, 6, 0);
		lg[k][1] = fwd(m, tok + 6, 1, 1, 6);
		m->vt->close(m);
	}
	for (int s = 0; s < 2; s++) {
		double r = rel_max(&lg[1][s], &lg[0][s]);
		printf("fp8 vs dequantized bf16 twin (fp32 profile, %s): rel max %.3g (budget 1e-5)\n",
		       s ? "decode" : "prefill", r);
		assert_true(r <= 1e-5);
	}
	/* bf16 profile of the twin: a different path (no act_quant), only sanity: same argmax is
	 * not required; report the distance */
	m = open_ref(d16, DSV32_PROFILE_BF16, 1);
	z = fwd(m, tok, 1, 6, 0);
	printf("fp8 (bf16 profile) vs bf16 twin (bf16 profile), prefill: rel max %.3g "
	       "(informational: act_quant of the activations)\n", rel_max(&z, &a));
	m->vt->close(m);
	dsv32_tensor *all[] = {&a, &a2, &z, &lg[0][0], &lg[0][1], &lg[1][0], &lg[1][1]};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		dsv32_tensor_free(all[i]);
	dsv32_remove_tree(base, NULL);
}

/* ---- planted bugs only in opts.plant->layer ----
 * test flag 0 (rmsnorm without its final bf16 rounding, kernels/test_hooks.h) planted in layer 1:
 * layer 0's taps and the embedding are bit-identical to a clean run, layer 1's attn_norm differs
 * (so a harness localises the bug at layer 1). */
static void test_planted_layer_only(void **state)
{
	(void)state;
	int64_t tok[8];
	tokens(tok, 6, 5);
	ref_tap_store st[2] = {{0}};
	for (int k = 0; k < 2; k++) {
		dsv32_model_opts o;
		dsv32_model_opts_default(&o);
		o.max_seq_len = 64;
		const dsv32_plant plant = {1u << DSV32_TEST_FLAG_RMSNORM_NO_FINAL_ROUND, 1};
		o.plant = k ? &plant : NULL;
		dsv32_model *m = NULL;
		assert_int_equal(dsv32_ref_open(&m, HF_DIR, NULL, &o, NULL), DSV32_OK);
		ref_store_sink(&st[k], &m->taps);
		dsv32_tensor lg = fwd(m, tok, 1, 6, 0);
		dsv32_tensor_free(&lg);
		m->taps = (dsv32_tap_sink){0};
		m->vt->close(m);
	}
	const char *same[] = {"embed", "layers.0.attn_norm", "layers.0.ffn_norm", "layers.0.ffn.out",
			      "layers.0.attn_residual"};
	for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
		const dsv32_tensor *a = ref_store_get(&st[0], same[i]), *b = ref_store_get(&st[1], same[i]);
		assert_non_null(a);
		assert_non_null(b);
		assert_memory_equal(a->data, b->data, dsv32_tensor_nbytes(a));
	}
	const dsv32_tensor *a = ref_store_get(&st[0], "layers.1.attn_norm");
	const dsv32_tensor *b = ref_store_get(&st[1], "layers.1.attn_norm");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(memcmp(a->data, b->data, dsv32_tensor_nbytes(a)) != 0);
	ref_store_clear(&st[0]);
	ref_store_clear(&st[1]);
}

/* W identities: the ref model opened through an in-process communicator (ref/comm.h) is the
 * emulation itself, bit for bit, prefill and decode, for W = 1, 2, 4; the front's in-process
 * collectives are the identity (allgather of one rank copies, agree passes the status through). */
static void test_inproc_comm_gives_the_emulation_bits(void **state)
{
	(void)state;
	dsv32_comm *c = NULL;
	dsv32_error err = {0};
	assert_int_equal(dsv32_comm_open(&c, DSV32_COMM_INPROC, 60, &err), DSV32_OK);
	assert_false(dsv32_comm_is_distributed(c));
	int32_t x = 7, y = 0;
	assert_int_equal(dsv32_comm_allgather(c, &y, &x, sizeof x, "test", &err), DSV32_OK);
	assert_int_equal(y, 7);
	assert_int_equal(dsv32_comm_agree(c, DSV32_E_IO, "test", &err), DSV32_E_IO);
	assert_int_equal(dsv32_comm_agree(c, DSV32_OK, "test", &err), DSV32_OK);
	dsv32_comm_kind k;
	assert_true(dsv32_comm_kind_parse("mpi", &k) && k == DSV32_COMM_MPI);
	assert_false(dsv32_comm_kind_parse("tcp", &k));
	const int Ws[] = {1, 2, 4};
	int64_t tok[12];
	tokens(tok, 12, 3);
	for (int i = 0; i < 3; i++) {
		dsv32_model *a = open_ref(HF_DIR, DSV32_PROFILE_BF16, Ws[i]), *b = NULL;
		dsv32_model_opts o = a->opts;
		assert_int_equal(dsv32_ref_open_comm(&b, HF_DIR, NULL, &o, c, &err), DSV32_OK);
		int64_t next = 5;
		for (int step = 0; step < 2; step++) {
			dsv32_tensor la = step ? fwd(a, &next, 1, 1, 12) : fwd(a, tok, 1, 12, 0);
			dsv32_tensor lb = step ? fwd(b, &next, 1, 1, 12) : fwd(b, tok, 1, 12, 0);
			assert_int_equal(dsv32_tensor_nbytes(&la), dsv32_tensor_nbytes(&lb));
			if (memcmp(la.data, lb.data, dsv32_tensor_nbytes(&la)) != 0)
				fail_msg("W = %d step %d: logits differ through the in-process comm", Ws[i],
					 step);
			dsv32_tensor_free(&la);
			dsv32_tensor_free(&lb);
		}
		a->vt->close(a);
		b->vt->close(b);
	}
	dsv32_comm_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_chunked_prefill_and_bad_tokens),
		cmocka_unit_test(test_moe_layer_known_answer),
		cmocka_unit_test(test_prefill_vs_decode),
		cmocka_unit_test(test_tp_world_sizes),
		cmocka_unit_test(test_sparse_mask_unselected_positions_have_zero_weight),
		cmocka_unit_test(test_fp8_checkpoint_and_bf16_twin),
		cmocka_unit_test(test_planted_layer_only),
		cmocka_unit_test(test_inproc_comm_gives_the_emulation_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
