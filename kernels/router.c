/* router.c: argument checks and dispatch for dsv32_router, dsv32_router_weights_at and
 * dsv32_router_scores (contract in router.h). */
#include "kernels/router_impl.h"

const char *dsv32_score_func_name(dsv32_score_func f)
{
	switch (f) {
	case DSV32_SCORE_SIGMOID: return "sigmoid";
	case DSV32_SCORE_SOFTMAX: return "softmax";
	default: return "?";
	}
}

dsv32_router_params dsv32_router_params_of(const dsv32_config *c, dsv32_router_mode mode)
{
	bool hf = mode == DSV32_ROUTER_HF;
	return (dsv32_router_params){
		.n_groups = (int)c->n_expert_groups,
		.topk_groups = (int)c->n_limited_groups,
		.topk = (int)c->n_activated_experts,
		.route_scale = (float)c->route_scale,
		.score_func = hf ? DSV32_SCORE_SIGMOID : c->score_func,
		.mode = mode,
		.norm_topk_prob = hf && c->norm_topk_prob,
	};
}

const char *dsv32_router_mode_name(dsv32_router_mode m)
{
	switch (m) {
	case DSV32_ROUTER_REF: return "ref";
	case DSV32_ROUTER_HF: return "hf";
	default: return "?";
	}
}

static dsv32_status check_params(const dsv32_router_params *p, int E, bool has_bias,
				 dsv32_error *err)
{
	if ((unsigned)p->score_func >= DSV32_SCORE_FUNC_COUNT ||
	    (unsigned)p->mode >= DSV32_ROUTER_MODE_COUNT)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: score_func %d / mode %d unknown",
				  (int)p->score_func, (int)p->mode);
	if (p->topk < 1 || p->topk > E)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: topk %d, expected 1..E = %d", p->topk, E);
	if (p->n_groups < 1 || E % p->n_groups != 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: n_groups %d does not divide E = %d",
				  p->n_groups, E);
	if (p->n_groups > 1) {
		if (p->topk_groups < 1 || p->topk_groups > p->n_groups)
			return DSV32_FAIL(err, DSV32_E_USAGE, "router: topk_groups %d, expected 1..%d",
					  p->topk_groups, p->n_groups);
		if ((has_bias || p->mode == DSV32_ROUTER_HF) && E / p->n_groups < 2)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "router: group size %d, top-2 group scores need >= 2",
					  E / p->n_groups);
	}
	return DSV32_OK;
}

/* The exp rule (router.h "exp rule"): libm anywhere; torch-cpu on the CPU with sigmoid. */
static dsv32_status check_exp(const dsv32_backend *be, const dsv32_router_params *p,
			      dsv32_error *err)
{
	const dsv32_exp_opts *x = &p->exp;
	if ((unsigned)x->rule >= DSV32_EXP_RULE_COUNT)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: exp rule %d", (int)x->rule);
	if (x->rule == DSV32_EXP_LIBM)
		return DSV32_OK;
	if (be->device != DSV32_DEV_CPU)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "router: exp=torch-cpu runs on the CPU "
				  "only (torch on CUDA uses CUDA's expf: exp=libm)");
	if (p->score_func != DSV32_SCORE_SIGMOID)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "router: exp=torch-cpu reproduces "
				  "torch's sigmoid only, not %s", dsv32_score_func_name(p->score_func));
	if (x->threads < 1 || (unsigned)x->cap >= DSV32_TORCH_CAP_COUNT)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: exp=torch-cpu with %d threads, "
				  "capability %d", x->threads, (int)x->cap);
	return DSV32_OK;
}

/* The checks every entry shares: logits F32 [T, E], params, bias; *E_out = E. */
static dsv32_status check_inputs(dsv32_backend *be, const dsv32_tensor *logits,
				 const dsv32_tensor *bias, const dsv32_router_params *p,
				 int *E_out, dsv32_error *err)
{
	char a[128];
	if (logits->dtype != DSV32_F32 || logits->ndim != 2)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router logits: %s %s, expected F32 [T, E]",
				  dsv32_dtype_name(logits->dtype),
				  dsv32_shape_str(a, sizeof a, logits->ndim, logits->shape));
	if (logits->shape[1] < 1 || logits->shape[1] > 65536)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router logits: E = %lld, expected 1..65536",
				  (long long)logits->shape[1]);
	int E = (int)logits->shape[1];
	DSV32_TRY(check_params(p, E, bias != NULL, err));
	if (bias && (bias->dtype != DSV32_F32 || dsv32_tensor_numel(bias) != E))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router bias: %s %s, expected F32 [%d]",
				  dsv32_dtype_name(bias->dtype),
				  dsv32_shape_str(a, sizeof a, bias->ndim, bias->shape), E);
	if (logits->device != be->device || (bias && bias->device != be->device))
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: a tensor is not on the backend's device");
	DSV32_TRY(check_exp(be, p, err));
	*E_out = E;
	return DSV32_OK;
}

static dsv32_status check_weights_out(dsv32_backend *be, const dsv32_tensor *w, int64_t T,
				      const dsv32_router_params *p, const dsv32_tensor *logits,
				      dsv32_error *err)
{
	char a[128];
	if (w->dtype != DSV32_F32 || w->ndim != 2 || w->shape[0] != T || w->shape[1] != p->topk)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router weights_out: %s %s, expected F32 [%lld, %d]",
				  dsv32_dtype_name(w->dtype), dsv32_shape_str(a, sizeof a, w->ndim, w->shape),
				  (long long)T, p->topk);
	if (w->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: a tensor is not on the backend's device");
	if (w->data == logits->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: an output aliases the logits");
	return DSV32_OK;
}

dsv32_status dsv32_router(dsv32_backend *be, dsv32_tensor *weights_out, dsv32_tensor *idx_out,
			  const dsv32_tensor *logits, const dsv32_tensor *bias,
			  const dsv32_router_params *p, dsv32_error *err)
{
	char a[128];
	int E;
	DSV32_TRY(check_inputs(be, logits, bias, p, &E, err));
	int64_t T = logits->shape[0];
	DSV32_TRY(check_weights_out(be, weights_out, T, p, logits, err));
	if ((idx_out->dtype != DSV32_I64 && idx_out->dtype != DSV32_I32) || idx_out->ndim != 2 ||
	    idx_out->shape[0] != T || idx_out->shape[1] != p->topk)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router idx_out: %s %s, expected I64|I32 [%lld, %d]",
				  dsv32_dtype_name(idx_out->dtype),
				  dsv32_shape_str(a, sizeof a, idx_out->ndim, idx_out->shape),
				  (long long)T, p->topk);
	if (idx_out->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: a tensor is not on the backend's device");
	if (idx_out->data == logits->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: an output aliases the logits");
	if (T == 0)
		return DSV32_OK;
	const float *bp = bias ? (const float *)bias->data : NULL;
	if (be->device == DSV32_DEV_CPU)
		return dsv32_router_cpu(weights_out->data, idx_out->data, idx_out->dtype, logits->data,
					bp, T, E, p, err);
	if (p->torch_cpu_ties)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "router: the torch-cpu tie rule runs on "
				  "the CPU only (torch on CUDA follows the index rule: ties=index)");
	return DSV32_CUDA_BODY(be, "router", err,
			       dsv32_router_cuda(be, weights_out->data, idx_out->data,
						 idx_out->dtype, logits->data, bp, T, E, p, err));
}

dsv32_status dsv32_router_weights_at(dsv32_backend *be, dsv32_tensor *weights_out,
				     const dsv32_tensor *idx, const dsv32_tensor *logits,
				     const dsv32_tensor *bias, const dsv32_router_params *p,
				     dsv32_error *err)
{
	char a[128];
	int E;
	DSV32_TRY(check_inputs(be, logits, bias, p, &E, err));
	int64_t T = logits->shape[0];
	DSV32_TRY(check_weights_out(be, weights_out, T, p, logits, err));
	if (idx->dtype != DSV32_I64 || idx->ndim != 2 || idx->shape[0] != T ||
	    idx->shape[1] != p->topk)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router_weights_at idx: %s %s, expected I64 [%lld, %d]",
				  dsv32_dtype_name(idx->dtype),
				  dsv32_shape_str(a, sizeof a, idx->ndim, idx->shape), (long long)T,
				  p->topk);
	if (idx->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: a tensor is not on the backend's device");
	if (T == 0)
		return DSV32_OK;
	const float *bp = bias ? (const float *)bias->data : NULL;
	if (be->device == DSV32_DEV_CPU)
		return dsv32_router_weights_at_cpu(weights_out->data, idx->data, logits->data, bp, T,
						   E, p, err);
	return DSV32_CUDA_BODY(be, "router_weights_at", err,
			       dsv32_router_weights_at_cuda(be, weights_out->data, idx->data,
							    logits->data, bp, T, E, p, err));
}

/* An F32 [T, cols] output of router_scores on the backend's device, not aliasing the logits. */
static dsv32_status check_scores_out(const dsv32_backend *be, const dsv32_tensor *out,
				     const dsv32_tensor *logits, const char *what, int64_t T,
				     int cols, dsv32_error *err)
{
	char a[128];
	if (out->dtype != DSV32_F32 || dsv32_tensor_numel(out) != T * cols || out->ndim < 1 ||
	    out->shape[out->ndim - 1] != cols)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "router %s: %s %s, expected F32 [%lld, %d]",
				  what, dsv32_dtype_name(out->dtype),
				  dsv32_shape_str(a, sizeof a, out->ndim, out->shape), (long long)T,
				  cols);
	if (out->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: a tensor is not on the backend's device");
	if (out->data == logits->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router: an output aliases the logits");
	return DSV32_OK;
}

dsv32_status dsv32_router_scores_groups(dsv32_backend *be, dsv32_tensor *scores_out,
					dsv32_tensor *groups_out, const dsv32_tensor *logits,
					const dsv32_tensor *bias, const dsv32_router_params *p,
					dsv32_error *err)
{
	int E;
	DSV32_TRY(check_inputs(be, logits, bias, p, &E, err));
	int64_t T = logits->shape[0];
	DSV32_TRY(check_scores_out(be, scores_out, logits, "scores_out", T, E, err));
	if (groups_out && p->n_groups <= 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router groups_out: the router has no groups");
	if (groups_out)
		DSV32_TRY(check_scores_out(be, groups_out, logits, "groups_out", T, p->n_groups,
					   err));
	if (T == 0)
		return DSV32_OK;
	const float *bp = bias ? (const float *)bias->data : NULL;
	float *gp = groups_out ? groups_out->data : NULL;
	if (be->device == DSV32_DEV_CPU)
		return dsv32_router_scores_cpu(scores_out->data, gp, logits->data, bp, T, E, p, err);
	if (p->torch_cpu_ties)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "router_scores: the torch-cpu tie rule "
				  "runs on the CPU only");
	return DSV32_CUDA_BODY(be, "router_scores", err,
			       dsv32_router_scores_cuda(be, scores_out->data, gp, logits->data, bp, T,
							E, p, err));
}

dsv32_status dsv32_router_scores(dsv32_backend *be, dsv32_tensor *scores_out,
				 const dsv32_tensor *logits, const dsv32_tensor *bias,
				 const dsv32_router_params *p, dsv32_error *err)
{
	return dsv32_router_scores_groups(be, scores_out, NULL, logits, bias, p, err);
}
