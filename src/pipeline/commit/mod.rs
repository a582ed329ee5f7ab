//! How a batch's work becomes durable, one strategy per
//! `processing.guarantee` (DESIGN.md §6):
//!
//! * [`AtLeastOnce`]: a batch's outputs are delivered, then its state
//!   changes, then its input offsets are stored (and committed by
//!   librdkafka's timer). A restart never finds a reading remembered whose
//!   output was lost.
//! * [`ExactlyOnce`]: outputs, state changes and input offsets of several
//!   batches commit in one transaction once it is
//!   `processing.commit_interval_ms` old. The commit runs in the
//!   background while the next batches are processed; their outputs are
//!   held until it ends (`hold.rs`), then go into the next transaction.

mod at_least_once;
mod exactly_once;

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

pub(super) use at_least_once::{Acked, AtLeastOnce};
pub(super) use exactly_once::ExactlyOnce;

use super::PipelineError;
use super::backpressure::{OutRecord, send};
use super::batch::Batch;
use crate::kafka::{CommitResult, Deliveries, PipelineContext, PipelineProducer};
use crate::state::{ChangelogBuffer, StateRecord};
use crate::telemetry::{BatchCounts, Metrics};

/// Counts of a batch and when each of its records was consumed.
pub(super) type Done = (BatchCounts, Vec<Instant>);

/// Work that completed in the background of the batch loop (one at a
/// time, moved once per batch, so the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub(super) enum Progress {
    /// at_least_once: the oldest batch in flight is acknowledged; its
    /// offsets are to be stored.
    Acked(Acked),
    /// exactly_once: the commit running in the background ended; its
    /// outcome is to be taken ([`CommitStrategy::take_end`]).
    Ended(CommitResult),
}

/// What finishing a batch came to.
pub(super) enum Finished {
    /// These batches are durable (delivered and stored, or committed).
    Committed(Vec<Done>),
    /// The batch joined the open transaction, which is not due yet or
    /// now commits in the background.
    Pending,
    /// The transaction was aborted: nothing of its batches is visible, and
    /// every assigned partition must go back to its committed offset.
    Aborted,
}

/// The commit strategy of the run (one value per run, so the variants'
/// sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub(super) enum CommitStrategy {
    /// `processing.guarantee = "at_least_once"`.
    AtLeastOnce(AtLeastOnce),
    /// `processing.guarantee = "exactly_once"`.
    ExactlyOnce(ExactlyOnce),
}

impl CommitStrategy {
    /// Opens a transaction before anything is produced (exactly_once).
    pub(super) fn begin(&mut self) -> Result<(), PipelineError> {
        match self {
            Self::AtLeastOnce(_) => Ok(()),
            Self::ExactlyOnce(s) => s.begin(),
        }
    }

    /// Where the state changes of `batch` go: the batch itself
    /// (at_least_once), or the open transaction, over which they coalesce.
    pub(super) fn changes<'a>(&'a mut self, batch: &'a mut Batch) -> &'a mut ChangelogBuffer {
        match self {
            Self::AtLeastOnce(_) => &mut batch.changelog,
            Self::ExactlyOnce(s) => s.changes(),
        }
    }

    /// Whether finishing `batch` has anything to do.
    pub(super) fn has_work(&self, batch: &Batch) -> bool {
        let batch_work =
            batch.counts.consumed > 0 || batch.deliveries.sent() > 0 || !batch.changelog.is_empty();
        match self {
            Self::AtLeastOnce(s) => batch_work || s.has_in_flight(),
            Self::ExactlyOnce(s) => batch_work || s.is_open(),
        }
    }

    /// When the open transaction is due to commit (exactly_once).
    pub(super) fn due_at(&self) -> Option<Instant> {
        match self {
            Self::AtLeastOnce(_) => None,
            Self::ExactlyOnce(s) => s.due_at(),
        }
    }

    /// Completes `batch`: at_least_once delivers and stores it;
    /// exactly_once adds it to the open transaction, which commits once due
    /// (or at once with `commit_now`).
    pub(super) async fn finish(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        batch: Batch,
        commit_now: bool,
    ) -> Result<Finished, PipelineError> {
        match self {
            Self::AtLeastOnce(s) => s.finish(consumer, batch, commit_now).await,
            Self::ExactlyOnce(s) => s.finish(consumer, batch, commit_now).await,
        }
    }

    /// The next step of work in the background: at_least_once, the oldest
    /// closed batch once its outputs and state changes are acknowledged
    /// (pending while none is in flight); exactly_once, the end of the
    /// commit running in the background (pending while none runs).
    /// Cancel-safe.
    pub(super) async fn progress(&mut self) -> Result<Progress, PipelineError> {
        match self {
            Self::AtLeastOnce(s) => s.acked().await.map(Progress::Acked),
            Self::ExactlyOnce(s) => Ok(Progress::Ended(s.commit_end().await)),
        }
    }

    /// Stores the offsets of an acknowledged batch (at_least_once).
    pub(super) fn store(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        acked: Acked,
    ) -> Option<Done> {
        match self {
            Self::AtLeastOnce(s) => Some(s.store(consumer, acked)),
            Self::ExactlyOnce(_) => None,
        }
    }

    /// Whether a commit runs in the background (exactly_once): outputs
    /// are held until it has ended.
    pub(super) fn is_committing(&self) -> bool {
        match self {
            Self::AtLeastOnce(_) => false,
            Self::ExactlyOnce(s) => s.is_committing(),
        }
    }

    /// Waits for the commit running in the background to end
    /// (exactly_once; pending otherwise). Cancel-safe.
    pub(super) async fn ended(&mut self) -> Result<Finished, PipelineError> {
        match self {
            Self::AtLeastOnce(_) => std::future::pending().await,
            Self::ExactlyOnce(s) => s.ended().await,
        }
    }

    /// Takes the outcome of the commit that ended with `ended`
    /// (exactly_once; see [`Progress::Ended`]).
    pub(super) async fn take_end(
        &mut self,
        ended: CommitResult,
    ) -> Result<Finished, PipelineError> {
        match self {
            Self::AtLeastOnce(_) => Err(PipelineError::Config("no commit was running".into())),
            Self::ExactlyOnce(s) => s.take_end(ended).await,
        }
    }

    /// Whether backpressure has anything of ours to wait for: batches or
    /// outputs awaiting acknowledgement, or a commit running.
    pub(super) fn has_pending(&self) -> bool {
        match self {
            Self::AtLeastOnce(s) => s.has_in_flight(),
            Self::ExactlyOnce(s) => s.has_pending(),
        }
    }

    /// Backpressure: waits until the oldest outputs in flight are
    /// acknowledged, or the running commit has ended. Returns that
    /// progress, if any is to be taken. Call only while
    /// [`Self::has_pending`]. Cancel-safe.
    pub(super) async fn await_oldest(&mut self) -> Result<Option<Progress>, PipelineError> {
        match self {
            Self::AtLeastOnce(s) => {
                if !s.has_in_flight() {
                    return Ok(None);
                }
                s.acked().await.map(|a| Some(Progress::Acked(a)))
            }
            Self::ExactlyOnce(s) => Ok(s.await_oldest().await?.map(Progress::Ended)),
        }
    }

    /// Forgets the open transaction's work after the rebalance callback
    /// aborted it (or dropped the work held during a commit, which it
    /// waited for). Returns the batches of that commit if it committed.
    ///
    /// # Errors
    /// The abort had failed in the callback and fails again.
    pub(super) async fn drop_open(&mut self) -> Result<Vec<Done>, PipelineError> {
        match self {
            Self::AtLeastOnce(_) => Ok(Vec::new()),
            Self::ExactlyOnce(s) => s.drop_open().await,
        }
    }

    /// At the end of the run: at_least_once commits the stored offsets (of
    /// fully delivered batches); exactly_once aborts a transaction left open
    /// by a failed batch, so the next owner is not held up until it times
    /// out.
    ///
    /// # Errors
    /// The final offset commit failed (at_least_once).
    pub(super) async fn shutdown(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<(), PipelineError> {
        match self {
            Self::AtLeastOnce(s) => s.shutdown(consumer),
            Self::ExactlyOnce(s) => {
                s.shutdown().await;
                Ok(())
            }
        }
    }
}

/// Writes state changes to the changelog topic.
pub(super) struct ChangelogSink {
    producer: PipelineProducer,
    topic: String,
    metrics: Metrics,
}

impl ChangelogSink {
    pub(super) fn new(producer: PipelineProducer, topic: String, metrics: Metrics) -> Self {
        Self {
            producer,
            topic,
            metrics,
        }
    }

    /// Takes the records out of `changes`, counts them and sends them,
    /// acknowledged through `deliveries`.
    async fn write(
        &self,
        changes: &mut ChangelogBuffer,
        deliveries: &Arc<Deliveries>,
    ) -> Result<(), PipelineError> {
        let coalesced = changes.coalesced();
        let records = changes.drain();
        self.count(&records, coalesced);
        for record in &records {
            let mut out: OutRecord<'_> =
                BaseRecord::with_opaque_to(&self.topic, deliveries.clone())
                    .partition(record.partition)
                    .key(&record.key[..]);
            if let Some(value) = &record.value {
                out = out.payload(&value[..]);
            }
            send(&self.producer, out).await?;
        }
        Ok(())
    }

    fn count(&self, records: &[StateRecord], coalesced: u64) {
        let bytes = records
            .iter()
            .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
            .sum();
        self.metrics.changelog(records.len(), bytes, coalesced);
    }
}

/// The input offsets to commit: next offset per partition of `topic`.
fn offsets(topic: &str, next: &BTreeMap<i32, i64>) -> Result<TopicPartitionList, PipelineError> {
    let mut offsets = TopicPartitionList::with_capacity(next.len());
    for (&partition, &next) in next {
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(next))
            .map_err(PipelineError::Commit)?;
    }
    Ok(offsets)
}
