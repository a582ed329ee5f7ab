//! Writes the seed corpus of the `decode_process` fuzz target: framed raw
//! readings of every kind from the simulated gateway (with its duplicates,
//! malformed and out-of-range records and clinical scenarios), measured just
//! before the fuzz harness's processing clock.
//!
//! Run: `cargo run --example fuzz_seeds -- fuzz/corpus/decode_process`

use std::path::PathBuf;

use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::gateway::{Gateway, GatewayConfig};

/// The fuzz harness's processing clock (fuzz/fuzz_targets/decode_process.rs).
const NOW: i64 = 1_763_900_000_000;
const SEEDS: usize = 400;

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus/decode_process".into())
        .into();
    std::fs::create_dir_all(&dir)?;
    let mut gateway = Gateway::new(
        Codec::new(SchemaIds::default())?,
        GatewayConfig {
            patients: 20,
            scenario_every: 5,
            rr_history_ms: 10 * 60 * 1000,
            ..GatewayConfig::default()
        },
    );
    for i in 0..SEEDS {
        let record = gateway.next_record(NOW - 60_000 + i as i64 * 100)?;
        std::fs::write(dir.join(format!("seed-{i:04}")), &record.payload)?;
    }
    println!("{SEEDS} seeds written to {}", dir.display());
    Ok(())
}
