//! The batch loop: poll records into a batch, process each through the
//! pure core and route its output, then close the batch (derived outputs,
//! state changes) and hand it to the commit strategy.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span};

use super::backpressure::Backpressure;
use super::commit::{CommitStrategy, Finished};
use super::report::Reporter;
use super::route::Router;
use super::run::loader_stopped;
use super::{PipelineError, now_ms};
use crate::codec::InputKind;
use crate::config::Config;
use crate::kafka::{
    Deliveries, PipelineContext, PipelineProducer, ProfileLoadError, StateReader, is_transient,
};
use crate::process::{Disposition, InputRecord, InvalidRatioGuard, Processor};
use crate::registry::WriterResolver;
use crate::state::{ChangelogBuffer, ChangelogWriter};
use crate::telemetry::{BatchCounts, Stats};

/// The pipeline's per-run state, owned by the one task that runs it.
pub(super) struct Pipeline {
    pub(super) processor: Processor,
    pub(super) guard: InvalidRatioGuard,
    /// Learns unknown writer ids from the schema registry, when one is set.
    pub(super) resolver: Option<Arc<WriterResolver>>,
    pub(super) stats: Arc<Stats>,
    pub(super) producer: PipelineProducer,
    pub(super) context: PipelineContext,
    pub(super) config: Config,
    pub(super) state_reader: StateReader,
    pub(super) state_topic: String,
    /// Partitions of the state topic (checked at start-up).
    pub(super) state_partitions: usize,
    /// Turns state changes into changelog records.
    pub(super) changelog: ChangelogWriter,
    pub(super) commit: CommitStrategy,
    pub(super) router: Router,
    pub(super) backpressure: Backpressure,
    pub(super) report: Reporter,
}

/// Outputs and offsets of one batch.
#[derive(Default)]
pub(super) struct Batch {
    /// Acknowledgements of the batch's outputs (one count for all records).
    pub(super) deliveries: Arc<Deliveries>,
    /// Next offset to consume per input partition (last offset + 1).
    pub(super) next_offsets: BTreeMap<i32, i64>,
    /// First offset of the batch per input partition.
    pub(super) first_offsets: BTreeMap<i32, i64>,
    /// When each input record of the batch was consumed (latency metric).
    pub(super) consumed_at: Vec<Instant>,
    pub(super) counts: BatchCounts,
    /// State changes of the batch (at_least_once), one record per key,
    /// written once its outputs are delivered.
    pub(super) changelog: ChangelogBuffer,
}

impl Pipeline {
    /// Runs batches until `shutdown` resolves or an error stops the run.
    ///
    /// Batching adapts to the input: a batch closes as soon as no further
    /// record is ready (caught up: outputs leave at once, in small
    /// batches), and grows up to `processing.batch_max_messages` while
    /// records keep coming (lagging: fewer, larger batches), for at most
    /// `processing.batch_max_wait_ms`. Closed batches complete in the
    /// background (at_least_once) or in the open transaction
    /// (exactly_once) while the next one is read.
    pub(super) async fn run_loop(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        loader: &mut JoinHandle<Result<(), ProfileLoadError>>,
        mut shutdown: impl Future<Output = ()> + Unpin,
    ) -> Result<(), PipelineError> {
        let max_messages = self.config.processing.batch_max_messages;
        let max_wait = Duration::from_millis(self.config.processing.batch_max_wait_ms);
        let events = self.context.events.clone();
        loop {
            self.stats.health.beat(now_ms());
            self.restore_assigned(consumer).await?;
            self.stats.health.set_state_restored(true);
            let mut batch = Batch::default();
            let mut stopping = false;
            // Wait for the first record (or shutdown), then take records
            // while they are ready, until the batch is full or its time is up.
            let mut deadline: Option<Instant> = None;
            while batch.counts.consumed < max_messages as u64 {
                // While idle, wake every second so the liveness heartbeat
                // keeps beating; an empty batch is simply not finished.
                // An open transaction is committed when it is due.
                let idle_until = self
                    .commit
                    .due_at()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                let timeout = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => tokio::time::sleep_until(idle_until).await,
                    }
                };
                let caught_up = batch.counts.consumed > 0;
                tokio::select! {
                    biased;
                    () = &mut shutdown => { stopping = true; break; }
                    res = &mut *loader => return Err(loader_stopped(res)),
                    progress = self.commit.progress() => {
                        if self.progressed(consumer, progress?).await? {
                            // Aborted: the batch so far went with it.
                            batch = Batch::default();
                            deadline = None;
                        }
                    }
                    msg = consumer.recv() => {
                        let msg = match msg {
                            Ok(msg) => msg,
                            // Lost connections and the like: librdkafka
                            // reconnects and the context reports the outage.
                            Err(e) if is_transient(&e) => {
                                debug!(error = %e, "transient consumer error");
                                continue;
                            }
                            Err(e) => return Err(PipelineError::Consume(e)),
                        };
                        if self.context.events.take_txn_aborted() {
                            // The batch went with the aborted transaction.
                            batch = Batch::default();
                            let kept = self.drop_aborted_work(consumer).await?;
                            if kept.contains(&msg.partition()) {
                                // Read again from the committed offset.
                                continue;
                            }
                        }
                        // The rebalance that delivered this record may
                        // have revoked its partition first.
                        self.release_revoked();
                        if self.context.events.has_assigned()
                            || !self.processor.has_partition(msg.partition())
                        {
                            // A restore reads the group's committed offsets,
                            // which this instance's own open transaction
                            // holds unstable: the batch so far commits first.
                            let done = std::mem::take(&mut batch);
                            deadline = None;
                            let rewound = self.close_batch(consumer, done, true).await?;
                            self.restore_assigned(consumer).await?;
                            if rewound {
                                // Read again from the committed offset.
                                continue;
                            }
                            self.ensure_restored(consumer, msg.partition()).await?;
                        }
                        deadline.get_or_insert_with(|| Instant::now() + max_wait);
                        self.handle(&msg, &mut batch).await?;
                        drop(msg);
                        if self.backpressure.over(self.router.outlet.held())
                            || self.router.outlet.held_full()
                        {
                            // The batch's deliveries join those awaited.
                            let done = std::mem::take(&mut batch);
                            deadline = None;
                            if self.close_batch(consumer, done, false).await? {
                                continue;
                            }
                            if self.relieve(consumer, &mut shutdown).await? {
                                stopping = true;
                                break;
                            }
                        }
                    }
                    // Partitions assigned while no record is ready: the
                    // batch ends and their restore starts now, not with
                    // their first record.
                    () = events.assignment_arrived() => break,
                    // No record ready: caught up, publish at once.
                    () = std::future::ready(()), if caught_up => break,
                    () = timeout => break,
                }
            }
            if self.context.events.take_txn_aborted() {
                self.drop_aborted_work(consumer).await?;
                if stopping {
                    return Ok(());
                }
                continue;
            }
            self.release_revoked();
            let rewound = self.close_batch(consumer, batch, stopping).await?;
            if stopping {
                if rewound {
                    return Err(PipelineError::FinalTransactionAborted);
                }
                info!("shutdown requested: in-flight batches delivered and stored");
                return Ok(());
            }
        }
    }

    /// Closes a batch: publishes what it derived, takes its state changes
    /// and finishes it (exactly_once: commits the open transaction when due,
    /// or at once with `commit_now`). Returns whether the transaction was
    /// aborted, every assigned partition rewound to its committed offset.
    pub(super) async fn close_batch(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        mut batch: Batch,
        commit_now: bool,
    ) -> Result<bool, PipelineError> {
        // Before anything derived leaves: nothing of a patient erased by
        // now is published, not even an alert raised earlier.
        let purged = self.processor.apply_erasures();
        if purged > 0 {
            info!(entries = purged, "erased patients' state purged");
        }
        self.publish_derived(&mut batch).await?;
        let changes = self.commit.changes(&mut batch);
        self.changelog.take(&mut self.processor, changes)?;
        if !self.commit.has_work(&batch) {
            return Ok(false);
        }
        if commit_now && self.commit.is_committing() {
            // The commit running in the background ends first; this batch
            // is then in the next transaction, committed at once.
            let ended = self.commit.ended().await?;
            if self.settle(consumer, ended).await? {
                return Ok(true);
            }
            if !self.commit.has_work(&batch) {
                return Ok(false);
            }
        }
        let finished = self
            .commit
            .finish(consumer, batch, commit_now)
            .instrument(info_span!("batch"))
            .await?;
        if self.commit.is_committing() {
            // The next batches' outputs wait for the commit to end.
            self.router.outlet.hold();
        }
        match finished {
            Finished::Pending => Ok(false),
            Finished::Aborted => {
                self.router.outlet.discard();
                self.rewind(consumer)?;
                Ok(true)
            }
            Finished::Committed(batches) => {
                self.report_committed(batches);
                Ok(false)
            }
        }
    }

    /// Processes one record and enqueues its output.
    async fn handle(
        &mut self,
        msg: &BorrowedMessage<'_>,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        if let Some(resolver) = &self.resolver {
            resolver
                .prepare(InputKind::RawReading, msg.payload())
                .await?;
        }
        self.commit.begin()?;
        let record = InputRecord {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            payload: msg.payload(),
        };
        let now = now_ms();
        let disposition = self.processor.process(&record, now);
        batch.counts.consumed += 1;
        batch.consumed_at.push(Instant::now());
        let batch_first_offset = *batch
            .first_offsets
            .entry(record.partition)
            .or_insert(record.offset);
        self.guard
            .record(
                matches!(&disposition, Disposition::Dlq(r) if r.reason.signals_broken_producer()),
            )
            .map_err(|source| PipelineError::InvalidRatio {
                source,
                partition: record.partition,
                offset: record.offset,
                batch_first_offset,
            })?;
        self.router.route(&record, disposition, now, batch).await?;
        batch
            .next_offsets
            .insert(record.partition, record.offset + 1);
        Ok(())
    }

    /// Publishes the HRV windows the batch closed and the alerts it raised
    /// (including those whose confirmation wait ran out while idle).
    async fn publish_derived(&mut self, batch: &mut Batch) -> Result<(), PipelineError> {
        let now = now_ms();
        let windows = self.processor.take_closed_windows(now);
        let alerts = self.processor.take_alerts(now);
        if !windows.is_empty() || !alerts.is_empty() {
            // Idle turns open no transaction: a revocation then has none to abort.
            self.commit.begin()?;
        }
        for window in &windows {
            self.router.window(window, batch).await?;
        }
        for alert in &alerts {
            self.router.alert(alert, batch).await?;
        }
        let counts = self.processor.take_counts();
        batch.counts.late_beats += counts.late_beats;
        batch.counts.alerts_suppressed = counts.alerts_suppressed;
        Ok(())
    }
}
