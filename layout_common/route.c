/* route.c: the moe.scores tap both layouts emit (route.h). */
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
	dsv32_tensor *sc;
	LC_POOL(sc, DSV32_F32, 3, B, S, logits->shape[1]);
	LC_CK(dsv32_router_scores(tp.be, sc, logits, bias, &rp, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_SCORES, layer, sc, err));
out:
	lc_pool_free(&p);
	return rc;
}
