/* router.h: MoE router (Gate) after the gate GEMM (docs/spec/ref_layout.md §A.11 / Part E item 11,
 * docs/spec/hf_layout.md §6 DeepseekV32TopkRouter).
 *
 * dsv32_router(be, weights_out, idx_out, logits, bias, p, err)
 *   logits       F32 [T, E]      gate GEMM output (F.linear(fp32(x), fp32(W)), computed by the model)
 *   bias         F32 [E] or NULL e_score_correction_bias (selection only)
 *   weights_out  F32 [T, topk]   out: mixing weights
 *   idx_out      I64|I32 [T, topk] out: expert ids, in top-k order (biased score descending,
 *                                equal scores: lower expert id first)
 *   p            dsv32_router_params (below); E % n_groups == 0, 1 <= topk_groups <= n_groups,
 *                1 <= topk <= E, group size >= 2 when group scores are top-2 sums
 * Math (per token, all fp32, each op one IEEE fp32 rounding, no FMA):
 *   1. s = score(logits): SIGMOID: s = 1.0f / (1.0f + expf(-x))   (PyTorch's sigmoid formula on
 *      CPU and CUDA); SOFTMAX (ref only): m = max, e_j = expf(x_j - m), S = Σ_j e_j summed
 *      sequentially j = 0..E-1 from +0, s_j = e_j / S.
 *   2. orig = s;  b = s + bias  (bias NULL: b = s).
 *   3. n_groups > 1: group score g = sum of the top-2 b of the group (computed as top1 + top2)
 *      when bias != NULL or mode == HF (HF always sums the top 2), else the group max (ref
 *      without bias). Keep the topk_groups best groups (ties: lower group index); every b of the
 *      other groups becomes -inf (ref, and HF v5; old HF V3 used 0.0, not offered).
 *   4. idx = top-k of b (dsv32_topk order and tie rule: NaN largest, -0 < +0).
 *      With p->torch_cpu_ties (CPU only) steps 3 and 4 pick instead as torch.topk(sorted=False)
 *      on a CPU (kernels/topk_torch.h): the kept groups from the group scores, then the experts,
 *      idx in torch's slot order, which steps 5-7 follow (docs/topk-ties.md).
 *   5. w_j = orig[idx_j].
 *   6. normalization: REF: iff SIGMOID, w_j = w_j / sum;  HF: iff p->norm_topk_prob,
 *      w_j = w_j / (sum + 1e-20f). sum = ((w_0 + w_1) + w_2) + ... sequential over the k slots
 *      in output (top-k) order, from w_0. This is the order of torch 1.13's CPU sum for rows
 *      shorter than one vector (the golden data); CUDA's reduce kernel may pair slots
 *      differently (last-bit differences only).
 *   7. w_j = w_j * route_scale (fp32(route_scale)).
 *
 * dsv32_router_weights_at(be, weights_out, idx, logits, bias, p, err)
 *   the mixing weights of a GIVEN selection (a decision forced by the caller, core/model.h
 *   "Decisions"): idx I64 [T, topk] expert ids in [0, E), none twice in a row, on the backend;
 *   weights_out F32 [T, topk] in idx's slot order; logits, bias, p as above.
 *   Math: steps 1, 2, 5, 6, 7 above with idx in place of step 4's selection (step 2 and the
 *   group mask only choose, so they cannot change a weight): the same operations in the same
 *   order, so idx = dsv32_router's own selection gives bit-identical weights.
 *   An id out of range: DSV32_E_USAGE on CPU; its row's weights are NaN on CUDA (callers check
 *   ids first: layout_common/tap_emit.h lc_tap_decide).
 * dsv32_router_scores(be, scores_out, logits, bias, p, err)
 *   the selection scores b of step 2 after step 3's group masking (-inf in dropped groups):
 *   scores_out F32 [T, E], what step 4 takes its top-k of (the "moe.scores" tap,
 *   docs/spec/taps.md). Same operations as dsv32_router, so the same bits.
 * dsv32_router_scores_groups(be, scores_out, groups_out, logits, bias, p, err)
 *   the same, and step 3's group scores g (before the mask) into groups_out F32 [T, n_groups]
 *   (the "moe.group_scores" tap: what the group limit takes its top-k of); n_groups > 1.
 *   groups_out NULL: dsv32_router_scores.
 * exp rule: p->exp (kernels/exp_torch.h; CPU only, DSV32_E_UNSUPPORTED on CUDA): torch-cpu
 *         computes step 1's SIGMOID as torch's CPU sigmoid kernel on the whole contiguous
 *         [T, E] logits tensor (HF's `router_logits.sigmoid()`, and the reference Gate's
 *         `scores.sigmoid()`): s = 1 / (1 + e), e = Sleef's expf_u10(0 − x) in the vector body
 *         and expf(−x) in the scalar tail, chosen by the element's position in the tensor
 *         (p->exp.threads, p->exp.cap; dsv32_sigmoid_torch_cpu). Every other step as above.
 *         SOFTMAX is not offered with torch-cpu (DSV32_E_UNSUPPORTED).
 * Exact:  given the same expf, the result is fully determined. expf is glibc's on CPU and CUDA's
 *         expf (<= 2 ulp) on the device, so CPU and CUDA weights may differ in the last bits of
 *         s (and then in a selection only at an exact near-tie). PyTorch uses Sleef (CPU) / CUDA
 *         expf: the same remark applies to the comparison with upstream.
 * Not:    the gate GEMM; the softmax path is not normalized in REF mode (upstream).
 * Errors: DSV32_E_DTYPE, DSV32_E_SHAPE, DSV32_E_USAGE (bad params, device), DSV32_E_UNSUPPORTED,
 *         DSV32_E_NOMEM, DSV32_E_CUDA.
 */
#ifndef DSV32_ROUTER_H
#define DSV32_ROUTER_H

#include "core/config.h" /* dsv32_score_func */
#include "kernels/exp_torch.h"
#include "kernels/topk.h"

typedef enum {
	DSV32_ROUTER_REF = 0, /* inference/model.py Gate */
	DSV32_ROUTER_HF,      /* transformers v5 DeepseekV32TopkRouter + MoE.route_tokens_to_experts */
	DSV32_ROUTER_MODE_COUNT /* append only, above this line */
} dsv32_router_mode;

typedef struct {
	int n_groups;          /* n_expert_groups / n_group (1 = no group limit) */
	int topk_groups;       /* n_limited_groups / topk_group */
	int topk;              /* n_activated_experts / num_experts_per_tok */
	float route_scale;     /* route_scale / routed_scaling_factor */
	dsv32_score_func score_func;
	dsv32_router_mode mode;
	bool norm_topk_prob;   /* HF only; REF normalizes iff SIGMOID */
	bool torch_cpu_ties;   /* CPU only: the group and expert selections as torch.topk(
				* sorted=False) on a CPU (kernels/topk_torch.h), slots in its order,
				* as HF's router runs on a CPU; false: the index rule above */
	dsv32_exp_opts exp;    /* step 1's exp (above "exp rule"); zero = libm, the math above */
} dsv32_router_params;

const char *dsv32_score_func_name(dsv32_score_func f);
const char *dsv32_router_mode_name(dsv32_router_mode m);
/* The parameters each layout routes with, from the model config: REF as the reference Gate
 * (the config's score function; normalizes iff sigmoid), HF as transformers (always sigmoid,
 * the config's norm_topk_prob). */
dsv32_router_params dsv32_router_params_of(const dsv32_config *c, dsv32_router_mode mode);

DSV32_HD static inline float dsv32_router_sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* Step 2 of one token: b = orig + bias (bias NULL: b = orig). */
DSV32_HD static inline void dsv32_router_row_bias(float *b, const float *orig, const float *bias,
						  int E)
{
	for (int j = 0; j < E; j++)
		b[j] = bias ? orig[j] + bias[j] : orig[j];
}

/* Steps 1-2 of one token: orig = score(logits), b = orig + bias. */
DSV32_HD static inline void dsv32_router_row_probs(float *orig, float *b, const float *logits,
						   const float *bias, int E,
						   const dsv32_router_params *p)
{
	if (p->score_func == DSV32_SCORE_SOFTMAX) {
		float m = logits[0], S = 0.0f;
		for (int j = 1; j < E; j++)
			m = logits[j] > m || logits[j] != logits[j] ? logits[j] : m;
		for (int j = 0; j < E; j++) {
			orig[j] = expf(logits[j] - m);
			S = dsv32_fadd_rn(S, orig[j]);
		}
		for (int j = 0; j < E; j++)
			orig[j] = orig[j] / S;
	} else {
		for (int j = 0; j < E; j++)
			orig[j] = dsv32_router_sigmoid(logits[j]);
	}
	dsv32_router_row_bias(b, orig, bias, E);
}

/* Step 3's group scores of one token: g[q] = the top-2 sum (or the max) of group q of b. */
DSV32_HD static inline void dsv32_router_row_group_scores(const float *b, float *g, int E,
							  bool has_bias,
							  const dsv32_router_params *p)
{
	int G = p->n_groups, gs = E / G;
	bool top2 = has_bias || p->mode == DSV32_ROUTER_HF;
	for (int q = 0; q < G; q++) {
		const float *v = b + q * gs;
		int i1 = 0; /* best (lower index on ties), then second best */
		for (int j = 1; j < gs; j++)
			if (dsv32_topk_key(v[j]) > dsv32_topk_key(v[i1]))
				i1 = j;
		if (!top2) {
			g[q] = v[i1];
			continue;
		}
		int i2 = i1 == 0 ? 1 : 0;
		for (int j = 0; j < gs; j++)
			if (j != i1 && dsv32_topk_key(v[j]) > dsv32_topk_key(v[i2]))
				i2 = j;
		g[q] = v[i1] + v[i2];
	}
}

/* Step 3 of one token: -inf into b outside the topk_groups best groups. g: n_groups floats. */
DSV32_HD static inline void dsv32_router_row_group_mask(float *b, float *g, int E, bool has_bias,
							const dsv32_router_params *p)
{
	if (p->n_groups <= 1)
		return;
	int G = p->n_groups, gs = E / G;
	dsv32_router_row_group_scores(b, g, E, has_bias, p);
	/* keep the topk_groups best groups: group q is kept iff fewer than topk_groups
	 * groups precede it in (key desc, index asc) order */
	for (int q = 0; q < G; q++) {
		int before = 0;
		uint32_t kq = dsv32_topk_key(g[q]);
		for (int r = 0; r < G; r++) {
			uint32_t kr = dsv32_topk_key(g[r]);
			if (kr > kq || (kr == kq && r < q))
				before++;
		}
		if (before >= p->topk_groups)
			for (int j = 0; j < gs; j++)
				b[q * gs + j] = -INFINITY;
	}
}

/* Steps 5-7 of one token for the selection idx (ids in [0, E): false, and NaN weights, when
 * one is not). */
DSV32_HD static inline bool dsv32_router_row_mix(float *w_out, const int64_t *idx,
						 const float *orig, int E,
						 const dsv32_router_params *p)
{
	int k = p->topk;
	for (int s = 0; s < k; s++)
		if (idx[s] < 0 || idx[s] >= E) {
			for (int r = 0; r < k; r++)
				w_out[r] = NAN;
			return false;
		}
	for (int s = 0; s < k; s++)
		w_out[s] = orig[idx[s]];
	bool norm = p->mode == DSV32_ROUTER_HF ? p->norm_topk_prob
					       : p->score_func == DSV32_SCORE_SIGMOID;
	if (norm) {
		float sum = w_out[0];
		for (int s = 1; s < k; s++)
			sum = dsv32_fadd_rn(sum, w_out[s]);
		if (p->mode == DSV32_ROUTER_HF)
			sum = dsv32_fadd_rn(sum, 1e-20f);
		for (int s = 0; s < k; s++)
			w_out[s] = w_out[s] / sum;
	}
	for (int s = 0; s < k; s++)
		w_out[s] = w_out[s] * p->route_scale;
	return true;
}

/* Steps 3-7 of one token from its orig and b (steps 1-2): group mask (g: n_groups floats),
 * top-k by selection, mix. */
DSV32_HD static inline void dsv32_router_row_select(float *w_out, int64_t *idx_out,
						    const float *orig, float *b, float *g, int E,
						    bool has_bias, const dsv32_router_params *p)
{
	int k = p->topk;
	dsv32_router_row_group_mask(b, g, E, has_bias, p);
	/* top-k by selection: k is small (<= E), O(k·E) */
	for (int s = 0; s < k; s++) {
		int best = -1;
		uint32_t kb = 0;
		for (int j = 0; j < E; j++) {
			bool taken = false;
			for (int r = 0; r < s; r++)
				if (idx_out[r] == j) {
					taken = true;
					break;
				}
			if (taken)
				continue;
			uint32_t kj = dsv32_topk_key(b[j]);
			if (best < 0 || kj > kb) {
				best = j;
				kb = kj;
			}
		}
		idx_out[s] = best;
	}
	dsv32_router_row_mix(w_out, idx_out, orig, E, p);
}

/* One token, shared by the CPU and CUDA bodies. scratch: 2*E + n_groups floats. */
DSV32_HD static inline void dsv32_router_row(float *w_out, int64_t *idx_out, const float *logits,
					     const float *bias, int E, const dsv32_router_params *p,
					     float *scratch)
{
	float *orig = scratch, *b = scratch + E, *g = scratch + 2 * E;
	dsv32_router_row_probs(orig, b, logits, bias, E, p);
	dsv32_router_row_select(w_out, idx_out, orig, b, g, E, bias != NULL, p);
}

dsv32_status dsv32_router(dsv32_backend *be, dsv32_tensor *weights_out, dsv32_tensor *idx_out,
			  const dsv32_tensor *logits, const dsv32_tensor *bias,
			  const dsv32_router_params *p, dsv32_error *err);
dsv32_status dsv32_router_weights_at(dsv32_backend *be, dsv32_tensor *weights_out,
				     const dsv32_tensor *idx, const dsv32_tensor *logits,
				     const dsv32_tensor *bias, const dsv32_router_params *p,
				     dsv32_error *err);
dsv32_status dsv32_router_scores(dsv32_backend *be, dsv32_tensor *scores_out,
				 const dsv32_tensor *logits, const dsv32_tensor *bias,
				 const dsv32_router_params *p, dsv32_error *err);
dsv32_status dsv32_router_scores_groups(dsv32_backend *be, dsv32_tensor *scores_out,
					dsv32_tensor *groups_out, const dsv32_tensor *logits,
					const dsv32_tensor *bias, const dsv32_router_params *p,
					dsv32_error *err);

#endif
