#!/usr/bin/env bash
# screenshot-report.sh REPORT.html [OUT.png]: render a drift report with headless Chromium, with
# networking off, to check that the page is self-contained and readable (issue 7). Installs
# Debian's chromium when missing (root or sudo). Exits non-zero when the page does not render.
set -euo pipefail
html="${1:?usage: screenshot-report.sh REPORT.html [OUT.png]}"
out="${2:-${html%.html}.png}"
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
# no proxy, no DNS: a page that needs the network shows holes instead of charts
timeout 120 chromium --headless --no-sandbox --disable-gpu --proxy-server="127.0.0.1:9" \
  --host-resolver-rules="MAP * ~NOTFOUND" --window-size=1300,2400 \
  --screenshot="$out" "file://$(realpath "$html")" 2>/dev/null
test -s "$out"
echo "screenshot: $out"
