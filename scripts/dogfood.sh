#!/usr/bin/env bash
# dogfood.sh: the project checks itself with its own harness (issue 7). Runs the ref-vs-hf drift
# report on the built-in tiny model with the fixed GEMM engine, checks it against the committed
# baseline with `report check --exact` (the fixed engine gives the same bits on every machine,
# so every figure must be identical: issue 13), and writes the Markdown summary where a CI
# system shows it ($GITHUB_STEP_SUMMARY when set, else the build folder).
# Refresh the baseline after an intended numerical change: scripts/dogfood.sh --update
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"
CLI="$BUILD/dsv32-parity"
BASE="$ROOT/reports/baseline/tiny-ref-vs-hf.json"
OUT="$BUILD/dogfood"
mkdir -p "$OUT"
args=(compare --gemm fixed --decode-steps 3 --seed 1 --quiet --force --json "$OUT/report.json"
      --markdown "$OUT/summary.md" --html "$OUT/report.html")
rc=0
"$CLI" "${args[@]}" || rc=$?
if [ "$rc" -gt 1 ]; then echo "dogfood: compare failed (exit $rc)" >&2; exit "$rc"; fi
if [ "${1:-}" = "--update" ]; then
  cp "$OUT/report.json" "$BASE"
  echo "dogfood: baseline updated: $BASE"
  exit 0
fi
SUMMARY="${GITHUB_STEP_SUMMARY:-$OUT/step-summary.md}"
cat "$OUT/summary.md" >> "$SUMMARY"
echo "dogfood: Markdown summary appended to $SUMMARY; HTML report $OUT/report.html"
check_rc=0
"$CLI" report check --exact --baseline "$BASE" --current "$OUT/report.json" > "$OUT/check.txt" \
  || check_rc=$?
tail -n 5 "$OUT/check.txt"
if [ "$check_rc" -ne 0 ]; then echo "dogfood: figures differ from the baseline" >&2; exit 1; fi
if [ "$rc" -ne 0 ]; then echo "dogfood: taps over the shipped budget" >&2; exit 1; fi
