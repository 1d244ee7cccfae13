/* silu.c: argument checks and dispatch for the SiLU-gated products (silu.h). */
#include "kernels/silu_impl.h"

static dsv32_status silu_mul(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
			     const dsv32_tensor *b, bool hf, dsv32_error *err)
{
	const char *op = hf ? "silu_mul_hf" : "silu_mul_ref";
	DSV32_TRY(dsv32_ew_check_act(be, h, op, "h", err));
	DSV32_TRY(dsv32_ew_check_act(be, a, op, "a", err));
	DSV32_TRY(dsv32_ew_check_act(be, b, op, "b", err));
	DSV32_TRY(dsv32_ew_check_same_shape(a, h, op, "a", "h", err));
	DSV32_TRY(dsv32_ew_check_same_shape(b, h, op, "b", "h", err));
	if (dsv32_ew_overlap(h, a) && !(h->data == a->data && h->dtype == a->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: h partially overlaps a", op);
	if (dsv32_ew_overlap(h, b) && !(h->data == b->data && h->dtype == b->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: h partially overlaps b", op);
	int64_t n = dsv32_tensor_numel(h);
	if (n == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_silu_mul_cpu(h->data, h->dtype, a->data, a->dtype, b->data, b->dtype, n, hf);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_silu_mul_cuda(be, h->data, h->dtype, a->data, a->dtype,
						   b->data, b->dtype, n, hf, err));
}

dsv32_status dsv32_silu_mul_ref(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				const dsv32_tensor *b, dsv32_error *err)
{
	return silu_mul(be, h, a, b, false, err);
}

dsv32_status dsv32_silu_mul_hf(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
			       const dsv32_tensor *b, dsv32_error *err)
{
	return silu_mul(be, h, a, b, true, err);
}
