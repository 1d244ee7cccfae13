/* route.h: the router parameters a layout routes with, in one place for both layouts and every
 * call (the selection, the forced weights, the moe.scores tap). */
#ifndef DSV32_LC_ROUTE_H
#define DSV32_LC_ROUTE_H

#include "core/model.h"
#include "kernels/exp_torch.h"
#include "kernels/router.h"
#include "kernels/topk_torch.h"
#include "layout_common/tap_emit.h"

/* dsv32_router_params_of(mode) with the model's tie rule (dsv32_model_opts.ties): torch-cpu
 * picks groups and experts as torch.topk(sorted=False) on a CPU (docs/topk-ties.md); and its
 * exp rule (dsv32_model_opts.exp_rule): torch-cpu computes the sigmoid as torch's CPU kernel
 * (kernels/exp_torch.h, this host's threads and capability). */
/* exp=torch-cpu as this model follows it: this host's threads and capability unless its options
 * name the run it follows (a recording's exp_threads / exp_capability). */
static inline dsv32_exp_opts lc_torch_cpu_exp(const dsv32_model *m)
{
	dsv32_exp_opts x = dsv32_exp_opts_torch_cpu_host();
	if (m->opts.exp_threads > 0)
		x.threads = m->opts.exp_threads;
	if (m->opts.exp_cap > 0)
		x.cap = (dsv32_torch_cap)(m->opts.exp_cap - 1);
	return x;
}

static inline dsv32_router_params lc_router_params(const dsv32_model *m, dsv32_router_mode mode)
{
	dsv32_router_params rp = dsv32_router_params_of(&m->cfg, mode);
	rp.torch_cpu_ties = m->opts.ties == DSV32_TIES_TORCH_CPU;
	if (m->opts.exp_rule == DSV32_EXP_TORCH_CPU) /* the whole [T, E] sigmoid as torch's */
		rp.exp = lc_torch_cpu_exp(m);
	return rp;
}

/* The exp options of a silu whose upstream input is contiguous (inner 0) or rows of `inner`
 * (HF's routed experts: gate_up.chunk(2, -1)[0]): NULL under the libm rule. */
static inline const dsv32_exp_opts *lc_exp_opts(const dsv32_model *m, int64_t inner,
						dsv32_exp_opts *buf)
{
	if (m->opts.exp_rule != DSV32_EXP_TORCH_CPU)
		return NULL;
	*buf = lc_torch_cpu_exp(m);
	buf->inner = inner;
	return buf;
}

/* The "moe.scores" tap of a decoder layer: the router's selection scores after the group limit
 * (router.h steps 1-3) of logits [B*S, E] with bias (NULL: none), as [B, S, E], and before it,
 * when the router has groups, "moe.group_scores" [B, S, n_groups] (step 3's group scores);
 * computed only when taps are on. */
dsv32_status lc_tap_router_scores(const dsv32_model *m, lc_tapper tp, dsv32_router_mode mode,
				  int layer, const dsv32_tensor *logits, const dsv32_tensor *bias,
				  int64_t B, int64_t S, dsv32_error *err);

#endif
