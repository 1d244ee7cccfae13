/* bench_gemm.c: CPU GEMM throughput at DeepSeek-V3.2 widths (hidden 7168): the fixed engine
 * against the host engine (OpenBLAS sgemm, oneDNN) in the same run, and against a peer, numpy
 * float32 matmul (bench/peer_gemm.py, run in the same process tree via popen right after our runs
 * of each shape, so both see the same machine load).
 *
 * Versions measured per shape, on the same random data (kernels/gemm.h "Engines", kernels/fp8.h),
 * each through its own backend (one per engine):
 *   fixed bf16  dsv32_gemm, be->gemm_engine = DSV32_GEMM_FIXED, x and w BF16, y BF16
 *               (gemm_fixed.c; the header line names the body: avx512, avx2 or scalar)
 *   fixed f32   the same engine, all F32
 *   host bf16   be->gemm_engine = DSV32_GEMM_HOST, x and w BF16, y BF16 (oneDNN where it has a
 *               bf16 matmul, else the fallback the header line names)
 *   sgemm       be->gemm_engine = DSV32_GEMM_HOST, all F32: OpenBLAS cblas_sgemm
 *   fp8         dsv32_fp8_gemm, x8/w8 e4m3 with block scales, y BF16 (the fixed engine, one
 *               chunk per 128-block, for either engine)
 * Ratios printed: fixed bf16 / sgemm, fixed f32 / sgemm, host bf16 / sgemm, fp8 / sgemm (sgemm
 * measured in the same round of the same run) and sgemm / numpy (the same BLAS operation on both
 * sides: the noise gauge of the peer column).
 * GFLOP/s = 2·M·N·K / best time over repeats (at least 3 runs and --min-time seconds, default
 * 1, per version; the best time is the statistic that survives a loaded machine). The versions
 * run interleaved (one run of each in turn), so all of them see the same machine load and the
 * ratios hold when the load changes during a run.
 * usage: bench_gemm [--quick] [--no-peer] [--min-time S] [--cpu-time] [--rounds N] [--shape S]
 *   --quick: the first two shapes; --shape: only shapes whose name contains S; --rounds N:
 *   N passes over all shapes (ours then the peer for each shape), keeping each version's best,
 *   so a shape's rounds spread over the whole run and a burst of load from other processes
 *   cannot cover all of them (the table is printed after the last round); --cpu-time:
 *   time with process CPU time (ours and the peer's), which on a shared, loaded machine
 *   measures work rather than waiting; meant for single-threaded runs (OMP_NUM_THREADS=1
 *   OPENBLAS_NUM_THREADS=1), since spinning worker threads count as CPU time.
 * The last line is one JSON object: the header's settings and, per shape, every version's GFLOP/s
 * (0: that version failed; numpy_f32 null without the peer), for scripts (bench/targets.py).
 */
#include <cjson/cJSON.h>
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

/* GFLOP/s of each job: after a warm-up run each (primitive creation, page faults), the jobs run
 * in turn, one run each per pass, until every job has at least 3 runs and --min-time seconds;
 * best time per job. Interleaving gives every job the same chances at the machine's quiet
 * moments, so the ratios between them hold on a loaded machine. */
static void gflops(const job *jobs, int n, const shape *s, double *g)
{
	double best[8], spent[8];
	bool ok[8];
	for (int i = 0; i < n; i++) {
		ok[i] = run(&jobs[i]) == DSV32_OK;
		best[i] = 1e30;
		spent[i] = 0.0;
	}
	for (int r = 0;; r++) {
		bool more = false;
		for (int i = 0; i < n; i++) {
			if (!ok[i] || (r >= 3 && spent[i] >= g_min_time))
				continue;
			more = true;
			double t0 = now();
			run(&jobs[i]);
			double dt = now() - t0;
			best[i] = dt < best[i] ? dt : best[i];
			spent[i] += dt;
		}
		if (!more)
			break;
	}
	for (int i = 0; i < n; i++)
		g[i] = ok[i] ? 2.0 * (double)s->M * (double)s->N * (double)s->K / best[i] / 1e9 : 0.0;
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

enum { V_FIXED_BF16, V_FIXED_F32, V_HOST_BF16, V_SGEMM, V_FP8, NV };

/* GFLOP/s of our versions (g[NV]) and of the peer (return value) for one shape. */
static double bench_round(dsv32_backend *be, dsv32_backend *host, const shape *s, bool with_peer,
			  double g[NV])
{
	int64_t M = s->M, K = s->K, N = s->N, nkb = (K + 127) / 128;
	dsv32_tensor xf = make(DSV32_F32, M, K), wf = make(DSV32_F32, N, K);
	dsv32_tensor xb = make(DSV32_BF16, M, K), wb = make(DSV32_BF16, N, K);
	for (int64_t i = 0; i < M * K; i++) /* the same values in both dtypes */
		((uint16_t *)xb.data)[i] = dsv32_f32_to_bf16(((float *)xf.data)[i]);
	for (int64_t i = 0; i < N * K; i++)
		((uint16_t *)wb.data)[i] = dsv32_f32_to_bf16(((float *)wf.data)[i]);
	dsv32_tensor yb = make(DSV32_BF16, M, N), yf = make(DSV32_F32, M, N);
	dsv32_tensor x8 = make(DSV32_F8_E4M3, M, K), w8 = make(DSV32_F8_E4M3, N, K);
	dsv32_tensor xs = make(DSV32_F64, M, nkb), ws = make(DSV32_F64, (N + 127) / 128, nkb);
	xs.dtype = ws.dtype = DSV32_F32; /* filled with 2^-8 as f32 by make() */
	dsv32_tensor y8 = make(DSV32_BF16, M, N);
	job jobs[NV] = {
		[V_FIXED_BF16] = {be, &yb, &xb, &wb, NULL, NULL, false},
		[V_FIXED_F32] = {be, &yf, &xf, &wf, NULL, NULL, false},
		[V_HOST_BF16] = {host, &yb, &xb, &wb, NULL, NULL, false},
		[V_SGEMM] = {host, &yf, &xf, &wf, NULL, NULL, false},
		[V_FP8] = {be, &y8, &x8, &w8, &xs, &ws, true},
	};
	gflops(jobs, NV, s, g);
	dsv32_tensor *t[] = {&xf, &wf, &xb, &wb, &yb, &yf, &x8, &w8, &xs, &ws, &y8};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		dsv32_tensor_free(t[i]);
	return with_peer ? peer(s) : 0.0;
}

typedef struct {
	double g[NV], peer; /* best GFLOP/s so far */
} result;

/* One round of one shape: keep each version's best. */
static void bench_shape(dsv32_backend *be, dsv32_backend *host, const shape *s, bool with_peer,
			result *res)
{
	double g[NV], p = bench_round(be, host, s, with_peer, g);
	for (int i = 0; i < NV; i++)
		res->g[i] = g[i] > res->g[i] ? g[i] : res->g[i];
	res->peer = p > res->peer ? p : res->peer;
}

static void print_row(const shape *s, const result *res)
{
	const double *g = res->g;
	double gp = res->peer, sg = g[V_SGEMM] > 0 ? g[V_SGEMM] : 1e-30;
	printf("| %-10s | %4lld | %5lld | %5lld | %6.1f | %6.1f | %6.1f | %6.1f | %6.1f |", s->name,
	       (long long)s->M, (long long)s->K, (long long)s->N, g[V_FIXED_BF16], g[V_FIXED_F32],
	       g[V_HOST_BF16], g[V_SGEMM], g[V_FP8]);
	if (gp > 0)
		printf(" %6.1f |", gp);
	else
		printf("    n/a |");
	printf(" **%4.2f** | **%4.2f** | %5.2f | %5.2f |", g[V_FIXED_BF16] / sg, g[V_FIXED_F32] / sg,
	       g[V_HOST_BF16] / sg, g[V_FP8] / sg);
	if (gp > 0)
		printf(" %5.2f |\n", g[V_SGEMM] / gp);
	else
		printf("   n/a |\n");
	fflush(stdout);
}

static const char *const version_keys[NV] = {"fixed_bf16", "fixed_f32", "host_bf16", "sgemm",
					     "fp8"};

static cJSON *shape_json(const shape *s, const result *res)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "shape", s->name);
	cJSON_AddNumberToObject(o, "M", (double)s->M);
	cJSON_AddNumberToObject(o, "K", (double)s->K);
	cJSON_AddNumberToObject(o, "N", (double)s->N);
	for (int v = 0; v < NV; v++)
		cJSON_AddNumberToObject(o, version_keys[v], res->g[v]);
	if (res->peer > 0)
		cJSON_AddNumberToObject(o, "numpy_f32", res->peer);
	else
		cJSON_AddNullToObject(o, "numpy_f32");
	return o;
}

static void print_json(const char *cpu, const shape *shapes, const result *res, size_t n,
		       const char *only)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "bench", "gemm");
	cJSON_AddStringToObject(root, "fixed_body", dsv32_gemm_fixed_body());
	cJSON_AddStringToObject(root, "host_bf16", dsv32_gemm_bf16_impl());
	cJSON_AddStringToObject(root, "cpu", cpu);
	const char *omp = getenv("OMP_NUM_THREADS");
	cJSON_AddStringToObject(root, "omp_num_threads", omp ? omp : "unset");
	cJSON_AddStringToObject(root, "clock", g_cpu_time ? "cpu" : "wall");
	cJSON_AddNumberToObject(root, "rounds", g_rounds);
	cJSON *arr = cJSON_AddArrayToObject(root, "shapes");
	for (size_t i = 0; i < n; i++)
		if (!only || strstr(shapes[i].name, only))
			cJSON_AddItemToArray(arr, shape_json(&shapes[i], &res[i]));
	char *txt = cJSON_PrintUnformatted(root);
	printf("%s\n", txt ? txt : "{}");
	free(txt);
	cJSON_Delete(root);
}

/* "model name" of /proc/cpuinfo (or "unknown CPU"), into buf. */
static const char *cpu_name(char *buf, size_t n)
{
	snprintf(buf, n, "unknown CPU");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return buf;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		char *c = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && c) {
			c++;
			while (*c == ' ' || *c == '\t')
				c++;
			c[strcspn(c, "\n")] = 0;
			snprintf(buf, n, "%s", c);
			break;
		}
	}
	fclose(f);
	return buf;
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
	dsv32_backend *be = NULL, *host = NULL; /* one backend per engine */
	dsv32_error err = {0};
	if (dsv32_backend_create(&be, DSV32_DEV_CPU, &err) != DSV32_OK ||
	    dsv32_backend_create(&host, DSV32_DEV_CPU, &err) != DSV32_OK) {
		fprintf(stderr, "bench_gemm: %s\n", err.what);
		return 1;
	}
	be->gemm_engine = DSV32_GEMM_FIXED;
	host->gemm_engine = DSV32_GEMM_HOST;
	char cpu[256];
	const char *omp = getenv("OMP_NUM_THREADS"), *ob = getenv("OPENBLAS_NUM_THREADS");
	printf("fixed body: %s; host bf16: %s; CPU: %s; OMP_NUM_THREADS=%s "
	       "OPENBLAS_NUM_THREADS=%s; %s, %d round(s)\n\n",
	       dsv32_gemm_fixed_body(), dsv32_gemm_bf16_impl(), cpu_name(cpu, sizeof cpu),
	       omp ? omp : "unset", ob ? ob : "unset", g_cpu_time ? "CPU time" : "wall clock",
	       g_rounds);
	printf("GFLOP/s per version; ratios to sgemm (OpenBLAS cblas_sgemm, the host f32 column) "
	       "of the same run\n\n");
	printf("| shape      |    M |     K |     N | fixed bf16 | fixed f32 | host bf16 | sgemm "
	       "| fp8 | numpy f32 | fixed bf16/sgemm | fixed f32/sgemm | host bf16/sgemm "
	       "| fp8/sgemm | sgemm/np |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	/* rounds outermost: each shape's rounds spread over the whole run, so a burst of load
	 * from other processes does not cover all of them */
	enum { NSHAPES = sizeof SHAPES / sizeof SHAPES[0] };
	result res[NSHAPES] = {0};
	size_t n = quick ? 2 : NSHAPES;
	for (int r = 0; r < g_rounds; r++) {
		if (g_rounds > 1)
			fprintf(stderr, "bench_gemm: round %d of %d\n", r + 1, g_rounds);
		for (size_t i = 0; i < n; i++)
			if (!only || strstr(SHAPES[i].name, only))
				bench_shape(be, host, &SHAPES[i], with_peer, &res[i]);
	}
	for (size_t i = 0; i < n; i++)
		if (!only || strstr(SHAPES[i].name, only))
			print_row(&SHAPES[i], &res[i]);
	printf("\n");
	print_json(cpu, SHAPES, res, n, only);
	dsv32_backend_destroy(be);
	dsv32_backend_destroy(host);
	return 0;
}
