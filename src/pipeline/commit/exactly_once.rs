//! exactly_once: a transaction holds the outputs, state changes and input
//! offsets of every batch since it began, and commits once it is
//! `processing.commit_interval_ms` old (`send_offsets_to_transaction`).
//!
//! The commit (offsets, EndTxn, the broker's markers: tens to hundreds of
//! milliseconds) runs on a blocking thread while the batch loop reads and
//! processes the next batches. librdkafka takes no records meanwhile, so
//! their outputs are held (`hold.rs`) and their state changes stay in the
//! next transaction's buffer; when the commit has ended the next
//! transaction begins and they are sent. At most one commit runs: a batch
//! due meanwhile waits for it. An aborted commit takes the held work with
//! it: every assigned partition is rewound and its state (changed by the
//! held batches too) restored from the changelog, as after any abort.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{ChangelogSink, Done, Finished, offsets};
use crate::kafka::{CommitResult, Deliveries, PipelineContext, Transactions, TxnOutcome};
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
    /// The transaction committing in the background, while the batch loop
    /// processes the next batches (their outputs held, see `hold.rs`).
    committing: Option<Committing>,
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

/// A transaction whose commit runs in the background.
struct Committing {
    ended: JoinHandle<CommitResult>,
    /// Its batches, reported once it has committed.
    txn: OpenTxn,
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
            committing: None,
            interval: commit_interval,
            sink,
            raw_topic,
            metrics,
        }
    }

    /// Opens a transaction before anything is produced; during a commit,
    /// marks the work processed meanwhile as held.
    pub(super) fn begin(&mut self) -> Result<(), PipelineError> {
        self.txn.begin().map_err(PipelineError::Transaction)
    }

    pub(super) fn changes(&mut self) -> &mut ChangelogBuffer {
        &mut self.open.changelog
    }

    /// Whether a transaction is open, commits or holds work.
    pub(super) fn is_open(&self) -> bool {
        self.txn.is_open()
            || self.committing.is_some()
            || self.open.started.is_some()
            || !self.open.changelog.is_empty()
    }

    /// Whether a commit runs in the background: outputs are held until it
    /// has ended.
    pub(super) fn is_committing(&self) -> bool {
        self.committing.is_some()
    }

    /// When the open transaction is due to commit; none while the previous
    /// one commits (its end wakes the batch loop instead).
    pub(super) fn due_at(&self) -> Option<Instant> {
        if self.committing.is_some() {
            return None;
        }
        self.open.started.map(|t| t + self.interval)
    }

    /// Adds `batch` to the open transaction. When it is due, its commit
    /// starts in the background (the batch loop goes on, holding the next
    /// batches' outputs); with `commit_now` it commits at once and this
    /// returns its outcome. A commit already running must have been ended
    /// ([`Self::ended`]) before a `commit_now`.
    pub(super) async fn finish(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        batch: Batch,
        commit_now: bool,
    ) -> Result<Finished, PipelineError> {
        // Nothing consumed, produced or held under this batch (a held
        // record keeps a reference to its count): it adds nothing, and an
        // idle turn during a commit must not open the next transaction.
        let empty = batch.counts.consumed == 0
            && batch.next_offsets.is_empty()
            && batch.deliveries.sent() == 0
            && Arc::strong_count(&batch.deliveries) == 1;
        if empty && self.committing.is_some() {
            if !self.open.changelog.is_empty() {
                self.begin()?;
            }
            return Ok(Finished::Pending);
        }
        let open = &mut self.open;
        open.started.get_or_insert_with(|| {
            batch
                .consumed_at
                .first()
                .copied()
                .unwrap_or_else(Instant::now)
        });
        // Always kept: outputs held during a commit are sent later, under
        // the batch's count.
        open.deliveries.push_back(batch.deliveries);
        open.next_offsets.extend(batch.next_offsets);
        open.batches.push((batch.counts, batch.consumed_at));
        if !self.open.changelog.is_empty() {
            // During a commit: marks the changes as held work, which a
            // revocation meanwhile drops.
            self.begin()?;
        }
        if self.committing.is_some() {
            debug_assert!(!commit_now, "the running commit is ended first");
            // Held until the running commit ends.
            return Ok(Finished::Pending);
        }
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
        let ended = self
            .txn
            .start_commit(offsets, group)
            .map_err(PipelineError::Transaction)?;
        self.committing = Some(Committing { ended, txn: open });
        if !commit_now {
            return Ok(Finished::Pending);
        }
        self.ended().await
    }

    /// Waits for the running commit to end (pending while none runs);
    /// [`Self::take_end`] must take the result. Cancel-safe.
    pub(super) async fn commit_end(&mut self) -> CommitResult {
        match self.committing.as_mut() {
            Some(committing) => (&mut committing.ended)
                .await
                .unwrap_or((Err(KafkaError::Canceled), Duration::ZERO)),
            None => std::future::pending().await,
        }
    }

    /// Waits for the running commit to end and takes its outcome.
    ///
    /// # Errors
    /// See [`Self::take_end`].
    pub(super) async fn ended(&mut self) -> Result<Finished, PipelineError> {
        let ended = self.commit_end().await;
        self.take_end(ended).await
    }

    /// Takes the outcome of the commit that ended with `ended`
    /// ([`Self::commit_end`]): the batches it made durable, or
    /// [`Finished::Aborted`].
    ///
    /// # Errors
    /// A fatal transaction error, or a committed output whose delivery
    /// failed.
    pub(super) async fn take_end(
        &mut self,
        ended: CommitResult,
    ) -> Result<Finished, PipelineError> {
        let Some(Committing { txn, .. }) = self.committing.take() else {
            return Err(PipelineError::Config("no commit was running".into()));
        };
        // Whether work was held meanwhile: it begins the next transaction.
        let held = self.txn.commit_ended();
        let (result, took) = ended;
        let outcome = result.map_err(PipelineError::Transaction)?;
        self.metrics.transaction_commit.record(took.as_secs_f64());
        match outcome {
            TxnOutcome::Committed => {
                if held {
                    self.begin()?;
                }
                // Committed means delivered; these resolve at once.
                for deliveries in &txn.deliveries {
                    delivered(deliveries).await?;
                }
                self.metrics.transaction(true);
                Ok(Finished::Committed(txn.batches))
            }
            TxnOutcome::Aborted => {
                // Nothing of these batches is visible; they are read
                // again, and so are those held meanwhile.
                self.metrics.transaction(false);
                self.drop_held().await?;
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

    /// Whether waiting can relieve backpressure: a commit runs, or
    /// outputs of the open transaction await acknowledgement.
    pub(super) fn has_pending(&self) -> bool {
        self.committing.is_some() || self.open.deliveries.iter().any(|d| d.pending() > 0)
    }

    /// Backpressure: waits for the running commit to end (returned, for
    /// [`Self::take_end`]), or else for the deliveries of the open
    /// transaction's oldest batch not yet awaited. Committing checks the
    /// rest (and librdkafka fails the commit of a transaction with an
    /// undelivered record). Cancel-safe.
    pub(super) async fn await_oldest(&mut self) -> Result<Option<CommitResult>, PipelineError> {
        if self.committing.is_some() {
            return Ok(Some(self.commit_end().await));
        }
        while let Some(oldest) = self.open.deliveries.front().cloned() {
            delivered(&oldest).await?;
            self.open.deliveries.pop_front();
            if oldest.sent() > 0 {
                break;
            }
        }
        Ok(None)
    }

    /// Drops the work of the open transaction: aborts it if open, and
    /// forgets the work held for it during a commit.
    async fn drop_held(&mut self) -> Result<(), PipelineError> {
        self.open = OpenTxn::default();
        self.txn.abort().await.map_err(PipelineError::Transaction)
    }

    /// The rebalance callback aborted the open transaction, or dropped the
    /// work held during a commit, after that commit had ended: its batches
    /// are reported if it committed; the held work is gone. Had the abort
    /// failed there, the transaction is still open: aborting it again here
    /// either succeeds or stops the run.
    pub(super) async fn drop_open(&mut self) -> Result<Vec<Done>, PipelineError> {
        let mut durable = Vec::new();
        if self.committing.is_some()
            && let Finished::Committed(batches) = self.ended().await?
        {
            durable = batches;
        }
        self.metrics.transaction(false);
        self.drop_held().await?;
        Ok(durable)
    }

    /// At the end of the run: a commit still running is waited for (a
    /// failed batch stopped the run meanwhile), then a transaction left
    /// open is aborted, so the next owner is not held up until it times
    /// out.
    pub(super) async fn shutdown(&mut self) {
        if self.committing.is_some() {
            match self.ended().await {
                Ok(Finished::Committed(_)) => {
                    info!("the transaction committing at the end committed")
                }
                Ok(_) => warn!("the transaction committing at the end was aborted"),
                Err(e) => warn!(error = %e, "the transaction committing at the end failed"),
            }
        }
        if let Err(e) = self.txn.abort().await {
            warn!(error = %e, "aborting the open transaction failed");
        }
    }
}
