//! Round-trips through the parsed schemas for every measurement kind.

use std::borrow::Cow;

use rust_decimal::Decimal;

use super::*;
use crate::model::*;

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

/// A reading with fixed ids and times around `measurement`.
pub(super) fn reading(measurement: Measurement) -> RawReading<'static> {
    RawReading {
        reading_id: Cow::Borrowed("r-1"),
        device_id: Cow::Borrowed("dev-1"),
        device_model: Cow::Borrowed("Body Scan"),
        device_kind: DeviceKind::Scale,
        patient_id: Cow::Borrowed("p-1"),
        measured_at_ms: 1_700_000_000_000,
        received_at_ms: 1_700_000_000_500,
        attribution: Attribution::Ambiguous,
        measurement,
    }
}

fn every_kind() -> Vec<Measurement> {
    vec![
        Measurement::BodyScan(BodyScan {
            weight_kg: d("80.125"),
            resistance_ohm: d("450.5"),
            reactance_ohm: d("55"),
            segments: vec![SegmentImpedance {
                segment: BodySegment::Torso,
                resistance_ohm: d("25.75"),
                reactance_ohm: d("3.1"),
            }],
        }),
        Measurement::BodyScan(BodyScan {
            weight_kg: d("2"),
            resistance_ohm: d("1200"),
            reactance_ohm: d("0.01"),
            segments: vec![],
        }),
        Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: vec![812, 790, 805],
            source: RhythmSource::Ppg,
        }),
        Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 185,
            diastolic_mmhg: 125,
            pulse_bpm: Some(88),
        }),
        Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 118,
            diastolic_mmhg: 76,
            pulse_bpm: None,
        }),
        Measurement::SpO2 { pct: d("97.5") },
        Measurement::Temperature {
            celsius: d("38.25"),
        },
        Measurement::Ecg(EcgResult {
            classification: EcgClassification::Afib,
            heart_rate_bpm: 112,
        }),
    ]
}

#[test]
fn raw_reading_round_trips_every_measurement_kind() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let mut buf = Vec::new();
    for m in every_kind() {
        let r = reading(m);
        codec.encode_raw(&r, &mut buf).expect("encodes");
        assert_eq!(&buf[..5], &[0, 0, 0, 0, 1], "Confluent header with id 1");
        assert_eq!(codec.decode_raw(&buf).expect("decodes"), r);
    }
}

#[test]
fn enriched_reading_round_trips() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let mut buf = Vec::new();
    for m in every_kind() {
        let e = EnrichedReading {
            reading: reading(m),
            quality_flags: vec![
                QualityFlag::AmbiguousAttribution,
                QualityFlag::DelayedDelivery,
            ],
            loinc_code: Some("29463-7"),
            bp_category: Some(BpCategory::Stage1),
            body_composition: Some(BodyComposition {
                bmi: d("24.691"),
                fat_free_mass_kg: d("63.051"),
                fat_mass_kg: d("16.949"),
                fat_ratio_pct: d("21.19"),
                skeletal_muscle_mass_kg: d("34.959"),
                total_body_water_kg: d("46.027"),
                bmr_kcal: d("1731.9"),
            }),
            provenance: Provenance {
                topic: "vitals.readings.raw".into(),
                partition: 2,
                offset: 41,
            },
            processed_at_ms: 1_700_000_001_000,
            bmi: Some(d("24.691")),
        };
        codec.encode_enriched(&e, &mut buf).expect("encodes");
        assert_eq!(codec.decode_enriched(&buf).expect("decodes"), e);
    }
}

#[test]
fn decimals_that_would_round_are_refused_on_encode() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let r = reading(Measurement::SpO2 { pct: d("97.55") });
    assert!(codec.encode_raw(&r, &mut Vec::new()).is_err());
}

#[test]
fn bad_payloads_are_errors_never_panics() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let mut good = Vec::new();
    codec
        .encode_raw(&reading(every_kind().remove(0)), &mut good)
        .expect("encodes");
    assert_eq!(
        codec.decode_raw(&good[..3]),
        Err(DecodeError::TooShort { len: 3 })
    );
    let mut other_id = good.clone();
    other_id[4] = 9;
    assert_eq!(
        codec.decode_raw(&other_id),
        Err(DecodeError::UnknownSchema(9))
    );
    // No truncation panics or yields a different reading. (apache-avro reads
    // end-of-input where an array's closing zero block count belongs as the
    // end of the array, so that one truncation decodes to the same reading.)
    let original = codec.decode_raw(&good).expect("decodes");
    for end in 0..good.len() {
        if let Ok(r) = codec.decode_raw(&good[..end]) {
            assert_eq!(r, original, "truncated at {end} decoded to other data");
        }
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        codec.decode_raw(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
    // A huge array length must not allocate unboundedly.
    let mut huge = good[..5].to_vec();
    huge.extend_from_slice(&[0x02, b'r', 0xFE, 0xFF, 0xFF, 0xFF, 0x0F]);
    assert!(codec.decode_raw(&huge).is_err());
}

fn profile() -> PatientProfile {
    PatientProfile {
        patient_id: "p-1".into(),
        birth_date_days: 5_000,
        sex: Sex::Male,
        height_cm: d("180.5"),
        rpm_enrolled: true,
        consent_clinician_sharing: true,
        care_team: vec!["team-a".into(), "dr-b".into()],
        threshold_overrides: vec![ThresholdOverride {
            rule: "spo2_low".into(),
            threshold: d("88"),
        }],
        dry_weight_kg: Some(d("78.4")),
    }
}

#[test]
fn profile_round_trips() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let mut buf = Vec::new();
    for p in [
        profile(),
        PatientProfile {
            sex: Sex::Unspecified,
            care_team: vec![],
            threshold_overrides: vec![],
            dry_weight_kg: None,
            ..profile()
        },
    ] {
        codec.encode_profile(&p, &mut buf).expect("encode");
        let decoded = codec.decode_profile(&buf).expect("decode");
        assert_eq!(decoded, p);
        // Held for every patient: not the four slots a `Vec` collected
        // through `Result` starts with (restart memory).
        assert!(decoded.care_team.capacity() < 4);
    }
}

#[test]
fn profile_height_beyond_schema_scale_is_refused() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let p = PatientProfile {
        height_cm: d("180.25"),
        ..profile()
    };
    assert!(codec.encode_profile(&p, &mut Vec::new()).is_err());
}

#[test]
fn hrv_window_round_trips_with_and_without_metrics() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let ok = HrvWindow {
        patient_id: "p-1".into(),
        window_start_ms: 1_700_000_100_000,
        window_end_ms: 1_700_000_400_000,
        artifact_filter: ArtifactFilter::Malik,
        quality: HrvQuality::Ok,
        n_beats: 312,
        n_rejected: 4,
        n_late: 2,
        mean_nn_ms: Some(d("812.345")),
        sdnn_ms: Some(d("41.002")),
        rmssd_ms: Some(d("28.5")),
        pnn50_pct: Some(d("7.353")),
        mean_hr_bpm: Some(d("73.860")),
        reading_ids: vec!["r-1".into(), "r-2".into()],
    };
    let insufficient = HrvWindow {
        artifact_filter: ArtifactFilter::None,
        quality: HrvQuality::Insufficient,
        n_beats: 20,
        mean_nn_ms: None,
        sdnn_ms: None,
        rmssd_ms: None,
        pnn50_pct: None,
        mean_hr_bpm: None,
        ..ok.clone()
    };
    let mut buf = Vec::new();
    for w in [ok, insufficient] {
        codec.encode_hrv_window(&w, &mut buf).expect("encode");
        assert_eq!(codec.decode_hrv_window(&buf).expect("decode"), w);
    }
}

#[test]
fn a_profile_is_not_accepted_as_a_raw_reading() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let mut buf = Vec::new();
    codec.encode_profile(&profile(), &mut buf).expect("encode");
    assert!(matches!(
        codec.decode_raw(&buf),
        Err(DecodeError::UnknownSchema(2))
    ));
}

#[test]
fn clinician_alert_round_trips_with_every_rule_and_severity() {
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let mut buf = Vec::new();
    for (i, rule) in AlertRule::ALL.into_iter().enumerate() {
        let alert = ClinicianAlert {
            alert_id: format!("{i:032x}"),
            patient_id: "p-1".into(),
            care_team: vec!["team-a".into(), "team-b".into()],
            rule,
            severity: Severity::ALL[i % 4],
            observed: d("185.5"),
            threshold: d("0.125"),
            unit: "mmHg".into(),
            evidence_reading_ids: vec!["r-1".into(), "r-2".into()],
            event_time_ms: 1_700_000_000_000,
            note: SCREENING_NOTE.into(),
        };
        codec.encode_alert(&alert, &mut buf).expect("encode");
        assert_eq!(codec.decode_alert(&buf).expect("decode"), alert);
    }
    let too_precise = ClinicianAlert {
        alert_id: "x".into(),
        patient_id: "p-1".into(),
        care_team: vec![],
        rule: AlertRule::Fever,
        severity: Severity::Warning,
        observed: d("38.1234"),
        threshold: d("38.0"),
        unit: "Cel".into(),
        evidence_reading_ids: vec![],
        event_time_ms: 0,
        note: SCREENING_NOTE.into(),
    };
    assert!(codec.encode_alert(&too_precise, &mut buf).is_err());
}
