//! Operator tools beside the pipeline: `tail` (a topic as JSON lines),
//! `dlq redrive` (re-publish dead-lettered readings that can now succeed)
//! and `reset` (replay the input with the state changelog cleared).
//!
//! Each takes the same configuration as `run` and its dependencies as
//! arguments, so the CLI and the tests call the same code.

mod avro_json;
mod redrive;
mod reset;
mod tail;

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use thiserror::Error;

pub use avro_json::{WriterSchemas, to_json};
pub use redrive::{RedriveArgs, RedriveReason, RedriveReport, redrive};
pub use reset::{ResetArgs, ResetReport, reset};
pub use tail::{TailArgs, tail};

/// Why a tool stopped.
#[derive(Debug, Error)]
pub enum ToolError {
    /// A Kafka client call failed.
    #[error("kafka: {0}")]
    Kafka(#[source] KafkaError),
    /// The topic does not exist (or has no partitions).
    #[error("topic `{0}` does not exist")]
    MissingTopic(String),
    /// The schema registry client could not be set up or answer.
    #[error(transparent)]
    Registry(crate::registry::RegistryError),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
    /// The tool refuses to act (e.g. the consumer group is active).
    #[error("{0}")]
    Refused(String),
    /// A setting or argument is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Partition ids of `topic`.
pub(crate) async fn partitions<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    topic: &str,
) -> Result<Vec<i32>, ToolError> {
    for _ in 0..10 {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(ToolError::Kafka)?;
        let ids: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !ids.is_empty() {
            return Ok(ids);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(ToolError::MissingTopic(topic.to_owned()))
}
