/* test_decode_alloc.c: a decode step allocates nothing once the model has run one (issue 19,
 * "no per-token allocation in decode").
 *
 * The test executable is linked with -Wl,--wrap for malloc, calloc, realloc, aligned_alloc and
 * posix_memalign (CMakeLists.txt), so every allocation our code makes (libdsv32 is a static
 * library, linked into this executable) passes through the counters below; allocations inside
 * shared libraries (oneDNN, OpenBLAS, libgomp) are not seen, which is why only the fixed GEMM
 * engine is checked: the host engine hands its GEMMs to oneDNN, whose allocations are its own.
 *
 * Both layouts, bf16 and fp8 weights, 2 rows: a prefill longer than index_topk (the indexer
 * selects), two warm-up decode steps (caches, pools and per-thread scratch reach their size),
 * then COUNTED more steps must make no allocation. Steps run through forward() with no tap sink
 * and opts.logits_view (the logits stay in the model's buffer; without it, forward's contract
 * is one new logits tensor per call, for the caller to free). A planted allocation in the
 * counted window must be seen (the counters work). */
/* dladdr: _GNU_SOURCE comes from the build (CMakeLists.txt) */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures/generator.h"
#include "hf_layout/hf_model.h"
#include "kernels/backend.h"
#include "kernels/gemm.h"
#include "ref/ref_model.h"
#include "tests/support/test_common.h"

#define B 2
#define S 20 /* > index_topk 16 of the tiny preset */
#define WARM 2
#define COUNTED 3
#define CAP 32

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);

/* The counters are the test's own state, only touched by allocation wrappers while counting;
 * the first MAX_SITES distinct callers are kept to name them when the test fails. */
#define MAX_SITES 32
static _Atomic long n_allocs;
static _Atomic int counting;
static void *sites[MAX_SITES];
static long site_n[MAX_SITES];

static void seen(void *caller)
{
	if (!counting)
		return;
	n_allocs++;
#pragma omp critical(dsv32_alloc_sites)
	for (int i = 0; i < MAX_SITES; i++) {
		if (sites[i] == caller || !sites[i]) {
			sites[i] = caller;
			site_n[i]++;
			break;
		}
	}
}

/* "name+0xoff (file+0xoff)" lines for the callers seen, for addr2line. */
static void print_sites(void)
{
	for (int i = 0; i < MAX_SITES && sites[i]; i++) {
		Dl_info di = {0};
		dladdr(sites[i], &di);
		printf("#   %ld x %s (%s+0x%lx)\n", site_n[i], di.dli_sname ? di.dli_sname : "?",
		       di.dli_fname ? di.dli_fname : "?",
		       (unsigned long)((char *)sites[i] - (char *)di.dli_fbase));
	}
	memset(sites, 0, sizeof sites);
	memset(site_n, 0, sizeof site_n);
}

void *__wrap_malloc(size_t n)
{
	seen(__builtin_return_address(0));
	return __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
	seen(__builtin_return_address(0));
	return __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	seen(__builtin_return_address(0));
	return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
	seen(__builtin_return_address(0));
	return __real_aligned_alloc(a, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	seen(__builtin_return_address(0));
	return __real_posix_memalign(p, a, n);
}

static char dir[64], ckpt[96], ckpt8[160];

static dsv32_model *open_model(const char *layout, const char *path)
{
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.max_batch_size = B;
	o.max_seq_len = CAP;
	o.gemm_engine = DSV32_GEMM_FIXED;
	o.logits_view = true; /* the logits stay the model's: no output tensor per step */
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	dsv32_status rc = strcmp(layout, "ref") == 0 ? dsv32_ref_open(&m, path, NULL, &o, &err)
						     : dsv32_hf_open_dir(&m, path, &o, &err);
	if (rc != DSV32_OK)
		fail_msg("open %s as %s: %s", path, layout, err.what);
	return m;
}

/* One greedy step: tokens [B, s] at start_pos; lg receives the model's logits (a view, with
 * opts.logits_view); next[b] receives each row's argmax. */
static void step(dsv32_model *m, const int64_t *tokens, int64_t s, int64_t start_pos,
		 dsv32_tensor *lg, int64_t *next)
{
	dsv32_error err = {0};
	if (m->vt->forward(m, tokens, B, s, start_pos, lg, &err) != DSV32_OK)
		fail_msg("%s forward at %lld: %s", m->vt->layout, (long long)start_pos, err.what);
	int64_t V = lg->shape[1];
	for (int64_t b = 0; b < B; b++)
		next[b] = tc_argmax_f32((const float *)lg->data + b * V, V);
}

/* Allocations made by COUNTED decode steps after a prefill and WARM decode steps. */
static long decode_allocs(const char *layout, const char *path, bool plant)
{
	dsv32_model *m = open_model(layout, path);
	int64_t p[B * S], next[B];
	for (int i = 0; i < B * S; i++)
		p[i] = (i * 37 + 5) % 400 + 3;
	dsv32_tensor lg = {0};
	step(m, p, S, 0, &lg, next);
	int64_t pos = S;
	for (int i = 0; i < WARM; i++, pos++)
		step(m, next, 1, pos, &lg, next);
	n_allocs = 0;
	counting = 1;
	for (int i = 0; i < COUNTED; i++, pos++)
		step(m, next, 1, pos, &lg, next);
	if (plant) {
		void *volatile q = malloc(16); /* volatile: the pair is not optimised away */
		free(q);
	}
	counting = 0;
	dsv32_tensor_free(&lg);
	m->vt->close(m);
	return n_allocs;
}

static void check(const char *layout, const char *path, const char *label)
{
	long n = decode_allocs(layout, path, false);
	printf("# %s, %s: %ld allocations in %d decode steps\n", layout, label, n, COUNTED);
	if (n != 0) {
		print_sites();
		fail_msg("%s (%s): %ld allocations in %d decode steps after %d warm-up steps, want 0",
			 layout, label, n, COUNTED, WARM);
	}
}

static void test_ref_bf16(void **state)
{
	(void)state;
	check("ref", ckpt, "bf16 weights");
}

static void test_ref_fp8(void **state)
{
	(void)state;
	check("ref", ckpt8, "fp8 weights");
}

static void test_hf_bf16(void **state)
{
	(void)state;
	check("hf", ckpt, "bf16 weights");
}

static void test_hf_fp8(void **state)
{
	(void)state;
	check("hf", ckpt8, "fp8 weights");
}

static void test_counters_see_an_allocation(void **state)
{
	(void)state;
	assert_true(decode_allocs("hf", ckpt, true) >= 1);
	memset(sites, 0, sizeof sites);
	memset(site_n, 0, sizeof site_n);
}

/* The backend's block cache (kernels/backend.h): a freed tensor's block serves the next
 * request of its size class, zero-filled, without an allocation; another class allocates; a
 * block above a quarter of the cache's bytes is not kept; host scratch shares the cache. */
static void test_backend_cache_reuses_blocks(void **state)
{
	(void)state;
	dsv32_backend *be = NULL;
	dsv32_error err = {0};
	assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, &err), DSV32_OK);
	dsv32_tensor a = {0}, b = {0}, c = {0};
	assert_int_equal(dsv32_backend_alloc(be, &a, DSV32_F32, 1, (int64_t[]){100}, &err), DSV32_OK);
	assert_int_equal(a.cap, 512);
	memset(a.data, 0x5a, 400);
	void *pa = a.data;
	dsv32_backend_free(be, &a);
	assert_null(a.data);
	n_allocs = 0;
	counting = 1;
	assert_int_equal(dsv32_backend_alloc(be, &b, DSV32_F32, 1, (int64_t[]){120}, &err), DSV32_OK);
	counting = 0;
	assert_int_equal(n_allocs, 0);
	assert_ptr_equal(b.data, pa);
	for (int i = 0; i < 120; i++)
		assert_true(((const float *)b.data)[i] == 0.0f);
	counting = 1; /* 600 bytes: class 1024, none cached */
	assert_int_equal(dsv32_backend_alloc(be, &c, DSV32_F32, 1, (int64_t[]){150}, &err), DSV32_OK);
	counting = 0;
	assert_int_equal(n_allocs, 1);
	dsv32_tensor_free(&c); /* a cached block may still be freed as a plain tensor */
	dsv32_backend_free(be, &b);
	/* above DSV32_HOST_CACHE_BYTES / 4: freed, so the next one allocates again */
	int64_t big = (int64_t)(DSV32_HOST_CACHE_BYTES / 4 + 1); /* class: half the cache */
	assert_int_equal(dsv32_backend_alloc(be, &a, DSV32_U8, 1, &big, &err), DSV32_OK);
	dsv32_backend_free(be, &a);
	n_allocs = 0;
	counting = 1;
	assert_int_equal(dsv32_backend_alloc(be, &a, DSV32_U8, 1, &big, &err), DSV32_OK);
	void *h = dsv32_backend_host_get(be, 1000);
	counting = 0;
	assert_int_equal(n_allocs, 2);
	dsv32_backend_free(be, &a);
	dsv32_backend_host_put(be, h, 1000);
	counting = 1;
	void *h2 = dsv32_backend_host_get(be, 900);
	counting = 0;
	assert_int_equal(n_allocs, 2);
	assert_ptr_equal(h2, h);
	dsv32_backend_host_put(be, h2, 900);
	dsv32_backend_destroy(be); /* frees what the cache holds (ASan / valgrind check it) */
	memset(sites, 0, sizeof sites);
	memset(site_n, 0, sizeof site_n);
}

static int group_setup(void **state)
{
	(void)state;
	return tc_fixture_tiny_pair(dir, sizeof dir, ckpt, sizeof ckpt, ckpt8, sizeof ckpt8, "dalloc");
}

static int group_teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_see_an_allocation),
		cmocka_unit_test(test_backend_cache_reuses_blocks),
		cmocka_unit_test(test_ref_bf16),
		cmocka_unit_test(test_ref_fp8),
		cmocka_unit_test(test_hf_bf16),
		cmocka_unit_test(test_hf_fp8),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
