#!/usr/bin/env bash
# gpu-deps.sh: carry the build's Debian libraries to a device machine that has nvcc and CMake but
# none of our packages and no network (tool library: device/README.md).
#   scripts/gpu-deps.sh fetch    here: apt-get download the .deb files into .deps/debs (git-ignored;
#                                ~28 MB, within the 64 MiB a device run may carry: carry ".deps")
#   scripts/gpu-deps.sh env      there: unpack them (dpkg -x) into .deps/prefix, never into /, and
#                                print the exports that point CMake, pkg-config and the loader at it;
#                                use as:  eval "$(scripts/gpu-deps.sh env)"
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEBS="$ROOT/.deps/debs"
PREFIX="$ROOT/.deps/prefix"
ARCH=x86_64-linux-gnu
PKGS=(libcjson1 libcjson-dev libcmocka0 libcmocka-dev libhdf5-103-1 libhdf5-dev libhdf5-hl-100
      libopenblas0 libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev libdnnl2
      libdnnl-dev libsz2 libaec0 libaec-dev libssl-dev ocl-icd-libopencl1 libgfortran5 libcurl4
      zlib1g-dev pkgconf pkgconf-bin libpkgconf3)

case "${1:-}" in
fetch)
	mkdir -p "$DEBS"
	(cd "$DEBS" && apt-get download "${PKGS[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed")
	du -sh "$DEBS"
	;;
env)
	[ -d "$DEBS" ] || { echo "gpu-deps: $DEBS missing (run 'scripts/gpu-deps.sh fetch' and carry .deps)" >&2; exit 2; }
	if [ ! -f "$PREFIX/.unpacked" ]; then
		mkdir -p "$PREFIX"
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
		touch "$PREFIX/.unpacked"
	fi
	P="$PREFIX/usr"
	echo "export PATH=\"$P/bin:\$PATH\""
	echo "export PKG_CONFIG_PATH=\"$P/lib/$ARCH/pkgconfig:$P/lib/$ARCH/openblas-pthread/pkgconfig:$P/share/pkgconfig:\${PKG_CONFIG_PATH:-}\""
	echo "export CMAKE_PREFIX_PATH=\"$P:\${CMAKE_PREFIX_PATH:-}\""
	echo "export CPATH=\"$P/include:$P/include/hdf5/serial:\${CPATH:-}\""
	echo "export LIBRARY_PATH=\"$P/lib/$ARCH:$P/lib/$ARCH/hdf5/serial:\${LIBRARY_PATH:-}\""
	echo "export LD_LIBRARY_PATH=\"$P/lib/$ARCH:$P/lib/$ARCH/openblas-pthread:$P/lib/$ARCH/hdf5/serial:\${LD_LIBRARY_PATH:-}\""
	;;
*)
	echo "usage: scripts/gpu-deps.sh fetch|env" >&2
	exit 2
	;;
esac
