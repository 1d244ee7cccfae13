/* tensor.h: a dense, contiguous, row-major tensor of up to 6 dimensions, owned or borrowed.
 *
 * Owned tensors free their storage in dsv32_tensor_free; borrowed ones (views into an mmap'd
 * safetensors file or another tensor) never do. `device` says where `data` lives: host memory
 * (DSV32_DEV_CPU) or CUDA device memory (DSV32_DEV_CUDA, allocated by kernels/backend).
 */
#ifndef DSV32_TENSOR_H
#define DSV32_TENSOR_H

#include "core/dtype.h"
#include "core/error.h"

#define DSV32_MAX_DIMS 6

typedef enum { DSV32_DEV_CPU = 0, DSV32_DEV_CUDA, DSV32_DEVICE_COUNT } dsv32_device;

typedef struct {
	dsv32_dtype dtype;
	int ndim;
	int64_t shape[DSV32_MAX_DIMS];
	void *data;
	bool owned;
	dsv32_device device;
	/* Owned host storage taken from a backend's block cache (kernels/backend.h): the block's
	 * bytes, which dsv32_backend_free hands back; 0 for storage of exactly nbytes (plain
	 * dsv32_tensor_alloc, device memory). Either kind may be freed by dsv32_tensor_free. */
	size_t cap;
} dsv32_tensor;

/* Number of elements; 1 for ndim == 0. Returns -1 if the product overflows int64. */
int64_t dsv32_shape_numel(int ndim, const int64_t *shape);
int64_t dsv32_tensor_numel(const dsv32_tensor *t);
size_t dsv32_tensor_nbytes(const dsv32_tensor *t);

/* The bytes of a tensor of that shape: DSV32_E_SHAPE for a bad rank or a size that overflows. */
dsv32_status dsv32_shape_bytes(size_t *bytes, dsv32_dtype dtype, int ndim, const int64_t *shape,
			       dsv32_error *err);
/* Allocate an owned, zero-filled host tensor. DSV32_E_SHAPE for a bad shape, _NOMEM. */
dsv32_status dsv32_tensor_alloc(dsv32_tensor *t, dsv32_dtype dtype, int ndim, const int64_t *shape,
				dsv32_error *err);
/* A borrowed view of data with the given dtype and shape (nothing is copied). */
dsv32_tensor dsv32_tensor_view(void *data, dsv32_dtype dtype, int ndim, const int64_t *shape);
/* Free an owned host tensor (device tensors are freed through the backend); reset to empty. */
void dsv32_tensor_free(dsv32_tensor *t);

/* Index of the largest of n floats, the lowest index on ties (greedy decoding's choice). */
int64_t dsv32_argmax_f32(const float *v, int64_t n);

bool dsv32_tensor_same_shape(const dsv32_tensor *a, const dsv32_tensor *b);
/* Format "[a, b, c]" into buf (always NUL-terminated); returns buf. */
char *dsv32_shape_str(char *buf, size_t len, int ndim, const int64_t *shape);

#endif
