#!/usr/bin/env bash
# Installs the system programs firebus runs for real.
#
#   ensure-system-deps.sh [runtime|test]     (default: test)
#   ensure-system-deps.sh --list [runtime|test]   print the candidate packages, install nothing
#
# runtime (`make demo`): Mosquitto (the demo's broker), and the parts lists' runtime lines
#   (the reports plugin's Pango/HarfBuzz and a CJK font).
# test (`make test`): runtime, plus what only the suite needs: openssl (throw-away TLS
#   certificates), Debian's Chromium with its chromedriver (the panel's browser tests; never a
#   downloaded browser build) and the parts lists' lines tagged `test`.
#
# Parts lists, scripts/deps/*.list: "<path or command> <package> [test]" per line; the package
# is installed when the path does not exist and the command is not found.  Idempotent; quiet
# when everything is present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list_only=0
if [ "${1:-}" = "--list" ]; then list_only=1; shift; fi
mode=${1:-test}
case "$mode" in runtime|test) ;; *) echo "usage: $0 [--list] [runtime|test]" >&2; exit 2 ;; esac

candidates=()  # "<probe> <package>"
candidates+=("mosquitto mosquitto" "/usr/sbin/mosquitto mosquitto")
if [ "$mode" = test ]; then
  candidates+=("openssl openssl" "/usr/bin/chromium chromium" "/usr/bin/chromedriver chromium-driver")
fi
# A small CJK font: the panel's and the reports' Chinese (and the headless screenshots in docs/img).
candidates+=("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc fonts-wqy-microhei")
# --- federation (plugins/federation, tests/federation): a real NATS JetStream and PostgreSQL.
if [ "$mode" = test ]; then
  candidates+=("nats-server nats-server" "/usr/sbin/nats-server nats-server")
  candidates+=("$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | head -n1 || true) postgresql")
fi
# --- end federation
for list in "$here"/deps/*.list; do
  [ -e "$list" ] || continue
  while read -r probe package tag; do
    case "$probe" in ""|"#"*) continue ;; esac
    if [ "${tag:-}" = test ] && [ "$mode" != test ]; then continue; fi
    candidates+=("$probe $package")
  done < "$list"
done

if [ "$list_only" = 1 ]; then
  for c in "${candidates[@]}"; do echo "${c##* }"; done | sort -u
  exit 0
fi

present() { [ -e "$1" ] || command -v "$1" >/dev/null 2>&1; }
declare -A have=() need_set=()
for c in "${candidates[@]}"; do  # a package is present when any of its probes is
  probe=${c% *}; package=${c##* }
  if present "$probe"; then have[$package]=1; fi
done
for c in "${candidates[@]}"; do
  package=${c##* }
  [ -n "${have[$package]:-}" ] || need_set[$package]=1
done
need=("${!need_set[@]}")
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
