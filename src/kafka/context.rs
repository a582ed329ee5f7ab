//! Consumer context: logs rebalances and hands assigned and revoked
//! partitions to the pipeline, which restores the state of the former before
//! processing them and drops the state of the latter as soon as it sees the
//! revocation, before it processes any record of a later assignment (which
//! may hand the same partitions back).
//!
//! Under cooperative rebalancing (`kafka.rebalancing`, the default) an
//! assignment or revocation lists only the partitions that move; the others
//! keep running. The health report counts the whole assignment after each
//! change.
//!
//! exactly_once: a revocation aborts the open transaction inside the
//! rebalance callback, before this member rejoins the group. A commit after
//! that point could land after the partitions' new owner has read their
//! committed offsets, and both would publish the same outputs; aborted, the
//! work is simply done again by the new owner. A commit running in the
//! background when the revocation comes is waited for (committed or
//! aborted) before the callback returns, and the work held for the next
//! transaction meanwhile is dropped the same way.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::Transactions;
use super::link::{BrokerLink, LinkClient};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::{ClientContext, Statistics};
use tracing::{info, warn};

use crate::telemetry::{CONSUMER_LAG, StartupPhase, Stats};

/// Partition changes seen by the rebalance callbacks since the last drain.
#[derive(Default)]
pub struct RebalanceEvents {
    revoked: Mutex<Vec<i32>>,
    /// Set with every revocation, so the pipeline's per-record check is an
    /// atomic load rather than a lock.
    revoke_seen: AtomicBool,
    assigned: Mutex<Vec<i32>>,
    /// Set with every assignment (and requeue), so the pipeline's
    /// per-record check is an atomic load rather than a lock.
    assign_seen: AtomicBool,
    /// Wakes the pipeline loop when an assignment arrives while it waits
    /// for records, so the restore starts at once, not with the first
    /// record of the assigned partitions.
    assign_wake: tokio::sync::Notify,
    /// exactly_once: the pipeline's transactions.
    txn: OnceLock<Transactions>,
    /// The rebalance callback aborted the open transaction.
    txn_aborted: AtomicBool,
}

impl std::fmt::Debug for RebalanceEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RebalanceEvents")
            .field("revoked", &self.revoked)
            .field("assigned", &self.assigned)
            .field("txn_aborted", &self.txn_aborted)
            .finish_non_exhaustive()
    }
}

impl RebalanceEvents {
    /// exactly_once: the transactions whose open one a revocation aborts.
    pub fn set_transactions(&self, txn: Transactions) {
        let _ = self.txn.set(txn);
    }

    /// Whether a revocation aborted the open transaction since the last call.
    pub fn take_txn_aborted(&self) -> bool {
        self.txn_aborted.swap(false, Ordering::SeqCst)
    }

    /// Aborts the open transaction, if any (called on revocation).
    fn abort_open_txn(&self) {
        let Some(txn) = self.txn.get() else {
            return;
        };
        match txn.abort_blocking() {
            Ok(false) => return,
            Ok(true) => {
                info!("open transaction aborted on revocation; the new owners redo its work")
            }
            // Still open: the pipeline drops the work and aborts again
            // (or stops the run if that fails too).
            Err(e) => warn!(error = %e, "aborting the open transaction on revocation failed"),
        }
        self.txn_aborted.store(true, Ordering::SeqCst);
    }

    /// Whether partitions were assigned (or requeued) since the last
    /// [`Self::take_assigned`].
    pub fn has_assigned(&self) -> bool {
        self.assign_seen.load(Ordering::SeqCst)
    }

    /// Resolves when partitions were assigned since the last time it
    /// resolved (at once if that happened before the call).
    pub async fn assignment_arrived(&self) {
        self.assign_wake.notified().await;
    }

    /// Takes the partitions assigned since the last call.
    pub fn take_assigned(&self) -> Vec<i32> {
        if !self.assign_seen.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        self.assigned
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Queues `partitions`, still assigned, for a restore as if newly
    /// assigned (their state was dropped after an aborted transaction): the
    /// restore also applies every erasure to them at once.
    pub fn requeue_assigned(&self, partitions: &[i32]) {
        if let Ok(mut assigned) = self.assigned.lock() {
            assigned.extend_from_slice(partitions);
        }
        self.assign_seen.store(true, Ordering::SeqCst);
    }

    /// Takes the partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<i32> {
        if !self.revoke_seen.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        self.revoked
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// The pipeline's consumer context.
#[derive(Debug, Clone)]
pub struct PipelineContext {
    /// Shared with the pipeline loop.
    pub events: Arc<RebalanceEvents>,
    /// Broker reachability, shared with the producer's context.
    pub link: Arc<BrokerLink>,
    stats: Arc<Stats>,
    raw_topic: Arc<str>,
    /// The whole assignment, kept from the callbacks' own lists: asking
    /// librdkafka inside a callback is a blocking request to its consumer
    /// group thread, which never answers during the revocation that
    /// closing the consumer runs (the drop then hung for good).
    held: Arc<Mutex<BTreeSet<i32>>>,
    /// The group's rebalance protocol, asked once at the first assignment.
    protocol: Arc<OnceLock<&'static str>>,
}

impl PipelineContext {
    /// A context reporting assignment to `stats.health`, the consumer lag
    /// of `raw_topic` from librdkafka statistics, and outages to `link`.
    pub fn new(stats: Arc<Stats>, raw_topic: &str, link: Arc<BrokerLink>) -> Self {
        Self {
            events: Arc::default(),
            link,
            stats,
            raw_topic: raw_topic.into(),
            held: Arc::default(),
            protocol: Arc::default(),
        }
    }
}

impl ClientContext for PipelineContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.link.client_error(LinkClient::Consumer, &error);
        warn!(%error, reason, client = "consumer", "kafka client error");
    }

    /// Consumer lag per partition and broker reachability, every
    /// `statistics.interval.ms`.
    fn stats(&self, statistics: Statistics) {
        self.link.statistics(LinkClient::Consumer, &statistics);
        let Some(topic) = statistics.topics.get(&*self.raw_topic) else {
            return;
        };
        for (id, p) in &topic.partitions {
            if *id < 0 {
                continue; // librdkafka's internal "unassigned" partition
            }
            // -1 = unknown or not assigned here: report 0 so sums across
            // instances stay right after a rebalance.
            let lag = p.consumer_lag.max(0);
            // Lags are far below f64's exact-integer range.
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(CONSUMER_LAG, "partition" => id.to_string()).set(lag as f64);
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                if partitions.is_empty() {
                    return;
                }
                info!(?partitions, "partitions revoked");
                if let Ok(mut held) = self.held.lock() {
                    for p in &partitions {
                        held.remove(p);
                    }
                }
                self.events.abort_open_txn();
                if let Ok(mut revoked) = self.events.revoked.lock() {
                    revoked.extend(partitions);
                }
                self.events.revoke_seen.store(true, Ordering::SeqCst);
            }
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                if partitions.is_empty() {
                    return;
                }
                info!(?partitions, "partitions assigned");
                if let Ok(mut held) = self.held.lock() {
                    held.extend(partitions.iter().copied());
                }
                // Not ready until the pipeline has restored their state.
                self.stats.health.set_state_restored(false);
                if let Ok(mut assigned) = self.events.assigned.lock() {
                    assigned.extend(partitions);
                }
                self.events.assign_seen.store(true, Ordering::SeqCst);
                self.events.assign_wake.notify_one();
                self.stats.startup.end(StartupPhase::Assigned, None);
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    /// The whole assignment after the change: under cooperative rebalancing
    /// an assignment or revocation lists only the partitions that move.
    /// (Eager: a revocation lists everything held, then the assignment
    /// everything new, so the same bookkeeping holds.) No blocking call into
    /// librdkafka here but the protocol's, once, at the first assignment.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Error(_)) {
            return;
        }
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.protocol
                .get_or_init(|| match consumer.rebalance_protocol() {
                    RebalanceProtocol::Cooperative => "cooperative",
                    RebalanceProtocol::Eager => "eager",
                    RebalanceProtocol::None => "none",
                });
        }
        let held: Vec<i32> = match self.held.lock() {
            Ok(held) => held.iter().copied().collect(),
            Err(_) => return,
        };
        info!(
            partitions = ?held,
            protocol = self.protocol.get().copied().unwrap_or("unknown"),
            "assignment after rebalance"
        );
        self.stats.health.set_assigned(held.len());
    }
}

/// Context of the consumers that read a topic to its end (profile loader,
/// state restore): end-of-partition is how they detect it, so it is not an
/// error worth logging. The field names the reader in other warnings.
pub struct EofQuietContext(pub &'static str);

impl ClientContext for EofQuietContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            warn!(%error, reason, reader = self.0, "kafka client error");
        }
    }
}

impl ConsumerContext for EofQuietContext {}
