#!/usr/bin/env bash
# sh_test_hostile_cli.sh: the CLI hostile table (issue 14): every tests/hostile/*.rows file is a
# list of rows (tests/hostile/lib.sh) run against the built tool ($DSV32_CLI). Each row states
# the exit code it expects and the disk state it must leave. Exit 77 (skipped) without the CLI.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CLI="${DSV32_CLI:-}"
if [ -z "$CLI" ] || [ ! -x "$CLI" ]; then echo "DSV32_CLI not set: skipped"; exit 77; fi
export CLI
HOSTILE_ROOT="$(mktemp -d /tmp/dsv32_hostile.XXXXXX)"
trap 'chmod -R u+w "$HOSTILE_ROOT" 2>/dev/null; rm -rf "$HOSTILE_ROOT"' EXIT
# shellcheck source=tests/hostile/lib.sh
. "$HERE/hostile/lib.sh"
TINY="$HOSTILE_ROOT/tiny"
"$CLI" fixture --preset tiny --out "$TINY" >/dev/null || { echo "fixture failed"; exit 1; }
export TINY
for rows in "$HERE"/hostile/*.rows; do
	[ -e "$rows" ] || continue
	echo "# $(basename "$rows")"
	# shellcheck disable=SC1090
	. "$rows"
done
echo "$((HOSTILE_ROWS - HOSTILE_FAILS)) passed, $HOSTILE_FAILS failed"
[ "$HOSTILE_FAILS" -eq 0 ]
