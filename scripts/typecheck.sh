#!/usr/bin/env bash
# mypy over the import names.  The folders map onto firebus.* through pyproject's
# package-dir, which mypy cannot follow through an editable install, so a throw-away tree
# of symlinks (firebus/{core,sdk,plugins}) gives it the installed layout.
#   strict: the plugin contract (what docs/sdk.md calls stable);
#   normal: the rest of the SDK (the kit: profiles, rules, channels; the developer tools);
#   core/contracts.py: the core's classes satisfy the SDK's protocols.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")"  # absolute, symlink kept (a venv's python)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/firebus"
for d in core sdk plugins; do ln -s "$root/$d" "$tree/firebus/$d"; done
cd "$tree"
contract=(hookspecs events extension driver core_api vocab web orgs links notify rule detector context clock
          manifest migration media)
args=()
for m in "${contract[@]}"; do args+=(-m "firebus.sdk.$m"); done
export MYPYPATH=$tree
"$py" -m mypy --config-file "$root/pyproject.toml" --strict --follow-imports=silent "${args[@]}"
"$py" -m mypy --config-file "$root/pyproject.toml" --follow-imports=silent -p firebus.sdk
# the core's contexts and transports satisfy the SDK's protocols (core/contracts.py)
"$py" -m mypy --config-file "$root/pyproject.toml" --follow-imports=silent -m firebus.core.contracts
