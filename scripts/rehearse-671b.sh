#!/usr/bin/env bash
# rehearse-671b.sh: a full-size rehearsal of the DeepSeek V3.2 (671B) checkpoint without 690 GB.
#
#   scripts/rehearse-671b.sh [--keep] [DIR]
#
# Writes the v3.2 preset as a SPARSE fp8 checkpoint (fixture --sparse --max-shard-size 5GB: the
# real names, shapes, dtypes, MTP layer 61 and ~690 GB of apparent size in 5 GB shards, but every
# tensor of >= 1 MiB is a hole that reads as zeros, so it takes ~0.5 GB of disk), then runs, one
# at a time and under /usr/bin/time (wall seconds, peak RSS):
#   inspect                      must list 92,425 tensors: the 90,854 the config expects, 0
#                                missing/unexpected/mismatched, 1,571 MTP tensors (layer 61)
#   run --layout ref --layers 4  --tokens 5,17,42 --max-new-tokens 2
#   run --layout hf  --layers 4  the same
#   compare --layers 4           --prompt-len 16 --batch 1 --decode-steps 1 --json
#   compare (all 61 layers)      --prompt-len 16 --batch 1 --decode-tokens 0 --order layer --json:
#                                both passes layer-major (core/model.h "Layer-major": each layer
#                                runs every step and is released), so one layer per side is
#                                resident; its peak RSS must be <= 1.5x the 4-layer compare's
# and prints a summary table (docs/real-checkpoint.md holds one). The weights are zeros: this
# checks shapes, the name map at full scale, memory and time, NOT numerics.
# `convert hf-to-ref` is deliberately not run: its output of a sparse input is ~690 GB of dense
# zeros.
#
# DIR: where the checkpoint and logs go (default: a temporary directory, removed at the end
# unless --keep). The filesystem must support sparse files (the fixture refuses otherwise).
# Needs ~0.6 GB of disk and ~9 GB of RAM (the 4-layer compare). Build: $DSV32_BUILD_DIR (default
# build/).
# The 61-layer compare is the slowest step (2.7 min on 2 AMD Zen 5 cores on 2026-12-07, 17.6 min
# on a loaded machine the day before; docs/real-checkpoint.md); REHEARSE_61=0 leaves it out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${DSV32_BUILD_DIR:-$ROOT/build}"
BIN="$BUILD/dsv32-parity"
KEEP=0
GIVEN=0
DIR=""
for a in "$@"; do
	case "$a" in
	--keep) KEEP=1 ;;
	-h|--help) sed -n '2,29p' "$0"; exit 0 ;;
	-*) echo "rehearse-671b.sh: unknown option $a" >&2; exit 2 ;;
	*) DIR="$a"; GIVEN=1 ;;
	esac
done
[ -x "$BIN" ] || { echo "rehearse-671b.sh: $BIN not built (set DSV32_BUILD_DIR)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "rehearse-671b.sh: /usr/bin/time is needed" >&2; exit 2; }
if [ -z "$DIR" ]; then
	DIR="$(mktemp -d "${TMPDIR:-/tmp}/dsv32-rehearse.XXXXXX")"
	[ "$KEEP" = 1 ] || trap 'rm -rf "$DIR"' EXIT
fi
mkdir -p "$DIR"
CKPT="$DIR/v3.2-sparse"
LOG="$DIR/logs"
mkdir -p "$LOG"
ROWS=()
FAILED=0

# step NAME CHECK-DESCRIPTION -- command...: run under /usr/bin/time, record a table row
step() {
	local name="$1"; shift
	echo "== $name: $*" >&2
	local rc=0
	/usr/bin/time -f "%e %M" -o "$LOG/$name.time" "$@" >"$LOG/$name.out" 2>"$LOG/$name.err" || rc=$?
	local wall rss
	read -r wall rss < <(tail -1 "$LOG/$name.time")
	ROWS+=("$(printf '| %-14s | %4s | %8s | %14.2f |' "$name" "$rc" "$wall" "$(echo "$rss" | awk '{print $1/1048576}')")")
	if [ "$rc" != 0 ]; then
		FAILED=1
		echo "   FAILED (exit $rc); last lines:" >&2
		tail -5 "$LOG/$name.err" >&2
	fi
	return 0
}

step fixture "$BIN" fixture --preset v3.2 --dtype fp8 --sparse --max-shard-size 5GB --force \
	--out "$CKPT"
cat "$LOG/fixture.err" >&2
step inspect "$BIN" inspect "$CKPT"
# the inspect checks: the real tensor count, full coverage, the MTP layer seen and ignored
if ! grep -q '^total: 92425 tensors' "$LOG/inspect.out" ||
   ! grep -q '90854 expected, 0 missing, 0 unexpected, 0 mismatched, 1571 MTP tensors ignored: OK' \
	"$LOG/inspect.out"; then
	echo "   inspect: expected 92425 tensors = 90854 + 1571 MTP, full coverage; got:" >&2
	grep -E '^(total|coverage)' "$LOG/inspect.out" >&2 || true
	FAILED=1
fi
grep -E '^(total|coverage)' "$LOG/inspect.out" >&2 || true
step run-ref "$BIN" run --layout ref --checkpoint "$CKPT" --layers 4 --tokens 5,17,42 \
	--max-new-tokens 2
step run-hf "$BIN" run --layout hf --checkpoint "$CKPT" --layers 4 --tokens 5,17,42 \
	--max-new-tokens 2
step compare "$BIN" compare --checkpoint "$CKPT" --layers 4 --prompt-len 16 --batch 1 \
	--decode-steps 1 --json "$LOG/compare.json" --quiet --force
# the whole model in one pass over its weights: the decode token is given (zero weights give
# greedy id 0 anyway), so every pass can run layer by layer
if [ "${REHEARSE_61:-1}" != 0 ]; then
	step compare-61 "$BIN" compare --checkpoint "$CKPT" --prompt-len 16 --batch 1 \
		--decode-tokens 0 --order layer --json "$LOG/compare-61.json" --quiet --force
	rss4=$(tail -1 "$LOG/compare.time" | cut -d' ' -f2)
	rss61=$(tail -1 "$LOG/compare-61.time" | cut -d' ' -f2)
	echo "   compare-61: peak RSS ${rss61} KB vs ${rss4} KB for --layers 4 ($(awk -v a="$rss61" \
		-v b="$rss4" 'BEGIN {printf "%.2f", a / b}')x; limit 1.5x)" >&2
	if [ "$((rss61 * 2))" -gt "$((rss4 * 3))" ]; then
		echo "   compare-61: peak RSS above 1.5x the 4-layer compare's" >&2
		FAILED=1
	fi
	if ! grep -q '"order":[[:space:]]*"layer"' "$LOG/compare-61.json"; then
		echo "   compare-61: the report does not say order layer" >&2
		FAILED=1
	fi
fi

# ids: zero weights give all-zero logits, so greedy picks id 0; both layouts must agree
for s in run-ref run-hf; do
	echo "   $s generated: $(tail -1 "$LOG/$s.out")" >&2
done
if [ "$(tail -1 "$LOG/run-ref.out")" != "$(tail -1 "$LOG/run-hf.out")" ]; then
	echo "   run-ref and run-hf generated different ids" >&2
	FAILED=1
fi
APP=$(du -s --apparent-size --block-size=1 "$CKPT" | cut -f1)
ALLOC=$(du -s --block-size=1 "$CKPT" | cut -f1)
NFILES=$(find "$CKPT" -name '*.safetensors' | wc -l)

echo
echo "DeepSeek V3.2 sparse rehearsal ($(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
printf 'checkpoint: %s safetensors files, apparent %.1f GB, allocated %.2f GB\n' "$NFILES" \
	"$(echo "$APP" | awk '{print $1/1e9}')" "$(echo "$ALLOC" | awk '{print $1/1e9}')"
echo
echo "| step           | exit | wall (s) | peak RSS (GiB) |"
echo "|----------------|------|----------|----------------|"
printf '%s\n' "${ROWS[@]}"
echo
echo "logs: $LOG$([ "$KEEP" = 1 ] || [ "$GIVEN" = 1 ] || echo ' (removed at exit; --keep keeps them)')"
if [ "$FAILED" != 0 ]; then
	echo "rehearse-671b.sh: FAILED" >&2
	exit 1
fi
echo "rehearse-671b.sh: OK"
