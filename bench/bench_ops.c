/* bench_ops.c: throughput of the main CPU ops at DeepSeek-V3.2 widths (hidden 7168) against a
 * peer, the same ops in PyTorch CPU (bench/peer_ops.py, run through popen right after our runs
 * of each row count, with the same thread count, so both see the same machine load).
 *
 * Ops (rows = tokens, 16 and 128; see bench/README.md for the peer's torch expressions):
 *   rmsnorm        dsv32_rmsnorm       x BF16 [R, 7168], w F32, y BF16                  GB/s
 *   rmsnorm_add    dsv32_rmsnorm_add   x, res BF16 [R, 7168] -> y, res_out BF16         GB/s
 *   rope           dsv32_rope_ref      [1, R, 128 heads, 64] BF16, interleaved pairs     GB/s
 *   hadamard       dsv32_hadamard      [R·64 heads, 128] BF16                            GB/s
 *   softmax2048/4096 dsv32_softmax     [R·16 heads, T] BF16 -> BF16                      GB/s
 *   silu_mul       dsv32_silu_mul_ref  a, b BF16 [R, 18432] -> h BF16                    GB/s
 *   act_quant      dsv32_act_quant     x BF16 [R, 7168] -> e4m3 + F32 scales [R, 56]     GB/s
 *   fp8_gemm       dsv32_fp8_gemm      e4m3 [R, 7168] x e4m3 [1536, 7168]^T -> BF16      GFLOP/s
 *   attn_prefill   dsv32_attn_prefill  S = T = R, H 16, Dqk 192, Dv 128, causal, BF16    GFLOP/s
 *   attn_decode    dsv32_attn_decode_absorbed  B = R/16 tokens, H 128, T 2048, C 512,
 *                                      rope 64, Dn = Dv = 128, BF16                      GFLOP/s
 *   router         dsv32_router        logits F32 [R, 256], sigmoid, 8 groups / 4, top 8 GB/s
 *   fp8_index      dsv32_fp8_index     q8 e4m3 [1, R, 64, 128], k8 e4m3 [1, 2048, 128]   GFLOP/s
 *   index_hf       dsv32_index_scores_hf  q BF16 [1, R, 64, 128], k BF16 [1, 2048, 128]  GFLOP/s
 *                  (no peer for these two: run them with --no-peer)
 * GB/s counts the bytes of every input and output once; GFLOP/s counts 2 per multiply-add
 * (attention: the full S x T score matrix, masked or not). Both sides are timed with the same
 * formula, so the ratio ours / peer is peer time / our time.
 * usage: bench_ops [--rows R] [--op NAME] [--no-peer] [--min-time S] [--cpu-time]
 *   --cpu-time: process CPU time on both sides (run single-threaded: OMP_NUM_THREADS=1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/attention.h"
#include "kernels/fp8.h"
#include "kernels/indexer.h"
#include "kernels/hadamard.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/router.h"
#include "kernels/silu.h"
#include "kernels/softmax.h"

#define HID 7168
#define MAXT 8

typedef enum {
	OP_RMSNORM, OP_RMSNORM_ADD, OP_ROPE, OP_HADAMARD, OP_SOFTMAX2048, OP_SOFTMAX4096,
	OP_SILU_MUL, OP_ACT_QUANT, OP_FP8_GEMM, OP_ATTN_PREFILL, OP_ATTN_DECODE, OP_ROUTER,
	OP_FP8_INDEX, OP_INDEX_HF, OP_COUNT
} op_id;

static const char *const OP_NAMES[OP_COUNT] = {
	"rmsnorm", "rmsnorm_add", "rope", "hadamard", "softmax2048", "softmax4096",
	"silu_mul", "act_quant", "fp8_gemm", "attn_prefill", "attn_decode", "router",
	"fp8_index", "index_hf",
};

typedef struct {
	op_id op;
	int64_t rows;
	dsv32_tensor t[MAXT];
	int nt;
	double work;     /* bytes (GB/s ops) or flops (GFLOP/s ops) per call */
	bool flops;
	char shape[96];  /* printed shape */
} bcase;

static bool g_cpu_time;
static double g_min_time = 1.0;

static double now(void)
{
	struct timespec t;
	clock_gettime(g_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t g_rng = 88172645463325252ull;
static float urand(void) /* uniform [-1, 1) */
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return (float)((double)(g_rng >> 11) * 0x1p-53 * 2.0 - 1.0);
}

/* New tensor t[c->nt] of the given shape, filled with uniform values times `scale` (e4m3:
 * codes of them), or zero when scale is 0. */
static dsv32_tensor *add(bcase *c, dsv32_dtype t, int ndim, const int64_t *shape, float scale)
{
	dsv32_tensor *x = &c->t[c->nt++];
	dsv32_error err = {0};
	if (dsv32_tensor_alloc(x, t, ndim, shape, &err) != DSV32_OK) {
		fprintf(stderr, "bench_ops: %s\n", err.what);
		exit(1);
	}
	int64_t n = dsv32_tensor_numel(x);
	for (int64_t i = 0; scale != 0.0f && i < n; i++) {
		float v = urand() * scale;
		if (t == DSV32_F32)
			((float *)x->data)[i] = v;
		else if (t == DSV32_BF16)
			((uint16_t *)x->data)[i] = dsv32_f32_to_bf16(v);
		else if (t == DSV32_F8_E4M3)
			((uint8_t *)x->data)[i] = dsv32_f32_to_e4m3(v);
	}
	return x;
}

static double nbytes(const bcase *c)
{
	double b = 0;
	for (int i = 0; i < c->nt; i++)
		b += (double)dsv32_tensor_nbytes(&c->t[i]);
	return b;
}

static void setup(bcase *c, op_id op, int64_t R)
{
	memset(c, 0, sizeof *c);
	c->op = op;
	c->rows = R;
	switch (op) {
	case OP_RMSNORM: {
		int64_t s[2] = {R, HID}, sw[1] = {HID};
		add(c, DSV32_BF16, 2, s, 0);     /* y */
		add(c, DSV32_BF16, 2, s, 3.0f);  /* x */
		add(c, DSV32_F32, 1, sw, 1.0f);  /* w */
		snprintf(c->shape, sizeof c->shape, "[%lld, %d]", (long long)R, HID);
		break;
	}
	case OP_RMSNORM_ADD: {
		int64_t s[2] = {R, HID}, sw[1] = {HID};
		add(c, DSV32_BF16, 2, s, 0);     /* y */
		add(c, DSV32_BF16, 2, s, 0);     /* res_out */
		add(c, DSV32_BF16, 2, s, 3.0f);  /* x */
		add(c, DSV32_BF16, 2, s, 3.0f);  /* res */
		add(c, DSV32_F32, 1, sw, 1.0f);  /* w */
		snprintf(c->shape, sizeof c->shape, "[%lld, %d]", (long long)R, HID);
		break;
	}
	case OP_ROPE: {
		int64_t s[4] = {1, R, 128, 64}, sf[3] = {R, 32, 2};
		add(c, DSV32_BF16, 4, s, 0);
		add(c, DSV32_BF16, 4, s, 2.0f);
		dsv32_tensor *f = add(c, DSV32_F32, 3, sf, 0);
		for (int64_t i = 0; i < R * 32; i++) {
			double th = (double)(i / 32) * pow(10000.0, -(double)(i % 32) / 32.0);
			((float *)f->data)[2 * i] = (float)cos(th);
			((float *)f->data)[2 * i + 1] = (float)sin(th);
		}
		snprintf(c->shape, sizeof c->shape, "[%lld, 128, 64]", (long long)R);
		break;
	}
	case OP_HADAMARD: {
		int64_t s[2] = {R * 64, 128};
		add(c, DSV32_BF16, 2, s, 0);
		add(c, DSV32_BF16, 2, s, 2.0f);
		snprintf(c->shape, sizeof c->shape, "[%lld, 128]", (long long)(R * 64));
		break;
	}
	case OP_SOFTMAX2048:
	case OP_SOFTMAX4096: {
		int64_t T = op == OP_SOFTMAX2048 ? 2048 : 4096, s[2] = {R * 16, T};
		add(c, DSV32_BF16, 2, s, 0);
		add(c, DSV32_BF16, 2, s, 8.0f);
		snprintf(c->shape, sizeof c->shape, "[%lld, %lld]", (long long)(R * 16),
			 (long long)T);
		break;
	}
	case OP_SILU_MUL: {
		int64_t s[2] = {R, 18432};
		add(c, DSV32_BF16, 2, s, 0);
		add(c, DSV32_BF16, 2, s, 4.0f);
		add(c, DSV32_BF16, 2, s, 4.0f);
		snprintf(c->shape, sizeof c->shape, "[%lld, 18432]", (long long)R);
		break;
	}
	case OP_ACT_QUANT: {
		int64_t s[2] = {R, HID}, ss[2] = {R, HID / 128};
		add(c, DSV32_F8_E4M3, 2, s, 0);
		add(c, DSV32_F32, 2, ss, 0);
		add(c, DSV32_BF16, 2, s, 3.0f);
		snprintf(c->shape, sizeof c->shape, "[%lld, %d]", (long long)R, HID);
		break;
	}
	case OP_FP8_GEMM: {
		int64_t N = 1536, sx[2] = {R, HID}, sw[2] = {N, HID}, sy[2] = {R, N};
		int64_t sxs[2] = {R, HID / 128}, sws[2] = {N / 128, HID / 128};
		add(c, DSV32_BF16, 2, sy, 0);
		add(c, DSV32_F8_E4M3, 2, sx, 448.0f);
		add(c, DSV32_F32, 2, sxs, 0.01f);
		add(c, DSV32_F8_E4M3, 2, sw, 448.0f);
		add(c, DSV32_F32, 2, sws, 0.01f);
		c->flops = true;
		c->work = 2.0 * (double)R * (double)N * HID;
		snprintf(c->shape, sizeof c->shape, "[%lld, %d] x [%lld, %d]", (long long)R, HID,
			 (long long)N, HID);
		return;
	}
	case OP_ATTN_PREFILL: {
		int64_t H = 16, S = R, sq[4] = {1, S, H, 192}, sv[4] = {1, S, H, 128};
		int64_t so[4] = {1, S, H, 128}, sm[2] = {S, S};
		add(c, DSV32_BF16, 4, so, 0);
		add(c, DSV32_BF16, 4, sq, 1.0f);
		add(c, DSV32_BF16, 4, sq, 1.0f);
		add(c, DSV32_BF16, 4, sv, 1.0f);
		dsv32_tensor *m = add(c, DSV32_F32, 2, sm, 0);
		for (int64_t i = 0; i < S; i++)
			for (int64_t j = i + 1; j < S; j++)
				((float *)m->data)[i * S + j] = -INFINITY;
		c->flops = true;
		c->work = 2.0 * (double)S * (double)S * (double)H * (192 + 128);
		snprintf(c->shape, sizeof c->shape, "S=T=%lld H=16 D=192/128", (long long)S);
		return;
	}
	case OP_ATTN_DECODE: {
		int64_t B = R / 16 > 0 ? R / 16 : 1, H = 128, T = 2048, C = 512, Rd = 64, D = 128;
		int64_t so[3] = {B, H, D}, sqn[3] = {B, H, D}, sqp[3] = {B, H, Rd};
		int64_t sw[3] = {H, 2 * D, C}, skv[3] = {B, T, C}, spe[3] = {B, T, Rd};
		add(c, DSV32_BF16, 3, so, 0);
		add(c, DSV32_BF16, 3, sqn, 1.0f);
		add(c, DSV32_BF16, 3, sqp, 1.0f);
		add(c, DSV32_BF16, 3, sw, 0.05f);
		add(c, DSV32_BF16, 3, skv, 1.0f);
		add(c, DSV32_BF16, 3, spe, 1.0f);
		c->flops = true;
		c->work = 2.0 * (double)B * (double)H *
			  (double)(D * C + T * (C + Rd) + T * C + D * C);
		snprintf(c->shape, sizeof c->shape, "B=%lld H=128 T=2048 C=512", (long long)B);
		return;
	}
	case OP_ROUTER: {
		int64_t s[2] = {R, 256}, sb[1] = {256}, si[2] = {R, 8};
		add(c, DSV32_F32, 2, si, 0);      /* weights */
		add(c, DSV32_I64, 2, si, 0);      /* idx */
		add(c, DSV32_F32, 2, s, 4.0f);    /* logits */
		add(c, DSV32_F32, 1, sb, 0.01f);  /* bias */
		snprintf(c->shape, sizeof c->shape, "[%lld, 256] top 8", (long long)R);
		break;
	}
	case OP_FP8_INDEX:
	case OP_INDEX_HF: {
		const bool f8 = op == OP_FP8_INDEX;
		const dsv32_dtype qt = f8 ? DSV32_F8_E4M3 : DSV32_BF16;
		int64_t T = 2048, sq[4] = {1, R, 64, 128}, sk[3] = {1, T, 128}, sw[3] = {1, R, 64};
		int64_t ss[2] = {1, T}, so[3] = {1, R, T};
		add(c, DSV32_F32, 3, so, 0);
		add(c, qt, 4, sq, f8 ? 448.0f : 1.0f);
		add(c, qt, 3, sk, f8 ? 448.0f : 1.0f);
		add(c, DSV32_F32, 3, sw, 0.1f);
		if (f8)
			add(c, DSV32_F32, 2, ss, 0.01f);
		c->flops = true;
		c->work = 2.0 * (double)R * (double)T * 64 * 128;
		snprintf(c->shape, sizeof c->shape, "S=%lld T=2048 H=64 D=128", (long long)R);
		return;
	}
	default:
		break;
	}
	c->work = nbytes(c);
}

static dsv32_status run(dsv32_backend *be, bcase *c, dsv32_error *err)
{
	dsv32_tensor *t = c->t;
	switch (c->op) {
	case OP_RMSNORM:
		return dsv32_rmsnorm(be, &t[0], &t[1], &t[2], 1e-6, err);
	case OP_RMSNORM_ADD:
		return dsv32_rmsnorm_add(be, &t[0], &t[1], &t[2], &t[3], &t[4], 1e-6, err);
	case OP_ROPE:
		return dsv32_rope_ref(be, &t[0], &t[1], &t[2], 0, 0, true, err);
	case OP_HADAMARD:
		return dsv32_hadamard(be, &t[0], &t[1], err);
	case OP_SOFTMAX2048:
	case OP_SOFTMAX4096:
		return dsv32_softmax(be, &t[0], &t[1], err);
	case OP_SILU_MUL:
		return dsv32_silu_mul_ref(be, &t[0], &t[1], &t[2], err);
	case OP_ACT_QUANT:
		return dsv32_act_quant(be, &t[0], &t[1], &t[2], false, err);
	case OP_FP8_GEMM:
		return dsv32_fp8_gemm(be, &t[0], &t[1], &t[2], &t[3], &t[4], err);
	case OP_ATTN_PREFILL:
		return dsv32_attn_prefill(be, &t[0], &t[1], &t[2], &t[3], &t[4], 0.0721f,
					  DSV32_ATTN_BSHD, err);
	case OP_ATTN_DECODE:
		return dsv32_attn_decode_absorbed(be, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5],
						  2048, NULL, 0.0721f, err);
	case OP_ROUTER: {
		dsv32_router_params p = {.n_groups = 8, .topk_groups = 4, .topk = 8,
					 .route_scale = 2.5f, .score_func = DSV32_SCORE_SIGMOID,
					 .mode = DSV32_ROUTER_REF};
		return dsv32_router(be, &t[0], &t[1], &t[2], &t[3], &p, err);
	}
	case OP_FP8_INDEX:
		return dsv32_fp8_index(be, &t[0], &t[1], &t[3], &t[2], &t[4], NULL, err);
	case OP_INDEX_HF:
		return dsv32_index_scores_hf(be, &t[0], &t[1], &t[2], &t[3], 0.0884f, NULL, err);
	default:
		return DSV32_FAIL(err, DSV32_E_USAGE, "bench_ops: unknown op");
	}
}

/* Best seconds per call over at least 3 timed runs and g_min_time seconds (after a warm-up);
 * 0 on failure. */
static double best_time(dsv32_backend *be, bcase *c)
{
	dsv32_error err = {0};
	if (run(be, c, &err) != DSV32_OK) {
		fprintf(stderr, "bench_ops: %s: %s\n", OP_NAMES[c->op], err.what);
		return 0.0;
	}
	double best = 1e30, spent = 0.0;
	for (int r = 0; r < 3 || spent < g_min_time; r++) {
		double t0 = now();
		run(be, c, &err);
		double dt = now() - t0;
		best = dt < best ? dt : best;
		spent += dt;
	}
	return best;
}

/* Peer seconds per op (index op_id) for one row count; 0 where the peer has none. */
static void peer(int64_t R, const bool *want, int threads, double *sec, char *note, size_t nlen)
{
	char cmd[1024];
	int n = snprintf(cmd, sizeof cmd, "python3 %s/bench/peer_ops.py --threads %d --min-time %g%s"
			 " --rows %lld", DSV32_SOURCE_DIR, threads, g_min_time,
			 g_cpu_time ? " --cpu-time" : "", (long long)R);
	for (int i = 0; i < OP_COUNT && n > 0 && (size_t)n < sizeof cmd; i++)
		if (want[i])
			n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", OP_NAMES[i]);
	FILE *p = popen(cmd, "r");
	if (!p)
		return;
	char line[512], name[64];
	double s;
	long long r;
	while (fgets(line, sizeof line, p)) {
		if (sscanf(line, "peer %63s %lld %lf", name, &r, &s) == 3) {
			for (int i = 0; i < OP_COUNT; i++)
				if (!strcmp(name, OP_NAMES[i]))
					sec[i] = s;
		} else if (!strncmp(line, "note ", 5)) {
			size_t k = strlen(line + 5) < nlen - 1 ? strlen(line + 5) : nlen - 1;
			memcpy(note, line + 5, k);
			note[k] = '\0';
		}
	}
	pclose(p);
}

int main(int argc, char **argv)
{
	bool with_peer = true, want[OP_COUNT];
	int64_t rows_list[2] = {16, 128};
	int nrows = 2;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-peer"))
			with_peer = false;
		else if (!strcmp(argv[i], "--cpu-time"))
			g_cpu_time = true;
		else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
			g_min_time = atof(argv[++i]);
		else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows_list[0] = atoll(argv[++i]), nrows = 1;
		else if (!strcmp(argv[i], "--op") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: bench_ops [--rows R] [--op NAME] [--no-peer] "
					"[--min-time S] [--cpu-time]\n");
			return 2;
		}
	}
	for (int i = 0; i < OP_COUNT; i++)
		want[i] = !only || strstr(OP_NAMES[i], only) != NULL;
	int threads = 1;
#ifdef _OPENMP
	threads = omp_get_max_threads();
#endif
	dsv32_backend *be = NULL;
	dsv32_error err = {0};
	if (dsv32_backend_create(&be, DSV32_DEV_CPU, &err) != DSV32_OK) {
		fprintf(stderr, "bench_ops: %s\n", err.what);
		return 1;
	}
	printf("threads %d, %s\n\n", threads, g_cpu_time ? "process CPU time" : "wall clock");
	printf("| op | rows | shape | unit | ours | peer | ours/peer |\n|---|---|---|---|---|---|---|\n");
	char note[256] = "";
	for (int ri = 0; ri < nrows; ri++) {
		int64_t R = rows_list[ri];
		double ours[OP_COUNT] = {0}, theirs[OP_COUNT] = {0}, work[OP_COUNT] = {0};
		bool fl[OP_COUNT] = {0};
		char shapes[OP_COUNT][96];
		for (int i = 0; i < OP_COUNT; i++) {
			if (!want[i])
				continue;
			bcase c;
			setup(&c, (op_id)i, R);
			ours[i] = best_time(be, &c);
			work[i] = c.work;
			fl[i] = c.flops;
			memcpy(shapes[i], c.shape, sizeof c.shape);
			for (int k = 0; k < c.nt; k++)
				dsv32_tensor_free(&c.t[k]);
		}
		if (with_peer)
			peer(R, want, threads, theirs, note, sizeof note);
		for (int i = 0; i < OP_COUNT; i++) {
			if (!want[i])
				continue;
			double a = ours[i] > 0 ? work[i] / ours[i] / 1e9 : 0;
			double b = theirs[i] > 0 ? work[i] / theirs[i] / 1e9 : 0;
			printf("| %s | %lld | %s | %s | %.2f | ", OP_NAMES[i], (long long)R, shapes[i],
			       fl[i] ? "GFLOP/s" : "GB/s", a);
			if (b > 0 && a > 0)
				printf("%.2f | %.2f |\n", b, a / b);
			else
				printf("n/a | n/a |\n");
			fflush(stdout);
		}
	}
	if (note[0])
		printf("\npeer: %s", note);
	dsv32_backend_destroy(be);
	return 0;
}
