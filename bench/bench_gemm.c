/* bench_gemm.c: CPU GEMM throughput at DeepSeek-V3.2 widths (hidden 7168) against a peer,
 * numpy float32 matmul (bench/peer_gemm.py, run in the same process tree via popen right after
 * our runs of each shape, so both see the same machine load).
 *
 * Versions measured (kernels/gemm.h, kernels/fp8.h):
 *   bf16  dsv32_gemm, x and w BF16, y BF16 (oneDNN where it has a bf16 matmul, else the
 *         AVX2 blocked kernel of gemm_cpu.c; the first output line names the body)
 *   f32   dsv32_gemm, all F32 (OpenBLAS cblas_sgemm)
 *   fp8   dsv32_fp8_gemm, x8/w8 e4m3 with block scales, y BF16 (the same blocked kernel, one
 *         chunk per 128-block)
 * GFLOP/s = 2·M·N·K / best time over repeats (at least 3 runs and --min-time seconds, default
 * 1, per version; the best time is the statistic that survives a loaded machine).
 * usage: bench_gemm [--quick] [--no-peer] [--min-time S] [--cpu-time] [--rounds N] [--shape S]
 *   --quick: the first two shapes; --shape: only shapes whose name contains S; --rounds N:
 *   measure ours then the peer N times per shape and keep each side's best (on a loaded
 *   machine both sides then get the same chances at a quiet moment); --cpu-time: time with process CPU time (ours and the
 *   peer's), which on a shared, loaded machine measures work rather than waiting; meant for
 *   single-threaded runs (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1), since spinning worker
 *   threads count as CPU time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/fp8.h"
#include "kernels/gemm.h"

typedef struct {
	const char *name;
	int64_t M, K, N;
} shape;

static const shape SHAPES[] = {
	{"attn.wq_a", 16, 7168, 1536},      {"attn.wq_a", 128, 7168, 1536},
	{"expert.w1", 16, 7168, 2048},      {"expert.w1", 128, 7168, 2048},
	{"expert.w2", 16, 2048, 7168},      {"expert.w2", 128, 2048, 7168},
	{"attn.wo", 16, 16384, 7168},       {"attn.wo", 128, 16384, 7168},
};

static bool g_cpu_time; /* --cpu-time: process CPU time instead of wall time */
static int g_rounds = 1; /* --rounds */

static double now(void)
{
	struct timespec t;
	clock_gettime(g_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t g_rng = 88172645463325252ull;
static float urand(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return (float)((double)(g_rng >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static dsv32_tensor make(dsv32_dtype t, int64_t r, int64_t c)
{
	int64_t shape[2] = {r, c};
	dsv32_tensor x;
	if (dsv32_tensor_alloc(&x, t, 2, shape, NULL) != DSV32_OK) {
		fprintf(stderr, "bench_gemm: out of memory for [%lld, %lld]\n", (long long)r,
			(long long)c);
		exit(1);
	}
	int64_t n = r * c;
	for (int64_t i = 0; i < n; i++) {
		float v = urand();
		if (t == DSV32_F32)
			((float *)x.data)[i] = v;
		else if (t == DSV32_BF16)
			((uint16_t *)x.data)[i] = dsv32_f32_to_bf16(v);
		else if (t == DSV32_F8_E4M3)
			((uint8_t *)x.data)[i] = dsv32_f32_to_e4m3(v * 448.0f);
		else
			((float *)x.data)[i] = 0x1p-8f; /* scales */
	}
	return x;
}

typedef struct {
	dsv32_backend *be;
	dsv32_tensor *y, *x, *w, *xs, *ws;
	bool fp8;
} job;

static dsv32_status run(const job *j)
{
	dsv32_error err = {0};
	dsv32_status rc = j->fp8 ? dsv32_fp8_gemm(j->be, j->y, j->x, j->xs, j->w, j->ws, &err)
				 : dsv32_gemm(j->be, j->y, j->x, j->w, &err);
	if (rc != DSV32_OK)
		fprintf(stderr, "bench_gemm: %s\n", err.what);
	return rc;
}

static double g_min_time = 1.0; /* seconds per version and shape (--min-time) */

static double gflops(const job *j, const shape *s)
{
	if (run(j) != DSV32_OK) /* warm-up (primitive creation, page faults) */
		return 0.0;
	double best = 1e30, spent = 0.0;
	for (int r = 0; r < 3 || spent < g_min_time; r++) {
		double t0 = now();
		run(j);
		double dt = now() - t0;
		best = dt < best ? dt : best;
		spent += dt;
	}
	return 2.0 * (double)s->M * (double)s->N * (double)s->K / best / 1e9;
}

static double peer(const shape *s)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "python3 %s/bench/peer_gemm.py --min-time %g%s %lld %lld %lld",
		 DSV32_SOURCE_DIR, g_min_time, g_cpu_time ? " --cpu-time" : "", (long long)s->M,
		 (long long)s->K, (long long)s->N);
	FILE *p = popen(cmd, "r");
	if (!p)
		return 0.0;
	long long M, K, N;
	double g = 0.0;
	if (fscanf(p, "peer %lld %lld %lld %lf", &M, &K, &N, &g) != 4)
		g = 0.0;
	pclose(p);
	return g;
}

/* GFLOP/s of our three versions (g[3]) and of the peer (return value) for one shape. */
static double bench_round(dsv32_backend *be, const shape *s, bool with_peer, double g[3])
{
	int64_t M = s->M, K = s->K, N = s->N, nkb = (K + 127) / 128;
	{
		dsv32_tensor x = make(DSV32_BF16, M, K), w = make(DSV32_BF16, N, K);
		dsv32_tensor y = make(DSV32_BF16, M, N);
		job j = {be, &y, &x, &w, NULL, NULL, false};
		g[0] = gflops(&j, s);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&w);
		dsv32_tensor_free(&y);
	}
	{
		dsv32_tensor x = make(DSV32_F32, M, K), w = make(DSV32_F32, N, K);
		dsv32_tensor y = make(DSV32_F32, M, N);
		job j = {be, &y, &x, &w, NULL, NULL, false};
		g[1] = gflops(&j, s);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&w);
		dsv32_tensor_free(&y);
	}
	{
		dsv32_tensor x = make(DSV32_F8_E4M3, M, K), w = make(DSV32_F8_E4M3, N, K);
		dsv32_tensor xs = make(DSV32_F64, M, nkb), ws = make(DSV32_F64, (N + 127) / 128, nkb);
		xs.dtype = ws.dtype = DSV32_F32; /* filled with 2^-8 as f32 by make() */
		dsv32_tensor y = make(DSV32_BF16, M, N);
		job j = {be, &y, &x, &w, &xs, &ws, true};
		g[2] = gflops(&j, s);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&w);
		dsv32_tensor_free(&xs);
		dsv32_tensor_free(&ws);
		dsv32_tensor_free(&y);
	}
	return with_peer ? peer(s) : 0.0;
}

static void bench_shape(dsv32_backend *be, const shape *s, bool with_peer)
{
	int64_t M = s->M, K = s->K, N = s->N;
	double g[3] = {0, 0, 0}, gp = 0.0;
	for (int r = 0; r < g_rounds; r++) {
		double gr[3], p = bench_round(be, s, with_peer, gr);
		for (int i = 0; i < 3; i++)
			g[i] = gr[i] > g[i] ? gr[i] : g[i];
		gp = p > gp ? p : gp;
	}
	printf("| %-10s | %4lld | %5lld | %5lld | %8.1f | %8.1f | %8.1f | %9.1f |", s->name,
	       (long long)M, (long long)K, (long long)N, g[0], g[1], g[2], gp);
	if (gp > 0)
		printf(" %6.2f | %6.2f | %6.2f |\n", g[0] / gp, g[1] / gp, g[2] / gp);
	else
		printf("    n/a |    n/a |    n/a |\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	bool quick = false, with_peer = true;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--no-peer"))
			with_peer = false;
		else if (!strcmp(argv[i], "--cpu-time"))
			g_cpu_time = true;
		else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
			g_min_time = atof(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			g_rounds = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
		else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: bench_gemm [--quick] [--no-peer] [--min-time S] "
					"[--cpu-time] [--rounds N] [--shape S]\n");
			return 2;
		}
	}
	dsv32_backend *be = NULL;
	dsv32_error err = {0};
	if (dsv32_backend_create(&be, DSV32_DEV_CPU, &err) != DSV32_OK) {
		fprintf(stderr, "bench_gemm: %s\n", err.what);
		return 1;
	}
	printf("bf16 CPU body: %s\n\n", dsv32_gemm_bf16_impl());
	printf("| shape      |    M |     K |     N | bf16 GF/s | f32 GF/s | fp8 GF/s | numpy f32 "
	       "| bf16/np | f32/np | fp8/np |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
	size_t n = sizeof SHAPES / sizeof SHAPES[0];
	for (size_t i = 0; i < (quick ? 2 : n); i++)
		if (!only || strstr(SHAPES[i].name, only))
			bench_shape(be, &SHAPES[i], with_peer);
	dsv32_backend_destroy(be);
	return 0;
}
