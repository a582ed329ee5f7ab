//! `EnrichedReading` ↔ Avro `Value`, following `schemas/enriched_reading.avsc`.

use apache_avro::types::Value;

use super::decimal::DecimalSpec;
use super::value::{Fields, decimal_value, enum_of, nullable, record, unwrap_union};
use super::{DecodeError, EncodeError, raw};
use crate::model::{BodyComposition, BpCategory, EnrichedReading, Provenance, QualityFlag};

/// BP categories with their symbols, in `enriched_reading.avsc` order.
pub(crate) const BP_CATEGORIES: [(BpCategory, &str); 6] = [
    (BpCategory::Hypotension, "HYPOTENSION"),
    (BpCategory::Normal, "NORMAL"),
    (BpCategory::Elevated, "ELEVATED"),
    (BpCategory::Stage1, "STAGE_1"),
    (BpCategory::Stage2, "STAGE_2"),
    (BpCategory::Crisis, "CRISIS"),
];
pub(crate) const MASS: DecimalSpec = DecimalSpec::new(9, 3);
pub(crate) const PERCENT: DecimalSpec = DecimalSpec::new(9, 2);
pub(crate) const ENERGY: DecimalSpec = DecimalSpec::new(9, 1);

/// LOINC codes the processor emits; decoding maps a code back to its `'static` str.
const LOINC_CODES: [&str; 6] = [
    "29463-7", "8867-4", "59408-5", "8310-5", "85354-9", "39156-5",
];

pub(crate) fn to_value(e: &EnrichedReading<'_>) -> Result<Value, EncodeError> {
    let flags = e
        .quality_flags
        .iter()
        .map(|f| Value::String(f.as_str().to_owned()))
        .collect();
    let category = e.bp_category.map(|c| enum_of(&BP_CATEGORIES, c));
    let body = match &e.body_composition {
        None => None,
        Some(b) => Some(record(vec![
            ("bmi", decimal_value(b.bmi, MASS, "bmi")?),
            (
                "fat_free_mass_kg",
                decimal_value(b.fat_free_mass_kg, MASS, "fat_free_mass_kg")?,
            ),
            (
                "fat_mass_kg",
                decimal_value(b.fat_mass_kg, MASS, "fat_mass_kg")?,
            ),
            (
                "fat_ratio_pct",
                decimal_value(b.fat_ratio_pct, PERCENT, "fat_ratio_pct")?,
            ),
            (
                "skeletal_muscle_mass_kg",
                decimal_value(b.skeletal_muscle_mass_kg, MASS, "skeletal_muscle_mass_kg")?,
            ),
            (
                "total_body_water_kg",
                decimal_value(b.total_body_water_kg, MASS, "total_body_water_kg")?,
            ),
            ("bmr_kcal", decimal_value(b.bmr_kcal, ENERGY, "bmr_kcal")?),
        ])),
    };
    Ok(record(vec![
        ("reading", raw::to_value(&e.reading)?),
        ("quality_flags", Value::Array(flags)),
        (
            "loinc_code",
            nullable(e.loinc_code.map(|c| Value::String(c.to_owned()))),
        ),
        ("bp_category", nullable(category)),
        ("body_composition", nullable(body)),
        (
            "provenance",
            record(vec![
                ("topic", Value::String(e.provenance.topic.to_string())),
                ("partition", Value::Int(e.provenance.partition)),
                ("offset", Value::Long(e.provenance.offset)),
            ]),
        ),
        ("processed_at", Value::TimestampMillis(e.processed_at_ms)),
        (
            "bmi",
            nullable(match e.bmi {
                Some(bmi) => Some(decimal_value(bmi, MASS, "bmi")?),
                None => None,
            }),
        ),
    ]))
}

pub(crate) fn from_value(value: &Value) -> Result<EnrichedReading<'static>, DecodeError> {
    let f = Fields::of(value, "EnrichedReading")?;
    let quality_flags = f
        .array("quality_flags")?
        .iter()
        .map(|v| match v {
            Value::String(s) => QualityFlag::from_wire(s)
                .ok_or_else(|| DecodeError::field("quality_flags", format!("unknown flag {s}"))),
            _ => Err(DecodeError::field("quality_flags", "expected strings")),
        })
        .collect::<Result<_, _>>()?;
    let loinc_code = match f.get("loinc_code")? {
        Value::String(code) => Some(
            LOINC_CODES
                .into_iter()
                .find(|c| c == code)
                .ok_or_else(|| DecodeError::field("loinc_code", format!("unknown code {code}")))?,
        ),
        _ => None,
    };
    let bp_category = match f.get("bp_category")? {
        Value::Enum(i, _) => Some(bp_category(*i)?),
        _ => None,
    };
    let body_composition = match f.get("body_composition")? {
        Value::Null => None,
        v => {
            let b = Fields::of(v, "body_composition")?;
            Some(BodyComposition {
                bmi: b.decimal("bmi", MASS)?,
                fat_free_mass_kg: b.decimal("fat_free_mass_kg", MASS)?,
                fat_mass_kg: b.decimal("fat_mass_kg", MASS)?,
                fat_ratio_pct: b.decimal("fat_ratio_pct", PERCENT)?,
                skeletal_muscle_mass_kg: b.decimal("skeletal_muscle_mass_kg", MASS)?,
                total_body_water_kg: b.decimal("total_body_water_kg", MASS)?,
                bmr_kcal: b.decimal("bmr_kcal", ENERGY)?,
            })
        }
    };
    let p = Fields::of(f.get("provenance")?, "provenance")?;
    Ok(EnrichedReading {
        reading: raw::from_value(unwrap_union(f.get("reading")?))?,
        quality_flags,
        loinc_code,
        bp_category,
        body_composition,
        provenance: Provenance {
            topic: p.string("topic")?,
            partition: p.int("partition")?,
            offset: p.long("offset")?,
        },
        processed_at_ms: f.long("processed_at")?,
        // Absent in data written with schema version 1.
        bmi: match f.get("bmi") {
            Ok(Value::Null) | Err(_) => None,
            Ok(_) => Some(f.decimal("bmi", MASS)?),
        },
    })
}

fn bp_category(index: u32) -> Result<BpCategory, DecodeError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| BP_CATEGORIES.get(i))
        .map(|(c, _)| *c)
        .ok_or_else(|| DecodeError::field("bp_category", "unknown symbol"))
}
