#!/usr/bin/env bash
# gpu-deps.sh: carry the build's Debian libraries to a device machine that has nvcc and CMake but
# none of our packages and no network (tool library: device/README.md).
#   scripts/gpu-deps.sh fetch    here: apt-get download the .deb files into .deps/debs (git-ignored;
#                                ~36 MB, within the 64 MiB a device run may carry: carry
#                                ".deps/debs" ONLY -- the unpacked .deps/prefix is ~170 MB and its
#                                pkg-config files name this machine's path)
#   scripts/gpu-deps.sh env      there: unpack them (dpkg -x) into .deps/prefix, never into /, and
#                                print the exports that point CMake, pkg-config and the loader at it;
#                                use as:  eval "$(scripts/gpu-deps.sh env)"
#   scripts/gpu-deps.sh check    after env: list every library a prefix library needs that neither
#                                the prefix nor the system provides (exit 1 if any)
# The runtime closure of libhdf5 -> libcurl (nghttp2, krb5, ldap, gnutls, ssh2, ...) and libssl3
# come as .deps/debs/closure/*.deb: those are NOT put on the loader path wholesale (they would
# shadow the machine's own, newer copies for every program, python and cmake included); only the
# sonames the system lacks are linked into .deps/prefix/fallback, which is on the path.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEBS="$ROOT/.deps/debs"
PREFIX="$ROOT/.deps/prefix"
ARCH=x86_64-linux-gnu
PKGS=(libcjson1 libcjson-dev libcmocka0 libcmocka-dev libhdf5-103-1 libhdf5-dev libhdf5-hl-100
      libopenblas0 libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev libdnnl2
      libdnnl-dev libsz2 libaec0 libaec-dev libssl-dev ocl-icd-libopencl1 libgfortran5 libcurl4
      zlib1g-dev pkgconf pkgconf-bin libpkgconf3)
CLOSURE=(libssl3 zlib1g libquadmath0 libgomp1 libnghttp2-14 libbrotli1 libgssapi-krb5-2 libkrb5-3
	 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 libidn2-0 libunistring2
	 libldap-2.5-0 libsasl2-2 libsasl2-modules-db libdb5.3 libpsl5 librtmp1 libgnutls30
	 libhogweed6 libnettle8 libgmp10 libtasn1-6 libp11-kit0 libffi8 libssh2-1 libzstd1)
SYSLIBDIRS=(/lib/$ARCH /usr/lib/$ARCH /lib64 /usr/lib64 /lib /usr/lib /usr/local/lib)

# apt-get download into $1 (quiet unless it fails)
download() {
	local dir=$1
	shift
	mkdir -p "$dir"
	if ! (cd "$dir" && apt-get download "$@") >"$dir/.fetch.log" 2>&1; then
		cat "$dir/.fetch.log" >&2
		exit 1
	fi
	rm -f "$dir/.fetch.log"
}

# true if the machine's loader finds soname $1 without our prefix
system_has() {
	local d
	for d in "${SYSLIBDIRS[@]}"; do
		[ -e "$d/$1" ] && return 0
	done
	local lc
	lc=$(command -v ldconfig || echo /sbin/ldconfig)
	[ -x "$lc" ] && "$lc" -p 2>/dev/null | awk '{print $1}' | grep -qxF "$1"
}

case "${1:-}" in
fetch)
	download "$DEBS" "${PKGS[@]}"
	download "$DEBS/closure" "${CLOSURE[@]}"
	du -sh "$DEBS"
	;;
env)
	[ -d "$DEBS" ] || { echo "gpu-deps: $DEBS missing (run 'scripts/gpu-deps.sh fetch' and carry .deps/debs)" >&2; exit 2; }
	# the stamp holds the prefix path: a prefix unpacked elsewhere (its .pc files name that
	# path) is rebuilt, never reused
	if [ "$(cat "$PREFIX/.unpacked" 2>/dev/null || true)" != "$PREFIX" ]; then
		rm -rf "$PREFIX"
		mkdir -p "$PREFIX/fallback"
		for d in "$DEBS"/*.deb; do dpkg -x "$d" "$PREFIX"; done
		# the alternatives links Debian would create for libopenblas.so / libblas
		for f in "$PREFIX"/usr/lib/$ARCH/openblas-pthread/*.so*; do
			ln -sf "$f" "$PREFIX/usr/lib/$ARCH/$(basename "$f")"
		done
		# hdf5.pc is an alternatives link made by a maintainer script dpkg -x does not run
		cp "$PREFIX/usr/lib/$ARCH/pkgconfig/hdf5-serial.pc" "$PREFIX/usr/lib/$ARCH/pkgconfig/hdf5.pc"
		# pkg-config files say prefix=/usr: rewrite them to the unpacked tree
		grep -rl "/usr" "$PREFIX"/usr/lib/$ARCH/pkgconfig "$PREFIX"/usr/lib/$ARCH/openblas-pthread/pkgconfig \
			"$PREFIX"/usr/share/pkgconfig 2>/dev/null |
			xargs -r sed -i "s|=/usr|=$PREFIX/usr|g; s| /usr/| $PREFIX/usr/|g; s|-L/usr/|-L$PREFIX/usr/|g; s|-I/usr/|-I$PREFIX/usr/|g"
		# runtime closure: only the sonames this machine lacks go on the loader path
		if [ -d "$DEBS/closure" ]; then
			C="$PREFIX/closure"
			mkdir -p "$C"
			for d in "$DEBS"/closure/*.deb; do dpkg -x "$d" "$C"; done
			for f in "$C"/lib/$ARCH/*.so.* "$C"/usr/lib/$ARCH/*.so.*; do
				[ -e "$f" ] || continue
				n=$(basename "$f")
				[ -e "$PREFIX/usr/lib/$ARCH/$n" ] && continue
				system_has "$n" || ln -sf "$f" "$PREFIX/fallback/$n"
			done
		fi
		echo "$PREFIX" >"$PREFIX/.unpacked"
	fi
	P="$PREFIX/usr"
	echo "export PATH=\"$P/bin:\$PATH\""
	echo "export PKG_CONFIG_PATH=\"$P/lib/$ARCH/pkgconfig:$P/lib/$ARCH/openblas-pthread/pkgconfig:$P/share/pkgconfig:\${PKG_CONFIG_PATH:-}\""
	echo "export CMAKE_PREFIX_PATH=\"$P:\${CMAKE_PREFIX_PATH:-}\""
	echo "export CPATH=\"$P/include:$P/include/hdf5/serial:\${CPATH:-}\""
	echo "export LIBRARY_PATH=\"$P/lib/$ARCH:$P/lib/$ARCH/hdf5/serial:$PREFIX/fallback:\${LIBRARY_PATH:-}\""
	echo "export LD_LIBRARY_PATH=\"$P/lib/$ARCH:$P/lib/$ARCH/openblas-pthread:$P/lib/$ARCH/hdf5/serial:$PREFIX/fallback:\${LD_LIBRARY_PATH:-}\""
	;;
check)
	[ -f "$PREFIX/.unpacked" ] || { echo "gpu-deps: run 'scripts/gpu-deps.sh env' first" >&2; exit 2; }
	command -v readelf >/dev/null || { echo "gpu-deps: readelf not found; cannot check" >&2; exit 0; }
	P="$PREFIX/usr/lib/$ARCH"
	missing=0
	while read -r lib; do
		for n in $(readelf -d "$lib" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			[ -e "$P/$n" ] || [ -e "$P/openblas-pthread/$n" ] || [ -e "$P/hdf5/serial/$n" ] ||
				[ -e "$PREFIX/fallback/$n" ] || system_has "$n" || {
				echo "gpu-deps: $n (needed by ${lib#$PREFIX/}) is missing" >&2
				missing=1
			}
		done
	done < <(find "$P" -maxdepth 3 -name "*.so*" -type f; find -L "$PREFIX/fallback" -name "*.so*" -type f)
	[ "$missing" = 0 ] && echo "gpu-deps: every library the prefix needs is found"
	exit "$missing"
	;;
*)
	echo "usage: scripts/gpu-deps.sh fetch|env|check" >&2
	exit 2
	;;
esac
