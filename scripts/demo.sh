#!/usr/bin/env bash
# demo.sh: install, build and run the demo on the built-in tiny model (README command 1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$BUILD/dsv32-parity" fixture --preset tiny --out "$OUT/tiny"
"$BUILD/dsv32-parity" inspect "$OUT/tiny"
