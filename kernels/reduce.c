/* reduce.c: the lane-count setting of the torch-order reductions (reduce.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels/reduce.h"

/* The backend's setting wins; the environment (DSV32_TORCH_LANES / DSV32_TORCH_MAJOR) only
 * fills in where the backend says 0, for experiments with the op tests. */
int dsv32_torch_lanes(const dsv32_backend *be)
{
	if (be && (be->torch_lanes == 8 || be->torch_lanes == 16))
		return be->torch_lanes;
	const char *e = getenv("DSV32_TORCH_LANES");
	if (e && strcmp(e, "8") == 0)
		return 8;
	if (e && strcmp(e, "16") == 0)
		return 16;
	return DSV32_TORCH_LANES_DEFAULT;
}

int dsv32_torch_major(const dsv32_backend *be)
{
	if (be && (be->torch_major == 1 || be->torch_major == 2))
		return be->torch_major;
	const char *e = getenv("DSV32_TORCH_MAJOR");
	if (e && strcmp(e, "2") == 0)
		return 2;
	return 1;
}
