//! The derived-metrics core in isolation: body composition per reading, and
//! HRV window maintenance (add + advance, closing and computing windows as
//! the watermark passes them) per beat and per reading of 60 RR intervals.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use vitalstream::model::Sex;
use vitalstream::process::{BodyInput, HrvConfig, HrvWindows, body_composition};

const N_READINGS: usize = 1_000;
const PATIENTS: usize = 20;
const T0: i64 = 1_763_900_000_000;

fn body_inputs() -> Vec<BodyInput> {
    (0..N_READINGS)
        .map(|i| {
            let i = i as i64;
            BodyInput {
                height_cm: Decimal::new(1_600 + (i % 300), 1),
                weight_kg: Decimal::new(60_000 + (i * 37) % 40_000, 3),
                resistance_ohm: Decimal::new(4_000 + (i * 13) % 2_000, 1),
                reactance_ohm: Decimal::new(450 + i % 200, 1),
                sex: if i % 2 == 0 { Sex::Male } else { Sex::Female },
                age_years: 25 + (i % 60) as u32,
            }
        })
        .collect()
}

fn bench_body_composition(c: &mut Criterion) {
    let inputs = body_inputs();
    let mut g = c.benchmark_group("derived");
    g.throughput(Throughput::Elements(inputs.len() as u64));
    g.bench_function("body_composition/reading", |b| {
        b.iter(|| {
            for input in &inputs {
                let _ = black_box(body_composition(black_box(input)));
            }
        })
    });
    g.finish();
}

/// RR series with respiratory-like variation and an occasional artifact.
fn rr(i: usize) -> i32 {
    let base = 800 + ((i % 11) as i32 - 5) * 12 + ((i % 37) as i32 - 18) * 3;
    if i.is_multiple_of(97) { 420 } else { base }
}

/// Feeds `readings_per_patient` readings of `per_reading` RR intervals for
/// each of `PATIENTS` patients, interleaved, advancing after every reading.
fn run_hrv(readings_per_patient: usize, per_reading: usize, ids: &[String]) -> usize {
    let mut w = HrvWindows::new(HrvConfig::default()).expect("valid config");
    let mut emitted = 0;
    let mut t = [T0; PATIENTS];
    let mut k = 0usize;
    let mut buf = Vec::with_capacity(per_reading);
    for r in 0..readings_per_patient {
        for (p, tp) in t.iter_mut().enumerate() {
            buf.clear();
            buf.extend((0..per_reading).map(|j| rr(k + j)));
            k += per_reading;
            w.add_reading(&ids[p], &ids[PATIENTS + r % PATIENTS], *tp, &buf);
            *tp += buf.iter().map(|&x| i64::from(x)).sum::<i64>();
            emitted += w.advance().len();
        }
    }
    emitted + w.flush_all().len()
}

fn bench_hrv(c: &mut Criterion) {
    let ids: Vec<String> = (0..2 * PATIENTS).map(|i| format!("id-{i:08}")).collect();
    let mut g = c.benchmark_group("derived");
    // Per beat: every add carries one RR interval (worst case per beat).
    let beats_per_patient = 3_000; // ~40 min at 800 ms: 8 windows closed each
    g.throughput(Throughput::Elements((beats_per_patient * PATIENTS) as u64));
    g.bench_function("hrv_window/beat", |b| {
        b.iter(|| black_box(run_hrv(beats_per_patient, 1, &ids)))
    });
    // Per reading of 60 RR intervals (the usual watch payload).
    let readings_per_patient = N_READINGS / PATIENTS * 2;
    g.throughput(Throughput::Elements(
        (readings_per_patient * PATIENTS) as u64,
    ));
    g.bench_function("hrv_window/reading_60rr", |b| {
        b.iter(|| black_box(run_hrv(readings_per_patient, 60, &ids)))
    });
    g.finish();
}

criterion_group!(benches, bench_body_composition, bench_hrv);
criterion_main!(benches);
