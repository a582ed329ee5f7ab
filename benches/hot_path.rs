//! The whole hot path per measurement kind: framed Avro bytes in → decode →
//! validate → dedup → enrich → encode → framed Avro bytes out.

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::config::ValidationConfig;
use vitalstream::model::*;
use vitalstream::process::{
    AlertsConfig, Disposition, HrvConfig, InputRecord, Processor, ProfileTable,
};

const N: usize = 1_000;
const NOW: i64 = 1_763_900_000_000;

fn measurement(kind: MeasurementKind) -> Measurement {
    match kind {
        MeasurementKind::BodyScan => Measurement::BodyScan(BodyScan {
            weight_kg: Decimal::new(80_125, 3),
            resistance_ohm: Decimal::new(45_000, 2),
            reactance_ohm: Decimal::new(5_500, 2),
            segments: vec![],
        }),
        MeasurementKind::HeartRhythm => Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: (0..60).map(|i| 800 + (i % 7) * 5).collect(),
            source: RhythmSource::Ppg,
        }),
        MeasurementKind::BloodPressure => Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 128,
            diastolic_mmhg: 79,
            pulse_bpm: Some(70),
        }),
        MeasurementKind::SpO2 => Measurement::SpO2 {
            pct: Decimal::new(975, 1),
        },
        MeasurementKind::Temperature => Measurement::Temperature {
            celsius: Decimal::new(3_680, 2),
        },
        MeasurementKind::Ecg => Measurement::Ecg(EcgResult {
            classification: EcgClassification::SinusRhythm,
            heart_rate_bpm: 72,
        }),
    }
}

fn payloads(codec: &Codec, kind: MeasurementKind) -> Vec<(String, Vec<u8>)> {
    (0..N)
        .map(|i| {
            let patient = format!("patient-{:05}", i % 100);
            let r = RawReading {
                reading_id: Cow::Owned(format!("rd-{i:010}")),
                device_id: Cow::Borrowed("dev-00001"),
                device_model: Cow::Borrowed("Body Scan"),
                device_kind: DeviceKind::Scale,
                patient_id: Cow::Owned(patient.clone()),
                measured_at_ms: NOW - 1_000 + i as i64,
                received_at_ms: NOW,
                attribution: Attribution::Device,
                measurement: measurement(kind),
            };
            let mut buf = Vec::new();
            codec.encode_raw(&r, &mut buf).expect("encode");
            (patient, buf)
        })
        .collect()
}

/// Profiles of the bench's 100 patients.
fn profiles() -> Arc<ProfileTable> {
    let table = ProfileTable::new();
    for i in 0..100 {
        table.upsert(PatientProfile {
            patient_id: format!("patient-{i:05}"),
            birth_date_days: 4_000,
            sex: if i % 2 == 0 { Sex::Male } else { Sex::Female },
            height_cm: Decimal::new(1_750, 1),
            rpm_enrolled: true,
            consent_clinician_sharing: true,
            care_team: vec!["team-1".into()],
            threshold_overrides: vec![],
            dry_weight_kg: None,
        });
    }
    Arc::new(table)
}

fn hot_path(c: &mut Criterion) {
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let table = profiles();
    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(N as u64));
    for kind in MeasurementKind::ALL {
        let inputs = payloads(&codec, kind);
        group.bench_function(kind.as_str(), |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                // Fresh dedup state each iteration so every reading is new.
                let mut processor = Processor::new(
                    codec.clone(),
                    ValidationConfig::default(),
                    HrvConfig::default(),
                    AlertsConfig::default(),
                    table.clone(),
                )
                .expect("processor");
                for (offset, (key, payload)) in inputs.iter().enumerate() {
                    let rec = InputRecord {
                        topic: "vitals.readings.raw",
                        partition: 0,
                        offset: offset as i64,
                        key: Some(key.as_bytes()),
                        payload: Some(payload),
                    };
                    match processor.process(&rec, NOW) {
                        Disposition::Enriched(e) => {
                            codec.encode_enriched(&e, &mut out).expect("encode");
                            black_box(&out);
                        }
                        other => panic!("bench input rejected: {other:?}"),
                    }
                }
            });
        });
    }
    group.finish();

    let inputs = payloads(&codec, MeasurementKind::BloodPressure);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("blood_pressure", |b| {
        b.iter(|| {
            for (_, p) in &inputs {
                black_box(codec.decode_raw(p).expect("decodes"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
