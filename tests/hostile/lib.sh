# shellcheck shell=bash
# tests/hostile/lib.sh: the row helpers of the CLI hostile table (tests/sh_test_hostile_cli.sh
# sources this, then every tests/hostile/*.rows file). A row is one command against a hostile
# input, with its expected exit code and the disk state it must leave.
#
#   row NAME RC -- COMMAND...        run COMMAND (a fresh scratch dir $W is the cwd, $CLI the
#                                    tool, $TINY a tiny fixture checkpoint made once, read-only
#                                    for rows: copy it with `fresh_ckpt DIR` to get a private one)
#                                    with a 60 s timeout (DSV32_HOSTILE_ROW_TIMEOUT: the
#                                    sanitizer suite's, ASan being 3-5x slower); pass iff the exit code is RC
#   expect_file PATH / expect_no PATH / expect_same PATH SUM / expect_count DIR N
#                                    disk-state checks after the last row (fail the row)
#   sum PATH                         content checksum of a file or tree (for expect_same)
# Rows must never touch anything outside $W. Output: one "ok"/"not ok" line per row and check.
set -uo pipefail
HOSTILE_FAILS=0
HOSTILE_ROWS=0
CURRENT_ROW=""

_fail() { echo "not ok - $CURRENT_ROW: $*"; HOSTILE_FAILS=$((HOSTILE_FAILS + 1)); }

row() {
	local name=$1 want=$2
	shift 2
	[ "$1" = "--" ] && shift
	CURRENT_ROW=$name
	HOSTILE_ROWS=$((HOSTILE_ROWS + 1))
	W="$(mktemp -d "$HOSTILE_ROOT/row.XXXXXX")"
	export W
	local rc=0 out
	out="$(cd "$W" && timeout "${DSV32_HOSTILE_ROW_TIMEOUT:-60}" "$@" 2>&1)" || rc=$?
	if [ "$rc" -eq "$want" ]; then
		echo "ok - $name (exit $rc)"
	else
		_fail "exit $rc, expected $want; output: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
	fi
	LAST_OUT=$out
}

expect_file() { [ -e "$1" ] || _fail "expected $1 to exist"; }
expect_no() { [ ! -e "$1" ] || _fail "expected $1 not to exist"; }
expect_count() {
	local n
	n=$(find "$1" -mindepth 1 | wc -l)
	[ "$n" -eq "$2" ] || _fail "expected $2 entries under $1, found $n"
}
sum() { (cd "$1" 2>/dev/null && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum) ||
	sha256sum <"$1"; }
expect_same() { [ "$(sum "$1")" = "$2" ] || _fail "$1 changed"; }
expect_output() { grep -q -- "$1" <<<"$LAST_OUT" || _fail "output lacks '$1'"; }
fresh_ckpt() { cp -r "$TINY" "$1"; }
