/* test_hooks.h: the test-only switches an op reads through be->test_hooks (planted bugs, so the
 * tests can check that the harness finds them). Every real run leaves be->test_hooks NULL, so a
 * production backend carries no switch at all; a test points it at a struct that lives as long
 * as the backend uses it.
 *
 * The DSV32_TEST_FLAG_* values are the bit numbers of dsv32_plant.flags (core/model.h, reached
 * through dsv32_model_opts.plant):
 * a model turns bit i on in the hooks of the layer it plants the bug in (ref/model.c).
 */
#ifndef DSV32_TEST_HOOKS_H
#define DSV32_TEST_HOOKS_H

#include <stdbool.h>

typedef struct dsv32_test_hooks {
	/* rmsnorm (reference modes): round r · inv to bf16 before the weight multiply
	 * (kernels/rmsnorm.h "Planted bug"). */
	bool rmsnorm_no_final_round;
} dsv32_test_hooks;

/* Bit numbers of dsv32_plant.flags, one per field above. */
enum { DSV32_TEST_FLAG_RMSNORM_NO_FINAL_ROUND = 0 };

#endif
