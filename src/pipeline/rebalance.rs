//! Partition ownership: restoring the state of assigned partitions from
//! the changelog before they are processed, releasing revoked ones, and
//! rewinding to the committed offsets after an aborted transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tracing::{info, warn};

use super::PipelineError;
use super::batch::{Batch, Pipeline};
use crate::kafka::PipelineContext;
use crate::state::Restorer;

/// How much longer than the transaction timeout a restore waits at the end
/// of the readable changelog for the committed state to become readable.
const RESTORE_WAIT_MARGIN: Duration = Duration::from_secs(10);

impl Pipeline {
    /// Restores every newly assigned partition (and those requeued after an
    /// aborted transaction) before any of their records is processed.
    ///
    /// The restore reads the group's committed offset of each, with the
    /// stable-offsets guarantee of `read_committed`: an open transaction
    /// holding offsets for the group makes the broker answer "unstable"
    /// until it ends. Were it this instance's own transaction, the fetch
    /// would wait for its timeout, so the open transaction (exactly_once)
    /// commits first and no new one begins before the restores are done.
    pub(super) async fn restore_assigned(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<(), PipelineError> {
        if !self.context.events.has_assigned() {
            return Ok(());
        }
        let mut pending = self.context.events.take_assigned();
        pending.retain(|p| !self.processor.has_partition(*p));
        if pending.is_empty() {
            return Ok(());
        }
        if self.close_batch(consumer, Batch::default(), true).await? {
            // Aborted: every assigned partition was rewound and requeued.
            pending = self.context.events.take_assigned();
        }
        pending.sort_unstable();
        pending.dedup();
        let started = Instant::now();
        self.restore_partitions(consumer, &pending).await?;
        self.stats.startup.ready(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Restores `partition`'s state from the changelog unless it is held
    /// (see [`Self::restore_partitions`]).
    pub(super) async fn ensure_restored(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        partition: i32,
    ) -> Result<(), PipelineError> {
        self.restore_partitions(consumer, &[partition]).await
    }

    /// Restores the state of `partitions` not held from the changelog:
    /// each reads until its state is that of the group's committed input
    /// offset (waiting out another producer's open transaction ahead of
    /// it, up to the transaction timeout), so no partition is processed
    /// with part of its state.
    ///
    /// Partitions restore in parallel, one reader each, as many at once as
    /// the machine has cores: decoding and applying the records is the
    /// cost (one core per partition; the broker only streams the log).
    async fn restore_partitions(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        partitions: &[i32],
    ) -> Result<(), PipelineError> {
        let wanted: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| !self.processor.has_partition(*p))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        for &partition in &wanted {
            crate::kafka::check_partition(
                &self.config.topics.raw,
                partition,
                &self.state_topic,
                self.state_partitions,
            )?;
        }
        let started = Instant::now();
        // Freed pages purged at once while restoring (src/alloc.rs): the
        // restore frees tables and buffers as it grows the state.
        let _memory = crate::alloc::RestoreMemory::begin();
        let committed = self.committed_offsets(consumer, &wanted)?;
        let wait = Duration::from_millis(self.config.processing.transaction_timeout_ms)
            + RESTORE_WAIT_MARGIN;
        let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let reader = &self.state_reader;
        let restorers: Vec<(i32, Option<i64>, Restorer)> = wanted
            .iter()
            .map(|&p| {
                let fresh = self.processor.fresh_partition();
                (
                    p,
                    committed.get(&p).copied().flatten(),
                    Restorer::new(p, fresh),
                )
            })
            .collect();
        let jobs = restorers
            .into_iter()
            .map(|(partition, committed, restorer)| async move {
                let result = reader.restore(partition, restorer, committed, wait).await;
                (partition, committed, result)
            });
        let mut done = futures::stream::iter(jobs).buffer_unordered(parallel);
        let mut failed = None;
        while let Some((partition, committed, result)) = done.next().await {
            let restorer = match result {
                Ok(restorer) => restorer,
                Err(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            };
            let restored = restorer.finish(&mut self.processor, &mut self.changelog);
            let seconds = started.elapsed().as_secs_f64();
            self.report.restored(seconds);
            info!(
                partition,
                records = restored.records,
                bytes = restored.bytes,
                dedup_entries = restored.dedup_entries,
                open_windows = restored.open_windows,
                alert_patients = restored.alert_patients,
                committed_offset = committed,
                state_offset = restored.next_offset,
                seconds,
                "partition state restored"
            );
        }
        match failed {
            Some(e) => Err(PipelineError::Restore(e)),
            None => Ok(()),
        }
    }

    /// The group's committed offsets of input `partitions` (`None`: none
    /// committed), in one request.
    fn committed_offsets(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Option<i64>>, PipelineError> {
        let topic = &self.config.topics.raw;
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let timeout = Duration::from_millis(self.config.processing.transaction_timeout_ms);
        let committed = crate::kafka::blocking(|| consumer.committed_offsets(tpl, timeout))
            .map_err(PipelineError::Commit)?;
        Ok(partitions
            .iter()
            .map(|&p| {
                let offset = committed
                    .find_partition(topic, p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
                (p, offset)
            })
            .collect())
    }

    /// Releases the state of partitions revoked while no transaction was
    /// open (a revocation with one open aborts it, and
    /// [`Self::drop_aborted_work`] releases them): all their work is
    /// committed, and their next owner restores it from the changelog.
    ///
    /// Called as soon as the pipeline sees the revocation, before it
    /// processes any record of a later assignment. Eager rebalancing
    /// revokes every partition and often hands some straight back to the
    /// same instance; a partition that comes back must be restored, not
    /// processed with the state held before: another owner may have moved
    /// it on meanwhile. Releasing it only after processing some of its
    /// records would also restore it right after this instance's own
    /// commit, which need not be readable yet (Kafka writes the commit
    /// markers after `commit_transaction` returns; tansu 0.6 keeps a
    /// committed transaction unreadable while an earlier open one of
    /// another producer shares a partition with it, see
    /// `tests/tansu_canaries.rs`), and that transaction's state would be lost.
    pub(super) fn release_revoked(&mut self) {
        let revoked = self.context.events.take_revoked();
        if revoked.is_empty() {
            return;
        }
        let open = self.processor.revoke(&revoked);
        info!(
            partitions = ?revoked,
            open_windows = open,
            "state of revoked partitions released (kept in the changelog)"
        );
    }

    /// After the rebalance callback aborted the open transaction: the work
    /// in it is dropped with all partition state (restored from the
    /// changelog before a partition is processed again); partitions this
    /// instance kept (cooperative assignment) go back to their committed
    /// offsets, the others are fetched from there by their new owner.
    /// Returns the partitions rewound.
    pub(super) async fn drop_aborted_work(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<Vec<i32>, PipelineError> {
        // Outputs held during a commit the callback waited for go too.
        self.router.outlet.discard();
        let durable = self.commit.drop_open().await?;
        if !durable.is_empty() {
            self.report_committed(durable);
        }
        let revoked = self.context.events.take_revoked();
        let held = self.processor.held_partitions();
        self.processor.revoke(&held);
        let kept: Vec<i32> = held.into_iter().filter(|p| !revoked.contains(p)).collect();
        if !kept.is_empty() {
            self.seek_to_committed(consumer, |p| kept.contains(&p))?;
            self.context.events.requeue_assigned(&kept);
        }
        info!(
            revoked = ?revoked,
            rewound = ?kept,
            "work of the aborted transaction dropped; state goes back to the changelog"
        );
        Ok(kept)
    }

    /// After an aborted transaction: every assigned partition goes back to
    /// its committed offset and its state is dropped, to be restored from
    /// the (committed) changelog before it is processed again.
    pub(super) fn rewind(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<(), PipelineError> {
        let partitions = self.seek_to_committed(consumer, |_| true)?;
        self.processor.revoke(&partitions);
        self.context.events.requeue_assigned(&partitions);
        warn!(
            partitions = ?partitions,
            "transaction aborted: partitions rewound to their committed offsets, state to the changelog"
        );
        Ok(())
    }

    /// Seeks the assigned partitions `which` selects back to their committed
    /// offsets (the beginning when none is committed); returns them.
    fn seek_to_committed(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
        which: impl Fn(i32) -> bool,
    ) -> Result<Vec<i32>, PipelineError> {
        let timeout = Duration::from_millis(self.config.processing.transaction_timeout_ms);
        let committed = crate::kafka::blocking(|| consumer.committed(timeout))
            .map_err(PipelineError::Commit)?;
        let mut partitions = Vec::new();
        for elem in committed.elements().iter().filter(|e| which(e.partition())) {
            let offset = match elem.offset() {
                Offset::Offset(n) => Offset::Offset(n),
                _ => Offset::Beginning,
            };
            consumer
                .seek(elem.topic(), elem.partition(), offset, timeout)
                .map_err(PipelineError::Commit)?;
            partitions.push(elem.partition());
        }
        Ok(partitions)
    }
}
