//! `PatientProfile`: what vitalstream knows about a patient, from the
//! compacted `vitals.patients` topic (`schemas/patient_profile.avsc`).
//!
//! A tombstone (null value) on that topic means the account was deleted; it
//! has no record type of its own, see [`crate::process::ProfileTable`].

use rust_decimal::Decimal;

/// Biological sex as the body-composition equations need it (Avro enum `Sex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Female (`sex = 0` in the equations).
    Female,
    /// Male (`sex = 1` in the equations).
    Male,
    /// Not given: the sex-dependent equations cannot be applied.
    Unspecified,
}

impl Sex {
    /// Avro enum symbols, in schema order.
    pub const SYMBOLS: [&'static str; 3] = ["FEMALE", "MALE", "UNSPECIFIED"];

    /// Avro enum symbol.
    pub fn as_str(self) -> &'static str {
        Self::SYMBOLS[self as usize]
    }
}

/// A patient's profile as the processor uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientProfile {
    /// Patient id (also the Kafka key).
    pub patient_id: String,
    /// Birth date, days since 1970-01-01.
    pub birth_date_days: i32,
    /// Sex.
    pub sex: Sex,
    /// Height, cm (scale 1).
    pub height_cm: Decimal,
    /// Enrolled in remote patient monitoring.
    pub rpm_enrolled: bool,
    /// Consents to sharing data with clinicians (alerts need it).
    pub consent_clinician_sharing: bool,
    /// Care-team identifiers that receive alerts.
    pub care_team: Vec<String>,
    /// Clinician-set thresholds that replace a rule's default.
    pub threshold_overrides: Vec<ThresholdOverride>,
    /// Dry weight, kg (heart-failure patients), scale 3.
    pub dry_weight_kg: Option<Decimal>,
}

/// One clinician-set threshold for an alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdOverride {
    /// Rule name, as in `vitals.alerts` (`rule` field).
    pub rule: String,
    /// Threshold in the rule's unit (scale 3).
    pub threshold: Decimal,
}

impl PatientProfile {
    /// The clinician's override for `rule`, if any.
    pub fn threshold_for(&self, rule: &str) -> Option<Decimal> {
        self.threshold_overrides
            .iter()
            .find(|o| o.rule == rule)
            .map(|o| o.threshold)
    }
}
