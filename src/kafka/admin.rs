//! Topic creation for the demo, tests and `run --create-topics`.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Topics;

/// A topic to create if missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor (copies of each partition); 1 unless set with
    /// [`TopicSpec::replicated`].
    pub replication_factor: i32,
    /// Topic configs, e.g. `cleanup.policy`.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    /// A delete-policy topic with explicit retention (some brokers report
    /// only configs set at creation).
    pub fn new(name: &str, partitions: i32) -> Self {
        Self {
            name: name.to_owned(),
            partitions,
            replication_factor: 1,
            config: vec![
                ("cleanup.policy".into(), "delete".into()),
                ("retention.ms".into(), "604800000".into()),
                ("retention.bytes".into(), "-1".into()),
            ],
        }
    }

    /// A compacted topic (latest value per key, tombstones honoured).
    pub fn compacted(name: &str, partitions: i32) -> Self {
        Self {
            name: name.to_owned(),
            partitions,
            replication_factor: 1,
            config: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("retention.ms".into(), "-1".into()),
                ("retention.bytes".into(), "-1".into()),
            ],
        }
    }

    /// Every topic of the contract (DESIGN.md §1) for consumer group
    /// `group_id`: the patients topic and the group's state changelog
    /// compacted, all with `partitions` partitions.
    pub fn all(topics: &Topics, group_id: &str, partitions: i32) -> Vec<Self> {
        let mut specs: Vec<Self> = [
            &topics.raw,
            &topics.enriched,
            &topics.hrv_windows,
            &topics.alerts,
            &topics.dlq,
        ]
        .into_iter()
        .map(|name| Self::new(name, partitions))
        .collect();
        specs.push(Self::compacted(&topics.patients, partitions));
        // One changelog partition per input partition, same numbers.
        specs.push(Self::compacted(&topics.state_topic(group_id), partitions));
        // The erased patients: small, read in full by every instance.
        specs.push(Self::compacted(&topics.erasures_topic(group_id), 1));
        specs
    }

    /// The same topic with `replication_factor` copies of each partition
    /// (production clusters use 3; a single test broker only 1).
    #[must_use]
    pub fn replicated(mut self, replication_factor: i32) -> Self {
        self.replication_factor = replication_factor;
        self
    }
}

/// Creates each topic that does not exist yet.
///
/// # Errors
/// The first creation error other than "already exists".
pub async fn ensure_topics(client: &ClientConfig, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            t.config.iter().fold(
                NewTopic::new(
                    &t.name,
                    t.partitions,
                    TopicReplication::Fixed(t.replication_factor),
                ),
                |nt, (k, v)| nt.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}
