#!/usr/bin/env bash
# py-venv.sh: the small Python venv the interop tests (tests/py_test_*.py) run in, made from PyPI
# (safetensors, numpy, ml_dtypes, h5py, jsonschema; no torch: the torch tests keep skipping).
#
#   scripts/py-venv.sh                 create or reuse the venv, print its directory
#   scripts/py-venv.sh --ctest [BUILD] then run the Python ctest tests of BUILD (default build/,
#                                      or $DSV32_BUILD_DIR) with the venv's python3 first on
#                                      PATH; fails if one that needs no torch skipped
#   scripts/py-venv.sh --torch [--ctest [BUILD]]
#                                      the same with torch and transformers too, in
#                                      .deps/torch-venv (a few GB from PyPI): the peer of
#                                      bench/bench_forward and the torch tests, which then
#                                      must not skip either
#
# The venv lives in .deps/py-venv (git-ignored; $DSV32_PY_VENV overrides) and is reused while
# its stamp matches PKGS below; otherwise it is rebuilt. Versions are pinned: the e8m0 test
# judges our rounding against ml_dtypes, so a new ml_dtypes must be a deliberate change.
# Exit 2 with a message naming the cause when python3's venv module or PyPI is unavailable.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DSV32_PY_VENV:-$ROOT/.deps/py-venv}"
PKGS="safetensors==0.8.0 numpy==2.4.6 ml_dtypes==0.7.0 h5py==3.16.0 jsonschema==4.25.1"
# Tests that skip here by design (they need torch / transformers).
NEEDS_TORCH='^py_test_(record_transformers|torch_reductions|dpbf16_torch)$'
IMPORTS='safetensors, numpy, ml_dtypes, h5py, jsonschema'
if [ "${1:-}" = "--torch" ]; then
	shift
	VENV="${DSV32_TORCH_VENV:-$ROOT/.deps/torch-venv}"
	# the versions the project's recordings and bench tables were made with
	PKGS="$PKGS torch==2.15.0 transformers==5.25.0"
	# py_test_dpbf16_torch also skips by CPU (its body needs AVX512-BF16 without AMX)
	NEEDS_TORCH='^py_test_dpbf16_torch$'
	IMPORTS="$IMPORTS, torch, transformers"
fi

die() {
	echo "py-venv: $*" >&2
	exit 2
}

venv_ok() {
	[ -x "$VENV/bin/python3" ] && [ "$(cat "$VENV/.dsv32-stamp" 2>/dev/null)" = "$PKGS" ] &&
		"$VENV/bin/python3" -c "import $IMPORTS" 2>/dev/null
}

make_venv() {
	command -v python3 >/dev/null || die "python3 not found (install python3 and python3-venv)"
	rm -rf "$VENV"
	mkdir -p "$(dirname "$VENV")"
	python3 -m venv "$VENV" >/dev/null 2>&1 ||
		die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
	local log="$VENV/pip-install.log"
	# short timeouts: an unreachable index fails in about a minute, not after pip's 15 retries
	if ! "$VENV/bin/python3" -m pip install --disable-pip-version-check --no-input \
		--timeout 20 --retries 2 --only-binary=:all: $PKGS >"$log" 2>&1; then
		tail -n 5 "$log" >&2
		if grep -qiE 'connection|network|resolve|timed out|proxy|ssl' "$log"; then
			die "cannot reach PyPI to install $PKGS (full log: $log)"
		fi
		die "pip install of $PKGS failed (full log: $log)"
	fi
	echo "$PKGS" >"$VENV/.dsv32-stamp"
}

# Run the py_test_* ctest tests; a skip of one that needs no torch is a failure (the venv
# exists so that they run).
run_ctest() {
	local build="$1" out
	[ -f "$build/CTestTestfile.cmake" ] || die "$build is not a configured build directory"
	out="$(mktemp)"
	if ! PATH="$VENV/bin:$PATH" ctest --test-dir "$build" -R '^py_test_' --output-on-failure \
		>"$out" 2>&1; then
		cat "$out"
		rm -f "$out"
		exit 1
	fi
	cat "$out"
	local skipped
	skipped="$(grep -oE 'py_test_[A-Za-z0-9_]+ \.+\*+Skipped' "$out" | cut -d' ' -f1 |
		grep -vE "$NEEDS_TORCH" || true)"
	rm -f "$out"
	[ -z "$skipped" ] || { echo "py-venv: skipped in the venv: $skipped" >&2; exit 1; }
}

venv_ok || make_venv
echo "$VENV"
if [ "${1:-}" = "--ctest" ]; then
	run_ctest "${2:-${DSV32_BUILD_DIR:-$ROOT/build}}"
fi
