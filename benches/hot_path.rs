//! The whole hot path per measurement kind: framed Avro bytes in → decode →
//! validate → dedup → enrich → encode → framed Avro bytes out.

mod fixtures;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fixtures::{NOW, enrich, payloads, processor, profiles};
use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::config::ValidationConfig;
use vitalstream::model::*;
use vitalstream::process::{DedupStore, validate};

const N: usize = 1_000;

fn hot_path(c: &mut Criterion) {
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let table = profiles();
    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(N as u64));
    for kind in MeasurementKind::ALL {
        let inputs = payloads(&codec, kind, N);
        group.bench_function(kind.as_str(), |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                // Fresh dedup state each iteration so every reading is new.
                let mut processor = processor(&codec, &table);
                for (offset, (key, payload)) in inputs.iter().enumerate() {
                    let e = enrich(&mut processor, offset, key, payload);
                    codec.encode_enriched(&e, &mut out).expect("encode");
                    black_box(&out);
                }
            });
        });
    }
    group.finish();
}

/// The hot path's stages one at a time, per kind: decode (framed Avro →
/// `RawReading`), validate, dedup, encode (`EnrichedReading` → framed Avro).
/// Derivations (body composition, HRV windows) are in `benches/derived.rs`.
fn stages(c: &mut Criterion) {
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let table = profiles();
    let cfg = ValidationConfig::default();
    let inputs: Vec<_> = MeasurementKind::ALL
        .iter()
        .map(|&kind| (kind, payloads(&codec, kind, N)))
        .collect();

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(N as u64));
    for (kind, payloads) in &inputs {
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                for (_, p) in payloads {
                    black_box(codec.decode_raw(p).expect("decodes"));
                }
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(N as u64));
    for (kind, payloads) in &inputs {
        let readings: Vec<RawReading<'_>> = payloads
            .iter()
            .map(|(_, p)| codec.decode_raw(p).expect("decodes"))
            .collect();
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                for r in &readings {
                    black_box(validate(r, &cfg, NOW)).expect("valid");
                }
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("dedup");
    group.throughput(Throughput::Elements(N as u64));
    let ids: Vec<(String, String)> = (0..N)
        .map(|i| (format!("patient-{:05}", i % 100), format!("rd-{i:010}")))
        .collect();
    group.bench_function("new_ids", |b| {
        b.iter(|| {
            let mut store = DedupStore::new(cfg.dedup_horizon_ms, cfg.dedup_max_entries);
            for (i, (patient, reading)) in ids.iter().enumerate() {
                black_box(store.check(patient, reading, NOW - 1_000 + i as i64));
            }
        });
    });
    // At the cap: a partition's store full (1 M ids of 10 k patients, the
    // default cap), every new id evicting the oldest, as at steady state.
    let full: Vec<(String, String)> = (0..1_000_000 + 100 * N)
        .map(|i| (format!("patient-{:05}", i % 10_000), format!("rd-{i:010}")))
        .collect();
    let mut store = DedupStore::new(cfg.dedup_horizon_ms, 1_000_000);
    let mut next = 0;
    for (patient, reading) in &full[..1_000_000] {
        store.check(patient, reading, NOW - 2_000_000 + next as i64);
        next += 1;
    }
    store.take_changes();
    group.bench_function("at_cap_1m", |b| {
        b.iter(|| {
            for _ in 0..N {
                let (patient, reading) = &full[next % full.len()];
                black_box(store.check(patient, reading, NOW - 2_000_000 + next as i64));
                next += 1;
            }
            black_box(store.take_changes());
        });
    });
    group.finish();

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(N as u64));
    for (kind, payloads) in &inputs {
        let mut processor = processor(&codec, &table);
        let enriched: Vec<_> = payloads
            .iter()
            .enumerate()
            .map(|(offset, (key, payload))| enrich(&mut processor, offset, key, payload))
            .collect();
        group.bench_function(kind.as_str(), |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                for e in &enriched {
                    codec.encode_enriched(e, &mut out).expect("encode");
                    black_box(&out);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, hot_path, stages);
criterion_main!(benches);
