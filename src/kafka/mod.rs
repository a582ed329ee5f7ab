//! The Kafka edge: client configuration, rebalance handling and topic set-up.
//!
//! Everything librdkafka-specific lives here so the pipeline reads as
//! poll → process → produce → commit.

mod admin;
mod checks;
mod client;
mod committed;
mod context;
mod delivery;
mod erasures;
mod link;
mod profiles;
mod startup;
mod state;
mod txn;

pub use admin::{TopicSpec, ensure_topics};
pub use checks::{StateTopicError, check_partition, check_state_topic, log_transactional_id};
pub use client::{
    client_config, consumer_config, producer_config, profile_consumer_config, state_consumer_config,
};
pub use committed::{
    CommittedReadError, CommittedReader, CommittedRecord, SharedRecord, read_committed,
};
pub use context::{EofQuietContext, PipelineContext, RebalanceEvents};
pub use delivery::{Deliveries, QueueSpace};
pub use erasures::ErasureLog;
pub use link::{BrokerLink, LinkClient, LinkProducerContext, PipelineProducer, is_transient};
pub use profiles::{ProfileLoadError, follow_profiles};
pub use startup::{BrokersUnreachable, wait_for_brokers};
pub use state::{RestoreError, StateReader};
pub use txn::{CommitResult, Transactions, TxnOutcome};

/// Runs a blocking librdkafka call (a broker round trip) without holding up
/// the other tasks of a multi-threaded runtime's worker: with every worker
/// blocked in such a call, nothing else in the process (the HTTP endpoints,
/// the other clients' tasks) would run until the calls return.
pub fn blocking<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}
