#!/usr/bin/env bash
# valgrind-cli.sh [BUILD_DIR]: run the CLI end to end on the tiny preset under valgrind memcheck;
# every step must finish with zero memcheck errors and zero definite/indirect leaks.
#   1. fixture --preset tiny --out D     2. inspect D
#   3. compare --checkpoint D --decode-steps 1   (skipped when `compare --help` fails)
#   4. run --layout ref --checkpoint D --tokens 5,17,42 --max-new-tokens 2  (idem for `run`)
# BUILD_DIR (default build/, or $DSV32_BUILD_DIR) must hold a built dsv32-parity; a CUDA-off
# build is best (the CUDA runtime is noisy under memcheck). DSV32_VALGRIND_STEPS="1 2" runs a
# subset. Logs: $BUILD_DIR/valgrind/<step>.log. Exit 1 if any step reports an error or a leak,
# or exits with a status other than its expected one (compare: 0 or 1; the others: 0).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-${DSV32_BUILD_DIR:-$ROOT/build}}"
CLI="$BUILD/dsv32-parity"
STEPS="${DSV32_VALGRIND_STEPS:-1 2 3 4}"
[ -x "$CLI" ] || { echo "valgrind-cli: $CLI not built" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind-cli: valgrind not installed (apt-get install valgrind)" >&2; exit 2; }
LOGS="$BUILD/valgrind"
mkdir -p "$LOGS"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dsv32-valgrind.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
D="$WORK/tiny"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-origins=yes --num-callers=30 --suppressions="$ROOT/scripts/valgrind.supp")
fail=0
# step NAME ALLOWED_STATUSES CMD...: run under memcheck, log, check the status and the summary
step() {
	local name="$1" ok="$2"
	shift 2
	local log="$LOGS/$name.log" t0=$SECONDS rc=0
	"${VG[@]}" --log-file="$log" "$@" >"$LOGS/$name.out" 2>&1 || rc=$?
	local errs leaks
	errs="$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)"
	leaks="$(grep -E 'definitely lost:|indirectly lost:' "$log" | awk '{gsub(",","",$4); s+=$4} END {print s+0}')"
	printf 'valgrind-cli: %-8s status %-3s errors %-3s definite+indirect lost %s bytes (%ds)\n' \
		"$name" "$rc" "${errs:-?}" "$leaks" $((SECONDS - t0))
	if [ "$rc" = 99 ] || [ "${errs:-1}" != 0 ] || [ "$leaks" != 0 ] || ! [[ " $ok " == *" $rc "* ]]; then
		echo "valgrind-cli: $name FAILED; first report of $log:" >&2
		grep -m1 -A25 -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument|.*definitely lost)' "$log" >&2 || tail -30 "$LOGS/$name.out" >&2
		fail=1
	fi
}
for s in $STEPS; do
	case "$s" in
	1) step fixture 0 "$CLI" fixture --preset tiny --out "$D" ;;
	2) step inspect 0 "$CLI" inspect "$D" ;;
	3) if "$CLI" compare --help >/dev/null 2>&1; then
		# exit 1 (a tap over budget) is a verdict, not a memory error
		step compare "0 1" "$CLI" compare --checkpoint "$D" --decode-steps 1 --quiet \
			--json "$WORK/report.json"
	   else echo "valgrind-cli: compare not available, skipped"; fi ;;
	4) if "$CLI" run --help >/dev/null 2>&1; then
		step run 0 "$CLI" run --layout ref --checkpoint "$D" --tokens 5,17,42 --max-new-tokens 2
	   else echo "valgrind-cli: run not available, skipped"; fi ;;
	esac
done
exit $fail
