//! Reads one partition of the state changelog from its beginning to its end,
//! to restore an input partition's state before it is processed.
//!
//! Only committed records may be restored: a state change of an aborted
//! transaction would, for instance, mark readings as seen that no committed
//! output holds. On plaintext connections the protocol-level
//! [`read_committed`] applies that from the log's control markers (right on
//! every broker, including those that send no aborted-transaction list);
//! with TLS or SASL configured, a librdkafka `read_committed` consumer is
//! used and the broker's list is trusted.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use thiserror::Error;

use super::client::state_consumer_config;
use super::committed::{CommittedReadError, read_committed};
use super::context::EofQuietContext;
use crate::config::{KafkaConfig, SecurityProtocol};

/// Why a changelog partition could not be read.
#[derive(Debug, Error)]
pub enum RestoreError {
    /// librdkafka consumer error.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Protocol-level reader error.
    #[error(transparent)]
    Protocol(#[from] CommittedReadError),
}

/// One changelog record: key and value (`None` = tombstone).
pub type ChangelogEntry = (Vec<u8>, Option<Vec<u8>>);

/// A reusable reader of changelog partitions.
pub struct StateReader {
    consumer: StreamConsumer<EofQuietContext>,
    topic: String,
    /// `Some(bootstrap)` when the connection is plaintext.
    plaintext: Option<String>,
    timeout: Duration,
}

impl StateReader {
    /// A reader of `topic`.
    ///
    /// # Errors
    /// The consumer cannot be created.
    pub fn new(cfg: &KafkaConfig, topic: &str) -> Result<Self, KafkaError> {
        let plaintext = cfg.security_protocol() == Some(SecurityProtocol::Plaintext);
        Ok(Self {
            consumer: state_consumer_config(cfg)
                .create_with_context(EofQuietContext("state restore"))?,
            topic: topic.to_owned(),
            plaintext: plaintext.then(|| cfg.brokers.clone()),
            timeout: Duration::from_millis(u64::from(cfg.session_timeout_ms).max(30_000)),
        })
    }

    /// Every committed record of `partition`, in log order.
    ///
    /// # Errors
    /// A read error before the end of the partition was reached.
    pub async fn read_partition(
        &self,
        partition: i32,
    ) -> Result<Vec<ChangelogEntry>, RestoreError> {
        let Some(bootstrap) = self.plaintext.clone() else {
            return Ok(self.read_with_librdkafka(partition).await?);
        };
        let (topic, timeout) = (self.topic.clone(), self.timeout);
        let records = tokio::task::spawn_blocking(move || {
            read_committed(&bootstrap, &topic, partition, timeout)
        })
        .await
        .map_err(|_| KafkaError::Canceled)??;
        Ok(records
            .into_iter()
            .filter_map(|r| r.key.map(|k| (k, r.value)))
            .collect())
    }

    async fn read_with_librdkafka(
        &self,
        partition: i32,
    ) -> Result<Vec<ChangelogEntry>, KafkaError> {
        let mut assignment = TopicPartitionList::with_capacity(1);
        assignment.add_partition_offset(&self.topic, partition, Offset::Beginning)?;
        self.consumer.assign(&assignment)?;
        let mut entries = Vec::new();
        let result = loop {
            match self.consumer.recv().await {
                Ok(msg) if msg.partition() == partition => {
                    if let Some(key) = msg.key() {
                        entries.push((key.to_vec(), msg.payload().map(<[u8]>::to_vec)));
                    }
                }
                Ok(_) => {}
                Err(KafkaError::PartitionEOF(p)) if p == partition => break Ok(entries),
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => break Err(e),
            }
        };
        self.consumer.unassign()?;
        result
    }
}
