//! Reads one partition of the state changelog into a [`Restorer`], from its
//! beginning until the state it holds is that of the group's committed
//! input offset (DESIGN.md §6: a provably complete restore).
//!
//! Only committed records may be restored: a state change of an aborted
//! transaction would, for instance, mark readings as seen that no committed
//! output holds. In production a librdkafka `read_committed` consumer reads
//! through every bootstrap broker and the broker filters aborted records.
//! `kafka.changelog_reader = "log_markers"` switches to the protocol-level
//! [`CommittedReader`], which applies the log's own commit/abort markers,
//! for brokers that send no aborted-transaction list (tansu 0.6).
//!
//! Either way a read_committed reader stops at the last stable offset: an
//! open transaction of another producer (a killed instance) ahead of the
//! committed state hides it. The restore does not take that end for the
//! end of the state: it goes on reading until the marker of the committed
//! offset has been applied, and fails once no record has come for
//! `wait` (at least the transaction timeout, after which Kafka aborts the
//! open transaction).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use thiserror::Error;

use super::client::state_consumer_config;
use super::committed::{CommittedReadError, CommittedReader};
use super::context::EofQuietContext;
use super::link::is_transient;
use crate::config::{ChangelogReader, KafkaConfig};
use crate::state::{Restorer, StateError};

/// Why a changelog partition could not be restored.
#[derive(Debug, Error)]
pub enum RestoreError {
    /// librdkafka consumer error.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Protocol-level reader error.
    #[error(transparent)]
    Protocol(#[from] CommittedReadError),
    /// A record that does not decode, or a restore that cannot complete.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A reusable reader of changelog partitions.
pub struct StateReader {
    /// For [`Self::live_keys`]; each restore creates its own consumer.
    consumer: StreamConsumer<EofQuietContext>,
    /// The restore consumers' settings.
    config: ClientConfig,
    topic: String,
    /// `Some(bootstrap)` in the log-markers compatibility mode.
    log_markers: Option<String>,
    /// Socket timeout of the log-markers reader.
    io_timeout: Duration,
}

impl StateReader {
    /// A reader of `topic`.
    ///
    /// # Errors
    /// The consumer cannot be created.
    pub fn new(cfg: &KafkaConfig, topic: &str) -> Result<Self, KafkaError> {
        let log_markers = cfg.changelog_reader == ChangelogReader::LogMarkers;
        let config = state_consumer_config(cfg);
        Ok(Self {
            consumer: config.create_with_context(EofQuietContext("state restore"))?,
            config,
            topic: topic.to_owned(),
            log_markers: log_markers.then(|| cfg.brokers.clone()),
            io_timeout: Duration::from_millis(u64::from(cfg.session_timeout_ms).max(30_000)),
        })
    }

    /// Applies the committed records of changelog `partition` to
    /// `restorer`, in log order, until it holds the state of `committed`
    /// (the group's committed input offset; `None`: up to the end).
    ///
    /// # Errors
    /// [`RestoreError`]; [`StateError::Incomplete`] when no record came
    /// for `wait` while the state was still short of `committed`.
    pub async fn restore(
        &self,
        partition: i32,
        restorer: Restorer,
        committed: Option<i64>,
        wait: Duration,
    ) -> Result<Restorer, RestoreError> {
        let Some(bootstrap) = self.log_markers.clone() else {
            return self
                .restore_with_librdkafka(partition, restorer, committed, wait)
                .await;
        };
        let (topic, io_timeout) = (self.topic.clone(), self.io_timeout);
        tokio::task::spawn_blocking(move || {
            restore_with_log_markers(
                &bootstrap, &topic, partition, restorer, committed, wait, io_timeout,
            )
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }

    /// Every key of changelog `partition` with whether its latest
    /// committed record holds a value (`false`: a tombstone), read to the
    /// end of the partition. For tools (`vitalstream reset`), not restores.
    ///
    /// # Errors
    /// [`RestoreError`] when the partition cannot be read.
    pub async fn live_keys(
        &self,
        partition: i32,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, bool>, RestoreError> {
        let mut keys = std::collections::BTreeMap::new();
        if let Some(bootstrap) = self.log_markers.clone() {
            let (topic, io_timeout) = (self.topic.clone(), self.io_timeout);
            let records = tokio::task::spawn_blocking(move || {
                super::committed::read_committed(&bootstrap, &topic, partition, io_timeout)
            })
            .await
            .map_err(|_| KafkaError::Canceled)??;
            for r in records {
                if let Some(key) = r.key {
                    keys.insert(key, r.value.is_some());
                }
            }
            return Ok(keys);
        }
        let mut assignment = TopicPartitionList::with_capacity(1);
        assignment.add_partition_offset(&self.topic, partition, Offset::Beginning)?;
        self.consumer.assign(&assignment)?;
        let result = loop {
            match tokio::time::timeout(self.io_timeout, self.consumer.recv()).await {
                Ok(Ok(msg)) if msg.partition() == partition => {
                    if let Some(key) = msg.key() {
                        keys.insert(key.to_vec(), msg.payload().is_some());
                    }
                }
                Ok(Err(KafkaError::PartitionEOF(p))) if p == partition => break Ok(keys),
                Ok(Err(e)) if !is_transient(&e) && !matches!(e, KafkaError::PartitionEOF(_)) => {
                    break Err(e.into());
                }
                Ok(_) => {}
                Err(_) => break Err(KafkaError::Canceled.into()),
            }
        };
        self.consumer.unassign()?;
        result
    }

    async fn restore_with_librdkafka(
        &self,
        partition: i32,
        restorer: Restorer,
        committed: Option<i64>,
        wait: Duration,
    ) -> Result<Restorer, RestoreError> {
        let (config, topic) = (self.config.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            restore_with_librdkafka(&config, &topic, partition, restorer, committed, wait)
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }
}

/// The read_committed restore, on a consumer of its own (restores of
/// several partitions run in parallel): blocking, call it off the async
/// workers.
fn restore_with_librdkafka(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    mut restorer: Restorer,
    committed: Option<i64>,
    wait: Duration,
) -> Result<Restorer, RestoreError> {
    let consumer: BaseConsumer<EofQuietContext> =
        config.create_with_context(EofQuietContext("state restore"))?;
    let mut assignment = TopicPartitionList::with_capacity(1);
    assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut progress = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) if msg.partition() == partition => {
                if let Some(key) = msg.key() {
                    restorer.apply(key, msg.payload())?;
                }
                progress = Instant::now();
                continue;
            }
            Some(Err(KafkaError::PartitionEOF(p)))
                if p == partition && restorer.is_complete(committed) =>
            {
                return Ok(restorer);
            }
            Some(Err(e)) if !is_transient(&e) && !matches!(e, KafkaError::PartitionEOF(_)) => {
                return Err(e.into());
            }
            _ => {}
        }
        if let Some(c) = committed.filter(|_| progress.elapsed() >= wait) {
            return Err(incomplete(partition, &restorer, c, wait).into());
        }
    }
}

fn incomplete(partition: i32, restorer: &Restorer, committed: i64, wait: Duration) -> StateError {
    StateError::Incomplete {
        partition,
        marker: restorer.marker(),
        committed,
        waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The log-markers compatibility mode: blocking, call it off the async workers.
fn restore_with_log_markers(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    mut restorer: Restorer,
    committed: Option<i64>,
    wait: Duration,
    io_timeout: Duration,
) -> Result<Restorer, RestoreError> {
    let mut reader = CommittedReader::open(bootstrap, topic, partition, io_timeout)?;
    let mut progress = Instant::now();
    loop {
        let (any, at_end) = reader.poll_each(|r| {
            match &r.key {
                Some(key) => restorer.apply(key, r.value.as_deref()),
                None => Ok(()),
            }
            .map_err(RestoreError::from)
        })?;
        if any {
            progress = Instant::now();
        }
        if at_end && restorer.is_complete(committed) {
            return Ok(restorer);
        }
        if progress.elapsed() >= wait {
            return match committed {
                Some(c) => Err(incomplete(partition, &restorer, c, wait).into()),
                None => Err(CommittedReadError::Timeout(wait).into()),
            };
        }
    }
}
