//! Telemetry of committed batches: per-reading publish latency, batch
//! duration, counters and state sizes, and the dedup horizon warning.

use tokio::time::Instant;
use tracing::{info, warn};

use super::commit::Done;
use crate::process::Processor;
use crate::telemetry::{Metrics, StateSizes, Stats};

/// Reports what the pipeline committed.
pub(super) struct Reporter {
    metrics: Metrics,
    /// `validation.dedup_horizon_ms`.
    configured_horizon_ms: i64,
    /// `validation.dedup_max_entries`.
    max_entries: usize,
    /// Whether the dedup entry cap holds the horizon below the configured one.
    horizon_short: bool,
}

impl Reporter {
    pub(super) fn new(metrics: Metrics, configured_horizon_ms: i64, max_entries: usize) -> Self {
        Self {
            metrics,
            configured_horizon_ms,
            max_entries,
            horizon_short: false,
        }
    }

    /// Records `batches`, durable as of `acknowledged`.
    pub(super) fn committed(
        &mut self,
        batches: Vec<Done>,
        acknowledged: Instant,
        processor: &Processor,
        stats: &Stats,
        producer_queue: i32,
    ) {
        self.metrics.set_producer_queue(producer_queue);
        self.check_dedup_horizon(processor);
        let sizes = StateSizes {
            dedup_entries: processor.dedup_entries(),
            hrv_open_windows: processor.open_windows(),
            alert_patients: processor.alert_patients(),
        };
        for (counts, consumed_at) in batches {
            for t in &consumed_at {
                self.metrics
                    .publish_latency
                    .record(acknowledged.duration_since(*t).as_secs_f64());
            }
            if let Some(first) = consumed_at.first() {
                self.metrics
                    .batch_duration
                    .record(acknowledged.duration_since(*first).as_secs_f64());
            }
            self.metrics.publish(&counts, stats, sizes);
        }
    }

    /// Records how long a partition's restore took.
    pub(super) fn restored(&self, seconds: f64) {
        self.metrics.state_restore.record(seconds);
    }

    /// Publishes the effective dedup horizon; warns when the entry cap
    /// holds it below the configured horizon (once, until it recovers).
    fn check_dedup_horizon(&mut self, processor: &Processor) {
        let Some(effective) = processor.dedup_horizon_ms() else {
            return;
        };
        self.metrics.set_dedup_horizon(effective);
        let configured = self.configured_horizon_ms;
        let short = effective < configured;
        if short && !self.horizon_short {
            warn!(
                effective_s = effective / 1000,
                configured_s = configured / 1000,
                max_entries = self.max_entries,
                "validation.dedup_max_entries evicts reading ids inside the dedup horizon: \
                 older readings go to the DLQ as too_old; raise the cap (memory per entry: docs/state.md)"
            );
        } else if !short && self.horizon_short {
            info!("dedup covers its configured horizon again");
        }
        self.horizon_short = short;
    }
}
