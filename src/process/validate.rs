//! Plausibility and timing checks on a decoded reading (DESIGN.md §3).
//!
//! Only an implausible *primary* value rejects a reading: weight;
//! systolic/diastolic; SpO2; temperature; a heart-rhythm reading with no
//! plausible RR at all. An implausible *secondary* value is dropped from the
//! derived metrics and named in a quality flag ([`Checked`]), and the reading
//! is kept: a scale that cannot read impedance through socks still gives the
//! weight, the key heart-failure signal; a cuff's odd pulse does not lose the
//! blood pressure; one pause among normal beats does not lose the recording.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::{DlqReason, Rejection};
use super::{Range, ValidationConfig};
use crate::model::{Measurement, QualityFlag, RawReading};

/// RR interval from which a beat gap is a pause (sinus pause, dropped
/// beats, or a sensor gap worth a look), ms.
pub const PAUSE_RR_MS: i32 = 3000;

/// Secondary values of an accepted reading found implausible: dropped from
/// the derived metrics and alert rules, and named in quality flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Whole-body or segmental impedance implausible: no body composition.
    pub impedance_dropped: bool,
    /// The cuff's pulse implausible: not used as resting heart rate.
    pub pulse_dropped: bool,
    /// The ECG's heart rate implausible: not used as resting heart rate.
    pub rate_dropped: bool,
    /// Some RR intervals outside the plausible range: kept in the reading,
    /// rejected as beats in HRV.
    pub rr_implausible: bool,
    /// Some RR interval of at least [`PAUSE_RR_MS`].
    pub pause: bool,
}

impl Checked {
    /// The quality flags naming what was dropped.
    pub fn flags(self) -> impl Iterator<Item = QualityFlag> {
        [
            (self.impedance_dropped, QualityFlag::ImpedanceImplausible),
            (self.pulse_dropped, QualityFlag::PulseImplausible),
            (self.rate_dropped, QualityFlag::HeartRateImplausible),
            (self.rr_implausible, QualityFlag::RrIntervalsImplausible),
            (self.pause, QualityFlag::PauseDetected),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
    }
}

/// Checks timing, RR count and plausibility ranges of `reading` at processor
/// time `now_ms`. Key and dedup checks are the processor's.
///
/// # Errors
/// The first [`Rejection`] found for a primary value or the timing; its
/// detail names the field and limit.
pub fn validate(
    reading: &RawReading<'_>,
    cfg: &ValidationConfig,
    now_ms: i64,
) -> Result<Checked, Rejection> {
    not_after(reading.measured_at_ms, "measured_at", cfg, now_ms)?;
    let r = &cfg.ranges;
    let mut checked = Checked::default();
    match &reading.measurement {
        Measurement::BodyScan(scan) => {
            check("weight_kg", scan.weight_kg, &r.weight_kg)?;
            // Segmental impedances are a fraction of the whole-body value;
            // only their sign and an upper bound are checked.
            checked.impedance_dropped = !r.resistance_ohm.contains(scan.resistance_ohm)
                || !r.reactance_ohm.contains(scan.reactance_ohm)
                || scan.segments.iter().any(|seg| {
                    !positive_up_to(seg.resistance_ohm, r.resistance_ohm.max)
                        || !positive_up_to(seg.reactance_ohm, r.reactance_ohm.max)
                });
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
            let (plausible, duration_ms) = rr_summary(&rhythm.rr_intervals_ms, &r.rr_interval_ms);
            if plausible == 0 {
                return Err(Rejection::new(
                    DlqReason::OutOfRange,
                    format!(
                        "rr_intervals_ms: none of the {n} values within {}..={}",
                        r.rr_interval_ms.min, r.rr_interval_ms.max
                    ),
                ));
            }
            checked.rr_implausible = plausible < n;
            checked.pause = rhythm.rr_intervals_ms.iter().any(|&rr| rr >= PAUSE_RR_MS);
            // The recording's end is event time too: a reading may not move
            // it beyond the allowed skew.
            not_after(
                reading.measured_at_ms.saturating_add(duration_ms),
                "measured_at + sum(rr_intervals_ms)",
                cfg,
                now_ms,
            )?;
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
            checked.pulse_dropped = bp
                .pulse_bpm
                .is_some_and(|pulse| !r.heart_rate_bpm.contains(pulse.into()));
        }
        Measurement::SpO2 { pct } => check("spo2_pct", *pct, &r.spo2_pct)?,
        Measurement::Temperature { celsius } => check("temperature_c", *celsius, &r.temperature_c)?,
        Measurement::Ecg(ecg) => {
            checked.rate_dropped = !r.heart_rate_bpm.contains(ecg.heart_rate_bpm.into());
        }
    }
    Ok(checked)
}

/// `future_timestamp` when `t_ms` is beyond the processor clock plus skew.
fn not_after(t_ms: i64, what: &str, cfg: &ValidationConfig, now_ms: i64) -> Result<(), Rejection> {
    if t_ms <= now_ms.saturating_add(cfg.max_clock_skew_ms) {
        return Ok(());
    }
    Err(Rejection::new(
        DlqReason::FutureTimestamp,
        format!(
            "{what} is {} ms ahead of the processor clock (allowed skew {} ms)",
            t_ms.saturating_sub(now_ms),
            cfg.max_clock_skew_ms
        ),
    ))
}

/// Plausible RR intervals and the recording's duration (positive intervals
/// advance the beat clock, plausible or not), ms.
fn rr_summary(rr: &[i32], range: &Range) -> (usize, i64) {
    // Integer bounds: one comparison pair per beat, no decimal arithmetic.
    let lo = range.min.ceil().to_i64().unwrap_or(i64::MAX);
    let hi = range.max.floor().to_i64().unwrap_or(i64::MIN);
    let mut plausible = 0;
    let mut duration: i64 = 0;
    for &v in rr {
        let v = i64::from(v);
        if (lo..=hi).contains(&v) {
            plausible += 1;
        }
        if v > 0 {
            duration = duration.saturating_add(v);
        }
    }
    (plausible, duration)
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

fn positive_up_to(value: Decimal, max: Decimal) -> bool {
    value > Decimal::ZERO && value <= max
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

    fn with(m: Measurement) -> RawReading<'static> {
        RawReading {
            measurement: m,
            ..bp(120, 80, 0)
        }
    }

    #[test]
    fn socks_on_the_scale_keep_the_weight() {
        let cfg = ValidationConfig::default();
        let scan = |r: &str| {
            with(Measurement::BodyScan(crate::model::BodyScan {
                weight_kg: "81.4".parse().expect("d"),
                resistance_ohm: r.parse().expect("d"),
                reactance_ohm: "0".parse().expect("d"),
                segments: vec![],
            }))
        };
        let checked = validate(&scan("5000"), &cfg, 0).expect("weight kept");
        assert!(checked.impedance_dropped);
        assert_eq!(
            checked.flags().collect::<Vec<_>>(),
            [QualityFlag::ImpedanceImplausible]
        );
        let mut heavy = scan("500");
        if let Measurement::BodyScan(s) = &mut heavy.measurement {
            s.weight_kg = "812".parse().expect("d");
        }
        let err = validate(&heavy, &cfg, 0).expect_err("weight is primary");
        assert!(err.detail.starts_with("weight_kg=812"), "{}", err.detail);
    }

    #[test]
    fn an_odd_pulse_keeps_the_blood_pressure() {
        let cfg = ValidationConfig::default();
        let mut r = bp(128, 82, 0);
        if let Measurement::BloodPressure(b) = &mut r.measurement {
            b.pulse_bpm = Some(400);
        }
        let checked = validate(&r, &cfg, 0).expect("kept");
        assert!(checked.pulse_dropped);
        assert!(validate(&bp(128, 130, 0), &cfg, 0).is_err(), "primary");
    }

    #[test]
    fn a_pause_among_normal_beats_keeps_the_recording() {
        let cfg = ValidationConfig::default();
        let rhythm = |rr: Vec<i32>| {
            with(Measurement::HeartRhythm(crate::model::HeartRhythm {
                rr_intervals_ms: rr,
                source: crate::model::RhythmSource::Ppg,
            }))
        };
        let mut rr = vec![850; 30];
        rr.push(3500);
        rr.extend([850; 30]);
        let checked = validate(&rhythm(rr), &cfg, 0).expect("kept");
        assert!(checked.pause && checked.rr_implausible);
        let checked = validate(&rhythm(vec![900, 150, 900]), &cfg, 0).expect("kept");
        assert!(checked.rr_implausible && !checked.pause);
        let err = validate(&rhythm(vec![50, 4000]), &cfg, 0).expect_err("none plausible");
        assert_eq!(err.reason, DlqReason::OutOfRange);
    }

    #[test]
    fn a_recording_ending_in_the_future_is_rejected() {
        let cfg = ValidationConfig::default();
        let skew = cfg.max_clock_skew_ms;
        // Starts now, but its beats sum to 1.7 h: it would move event time.
        let long = with(Measurement::HeartRhythm(crate::model::HeartRhythm {
            rr_intervals_ms: vec![3000; 2040],
            source: crate::model::RhythmSource::Ecg,
        }));
        let cfg_long = ValidationConfig {
            max_rr_intervals: 4096,
            ..cfg.clone()
        };
        let err = validate(&long, &cfg_long, 0).expect_err("ends 1.7 h ahead");
        assert_eq!(err.reason, DlqReason::FutureTimestamp);
        assert!(
            err.detail.contains("sum(rr_intervals_ms)"),
            "{}",
            err.detail
        );
        let short = with(Measurement::HeartRhythm(crate::model::HeartRhythm {
            rr_intervals_ms: vec![1000; 60],
            source: crate::model::RhythmSource::Ecg,
        }));
        validate(&short, &cfg, skew - 60_000).expect("ends within the skew");
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
