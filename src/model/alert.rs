//! `ClinicianAlert`: a remote-patient-monitoring alert for a patient's care
//! team (DESIGN.md §5), as published on `vitals.alerts`
//! (`schemas/clinician_alert.avsc`).

use rust_decimal::Decimal;

/// The fixed note every alert carries.
pub const SCREENING_NOTE: &str = "Screening signal, not a diagnosis: review it in clinical \
context before acting.";

/// The alert rules of DESIGN.md §5. The wire name ([`AlertRule::as_str`]) is
/// the alert's `rule` field, the `rule` metric label and the rule name in a
/// profile's clinician threshold overrides.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum AlertRule {
    /// Weight gain over 24 hours (heart failure).
    WeightGain24h,
    /// Weight gain over 7 days (heart failure).
    WeightGain7d,
    /// Blood pressure in the hypertensive-crisis range.
    BpCrisis,
    /// Stage-2 blood pressure over the last readings.
    BpStage2Sustained,
    /// Blood pressure below the hypotension limits.
    Hypotension,
    /// Low SpO2 on repeated readings.
    Spo2Low,
    /// Resting heart rate high on repeated readings.
    RestingHrHigh,
    /// Resting heart rate low on repeated readings.
    RestingHrLow,
    /// Atrial fibrillation on an ECG recording.
    Afib,
    /// Body temperature at or above the fever limit.
    Fever,
    /// RMSSD below a fraction of the patient's own baseline.
    RmssdLow,
}

impl AlertRule {
    /// Every rule, in a fixed order (index = `self as usize`).
    pub const ALL: [AlertRule; 11] = [
        Self::WeightGain24h,
        Self::WeightGain7d,
        Self::BpCrisis,
        Self::BpStage2Sustained,
        Self::Hypotension,
        Self::Spo2Low,
        Self::RestingHrHigh,
        Self::RestingHrLow,
        Self::Afib,
        Self::Fever,
        Self::RmssdLow,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WeightGain24h => "weight_gain_24h",
            Self::WeightGain7d => "weight_gain_7d",
            Self::BpCrisis => "bp_crisis",
            Self::BpStage2Sustained => "bp_stage2_sustained",
            Self::Hypotension => "hypotension",
            Self::Spo2Low => "spo2_low",
            Self::RestingHrHigh => "resting_hr_high",
            Self::RestingHrLow => "resting_hr_low",
            Self::Afib => "afib",
            Self::Fever => "fever",
            Self::RmssdLow => "rmssd_low",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// How urgently the care team should look (Avro enum `Severity`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    /// For information; no action expected.
    Info,
    /// Review at the next opportunity.
    Warning,
    /// Review promptly.
    Urgent,
    /// Review now.
    Critical,
}

impl Severity {
    /// Every severity, lowest first (index = `self as usize`).
    pub const ALL: [Severity; 4] = [Self::Info, Self::Warning, Self::Urgent, Self::Critical];
    /// Avro enum symbols, in schema order.
    pub const SYMBOLS: [&'static str; 4] = ["INFO", "WARNING", "URGENT", "CRITICAL"];

    /// Metric label value.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Urgent => "urgent",
            Self::Critical => "critical",
        }
    }

    /// Avro enum symbol.
    pub fn as_str(self) -> &'static str {
        Self::SYMBOLS[self as usize]
    }
}

/// One clinician alert.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicianAlert {
    /// Deterministic id: the same patient, rule, severity and evidence
    /// always give the same id, so a replay never makes a second alert.
    pub alert_id: String,
    /// Patient (also the Kafka key).
    pub patient_id: String,
    /// Care-team identifiers from the profile.
    pub care_team: Vec<String>,
    /// Rule that fired.
    pub rule: AlertRule,
    /// Severity.
    pub severity: Severity,
    /// Observed value in `unit`, scale ≤ 3.
    pub observed: Decimal,
    /// Threshold the value crossed, in `unit`, scale ≤ 3.
    pub threshold: Decimal,
    /// Unit of `observed` and `threshold`, e.g. `"kg"`, `"mmHg"`.
    pub unit: String,
    /// Reading ids the alert rests on, in event-time order.
    pub evidence_reading_ids: Vec<String>,
    /// Event time of the latest evidence, ms since the epoch.
    pub event_time_ms: i64,
    /// Always [`SCREENING_NOTE`] when vitalstream writes it.
    pub note: String,
}
