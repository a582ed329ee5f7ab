//! Topic creation for the demo, tests and `run --create-topics`.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// A topic to create if missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
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
            config: vec![
                ("cleanup.policy".into(), "delete".into()),
                ("retention.ms".into(), "604800000".into()),
                ("retention.bytes".into(), "-1".into()),
            ],
        }
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
                NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)),
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
