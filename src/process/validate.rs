//! Plausibility and timing checks on a decoded reading (DESIGN.md §3).

use rust_decimal::Decimal;

use super::{DlqReason, Rejection};
use crate::config::{Range, ValidationConfig};
use crate::model::{Measurement, RawReading};

/// Checks timing, RR count and plausibility ranges of `reading` at processor
/// time `now_ms`. Key and dedup checks are the processor's.
///
/// # Errors
/// The first [`Rejection`] found; its detail names the field and limit.
pub fn validate(
    reading: &RawReading<'_>,
    cfg: &ValidationConfig,
    now_ms: i64,
) -> Result<(), Rejection> {
    let latest = now_ms.saturating_add(cfg.max_clock_skew_ms);
    if reading.measured_at_ms > latest {
        return Err(Rejection::new(
            DlqReason::FutureTimestamp,
            format!(
                "measured_at is {} ms ahead of the processor clock (allowed skew {} ms)",
                reading.measured_at_ms.saturating_sub(now_ms),
                cfg.max_clock_skew_ms
            ),
        ));
    }
    let r = &cfg.ranges;
    match &reading.measurement {
        Measurement::BodyScan(scan) => {
            check("weight_kg", scan.weight_kg, &r.weight_kg)?;
            check("resistance_ohm", scan.resistance_ohm, &r.resistance_ohm)?;
            check("reactance_ohm", scan.reactance_ohm, &r.reactance_ohm)?;
            for seg in &scan.segments {
                // Segmental impedances are a fraction of the whole-body value;
                // only their sign and an upper bound are checked here.
                check_positive(
                    "segments.resistance_ohm",
                    seg.resistance_ohm,
                    r.resistance_ohm.max,
                )?;
                check_positive(
                    "segments.reactance_ohm",
                    seg.reactance_ohm,
                    r.reactance_ohm.max,
                )?;
            }
        }
        Measurement::HeartRhythm(rhythm) => {
            let n = rhythm.rr_intervals_ms.len();
            if n == 0 || n > cfg.max_rr_intervals {
                return Err(Rejection::new(
                    DlqReason::OutOfRange,
                    format!(
                        "rr_intervals_ms has {n} values, allowed 1..={}",
                        cfg.max_rr_intervals
                    ),
                ));
            }
            // All intervals are in range when the shortest and longest are:
            // two decimal comparisons instead of one per beat.
            let (mut shortest, mut longest) = (i32::MAX, i32::MIN);
            for &rr in &rhythm.rr_intervals_ms {
                shortest = shortest.min(rr);
                longest = longest.max(rr);
            }
            check(
                "rr_intervals_ms",
                Decimal::from(shortest),
                &r.rr_interval_ms,
            )?;
            check("rr_intervals_ms", Decimal::from(longest), &r.rr_interval_ms)?;
        }
        Measurement::BloodPressure(bp) => {
            check("systolic_mmhg", bp.systolic_mmhg.into(), &r.systolic_mmhg)?;
            check(
                "diastolic_mmhg",
                bp.diastolic_mmhg.into(),
                &r.diastolic_mmhg,
            )?;
            if bp.diastolic_mmhg >= bp.systolic_mmhg {
                return Err(Rejection::new(
                    DlqReason::OutOfRange,
                    format!(
                        "diastolic_mmhg={} is not below systolic_mmhg={}",
                        bp.diastolic_mmhg, bp.systolic_mmhg
                    ),
                ));
            }
            if let Some(pulse) = bp.pulse_bpm {
                check("pulse_bpm", pulse.into(), &r.heart_rate_bpm)?;
            }
        }
        Measurement::SpO2 { pct } => check("spo2_pct", *pct, &r.spo2_pct)?,
        Measurement::Temperature { celsius } => check("temperature_c", *celsius, &r.temperature_c)?,
        Measurement::Ecg(ecg) => {
            check(
                "heart_rate_bpm",
                ecg.heart_rate_bpm.into(),
                &r.heart_rate_bpm,
            )?;
        }
    }
    Ok(())
}

fn check(field: &'static str, value: Decimal, range: &Range) -> Result<(), Rejection> {
    if range.contains(value) {
        return Ok(());
    }
    Err(Rejection::new(
        DlqReason::OutOfRange,
        format!("{field}={value} outside {}..={}", range.min, range.max),
    ))
}

fn check_positive(field: &'static str, value: Decimal, max: Decimal) -> Result<(), Rejection> {
    if value > Decimal::ZERO && value <= max {
        return Ok(());
    }
    Err(Rejection::new(
        DlqReason::OutOfRange,
        format!("{field}={value} outside (0, {max}]"),
    ))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::model::{Attribution, BloodPressure, DeviceKind};

    fn bp(sys: i32, dia: i32, at: i64) -> RawReading<'static> {
        RawReading {
            reading_id: Cow::Borrowed("r"),
            device_id: Cow::Borrowed("d"),
            device_model: Cow::Borrowed("m"),
            device_kind: DeviceKind::BpMonitor,
            patient_id: Cow::Borrowed("p"),
            measured_at_ms: at,
            received_at_ms: at,
            attribution: Attribution::Device,
            measurement: Measurement::BloodPressure(BloodPressure {
                systolic_mmhg: sys,
                diastolic_mmhg: dia,
                pulse_bpm: None,
            }),
        }
    }

    #[test]
    fn out_of_range_detail_names_the_field() {
        let cfg = ValidationConfig::default();
        let err = validate(&bp(320, 80, 0), &cfg, 0).expect_err("systolic too high");
        assert_eq!(err.reason, DlqReason::OutOfRange);
        assert!(
            err.detail.starts_with("systolic_mmhg=320"),
            "{}",
            err.detail
        );
        validate(&bp(120, 80, 0), &cfg, 0).expect("plausible");
    }

    #[test]
    fn future_beyond_skew_is_rejected_but_within_skew_accepted() {
        let cfg = ValidationConfig::default();
        let skew = cfg.max_clock_skew_ms;
        validate(&bp(120, 80, skew), &cfg, 0).expect("within skew");
        let err = validate(&bp(120, 80, skew + 1), &cfg, 0).expect_err("beyond skew");
        assert_eq!(err.reason, DlqReason::FutureTimestamp);
    }
}
