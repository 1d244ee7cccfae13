/* router_cpu.c: CPU bodies of dsv32_router (dsv32_router_row per token), dsv32_router_weights_at
 * and dsv32_router_scores (the same steps, router.h), OpenMP over tokens. */
#include "kernels/router_impl.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_parallel.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/topk_torch.h"

/* One thread's scratch for the torch-cpu tie rule: probabilities, selection scores, group
 * scores, the kept groups, and torch's top-k work area (E >= n_groups entries). */
typedef struct {
	float *orig, *b, *g;
	int64_t *gidx;
	void *tk;
} torch_scratch;

static bool torch_scratch_alloc(torch_scratch *s, int E, int G)
{
	s->orig = malloc((size_t)(2 * E + G) * sizeof *s->orig);
	s->gidx = malloc((size_t)G * sizeof *s->gidx);
	s->tk = malloc(dsv32_topk_torch_cpu_scratch_bytes(E));
	s->b = s->orig ? s->orig + E : NULL;
	s->g = s->orig ? s->orig + 2 * E : NULL;
	return s->orig && s->gidx && s->tk;
}

static void torch_scratch_free(torch_scratch *s)
{
	free(s->orig);
	free(s->gidx);
	free(s->tk);
}

/* exp=torch-cpu: step 1's sigmoid of all T·E logits as torch's CPU kernel on the whole tensor
 * (router.h "exp rule"), into *sig (malloc'd; NULL under the libm rule). */
static dsv32_status torch_sigmoid(float **sig, const float *logits, int64_t T, int E,
				  const dsv32_router_params *p, dsv32_error *err)
{
	*sig = NULL;
	if (p->exp.rule != DSV32_EXP_TORCH_CPU)
		return DSV32_OK;
	*sig = malloc((size_t)(T * E) * sizeof **sig);
	if (!*sig)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router: %lld floats for exp=torch-cpu",
				  (long long)(T * E));
	dsv32_sigmoid_torch_cpu(*sig, logits, T * E, T * E, p->exp.threads, p->exp.cap);
	return DSV32_OK;
}

/* Steps 1-2 of token t: from sig (exp=torch-cpu) when given, else dsv32_router_row_probs. */
static void row_probs(float *orig, float *b, const float *logits, const float *sig, int64_t t,
		      const float *bias, int E, const dsv32_router_params *p)
{
	if (!sig) {
		dsv32_router_row_probs(orig, b, logits + t * (int64_t)E, bias, E, p);
		return;
	}
	memcpy(orig, sig + t * (int64_t)E, (size_t)E * sizeof *orig);
	dsv32_router_row_bias(b, orig, bias, E);
}

/* Step 3 as HF's router on a CPU: the groups torch.topk(group_scores, topk_group,
 * sorted=False) keeps; every b outside them becomes -inf. */
static void torch_group_mask(float *b, const torch_scratch *s, int E, bool has_bias,
			     const dsv32_router_params *p)
{
	if (p->n_groups <= 1)
		return;
	int G = p->n_groups, gs = E / G;
	dsv32_router_row_group_scores(b, s->g, E, has_bias, p);
	dsv32_topk_torch_cpu_row(s->g, G, p->topk_groups, false, s->gidx, NULL, s->tk);
	for (int q = 0; q < G; q++) {
		bool kept = false;
		for (int i = 0; i < p->topk_groups; i++)
			kept |= s->gidx[i] == q;
		if (!kept)
			for (int j = 0; j < gs; j++)
				b[q * gs + j] = -INFINITY;
	}
}

/* dsv32_router with the torch-cpu tie rule: the experts as torch.topk(b, topk, sorted=False)
 * on a CPU, in its slot order, and the weights mixed in that order (router.h steps 5-7). */
static dsv32_status router_torch_cpu(float *w, void *idx, dsv32_dtype idx_t, const float *logits,
				     const float *sig, const float *bias, int64_t T, int E,
				     const dsv32_router_params *p, dsv32_error *err)
{
	int failed = 0;
	const int k = p->topk;
#pragma omp parallel if (dsv32_par_worth((double)T * E * k)) reduction(|| : failed)
	{
		torch_scratch s;
		int64_t *ib = malloc((size_t)k * sizeof *ib);
		bool ok = torch_scratch_alloc(&s, E, p->n_groups) && ib;
		failed = !ok;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!ok)
				continue;
			row_probs(s.orig, s.b, logits, sig, t, bias, E, p);
			torch_group_mask(s.b, &s, E, bias != NULL, p);
			dsv32_topk_torch_cpu_row(s.b, E, k, false, ib, NULL, s.tk);
			dsv32_router_row_mix(w + t * k, ib, s.orig, E, p);
			for (int j = 0; j < k; j++) {
				if (idx_t == DSV32_I64)
					((int64_t *)idx)[t * k + j] = ib[j];
				else
					((int32_t *)idx)[t * k + j] = (int32_t)ib[j];
			}
		}
		torch_scratch_free(&s);
		free(ib);
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router: allocating scratch for E = %d", E);
	return DSV32_OK;
}

dsv32_status dsv32_router_cpu(float *w, void *idx, dsv32_dtype idx_t, const float *logits,
			      const float *bias, int64_t T, int E, const dsv32_router_params *p,
			      dsv32_error *err)
{
	float *sig;
	DSV32_TRY(torch_sigmoid(&sig, logits, T, E, p, err));
	if (p->torch_cpu_ties) {
		dsv32_status rc = router_torch_cpu(w, idx, idx_t, logits, sig, bias, T, E, p, err);
		free(sig);
		return rc;
	}
	int failed = 0;
	const int k = p->topk;
#pragma omp parallel if (dsv32_par_worth((double)T * E * k)) reduction(|| : failed)
	{
		float *scratch = dsv32_cpu_scratch(0, (size_t)(2 * E + p->n_groups) * sizeof *scratch);
		int64_t *ib = dsv32_cpu_scratch(1, (size_t)k * sizeof *ib); /* per thread, kept */
		if (!scratch || !ib)
			failed = 1;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!scratch || !ib)
				continue;
			row_probs(scratch, scratch + E, logits, sig, t, bias, E, p);
			dsv32_router_row_select(w + t * k, ib, scratch, scratch + E, scratch + 2 * E, E,
						bias != NULL, p);
			for (int j = 0; j < k; j++) {
				if (idx_t == DSV32_I64)
					((int64_t *)idx)[t * k + j] = ib[j];
				else
					((int32_t *)idx)[t * k + j] = (int32_t)ib[j];
			}
		}
	}
	free(sig);
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router: allocating scratch for E = %d", E);
	return DSV32_OK;
}

dsv32_status dsv32_router_weights_at_cpu(float *w, const int64_t *idx, const float *logits,
					 const float *bias, int64_t T, int E,
					 const dsv32_router_params *p, dsv32_error *err)
{
	int failed = 0;
	int64_t bad = -1;
	const int k = p->topk;
	float *sig;
	DSV32_TRY(torch_sigmoid(&sig, logits, T, E, p, err));
#pragma omp parallel if (dsv32_par_worth((double)T * E * k)) reduction(|| : failed)
	{
		float *scratch = malloc((size_t)(2 * E) * sizeof *scratch);
		if (!scratch)
			failed = 1;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!scratch)
				continue;
			row_probs(scratch, scratch + E, logits, sig, t, bias, E, p);
			if (!dsv32_router_row_mix(w + t * k, idx + t * k, scratch, E, p)) {
#pragma omp critical(router_bad)
				bad = bad < 0 || t < bad ? t : bad;
			}
		}
		free(scratch);
	}
	free(sig);
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router_weights_at: allocating scratch for E = %d",
				  E);
	if (bad >= 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router_weights_at: row %lld has an expert id "
				  "outside [0, %d)", (long long)bad, E);
	return DSV32_OK;
}

dsv32_status dsv32_router_scores_cpu(float *scores, float *groups, const float *logits,
				     const float *bias, int64_t T, int E,
				     const dsv32_router_params *p, dsv32_error *err)
{
	int failed = 0;
	float *sig;
	DSV32_TRY(torch_sigmoid(&sig, logits, T, E, p, err));
#pragma omp parallel if (dsv32_par_worth((double)T * E * p->n_groups)) reduction(|| : failed)
	{
		torch_scratch s;
		bool ok = torch_scratch_alloc(&s, E, p->n_groups);
		failed = !ok;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!ok)
				continue;
			float *b = scores + t * (int64_t)E;
			row_probs(s.orig, b, logits, sig, t, bias, E, p);
			if (p->torch_cpu_ties) /* the groups the selection keeps under that rule */
				torch_group_mask(b, &s, E, bias != NULL, p);
			else
				dsv32_router_row_group_mask(b, s.g, E, bias != NULL, p);
			if (groups && p->n_groups > 1) /* both masks leave the group scores in s.g */
				memcpy(groups + t * p->n_groups, s.g, (size_t)p->n_groups * sizeof *s.g);
		}
		torch_scratch_free(&s);
	}
	free(sig);
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router_scores: allocating scratch for E = %d", E);
	return DSV32_OK;
}
