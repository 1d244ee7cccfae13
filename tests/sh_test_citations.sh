#!/usr/bin/env bash
# sh_test_citations.sh: every citation of the project's own documents points at something that
# exists. Fails, naming file:line, when a source or doc file
#   * cites a document that is not in the repository (DESIGN.md, STYLE.md, shared/spec/...,
#     reference_layout.md, or a bare spec name such as "hf_layout.md §4" without its docs/ path);
#   * names a docs/...md path that does not exist;
#   * cites docs/spec/X.md §N where no heading of docs/spec/X.md carries §N (section anchors are
#     the "§N" tokens in the headings). Inside docs/spec/X.md a § without a path means X.md itself.
# Only § tokens on the same line as their path are checked ("§A.9, §B.4" both are; a range
# "§4.1-4.3" checks its first end). fixtures/golden/ is left out: it is upstream's data, copied
# unchanged with its own README (fixtures/golden/ref_tiny/PROVENANCE.md).
# Run: ctest -R sh_test_citations, or `bash tests/sh_test_citations.sh` from anywhere
# (DSV32_SOURCE_DIR overrides the repository root).
set -u
ROOT="${DSV32_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$ROOT" || exit 1
TMP="$(mktemp -d "${TMPDIR:-/tmp}/dsv32_cit_XXXXXX")" || exit 1
trap 'rm -rf "$TMP"' EXIT

# The files to check: tracked and new (not ignored) files, or every file when this is no checkout.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard >"$TMP/all"
else
	find . -type f ! -path './build*' ! -path './.git/*' | sed 's#^\./##' >"$TMP/all"
fi
grep -E '(\.(c|h|cu|cuh|py|sh|md|txt|cmake)|CMakeLists\.txt)$' "$TMP/all" |
	grep -vE '^(build[^/]*/|tests/sh_test_citations\.sh$|fixtures/golden/)' |
	while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done >"$TMP/files"
# Documents that exist (for docs/... paths).
grep -E '^docs/.*\.md$' "$TMP/all" | while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done >"$TMP/docs"
# Section anchors: "file<TAB>§N" for every § token in a heading of docs/spec/*.md.
: >"$TMP/anchors"
for f in docs/spec/*.md; do
	[ -f "$f" ] || continue
	grep -E '^#' "$f" | grep -oE '§[A-Z]?[0-9]*(\.[0-9]+)*' | sed "s#^#$f\t#" >>"$TMP/anchors"
done

if [ ! -s "$TMP/files" ]; then
	echo "sh_test_citations: no files found under $ROOT" >&2
	exit 1
fi

xargs -d '\n' awk -v ANCHORS="$TMP/anchors" -v DOCS="$TMP/docs" '
BEGIN {
	FS = "\n"
	while ((getline l < ANCHORS) > 0) { split(l, p, "\t"); anchor[p[1] SUBSEP p[2]] = 1 }
	while ((getline l < DOCS) > 0) doc[l] = 1
	bad = 0
}
function report(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg; bad++ }
# Check the § tokens of text s against the anchors of spec file f.
function check_sections(f, s,   t) {
	while (match(s, /§[A-Z]?[0-9]*(\.[0-9]+)*/)) {
		t = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		if (t == "§") continue
		if (!((f SUBSEP t) in anchor)) report("cites " f " " t ": no heading of " f " has " t)
	}
}
{
	line = $0
	if (match(line, /(DESIGN|STYLE)\.md|shared\/spec|reference_layout\.md/))
		report("cites a document outside the repository: " substr(line, RSTART, RLENGTH) \
		       " (docs/architecture.md, docs/spec/)")
	# bare spec names (no docs/ path in front)
	s = line
	while (match(s, /[A-Za-z0-9_.\/-]*(hf_layout|ref_layout|checkpoints|taps)\.md/)) {
		t = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		if (t !~ /^docs\//) report("bare citation " t ": write its docs/ path")
	}
	# docs/ paths must exist; § tokens after a docs/spec path must be its headings
	self = (FILENAME ~ /^docs\/spec\/.*\.md$/) ? FILENAME : ""
	s = line
	first = 1
	while (match(s, /docs\/[A-Za-z0-9_.\/-]*\.md/)) {
		before = substr(s, 1, RSTART - 1)
		t = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		if (first && self != "") check_sections(self, before)
		first = 0
		if (!(t in doc)) { report("cites " t ", which does not exist"); continue }
		if (t ~ /^docs\/spec\//) {
			seg = s
			if (match(seg, /docs\//)) seg = substr(seg, 1, RSTART - 1)
			check_sections(t, seg)
		}
	}
	if (first && self != "") check_sections(self, line)
}
END {
	if (bad) { printf "sh_test_citations: %d bad citation(s)\n", bad; exit 1 }
	print "sh_test_citations: every citation resolves"
}' <"$TMP/files" || exit 1
