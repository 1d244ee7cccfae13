/* route.h: the router parameters a layout routes with, in one place for both layouts and every
 * call (the selection, the forced weights, the moe.scores tap). */
#ifndef DSV32_LC_ROUTE_H
#define DSV32_LC_ROUTE_H

#include "core/model.h"
#include "kernels/router.h"
#include "kernels/topk_torch.h"

/* dsv32_router_params_of(mode) with the model's tie rule (dsv32_model_opts.ties): torch-cpu
 * picks groups and experts as torch.topk(sorted=False) on a CPU (docs/topk-ties.md). */
static inline dsv32_router_params lc_router_params(const dsv32_model *m, dsv32_router_mode mode)
{
	dsv32_router_params rp = dsv32_router_params_of(&m->cfg, mode);
	rp.torch_cpu_ties = m->opts.ties == DSV32_TIES_TORCH_CPU;
	return rp;
}

#endif
