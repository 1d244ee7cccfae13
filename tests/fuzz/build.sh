#!/usr/bin/env bash
# tests/fuzz/build.sh [OUTDIR]: build every libFuzzer target (tests/fuzz/fuzz_*.c) with clang,
# -fsanitize=fuzzer,address,undefined. The library sources a target needs are compiled directly
# (no CMake): the parsers of core/, compare/ and reports/ go into one archive, so each target
# links only what it uses. Default OUTDIR: build-fuzz-lf/ at the repository root.
# FUZZ_SRC_ROOT=DIR takes the library sources and headers from DIR instead of this checkout
# (to try a fix in a scratch copy before proposing it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/build-fuzz-lf}"
CC="${FUZZ_CC:-}"
if [ -z "$CC" ]; then
	for c in clang-14 clang; do
		if command -v "$c" >/dev/null 2>&1; then CC="$c"; break; fi
	done
fi
[ -n "$CC" ] || { echo "fuzz/build.sh: clang not found (apt-get install clang-14)" >&2; exit 2; }
mkdir -p "$OUT/obj"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
SRC="${FUZZ_SRC_ROOT:-$ROOT}"
CFLAGS="-std=c11 -O1 -g -D_GNU_SOURCE -DDSV32_VERSION=\"fuzz\" -DDSV32_SOURCE_DIR=\"$ROOT\" -I$SRC -I$ROOT $(pkg-config --cflags hdf5)"
LIBSRC="core/error.c core/dtype.c core/tensor.c core/fsutil.c core/infile.c core/safetensors.c core/st_ckpt.c
	core/st_writer.c core/bgwrite.c core/config.c core/tokens.c core/rng.c
	core/taps.c compare/budget.c compare/result.c compare/metrics.c
	compare/check.c compare/tapfile.c compare/tapfile_h5.c compare/tapstore.c
	reports/json.c reports/markdown.c reports/html.c reports/console.c"
objs=()
pids=()
for src in $LIBSRC; do
	o="$OUT/obj/$(echo "$src" | tr / _).o"
	objs+=("$o")
	if [ ! -e "$o" ] || [ "$SRC/$src" -nt "$o" ] || [ -n "$(find "$SRC/core" "$SRC/compare" "$SRC/reports" -name '*.h' -newer "$o" 2>/dev/null | head -1)" ]; then
		# library code is not ours to warn about here: its own build uses -Werror with gcc
		"$CC" $CFLAGS $SAN -fsanitize=fuzzer-no-link -w -c "$SRC/$src" -o "$o" &
		pids+=($!)
		if [ ${#pids[@]} -ge "${FUZZ_JOBS:-2}" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
	fi
done
for p in "${pids[@]}"; do wait "$p"; done
rm -f "$OUT/libdsv32fuzz.a"
ar rcs "$OUT/libdsv32fuzz.a" "${objs[@]}"
LIBS="$(pkg-config --libs libcjson libcrypto hdf5 2>/dev/null || echo -lcjson -lcrypto -lhdf5_serial) -lm -pthread"
for h in "$ROOT"/tests/fuzz/fuzz_*.c; do
	name="$(basename "$h" .c)"
	"$CC" $CFLAGS $SAN -fsanitize=fuzzer -Wall -Wextra -Werror "$h" "$OUT/libdsv32fuzz.a" \
		$LIBS -o "$OUT/$name"
done
echo "fuzz targets in $OUT: $(cd "$OUT" && ls fuzz_* | tr '\n' ' ')"
