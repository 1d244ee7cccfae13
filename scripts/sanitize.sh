#!/usr/bin/env bash
# sanitize.sh [CTEST ARGS...]: build the whole project with ASan + UBSan (-DDSV32_SANITIZE=ON,
# CUDA off) into its own directory and run the ctest suite under it. Any sanitizer report fails
# the test that produced it: UBSan aborts (-fno-sanitize-recover), ASan reports leaks at exit.
#   DSV32_SANITIZE_BUILD_DIR  build directory (default build-sanitize/)
#   DSV32_SANITIZE_JOBS       parallel compile and test jobs (default: nproc)
# Extra arguments go to ctest (e.g. -R safetensors). Docs: docs/robustness.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
JOBS="${DSV32_SANITIZE_JOBS:-$(nproc)}"
"$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DDSV32_SANITIZE=ON -DDSV32_ENABLE_CUDA=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$JOBS"
# detect_leaks: leaks fail the test. abort_on_error/halt_on_error: the first report ends the test
# with a non-zero status ctest sees. OpenMP/OpenBLAS/oneDNN keep thread pools alive to exit,
# which LeakSanitizer does not count as leaks (still reachable through globals).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# keep thread pools small: 2 cores in CI, and ASan multiplies memory per thread
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# the hostile CLI rows' per-row limit (tests/hostile/lib.sh): a tiny attribute run (33 model
# pairs) takes over a minute under ASan when another suite runs beside it
export DSV32_HOSTILE_ROW_TIMEOUT="${DSV32_HOSTILE_ROW_TIMEOUT:-300}"
cd "$BUILD"
ctest --output-on-failure -j"$JOBS" "$@"
