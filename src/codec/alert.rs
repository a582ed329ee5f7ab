//! `ClinicianAlert` ↔ Avro `Value`, following `schemas/clinician_alert.avsc`.

use apache_avro::types::Value;

use super::decimal::DecimalSpec;
use super::value::{Fields, decimal_value, enum_value, record};
use super::{DecodeError, EncodeError};
use crate::model::{AlertRule, ClinicianAlert, Severity};

const AMOUNT: DecimalSpec = DecimalSpec::new(12, 3);

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

pub(crate) fn to_value(a: &ClinicianAlert) -> Result<Value, EncodeError> {
    Ok(record(vec![
        ("alert_id", Value::String(a.alert_id.clone())),
        ("patient_id", Value::String(a.patient_id.clone())),
        ("care_team", strings(&a.care_team)),
        ("rule", Value::String(a.rule.as_str().to_owned())),
        (
            "severity",
            enum_value(&Severity::SYMBOLS, a.severity as usize),
        ),
        ("observed", decimal_value(a.observed, AMOUNT, "observed")?),
        (
            "threshold",
            decimal_value(a.threshold, AMOUNT, "threshold")?,
        ),
        ("unit", Value::String(a.unit.clone())),
        ("evidence_reading_ids", strings(&a.evidence_reading_ids)),
        ("event_time", Value::TimestampMillis(a.event_time_ms)),
        ("note", Value::String(a.note.clone())),
    ]))
}

pub(crate) fn from_value(value: &Value) -> Result<ClinicianAlert, DecodeError> {
    let f = Fields::of(value, "ClinicianAlert")?;
    let rule = f.string("rule")?;
    let symbol = f.symbol("severity")?;
    Ok(ClinicianAlert {
        alert_id: f.string("alert_id")?.into_owned(),
        patient_id: f.string("patient_id")?.into_owned(),
        care_team: f.strings("care_team")?,
        rule: AlertRule::from_wire(&rule)
            .ok_or_else(|| DecodeError::field("rule", format!("unknown rule {rule}")))?,
        severity: Severity::SYMBOLS
            .iter()
            .position(|s| *s == symbol)
            .map(|i| Severity::ALL[i])
            .ok_or_else(|| DecodeError::field("severity", format!("unknown {symbol}")))?,
        observed: f.decimal("observed", AMOUNT)?,
        threshold: f.decimal("threshold", AMOUNT)?,
        unit: f.string("unit")?.into_owned(),
        evidence_reading_ids: f.strings("evidence_reading_ids")?,
        event_time_ms: f.long("event_time")?,
        note: f.string("note")?.into_owned(),
    })
}
