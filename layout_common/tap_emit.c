/* tap_emit.c: the tap emitter of both layouts (tap_emit.h): device -> host copy, the fp8 rule,
 * the sink call. */
#include <stdint.h>
#include <stdlib.h>

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
