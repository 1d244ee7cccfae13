#!/usr/bin/env bash
# sh_test_impl_headers.sh: kernels/X_impl.h is private to the op layer (rule in kernels/backend.h):
# only kernels/, tests/ and bench/ may include a kernels/*_impl.h. Everyone else goes through the
# public kernels/X.h, so a body's argument bundles can change without touching the models. Fails
# naming each file (and line) that breaks the rule.
set -uo pipefail
SRC="${DSV32_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$SRC" || { echo "no source dir $SRC"; exit 1; }

# Tracked and new files alike (a fresh file must obey the rule before it is committed); build
# trees are ignored by .gitignore. Outside a git checkout, every file but the build trees.
list_sources() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard
	else
		find . -path './build*' -prune -o -type f -print | sed 's|^\./||'
	fi
}

bad=0
while IFS= read -r f; do
	case "$f" in
	kernels/* | tests/* | bench/*) continue ;;
	*.c | *.h | *.cu | *.cuh | *.cc | *.cpp) ;;
	*) continue ;;
	esac
	[ -f "$f" ] || continue
	hits=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]kernels/[^">]*_impl\.h[">]' "$f")
	if [ -n "$hits" ]; then
		while IFS= read -r h; do
			echo "$f:$h: a private kernels/*_impl.h (for kernels/, tests/, bench/ only)"
		done <<<"$hits"
		bad=1
	fi
done < <(list_sources)

if [ "$bad" -ne 0 ]; then
	echo "FAIL: include the public kernels/X.h instead"
	exit 1
fi
echo "ok: no _impl.h included outside kernels/, tests/, bench/"
