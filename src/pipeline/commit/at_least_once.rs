//! at_least_once: offsets stored only after every output of their batch,
//! and then its state changes, are acknowledged by the broker.

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{info, warn};

use super::{ChangelogSink, Finished, offsets};
use crate::kafka::PipelineContext;
use crate::pipeline::PipelineError;
use crate::pipeline::backpressure::delivered;
use crate::pipeline::batch::Batch;

/// The at_least_once strategy.
pub(in crate::pipeline) struct AtLeastOnce {
    sink: ChangelogSink,
    raw_topic: String,
}

impl AtLeastOnce {
    pub(in crate::pipeline) fn new(sink: ChangelogSink, raw_topic: String) -> Self {
        Self { sink, raw_topic }
    }

    /// Outputs delivered, then the state changes, then the offsets stored.
    /// State changes only once the outputs they stand for are delivered:
    /// a restart never finds a reading remembered whose output was lost.
    pub(super) async fn finish(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        mut batch: Batch,
    ) -> Result<Finished, PipelineError> {
        let offsets = offsets(&self.raw_topic, &batch.next_offsets)?;
        delivered(batch.deliveries).await?;
        delivered(self.sink.write(&mut batch.changelog).await?).await?;
        if offsets.count() == 0 {
            // An alert-only batch (a confirmation wait ran out while idle).
        } else if let Err(e) = consumer.store_offsets(&offsets) {
            // Partitions revoked mid-batch can no longer be stored; their new
            // owner re-reads those records (at-least-once).
            warn!(error = %e, "storing offsets failed; records may be re-read by the next owner");
        }
        Ok(Finished::Committed(vec![(batch.counts, batch.consumed_at)]))
    }

    /// Commits the stored offsets: whatever happened, they are those of
    /// fully delivered batches.
    pub(super) fn shutdown(&mut self, consumer: &StreamConsumer<PipelineContext>) {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => info!("final offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                info!("no new offsets to commit")
            }
            Err(e) => warn!(error = %e, "final offset commit failed"),
        }
    }
}
