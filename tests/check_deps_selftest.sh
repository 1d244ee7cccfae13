#!/usr/bin/env bash
# tests/check_deps_selftest.sh [BUILD_DIR]: prove scripts/check-deps.sh both passes on a good build
# and bites: with ocl-icd-opencl-dev dropped from PKGS (the package issue 13 was about, used only
# through oneDNN's CMake config) it must exit 1 and name that package. Without the second case a
# check that always said OK would look exactly like a working one.
# Needs a finished build (default $DSV32_BUILD_DIR or <root>/build). Exit 0 pass, 1 fail.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-${DSV32_BUILD_DIR:-$ROOT/build}}"
CHECK="$ROOT/scripts/check-deps.sh"
fail=0

rc=0; out="$(CHECK_DEPS_DROP='' "$CHECK" "$BUILD" 2>&1)" || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "ok 1 - check-deps passes on the build as configured"
else
  echo "not ok 1 - check-deps exited $rc on the build as configured:"; echo "$out"; fail=1
fi

rc=0; out="$(CHECK_DEPS_DROP=ocl-icd-opencl-dev "$CHECK" "$BUILD" 2>&1)" || rc=$?
if [ "$rc" -eq 1 ] && grep -q 'FAIL: ocl-icd-opencl-dev .*add it to PKGS' <<<"$out"; then
  echo "ok 2 - dropping ocl-icd-opencl-dev fails and names it"
else
  echo "not ok 2 - dropping ocl-icd-opencl-dev: exit $rc (want 1 naming the package):"; echo "$out"
  fail=1
fi
exit "$fail"
