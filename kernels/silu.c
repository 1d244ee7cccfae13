/* silu.c: argument checks and dispatch for the SiLU-gated products (silu.h). */
#include "kernels/silu_impl.h"

static dsv32_status silu_mul(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
			     const dsv32_tensor *b, bool hf, const dsv32_exp_opts *xo,
			     dsv32_error *err)
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
	bool torch = xo && xo->rule == DSV32_EXP_TORCH_CPU;
	if (xo && (unsigned)xo->rule >= DSV32_EXP_RULE_COUNT)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: exp rule %d", op, (int)xo->rule);
	if (torch && be->device != DSV32_DEV_CPU)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "%s: exp=torch-cpu runs on the CPU only "
				  "(torch on CUDA uses CUDA's expf: exp=libm)", op);
	if (torch && (xo->threads < 1 || xo->inner < 0 || (xo->inner > 0 && n % xo->inner) ||
		      (unsigned)xo->cap >= DSV32_TORCH_CAP_COUNT))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: exp=torch-cpu with %d threads, inner %lld "
				  "(n %lld), capability %d", op, xo->threads, (long long)xo->inner,
				  (long long)n, (int)xo->cap);
	if (torch && hf && a->dtype != h->dtype)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: exp=torch-cpu: a is %s, h %s (F.silu "
				  "returns a's dtype; expected one act dtype)", op,
				  dsv32_dtype_name(a->dtype), dsv32_dtype_name(h->dtype));
	if (n == 0)
		return DSV32_OK;
	if (torch)
		return dsv32_silu_mul_cpu_torch(h->data, h->dtype, a->data, a->dtype, b->data,
						b->dtype, n, hf, xo, err);
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
	return silu_mul(be, h, a, b, false, NULL, err);
}

dsv32_status dsv32_silu_mul_hf(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
			       const dsv32_tensor *b, dsv32_error *err)
{
	return silu_mul(be, h, a, b, true, NULL, err);
}

dsv32_status dsv32_silu_mul_ref_rule(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				     const dsv32_tensor *b, const dsv32_exp_opts *xo,
				     dsv32_error *err)
{
	return silu_mul(be, h, a, b, false, xo, err);
}

dsv32_status dsv32_silu_mul_hf_rule(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				    const dsv32_tensor *b, const dsv32_exp_opts *xo,
				    dsv32_error *err)
{
	return silu_mul(be, h, a, b, true, xo, err);
}
