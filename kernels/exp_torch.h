/* exp_torch.h: exp as PyTorch's CPU kernels compute it, and the element-wise ops of the models
 * that use it (silu, sigmoid), bit for bit (issue #17; docs/exp-torch.md).
 *
 * Exp rules (dsv32_exp_rule; names "libm" and "torch-cpu"):
 *   libm       every exp is the running libm's expf (glibc: correctly rounded in most cases,
 *              kernels/expf_avx2.h). The default; what the op contracts (silu.h, router.h) say.
 *   torch-cpu  what torch's CPU kernel returns for the whole tensor: ATen's cpu_kernel_vec runs
 *              each contiguous run of elements through a vector body, two vectors at a time,
 *              and the remainder through the scalar op (below, "Which elements"). The vector
 *              body's exp is Sleef's expf_u10 (Vectorized<float>::exp(): Sleef_expf16_u10 under
 *              AVX512, Sleef_expf8_u10 under AVX2); the scalar op's is std::exp = libm expf.
 *              Under torch's DEFAULT capability Vectorized<float>::exp is std::exp per lane:
 *              every element is libm's expf.
 *
 * dsv32_expf_sleef_u10(x)   Sleef's expf_u10 as its FMA builds (AVX2, AVX512F) compute it,
 *   in fp32; every fma below is one rounding (fmaf), every other op one IEEE fp32 rounding:
 *     q  = rint(x · R)                  R = fp32(1/ln 2); x·R rounded, then to nearest-even
 *     s  = fma(q, -L2U, x);  s = fma(q, -L2L, s)        L2U + L2L = ln 2 (Cody-Waite, fp32)
 *     u  = c5; u = fma(u, s, c_i) for c4, c3, c2, c1, c0 (c0 = 0.5)   (Horner, fused)
 *     u  = 1 + fma(s·s, u, s)           (s·s rounded; one add)
 *     u  = (u · 2^(q>>1)) · 2^(q − (q>>1))   (two exact-power multiplies: subnormals round once)
 *     x < -104: +0;  x > 100: +inf;  NaN: NaN (Sleef returns the all-ones pattern 0xffffffff)
 *   <= 1 ulp from exp (tests/test_exp_torch.c checks it against exp() in double).
 * dsv32_torch_cpu_is_vec(i, n, inner, threads, step)
 *   Whether element i of a tensor of n elements takes the vector body of cpu_kernel_vec:
 *     threads: at::parallel_for(0, n, 32768): with threads > 1 and n > 32768 the range splits
 *       into nt = min(threads, ceil(n / 32768)) chunks of ceil(n / nt) (the last shorter);
 *       otherwise one chunk [0, n).
 *     inner: the innermost dimension the TensorIterator could not coalesce (n for a contiguous
 *       tensor; I for HF's `gate` = gate_up.chunk(2, -1)[0], rows of I with stride 2I): a chunk
 *       is cut into its row pieces, and each piece is one call of vectorized_loop.
 *     step: elements per vector-loop iteration, 2 · Vectorized<scalar_t>::size(): fp32 16
 *       (AVX2) or 32 (AVX512); bf16 32 (AVX2) or 64 (AVX512); dsv32_torch_cpu_step.
 *     Element i is vector iff it lies in the first floor(len / step) · step elements of its
 *     piece (len = the piece's length); the rest of the piece is the scalar tail.
 * dsv32_silu_torch_cpu(y, yt, x, xt, n, inner, threads, cap)     torch.nn.functional.silu
 *   x [n] BF16 or F32, y [n] BF16 or F32 (the same dtype as torch writes x's; F32 y from BF16
 *   x: the fp32 value before the bf16 rounding). Per element, fp32: v = f32(x);
 *     y = v / (1 + e), e = expf_u10(−v) (vector) or expf(−v) (scalar tail); BF16: one RNE.
 *   step = dsv32_torch_cpu_step(cap, xt). y may alias x.
 * dsv32_sigmoid_torch_cpu(y, x, n, inner, threads, cap)          torch.sigmoid, F32
 *   y = 1 / (1 + e), e = expf_u10(0 − x) (vector) or expf(−x) (scalar tail). y may alias x.
 * Rounds: exp as above; then one fp32 add, one fp32 divide (the vector body's reciprocal is a
 *   true 1/a); BF16 output: one RNE. No FMA outside exp.
 * NaN:    NaN in, NaN out (sign and payload unspecified, docs/numerics.md "NaN").
 * Checked: bit-identical to torch 2.15.0 (Linux x86_64 wheel, GCC 13.3, glibc 2.36 libm)
 *   on the cases of fixtures/exp_torch/ (tests/test_exp_torch.c), for the capabilities
 *   AVX512, AVX2 and DEFAULT (ATEN_CPU_CAPABILITY) and 1 and 2 threads. Other torch versions,
 *   non-x86 capabilities (SVE, VSX, ZVECTOR) and torch's MKL/VML paths: not checked, not
 *   reproduced. CPU only: torch's CUDA kernels use CUDA's expf (the libm rule's device body).
 */
#ifndef DSV32_EXP_TORCH_H
#define DSV32_EXP_TORCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum {
	DSV32_EXP_LIBM = 0,    /* "libm": expf everywhere */
	DSV32_EXP_TORCH_CPU,   /* "torch-cpu": torch's CPU kernels (Sleef vector body, libm tail) */
	DSV32_EXP_RULE_COUNT   /* append only, above this line */
} dsv32_exp_rule;

/* torch.backends.cpu.get_cpu_capability() of the recording: which vector body ran. */
typedef enum {
	DSV32_TORCH_CAP_DEFAULT = 0, /* "DEFAULT": no vector exp, libm for every element */
	DSV32_TORCH_CAP_AVX2,        /* "AVX2": 8 fp32 lanes, Sleef_expf8_u10 */
	DSV32_TORCH_CAP_AVX512,      /* "AVX512": 16 fp32 lanes, Sleef_expf16_u10 */
	DSV32_TORCH_CAP_COUNT        /* append only, above this line */
} dsv32_torch_cap;

#define DSV32_TORCH_GRAIN 32768 /* at::internal::GRAIN_SIZE */

const char *dsv32_exp_rule_name(dsv32_exp_rule rule);                 /* "?" out of range */
bool dsv32_exp_rule_from_name(const char *name, dsv32_exp_rule *out); /* false if none */
const char *dsv32_torch_cap_name(dsv32_torch_cap cap);                /* "?" out of range */
bool dsv32_torch_cap_from_name(const char *name, dsv32_torch_cap *out);
/* The capability torch would pick on this CPU (AVX512 needs avx512f/bw/vl/dq, AVX2 needs
 * avx2 and fma): what the hf layout assumes for exp=torch-cpu. */
dsv32_torch_cap dsv32_torch_cap_of_host(void);
/* Elements per vectorized_loop iteration for elements of dtype dt (F32 or BF16);
 * 0 under DEFAULT (no element differs from libm there). */
int64_t dsv32_torch_cpu_step(dsv32_torch_cap cap, dsv32_dtype dt);

float dsv32_expf_sleef_u10(float x);
bool dsv32_torch_cpu_is_vec(int64_t i, int64_t n, int64_t inner, int threads, int64_t step);

/* How an op that calls exp follows a rule (silu.h dsv32_silu_mul_*_rule, router.h): */
typedef struct {
	dsv32_exp_rule rule; /* libm: the op's own contract; torch-cpu: the drivers below */
	int threads;         /* torch's intra-op threads (torch.get_num_threads()), >= 1 */
	dsv32_torch_cap cap; /* torch's CPU capability */
	int64_t inner;       /* 0: the op's input tensor is contiguous (one run of n); else the
			      * length of its rows, torch's uncoalesced inner dimension */
} dsv32_exp_opts;

/* The exp options of a torch-cpu run on this host: threads = omp_get_max_threads() (our own
 * OpenMP team: OMP_NUM_THREADS, else the CPUs), which is torch's default where the CPUs are
 * physical cores (torch 2.15: OMP_NUM_THREADS or MKL_NUM_THREADS, else the physical cores; on
 * the 2-core recording machine both are 2; set OMP_NUM_THREADS to the recording's
 * torch.get_num_threads() elsewhere); cap = dsv32_torch_cap_of_host(); inner 0. */
dsv32_exp_opts dsv32_exp_opts_torch_cpu_host(void);

/* Arguments are trusted (the callers checked them): n >= 0, 1 <= inner, threads >= 1. */
void dsv32_silu_torch_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t n,
			  int64_t inner, int threads, dsv32_torch_cap cap);
void dsv32_sigmoid_torch_cpu(float *y, const float *x, int64_t n, int64_t inner, int threads,
			     dsv32_torch_cap cap);

#endif
