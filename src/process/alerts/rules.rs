//! The rule table of DESIGN.md §5: what each alert rule watches, its default
//! threshold, unit, severity and how it fires.
//!
//! The engine has no rule-specific code: it extracts [`Signal`] observations
//! from readings and HRV windows and runs every [`RuleDef`] of that signal
//! through the evaluator of its [`Trigger`]. Adding a rule is adding a row.
//! A profile's clinician override replaces `threshold` (for blood pressure,
//! the systolic limit; the diastolic limit stays the default).

use rust_decimal::Decimal;

use crate::model::{AlertRule, Severity};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A positive decimal `unscaled × 10^-scale`, usable in constants.
const fn dec(unscaled: u32, scale: u32) -> Decimal {
    Decimal::from_parts(unscaled, 0, 0, false, scale)
}

/// What a rule watches. Observations of one signal come from one or more
/// measurement kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Signal {
    /// Body weight, kg (scale).
    Weight,
    /// Systolic with diastolic, mmHg (cuff).
    BloodPressure,
    /// SpO2, percent.
    SpO2,
    /// Heart rate measured at rest by protocol, bpm: the cuff's pulse and
    /// the ECG recording's rate. Free-running watch rhythm is not used, as
    /// nothing tells rest from exercise in it.
    RestingHeartRate,
    /// Body temperature, °C.
    Temperature,
    /// An ECG classified as atrial fibrillation; value = its heart rate, bpm.
    AfibEcg,
    /// RMSSD of a closed HRV window of quality `ok`, ms.
    Rmssd,
}

impl Signal {
    /// Number of signals (`self as usize` indexes per-signal arrays).
    pub const COUNT: usize = 7;

    /// Every signal, in index order.
    pub const ALL: [Signal; Self::COUNT] = [
        Self::Weight,
        Self::BloodPressure,
        Self::SpO2,
        Self::RestingHeartRate,
        Self::Temperature,
        Self::AfibEcg,
        Self::Rmssd,
    ];

    /// The signal of index `i` (`signal as usize`).
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
}

/// Which side of the threshold fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// value > threshold
    Above,
    /// value ≥ threshold
    AtLeast,
    /// value < threshold
    Below,
}

impl Direction {
    /// Whether `value` is beyond `threshold`.
    pub fn beyond(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::AtLeast => value >= threshold,
            Self::Below => value < threshold,
        }
    }
}

/// How observations beyond the threshold become an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// One observation beyond the threshold.
    Single,
    /// The patient's last `readings` observations of the signal are all
    /// beyond the threshold and span at most `within_ms` of event time.
    /// Observations less than `min_apart_ms` before the newest one (the same
    /// measuring session) neither count for nor against it: a rule that
    /// wants two sessions ("2 readings at least 5 min apart") looks past them.
    Sustained {
        /// Observations that must all be beyond.
        readings: usize,
        /// Longest event-time span they may cover.
        within_ms: i64,
        /// Least event time between the newest observation and each earlier
        /// one that counts; 0 counts every one.
        min_apart_ms: i64,
    },
    /// One observation beyond the threshold waits for a repeat: a repeat
    /// beyond within `within_ms` gives `confirmed` severity with both
    /// readings as evidence; otherwise (a repeat that is not beyond, a later
    /// reading, or no repeat in time) the rule's own severity.
    Confirmed {
        /// Event-time window for the repeat.
        within_ms: i64,
        /// Severity of a confirmed alert.
        confirmed: Severity,
    },
    /// Rise of the value over the newest earlier observation between
    /// `from_ms` and `to_ms` before it (the previous day's weigh-in: 18–36 h
    /// earlier, whatever the hour of the daily routine) is beyond the
    /// threshold (a difference, e.g. kg). No such observation: no alert.
    SincePrevious {
        /// Nearest end of the look-back, ms before the observation.
        from_ms: i64,
        /// Farthest end of the look-back, ms before the observation.
        to_ms: i64,
    },
    /// Rise of the value over its lowest point in the preceding `window_ms`
    /// is beyond the threshold (which is then a difference, e.g. kg).
    RiseOver {
        /// How far back the lowest point is looked for.
        window_ms: i64,
    },
    /// Value below `threshold × baseline`, the baseline being the mean of
    /// the preceding `window_ms` of the patient's own values, once at least
    /// `min_samples` of them exist. `threshold` is a ratio.
    BelowBaseline {
        /// Baseline period.
        window_ms: i64,
        /// Baseline values needed before the rule can fire.
        min_samples: u32,
    },
}

/// One row of the rule table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDef {
    /// Rule name and alert `rule` field.
    pub rule: AlertRule,
    /// What it watches.
    pub signal: Signal,
    /// Which side of the threshold fires.
    pub direction: Direction,
    /// Default threshold, replaced by a clinician override for the patient.
    pub threshold: Decimal,
    /// Diastolic limit of blood-pressure rules (same direction), not overridable.
    pub secondary: Option<Decimal>,
    /// Unit of observed value and threshold (UCUM-style).
    pub unit: &'static str,
    /// Severity (of an unconfirmed alert, for [`Trigger::Confirmed`]).
    pub severity: Severity,
    /// How it fires.
    pub trigger: Trigger,
    /// Sane bounds `(min, max)` of a clinician override, inclusive. An
    /// override outside them (a °F fever limit, an SpO2 of 0.88, a 50 kg
    /// weight gain) is a unit or typing mistake: it is rejected and the
    /// default applies, never a silent no-alert.
    pub override_bounds: (Decimal, Decimal),
}

impl RuleDef {
    /// The threshold in force: the clinician's override, else the default.
    pub fn threshold_with(&self, overridden: Option<Decimal>) -> Decimal {
        overridden.unwrap_or(self.threshold)
    }
}

/// The rules of DESIGN.md §5 with their defaults.
pub const RULES: [RuleDef; 11] = [
    RuleDef {
        rule: AlertRule::WeightGain24h,
        signal: Signal::Weight,
        direction: Direction::Above,
        threshold: dec(900, 3),
        secondary: None,
        unit: "kg",
        severity: Severity::Warning,
        trigger: Trigger::SincePrevious {
            from_ms: 18 * HOUR_MS,
            to_ms: 36 * HOUR_MS,
        },
        override_bounds: (dec(2, 1), dec(5, 0)),
    },
    RuleDef {
        rule: AlertRule::WeightGain7d,
        signal: Signal::Weight,
        direction: Direction::Above,
        threshold: dec(2300, 3),
        secondary: None,
        unit: "kg",
        severity: Severity::Warning,
        trigger: Trigger::RiseOver {
            window_ms: 7 * DAY_MS,
        },
        override_bounds: (dec(5, 1), dec(10, 0)),
    },
    RuleDef {
        rule: AlertRule::BpCrisis,
        signal: Signal::BloodPressure,
        // ACC/AHA 2017: crisis is above 180 and/or above 120.
        direction: Direction::Above,
        threshold: dec(180, 0),
        secondary: Some(dec(120, 0)),
        unit: "mm[Hg]",
        severity: Severity::Urgent,
        trigger: Trigger::Confirmed {
            within_ms: 5 * MINUTE_MS,
            confirmed: Severity::Critical,
        },
        override_bounds: (dec(140, 0), dec(250, 0)),
    },
    RuleDef {
        rule: AlertRule::BpStage2Sustained,
        signal: Signal::BloodPressure,
        direction: Direction::AtLeast,
        threshold: dec(140, 0),
        secondary: Some(dec(90, 0)),
        unit: "mm[Hg]",
        severity: Severity::Warning,
        trigger: Trigger::Sustained {
            readings: 3,
            within_ms: 7 * DAY_MS,
            min_apart_ms: 0,
        },
        override_bounds: (dec(120, 0), dec(200, 0)),
    },
    RuleDef {
        rule: AlertRule::Hypotension,
        signal: Signal::BloodPressure,
        direction: Direction::Below,
        threshold: dec(90, 0),
        // On systolic only: a low diastolic under a normal or raised
        // systolic (150/55) is not hypotension worth a clinician's call.
        secondary: None,
        unit: "mm[Hg]",
        severity: Severity::Warning,
        trigger: Trigger::Single,
        override_bounds: (dec(70, 0), dec(120, 0)),
    },
    RuleDef {
        rule: AlertRule::Spo2Low,
        signal: Signal::SpO2,
        direction: Direction::Below,
        threshold: dec(90, 0),
        secondary: None,
        unit: "%",
        severity: Severity::Urgent,
        trigger: Trigger::Sustained {
            readings: 2,
            within_ms: 10 * MINUTE_MS,
            min_apart_ms: 0,
        },
        override_bounds: (dec(70, 0), dec(97, 0)),
    },
    RuleDef {
        rule: AlertRule::RestingHrHigh,
        signal: Signal::RestingHeartRate,
        direction: Direction::Above,
        threshold: dec(120, 0),
        secondary: None,
        unit: "/min",
        severity: Severity::Warning,
        // Home routines: a morning and an evening reading, not three
        // within an hour. Two sessions at least 5 min apart within a day.
        trigger: Trigger::Sustained {
            readings: 2,
            within_ms: DAY_MS,
            min_apart_ms: 5 * MINUTE_MS,
        },
        override_bounds: (dec(80, 0), dec(200, 0)),
    },
    RuleDef {
        rule: AlertRule::RestingHrLow,
        signal: Signal::RestingHeartRate,
        direction: Direction::Below,
        threshold: dec(40, 0),
        secondary: None,
        unit: "/min",
        severity: Severity::Warning,
        // Home routines: a morning and an evening reading, not three
        // within an hour. Two sessions at least 5 min apart within a day.
        trigger: Trigger::Sustained {
            readings: 2,
            within_ms: DAY_MS,
            min_apart_ms: 5 * MINUTE_MS,
        },
        override_bounds: (dec(25, 0), dec(70, 0)),
    },
    RuleDef {
        rule: AlertRule::Afib,
        signal: Signal::AfibEcg,
        // Any AFib recording by default; a clinician may raise the limit for
        // a patient with known, rate-controlled AFib.
        direction: Direction::AtLeast,
        threshold: dec(0, 0),
        secondary: None,
        unit: "/min",
        severity: Severity::Warning,
        trigger: Trigger::Single,
        override_bounds: (dec(0, 0), dec(200, 0)),
    },
    RuleDef {
        rule: AlertRule::Fever,
        signal: Signal::Temperature,
        direction: Direction::AtLeast,
        threshold: dec(380, 1),
        secondary: None,
        unit: "Cel",
        severity: Severity::Warning,
        trigger: Trigger::Single,
        override_bounds: (dec(370, 1), dec(400, 1)),
    },
    RuleDef {
        rule: AlertRule::RmssdLow,
        signal: Signal::Rmssd,
        direction: Direction::Below,
        threshold: dec(5, 1),
        secondary: None,
        unit: "ms",
        severity: Severity::Info,
        trigger: Trigger::BelowBaseline {
            window_ms: 7 * DAY_MS,
            min_samples: 24,
        },
        override_bounds: (dec(1, 1), dec(9, 1)),
    },
];

/// Longest event-time look-back over a patient's history that any rule of
/// `signal` needs, ms. Sustained rules without a session gap look at a count
/// of readings instead ([`recent_needed`]).
pub fn history_ms(signal: Signal) -> i64 {
    RULES
        .iter()
        .filter(|r| r.signal == signal)
        .map(|r| match r.trigger {
            Trigger::Single => 0,
            // The repeat may arrive after the first was published: keep
            // the first for the confirmation window.
            Trigger::Confirmed { within_ms, .. } => within_ms,
            // Readings of one session are skipped, so a count is not enough.
            Trigger::Sustained {
                within_ms,
                min_apart_ms,
                ..
            } if min_apart_ms > 0 => within_ms,
            Trigger::Sustained { .. } => 0,
            Trigger::SincePrevious { to_ms, .. } => to_ms,
            Trigger::RiseOver { window_ms } | Trigger::BelowBaseline { window_ms, .. } => window_ms,
        })
        .max()
        .unwrap_or(0)
}

/// Most recent observations any `Sustained` rule of `signal` looks at.
pub fn recent_needed(signal: Signal) -> usize {
    RULES
        .iter()
        .filter(|r| r.signal == signal)
        .map(|r| match r.trigger {
            Trigger::Sustained { readings, .. } => readings,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{ALERT_RULES, ALERT_SEVERITIES};

    #[test]
    fn the_table_has_one_row_per_rule_in_rule_order() {
        let rules: Vec<AlertRule> = RULES.iter().map(|r| r.rule).collect();
        assert_eq!(rules, AlertRule::ALL);
        let names: Vec<&str> = RULES.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(names, ALERT_RULES, "metric labels match the rule names");
        let severities: Vec<&str> = Severity::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(severities, ALERT_SEVERITIES);
    }

    #[test]
    fn defaults_are_those_of_the_design() {
        let t = |rule: AlertRule| RULES[rule as usize].threshold.to_string();
        assert_eq!(t(AlertRule::WeightGain24h), "0.900");
        assert_eq!(t(AlertRule::WeightGain7d), "2.300");
        assert_eq!(t(AlertRule::BpCrisis), "180");
        assert_eq!(t(AlertRule::Spo2Low), "90");
        assert_eq!(t(AlertRule::Fever), "38.0");
        assert_eq!(t(AlertRule::RmssdLow), "0.5");
        assert_eq!(
            RULES[AlertRule::BpCrisis as usize].secondary,
            Some(Decimal::from(120))
        );
        let crisis = &RULES[AlertRule::BpCrisis as usize];
        assert!(
            !crisis
                .direction
                .beyond(Decimal::from(180), crisis.threshold)
        );
        assert!(
            crisis
                .direction
                .beyond(Decimal::from(181), crisis.threshold)
        );
        assert_eq!(RULES[AlertRule::Hypotension as usize].secondary, None);
        assert!(Direction::AtLeast.beyond(Decimal::from(180), Decimal::from(180)));
        assert!(!Direction::Above.beyond(Decimal::from(120), Decimal::from(120)));
    }

    #[test]
    fn history_needs_follow_the_table() {
        assert_eq!(history_ms(Signal::Weight), 7 * DAY_MS);
        assert_eq!(history_ms(Signal::RestingHeartRate), DAY_MS);
        assert_eq!(history_ms(Signal::BloodPressure), 5 * MINUTE_MS);
        assert_eq!(recent_needed(Signal::BloodPressure), 3);
        assert_eq!(recent_needed(Signal::SpO2), 2);
        assert_eq!(recent_needed(Signal::Temperature), 0);
    }
}
