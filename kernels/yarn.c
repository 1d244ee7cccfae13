/* yarn.c: YaRN frequency tables and mscale² softmax scales (yarn.h), host code; tables are
 * uploaded to the backend's device. Every fp32 step is a separate C statement on floats
 * (ISO C11: no contraction), mirroring the torch expressions named in yarn.h. */
#include "kernels/yarn.h"

#include <math.h>
#include <stdlib.h>

void dsv32_yarn_params_from_config(dsv32_yarn_params *p, const dsv32_config *c)
{
	*p = (dsv32_yarn_params){
		.dim = (int)c->qk_rope_head_dim, .base = c->rope_theta, .factor = c->rope_factor,
		.original_seq_len = c->original_seq_len, .beta_fast = c->beta_fast,
		.beta_slow = c->beta_slow, .mscale = c->mscale, .mscale_all_dim = c->mscale_all_dim,
		.max_seq_len = c->max_seq_len, .truncate = true, .yarn = c->rope_yarn,
		.has_attention_factor = c->has_attention_factor,
		.attention_factor = c->attention_factor};
}

/* Python-double find_correction_dim. */
static double correction_dim(double rot, int dim, double base, double L0)
{
	return dim * log(L0 / (rot * 2.0 * M_PI)) / (2.0 * log(base));
}

/* low/high of find_correction_range; truncate as HF v5 (the reference always truncates). */
static void correction_range(const dsv32_yarn_params *p, bool truncate, double *low, double *high)
{
	double lo = correction_dim(p->beta_fast, p->dim, p->base, (double)p->original_seq_len);
	double hi = correction_dim(p->beta_slow, p->dim, p->base, (double)p->original_seq_len);
	if (truncate) {
		lo = floor(lo);
		hi = ceil(hi);
	}
	*low = lo < 0 ? 0 : lo;
	*high = hi > p->dim - 1 ? p->dim - 1 : hi;
}

/* torch: clamp((arange(n, fp32) - min) / (max - min), 0, 1); min/max Python numbers. */
static float ramp(int i, double lo, double hi)
{
	if (lo == hi)
		hi += 0.001;
	float v = ((float)i - (float)lo) / (float)(hi - lo);
	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* fp32(base ** (fp32(2i) / fp32(dim))), the power in double rounded to fp32. */
static float pos_freq(const dsv32_yarn_params *p, int i)
{
	float e = (float)(2 * i) / (float)p->dim;
	return (float)pow(p->base, (double)e);
}

void dsv32_yarn_ref_freqs(const dsv32_yarn_params *p, float *freqs)
{
	int half = p->dim / 2;
	for (int i = 0; i < half; i++)
		freqs[i] = 1.0f / pos_freq(p, i);
	if (p->max_seq_len <= p->original_seq_len)
		return;
	double lo, hi;
	correction_range(p, true, &lo, &hi);
	float factor = (float)p->factor;
	for (int i = 0; i < half; i++) {
		float smooth = 1.0f - ramp(i, lo, hi);
		float a = freqs[i] / factor;
		float one_minus = 1.0f - smooth;
		float t1 = a * one_minus;
		float t2 = freqs[i] * smooth;
		freqs[i] = t1 + t2;
	}
}

void dsv32_yarn_ref_table_host(const dsv32_yarn_params *p, float *tab)
{
	int half = p->dim / 2;
	float freqs[512];
	dsv32_yarn_ref_freqs(p, freqs);
	for (int64_t t = 0; t < p->max_seq_len; t++)
		for (int i = 0; i < half; i++) {
			float th = (float)t * freqs[i];
			tab[(t * half + i) * 2] = cosf(th);
			tab[(t * half + i) * 2 + 1] = sinf(th);
		}
}

static dsv32_status check_params(const dsv32_yarn_params *p, const char *op, dsv32_error *err)
{
	if (p->dim < 2 || p->dim % 2 || p->dim > 1024)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: rope dim %d, expected even in [2, 1024]", op,
				  p->dim);
	return DSV32_OK;
}

dsv32_status dsv32_yarn_ref_table(dsv32_backend *be, dsv32_tensor *out, const dsv32_yarn_params *p,
				  dsv32_error *err)
{
	DSV32_TRY(check_params(p, "yarn_ref_table", err));
	if (p->max_seq_len < 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "yarn_ref_table: max_seq_len %lld",
				  (long long)p->max_seq_len);
	int64_t shape[3] = {p->max_seq_len, p->dim / 2, 2};
	size_t n = (size_t)p->max_seq_len * (size_t)p->dim;
	float *tab = malloc(n * sizeof *tab);
	if (!tab)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "yarn_ref_table: %zu floats", n);
	dsv32_yarn_ref_table_host(p, tab);
	dsv32_status rc = dsv32_backend_alloc(be, out, DSV32_F32, 3, shape, err);
	if (rc == DSV32_OK) {
		rc = dsv32_backend_upload(be, out->data, tab, n * sizeof *tab, err);
		if (rc != DSV32_OK)
			dsv32_backend_free(be, out);
	}
	free(tab);
	return rc;
}

static double get_mscale(double s, double m)
{
	return s <= 1.0 ? 1.0 : 0.1 * m * log(s) + 1.0;
}

double dsv32_softmax_scale_ref(int64_t qk_head_dim, const dsv32_yarn_params *p)
{
	double s = pow((double)qk_head_dim, -0.5);
	if (p->max_seq_len > p->original_seq_len) {
		double m = 0.1 * p->mscale * log(p->factor) + 1.0;
		s = s * m * m;
	}
	return s;
}

void dsv32_yarn_hf_inv_freq(const dsv32_yarn_params *p, float *inv_freq, double *attention_factor)
{
	int half = p->dim / 2;
	double lo, hi;
	correction_range(p, p->truncate, &lo, &hi);
	float factor = (float)p->factor;
	for (int i = 0; i < half; i++) {
		float pos = pos_freq(p, i);
		float f_extra = 1.0f / pos;
		float fp = factor * pos;
		float f_inter = 1.0f / fp;
		float ext = 1.0f - ramp(i, lo, hi);
		float one_minus = 1.0f - ext;
		float t1 = f_inter * one_minus;
		float t2 = f_extra * ext;
		inv_freq[i] = t1 + t2;
	}
	if (attention_factor) {
		if (p->has_attention_factor)
			*attention_factor = p->attention_factor;
		else if (p->mscale != 0.0 && p->mscale_all_dim != 0.0)
			*attention_factor = get_mscale(p->factor, p->mscale) /
					    get_mscale(p->factor, p->mscale_all_dim);
		else
			*attention_factor = get_mscale(p->factor, 1.0);
	}
}

dsv32_status dsv32_yarn_hf_cos_sin(dsv32_backend *be, dsv32_tensor *cos, dsv32_tensor *sin,
				   const float *inv_freq, double attention_factor,
				   const int64_t *positions, int64_t B, int64_t S, dsv32_error *err)
{
	const char *op = "yarn_hf_cos_sin";
	DSV32_TRY(dsv32_ew_check_act(be, cos, op, "cos", err));
	DSV32_TRY(dsv32_ew_check_act(be, sin, op, "sin", err));
	int64_t dim = dsv32_ew_last_dim(cos);
	if (dsv32_tensor_numel(cos) != B * S * dim || !dsv32_tensor_same_shape(cos, sin) ||
	    dim % 2 || dim < 2)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: cos/sin must both be [%lld, %lld, dim] with "
				  "an even dim", op, (long long)B, (long long)S);
	size_t n = (size_t)(B * S * dim), es_c = dsv32_dtype_size(cos->dtype),
	       es_s = dsv32_dtype_size(sin->dtype);
	/* on the CPU the tables are written in place; a device gets them from host staging */
	bool staged = be->device != DSV32_DEV_CPU;
	char *hc = staged ? dsv32_backend_host_get(be, n * es_c) : cos->data;
	char *hs = staged ? dsv32_backend_host_get(be, n * es_s) : sin->data;
	if (staged && (!hc || !hs)) {
		dsv32_backend_host_put(be, hc, n * es_c);
		dsv32_backend_host_put(be, hs, n * es_s);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %zu elements", op, n);
	}
	int64_t half = dim / 2;
	float af = (float)attention_factor;
	for (int64_t r = 0; r < B * S; r++)
		for (int64_t j = 0; j < dim; j++) {
			float th = (float)positions[r] * inv_freq[j % half];
			float c = cosf(th), s = sinf(th);
			float cv = c * af, sv = s * af;
			dsv32_act_store(hc, cos->dtype, r * dim + j, cv);
			dsv32_act_store(hs, sin->dtype, r * dim + j, sv);
		}
	if (!staged)
		return DSV32_OK;
	dsv32_status rc = dsv32_backend_upload(be, cos->data, hc, n * es_c, err);
	if (rc == DSV32_OK)
		rc = dsv32_backend_upload(be, sin->data, hs, n * es_s, err);
	dsv32_backend_host_put(be, hc, n * es_c);
	dsv32_backend_host_put(be, hs, n * es_s);
	return rc;
}

double dsv32_softmax_scale_hf(int64_t qk_head_dim, const dsv32_yarn_params *p)
{
	double s = pow((double)qk_head_dim, -0.5);
	if (p->yarn && p->mscale_all_dim != 0.0) {
		double m = get_mscale(p->factor, p->mscale_all_dim);
		s = s * m * m;
	}
	return s;
}
