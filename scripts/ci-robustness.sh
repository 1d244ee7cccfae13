#!/usr/bin/env bash
# ci-robustness.sh: the robustness gate of .ci/run (issue 9), about 10 minutes on 2 cores:
#   1. the ctest suite built with ASan + UBSan (scripts/sanitize.sh, build-sanitize/), minus the
#      slowest end-to-end tests (DSV32_CI_SANITIZE_EXCLUDE, a ctest -E regex; under ASan they
#      take 3-5 minutes each and run unsanitized in the normal suite; "" runs everything, as
#      `scripts/sanitize.sh` alone does)
#   2. every libFuzzer target for a short fixed time over the committed seed corpus
#      (scripts/fuzz.sh, DSV32_CI_FUZZ_SECONDS per target, default 7: about a minute in all)
#   3. the CLI end to end under valgrind memcheck on the tiny preset (scripts/valgrind-cli.sh:
#      fixture, inspect, run; compare too when DSV32_CI_VALGRIND_COMPARE=1, it takes minutes)
#      on the normal build (build/ or $DSV32_BUILD_DIR; built here if missing)
# It installs what it needs beyond scripts/install-deps.sh (clang-14 + its runtime libraries
# for libFuzzer, valgrind) with apt-get when missing. DSV32_CI_ROBUSTNESS_SKIP="valgrind" (or
# "sanitize", "fuzz") leaves a part out. Exit status: non-zero if any part fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SKIP=" ${DSV32_CI_ROBUSTNESS_SKIP:-} "
"$ROOT/scripts/install-deps.sh"

# ---- extra packages ----
need=()
command -v clang-14 >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || need+=(clang-14)
ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
	need+=(libclang-rt-14-dev)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
	echo "ci-robustness: installing ${need[*]}" >&2
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

status=0
t0=$SECONDS
part() { printf '\n=== ci-robustness: %s (at %ds)\n' "$1" $((SECONDS - t0)); }

if [[ "$SKIP" != *" sanitize "* ]]; then
	part "sanitizer suite (ASan + UBSan, ctest)"
	excl="${DSV32_CI_SANITIZE_EXCLUDE-^(test_cli_compare|test_ref_props|test_ref_golden|test_golden_compare|test_ref_cli|py_test_torch_reductions|py_test_record_transformers|test_attribute_complete_hf|test_hf_knobs_rest|sh_test_layer_major_rss)\$}"
	if [ -n "$excl" ]; then
		echo "ci-robustness: not under sanitizers here (slow): $excl"
		"$ROOT/scripts/sanitize.sh" -E "$excl" || status=1
	else
		"$ROOT/scripts/sanitize.sh" || status=1
	fi
fi

if [[ "$SKIP" != *" fuzz "* ]]; then
	part "fuzz targets, ${DSV32_CI_FUZZ_SECONDS:-7} s each"
	FUZZ_OUT="${FUZZ_OUT:-$ROOT/build-fuzz-lf}" "$ROOT/scripts/fuzz.sh" "${DSV32_CI_FUZZ_SECONDS:-7}" || status=1
fi

if [[ "$SKIP" != *" valgrind "* ]]; then
	part "CLI under valgrind memcheck"
	BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"
	[ -x "$BUILD/dsv32-parity" ] || DSV32_BUILD_DIR="$BUILD" "$ROOT/scripts/build.sh"
	steps="1 2 4"
	if [ "${DSV32_CI_VALGRIND_COMPARE:-0}" = 1 ]; then steps="1 2 3 4"; fi
	DSV32_VALGRIND_STEPS="$steps" "$ROOT/scripts/valgrind-cli.sh" "$BUILD" || status=1
fi

part "done, status $status"
exit $status
