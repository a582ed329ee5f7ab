#!/usr/bin/env bash
# Fuzzes the decode → process path and the config parser with libFuzzer
# (cargo fuzz, nightly toolchain), each target for FUZZ_SECONDS (default 600).
#
#   bash scripts/fuzz.sh                  # both targets, 10 minutes each
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh decode_process
#
# Seeds: fuzz/corpus/<target> (regenerate the decode seeds with
# `cargo run --example fuzz_seeds`). New inputs libFuzzer finds go to
# target/fuzz-corpus/<target>; a crash stops the run and leaves its input in
# fuzz/artifacts/<target>/ — turn it into a regression test.
# -malloc_limit_mb=16: one allocation beyond 16 MiB is reported as a crash, so a
# length field can never make the decoder allocate unboundedly.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seconds="${FUZZ_SECONDS:-600}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_process config)
for t in "${targets[@]}"; do
    mkdir -p "target/fuzz-corpus/$t"
    echo "== $t: ${seconds}s"
    (cd fuzz && cargo +nightly fuzz run -O "$t" "../target/fuzz-corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=8192 -malloc_limit_mb=16 -rss_limit_mb=2048 \
        -print_final_stats=1) 2>&1 | tee "target/fuzz-$t.log" |
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb|.*ERROR|.*panicked)' || true
    if grep -qE 'ERROR: libFuzzer|panicked at|deadly signal' "target/fuzz-$t.log"; then
        echo "$t: crash found, see target/fuzz-$t.log and fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
