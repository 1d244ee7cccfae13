/* hf_ops_tmp.c: TEMPORARY MoE combine ops of the HF layout (contracts in hf_internal.h).
 * TODO: kernels/ has no op for the weighted expert combine (a scatter of y·w into per-slot
 * rows, the slot sum, the eager bf16 index_add_); move these there with CPU and CUDA bodies.
 * Until then they run on the host; device tensors are copied down and back up. */
#include <stdlib.h>
#include <string.h>

#include "hf_layout/hf_internal.h"

/* Host view of a tensor: the data itself on the CPU backend, else a downloaded copy. */
static dsv32_status host_get(dsv32_backend *be, const dsv32_tensor *t, void **out, dsv32_error *err)
{
	if (t->device == DSV32_DEV_CPU) {
		*out = t->data;
		return DSV32_OK;
	}
	size_t nb = dsv32_tensor_nbytes(t);
	*out = malloc(nb ? nb : 1);
	if (!*out)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "hf moe combine: %zu bytes", nb);
	dsv32_status rc = dsv32_backend_download(be, *out, t->data, nb, err);
	if (rc != DSV32_OK) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static dsv32_status host_put(dsv32_backend *be, dsv32_tensor *t, void *h, bool write,
			     dsv32_error *err)
{
	if (t->device == DSV32_DEV_CPU)
		return DSV32_OK;
	dsv32_status rc = write ? dsv32_backend_upload(be, t->data, h, dsv32_tensor_nbytes(t), err)
				: DSV32_OK;
	free(h);
	return rc;
}

static float ld(const void *p, dsv32_dtype dt, int64_t i)
{
	return dt == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)p)[i]) : ((const float *)p)[i];
}

static void st(void *p, dsv32_dtype dt, int64_t i, float v)
{
	if (dt == DSV32_BF16)
		((dsv32_bf16 *)p)[i] = dsv32_f32_to_bf16(v);
	else
		((float *)p)[i] = v;
}

static float rnd(dsv32_dtype dt, float v)
{
	return dt == DSV32_BF16 ? dsv32_round_bf16(v) : v;
}

dsv32_status hf_moe_accumulate_tmp(dsv32_backend *be, dsv32_tensor *acc, const dsv32_tensor *y,
				   const int64_t *dst, const float *w, int64_t n, bool eager,
				   dsv32_error *err)
{
	int64_t D = y->shape[1], rows = acc->shape[0];
	if (acc->shape[1] != D || (y->dtype != DSV32_BF16 && y->dtype != DSV32_F32) ||
	    (acc->dtype != DSV32_BF16 && acc->dtype != DSV32_F32) ||
	    (!eager && acc->dtype != DSV32_F32))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "hf moe combine: acc %s [%lld, %lld], y [., %lld]",
				  dsv32_dtype_name(acc->dtype), (long long)rows,
				  (long long)acc->shape[1], (long long)D);
	void *ha = NULL, *hy = NULL;
	DSV32_TRY(host_get(be, acc, &ha, err));
	dsv32_status rc = host_get(be, y, &hy, err);
	if (rc != DSV32_OK) {
		host_put(be, acc, ha, false, err);
		return rc;
	}
	for (int64_t r = 0; r < n; r++) {
		if (dst[r] < 0 || dst[r] >= rows) {
			rc = DSV32_FAIL(err, DSV32_E_INTERNAL, "hf moe combine: row %lld outside [0, %lld)",
					(long long)dst[r], (long long)rows);
			break;
		}
		for (int64_t d = 0; d < D; d++) {
			float p = ld(hy, y->dtype, r * D + d) * w[r]; /* fp32 product */
			int64_t o = dst[r] * D + d;
			if (eager)
				st(ha, acc->dtype, o, ld(ha, acc->dtype, o) + rnd(acc->dtype, p));
			else
				st(ha, acc->dtype, o, p);
		}
	}
	host_put(be, (dsv32_tensor *)y, hy, false, err);
	dsv32_status rc2 = host_put(be, acc, ha, rc == DSV32_OK, err);
	return rc != DSV32_OK ? rc : rc2;
}

dsv32_status hf_moe_slot_sum_tmp(dsv32_backend *be, dsv32_tensor *out, const dsv32_tensor *slots,
				 int64_t K, dsv32_error *err)
{
	int64_t N = out->shape[0], D = out->shape[1];
	if (slots->dtype != DSV32_F32 || slots->shape[0] != N * K || slots->shape[1] != D)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "hf moe slot sum: slots must be F32 [%lld, %lld]",
				  (long long)(N * K), (long long)D);
	void *ho = NULL, *hs = NULL;
	DSV32_TRY(host_get(be, out, &ho, err));
	dsv32_status rc = host_get(be, slots, &hs, err);
	if (rc != DSV32_OK) {
		host_put(be, out, ho, false, err);
		return rc;
	}
	const float *p = hs;
	for (int64_t t = 0; t < N; t++)
		for (int64_t d = 0; d < D; d++) {
			float s = p[(t * K) * D + d];
			for (int64_t k = 1; k < K; k++)
				s = s + p[(t * K + k) * D + d];
			st(ho, out->dtype, t * D + d, s);
		}
	host_put(be, (dsv32_tensor *)slots, hs, false, err);
	return host_put(be, out, ho, true, err);
}
