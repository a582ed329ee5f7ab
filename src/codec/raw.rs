//! `RawReading` ↔ Avro `Value`, following `schemas/raw_reading.avsc`.

use apache_avro::types::Value;

use super::decimal::DecimalSpec;
use super::value::{Fields, as_decimal, as_int, decimal_value, enum_value, nullable, record};
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

const DEVICE_KINDS: [&str; 6] = [
    "SCALE",
    "WATCH",
    "BP_MONITOR",
    "THERMOMETER",
    "PULSE_OXIMETER",
    "OTHER",
];
const ATTRIBUTIONS: [&str; 3] = ["DEVICE", "MANUAL", "AMBIGUOUS"];
const SEGMENTS: [&str; 5] = ["LEFT_ARM", "RIGHT_ARM", "LEFT_LEG", "RIGHT_LEG", "TORSO"];
const RHYTHM_SOURCES: [&str; 2] = ["ECG", "PPG"];
const ECG_CLASSES: [&str; 3] = ["SINUS_RHYTHM", "AFIB", "INCONCLUSIVE"];

/// Maps a decoded `RawReading` datum to the typed record.
pub(crate) fn from_value(value: &Value) -> Result<RawReading<'static>, DecodeError> {
    let f = Fields::of(value, "RawReading")?;
    Ok(RawReading {
        reading_id: f.string("reading_id")?,
        device_id: f.string("device_id")?,
        device_model: f.string("device_model")?,
        device_kind: device_kind(f.symbol("device_kind")?),
        patient_id: f.string("patient_id")?,
        measured_at_ms: f.long("measured_at")?,
        received_at_ms: f.long("received_at")?,
        attribution: attribution(f.symbol("attribution")?),
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
            source: match f.symbol("source")? {
                "ECG" => RhythmSource::Ecg,
                _ => RhythmSource::Ppg,
            },
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
            classification: match f.symbol("classification")? {
                "SINUS_RHYTHM" => EcgClassification::SinusRhythm,
                "AFIB" => EcgClassification::Afib,
                _ => EcgClassification::Inconclusive,
            },
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
    let segment = match f.symbol("segment")? {
        "LEFT_ARM" => BodySegment::LeftArm,
        "RIGHT_ARM" => BodySegment::RightArm,
        "LEFT_LEG" => BodySegment::LeftLeg,
        "RIGHT_LEG" => BodySegment::RightLeg,
        "TORSO" => BodySegment::Torso,
        other => {
            return Err(DecodeError::field(
                "segment",
                format!("unknown symbol {other}"),
            ));
        }
    };
    Ok(SegmentImpedance {
        segment,
        resistance_ohm: as_decimal(f.get("resistance_ohm")?, IMPEDANCE, "resistance_ohm")?,
        reactance_ohm: as_decimal(f.get("reactance_ohm")?, IMPEDANCE, "reactance_ohm")?,
    })
}

fn device_kind(symbol: &str) -> DeviceKind {
    match symbol {
        "SCALE" => DeviceKind::Scale,
        "WATCH" => DeviceKind::Watch,
        "BP_MONITOR" => DeviceKind::BpMonitor,
        "THERMOMETER" => DeviceKind::Thermometer,
        "PULSE_OXIMETER" => DeviceKind::PulseOximeter,
        _ => DeviceKind::Other,
    }
}

fn attribution(symbol: &str) -> Attribution {
    match symbol {
        "DEVICE" => Attribution::Device,
        "MANUAL" => Attribution::Manual,
        _ => Attribution::Ambiguous,
    }
}

/// Maps a typed reading to its Avro datum value.
pub(crate) fn to_value(reading: &RawReading<'_>) -> Result<Value, EncodeError> {
    let kind_index = match reading.device_kind {
        DeviceKind::Scale => 0,
        DeviceKind::Watch => 1,
        DeviceKind::BpMonitor => 2,
        DeviceKind::Thermometer => 3,
        DeviceKind::PulseOximeter => 4,
        DeviceKind::Other => 5,
    };
    let attribution_index = match reading.attribution {
        Attribution::Device => 0,
        Attribution::Manual => 1,
        Attribution::Ambiguous => 2,
    };
    Ok(record(vec![
        ("reading_id", Value::String(reading.reading_id.to_string())),
        ("device_id", Value::String(reading.device_id.to_string())),
        (
            "device_model",
            Value::String(reading.device_model.to_string()),
        ),
        ("device_kind", enum_value(&DEVICE_KINDS, kind_index)),
        ("patient_id", Value::String(reading.patient_id.to_string())),
        (
            "measured_at",
            Value::TimestampMillis(reading.measured_at_ms),
        ),
        (
            "received_at",
            Value::TimestampMillis(reading.received_at_ms),
        ),
        ("attribution", enum_value(&ATTRIBUTIONS, attribution_index)),
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
                (
                    "source",
                    enum_value(&RHYTHM_SOURCES, usize::from(h.source == RhythmSource::Ppg)),
                ),
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
        Measurement::Ecg(e) => {
            let class = match e.classification {
                EcgClassification::SinusRhythm => 0,
                EcgClassification::Afib => 1,
                EcgClassification::Inconclusive => 2,
            };
            (
                5,
                record(vec![
                    ("classification", enum_value(&ECG_CLASSES, class)),
                    ("heart_rate_bpm", Value::Int(e.heart_rate_bpm)),
                ]),
            )
        }
    };
    Ok(Value::Union(branch, Box::new(value)))
}

fn segment_value(s: &SegmentImpedance) -> Result<Value, EncodeError> {
    let index = match s.segment {
        BodySegment::LeftArm => 0,
        BodySegment::RightArm => 1,
        BodySegment::LeftLeg => 2,
        BodySegment::RightLeg => 3,
        BodySegment::Torso => 4,
    };
    Ok(record(vec![
        ("segment", enum_value(&SEGMENTS, index)),
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
