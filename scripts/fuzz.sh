#!/usr/bin/env bash
# fuzz.sh [SECONDS]: build the libFuzzer targets (tests/fuzz/build.sh) and run each one for
# SECONDS (default 600, i.e. 80 minutes for the 8 targets: the documented long run), one after
# the other, starting from the committed seed corpus tests/fuzz/corpus/<target>/ (every seed is
# executed first, so the seeds are also a regression suite).
#   FUZZ_TARGETS="st_header tokens"  run a subset (names without the fuzz_ prefix)
#   FUZZ_OUT=DIR                     build and work directory (default build-fuzz-lf/)
#   FUZZ_JOBS=N                      compile jobs (default 2)
# New corpus entries go to $FUZZ_OUT/corpus/<target>/ (never into the committed corpus: copy
# interesting ones by hand), crashes, leaks and timeouts to $FUZZ_OUT/findings/<target>/. A
# summary line per target gives executions, exec/s, corpus size and the verdict; the exit
# status is 1 if any target found something. Docs: docs/robustness.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-600}"
OUT="${FUZZ_OUT:-$ROOT/build-fuzz-lf}"
TARGETS="${FUZZ_TARGETS:-st_header st_index config_hf config_ref budget report tokens tapfile}"
"$ROOT/tests/fuzz/build.sh" "$OUT" >/dev/null
fail=0
for t in $TARGETS; do
	bin="$OUT/fuzz_$t"
	seeds="$ROOT/tests/fuzz/corpus/$t"
	[ -x "$bin" ] || { echo "fuzz.sh: no target fuzz_$t" >&2; exit 2; }
	mkdir -p "$OUT/corpus/$t" "$OUT/findings/$t"
	log="$OUT/findings/$t/fuzz.log"
	rc=0
	# -timeout: an input that takes 10 s is a hang; -rss_limit_mb: a parser that allocates
	# what a hostile size field asks for is a finding; leaks are findings (ASan detect_leaks)
	ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
	UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
		"$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$OUT/findings/$t/" "$OUT/corpus/$t" "$seeds" >"$log" 2>&1 || rc=$?
	execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
	speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
	ncorp="$(find "$OUT/corpus/$t" -type f | wc -l)"
	if [ "$rc" = 0 ]; then
		verdict="no findings"
	else
		fail=1
		art="$(ls -t "$OUT/findings/$t"/ 2>/dev/null | grep -v '^fuzz.log$' | head -1)"
		verdict="FINDING (exit $rc): $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$log" | cut -c1-160) -> $OUT/findings/$t/$art"
	fi
	printf 'fuzz: %-10s %ss  %12s execs  %8s exec/s  corpus %5s  %s\n' "$t" "$SECS" \
		"${execs:-?}" "${speed:-?}" "$ncorp" "$verdict"
done
exit $fail
