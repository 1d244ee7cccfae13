/* route.c: the moe.group_scores and moe.scores taps both layouts emit (route.h). */
#include "layout_common/route.h"

#include "layout_common/scratch.h"

dsv32_status lc_tap_router_scores(const dsv32_model *m, lc_tapper tp, dsv32_router_mode mode,
				  int layer, const dsv32_tensor *logits, const dsv32_tensor *bias,
				  int64_t B, int64_t S, dsv32_error *err)
{
	if (!lc_taps_on(tp))
		return DSV32_OK;
	dsv32_router_params rp = lc_router_params(m, mode);
	lc_pool p = {.be = tp.be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *sc, *g = NULL;
	LC_POOL(sc, DSV32_F32, 3, B, S, logits->shape[1]);
	if (rp.n_groups > 1)
		LC_POOL(g, DSV32_F32, 3, B, S, rp.n_groups);
	LC_CK(dsv32_router_scores_groups(tp.be, sc, g, logits, bias, &rp, err));
	if (g)
		LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_GROUP_SCORES, layer, g, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_SCORES, layer, sc, err));
out:
	lc_pool_free(&p);
	return rc;
}
