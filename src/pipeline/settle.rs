//! Work that completes in the background of the batch loop: batches
//! acknowledged (at_least_once: their offsets are stored), a commit that
//! ends (exactly_once: the outputs held meanwhile are sent, or dropped with
//! an aborted transaction), and backpressure, which waits for either.

use std::future::Future;

use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::Producer;
use tokio::time::Instant;

use super::batch::Pipeline;
use super::commit::{Done, Finished, Progress};
use super::{PipelineError, now_ms};
use crate::kafka::PipelineContext;

impl Pipeline {
    /// Takes work completed in the background: stores an acknowledged
    /// batch's offsets (at_least_once), or the end of a commit
    /// (exactly_once, see [`Self::settle`]). Returns whether a transaction
    /// was aborted, every assigned partition rewound.
    pub(super) async fn progressed(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        progress: Progress,
    ) -> Result<bool, PipelineError> {
        match progress {
            Progress::Acked(acked) => {
                if let Some(done) = self.commit.store(consumer, acked) {
                    self.report_committed(vec![done]);
                }
                Ok(false)
            }
            Progress::Ended(ended) => {
                // Taken here, in the select arm's body, not in the awaited
                // future a select may drop.
                let finished = self.commit.take_end(ended).await?;
                self.settle(consumer, finished).await
            }
        }
    }

    /// A commit that ran in the background ended (exactly_once). Committed:
    /// its batches are reported and the outputs held meanwhile are sent
    /// in the transaction now open. Aborted: the held work goes with it
    /// and every assigned partition goes back to its committed offset, its
    /// state (including the changes of the held batches) restored from the
    /// changelog. A revocation during the commit waited for it and
    /// dropped the held work: it is dropped here too. Returns whether the
    /// held work was dropped.
    pub(super) async fn settle(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        finished: Finished,
    ) -> Result<bool, PipelineError> {
        let committed = match finished {
            Finished::Committed(batches) => {
                self.report_committed(batches);
                true
            }
            Finished::Pending => true,
            Finished::Aborted => false,
        };
        if self.context.events.take_txn_aborted() {
            self.router.outlet.discard();
            self.drop_aborted_work(consumer).await?;
            return Ok(true);
        }
        if committed {
            self.router.outlet.release().await?;
            return Ok(false);
        }
        self.router.outlet.discard();
        self.rewind(consumer)?;
        Ok(true)
    }

    /// Reports batches that became durable.
    pub(super) fn report_committed(&mut self, batches: Vec<Done>) {
        self.report.committed(
            batches,
            Instant::now(),
            &self.processor,
            &self.stats,
            self.producer.in_flight_count(),
        );
    }

    /// Backpressure: consumption pauses while the oldest deliveries are
    /// awaited, until at most half of `processing.max_in_flight` remain.
    /// Returns whether shutdown was requested meanwhile.
    pub(super) async fn relieve(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<bool, PipelineError> {
        let paused = self.backpressure.pause(consumer)?;
        let mut stop = false;
        // Deliveries resolve or time out (message.timeout.ms), and commits
        // end, so this ends. Once nothing of ours is pending, the queue
        // count drops as librdkafka frees the acknowledged records.
        while !self.backpressure.drained(self.router.outlet.held()) && self.commit.has_pending() {
            self.stats.health.beat(now_ms());
            tokio::select! {
                biased;
                () = &mut *shutdown => { stop = true; break; }
                progress = self.commit.await_oldest() => {
                    if let Some(progress) = progress? {
                        self.progressed(consumer, progress).await?;
                    }
                }
            }
        }
        self.backpressure.resume(consumer, paused, &self.stats)?;
        Ok(stop)
    }
}
