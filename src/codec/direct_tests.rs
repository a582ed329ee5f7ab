//! The schema-specific codec against apache-avro's generic path, which
//! follows the embedded schemas by construction.

use std::borrow::Cow;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::direct::{self, ENRICHED_READING_FINGERPRINT, RAW_READING_FINGERPRINT};
use super::*;
use crate::model::*;

#[test]
fn direct_codec_matches_the_embedded_schemas() {
    let set = schemas::get();
    let (raw, enriched) = (
        direct::fingerprint(set.raw_reading()),
        direct::fingerprint(set.enriched_reading()),
    );
    assert_eq!(
        (raw, enriched),
        (RAW_READING_FINGERPRINT, ENRICHED_READING_FINGERPRINT),
        "a schema changed: bring src/codec/direct.rs in line with it, then pin \
         RawReading {raw:#018x} and EnrichedReading {enriched:#018x}"
    );
    assert!(Codec::new(SchemaIds::default()).expect("codec").is_direct());
}

/// A decimal of `scale` with at most `precision` digits.
fn decimal(precision: u32, scale: u32) -> impl Strategy<Value = Decimal> {
    let max = 10i64.pow(precision) - 1;
    (-max..=max).prop_map(move |m| Decimal::new(m, scale))
}

fn text() -> impl Strategy<Value = String> {
    // Includes multi-byte characters and the empty string.
    "[a-zA-Z0-9é漢-]{0,24}"
}

fn measurement() -> impl Strategy<Value = Measurement> {
    let segment =
        (0usize..5, decimal(7, 2), decimal(7, 2)).prop_map(|(s, r, x)| SegmentImpedance {
            segment: [
                BodySegment::LeftArm,
                BodySegment::RightArm,
                BodySegment::LeftLeg,
                BodySegment::RightLeg,
                BodySegment::Torso,
            ][s],
            resistance_ohm: r,
            reactance_ohm: x,
        });
    prop_oneof![
        (
            decimal(7, 3),
            decimal(7, 2),
            decimal(7, 2),
            proptest::collection::vec(segment, 0..6)
        )
            .prop_map(|(weight_kg, resistance_ohm, reactance_ohm, segments)| {
                Measurement::BodyScan(BodyScan {
                    weight_kg,
                    resistance_ohm,
                    reactance_ohm,
                    segments,
                })
            }),
        (
            proptest::collection::vec(any::<i32>(), 0..200),
            any::<bool>()
        )
            .prop_map(
                |(rr_intervals_ms, ecg)| Measurement::HeartRhythm(HeartRhythm {
                    rr_intervals_ms,
                    source: if ecg {
                        RhythmSource::Ecg
                    } else {
                        RhythmSource::Ppg
                    },
                })
            ),
        (
            any::<i32>(),
            any::<i32>(),
            proptest::option::of(any::<i32>())
        )
            .prop_map(|(systolic_mmhg, diastolic_mmhg, pulse_bpm)| {
                Measurement::BloodPressure(BloodPressure {
                    systolic_mmhg,
                    diastolic_mmhg,
                    pulse_bpm,
                })
            }),
        decimal(4, 1).prop_map(|pct| Measurement::SpO2 { pct }),
        decimal(4, 2).prop_map(|celsius| Measurement::Temperature { celsius }),
        (0usize..3, any::<i32>()).prop_map(|(c, heart_rate_bpm)| Measurement::Ecg(EcgResult {
            classification: [
                EcgClassification::SinusRhythm,
                EcgClassification::Afib,
                EcgClassification::Inconclusive,
            ][c],
            heart_rate_bpm,
        })),
    ]
}

fn raw_reading() -> impl Strategy<Value = RawReading<'static>> {
    (
        (text(), text(), text(), text()),
        (0usize..6, any::<i64>(), any::<i64>(), 0usize..3),
        measurement(),
    )
        .prop_map(
            |((reading_id, device_id, device_model, patient_id), (kind, at, rx, attr), m)| {
                RawReading {
                    reading_id: Cow::Owned(reading_id),
                    device_id: Cow::Owned(device_id),
                    device_model: Cow::Owned(device_model),
                    device_kind: [
                        DeviceKind::Scale,
                        DeviceKind::Watch,
                        DeviceKind::BpMonitor,
                        DeviceKind::Thermometer,
                        DeviceKind::PulseOximeter,
                        DeviceKind::Other,
                    ][kind],
                    patient_id: Cow::Owned(patient_id),
                    measured_at_ms: at,
                    received_at_ms: rx,
                    attribution: [
                        Attribution::Device,
                        Attribution::Manual,
                        Attribution::Ambiguous,
                    ][attr],
                    measurement: m,
                }
            },
        )
}

fn enriched_reading() -> impl Strategy<Value = EnrichedReading<'static>> {
    let flags = proptest::collection::vec(0usize..7, 0..4).prop_map(|ix| {
        ix.into_iter()
            .map(|i| {
                [
                    QualityFlag::AmbiguousAttribution,
                    QualityFlag::ManualEntry,
                    QualityFlag::DelayedDelivery,
                    QualityFlag::AgeOutsideEquationValidity,
                    QualityFlag::BmiOutsideEquationValidity,
                    QualityFlag::BodyCompositionUnavailable,
                    QualityFlag::SegmentalInconsistent,
                ][i]
            })
            .collect::<Vec<_>>()
    });
    let body = (
        (decimal(9, 3), decimal(9, 3), decimal(9, 3), decimal(9, 2)),
        (decimal(9, 3), decimal(9, 3), decimal(9, 1)),
    )
        .prop_map(|((bmi, ffm, fm, ratio), (smm, tbw, bmr))| BodyComposition {
            bmi,
            fat_free_mass_kg: ffm,
            fat_mass_kg: fm,
            fat_ratio_pct: ratio,
            skeletal_muscle_mass_kg: smm,
            total_body_water_kg: tbw,
            bmr_kcal: bmr,
        });
    (
        raw_reading(),
        flags,
        proptest::option::of(0usize..6),
        proptest::option::of(0usize..6),
        proptest::option::of(body),
        (text(), any::<i32>(), any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |(reading, quality_flags, loinc, bp, body_composition, (topic, p, o, at))| {
                EnrichedReading {
                    reading,
                    quality_flags,
                    loinc_code: loinc.map(|i| {
                        [
                            "29463-7", "8867-4", "59408-5", "8310-5", "85354-9", "39156-5",
                        ][i]
                    }),
                    bp_category: bp.map(|i| enriched::BP_CATEGORY_ORDER[i]),
                    body_composition,
                    provenance: Provenance {
                        topic: Cow::Owned(topic),
                        partition: p,
                        offset: o,
                    },
                    processed_at_ms: at,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn raw_reading_bytes_and_values_match_apache_avro(r in raw_reading()) {
        let codec = Codec::new(SchemaIds::default()).expect("codec");
        let (mut direct, mut generic) = (Vec::new(), Vec::new());
        codec.encode_raw(&r, &mut direct).expect("direct encode");
        codec.encode_raw_generic(&r, &mut generic).expect("generic encode");
        prop_assert_eq!(&direct, &generic);
        prop_assert_eq!(codec.decode_raw(&direct).expect("direct decode"), r.clone());
        prop_assert_eq!(codec.decode_raw_generic(&direct).expect("generic decode"), r);
    }

    #[test]
    fn enriched_reading_bytes_match_apache_avro(e in enriched_reading()) {
        let codec = Codec::new(SchemaIds::default()).expect("codec");
        let (mut direct, mut generic) = (Vec::new(), Vec::new());
        codec.encode_enriched(&e, &mut direct).expect("direct encode");
        codec.encode_enriched_generic(&e, &mut generic).expect("generic encode");
        prop_assert_eq!(&direct, &generic);
        prop_assert_eq!(codec.decode_enriched(&direct).expect("decodes"), e);
    }

    /// Whatever apache-avro accepts, the direct decoder accepts with the same
    /// reading; corrupting a valid payload never panics either decoder.
    #[test]
    fn corrupted_payloads_decode_alike_or_fail(
        r in raw_reading(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let codec = Codec::new(SchemaIds::default()).expect("codec");
        let mut bytes = Vec::new();
        codec.encode_raw(&r, &mut bytes).expect("encode");
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(generic) = codec.decode_raw_generic(&bytes) {
            prop_assert_eq!(codec.decode_raw(&bytes).expect("direct accepts what generic does"), generic);
        }
    }
}

#[test]
fn caps_from_the_configuration_refuse_long_fields() {
    let codec = Codec::with_limits(
        SchemaIds::default(),
        DecodeLimits {
            max_string_bytes: 8,
            max_array_items: 50,
        },
    )
    .expect("codec");
    let mut r = RawReading {
        reading_id: Cow::Borrowed("r-1"),
        device_id: Cow::Borrowed("dev-1"),
        device_model: Cow::Borrowed("Watch"),
        device_kind: DeviceKind::Watch,
        patient_id: Cow::Borrowed("p-1"),
        measured_at_ms: 1,
        received_at_ms: 2,
        attribution: Attribution::Device,
        measurement: Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: vec![800; 50],
            source: RhythmSource::Ppg,
        }),
    };
    let mut buf = Vec::new();
    codec.encode_raw(&r, &mut buf).expect("encode");
    assert_eq!(codec.decode_raw(&buf).expect("within the caps"), r);

    r.measurement = Measurement::HeartRhythm(HeartRhythm {
        rr_intervals_ms: vec![800; 51],
        source: RhythmSource::Ppg,
    });
    codec.encode_raw(&r, &mut buf).expect("encode");
    let err = codec.decode_raw(&buf).expect_err("51 items");
    assert_eq!(err.dlq_reason(), crate::process::DlqReason::Malformed);
    assert!(err.to_string().contains("rr_intervals_ms"), "{err}");

    r.device_model = Cow::Borrowed("Body Scan 2");
    codec.encode_raw(&r, &mut buf).expect("encode");
    let err = codec.decode_raw(&buf).expect_err("11-byte string");
    assert!(err.to_string().contains("device_model"), "{err}");
}

#[test]
fn strings_borrow_from_the_payload() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let r = RawReading {
        reading_id: Cow::Borrowed("r-1"),
        device_id: Cow::Borrowed("dev-1"),
        device_model: Cow::Borrowed("Cuff"),
        device_kind: DeviceKind::BpMonitor,
        patient_id: Cow::Borrowed("p-1"),
        measured_at_ms: 1,
        received_at_ms: 2,
        attribution: Attribution::Device,
        measurement: Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 120,
            diastolic_mmhg: 80,
            pulse_bpm: None,
        }),
    };
    let mut buf = Vec::new();
    codec.encode_raw(&r, &mut buf).expect("encode");
    let decoded = codec.decode_raw(&buf).expect("decode");
    assert!(
        [
            &decoded.reading_id,
            &decoded.device_id,
            &decoded.device_model,
            &decoded.patient_id
        ]
        .iter()
        .all(|s| matches!(s, Cow::Borrowed(_)))
    );
}
