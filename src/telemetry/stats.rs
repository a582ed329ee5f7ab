//! Run counters: [`BatchCounts`] tallied locally per batch, published once
//! per batch into both the `metrics` facade (for Prometheus) and [`Stats`]
//! (lock-free totals the demo, tests and health endpoints read).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Gauge, Histogram};

use super::names::*;
use super::{Health, StartupTimeline};
use crate::model::{AlertRule, HrvQuality, MeasurementKind, Severity};
use crate::process::DlqReason;

/// Lock-free totals of one pipeline run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Liveness and readiness flags.
    pub health: Health,
    /// When each start-up phase ended.
    pub startup: StartupTimeline,
    /// Address the HTTP endpoints listen on, once bound.
    pub http_addr: OnceLock<SocketAddr>,
    /// Records consumed.
    pub consumed: AtomicU64,
    /// Enriched readings delivered.
    pub enriched: AtomicU64,
    /// Duplicates dropped.
    pub duplicates: AtomicU64,
    /// Batches completed.
    pub batches: AtomicU64,
    /// Readings of erased patients dropped.
    pub erased: AtomicU64,
    /// Late HRV beats.
    pub late_beats: AtomicU64,
    /// Enriched body scans that carry body composition.
    pub body_compositions: AtomicU64,
    /// Enriched blood-pressure readings that carry a BP category.
    pub bp_categories: AtomicU64,
    /// HRV windows open after the last batch.
    pub hrv_open_windows: AtomicU64,
    /// Alerts held back by a cool-down.
    pub alerts_suppressed: AtomicU64,
    /// Times consumption paused for backpressure.
    pub backpressure_pauses: AtomicU64,
    hrv_windows: [AtomicU64; 2],
    alerts: [AtomicU64; AlertRule::ALL.len()],
    dlq: [AtomicU64; DlqReason::ALL.len()],
    enriched_by_kind: [AtomicU64; MeasurementKind::ALL.len()],
}

impl Stats {
    /// DLQ records delivered for `reason`.
    pub fn dlq(&self, reason: DlqReason) -> u64 {
        self.dlq[reason as usize].load(Ordering::Relaxed)
    }

    /// DLQ records delivered, all reasons.
    pub fn dlq_total(&self) -> u64 {
        self.dlq.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Enriched readings delivered of `kind`.
    pub fn enriched_of(&self, kind: MeasurementKind) -> u64 {
        self.enriched_by_kind[kind as usize].load(Ordering::Relaxed)
    }

    /// HRV windows delivered of `quality`.
    pub fn hrv_windows(&self, quality: HrvQuality) -> u64 {
        self.hrv_windows[quality as usize].load(Ordering::Relaxed)
    }

    /// Alerts delivered of `rule`, all severities.
    pub fn alerts_of(&self, rule: AlertRule) -> u64 {
        self.alerts[rule as usize].load(Ordering::Relaxed)
    }

    /// Alerts delivered, all rules.
    pub fn alerts_total(&self) -> u64 {
        self.alerts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Convenience load of a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Per-batch tallies, published together once the batch is delivered.
#[derive(Debug, Default, Clone)]
pub struct BatchCounts {
    /// Records consumed.
    pub consumed: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Enriched per measurement kind.
    pub enriched: [u64; MeasurementKind::ALL.len()],
    /// DLQ per reason.
    pub dlq: [u64; DlqReason::ALL.len()],
    /// Readings of erased patients dropped.
    pub erased: u64,
    /// HRV windows published, by [`HrvQuality`].
    pub hrv_windows: [u64; 2],
    /// Late HRV beats.
    pub late_beats: u64,
    /// Enriched body scans that carry body composition.
    pub body_compositions: u64,
    /// Enriched blood-pressure readings that carry a BP category.
    pub bp_categories: u64,
    /// Alerts published, by rule and severity.
    pub alerts: [[u64; Severity::ALL.len()]; AlertRule::ALL.len()],
    /// Alerts held back by a cool-down, by rule.
    pub alerts_suppressed: [u64; AlertRule::ALL.len()],
}

/// Sizes of per-partition state after a batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct StateSizes {
    /// Reading ids remembered for dedup.
    pub dedup_entries: usize,
    /// Open HRV windows.
    pub hrv_open_windows: usize,
    /// Patients with alert history.
    pub alert_patients: usize,
}

/// Metric handles registered once.
#[derive(Debug, Clone)]
pub struct Metrics {
    consumed: Counter,
    duplicates: Counter,
    batches: Counter,
    enriched: Vec<Counter>,
    rejected: Vec<Counter>,
    erased: Counter,
    hrv_windows: [Counter; 2],
    late_beats: Counter,
    dedup_entries: Gauge,
    hrv_open_windows: Gauge,
    alert_patients: Gauge,
    dedup_horizon: Gauge,
    changelog_records: Counter,
    changelog_bytes: Counter,
    changelog_coalesced: Counter,
    alerts: Vec<[Counter; Severity::ALL.len()]>,
    alerts_suppressed: Vec<Counter>,
    transactions: [Counter; 2],
    backpressure_pause: Histogram,
    producer_queue: Gauge,
    /// Consume → outputs acknowledged, per reading.
    pub publish_latency: Histogram,
    /// Processing time − measured_at, per enriched reading.
    pub event_time_lag: Histogram,
    /// Wall time per batch.
    pub batch_duration: Histogram,
    /// Wall time per partition state restore.
    pub state_restore: Histogram,
    /// Wall time per transaction commit (exactly_once).
    pub transaction_commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every handle with the installed recorder (a no-op without one).
    /// Every exported series exists from the first scrape on.
    pub fn new() -> Self {
        Self {
            consumed: metrics::counter!(READINGS_CONSUMED),
            duplicates: metrics::counter!(READINGS_DUPLICATE),
            batches: metrics::counter!(BATCHES),
            enriched: MeasurementKind::ALL
                .iter()
                .map(|k| metrics::counter!(READINGS_ENRICHED, "kind" => k.as_str()))
                .collect(),
            rejected: DlqReason::ALL
                .iter()
                .map(|r| metrics::counter!(READINGS_REJECTED, "reason" => r.as_str()))
                .collect(),
            erased: metrics::counter!(READINGS_ERASED),
            hrv_windows: [HrvQuality::Ok, HrvQuality::Insufficient]
                .map(|q| metrics::counter!(HRV_WINDOWS, "quality" => q.label())),
            late_beats: metrics::counter!(HRV_LATE_BEATS),
            dedup_entries: metrics::gauge!(STATE_ENTRIES, "store" => "dedup"),
            hrv_open_windows: metrics::gauge!(STATE_ENTRIES, "store" => "hrv_windows"),
            alert_patients: metrics::gauge!(STATE_ENTRIES, "store" => "alert_history"),
            dedup_horizon: metrics::gauge!(DEDUP_HORIZON),
            changelog_records: metrics::counter!(CHANGELOG_RECORDS),
            changelog_bytes: metrics::counter!(CHANGELOG_BYTES),
            changelog_coalesced: metrics::counter!(CHANGELOG_COALESCED),
            alerts: AlertRule::ALL
                .iter()
                .map(|r| {
                    Severity::ALL.map(|s| {
                        metrics::counter!(ALERTS, "rule" => r.as_str(), "severity" => s.label())
                    })
                })
                .collect(),
            alerts_suppressed: AlertRule::ALL
                .iter()
                .map(|r| metrics::counter!(ALERTS_SUPPRESSED, "rule" => r.as_str()))
                .collect(),
            transactions: ["committed", "aborted"]
                .map(|outcome| metrics::counter!(TRANSACTIONS, "outcome" => outcome)),
            backpressure_pause: metrics::histogram!(BACKPRESSURE_PAUSE),
            producer_queue: metrics::gauge!(PRODUCER_QUEUE),
            publish_latency: metrics::histogram!(PUBLISH_LATENCY),
            event_time_lag: metrics::histogram!(EVENT_TIME_LAG),
            batch_duration: metrics::histogram!(BATCH_DURATION),
            state_restore: metrics::histogram!(STATE_RESTORE),
            transaction_commit: metrics::histogram!(TRANSACTION_COMMIT),
        }
    }

    /// Counts a transaction that committed (`true`) or aborted.
    pub fn transaction(&self, committed: bool) {
        self.transactions[usize::from(!committed)].increment(1);
    }

    /// Counts a backpressure pause that lasted `seconds`.
    pub fn backpressure_pause(&self, stats: &Stats, seconds: f64) {
        self.backpressure_pause.record(seconds);
        stats.backpressure_pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts changelog records sent: how many, their bytes, and the writes
    /// coalesced away before sending.
    pub fn changelog(&self, records: usize, bytes: usize, coalesced: u64) {
        self.changelog_records.increment(records as u64);
        self.changelog_bytes.increment(bytes as u64);
        self.changelog_coalesced.increment(coalesced);
    }

    /// Sets the effective dedup horizon gauge.
    pub fn set_dedup_horizon(&self, ms: i64) {
        self.dedup_horizon.set(ms as f64 / 1000.0);
    }

    /// Sets the producer queue depth gauge.
    pub fn set_producer_queue(&self, messages: i32) {
        self.producer_queue.set(f64::from(messages));
    }

    /// Publishes a delivered batch to the metrics and to `stats`.
    pub fn publish(&self, batch: &BatchCounts, stats: &Stats, sizes: StateSizes) {
        self.consumed.increment(batch.consumed);
        self.duplicates.increment(batch.duplicates);
        self.batches.increment(1);
        stats.consumed.fetch_add(batch.consumed, Ordering::Relaxed);
        stats
            .duplicates
            .fetch_add(batch.duplicates, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        for (i, &n) in batch.enriched.iter().enumerate() {
            self.enriched[i].increment(n);
            stats.enriched_by_kind[i].fetch_add(n, Ordering::Relaxed);
            stats.enriched.fetch_add(n, Ordering::Relaxed);
        }
        for (i, &n) in batch.dlq.iter().enumerate() {
            self.rejected[i].increment(n);
            stats.dlq[i].fetch_add(n, Ordering::Relaxed);
        }
        self.erased.increment(batch.erased);
        stats.erased.fetch_add(batch.erased, Ordering::Relaxed);
        self.late_beats.increment(batch.late_beats);
        stats
            .late_beats
            .fetch_add(batch.late_beats, Ordering::Relaxed);
        stats
            .body_compositions
            .fetch_add(batch.body_compositions, Ordering::Relaxed);
        stats
            .bp_categories
            .fetch_add(batch.bp_categories, Ordering::Relaxed);
        stats
            .hrv_open_windows
            .store(sizes.hrv_open_windows as u64, Ordering::Relaxed);
        for (i, &n) in batch.hrv_windows.iter().enumerate() {
            self.hrv_windows[i].increment(n);
            stats.hrv_windows[i].fetch_add(n, Ordering::Relaxed);
        }
        for (rule, by_severity) in batch.alerts.iter().enumerate() {
            for (severity, &n) in by_severity.iter().enumerate() {
                self.alerts[rule][severity].increment(n);
                stats.alerts[rule].fetch_add(n, Ordering::Relaxed);
            }
            let suppressed = batch.alerts_suppressed[rule];
            self.alerts_suppressed[rule].increment(suppressed);
            stats
                .alerts_suppressed
                .fetch_add(suppressed, Ordering::Relaxed);
        }
        // Entry counts are far below f64's exact-integer range.
        #[allow(clippy::cast_precision_loss)]
        {
            self.dedup_entries.set(sizes.dedup_entries as f64);
            self.hrv_open_windows.set(sizes.hrv_open_windows as f64);
            self.alert_patients.set(sizes.alert_patients as f64);
        }
    }
}
