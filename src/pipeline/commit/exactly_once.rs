//! exactly_once: a transaction holds the outputs, state changes and input
//! offsets of every batch since it began, and commits once it is
//! `processing.commit_interval_ms` old (`send_offsets_to_transaction`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::time::Instant;
use tracing::warn;

use super::{ChangelogSink, Done, Finished, offsets};
use crate::kafka::{Deliveries, PipelineContext, Transactions, TxnOutcome};
use crate::pipeline::PipelineError;
use crate::pipeline::backpressure::delivered;
use crate::pipeline::batch::Batch;
use crate::state::ChangelogBuffer;
use crate::telemetry::Metrics;

/// Buffered state changes of the open transaction beyond which they are
/// sent at once instead of at commit. Writes to the same key within the
/// transaction coalesce in the buffer (Kafka Streams' record cache), which
/// saves records where few patients report often; where many report
/// (10 k patients: 3 % of writes coalesced) holding them made the commit
/// produce and flush a whole interval's state changes while nothing else
/// ran. Sent early they travel while the next batches are processed, in
/// the same transaction, in the same key order (a key's later write comes
/// later), each partition's meta record with its offsets after the rest.
const WRITE_AHEAD_RECORDS: usize = 1_000;

/// The exactly_once strategy.
pub(in crate::pipeline) struct ExactlyOnce {
    txn: Transactions,
    open: OpenTxn,
    interval: Duration,
    sink: ChangelogSink,
    raw_topic: String,
    metrics: Metrics,
}

/// Batches whose outputs, changelog records and offsets sit in the open
/// transaction.
#[derive(Default)]
struct OpenTxn {
    started: Option<Instant>,
    /// Acknowledgements per batch (and of the changelog write), oldest first.
    deliveries: VecDeque<Arc<Deliveries>>,
    next_offsets: BTreeMap<i32, i64>,
    batches: Vec<Done>,
    /// State changes of the transaction, one record per key, sent when it
    /// commits.
    changelog: ChangelogBuffer,
}

impl ExactlyOnce {
    pub(in crate::pipeline) fn new(
        txn: Transactions,
        commit_interval: Duration,
        sink: ChangelogSink,
        raw_topic: String,
        metrics: Metrics,
    ) -> Self {
        Self {
            txn,
            open: OpenTxn::default(),
            interval: commit_interval,
            sink,
            raw_topic,
            metrics,
        }
    }

    pub(super) fn begin(&mut self) -> Result<(), PipelineError> {
        self.txn.begin().map_err(PipelineError::Transaction)
    }

    pub(super) fn changes(&mut self) -> &mut ChangelogBuffer {
        &mut self.open.changelog
    }

    /// Whether a transaction is open or holds work.
    pub(super) fn is_open(&self) -> bool {
        self.txn.is_open() || self.open.started.is_some() || !self.open.changelog.is_empty()
    }

    pub(super) fn due_at(&self) -> Option<Instant> {
        self.open.started.map(|t| t + self.interval)
    }

    /// Adds `batch` to the open transaction; commits it when due.
    pub(super) async fn finish(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        batch: Batch,
        commit_now: bool,
    ) -> Result<Finished, PipelineError> {
        if !self.open.changelog.is_empty() {
            self.begin()?;
        }
        let open = &mut self.open;
        open.started.get_or_insert_with(|| {
            batch
                .consumed_at
                .first()
                .copied()
                .unwrap_or_else(Instant::now)
        });
        if batch.deliveries.sent() > 0 {
            open.deliveries.push_back(batch.deliveries);
        }
        open.next_offsets.extend(batch.next_offsets);
        open.batches.push((batch.counts, batch.consumed_at));
        let due = commit_now || self.due_at().is_some_and(|t| t <= Instant::now());
        if !due {
            if self.open.changelog.len() >= WRITE_AHEAD_RECORDS {
                self.write_changelog().await?;
            }
            return Ok(Finished::Pending);
        }
        self.write_changelog().await?;
        let open = std::mem::take(&mut self.open);
        let offsets = offsets(&self.raw_topic, &open.next_offsets)?;
        let group = consumer.group_metadata().ok_or_else(|| {
            PipelineError::Config("the consumer has no group metadata for the transaction".into())
        })?;
        let committing = Instant::now();
        let outcome = self
            .txn
            .commit(offsets, group)
            .await
            .map_err(PipelineError::Transaction)?;
        self.metrics
            .transaction_commit
            .record(committing.elapsed().as_secs_f64());
        match outcome {
            TxnOutcome::Committed => {
                // Committed means delivered; these resolve at once.
                for deliveries in &open.deliveries {
                    delivered(deliveries).await?;
                }
                self.metrics.transaction(true);
                Ok(Finished::Committed(open.batches))
            }
            TxnOutcome::Aborted => {
                // Nothing of these batches is visible; they are read again.
                self.metrics.transaction(false);
                Ok(Finished::Aborted)
            }
        }
    }

    /// Sends the state changes buffered so far into the open transaction.
    async fn write_changelog(&mut self) -> Result<(), PipelineError> {
        let written = Arc::<Deliveries>::default();
        self.sink.write(&mut self.open.changelog, &written).await?;
        if written.sent() > 0 {
            self.open.deliveries.push_back(written);
        }
        Ok(())
    }

    /// Backpressure: waits for the deliveries of the open transaction's
    /// oldest batch not yet awaited. Committing checks the rest (and
    /// librdkafka fails the commit of a transaction with an undelivered
    /// record). Cancel-safe.
    pub(super) async fn await_oldest(&mut self) -> Result<(), PipelineError> {
        let Some(oldest) = self.open.deliveries.front().cloned() else {
            // Nothing of ours is in flight (the changelog is sent at commit).
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Ok(());
        };
        delivered(&oldest).await?;
        self.open.deliveries.pop_front();
        Ok(())
    }

    /// The rebalance callback aborted the open transaction: its work is
    /// gone. Had the abort failed there, the transaction is still open:
    /// aborting it again here either succeeds or stops the run.
    pub(super) async fn drop_open(&mut self) -> Result<(), PipelineError> {
        self.open = OpenTxn::default();
        self.metrics.transaction(false);
        self.txn.abort().await.map_err(PipelineError::Transaction)
    }

    /// Only a failed batch leaves a transaction open: abort it, so the next
    /// owner is not held up until the transaction times out.
    pub(super) async fn shutdown(&mut self) {
        if let Err(e) = self.txn.abort().await {
            warn!(error = %e, "aborting the open transaction failed");
        }
    }
}
