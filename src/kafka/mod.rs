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
pub use committed::{CommittedReadError, CommittedReader, CommittedRecord, read_committed};
pub use context::{EofQuietContext, PipelineContext, RebalanceEvents};
pub use delivery::{Deliveries, QueueSpace};
pub use erasures::ErasureLog;
pub use link::{BrokerLink, LinkClient, LinkProducerContext, PipelineProducer, is_transient};
pub use profiles::{ProfileLoadError, follow_profiles};
pub use startup::{BrokersUnreachable, wait_for_brokers};
pub use state::{RestoreError, StateReader};
pub use txn::{Transactions, TxnOutcome};
