//! The erasures topic (`vitalstream.<group_id>.erasures`, compacted): the
//! durable set of erased patients, by keyed hash ([`crate::erasure`]).
//!
//! At start-up, before the patients topic, every record is read into the
//! profile table ([`ProfileSink`]): erasures outlive their tombstone on the patients topic
//! (gone after its `delete.retention.ms`), restarts and rebalances. The
//! profile loader then records each new tombstone here and deletes the
//! record of an id registered again. Every instance reads the whole patients
//! topic, so every instance writes the same records; compaction keeps one.
//! Writes are plain idempotent produces, not part of the pipeline's
//! transactions: a record must exist whether or not any transaction
//! commits, and writing it twice is harmless.
//!
//! The topic is created (compacted, one partition, no retention) when
//! missing: it is internal, like the state changelog.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::client::{client_config, profile_consumer_config};
use super::context::EofQuietContext;
use super::profiles::ProfileLoadError;
use super::{TopicSpec, ensure_topics};
use crate::config::Config;
use crate::erasure::record::{self, ErasureRecord};
use crate::erasure::{PatientHash, Position};
use crate::process::ProfileSink;

/// Writes erasure records; reads them all back at start-up ([`Self::open`]).
pub struct ErasureLog {
    producer: FutureProducer,
    topic: String,
    key_id: String,
    pending: Vec<DeliveryFuture>,
}

impl ErasureLog {
    /// Creates the topic if missing and loads every erasure it holds into
    /// `table`.
    ///
    /// # Errors
    /// The topic cannot be created or read, a record does not decode, or
    /// the records were written under another `erasure.hash_key`.
    pub async fn open(config: &Config, table: &dyn ProfileSink) -> Result<Self, ProfileLoadError> {
        let topic = config.topics.erasures_topic(&config.kafka.group_id);
        let hasher = table.hasher();
        if hasher.is_builtin() {
            warn!(
                topic,
                "erasure.hash_key is not set: erased patients are recorded under vitalstream's \
                 built-in, public hash key; set erasure.hash_key_file (docs/erasure.md)"
            );
        }
        let consumer: StreamConsumer<EofQuietContext> = profile_consumer_config(&config.kafka)
            .create_with_context(EofQuietContext("erasure loader"))
            .map_err(ProfileLoadError::Setup)?;
        let partitions = ensure_topic(config, &consumer, &topic).await?;
        let key_id = hasher.key_id();
        let mut latest: HashMap<PatientHash, Option<ErasureRecord>> = HashMap::new();
        let records = read_all(&consumer, &topic, &partitions).await?;
        for (key, value) in &records {
            let Some(hash) = record::decode_key(key) else {
                warn!(topic, "erasure record with a foreign key ignored");
                continue;
            };
            let value = match value.as_deref().map(record::decode).transpose() {
                Ok(v) => v,
                Err(detail) => {
                    return Err(ProfileLoadError::Erasures(format!(
                        "an erasure record on `{topic}` does not decode: {detail}"
                    )));
                }
            };
            latest.insert(hash, value);
        }
        let mut loaded = 0;
        for (hash, value) in latest {
            let Some(value) = value else { continue };
            if value.key_id != key_id {
                return Err(ProfileLoadError::Erasures(format!(
                    "erasures on `{topic}` were recorded under hash key {} but this instance \
                     uses {key_id}: every instance of the group needs the same \
                     erasure.hash_key, and it must never change",
                    value.key_id
                )));
            }
            table.restore_erasure(hash, value.position);
            loaded += 1;
        }
        info!(
            topic,
            erased = loaded,
            records = records.len(),
            "erased patients loaded"
        );
        let producer: FutureProducer = client_config(&config.kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .map_err(ProfileLoadError::Setup)?;
        Ok(Self {
            producer,
            topic,
            key_id,
            pending: Vec::new(),
        })
    }

    /// Records the erasure of `hash` at `position` (sent; [`Self::flush`]
    /// waits for it).
    ///
    /// # Errors
    /// The record cannot be enqueued.
    pub fn record(
        &mut self,
        hash: PatientHash,
        position: Position,
    ) -> Result<(), ProfileLoadError> {
        let value = record::encode(&ErasureRecord {
            version: record::VERSION,
            key_id: self.key_id.clone(),
            position: Some(position),
        });
        self.send(hash, Some(&value))
    }

    /// Deletes the erasure record of `hash` (the id was registered again).
    ///
    /// # Errors
    /// The tombstone cannot be enqueued.
    pub fn forget(&mut self, hash: PatientHash) -> Result<(), ProfileLoadError> {
        self.send(hash, None)
    }

    fn send(&mut self, hash: PatientHash, value: Option<&[u8]>) -> Result<(), ProfileLoadError> {
        let key = record::encode_key(hash);
        let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).key(&key[..]);
        if let Some(value) = value {
            out = out.payload(value);
        }
        let future = self
            .producer
            .send_result(out)
            .map_err(|(e, _)| ProfileLoadError::ErasureWrite(e))?;
        self.pending.push(future);
        Ok(())
    }

    /// Waits until every record sent is acknowledged.
    ///
    /// # Errors
    /// A record was not delivered (within `message.timeout.ms`).
    pub async fn flush(&mut self) -> Result<(), ProfileLoadError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = self.pending.len();
        try_join_all(
            std::mem::take(&mut self.pending)
                .into_iter()
                .map(|f| async {
                    match f.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((e, _))) => Err(ProfileLoadError::ErasureWrite(e)),
                        Err(_) => Err(ProfileLoadError::ErasureWrite(KafkaError::Canceled)),
                    }
                }),
        )
        .await?;
        info!(records = n, topic = %self.topic, "erasure records written");
        Ok(())
    }
}

/// The partitions of the erasures topic, creating it when missing.
async fn ensure_topic(
    config: &Config,
    consumer: &StreamConsumer<EofQuietContext>,
    topic: &str,
) -> Result<Vec<i32>, ProfileLoadError> {
    let lookup = || -> Result<Vec<i32>, ProfileLoadError> {
        let md = super::blocking(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(10)))
            .map_err(ProfileLoadError::Setup)?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect())
    };
    let found = lookup()?;
    if !found.is_empty() {
        return Ok(found);
    }
    info!(
        topic,
        "creating the erasures topic (compacted, 1 partition)"
    );
    ensure_topics(
        &client_config(&config.kafka),
        &[TopicSpec::compacted(topic, 1)],
    )
    .await
    .map_err(|e| {
        ProfileLoadError::Erasures(format!(
            "the erasures topic `{topic}` does not exist and creating it failed: {e}; create it \
             compacted (cleanup.policy=compact, retention.ms=-1)"
        ))
    })?;
    for _ in 0..50 {
        let found = lookup()?;
        if !found.is_empty() {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ProfileLoadError::MissingTopic(topic.to_owned()))
}

/// Every record of `topic`, partition by partition in log order.
async fn read_all(
    consumer: &StreamConsumer<EofQuietContext>,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, ProfileLoadError> {
    let mut assignment = TopicPartitionList::new();
    let mut pending = std::collections::BTreeSet::new();
    for &p in partitions {
        let (low, high) =
            super::blocking(|| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)))
                .map_err(ProfileLoadError::Setup)?;
        if high > low {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(ProfileLoadError::Setup)?;
            pending.insert(p);
        }
    }
    let mut out = Vec::new();
    if pending.is_empty() {
        return Ok(out);
    }
    consumer
        .assign(&assignment)
        .map_err(ProfileLoadError::Setup)?;
    while !pending.is_empty() {
        match consumer.recv().await {
            Ok(msg) => {
                if let Some(key) = msg.key() {
                    out.push((key.to_vec(), msg.payload().map(<[u8]>::to_vec)));
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                pending.remove(&p);
            }
            Err(e) if super::is_transient(&e) => {}
            Err(e) => return Err(ProfileLoadError::Consume(e)),
        }
    }
    consumer.unassign().map_err(ProfileLoadError::Setup)?;
    Ok(out)
}
