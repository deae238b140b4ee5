#!/usr/bin/env bash
# Installs the system programs the test suite runs for real: Mosquitto (MQTT
# broker; tests start their own on a free port), Debian's Chromium with its
# chromedriver (the panel's browser tests; never a downloaded browser build), and
# whatever the parts list in scripts/deps/*.list ("<path or command> <package>" per
# line: the package is installed when the path does not exist and the command is
# not found). Idempotent; quiet when present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # TLS tests make throw-away certificates
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# A small CJK font so the Chinese panel renders in headless screenshots (docs/img).
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
for list in "$here"/deps/*.list; do
  [ -e "$list" ] || continue
  while read -r probe package; do
    case "$probe" in ""|"#"*) continue ;; esac
    if [ ! -e "$probe" ] && ! command -v "$probe" >/dev/null 2>&1; then need+=("$package"); fi
  done < "$list"
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
