//! Telemetry in one place: metric names, the run counters and log set-up.
//!
//! The pipeline counts locally per batch and publishes once per batch into
//! both the `metrics` facade (for Prometheus) and [`Stats`] (lock-free
//! counters the demo and tests read). No patient or device id is ever a label.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Counter;

use crate::config::{LogFormat, TelemetryConfig};
use crate::model::MeasurementKind;
use crate::process::DlqReason;

/// Readings consumed from the raw topic.
pub const READINGS_CONSUMED: &str = "vitalstream_readings_consumed_total";
/// Readings published enriched, label `kind`.
pub const READINGS_ENRICHED: &str = "vitalstream_readings_enriched_total";
/// Readings sent to the DLQ, label `reason`.
pub const READINGS_REJECTED: &str = "vitalstream_readings_rejected_total";
/// Duplicate readings dropped.
pub const READINGS_DUPLICATE: &str = "vitalstream_readings_duplicate_total";
/// Batches completed (all outputs delivered, offsets stored).
pub const BATCHES: &str = "vitalstream_batches_total";
/// Reading ids held in dedup state (gauge).
pub const DEDUP_ENTRIES: &str = "vitalstream_dedup_entries";

/// Lock-free totals of one pipeline run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records consumed.
    pub consumed: AtomicU64,
    /// Enriched readings delivered.
    pub enriched: AtomicU64,
    /// Duplicates dropped.
    pub duplicates: AtomicU64,
    /// Batches completed.
    pub batches: AtomicU64,
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
}

/// Metric handles registered once.
#[derive(Debug, Clone)]
pub struct Metrics {
    consumed: Counter,
    duplicates: Counter,
    batches: Counter,
    enriched: Vec<Counter>,
    rejected: Vec<Counter>,
    dedup_entries: metrics::Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every handle with the installed recorder (a no-op without one).
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
            dedup_entries: metrics::gauge!(DEDUP_ENTRIES),
        }
    }

    /// Publishes a delivered batch to the metrics and to `stats`.
    pub fn publish(&self, batch: &BatchCounts, stats: &Stats, dedup_entries: usize) {
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
        // Entry counts are far below f64's exact-integer range.
        #[allow(clippy::cast_precision_loss)]
        self.dedup_entries.set(dedup_entries as f64);
    }
}

/// Installs the global `tracing` subscriber (text or JSON). Safe to call twice.
pub fn init_logging(cfg: &TelemetryConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
