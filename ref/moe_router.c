/* moe_router.c: the reference Gate's selection through kernels/router.h (reference_layout.md
 * §A.11). Its own translation unit: kernels/router.h and core/config.h both declare an enum
 * dsv32_score_func, so the two headers cannot meet in one file (reported to the kernels owner). */
#include "kernels/router.h"

dsv32_status ref_route(dsv32_backend *be, dsv32_tensor *w_out, dsv32_tensor *idx_out,
		       const dsv32_tensor *logits, const dsv32_tensor *bias, int n_groups,
		       int topk_groups, int topk, float route_scale, bool softmax, dsv32_error *err);

dsv32_status ref_route(dsv32_backend *be, dsv32_tensor *w_out, dsv32_tensor *idx_out,
		       const dsv32_tensor *logits, const dsv32_tensor *bias, int n_groups,
		       int topk_groups, int topk, float route_scale, bool softmax, dsv32_error *err)
{
	dsv32_router_params p = {
		.n_groups = n_groups,
		.topk_groups = topk_groups,
		.topk = topk,
		.route_scale = route_scale,
		.score_func = softmax ? DSV32_SCORE_SOFTMAX : DSV32_SCORE_SIGMOID,
		.mode = DSV32_ROUTER_REF,
		.norm_topk_prob = false,
	};
	return dsv32_router(be, w_out, idx_out, logits, bias, &p, err);
}
