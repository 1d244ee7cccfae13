/* router_impl.h: the internals of router.h, shared by its dispatcher and its CPU/CUDA bodies:
 * the CPU/CUDA body declarations (arguments checked; the per-row math is public in router.h,
 * where its precision contract lives).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/router.h.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_ROUTER_IMPL_H
#define DSV32_ROUTER_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/router.h"

dsv32_status dsv32_router_cpu(float *w, void *idx, dsv32_dtype idx_t, const float *logits,
			      const float *bias, int64_t T, int E, const dsv32_router_params *p,
			      dsv32_error *err);
dsv32_status dsv32_router_cuda(dsv32_backend *be, float *w, void *idx, dsv32_dtype idx_t,
			       const float *logits, const float *bias, int64_t T, int E,
			       const dsv32_router_params *p, dsv32_error *err);
dsv32_status dsv32_router_weights_at_cpu(float *w, const int64_t *idx, const float *logits,
					 const float *bias, int64_t T, int E,
					 const dsv32_router_params *p, dsv32_error *err);
dsv32_status dsv32_router_weights_at_cuda(dsv32_backend *be, float *w, const int64_t *idx,
					  const float *logits, const float *bias, int64_t T, int E,
					  const dsv32_router_params *p, dsv32_error *err);
/* groups: NULL, or [T, n_groups] for the group scores (router.h dsv32_router_scores_groups) */
dsv32_status dsv32_router_scores_cpu(float *scores, float *groups, const float *logits,
				     const float *bias, int64_t T, int E,
				     const dsv32_router_params *p, dsv32_error *err);
dsv32_status dsv32_router_scores_cuda(dsv32_backend *be, float *scores, float *groups,
				      const float *logits, const float *bias, int64_t T, int E,
				      const dsv32_router_params *p, dsv32_error *err);

#endif
