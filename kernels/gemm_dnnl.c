/* gemm_dnnl.c: the oneDNN matmul body for bf16 x bf16 GEMMs (gemm.h), with a process-wide
 * cache of primitives keyed by shape, strides and output dtype.
 *
 * oneDNN is probed once: if it has no bf16 matmul on this CPU (dnnl_unimplemented, e.g. an
 * AVX2-only CPU), every call answers *done = false and gemm_cpu.c takes its own body.
 * One mutex guards the engine, the cache and execution (models call GEMMs from one thread;
 * oneDNN itself parallelises each call with OpenMP). Primitives live until process exit.
 */
#include "kernels/gemm_impl.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CACHE_SIZE 128

typedef struct {
	int64_t key[13];
	dnnl_primitive_t prim;
} cache_entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0 = not probed, 1 = usable, -1 = no bf16 matmul here */
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static char g_impl[160] = "not probed";
static cache_entry g_cache[CACHE_SIZE];
static int g_next; /* round-robin replacement */

static void make_key(const dsv32_gemm_desc *d, int64_t key[13])
{
	int64_t k[13] = {d->batch, d->M, d->N, d->K, d->trans_w, d->y_dtype, d->ldx,
			 d->ldw, d->ldy, d->stride_x, d->stride_w, d->stride_y, 0};
	if (d->batch == 1)
		k[9] = k[10] = k[11] = 0;
	memcpy(key, k, sizeof k);
}

/* Build the matmul primitive for d; *unimpl says whether oneDNN lacks the kernel. */
static dnnl_status_t create_prim(const dsv32_gemm_desc *d, dnnl_primitive_t *out,
				 const char **impl)
{
	dnnl_memory_desc_t src, wei, dst;
	int64_t B = d->batch, M = d->M, N = d->N, K = d->K;
	dnnl_dims_t ds = {B, M, K}, dw = {B, K, N}, dd = {B, M, N};
	dnnl_dims_t ss = {B == 1 ? M * d->ldx : d->stride_x, d->ldx, 1};
	dnnl_dims_t sw = {B == 1 ? K * d->ldw : d->stride_w, d->trans_w ? 1 : d->ldw,
			  d->trans_w ? d->ldw : 1};
	dnnl_dims_t sd = {B == 1 ? M * d->ldy : d->stride_y, d->ldy, 1};
	dnnl_data_type_t yt = d->y_dtype == DSV32_F32 ? dnnl_f32 : dnnl_bf16;
	dnnl_status_t st = dnnl_memory_desc_init_by_strides(&src, 3, ds, dnnl_bf16, ss);
	if (st == dnnl_success)
		st = dnnl_memory_desc_init_by_strides(&wei, 3, dw, dnnl_bf16, sw);
	if (st == dnnl_success)
		st = dnnl_memory_desc_init_by_strides(&dst, 3, dd, yt, sd);
	dnnl_matmul_desc_t md;
	if (st == dnnl_success)
		st = dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst);
	dnnl_primitive_desc_t pd = NULL;
	if (st == dnnl_success)
		st = dnnl_primitive_desc_create(&pd, &md, NULL, g_engine, NULL);
	if (st != dnnl_success)
		return st;
	const char *name = NULL;
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
	    impl)
		*impl = name;
	if (name && strncmp(name, "ref", 3) == 0) {
		/* a reference loop: far slower than widened sgemm, so treat as absent */
		dnnl_primitive_desc_destroy(pd);
		return dnnl_unimplemented;
	}
	st = dnnl_primitive_create(out, pd);
	dnnl_primitive_desc_destroy(pd);
	return st;
}

/* Called with g_lock held. */
static void probe(void)
{
	if (g_state != 0)
		return;
	g_state = -1;
	if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) {
		snprintf(g_impl, sizeof g_impl, "%s (no oneDNN CPU engine)",
			 dsv32_gemm_cpu_fallback_name());
		return;
	}
	if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
		snprintf(g_impl, sizeof g_impl, "%s (no oneDNN stream)",
			 dsv32_gemm_cpu_fallback_name());
		return;
	}
	dsv32_gemm_desc t = {.batch = 1, .M = 64, .N = 64, .K = 64, .trans_w = true,
			     .x_dtype = DSV32_BF16, .w_dtype = DSV32_BF16, .y_dtype = DSV32_BF16,
			     .ldx = 64, .ldw = 64, .ldy = 64};
	dnnl_primitive_t p = NULL;
	const char *impl = NULL;
	dnnl_status_t st = create_prim(&t, &p, &impl);
	if (st != dnnl_success) {
		snprintf(g_impl, sizeof g_impl, "%s (oneDNN has no bf16 matmul here: status %d%s%s)",
			 dsv32_gemm_cpu_fallback_name(), (int)st, impl ? ", " : "",
			 impl ? impl : "");
		return;
	}
	dnnl_primitive_destroy(p);
	snprintf(g_impl, sizeof g_impl, "onednn:%s", impl ? impl : "?");
	g_state = 1;
}

const char *dsv32_gemm_bf16_impl(void)
{
	if (dsv32_gemm_dpbf16_usable())
		return dsv32_gemm_dpbf16_row_lanes() ? "dsv32:dpbf16-seq-row16" : "dsv32:dpbf16-seq";
	pthread_mutex_lock(&g_lock);
	probe();
	pthread_mutex_unlock(&g_lock);
	return g_impl;
}

static dsv32_status run_locked(const dsv32_gemm_desc *d, bool *done, dsv32_error *err)
{
	int64_t key[13];
	make_key(d, key);
	dnnl_primitive_t prim = NULL;
	for (int i = 0; i < CACHE_SIZE && g_cache[i].prim; i++)
		if (memcmp(g_cache[i].key, key, sizeof key) == 0)
			prim = g_cache[i].prim;
	if (!prim) {
		dnnl_status_t st = create_prim(d, &prim, NULL);
		if (st == dnnl_unimplemented)
			return DSV32_OK; /* *done stays false: the sgemm path runs */
		if (st != dnnl_success)
			return DSV32_FAIL_SYS(err, DSV32_E_INTERNAL, (int)st,
					      "oneDNN matmul M %lld N %lld K %lld: status %d",
					      (long long)d->M, (long long)d->N, (long long)d->K,
					      (int)st);
		cache_entry *e = &g_cache[g_next];
		if (e->prim)
			dnnl_primitive_destroy(e->prim);
		memcpy(e->key, key, sizeof key);
		e->prim = prim;
		g_next = (g_next + 1) % CACHE_SIZE;
	}
	const_dnnl_primitive_desc_t pd;
	dnnl_primitive_get_primitive_desc(prim, &pd);
	const dnnl_memory_desc_t *mds = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
	const dnnl_memory_desc_t *mdw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	const dnnl_memory_desc_t *mdd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	dnnl_memory_t ms = NULL, mw = NULL, md = NULL;
	dnnl_status_t st = dnnl_memory_create(&ms, mds, g_engine, (void *)d->x);
	if (st == dnnl_success)
		st = dnnl_memory_create(&mw, mdw, g_engine, (void *)d->w);
	if (st == dnnl_success)
		st = dnnl_memory_create(&md, mdd, g_engine, d->y);
	if (st == dnnl_success) {
		dnnl_exec_arg_t args[3] = {
			{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
		st = dnnl_primitive_execute(prim, g_stream, 3, args);
	}
	if (st == dnnl_success)
		st = dnnl_stream_wait(g_stream);
	dnnl_memory_destroy(ms);
	dnnl_memory_destroy(mw);
	dnnl_memory_destroy(md);
	if (st != dnnl_success)
		return DSV32_FAIL_SYS(err, DSV32_E_INTERNAL, (int)st,
				      "oneDNN matmul execute M %lld N %lld K %lld: status %d",
				      (long long)d->M, (long long)d->N, (long long)d->K, (int)st);
	*done = true;
	return DSV32_OK;
}

dsv32_status dsv32_gemm_dnnl(const dsv32_gemm_desc *d, bool *done, dsv32_error *err)
{
	*done = false;
	pthread_mutex_lock(&g_lock);
	probe();
	dsv32_status rc = g_state == 1 ? run_locked(d, done, err) : DSV32_OK;
	pthread_mutex_unlock(&g_lock);
	return rc;
}
