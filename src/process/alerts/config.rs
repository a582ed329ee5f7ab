//! `[alerts]` settings: whether rules run, the cool-down, and how long a
//! reading waits for its confirming repeat.

use serde::{Deserialize, Serialize};

/// Alert engine settings. Rule thresholds are not here: their defaults are
/// the rule table's, and clinicians override them per patient in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate rules and publish alerts at all.
    pub enabled: bool,
    /// After an alert of a rule for a patient, further alerts of that rule
    /// within this much event time are suppressed (counted) unless their
    /// severity is higher. Default 6 h.
    pub cooldown_ms: i64,
    /// Longest processing-clock wait for a confirming repeat (BP crisis)
    /// when no later reading of the patient settles it first; then the
    /// unconfirmed alert is published. Default 5 min.
    pub confirm_wait_ms: i64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cooldown_ms: 6 * 60 * 60 * 1000,
            confirm_wait_ms: 5 * 60 * 1000,
        }
    }
}
