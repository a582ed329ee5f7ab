//! `PatientProfile` ↔ Avro `Value`, following `schemas/patient_profile.avsc`.

use apache_avro::types::Value;

use super::decimal::DecimalSpec;
use super::value::{Fields, decimal_value, enum_value, nullable, record};
use super::{DecodeError, EncodeError};
use crate::model::{PatientProfile, Sex, ThresholdOverride};

const HEIGHT: DecimalSpec = DecimalSpec::new(5, 1);
const THRESHOLD: DecimalSpec = DecimalSpec::new(10, 3);
const WEIGHT: DecimalSpec = DecimalSpec::new(7, 3);

pub(crate) fn to_value(p: &PatientProfile) -> Result<Value, EncodeError> {
    let overrides = p
        .threshold_overrides
        .iter()
        .map(|o| {
            Ok(record(vec![
                ("rule", Value::String(o.rule.clone())),
                (
                    "threshold",
                    decimal_value(o.threshold, THRESHOLD, "threshold")?,
                ),
            ]))
        })
        .collect::<Result<_, EncodeError>>()?;
    let dry_weight = match p.dry_weight_kg {
        Some(w) => Some(decimal_value(w, WEIGHT, "dry_weight_kg")?),
        None => None,
    };
    Ok(record(vec![
        ("patient_id", Value::String(p.patient_id.clone())),
        ("birth_date", Value::Date(p.birth_date_days)),
        ("sex", enum_value(&Sex::SYMBOLS, p.sex as usize)),
        (
            "height_cm",
            decimal_value(p.height_cm, HEIGHT, "height_cm")?,
        ),
        ("rpm_enrolled", Value::Boolean(p.rpm_enrolled)),
        (
            "consent_clinician_sharing",
            Value::Boolean(p.consent_clinician_sharing),
        ),
        (
            "care_team",
            Value::Array(p.care_team.iter().cloned().map(Value::String).collect()),
        ),
        ("threshold_overrides", Value::Array(overrides)),
        ("dry_weight_kg", nullable(dry_weight)),
    ]))
}

pub(crate) fn from_value(value: &Value) -> Result<PatientProfile, DecodeError> {
    let f = Fields::of(value, "PatientProfile")?;
    let sex = match f.symbol("sex")? {
        "FEMALE" => Sex::Female,
        "MALE" => Sex::Male,
        _ => Sex::Unspecified,
    };
    let threshold_overrides = f
        .array("threshold_overrides")?
        .iter()
        .map(|v| {
            let o = Fields::of(v, "threshold_overrides")?;
            Ok(ThresholdOverride {
                rule: o.string("rule")?.into_owned(),
                threshold: o.decimal("threshold", THRESHOLD)?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(PatientProfile {
        patient_id: f.string("patient_id")?.into_owned(),
        birth_date_days: f.date("birth_date")?,
        sex,
        height_cm: f.decimal("height_cm", HEIGHT)?,
        rpm_enrolled: f.boolean("rpm_enrolled")?,
        consent_clinician_sharing: f.boolean("consent_clinician_sharing")?,
        care_team: f.strings("care_team")?,
        threshold_overrides,
        dry_weight_kg: f.opt_decimal("dry_weight_kg", WEIGHT)?,
    })
}
