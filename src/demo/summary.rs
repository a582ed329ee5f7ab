//! [`DemoSummary`]: what a demo run observed, whether it adds up, and how it
//! prints.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::gateway::GatewayReport;
use crate::model::{AlertRule, MeasurementKind, Severity};
use crate::process::DlqReason;

/// What a demo run observed.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// What the gateway sent.
    pub sent: GatewayReport,
    /// Pipeline counters.
    pub consumed: u64,
    /// Enriched readings the pipeline delivered.
    pub enriched: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// DLQ records by reason, as counted by the pipeline.
    pub dlq: BTreeMap<DlqReason, u64>,
    /// Enriched readings per kind.
    pub enriched_by_kind: BTreeMap<MeasurementKind, u64>,
    /// Records found on the enriched topic when read back.
    pub enriched_on_topic: u64,
    /// Records found on the DLQ topic when read back, by reason header.
    pub dlq_on_topic: BTreeMap<String, u64>,
    /// Enriched body scans with body composition.
    pub body_compositions: u64,
    /// Enriched blood-pressure readings with a BP category.
    pub bp_categories: u64,
    /// HRV windows published, by quality.
    pub hrv_windows: BTreeMap<&'static str, u64>,
    /// HRV windows found on the windows topic when read back.
    pub hrv_windows_on_topic: u64,
    /// HRV windows still open when the demo stopped (their watermark had
    /// not passed yet).
    pub hrv_open_windows: u64,
    /// Beats that arrived after their window closed.
    pub late_beats: u64,
    /// Alerts the pipeline published, by rule (rules that fired).
    pub alerts: BTreeMap<AlertRule, u64>,
    /// Alerts held back by a cool-down.
    pub alerts_suppressed: u64,
    /// Alerts found on the alerts topic.
    pub alerts_on_topic: u64,
    /// What each scripted scenario raised against what it should.
    pub scenarios: Vec<ScenarioOutcome>,
    /// Wall time from first send to last reading processed.
    pub elapsed: Duration,
}

impl DemoSummary {
    /// Whether every reading ended in exactly one place, on both the
    /// pipeline's counters and the output topics.
    pub fn adds_up(&self) -> bool {
        let dlq: u64 = self.dlq.values().sum();
        let dlq_topic: u64 = self.dlq_on_topic.values().sum();
        self.consumed == self.sent.sent
            && self.enriched + self.duplicates + dlq == self.consumed
            && self.enriched_on_topic == self.enriched
            && dlq_topic == dlq
            && self.enriched == self.sent.valid_total()
            && self.duplicates == self.sent.duplicates
            && self
                .dlq
                .get(&DlqReason::UnknownPatient)
                .copied()
                .unwrap_or(0)
                == self.sent.unknown_patient
            && self.hrv_windows_on_topic == self.hrv_windows.values().sum::<u64>()
            && self.alerts_on_topic == self.alerts.values().sum::<u64>()
            && self.scenarios.iter().all(ScenarioOutcome::as_expected)
    }
}

/// Alerts of one scripted scenario patient, as read from the alerts topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioOutcome {
    /// Scenario description.
    pub name: &'static str,
    /// Alerts it must raise, sorted.
    pub expected: Vec<(AlertRule, Severity)>,
    /// Alerts it raised, sorted.
    pub seen: Vec<(AlertRule, Severity)>,
}

impl ScenarioOutcome {
    /// Exactly the expected alerts, no more.
    pub fn as_expected(&self) -> bool {
        self.expected == self.seen
    }
}

fn alert_list(alerts: &[(AlertRule, Severity)]) -> String {
    if alerts.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = alerts
        .iter()
        .map(|(r, s)| format!("{} {}", r.as_str(), s.label()))
        .collect();
    names.join(", ")
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dlq: u64 = self.dlq.values().sum();
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        writeln!(f, "vitalstream demo summary")?;
        writeln!(
            f,
            "  gateway sent        {:>8}  ({} valid, {} duplicates, {} malformed, {} out of range, {} unknown patient)",
            self.sent.sent,
            self.sent.valid_total(),
            self.sent.duplicates,
            self.sent.malformed,
            self.sent.out_of_range,
            self.sent.unknown_patient
        )?;
        writeln!(f, "  readings in         {:>8}", self.consumed)?;
        let kinds: Vec<String> = self
            .enriched_by_kind
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        writeln!(
            f,
            "  enriched            {:>8}  ({})",
            self.enriched,
            kinds.join(", ")
        )?;
        writeln!(f, "  duplicates dropped  {:>8}", self.duplicates)?;
        let reasons: Vec<String> = self
            .dlq
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect();
        writeln!(
            f,
            "  dead-lettered       {:>8}  ({})",
            dlq,
            reasons.join(", ")
        )?;
        writeln!(
            f,
            "  derived             body composition {}, BP category {}",
            self.body_compositions, self.bp_categories
        )?;
        let windows: u64 = self.hrv_windows.values().sum();
        let by_quality: Vec<String> = self
            .hrv_windows
            .iter()
            .map(|(q, n)| format!("{q} {n}"))
            .collect();
        writeln!(
            f,
            "  HRV windows         {:>8}  ({}; {} late beats; {} still open at stop)",
            windows,
            by_quality.join(", "),
            self.late_beats,
            self.hrv_open_windows
        )?;
        let alerts: u64 = self.alerts.values().sum();
        let by_rule: Vec<String> = self
            .alerts
            .iter()
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect();
        writeln!(
            f,
            "  clinician alerts    {:>8}  ({}; {} held back by cool-down)",
            alerts,
            by_rule.join(", "),
            self.alerts_suppressed
        )?;
        let passed = self.scenarios.iter().filter(|s| s.as_expected()).count();
        writeln!(
            f,
            "  alert scenarios     {:>8}  of {} raised exactly the expected alerts",
            passed,
            self.scenarios.len()
        )?;
        for s in &self.scenarios {
            let mark = if s.as_expected() { "ok  " } else { "FAIL" };
            writeln!(f, "    {mark} {:<62} {}", s.name, alert_list(&s.seen))?;
            if !s.as_expected() {
                writeln!(f, "         expected {}", alert_list(&s.expected))?;
            }
        }
        let dlq_topic: u64 = self.dlq_on_topic.values().sum();
        writeln!(
            f,
            "  read back           enriched topic {}, DLQ topic {}, HRV topic {}, alerts topic {}",
            self.enriched_on_topic, dlq_topic, self.hrv_windows_on_topic, self.alerts_on_topic
        )?;
        writeln!(
            f,
            "  throughput          {:>8.0} readings/s over {:.1} s",
            self.consumed as f64 / secs,
            secs
        )?;
        let verdict = if self.adds_up() { "yes" } else { "NO" };
        write!(
            f,
            "  counts add up       {verdict}: enriched {} + duplicates {} + DLQ {} = {} of {} sent",
            self.enriched,
            self.duplicates,
            dlq,
            self.enriched + self.duplicates + dlq,
            self.sent.sent
        )
    }
}
