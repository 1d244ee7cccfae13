/* gpu_twin.h: the device side of a GPU twin test (a CUDA body run on the same inputs as its
 * CPU twin, results compared by the op's contract): the second backend, host<->device copies,
 * a bit-exact comparison that names the first differing elements. Tests only.
 *
 * Dry run (a scratch build, never the committed configuration): compiled with
 * -DDSV32_GPU_TWIN_DRY_RUN=1, gt_dev_backend_or_null() hands out a CPU backend as "the device",
 * so every twin's harness logic runs without a GPU (both sides then agree bit for bit); with
 * $DSV32_GPU_TWIN_PERTURB=N also set, the N-th gt_from_dev() of the process (from 0) comes back
 * with one element changed (the middle one), and the comparison after it must fail. */
#ifndef DSV32_TESTS_GPU_TWIN_H
#define DSV32_TESTS_GPU_TWIN_H

#include "kernels/backend.h"

/* tc_cuda_backend_or_null() (NULL -> the caller skip()s; under $DSV32_REQUIRE_GPU=1 it fails
 * the test instead); in a dry-run build a new CPU backend. Destroy with dsv32_backend_destroy. */
dsv32_backend *gt_dev_backend_or_null(void);

/* A device copy of a host tensor (fails the test on error); free with gt_free. */
dsv32_tensor gt_to_dev(dsv32_backend *dev, const dsv32_tensor *h);
/* A new host copy of a device tensor, after a sync (fails the test on error). */
dsv32_tensor gt_from_dev(dsv32_backend *dev, const dsv32_tensor *d);
/* Free a tensor made by gt_to_dev on dev (NULL data is fine). */
void gt_free(dsv32_backend *dev, dsv32_tensor *d);

/* got and want: same dtype and numel, every element's bytes equal (so +0 != -0 and NaN
 * payloads count). Otherwise prints up to 8 differing elements (index, both values, both bit
 * patterns) and fails the test naming `what`. */
void gt_assert_bits_equal(const char *what, const dsv32_tensor *got, const dsv32_tensor *want);

#endif
