//! Instructions per reading on the whole hot path, per kind, counted by
//! callgrind: unlike wall-clock timings the count does not depend on what
//! else the (shared, 2-core) machine is doing, so before/after figures of a
//! change are comparable across runs.
//!
//! Run: `bash scripts/instructions.sh` (builds this bench, runs it under
//! `valgrind --tool=callgrind` once per kind and prints Ir per reading).
//! Run alone, `cargo bench --bench instructions -- <kind>` just processes the
//! readings, which is what callgrind measures.

mod fixtures;

use std::hint::black_box;
use std::sync::Arc;

use fixtures::{enrich, payloads, processor, profiles};
use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::model::MeasurementKind;
use vitalstream::process::Processor;

/// Readings processed before counting starts (dedup and alert state warm).
const WARM: usize = 2_000;
/// Readings counted.
pub const MEASURED: usize = 2_000;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let table = profiles();
    for kind in MeasurementKind::ALL {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == kind.as_str()) {
            continue;
        }
        let inputs = payloads(&codec, kind, WARM + MEASURED);
        let mut processor = processor(&codec, &table);
        let mut out = Vec::with_capacity(4096);
        let (warm, measured) = inputs.split_at(WARM);
        run(&mut processor, &codec, warm, 0, &mut out);
        measured_run(&mut processor, &codec, measured, WARM, &mut out);
        println!(
            "{}: {} readings after {} warm-up",
            kind.as_str(),
            MEASURED,
            WARM
        );
    }
}

/// The counted part: callgrind collects only inside this function.
#[inline(never)]
fn measured_run(
    processor: &mut Processor,
    codec: &Codec,
    inputs: &[(String, Vec<u8>)],
    first_offset: usize,
    out: &mut Vec<u8>,
) {
    run(processor, codec, inputs, first_offset, out);
}

fn run(
    processor: &mut Processor,
    codec: &Codec,
    inputs: &[(String, Vec<u8>)],
    first_offset: usize,
    out: &mut Vec<u8>,
) {
    for (i, (key, payload)) in inputs.iter().enumerate() {
        let e = enrich(processor, first_offset + i, key, payload);
        codec.encode_enriched(&e, out).expect("encode");
        black_box(&out);
    }
}
