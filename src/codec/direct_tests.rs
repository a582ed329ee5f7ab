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
            segment: raw::SEGMENTS[s].0,
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
            classification: raw::ECG_CLASSES[c].0,
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
                    device_kind: raw::DEVICE_KINDS[kind].0,
                    patient_id: Cow::Owned(patient_id),
                    measured_at_ms: at,
                    received_at_ms: rx,
                    attribution: raw::ATTRIBUTIONS[attr].0,
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
        (
            proptest::option::of(body),
            proptest::option::of((0i64..999_999_999).prop_map(|u| Decimal::new(u, 3))),
        ),
        (text(), any::<i32>(), any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |(reading, quality_flags, loinc, bp, (body_composition, bmi), (topic, p, o, at))| {
                EnrichedReading {
                    reading,
                    quality_flags,
                    loinc_code: loinc.map(|i| {
                        [
                            "29463-7", "8867-4", "59408-5", "8310-5", "85354-9", "39156-5",
                        ][i]
                    }),
                    bp_category: bp.map(|i| enriched::BP_CATEGORIES[i].0),
                    body_composition,
                    bmi,
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
        // Both accept a canonical encoding alike; apache-avro also accepts
        // some non-canonical input (see `a_varint_cut_by_the_end_of_input_is_malformed`).
        if let Ok(generic) = codec.decode_raw_generic(&bytes) {
            // A flipped byte can give a decimal more digits than its
            // schema's precision: apache-avro decodes it, the encoder
            // refuses it, so it has no canonical encoding to compare.
            let mut canonical = Vec::new();
            let encodes = codec.encode_raw(&generic, &mut canonical).is_ok();
            if encodes && canonical == bytes {
                prop_assert_eq!(codec.decode_raw(&bytes).expect("direct accepts it"), generic);
            }
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
    assert_eq!(err.dlq_reason(), crate::model::DlqReason::Malformed);
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

/// Schema evolution: other writer versions of `RawReading` configured under
/// their own ids.
mod evolution {
    use std::io::Write;

    use apache_avro::types::Value;

    use super::*;
    use crate::codec::{CodecConfig, WriterSchema};

    /// The embedded `RawReading` schema as JSON, edited by `change`, in a file.
    fn writer_file(change: impl FnOnce(&mut serde_json::Value)) -> tempfile::NamedTempFile {
        let mut json: serde_json::Value =
            serde_json::from_str(schemas::RAW_READING_AVSC).expect("schema is JSON");
        change(&mut json);
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(json.to_string().as_bytes())
            .expect("write schema");
        file
    }

    fn fields(record: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
        record["fields"].as_array_mut().expect("fields")
    }

    fn codec(writers: &[(u32, &tempfile::NamedTempFile)]) -> Codec {
        let config = CodecConfig {
            raw_reading_writers: writers
                .iter()
                .map(|(id, file)| WriterSchema {
                    id: *id,
                    schema_file: file.path().to_owned(),
                })
                .collect(),
            ..CodecConfig::default()
        };
        Codec::from_config(SchemaIds::default(), &config).expect("codec")
    }

    fn scan() -> RawReading<'static> {
        super::super::tests::reading(Measurement::BodyScan(BodyScan {
            weight_kg: Decimal::new(80_125, 3),
            resistance_ohm: Decimal::new(45_050, 2),
            reactance_ohm: Decimal::new(5_500, 2),
            segments: vec![],
        }))
    }

    /// `value` written with the schema in `file` under `id`, framed.
    fn framed(id: u32, file: &tempfile::NamedTempFile, value: Value) -> Vec<u8> {
        let text = std::fs::read_to_string(file.path()).expect("read schema");
        let schema = apache_avro::Schema::parse_str(&text).expect("parse");
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .expect("writer")
            .write_value_ref(&mut out, &value)
            .expect("encode");
        out
    }

    #[test]
    fn an_older_writer_without_an_optional_field_decodes_with_its_default() {
        // Version 0 had no segmental impedance on body scans.
        let older = writer_file(|s| {
            let body_scan = &mut s["fields"][8]["type"][0];
            fields(body_scan).retain(|f| f["name"] != "segments");
        });
        let codec = codec(&[(7, &older)]);
        let Value::Record(mut record) = raw::to_value(&scan()).expect("value") else {
            panic!("a record");
        };
        if let (_, Value::Union(_, inner)) = &mut record[8]
            && let Value::Record(scan_fields) = inner.as_mut()
        {
            scan_fields.retain(|(name, _)| name != "segments");
        }
        let payload = framed(7, &older, Value::Record(record));
        assert_eq!(codec.decode_raw(&payload).expect("decodes"), scan());
    }

    #[test]
    fn a_newer_writer_with_an_added_optional_field_decodes() {
        let newer = writer_file(|s| {
            fields(s).push(serde_json::json!(
                {"name": "firmware_version", "type": ["null", "string"], "default": null}
            ));
        });
        let codec = codec(&[(8, &newer)]);
        let Value::Record(mut record) = raw::to_value(&scan()).expect("value") else {
            panic!("a record");
        };
        record.push((
            "firmware_version".into(),
            Value::Union(1, Box::new(Value::String("4.2.1".into()))),
        ));
        let payload = framed(8, &newer, Value::Record(record));
        assert_eq!(codec.decode_raw(&payload).expect("decodes"), scan());
        // The current version still takes the direct path.
        let mut current = Vec::new();
        codec.encode_raw(&scan(), &mut current).expect("encode");
        assert_eq!(codec.decode_raw(&current).expect("decodes"), scan());
    }

    #[test]
    fn an_incompatible_writer_goes_to_the_dlq_as_unknown_schema_with_the_reason() {
        // patient_id turned into a number: no reader of this version can
        // resolve it.
        let incompatible = writer_file(|s| {
            s["fields"][4]["type"] = serde_json::json!("long");
        });
        let codec = codec(&[(9, &incompatible)]);
        let Value::Record(mut record) = raw::to_value(&scan()).expect("value") else {
            panic!("a record");
        };
        record[4].1 = Value::Long(42);
        let payload = framed(9, &incompatible, Value::Record(record));
        let err = codec.decode_raw(&payload).expect_err("incompatible");
        assert_eq!(err.dlq_reason(), crate::model::DlqReason::UnknownSchema);
        assert!(err.to_string().contains("schema id 9"), "{err}");
        assert!(err.to_string().contains("patient_id"), "{err}");
        // A writer id nobody configured is unknown_schema too.
        let mut unknown = payload.clone();
        unknown[4] = 10;
        assert_eq!(
            codec.decode_raw(&unknown),
            Err(DecodeError::UnknownSchema(10))
        );
    }

    #[test]
    fn a_compatible_writer_with_garbage_data_is_malformed() {
        let newer = writer_file(|s| {
            fields(s).push(serde_json::json!(
                {"name": "firmware_version", "type": ["null", "string"], "default": null}
            ));
        });
        let codec = codec(&[(8, &newer)]);
        let mut payload = vec![0, 0, 0, 0, 8];
        payload.extend_from_slice(&[0xFF; 12]);
        let err = codec.decode_raw(&payload).expect_err("garbage");
        assert_eq!(err.dlq_reason(), crate::model::DlqReason::Malformed);
    }

    #[test]
    fn a_missing_writer_schema_file_is_a_start_up_error_naming_it() {
        let config = CodecConfig {
            raw_reading_writers: vec![WriterSchema {
                id: 7,
                schema_file: "/nonexistent/raw_reading_v0.avsc".into(),
            }],
            ..CodecConfig::default()
        };
        let err = Codec::from_config(SchemaIds::default(), &config).expect_err("missing file");
        assert!(err.to_string().contains("raw_reading_v0.avsc"), "{err}");
    }
}

/// Found by fuzzing: a body scan whose last byte, where the `segments` union
/// index belongs, starts a varint the input cuts off. apache-avro reads it as
/// the `null` branch (and the re-encode check cannot tell: the value's
/// canonical encoding has the same length); the direct decoder refuses it.
#[test]
fn a_varint_cut_by_the_end_of_input_is_malformed() {
    let mut payload = vec![0, 0, 0, 0, 1];
    let mut datum = Vec::new();
    let r = RawReading {
        reading_id: Cow::Borrowed("rd-7-0000000330"),
        device_id: Cow::Borrowed("dev-00014-0"),
        device_model: Cow::Borrowed("Body Scan"),
        device_kind: DeviceKind::Scale,
        patient_id: Cow::Borrowed("patient-00014"),
        measured_at_ms: 1_763_899_971_976,
        received_at_ms: 1_763_899_973_700,
        attribution: Attribution::Device,
        measurement: Measurement::BodyScan(BodyScan {
            weight_kg: Decimal::new(81_658, 3),
            resistance_ohm: Decimal::new(49_368, 2),
            reactance_ohm: Decimal::new(-32_013, 2),
            segments: vec![],
        }),
    };
    direct::write_raw(&mut datum, &r).expect("encode");
    assert_eq!(datum.pop(), Some(0), "segments: null");
    datum.push(0xD9);
    payload.extend_from_slice(&datum);
    let codec = Codec::new(SchemaIds::default()).expect("codec");
    let err = codec.decode_raw(&payload).expect_err("cut-off varint");
    assert_eq!(
        err,
        DecodeError::field("segments", "datum ends inside a number")
    );
    assert_eq!(err.dlq_reason(), crate::model::DlqReason::Malformed);
}
