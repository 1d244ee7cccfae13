/* k3_util.h: test helpers for the k3 op tests (topk, router, indexer, attention): host tensors,
 * a deterministic rng, bf16 ulp distance, and the host/device copies of a GPU twin
 * (tc_cuda_backend_or_null in test_common.h makes the device backend). */
#ifndef K3_UTIL_H
#define K3_UTIL_H

#include "kernels/backend.h"
#include "tests/support/test_common.h"

/* xorshift64* in [0,1) and integer helpers; deterministic per seed. */
typedef struct { uint64_t s; } k3_rng;
double k3_uniform(k3_rng *r);
int k3_randint(k3_rng *r, int lo, int hi); /* inclusive */

/* Allocate a host tensor (aborts the test on failure via cmocka assert). */
dsv32_tensor k3_host(dsv32_dtype t, int ndim, const int64_t *shape);
/* Element access as double / store from double (with RNE to the narrow dtype). */
double k3_get(const dsv32_tensor *t, int64_t i);
void k3_set(dsv32_tensor *t, int64_t i, double v);
/* Distance in bf16 ulps between two bf16-representable floats (same sign ordering). */
int64_t k3_bf16_ulps(float a, float b);

/* CUDA twin: copy a host tensor to the device backend (*dev) and back. */
dsv32_tensor k3_to_dev(dsv32_backend *be, const dsv32_tensor *h);
void k3_from_dev(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *d);

#endif
