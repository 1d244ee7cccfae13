#!/usr/bin/env bash
# demo.sh: install, build and run the demo (README command 1): the built-in tiny model in both
# layouts, compared tap by tap (dsv32-parity compare with no arguments).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh"
"$BUILD/dsv32-parity" compare "$@"
