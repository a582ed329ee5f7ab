//! `[topics]`: the topic names (DESIGN.md §1).

use serde::{Deserialize, Serialize};

/// Topic names (DESIGN.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    /// Raw readings in.
    pub raw: String,
    /// Patient profiles in (compacted).
    pub patients: String,
    /// Enriched readings out.
    pub enriched: String,
    /// HRV windows out.
    pub hrv_windows: String,
    /// Clinician alerts out.
    pub alerts: String,
    /// Dead-letter queue out.
    pub dlq: String,
    /// Compacted state changelog (internal); empty = `vitalstream.<group_id>.state`.
    pub state: String,
    /// Compacted set of erased patients (internal, keyed hashes only);
    /// empty = `vitalstream.<group_id>.erasures`. Created at start-up if missing.
    pub erasures: String,
}

impl Topics {
    /// The erasures topic of consumer group `group_id`.
    pub fn erasures_topic(&self, group_id: &str) -> String {
        if self.erasures.trim().is_empty() {
            format!("vitalstream.{group_id}.erasures")
        } else {
            self.erasures.clone()
        }
    }

    /// The state changelog topic of consumer group `group_id`.
    pub fn state_topic(&self, group_id: &str) -> String {
        if self.state.trim().is_empty() {
            format!("vitalstream.{group_id}.state")
        } else {
            self.state.clone()
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            raw: "vitals.readings.raw".into(),
            patients: "vitals.patients".into(),
            enriched: "vitals.readings.enriched".into(),
            hrv_windows: "vitals.hrv.windows".into(),
            alerts: "vitals.alerts".into(),
            dlq: "vitals.readings.dlq".into(),
            state: String::new(),
            erasures: String::new(),
        }
    }
}
