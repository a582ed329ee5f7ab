//! `RawReading` ↔ Avro `Value`, following `schemas/raw_reading.avsc`.

use apache_avro::types::Value;

use super::decimal::DecimalSpec;
use super::value::{Fields, as_decimal, as_int, decimal_value, enum_of, nullable, record};
use super::{DecodeError, EncodeError};
use crate::model::{
    Attribution, BloodPressure, BodyScan, BodySegment, DeviceKind, EcgClassification, EcgResult,
    HeartRhythm, Measurement, RawReading, RhythmSource, SegmentImpedance,
};

// Decimal shapes and enum symbols exactly as in raw_reading.avsc; the
// round-trip tests encode through the parsed schema, so a drift fails them.
pub(crate) const WEIGHT: DecimalSpec = DecimalSpec::new(7, 3);
pub(crate) const IMPEDANCE: DecimalSpec = DecimalSpec::new(7, 2);
pub(crate) const SPO2: DecimalSpec = DecimalSpec::new(4, 1);
pub(crate) const TEMPERATURE: DecimalSpec = DecimalSpec::new(4, 2);

pub(crate) const DEVICE_KINDS: [(DeviceKind, &str); 6] = [
    (DeviceKind::Scale, "SCALE"),
    (DeviceKind::Watch, "WATCH"),
    (DeviceKind::BpMonitor, "BP_MONITOR"),
    (DeviceKind::Thermometer, "THERMOMETER"),
    (DeviceKind::PulseOximeter, "PULSE_OXIMETER"),
    (DeviceKind::Other, "OTHER"),
];
pub(crate) const ATTRIBUTIONS: [(Attribution, &str); 3] = [
    (Attribution::Device, "DEVICE"),
    (Attribution::Manual, "MANUAL"),
    (Attribution::Ambiguous, "AMBIGUOUS"),
];
pub(crate) const SEGMENTS: [(BodySegment, &str); 5] = [
    (BodySegment::LeftArm, "LEFT_ARM"),
    (BodySegment::RightArm, "RIGHT_ARM"),
    (BodySegment::LeftLeg, "LEFT_LEG"),
    (BodySegment::RightLeg, "RIGHT_LEG"),
    (BodySegment::Torso, "TORSO"),
];
pub(crate) const RHYTHM_SOURCES: [(RhythmSource, &str); 2] =
    [(RhythmSource::Ecg, "ECG"), (RhythmSource::Ppg, "PPG")];
pub(crate) const ECG_CLASSES: [(EcgClassification, &str); 3] = [
    (EcgClassification::SinusRhythm, "SINUS_RHYTHM"),
    (EcgClassification::Afib, "AFIB"),
    (EcgClassification::Inconclusive, "INCONCLUSIVE"),
];

/// Maps a decoded `RawReading` datum to the typed record.
pub(crate) fn from_value(value: &Value) -> Result<RawReading<'static>, DecodeError> {
    let f = Fields::of(value, "RawReading")?;
    Ok(RawReading {
        reading_id: f.string("reading_id")?,
        device_id: f.string("device_id")?,
        device_model: f.string("device_model")?,
        device_kind: f.symbol_in("device_kind", &DEVICE_KINDS)?,
        patient_id: f.string("patient_id")?,
        measured_at_ms: f.long("measured_at")?,
        received_at_ms: f.long("received_at")?,
        attribution: f.symbol_in("attribution", &ATTRIBUTIONS)?,
        measurement: measurement(value_of(value, "measurement")?)?,
    })
}

fn value_of<'v>(record: &'v Value, name: &'static str) -> Result<&'v Value, DecodeError> {
    match record {
        Value::Record(fields) => fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| DecodeError::field(name, "missing")),
        _ => Err(DecodeError::field(name, "not in a record")),
    }
}

fn measurement(value: &Value) -> Result<Measurement, DecodeError> {
    let Value::Union(branch, inner) = value else {
        return Err(DecodeError::field("measurement", "expected a union"));
    };
    let f = Fields::of(inner, "measurement")?;
    Ok(match branch {
        0 => Measurement::BodyScan(BodyScan {
            weight_kg: f.decimal("weight_kg", WEIGHT)?,
            resistance_ohm: f.decimal("resistance_ohm", IMPEDANCE)?,
            reactance_ohm: f.decimal("reactance_ohm", IMPEDANCE)?,
            segments: f
                .array("segments")?
                .iter()
                .map(segment)
                .collect::<Result<_, _>>()?,
        }),
        1 => Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: f
                .array("rr_intervals_ms")?
                .iter()
                .map(|v| as_int(v, "rr_intervals_ms"))
                .collect::<Result<_, _>>()?,
            source: f.symbol_in("source", &RHYTHM_SOURCES)?,
        }),
        2 => Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: f.int("systolic_mmhg")?,
            diastolic_mmhg: f.int("diastolic_mmhg")?,
            pulse_bpm: f.opt_int("pulse_bpm")?,
        }),
        3 => Measurement::SpO2 {
            pct: f.decimal("spo2_pct", SPO2)?,
        },
        4 => Measurement::Temperature {
            celsius: f.decimal("temperature_c", TEMPERATURE)?,
        },
        5 => Measurement::Ecg(EcgResult {
            classification: f.symbol_in("classification", &ECG_CLASSES)?,
            heart_rate_bpm: f.int("heart_rate_bpm")?,
        }),
        other => {
            return Err(DecodeError::field(
                "measurement",
                format!("unknown union branch {other}"),
            ));
        }
    })
}

fn segment(value: &Value) -> Result<SegmentImpedance, DecodeError> {
    let f = Fields::of(value, "segments")?;
    Ok(SegmentImpedance {
        segment: f.symbol_in("segment", &SEGMENTS)?,
        resistance_ohm: as_decimal(f.get("resistance_ohm")?, IMPEDANCE, "resistance_ohm")?,
        reactance_ohm: as_decimal(f.get("reactance_ohm")?, IMPEDANCE, "reactance_ohm")?,
    })
}

/// Maps a typed reading to its Avro datum value.
pub(crate) fn to_value(reading: &RawReading<'_>) -> Result<Value, EncodeError> {
    Ok(record(vec![
        ("reading_id", Value::String(reading.reading_id.to_string())),
        ("device_id", Value::String(reading.device_id.to_string())),
        (
            "device_model",
            Value::String(reading.device_model.to_string()),
        ),
        ("device_kind", enum_of(&DEVICE_KINDS, reading.device_kind)),
        ("patient_id", Value::String(reading.patient_id.to_string())),
        (
            "measured_at",
            Value::TimestampMillis(reading.measured_at_ms),
        ),
        (
            "received_at",
            Value::TimestampMillis(reading.received_at_ms),
        ),
        ("attribution", enum_of(&ATTRIBUTIONS, reading.attribution)),
        ("measurement", measurement_value(&reading.measurement)?),
    ]))
}

fn measurement_value(m: &Measurement) -> Result<Value, EncodeError> {
    let (branch, value) = match m {
        Measurement::BodyScan(s) => {
            let segments = if s.segments.is_empty() {
                nullable(None)
            } else {
                let items = s
                    .segments
                    .iter()
                    .map(segment_value)
                    .collect::<Result<Vec<_>, _>>()?;
                nullable(Some(Value::Array(items)))
            };
            (
                0,
                record(vec![
                    (
                        "weight_kg",
                        decimal_value(s.weight_kg, WEIGHT, "weight_kg")?,
                    ),
                    (
                        "resistance_ohm",
                        decimal_value(s.resistance_ohm, IMPEDANCE, "resistance_ohm")?,
                    ),
                    (
                        "reactance_ohm",
                        decimal_value(s.reactance_ohm, IMPEDANCE, "reactance_ohm")?,
                    ),
                    ("segments", segments),
                ]),
            )
        }
        Measurement::HeartRhythm(h) => (
            1,
            record(vec![
                (
                    "rr_intervals_ms",
                    Value::Array(h.rr_intervals_ms.iter().map(|&v| Value::Int(v)).collect()),
                ),
                ("source", enum_of(&RHYTHM_SOURCES, h.source)),
            ]),
        ),
        Measurement::BloodPressure(bp) => (
            2,
            record(vec![
                ("systolic_mmhg", Value::Int(bp.systolic_mmhg)),
                ("diastolic_mmhg", Value::Int(bp.diastolic_mmhg)),
                ("pulse_bpm", nullable(bp.pulse_bpm.map(Value::Int))),
            ]),
        ),
        Measurement::SpO2 { pct } => (
            3,
            record(vec![("spo2_pct", decimal_value(*pct, SPO2, "spo2_pct")?)]),
        ),
        Measurement::Temperature { celsius } => (
            4,
            record(vec![(
                "temperature_c",
                decimal_value(*celsius, TEMPERATURE, "temperature_c")?,
            )]),
        ),
        Measurement::Ecg(e) => (
            5,
            record(vec![
                ("classification", enum_of(&ECG_CLASSES, e.classification)),
                ("heart_rate_bpm", Value::Int(e.heart_rate_bpm)),
            ]),
        ),
    };
    Ok(Value::Union(branch, Box::new(value)))
}

fn segment_value(s: &SegmentImpedance) -> Result<Value, EncodeError> {
    Ok(record(vec![
        ("segment", enum_of(&SEGMENTS, s.segment)),
        (
            "resistance_ohm",
            decimal_value(s.resistance_ohm, IMPEDANCE, "segments.resistance_ohm")?,
        ),
        (
            "reactance_ohm",
            decimal_value(s.reactance_ohm, IMPEDANCE, "segments.reactance_ohm")?,
        ),
    ]))
}
