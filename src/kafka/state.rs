//! Reads one partition of the state changelog from its beginning to its end,
//! to restore an input partition's state before it is processed.

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::client::state_consumer_config;
use super::context::EofQuietContext;
use crate::config::KafkaConfig;

/// One changelog record: key and value (`None` = tombstone).
pub type ChangelogEntry = (Vec<u8>, Option<Vec<u8>>);

/// A reusable reader of changelog partitions.
pub struct StateReader {
    consumer: StreamConsumer<EofQuietContext>,
    topic: String,
}

impl StateReader {
    /// A reader of `topic`.
    ///
    /// # Errors
    /// The consumer cannot be created.
    pub fn new(cfg: &KafkaConfig, topic: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            consumer: state_consumer_config(cfg)
                .create_with_context(EofQuietContext("state restore"))?,
            topic: topic.to_owned(),
        })
    }

    /// Every committed record of `partition`, in log order.
    ///
    /// # Errors
    /// A consumer error before the end of the partition was reached.
    pub async fn read_partition(&self, partition: i32) -> Result<Vec<ChangelogEntry>, KafkaError> {
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
