//! `[processing]`: batching, commits and the delivery guarantee.

use serde::{Deserialize, Serialize};

/// Batching and commit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingConfig {
    /// Most messages in one batch. Batching is adaptive: a batch closes as
    /// soon as no further record is ready (caught up: outputs leave at
    /// once) and grows towards this size while records keep coming (a
    /// backlog: fewer, larger batches). at_least_once awaits a batch's
    /// acknowledgements while the next one is read; exactly_once adds
    /// batches to the open transaction.
    pub batch_max_messages: usize,
    /// Longest a batch stays open while records keep arriving: an upper
    /// bound, not a wait to fill (a batch closes at once when none is ready).
    pub batch_max_wait_ms: u64,
    /// exactly_once: how long a transaction stays open, collecting batches,
    /// before it commits (outputs become visible to read_committed
    /// consumers then). at_least_once: how often stored offsets are
    /// committed to the group.
    pub commit_interval_ms: u64,
    /// Delivery guarantee.
    pub guarantee: Guarantee,
    /// The broker's transaction timeout and the deadline of one
    /// transaction call (init, commit, abort) (exactly_once). A killed
    /// instance's open transaction holds back `read_committed` readers of
    /// every partition it wrote to (outputs, changelog) until its
    /// transactional id is reused (a restart with the same id aborts it at
    /// once) or this timeout passes, so it should be short. It also caps
    /// the transactional producer's message timeout (librdkafka requires
    /// `message.timeout.ms` ≤ `transaction.timeout.ms`), which is how long
    /// a broker outage is ridden out before the run stops. 30 s (was 60 s)
    /// is the shortest value that keeps `kafka.message_timeout_ms`'s 30 s
    /// delivery deadline; 10 s (Kafka Streams' exactly-once default) would
    /// also cut that to 10 s. See docs/scale-out.md.
    pub transaction_timeout_ms: u64,
    /// Backpressure: output messages awaiting the broker's acknowledgement
    /// at which consumption pauses; it resumes once half have drained. The
    /// producer queue holds at most twice this many.
    pub max_in_flight: usize,
}

/// Delivery guarantee (DESIGN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// A transactional producer: each batch's outputs, state changelog
    /// records and input offsets commit in one transaction.
    #[default]
    ExactlyOnce,
    /// Offsets stored only after every output of a batch is delivered;
    /// a crash may repeat outputs, never lose them.
    AtLeastOnce,
}

impl Guarantee {
    /// Config and log name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExactlyOnce => "exactly_once",
            Self::AtLeastOnce => "at_least_once",
        }
    }
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            batch_max_messages: 5000,
            batch_max_wait_ms: 50,
            commit_interval_ms: 100,
            guarantee: Guarantee::ExactlyOnce,
            transaction_timeout_ms: 30_000,
            max_in_flight: 50_000,
        }
    }
}
