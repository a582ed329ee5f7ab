//! Readings → [`Observation`]s of the signals the rules watch.

use rust_decimal::Decimal;

use super::history::Sample;
use super::rules::Signal;
use crate::model::{EcgClassification, Measurement, RawReading};
use crate::process::Checked;

/// The reading ids an observation rests on.
#[derive(Debug, Clone, Copy)]
pub enum Evidence<'a> {
    /// One reading.
    One(&'a str),
    /// Several (the readings of an HRV window).
    Many(&'a [String]),
}

impl Evidence<'_> {
    /// Owned copies of the ids.
    pub fn to_vec(self) -> Vec<String> {
        match self {
            Self::One(id) => vec![id.to_owned()],
            Self::Many(ids) => ids.to_vec(),
        }
    }
}

/// One value of one signal at one event time.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Which signal.
    pub signal: Signal,
    /// Event time, ms.
    pub t_ms: i64,
    /// Value (systolic for blood pressure).
    pub value: Decimal,
    /// Diastolic, for blood pressure.
    pub secondary: Option<Decimal>,
    /// Where it came from.
    pub evidence: Evidence<'a>,
}

impl Observation<'_> {
    /// The (last) reading id.
    pub fn last_id(&self) -> &str {
        match self.evidence {
            Evidence::One(id) => id,
            Evidence::Many(ids) => ids.last().map_or("", String::as_str),
        }
    }

    /// The observation as a history sample.
    pub fn sample(&self) -> Sample {
        Sample::new(
            self.signal,
            self.t_ms,
            self.value,
            self.secondary,
            self.last_id(),
        )
    }
}

/// The observations in one reading: at most two (a cuff reading gives blood
/// pressure and pulse; an AFib ECG gives the rhythm and its rate). Heart
/// rhythm gives none here: its windows are observed when they close.
pub fn observations<'a>(
    reading: &'a RawReading<'_>,
    checked: Checked,
) -> [Option<Observation<'a>>; 2] {
    let at = |signal, value, secondary| {
        Some(Observation {
            signal,
            t_ms: reading.measured_at_ms,
            value,
            secondary,
            evidence: Evidence::One(&reading.reading_id),
        })
    };
    match &reading.measurement {
        Measurement::BodyScan(scan) => [at(Signal::Weight, scan.weight_kg, None), None],
        Measurement::BloodPressure(bp) => [
            at(
                Signal::BloodPressure,
                Decimal::from(bp.systolic_mmhg),
                Some(Decimal::from(bp.diastolic_mmhg)),
            ),
            bp.pulse_bpm
                .filter(|_| !checked.pulse_dropped)
                .and_then(|p| at(Signal::RestingHeartRate, Decimal::from(p), None)),
        ],
        Measurement::SpO2 { pct } => [at(Signal::SpO2, *pct, None), None],
        Measurement::Temperature { celsius } => [at(Signal::Temperature, *celsius, None), None],
        Measurement::Ecg(ecg) => {
            // An implausible rate is not a resting heart rate; an AFib
            // classification still alerts, with the rate unknown (0): it
            // passes the default limit (any AFib), not a raised one.
            let rate = if checked.rate_dropped {
                Decimal::ZERO
            } else {
                Decimal::from(ecg.heart_rate_bpm)
            };
            [
                (!checked.rate_dropped)
                    .then(|| at(Signal::RestingHeartRate, rate, None))
                    .flatten(),
                (ecg.classification == EcgClassification::Afib)
                    .then(|| at(Signal::AfibEcg, rate, None))
                    .flatten(),
            ]
        }
        Measurement::HeartRhythm(_) => [None, None],
    }
}
