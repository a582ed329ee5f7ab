//! at_least_once: a batch's offsets are stored only after every output of
//! the batch, and then its state changes, are acknowledged by the broker.
//!
//! Batches overlap: once a batch is closed its deliveries are awaited
//! here, in the background of the batch loop, which meanwhile reads and
//! processes the next batch. Completions are taken strictly in batch order,
//! so offsets are stored in order; a batch's changelog records are sent as
//! soon as its outputs are acknowledged (after those of the batch before,
//! so a key's newer state never lands before its older one).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{ChangelogSink, Done, Finished, offsets};
use crate::kafka::PipelineContext;
use crate::pipeline::PipelineError;
use crate::pipeline::backpressure::delivered;
use crate::pipeline::batch::Batch;

/// A batch whose outputs and state changes are acknowledged.
pub(in crate::pipeline) struct Acked {
    /// Next offset to consume per input partition.
    next_offsets: BTreeMap<i32, i64>,
    done: Done,
}

/// The at_least_once strategy.
pub(in crate::pipeline) struct AtLeastOnce {
    sink: Arc<ChangelogSink>,
    raw_topic: String,
    /// Closed batches awaiting their acknowledgements, oldest first.
    in_flight: FuturesOrdered<BoxFuture<'static, Result<Acked, PipelineError>>>,
    /// Resolves once the newest in-flight batch's changelog is enqueued.
    last_changelog: Option<oneshot::Receiver<()>>,
}

impl AtLeastOnce {
    pub(in crate::pipeline) fn new(sink: ChangelogSink, raw_topic: String) -> Self {
        Self {
            sink: Arc::new(sink),
            raw_topic,
            in_flight: FuturesOrdered::new(),
            last_changelog: None,
        }
    }

    /// Whether closed batches await acknowledgement.
    pub(super) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Puts `batch` in flight: outputs delivered, then its state changes,
    /// then (in [`Self::store`]) its offsets stored. State changes only
    /// once the outputs they stand for are delivered: a restart never finds
    /// a reading remembered whose output was lost. With `drain`, waits for
    /// every batch in flight and stores their offsets.
    pub(super) async fn finish(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        batch: Batch,
        drain: bool,
    ) -> Result<Finished, PipelineError> {
        let empty = batch.deliveries.sent() == 0
            && batch.changelog.is_empty()
            && batch.next_offsets.is_empty()
            && batch.counts.consumed == 0;
        if !empty {
            self.push(batch);
        }
        if !drain {
            return Ok(Finished::Pending);
        }
        let mut done = Vec::new();
        while let Some(acked) = self.in_flight.next().await {
            done.push(self.store(consumer, acked?));
        }
        Ok(Finished::Committed(done))
    }

    fn push(&mut self, batch: Batch) {
        let (enqueued, next) = oneshot::channel();
        let before = self.last_changelog.replace(next);
        let sink = self.sink.clone();
        let Batch {
            deliveries,
            mut changelog,
            next_offsets,
            counts,
            consumed_at,
            ..
        } = batch;
        self.in_flight.push_back(Box::pin(async move {
            delivered(&deliveries).await?;
            if let Some(before) = before {
                // Fails only when that batch failed, which stops the run.
                let _ = before.await;
            }
            // The outputs are acknowledged: the same count serves the
            // state changes.
            let written = sink.write(&mut changelog, &deliveries).await;
            let _ = enqueued.send(());
            written?;
            delivered(&deliveries).await?;
            Ok(Acked {
                next_offsets,
                done: (counts, consumed_at),
            })
        }));
    }

    /// The oldest in-flight batch, once acknowledged (pending while none is
    /// in flight). Cancel-safe.
    pub(super) async fn acked(&mut self) -> Result<Acked, PipelineError> {
        match self.in_flight.next().await {
            Some(acked) => acked,
            None => std::future::pending().await,
        }
    }

    /// Stores the offsets of an acknowledged batch.
    pub(super) fn store(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        acked: Acked,
    ) -> Done {
        if !acked.next_offsets.is_empty() {
            let stored = offsets(&self.raw_topic, &acked.next_offsets)
                .and_then(|tpl| consumer.store_offsets(&tpl).map_err(PipelineError::Commit));
            if let Err(e) = stored {
                // Partitions revoked meanwhile can no longer be stored; their
                // new owner re-reads those records (at-least-once).
                warn!(error = %e, "storing offsets failed; records may be re-read by the next owner");
            }
        }
        acked.done
    }

    /// Commits the stored offsets: whatever happened, they are those of
    /// fully delivered batches.
    ///
    /// # Errors
    /// The commit failed: the next run re-reads from the offsets committed
    /// before (nothing is lost, some outputs repeat).
    pub(super) fn shutdown(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<(), PipelineError> {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => info!("final offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                info!("no new offsets to commit")
            }
            Err(e) => return Err(PipelineError::FinalCommit(e)),
        }
        Ok(())
    }
}
