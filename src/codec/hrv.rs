//! `HrvWindow` ↔ Avro `Value`, following `schemas/hrv_window.avsc`.

use apache_avro::types::Value;
use rust_decimal::Decimal;

use super::decimal::DecimalSpec;
use super::value::{Fields, decimal_value, enum_value, nullable, record};
use super::{DecodeError, EncodeError};
use crate::model::{ArtifactFilter, HrvQuality, HrvWindow};

const METRIC: DecimalSpec = DecimalSpec::new(12, 3);
const QUALITY: [&str; 2] = ["OK", "INSUFFICIENT"];

pub(crate) fn to_value(w: &HrvWindow) -> Result<Value, EncodeError> {
    let metric = |v: Option<Decimal>, name| -> Result<Value, EncodeError> {
        Ok(nullable(match v {
            Some(d) => Some(decimal_value(d, METRIC, name)?),
            None => None,
        }))
    };
    let count = |n: u32| Value::Int(i32::try_from(n).unwrap_or(i32::MAX));
    Ok(record(vec![
        ("patient_id", Value::String(w.patient_id.clone())),
        ("window_start", Value::TimestampMillis(w.window_start_ms)),
        ("window_end", Value::TimestampMillis(w.window_end_ms)),
        (
            "artifact_filter",
            Value::String(w.artifact_filter.as_str().to_owned()),
        ),
        ("quality", enum_value(&QUALITY, w.quality as usize)),
        ("n_beats", count(w.n_beats)),
        ("n_rejected", count(w.n_rejected)),
        ("n_late", count(w.n_late)),
        ("mean_nn_ms", metric(w.mean_nn_ms, "mean_nn_ms")?),
        ("sdnn_ms", metric(w.sdnn_ms, "sdnn_ms")?),
        ("rmssd_ms", metric(w.rmssd_ms, "rmssd_ms")?),
        ("pnn50_pct", metric(w.pnn50_pct, "pnn50_pct")?),
        ("mean_hr_bpm", metric(w.mean_hr_bpm, "mean_hr_bpm")?),
        (
            "reading_ids",
            Value::Array(w.reading_ids.iter().cloned().map(Value::String).collect()),
        ),
    ]))
}

pub(crate) fn from_value(value: &Value) -> Result<HrvWindow, DecodeError> {
    let f = Fields::of(value, "HrvWindow")?;
    let filter = f.string("artifact_filter")?;
    let count = |name| {
        f.int(name).and_then(|n| {
            u32::try_from(n).map_err(|_| DecodeError::field(name, "must not be negative"))
        })
    };
    Ok(HrvWindow {
        patient_id: f.string("patient_id")?.into_owned(),
        window_start_ms: f.long("window_start")?,
        window_end_ms: f.long("window_end")?,
        artifact_filter: ArtifactFilter::from_wire(&filter)
            .ok_or_else(|| DecodeError::field("artifact_filter", format!("unknown {filter}")))?,
        quality: match f.symbol("quality")? {
            "OK" => HrvQuality::Ok,
            _ => HrvQuality::Insufficient,
        },
        n_beats: count("n_beats")?,
        n_rejected: count("n_rejected")?,
        n_late: count("n_late")?,
        mean_nn_ms: f.opt_decimal("mean_nn_ms", METRIC)?,
        sdnn_ms: f.opt_decimal("sdnn_ms", METRIC)?,
        rmssd_ms: f.opt_decimal("rmssd_ms", METRIC)?,
        pnn50_pct: f.opt_decimal("pnn50_pct", METRIC)?,
        mean_hr_bpm: f.opt_decimal("mean_hr_bpm", METRIC)?,
        reading_ids: f.strings("reading_ids")?,
    })
}
