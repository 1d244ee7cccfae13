#!/usr/bin/env bash
# install-deps.sh: install the Debian packages the build needs, if any is missing.
# Used by both README commands and by .ci/run. Needs root (or sudo) only when something is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libcjson-dev libcmocka-dev libhdf5-dev libopenblas-dev
      libdnnl-dev ocl-icd-opencl-dev libomp-dev libssl-dev python3
      libopenmpi-dev openmpi-bin)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
