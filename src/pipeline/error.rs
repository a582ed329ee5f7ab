//! Why a pipeline run stops with an error, and the exit code each maps to.

use rdkafka::error::KafkaError;
use thiserror::Error;

use crate::kafka::{BrokersUnreachable, ProfileLoadError};
use crate::process::InvalidRatioExceeded;

/// Why a pipeline run stopped with an error. All are fatal: the process
/// exits non-zero without committing the failed batch.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// Creating or configuring a Kafka client failed.
    #[error("kafka client set-up: {0}")]
    Setup(#[source] KafkaError),
    /// The consumer reported an unrecoverable error.
    #[error("consuming from the raw topic failed: {0}")]
    Consume(#[source] KafkaError),
    /// An output record could not be delivered within `kafka.message_timeout_ms`.
    #[error(
        "delivering an output record failed: {0}; the batch was not committed and will be re-read after restart"
    )]
    Delivery(#[source] KafkaError),
    /// Storing or committing offsets failed.
    #[error("committing offsets failed: {0}")]
    Commit(#[source] KafkaError),
    /// The final offset commit at shutdown failed (at_least_once): the
    /// next run re-reads from the offsets committed before.
    #[error(
        "the final offset commit at shutdown failed: {0}; the next run re-reads from the offsets committed before (outputs since then may repeat)"
    )]
    FinalCommit(#[source] KafkaError),
    /// Too much invalid input: the consumer stopped at the record that
    /// tripped the limit. Nothing of the batch it belongs to (nor, in
    /// exactly_once, of the open transaction) was committed.
    #[error(
        "{source} (tripped at partition {partition} offset {offset}; nothing from offset \
         {batch_first_offset} of that partition on was committed)"
    )]
    InvalidRatio {
        /// The guard's verdict.
        source: InvalidRatioExceeded,
        /// Input partition of the record that tripped it.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// First offset of its batch in that partition.
        batch_first_offset: i64,
    },
    /// No broker answered at start-up within `kafka.startup_timeout_ms`.
    #[error(transparent)]
    BrokersUnreachable(#[from] BrokersUnreachable),
    /// The schema registry could not be reached, or refused the output
    /// schemas, at start-up.
    #[error(
        "schema registry at start-up: {0}; check schema_registry.url and its credentials and TLS settings"
    )]
    SchemaRegistry(#[source] crate::registry::RegistryError),
    /// An unknown writer id could not be looked up while running.
    #[error(transparent)]
    RegistryUnavailable(#[from] crate::registry::RegistryUnavailable),
    /// The embedded schemas failed to load (a build defect).
    #[error("schemas: {0}")]
    Schema(String),
    /// A clinician alert could not be encoded (a defect); the batch is not
    /// committed, so the alert is raised again after a restart.
    #[error("encoding a clinician alert failed: {0}; the batch was not committed")]
    AlertEncode(#[source] crate::codec::EncodeError),
    /// A transaction call failed fatally (fenced by a newer instance with the
    /// same transactional id, or the producer is unusable).
    #[error(
        "the final transaction was aborted (the reason is logged before); nothing of it is published, its records are read again from the committed offsets"
    )]
    FinalTransactionAborted,

    #[error("transaction failed fatally: {0}; nothing of the open batch was committed")]
    Transaction(#[source] KafkaError),
    /// Reading the state changelog to restore a partition failed.
    #[error("restoring partition state from the changelog failed: {0}")]
    Restore(#[source] crate::kafka::RestoreError),
    /// A state changelog record cannot be read back or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The state topic cannot hold every input partition's state.
    #[error(transparent)]
    StateTopic(#[from] crate::kafka::StateTopicError),
    /// A setting the processor checks at start-up is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The patient profile table cannot be loaded or followed.
    #[error(transparent)]
    Profiles(#[from] ProfileLoadError),
    /// The metrics/health listener could not bind its address.
    #[error("binding the HTTP endpoint {addr}: {source}")]
    Http {
        /// Configured address.
        addr: std::net::SocketAddr,
        /// Bind error.
        #[source]
        source: std::io::Error,
    },
}

impl PipelineError {
    /// Process exit code for this error: 3 for the invalid-input limit, 4
    /// when no broker or schema registry answered (at start-up, or the
    /// registry for an unknown writer id while running), 2 for every other
    /// error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::InvalidRatio { .. } => 3,
            Self::BrokersUnreachable(_) | Self::RegistryUnavailable(_) => 4,
            Self::SchemaRegistry(e) if e.is_unreachable() => 4,
            Self::Profiles(ProfileLoadError::Registry(_)) => 4,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_final_commit_exits_non_zero_naming_the_consequence() {
        let e = PipelineError::FinalCommit(KafkaError::Canceled);
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(text.contains("final offset commit"), "{text}");
        assert!(text.contains("re-reads"), "{text}");
    }
}
