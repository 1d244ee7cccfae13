/* moe_router.c: glue to the HF router op (DeepseekV32TopkRouter, hf_layout.md §6). Kept in its
 * own file: kernels/router.h and core/config.h both declare dsv32_score_func, so no file may
 * include both (reported to the owners). */
#include "kernels/router.h"

dsv32_status hf_route(dsv32_backend *be, dsv32_tensor *weights, dsv32_tensor *idx,
		      const dsv32_tensor *logits, const dsv32_tensor *bias, int n_groups,
		      int topk_groups, int topk, float route_scale, bool norm_topk_prob,
		      dsv32_error *err);

dsv32_status hf_route(dsv32_backend *be, dsv32_tensor *weights, dsv32_tensor *idx,
		      const dsv32_tensor *logits, const dsv32_tensor *bias, int n_groups,
		      int topk_groups, int topk, float route_scale, bool norm_topk_prob,
		      dsv32_error *err)
{
	dsv32_router_params p = {
		.n_groups = n_groups,
		.topk_groups = topk_groups,
		.topk = topk,
		.route_scale = route_scale,
		.score_func = DSV32_SCORE_SIGMOID,
		.mode = DSV32_ROUTER_HF,
		.norm_topk_prob = norm_topk_prob,
	};
	return dsv32_router(be, weights, idx, logits, bias, &p, err);
}
