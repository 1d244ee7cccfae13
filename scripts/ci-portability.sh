#!/usr/bin/env bash
# ci-portability.sh: the numbers must not depend on the CPU CI happens to land on (issue 13).
# After the main test run (which uses the fixed GEMM engine), this runs on the same build:
#  - the golden suites on the HOST engine (oneDNN/OpenBLAS) as found, and with oneDNN and
#    OpenBLAS told to act as other CPUs: DNNL_MAX_CPU_ISA=AVX2 + OPENBLAS_CORETYPE=Haswell
#    always, DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 where the CPU has AMX. Each golden test then runs
#    its portable tier, and its exact tier where the emulated key has measured budgets (the
#    AVX2/Haswell one does); every test prints which tier ran and why;
#  - dogfood (fixed engine, exact check against the baseline) under the same emulations;
#  - the fixed-engine dump hash test (bit-identical dumps across these settings and 1/2
#    threads) and the package self-check's self-test.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"

emulations=("" "DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell")
if grep -qw amx_bf16 /proc/cpuinfo 2>/dev/null; then
  emulations+=("DNNL_MAX_CPU_ISA=AVX512_CORE_BF16")
fi

for emu in "${emulations[@]}"; do
  echo "== ci-portability: golden suites, host GEMM engine, ${emu:-CPU as found}"
  # shellcheck disable=SC2086  # emu is a list of NAME=VALUE words
  (cd "$BUILD" && env $emu DSV32_TEST_GEMM=host ctest --output-on-failure -j"$(nproc)" \
     -R 'test_(ref|hf)_golden|test_golden_compare')
  if [ -n "$emu" ]; then
    echo "== ci-portability: dogfood (fixed engine, exact), $emu"
    # shellcheck disable=SC2086
    env $emu "$ROOT/scripts/dogfood.sh"
  fi
done
echo "== ci-portability: fixed-engine dumps bit-identical across CPUs and threads"
(cd "$BUILD" && ctest --output-on-failure -R 'test_dump_fixed_hash|test_gemm_fixed')
echo "== ci-portability: the package self-check bites"
"$ROOT/tests/check_deps_selftest.sh" "$BUILD"
