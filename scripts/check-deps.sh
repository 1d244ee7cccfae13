#!/usr/bin/env bash
# check-deps.sh [BUILD_DIR]: after a build, check that every Debian package the build actually
# used is reachable from PKGS in scripts/install-deps.sh (the packages themselves plus their
# Depends/Pre-Depends closure).
#
# Why: install-deps.sh installs with --no-install-recommends, so a package that only arrives as a
# Recommends -- or that someone installed by hand -- makes the build work on that machine and fail
# on a clean one. ocl-icd-opencl-dev (a Recommends of libdnnl-dev, needed by oneDNN's CMake config
# through FindOpenCL) slipped through exactly like that (issue 13). This check catches such a
# package on the machine that HAS it, instead of waiting for a machine that lacks it.
#
# What counts as "used": headers from the compiler's depfiles, absolute file paths in
# CMakeCache.txt (libraries, tools, the files in *_DIR package-config folders), absolute paths on
# the link lines, and the shared libraries ldd resolves for dsv32-parity. Files under the source
# tree(s), the build folder and /usr/local/cuda* (the CUDA toolkit is not a Debian package here) are
# skipped; files no Debian package owns are reported as a note, not a failure.
#
# Env:  DSV32_BUILD_DIR     build folder when no argument is given (default <root>/build)
#       CHECK_DEPS_DROP     pkg1,pkg2: pretend these are not in PKGS (lets a test prove the check
#                           bites; tests/check_deps_selftest.sh)
#       CHECK_DEPS_VERBOSE  1: also list every used package with one file that came from it
# Exit: 0 all reachable, 1 some used package is not reachable, 2 usage or setup error.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
die() { echo "check-deps: $*" >&2; exit 2; }
# Exit 1 must mean "a package is missing" and nothing else, so any unexpected failure is a 2.
trap 'echo "check-deps: internal error (line $LINENO: $BASH_COMMAND)" >&2; exit 2' ERR

[ $# -le 1 ] || die "usage: scripts/check-deps.sh [BUILD_DIR]"
BUILD="${1:-${DSV32_BUILD_DIR:-$ROOT/build}}"
[ -f "$BUILD/CMakeCache.txt" ] ||
  die "no CMakeCache.txt in '$BUILD' (usage: scripts/check-deps.sh [BUILD_DIR]; run scripts/build.sh first)"
BUILD="$(cd "$BUILD" && pwd -P)"
# The tree the build was configured from (normally $ROOT; differs for a build of another checkout).
SRC="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")"
SRC="$(realpath -m -- "${SRC:-$ROOT}")"
EXE="$BUILD/dsv32-parity"
[ -x "$EXE" ] || die "no $EXE: run scripts/build.sh first"
for tool in dpkg dpkg-query dpkg-divert ldd realpath; do
  command -v "$tool" >/dev/null || die "$tool not found (this check needs a Debian-based system)"
done

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --- PKGS ---------------------------------------------------------------------------------------
# Read the array out of install-deps.sh instead of copying it, so the two cannot drift. Only the
# assignment is evaluated: running the script itself could install things.
PKGS=()
pkgs_src="$(awk '/^[[:space:]]*PKGS=\(/ {p = 1} p {print} p && /\)/ {exit}' "$ROOT/scripts/install-deps.sh")"
case "$pkgs_src" in
  *'$'* | *'`'* | *';'* | *'&'* | *'|'*) die "PKGS=(...) in scripts/install-deps.sh is not a plain list" ;;
esac
eval "$pkgs_src"
[ ${#PKGS[@]} -gt 0 ] || die "could not read PKGS=(...) from scripts/install-deps.sh"
if [ -n "${CHECK_DEPS_DROP:-}" ]; then
  IFS=',' read -r -a drop <<<"$CHECK_DEPS_DROP"
  for d in "${drop[@]}"; do
    kept=()
    for p in "${PKGS[@]}"; do [ "$p" = "$d" ] || kept+=("$p"); done
    # A typo here would make a "the check catches it" test pass for the wrong reason.
    [ ${#kept[@]} -lt ${#PKGS[@]} ] || die "CHECK_DEPS_DROP: '$d' is not in PKGS"
    PKGS=("${kept[@]}")
  done
fi

# --- 1. files the build used: "path<TAB>where it was seen" --------------------------------------
# Depfiles: Makefile generators leave *.o.d and compiler_depend.make under CMakeFiles/; Ninja
# folds them into .ninja_deps, which only `ninja -t deps` can print.
depfile_paths() {
  {
    find "$BUILD" -path '*/CMakeFiles/*' -type f \( -name '*.d' -o -name compiler_depend.make \) -print0 |
      xargs -0 -r cat
    if [ -f "$BUILD/build.ninja" ] && command -v ninja >/dev/null; then ninja -C "$BUILD" -t deps; fi
  } | awk '{ for (i = 1; i <= NF; i++) { t = $i; sub(/:$/, "", t); if (t ~ /^\//) print t "\theader" } }'
}

# CMakeCache: every absolute path to a file in a value (values may be ;-lists). A folder counts
# only when it is a find_package() config folder (dnnl_DIR, holding dnnl-config.cmake): the .cmake
# files in it are what CMake read. Other folders (OpenCL_INCLUDE_DIR=/usr/include) say nothing
# about which of their files were used; the depfiles do.
cache_paths() {
  awk '/^[A-Za-z0-9_.+-]+:[A-Z]+=/ {
         key = substr($0, 1, index($0, ":") - 1); n = split(substr($0, index($0, "=") + 1), v, ";")
         for (i = 1; i <= n; i++) if (v[i] ~ /^\//) print v[i] "\t" key
       }' "$BUILD/CMakeCache.txt" |
    while IFS=$'\t' read -r path key; do
      if [ -f "$path" ]; then
        printf '%s\tCMakeCache %s\n' "$path" "$key"
      elif [ -d "$path" ] && [[ "$key" == *_DIR ]] &&
        compgen -G "$path/*[Cc]onfig.cmake" >/dev/null; then
        find "$path" -maxdepth 1 \( -type f -o -type l \) -name '*.cmake' -printf "%p\tCMakeCache $key\n"
      fi
    done
}

# Link lines: the exact library files handed to the linker (e.g. libOpenCL.so, the -dev symlink).
link_paths() {
  find "$BUILD" -path '*/CMakeFiles/*' -type f \( -name link.txt -o -name 'linkLibs.rsp' \) -print0 |
    xargs -0 -r cat |
    awk '{ for (i = 1; i <= NF; i++) { t = $i; gsub(/"/, "", t); if (t ~ /^\//) print t "\tlink line" } }'
}

# Runtime: what the loader really resolves for the CLI, transitive libraries included.
ldd_paths() {
  local out
  out="$(ldd "$EXE")" || die "ldd $EXE failed"
  awk '/=> not found/ { print $1 "\tldd-missing"; next }
       { for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i "\tldd"; break } }' <<<"$out"
}

{ depfile_paths; cache_paths; link_paths; ldd_paths; } >"$TMP/used.tsv"
missing_libs="$(awk -F'\t' '$2 == "ldd-missing" {print $1}' "$TMP/used.tsv" | sort -u | paste -sd' ')"

# Existing regular files only (link targets count), first sighting wins, paths normalised
# lexically (the depfiles contain .../gcc/x86_64-linux-gnu/12/../../../../include/...).
awk -F'\t' '$2 != "ldd-missing" && !seen[$1]++' "$TMP/used.tsv" |
  while IFS=$'\t' read -r path src; do
    if [ -f "$path" ]; then printf '%s\t%s\n' "$path" "$src"; fi
  done >"$TMP/exist.tsv"
cut -f1 "$TMP/exist.tsv" | xargs -r -d '\n' realpath -m -s -- >"$TMP/norm.txt"
# Fully resolved path, and the path with only its folder resolved (/lib -> /usr/lib under merged
# /usr, /usr/local/lib/libcudart.so.13 -> /usr/local/cuda-13.0/...).
xargs -r -d '\n' realpath -m -- <"$TMP/norm.txt" >"$TMP/real.txt"
sed 's|/[^/]*$||; s|^$|/|' "$TMP/norm.txt" | xargs -r -d '\n' realpath -m -- >"$TMP/realdir.txt"
cut -f2 "$TMP/exist.tsv" | paste "$TMP/norm.txt" - "$TMP/real.txt" "$TMP/realdir.txt" >"$TMP/files.tsv"

# --- 2. owning package of each file -------------------------------------------------------------
# Candidates per file, best first: the name the build used (a -dev package's libfoo.so symlink
# must count for the -dev package, not for the runtime package of its target), then the
# merged-/usr twin (dpkg may record /lib/... while ldd reports /usr/lib/... or the reverse),
# then the folder-resolved and the fully resolved path (/usr/bin/cc -> /etc/alternatives -> gcc-12).
# Exclusions are tested on both the name and the resolved path.
dpkg-divert --list | awk '$1 == "diversion" {print $3 "\t" $5 "\t" $7}
                          $1 == "local"     {print $4 "\t" $6 "\t:local"}' >"$TMP/divert.tsv"
awk -F'\t' -v root="$ROOT/" -v src="$SRC/" -v build="$BUILD/" '
  function twin(p) {
    if (p ~ /^\/usr\/(bin|sbin|lib|lib32|lib64|libx32)\//) return substr(p, 5)
    if (p ~ /^\/(bin|sbin|lib|lib32|lib64|libx32)\//) return "/usr" p
    return ""
  }
  function skip(p) {
    return index(p, root) == 1 || index(p, src) == 1 || index(p, build) == 1 || p ~ /^\/usr\/local\/cuda(-[^\/]*)?\//
  }
  function add(p) { if (p != "" && !((NR, p) in done)) { done[NR, p] = 1; printf "\t%s", p } }
  {
    f = $1; real = $3; base = f; sub(/.*\//, "", base); dr = ($4 == "/" ? "" : $4) "/" base
    if (skip(f) || skip(real)) { print f "\t" $2 "\tSKIP" > "/dev/stderr"; next }
    printf "%s\t%s", f, $2
    add(f); add(twin(f)); add(dr); add(twin(dr)); add(real); add(twin(real)); print ""
  }' "$TMP/files.tsv" >"$TMP/cand.tsv" 2>"$TMP/skipped.tsv"

# One dpkg -S call for all candidates (plus the originals of diverted-to paths, whose owners are
# the packages that shipped the diverted file). dpkg -S takes glob patterns, so escape them.
{
  cut -f3- "$TMP/cand.tsv" | tr '\t' '\n'
  awk -F'\t' 'NR == FNR {orig[$2] = $1; next} {for (i = 3; i <= NF; i++) if ($i in orig) print orig[$i]}' \
    "$TMP/divert.tsv" "$TMP/cand.tsv"
} | sort -u | sed 's/[][*?\\]/\\&/g' >"$TMP/query.txt"
xargs -r -d '\n' dpkg -S <"$TMP/query.txt" >"$TMP/dpkgS.out" 2>"$TMP/dpkgS.err" || true
if grep -v 'no path found matching pattern' "$TMP/dpkgS.err" >&2; then die "dpkg -S failed"; fi

# Resolve owners, honouring diversions: the file on disk at a diverted path belongs to the
# diverting package (if it ships one; a local diversion belongs to nobody), and the file at the
# divert-to path belongs to whoever else ships the original. Output: path, source, owners
# (space separated, arch qualifiers dropped; empty when no package owns it).
awk -F'\t' '
  FILENAME == ARGV[1] { by[$1] = $3; to2orig[$2] = $1; next }
  FILENAME == ARGV[2] {
    if ($0 ~ /^(local )?diversion /) next            # diversion facts come from dpkg-divert
    i = index($0, ": /"); p = substr($0, i + 2); n = split(substr($0, 1, i - 1), o, ", ")
    for (k = 1; k <= n; k++) { sub(/:.*/, "", o[k]); own[p] = own[p] " " o[k] }
    next
  }
  function owners(p,    d, r, n, o, k) {
    if (p in by) { d = by[p]; return (index(own[p] " ", " " d " ") ? " " d : "") }
    if (p in to2orig) {
      p = to2orig[p]; d = by[p]; r = ""; n = split(own[p], o, " ")
      for (k = 1; k <= n; k++) if (o[k] != d) r = r " " o[k]
      return r
    }
    return own[p]
  }
  {
    r = ""
    for (i = 3; i <= NF && r == ""; i++) r = owners($i)
    sub(/^ /, "", r); print $1 "\t" $2 "\t" r
  }' "$TMP/divert.tsv" "$TMP/dpkgS.out" "$TMP/cand.tsv" >"$TMP/owned.tsv"

# --- 3. allowed set ---------------------------------------------------------------------------
# PKGS plus every installed package with Essential: yes or Priority required/important (present
# on every Debian system), closed over Depends and Pre-Depends -- never Recommends, which
# --no-install-recommends skips. Only installed packages matter: anything else cannot have
# supplied a file. In an "a | b" group, or for a virtual package, every installed member/provider
# joins the closure: apt could have picked any of them, so none is treated as hand-installed.
printf '%s\n' "${PKGS[@]}" >"$TMP/seeds.txt"
dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Essential}\t${Priority}\t${Provides}\t${Depends}, ${Pre-Depends}\n' \
  >"$TMP/installed.tsv"
awk -F'\t' '
  function clean(s) { sub(/\(.*/, "", s); gsub(/[ \t]/, "", s); sub(/:.*/, "", s); return s }
  function push(p) { if (!(p in allowed)) { allowed[p] = 1; q[++qn] = p } }
  NR == FNR { seed[$1] = 1; next }
  substr($2, 2, 1) == "i" {
    inst[$1] = 1; deps[$1] = deps[$1] ", " $6
    if ($3 == "yes" || $4 == "required" || $4 == "important") seed[$1] = 1
    n = split($5, a, ","); for (i = 1; i <= n; i++) if ((v = clean(a[i])) != "") prov[v] = prov[v] " " $1
  }
  END {
    for (s in seed) if (s in inst) push(s); else print "check-deps: note: PKGS entry " s " is not installed" > "/dev/stderr"
    for (qi = 1; qi <= qn; qi++) {
      n = split(deps[q[qi]], g, ",")
      for (i = 1; i <= n; i++) {
        m = split(g[i], alt, "|")
        for (j = 1; j <= m; j++) {
          if ((v = clean(alt[j])) == "") continue
          if (v in inst) push(v)
          k = split(prov[v], pp, " "); for (x = 1; x <= k; x++) push(pp[x])
        }
      }
    }
    for (p in allowed) print p
  }' "$TMP/seeds.txt" "$TMP/installed.tsv" >"$TMP/allowed.txt"

# --- 4. verdict ---------------------------------------------------------------------------------
if [ -n "$missing_libs" ]; then echo "check-deps: note: ldd could not find: $missing_libs"; fi
if [ "${CHECK_DEPS_VERBOSE:-0}" = 1 ]; then
  echo "check-deps: skipped $(wc -l <"$TMP/skipped.tsv") files under the source tree, the build folder or /usr/local/cuda*"
fi
# A file is fine when any of its owners is allowed (Multi-Arch copies, shared paths). For each
# offending package keep the first file seen, with where the build used it.
awk -F'\t' -v verbose="${CHECK_DEPS_VERBOSE:-0}" '
  NR == FNR { ok[$1] = 1; next }
  $3 == "" { unowned++; if (unowned <= 3) ex_unowned = ex_unowned " " $1; next }
  {
    files++; n = split($3, o, " "); good = 0
    for (i = 1; i <= n; i++) { if (!(o[i] in used)) { used[o[i]] = $1 " [" $2 "]"; npk++ } if (o[i] in ok) good = 1 }
    if (!good && !($3 in bad)) { bad[$3] = $1 " [" $2 "]"; nbad++ }
  }
  END {
    if (verbose == "1") for (p in used) printf "check-deps: uses %-28s e.g. %s%s\n", p, used[p], ((p in ok) ? "" : "  NOT REACHABLE") | "sort"
    close("sort")
    if (unowned) printf "check-deps: note: %d file(s) not owned by any Debian package, not checked (e.g.%s)\n", unowned, ex_unowned
    if (nbad) {
      for (p in bad) printf "check-deps: FAIL: %s is used but not reachable from PKGS, e.g. %s; add it to PKGS in scripts/install-deps.sh\n", p, bad[p] | "sort"
      close("sort"); exit 1
    }
    printf "check-deps: %d files from %d packages, all reachable from install-deps.sh\n", files, npk
  }' "$TMP/allowed.txt" "$TMP/owned.tsv" || exit $?
