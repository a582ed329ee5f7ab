#!/usr/bin/env bash
# Instructions per reading on the hot path, per measurement kind, counted by
# callgrind (deterministic, unlike timings on a shared machine).
# Usage: bash scripts/instructions.sh [kind...]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || {
    echo "valgrind is missing: sudo apt-get install -y valgrind" >&2
    exit 1
}
bin=$(cargo bench --locked --bench instructions --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "instructions" and m.get("executable"):
        print(m["executable"])')
measured=$(sed -n 's/^pub const MEASURED: usize = \([0-9_]*\);/\1/p' benches/instructions.rs | tr -d _)
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(body_scan heart_rhythm blood_pressure spo2 temperature ecg)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-16s %14s\n' kind "Ir/reading"
for kind in "${kinds[@]}"; do
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_run*' \
        --callgrind-out-file="$out/$kind.out" "$bin" "$kind" >/dev/null 2>&1
    total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out/$kind.out")
    printf '%-16s %14d\n' "$kind" $((total / measured))
done
