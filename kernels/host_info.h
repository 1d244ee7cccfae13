/* host_info.h: the fingerprint of the machine and GEMM engine that produced a set of numbers.
 *
 * Our outputs are a property of the code only under the fixed GEMM engine (gemm.h "Engines");
 * under the host engine they follow the kernels oneDNN and OpenBLAS pick for this CPU. Every
 * report, recording and golden states the fingerprint so that a reader can tell whether two
 * sets of numbers are expected to agree bit for bit.
 *
 * Fields (strings are never NULL, "" when unknown):
 *   engine        "fixed" or "host"
 *   fixed_body    the fixed engine's body here: "avx512bf16", "avx512", "avx2" or "scalar"
 *                 (the same bits)
 *   cpu_model     /proc/cpuinfo "model name" (or the CPUID vendor when absent)
 *   isa           the ISA flags that change numerics of some body: fma avx2 avx512f
 *                 avx512_bf16 amx_bf16 (those present, space separated)
 *   onednn_impl   the host engine's bf16 GEMM body (dsv32_gemm_bf16_impl(): oneDNN's
 *                 implementation name, or our fallback and why); honours DNNL_MAX_CPU_ISA
 *   openblas_core OpenBLAS's kernel family (openblas_get_corename(); honours
 *                 OPENBLAS_CORETYPE)
 *   versions      "oneDNN X.Y.Z, OpenBLAS <config>"
 *   threads       OpenMP threads (omp_get_max_threads())
 *
 * The numerics key is the part that decides the bits: "fixed" for the fixed engine (on every
 * machine), "host:<onednn_impl>|<openblas_core>" for the host engine. Two runs of the same code
 * and inputs with equal keys give the same bits (thread counts do not change them; tested).
 */
#ifndef DSV32_HOST_INFO_H
#define DSV32_HOST_INFO_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
	char engine[8];
	char fixed_body[16];
	char cpu_model[96];
	char isa[96];
	char onednn_impl[192];
	char openblas_core[48];
	char versions[256];
	int threads;
} dsv32_host_fingerprint;

/* Fill f for a backend using gemm engine `engine` (DSV32_GEMM_FIXED or DSV32_GEMM_HOST). */
void dsv32_host_fingerprint_get(dsv32_host_fingerprint *f, int engine);
/* The numerics key of f (see above) into out. */
void dsv32_host_numerics_key(const dsv32_host_fingerprint *f, char *out, size_t len);
/* One line, e.g. "engine fixed (avx2); Intel(R) Xeon(R) ...; isa fma avx2 ...; onednn ...;
 * openblas ...; 2 threads; oneDNN 3.x, OpenBLAS ...". */
void dsv32_host_fingerprint_line(const dsv32_host_fingerprint *f, char *out, size_t len);

/* OpenBLAS falls back to its generic SSE3 kernels ("Prescott") on CPU models newer than the
 * release knows: Debian's 0.3.21 does on an Intel Xeon of model 207, where the host engine's
 * F32 GEMMs then ran 3-4x below the speed its AVX-512 kernels reach (bench_gemm, 2026-12-07).
 * When that is the case here (OpenBLAS on such a core family on a CPU with AVX2), writes a
 * one-line note into out naming the OPENBLAS_CORETYPE this CPU can run, and returns true. */
bool dsv32_host_blas_slow_note(char *out, size_t len);
/* The same decision for a given core family and CPU features (the testable part). */
bool dsv32_host_blas_slow_note_for(const char *core, bool avx2, bool avx512f, bool avx512bf16,
				   char *out, size_t len);

#endif
