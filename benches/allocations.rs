//! Heap allocations per reading on the hot path (decode → validate → dedup
//! → enrich → encode), per kind, in steady state: a processor is warmed up
//! with readings of the same patients first, then dhat's counting
//! allocator counts the blocks and bytes allocated for the next readings.
//!
//! Run: `cargo bench --bench allocations`

mod fixtures;

use std::sync::Arc;

use fixtures::{enrich, payloads, processor, profiles};
use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::model::MeasurementKind;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let full = std::env::args().any(|a| a == "--bench");
    let (warm, measured) = if full { (10_000, 10_000) } else { (200, 200) };
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let table = profiles();
    println!("heap allocations per reading, steady state ({measured} readings after {warm})");
    println!("{:<16} {:>12} {:>14}", "kind", "allocations", "bytes");
    for kind in MeasurementKind::ALL {
        let inputs = payloads(&codec, kind, warm + measured);
        let mut processor = processor(&codec, &table);
        let mut out = Vec::with_capacity(4096);
        let mut before = None;
        for (offset, (key, payload)) in inputs.iter().enumerate() {
            if offset == warm {
                before = Some(dhat::HeapStats::get());
            }
            let e = enrich(&mut processor, offset, key, payload);
            codec.encode_enriched(&e, &mut out).expect("encode");
        }
        let (b, a) = (before.expect("measured"), dhat::HeapStats::get());
        let per = |x: u64, y: u64| (y - x) as f64 / measured as f64;
        println!(
            "{:<16} {:>12.1} {:>14.0}",
            kind.as_str(),
            per(b.total_blocks, a.total_blocks),
            per(b.total_bytes, a.total_bytes)
        );
    }
}
