/* tap_emit.c: the tap emitter of both layouts (tap_emit.h): device -> host copy, the fp8 rule,
 * the sink call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout_common/tap_emit.h"

bool lc_taps_on(lc_tapper tp)
{
	return tp.sink && tp.sink->on_tap != NULL;
}

/* h: a host tensor; emitted as it is, or (fp8 codes) as their F32 values. */
static dsv32_status emit_host(lc_tapper tp, const char *name, const dsv32_tensor *h,
			      dsv32_error *err)
{
	if (h->dtype != DSV32_F8_E4M3)
		return tp.sink->on_tap(tp.sink->user, name, h, err);
	dsv32_tensor f;
	DSV32_TRY(dsv32_tensor_alloc(&f, DSV32_F32, h->ndim, h->shape, err));
	dsv32_convert(f.data, DSV32_F32, h->data, DSV32_F8_E4M3, (size_t)dsv32_tensor_numel(h));
	dsv32_status rc = tp.sink->on_tap(tp.sink->user, name, &f, err);
	dsv32_tensor_free(&f);
	return rc;
}

static dsv32_status emit(lc_tapper tp, const char *name, const dsv32_tensor *t, dsv32_error *err)
{
	dsv32_tensor v = dsv32_tensor_view(t->data, t->dtype, t->ndim, t->shape);
	if (t->device == DSV32_DEV_CPU)
		return emit_host(tp, name, &v, err);
	dsv32_tensor h;
	DSV32_TRY(dsv32_tensor_alloc(&h, t->dtype, t->ndim, t->shape, err));
	dsv32_status rc = dsv32_backend_download(tp.be, h.data, t->data, dsv32_tensor_nbytes(t), err);
	if (rc == DSV32_OK)
		rc = emit_host(tp, name, &h, err);
	dsv32_tensor_free(&h);
	return rc;
}

dsv32_status lc_tap_model(lc_tapper tp, dsv32_model_tap id, const dsv32_tensor *t,
			  dsv32_error *err)
{
	if (!lc_taps_on(tp))
		return DSV32_OK;
	return emit(tp, dsv32_model_tap_name(id), t, err);
}

dsv32_status lc_tap_layer(lc_tapper tp, dsv32_layer_tap id, int layer, const dsv32_tensor *t,
			  dsv32_error *err)
{
	if (!lc_taps_on(tp))
		return DSV32_OK;
	char name[96];
	return emit(tp, dsv32_layer_tap_name(name, sizeof name, layer, id), t, err);
}

dsv32_status lc_tap_layer_cache(lc_tapper tp, dsv32_layer_tap id, int layer,
				const dsv32_tensor *cache, int64_t B, int64_t S, int64_t P,
				dsv32_error *err)
{
	if (!lc_taps_on(tp))
		return DSV32_OK;
	char name[96];
	dsv32_layer_tap_name(name, sizeof name, layer, id);
	int64_t maxS = cache->shape[1], d = cache->shape[2];
	size_t es = dsv32_dtype_size(cache->dtype), row = (size_t)(S * d) * es;
	int64_t shape[3] = {B, S, d};
	dsv32_tensor h;
	DSV32_TRY(dsv32_tensor_alloc(&h, cache->dtype, 3, shape, err));
	dsv32_status rc = DSV32_OK;
	for (int64_t b = 0; b < B && rc == DSV32_OK; b++) /* the rows are apart in the cache */
		rc = dsv32_backend_download(tp.be, (char *)h.data + (size_t)b * row,
					    (const char *)cache->data + (size_t)((b * maxS + P) * d) * es,
					    row, err);
	if (rc == DSV32_OK)
		rc = emit_host(tp, name, &h, err);
	dsv32_tensor_free(&h);
	return rc;
}

/* Check a forced selection h (I64, rows of k): ids in range, none twice in a row. */
static dsv32_status check_forced(const char *name, const dsv32_tensor *h, int64_t n_ids,
				 dsv32_error *err)
{
	int64_t k = h->ndim ? h->shape[h->ndim - 1] : 0, rows = k ? dsv32_tensor_numel(h) / k : 0;
	const int64_t *id = h->data;
	unsigned char *seen = calloc((size_t)n_ids + 1, 1);
	if (!seen)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: checking a forced selection", name);
	dsv32_status rc = DSV32_OK;
	for (int64_t r = 0; r < rows && rc == DSV32_OK; r++) {
		const int64_t *row = id + r * k;
		for (int64_t j = 0; j < k && rc == DSV32_OK; j++) {
			if (row[j] < 0 || row[j] >= n_ids)
				rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: forced row %lld picks id %lld, "
						"expected 0..%lld", name, (long long)r,
						(long long)row[j], (long long)(n_ids - 1));
			else if (seen[row[j]])
				rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: forced row %lld picks id %lld "
						"twice", name, (long long)r, (long long)row[j]);
			else
				seen[row[j]] = 1;
		}
		for (int64_t j = 0; j < k; j++) /* clear this row's marks */
			if (row[j] >= 0 && row[j] < n_ids)
				seen[row[j]] = 0;
	}
	free(seen);
	return rc;
}

dsv32_status lc_tap_decide(lc_tapper tp, const dsv32_decision_sink *d, dsv32_layer_tap id,
			   int layer, dsv32_tensor *sel, int64_t n_ids, bool *forced,
			   dsv32_error *err)
{
	*forced = false;
	if (!d || !d->on_decision)
		return DSV32_OK;
	char name[96];
	dsv32_layer_tap_name(name, sizeof name, layer, id);
	if (sel->dtype != DSV32_I64)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: selection is %s, expected I64", name,
				  dsv32_dtype_name(sel->dtype));
	dsv32_tensor h;
	DSV32_TRY(dsv32_tensor_alloc(&h, DSV32_I64, sel->ndim, sel->shape, err));
	size_t nb = dsv32_tensor_nbytes(sel);
	dsv32_status rc = DSV32_OK;
	if (sel->device == DSV32_DEV_CPU)
		memcpy(h.data, sel->data, nb);
	else
		rc = dsv32_backend_download(tp.be, h.data, sel->data, nb, err);
	dsv32_tensor given = h; /* what the sink may not change: dtype, shape, storage */
	if (rc == DSV32_OK)
		rc = d->on_decision(d->user, name, &h, forced, err);
	if (rc == DSV32_OK && *forced) {
		bool same = h.dtype == given.dtype && h.ndim == given.ndim && h.data == given.data;
		for (int i = 0; same && i < h.ndim; i++)
			same = h.shape[i] == given.shape[i];
		if (!same)
			rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: a forced selection must keep the "
					"tensor's dtype, shape and storage", name);
		if (rc == DSV32_OK)
			rc = check_forced(name, &h, n_ids, err);
		if (rc == DSV32_OK && sel->device == DSV32_DEV_CPU)
			memcpy(sel->data, h.data, nb);
		else if (rc == DSV32_OK)
			rc = dsv32_backend_upload(tp.be, sel->data, h.data, nb, err);
	}
	if (rc != DSV32_OK)
		*forced = false;
	h = given; /* free what was allocated, whatever the sink did to the struct */
	dsv32_tensor_free(&h);
	return rc;
}
