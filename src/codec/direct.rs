//! Schema-specific Avro binary codec for the hot path: `RawReading` decoded
//! straight into the typed record with strings borrowed from the payload, and
//! `RawReading` / `EnrichedReading` encoded straight into the output buffer.
//!
//! The schemas stay the single source of truth. This code follows
//! `schemas/raw_reading.avsc` and `schemas/enriched_reading.avsc` field by
//! field, and [`Codec`](super::Codec) uses it only when the embedded schemas'
//! parsing canonical forms have the fingerprints pinned below; otherwise it
//! falls back to apache-avro's generic reader and writer. Changing a schema
//! without revisiting this file therefore keeps the service correct, and fails
//! `direct_codec_matches_the_embedded_schemas` so it is not forgotten. The
//! property tests compare both paths byte for byte and value for value.

use std::borrow::Cow;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;

use super::binary::{Reader, put_array, put_bytes, put_long, put_str};
use super::decimal::{self, DecimalSpec, Unscaled};
use super::enriched::{BP_CATEGORIES, ENERGY, MASS, PERCENT};
use super::raw::{
    ATTRIBUTIONS, DEVICE_KINDS, ECG_CLASSES, IMPEDANCE, RHYTHM_SOURCES, SEGMENTS, SPO2,
    TEMPERATURE, WEIGHT,
};
use super::value::{Symbols, symbol_index};
use super::{DecodeError, EncodeError};
use crate::model::{
    BloodPressure, BodyScan, EcgResult, EnrichedReading, HeartRhythm, Measurement, RawReading,
    SegmentImpedance,
};

/// Rabin fingerprint of the parsing canonical form of `RawReading` this
/// file was written for.
pub(crate) const RAW_READING_FINGERPRINT: u64 = 0x220d_978f_1744_4fca;
/// Same for `EnrichedReading` (used together with the `RawReading` one,
/// since an enriched reading embeds the raw reading).
pub(crate) const ENRICHED_READING_FINGERPRINT: u64 = 0x7619_913b_7e94_0c55;

/// The 64-bit Rabin fingerprint of `schema`'s parsing canonical form.
pub(crate) fn fingerprint(schema: &Schema) -> u64 {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    bytes
        .first_chunk::<8>()
        .map_or(0, |le| u64::from_le_bytes(*le))
}

/// The value at the enum symbol index read for `field`.
fn read_symbol<T: Copy>(
    r: &mut Reader<'_>,
    field: &'static str,
    table: &Symbols<T>,
) -> Result<T, DecodeError> {
    Ok(table[r.index(field, table.len())?].0)
}

/// Appends `value`'s enum symbol index.
fn put_symbol<T: PartialEq>(buf: &mut Vec<u8>, table: &Symbols<T>, value: T) {
    put_long(buf, symbol_index(table, value) as i64);
}

/// Decodes a `RawReading` datum (without framing), borrowing its strings.
pub(crate) fn read_raw<'a>(r: &mut Reader<'a>) -> Result<RawReading<'a>, DecodeError> {
    let reading_id = Cow::Borrowed(r.str("reading_id")?);
    let device_id = Cow::Borrowed(r.str("device_id")?);
    let device_model = Cow::Borrowed(r.str("device_model")?);
    let device_kind = read_symbol(r, "device_kind", &DEVICE_KINDS)?;
    let patient_id = Cow::Borrowed(r.str("patient_id")?);
    let measured_at_ms = r.long("measured_at")?;
    let received_at_ms = r.long("received_at")?;
    let attribution = read_symbol(r, "attribution", &ATTRIBUTIONS)?;
    let measurement = read_measurement(r)?;
    Ok(RawReading {
        reading_id,
        device_id,
        device_model,
        device_kind,
        patient_id,
        measured_at_ms,
        received_at_ms,
        attribution,
        measurement,
    })
}

fn read_decimal(
    r: &mut Reader<'_>,
    spec: DecimalSpec,
    field: &'static str,
) -> Result<rust_decimal::Decimal, DecodeError> {
    decimal::from_unscaled_be(r.bytes(field)?, spec, field)
}

fn read_measurement(r: &mut Reader<'_>) -> Result<Measurement, DecodeError> {
    Ok(match r.index("measurement", 6)? {
        0 => {
            let weight_kg = read_decimal(r, WEIGHT, "weight_kg")?;
            let resistance_ohm = read_decimal(r, IMPEDANCE, "resistance_ohm")?;
            let reactance_ohm = read_decimal(r, IMPEDANCE, "reactance_ohm")?;
            let mut segments = Vec::new();
            if r.index("segments", 2)? == 1 {
                r.array("segments", &mut segments, |r| {
                    Ok(SegmentImpedance {
                        segment: read_symbol(r, "segments.segment", &SEGMENTS)?,
                        resistance_ohm: read_decimal(r, IMPEDANCE, "segments.resistance_ohm")?,
                        reactance_ohm: read_decimal(r, IMPEDANCE, "segments.reactance_ohm")?,
                    })
                })?;
            }
            Measurement::BodyScan(BodyScan {
                weight_kg,
                resistance_ohm,
                reactance_ohm,
                segments,
            })
        }
        1 => {
            let mut rr_intervals_ms = Vec::new();
            r.array("rr_intervals_ms", &mut rr_intervals_ms, |r| {
                r.int("rr_intervals_ms")
            })?;
            let source = read_symbol(r, "source", &RHYTHM_SOURCES)?;
            Measurement::HeartRhythm(HeartRhythm {
                rr_intervals_ms,
                source,
            })
        }
        2 => Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: r.int("systolic_mmhg")?,
            diastolic_mmhg: r.int("diastolic_mmhg")?,
            pulse_bpm: match r.index("pulse_bpm", 2)? {
                0 => None,
                _ => Some(r.int("pulse_bpm")?),
            },
        }),
        3 => Measurement::SpO2 {
            pct: read_decimal(r, SPO2, "spo2_pct")?,
        },
        4 => Measurement::Temperature {
            celsius: read_decimal(r, TEMPERATURE, "temperature_c")?,
        },
        _ => Measurement::Ecg(EcgResult {
            classification: read_symbol(r, "classification", &ECG_CLASSES)?,
            heart_rate_bpm: r.int("heart_rate_bpm")?,
        }),
    })
}

fn put_decimal(
    buf: &mut Vec<u8>,
    value: rust_decimal::Decimal,
    spec: DecimalSpec,
    field: &'static str,
) -> Result<(), EncodeError> {
    put_bytes(buf, Unscaled::of(value, spec, field)?.as_bytes());
    Ok(())
}

/// Appends the `RawReading` datum of `reading` (without framing).
pub(crate) fn write_raw(buf: &mut Vec<u8>, reading: &RawReading<'_>) -> Result<(), EncodeError> {
    put_str(buf, &reading.reading_id);
    put_str(buf, &reading.device_id);
    put_str(buf, &reading.device_model);
    put_symbol(buf, &DEVICE_KINDS, reading.device_kind);
    put_str(buf, &reading.patient_id);
    put_long(buf, reading.measured_at_ms);
    put_long(buf, reading.received_at_ms);
    put_symbol(buf, &ATTRIBUTIONS, reading.attribution);
    match &reading.measurement {
        Measurement::BodyScan(s) => {
            put_long(buf, 0);
            put_decimal(buf, s.weight_kg, WEIGHT, "weight_kg")?;
            put_decimal(buf, s.resistance_ohm, IMPEDANCE, "resistance_ohm")?;
            put_decimal(buf, s.reactance_ohm, IMPEDANCE, "reactance_ohm")?;
            if s.segments.is_empty() {
                put_long(buf, 0);
            } else {
                put_long(buf, 1);
                put_array(buf, &s.segments, |buf, seg| {
                    put_symbol(buf, &SEGMENTS, seg.segment);
                    put_decimal(
                        buf,
                        seg.resistance_ohm,
                        IMPEDANCE,
                        "segments.resistance_ohm",
                    )?;
                    put_decimal(buf, seg.reactance_ohm, IMPEDANCE, "segments.reactance_ohm")
                })?;
            }
        }
        Measurement::HeartRhythm(h) => {
            put_long(buf, 1);
            put_array(buf, &h.rr_intervals_ms, |buf, &rr| {
                put_long(buf, i64::from(rr));
                Ok::<_, EncodeError>(())
            })?;
            put_symbol(buf, &RHYTHM_SOURCES, h.source);
        }
        Measurement::BloodPressure(bp) => {
            put_long(buf, 2);
            put_long(buf, i64::from(bp.systolic_mmhg));
            put_long(buf, i64::from(bp.diastolic_mmhg));
            match bp.pulse_bpm {
                None => put_long(buf, 0),
                Some(p) => {
                    put_long(buf, 1);
                    put_long(buf, i64::from(p));
                }
            }
        }
        Measurement::SpO2 { pct } => {
            put_long(buf, 3);
            put_decimal(buf, *pct, SPO2, "spo2_pct")?;
        }
        Measurement::Temperature { celsius } => {
            put_long(buf, 4);
            put_decimal(buf, *celsius, TEMPERATURE, "temperature_c")?;
        }
        Measurement::Ecg(e) => {
            put_long(buf, 5);
            put_symbol(buf, &ECG_CLASSES, e.classification);
            put_long(buf, i64::from(e.heart_rate_bpm));
        }
    }
    Ok(())
}

/// Appends the `EnrichedReading` datum of `e` (without framing).
pub(crate) fn write_enriched(
    buf: &mut Vec<u8>,
    e: &EnrichedReading<'_>,
) -> Result<(), EncodeError> {
    write_raw(buf, &e.reading)?;
    put_array(buf, &e.quality_flags, |buf, flag| {
        put_str(buf, flag.as_str());
        Ok::<_, EncodeError>(())
    })?;
    match e.loinc_code {
        None => put_long(buf, 0),
        Some(code) => {
            put_long(buf, 1);
            put_str(buf, code);
        }
    }
    match e.bp_category {
        None => put_long(buf, 0),
        Some(c) => {
            put_long(buf, 1);
            put_symbol(buf, &BP_CATEGORIES, c);
        }
    }
    match &e.body_composition {
        None => put_long(buf, 0),
        Some(b) => {
            put_long(buf, 1);
            put_decimal(buf, b.bmi, MASS, "bmi")?;
            put_decimal(buf, b.fat_free_mass_kg, MASS, "fat_free_mass_kg")?;
            put_decimal(buf, b.fat_mass_kg, MASS, "fat_mass_kg")?;
            put_decimal(buf, b.fat_ratio_pct, PERCENT, "fat_ratio_pct")?;
            put_decimal(
                buf,
                b.skeletal_muscle_mass_kg,
                MASS,
                "skeletal_muscle_mass_kg",
            )?;
            put_decimal(buf, b.total_body_water_kg, MASS, "total_body_water_kg")?;
            put_decimal(buf, b.bmr_kcal, ENERGY, "bmr_kcal")?;
        }
    }
    put_str(buf, &e.provenance.topic);
    put_long(buf, i64::from(e.provenance.partition));
    put_long(buf, e.provenance.offset);
    put_long(buf, e.processed_at_ms);
    match e.bmi {
        None => put_long(buf, 0),
        Some(bmi) => {
            put_long(buf, 1);
            put_decimal(buf, bmi, MASS, "bmi")?;
        }
    }
    Ok(())
}
