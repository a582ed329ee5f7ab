//! Start-up checks of the group's set-up, before the consumer joins:
//! which transactional id this instance uses, and whether the state
//! changelog has a partition for every input partition.
//!
//! Input partition `n` keeps its state in changelog partition `n`
//! (`state::encode_key`), so a state topic with fewer partitions than the
//! input topic cannot hold some partitions' state: their changelog records
//! would fail to deliver mid-run. The check refuses that at start-up, and
//! again for every partition assigned later (partitions can be added to the
//! input topic while instances run).

use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use thiserror::Error;
use tracing::{info, warn};

use crate::config::{TransactionalId, TransactionalIdSource};

/// The state changelog cannot hold every input partition's state.
#[derive(Debug, Error)]
pub enum StateTopicError {
    /// The state topic does not exist.
    #[error(
        "state topic `{state_topic}` does not exist; create it compacted (cleanup.policy=compact) \
         with at least as many partitions as `{input_topic}`, or start once with --create-topics"
    )]
    Missing {
        /// The state topic.
        state_topic: String,
        /// The input topic.
        input_topic: String,
    },
    /// Fewer state partitions than input partitions.
    #[error(
        "state topic `{state_topic}` has {state_partitions} partitions but input topic \
         `{input_topic}` has {input_partitions}: input partition n keeps its state in changelog \
         partition n, so the state topic needs at least {input_partitions} (add partitions with \
         kafka-topics.sh --alter --partitions {input_partitions}; existing ones keep their state)"
    )]
    TooFewPartitions {
        /// The state topic.
        state_topic: String,
        /// Its partitions.
        state_partitions: usize,
        /// The input topic.
        input_topic: String,
        /// Its partitions.
        input_partitions: usize,
    },
    /// Metadata could not be read.
    #[error("reading the metadata of `{topic}`: {source}")]
    Metadata {
        /// The topic asked about.
        topic: String,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Says at start-up which transactional id this instance uses and why (an
/// id is not PHI). A random one cannot fence a killed predecessor, so it
/// is a warning.
pub fn log_transactional_id(id: &TransactionalId) {
    match id.source {
        TransactionalIdSource::Random => warn!(
            transactional_id = %id.id,
            source = id.source.as_str(),
            "transactional id is new at every start: a restart cannot fence a killed \
             predecessor; set kafka.transactional_id"
        ),
        _ => info!(
            transactional_id = %id.id,
            source = id.source.as_str(),
            "transactional id"
        ),
    }
}

/// The partitions of `topic`; `None` when it does not exist.
fn partitions<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, StateTopicError> {
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| StateTopicError::Metadata {
            topic: topic.to_owned(),
            source,
        })?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len()))
}

/// Checks that `state_topic` exists with at least as many partitions as
/// `input_topic`, and returns its partition count. A missing input topic
/// is not an error here (the consumer waits for it); its partitions are
/// then checked as they are assigned ([`check_partition`]).
///
/// # Errors
/// [`StateTopicError`]: the run must not start.
pub fn check_state_topic<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    input_topic: &str,
    state_topic: &str,
    timeout: Duration,
) -> Result<usize, StateTopicError> {
    let Some(state_partitions) = partitions(consumer, state_topic, timeout)? else {
        return Err(StateTopicError::Missing {
            state_topic: state_topic.to_owned(),
            input_topic: input_topic.to_owned(),
        });
    };
    let input_partitions = partitions(consumer, input_topic, timeout)?;
    if let Some(input_partitions) = input_partitions {
        check_count(input_topic, input_partitions, state_topic, state_partitions)?;
    }
    info!(
        state_topic,
        state_partitions,
        input_partitions = input_partitions.unwrap_or(0),
        "state topic holds every input partition"
    );
    Ok(state_partitions)
}

/// Checks an assigned input `partition` against the state topic's
/// `state_partitions` (the input topic may have grown since start-up).
///
/// # Errors
/// [`StateTopicError::TooFewPartitions`].
pub fn check_partition(
    input_topic: &str,
    partition: i32,
    state_topic: &str,
    state_partitions: usize,
) -> Result<(), StateTopicError> {
    let needed = usize::try_from(partition).map_or(0, |p| p + 1);
    check_count(input_topic, needed, state_topic, state_partitions)
}

fn check_count(
    input_topic: &str,
    input_partitions: usize,
    state_topic: &str,
    state_partitions: usize,
) -> Result<(), StateTopicError> {
    if state_partitions < input_partitions {
        return Err(StateTopicError::TooFewPartitions {
            state_topic: state_topic.to_owned(),
            state_partitions,
            input_topic: input_topic.to_owned(),
            input_partitions,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_beyond_the_state_topic_is_refused_with_the_numbers() {
        assert!(check_partition("raw", 2, "state", 3).is_ok());
        let err = check_partition("raw", 3, "state", 3)
            .expect_err("partition 3 has no changelog partition")
            .to_string();
        assert!(
            err.contains("`state` has 3 partitions but input topic `raw` has 4"),
            "{err}"
        );
        assert!(err.contains("--partitions 4"), "{err}");
    }
}
