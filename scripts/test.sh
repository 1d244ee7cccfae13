#!/usr/bin/env bash
# test.sh: install, build and run the whole test suite through ctest (README command 2).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh"
# Fail here, not on the next clean machine, when the build used a package install-deps.sh does
# not pull in (issue 13: ocl-icd-opencl-dev arrived only as a Recommends).
"$ROOT/scripts/check-deps.sh" "$BUILD"
cd "$BUILD"
ctest --output-on-failure -j"$(nproc)" "$@"
