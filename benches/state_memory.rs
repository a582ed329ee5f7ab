//! Memory per dedup key: dhat's counting global allocator measures the live
//! heap of a partition's `DedupStore` after N readings (steady state, at
//! its capacity cap, and below it), so the per-key figure in BENCHMARKS.md
//! and docs/operations.md comes from a measurement, not an estimate.
//!
//! Run: `cargo bench --bench state_memory`

use vitalstream::process::DedupStore;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn live_bytes() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

const DAY_MS: i64 = 86_400_000;

/// Live heap bytes of a store that has seen `readings` readings with
/// capacity `max_entries`, and the entries it holds.
fn measure(readings: usize, max_entries: usize) -> (isize, usize) {
    let ids: Vec<(String, String)> = (0..readings)
        .map(|i| (format!("patient-{}", i % 5_000), format!("reading-{i:012}")))
        .collect();
    let before = live_bytes();
    let mut store = DedupStore::new(DAY_MS, max_entries);
    for (i, (patient, reading)) in ids.iter().enumerate() {
        store.check(patient, reading, 1_700_000_000_000 + i as i64);
        if i % 1_000 == 999 {
            // The pipeline drains the changelog every batch.
            store.take_changes();
        }
    }
    store.take_changes();
    let bytes = live_bytes() - before;
    let entries = store.len();
    drop(store);
    (bytes, entries)
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either: run a small case then, the full one under `cargo bench`.
    let full = std::env::args().any(|a| a == "--bench");
    let cases: &[(usize, usize)] = if full {
        &[
            (100_000, 1_000_000),
            (1_000_000, 1_000_000),
            (3_000_000, 1_000_000),
        ]
    } else {
        &[(10_000, 1_000_000)]
    };
    println!("dedup store memory (live heap bytes, dhat)");
    println!(
        "{:>10} {:>10} {:>10} {:>14}",
        "readings", "entries", "MiB", "bytes/entry"
    );
    for &(readings, cap) in cases {
        let (bytes, entries) = measure(readings, cap);
        println!(
            "{readings:>10} {entries:>10} {:>10.1} {:>14.1}",
            bytes as f64 / (1024.0 * 1024.0),
            bytes as f64 / entries as f64
        );
    }
}
