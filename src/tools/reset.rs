//! `vitalstream reset`: prepares a replay of the raw topic, as Kafka
//! Streams' application reset tool does for a Streams application.
//!
//! A replay needs two things reset together: the consumer group's input
//! offsets (to the earliest offset or to a point in time) and the
//! per-partition state in the changelog. Resetting only the offsets would
//! restore the dedup state on the next start, and every replayed reading
//! would be dropped as a duplicate. The state is cleared by writing a
//! tombstone for each of its keys (the changelog is compacted, so the
//! tombstones also free the space), which keeps the topic, its
//! configuration and its ACLs.
//!
//! It refuses while the group has active members: a running instance
//! would commit its own offsets and state over the reset. Output topics
//! are not touched: the replay publishes its outputs again (alerts with
//! the same deterministic alert_id, so consumers that dedupe by it see no
//! repeat).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::ToolError;
use crate::config::Config;
use crate::kafka::{StateReader, client_config};
use crate::process::{DedupStore, HrvMeta};
use crate::state::{KeyError, PartitionMeta, StateKey, encode as encode_value};

/// Options of `vitalstream reset`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResetArgs {
    /// TOML configuration file (as for `run`); `VITALSTREAM_*` env variables override it.
    #[arg(long, short)]
    pub config: Option<std::path::PathBuf>,
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT]`; overrides `kafka.brokers`.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Replay from the first record written (its Kafka timestamp) at or
    /// after this time (RFC 3339, e.g. `2026-11-29T08:00:00Z`); default:
    /// the earliest offset of each partition.
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    pub to_datetime: Option<SystemTime>,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What a reset did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// Raw topic partition → (committed offset before, offset after).
    pub offsets: BTreeMap<i32, (Option<i64>, i64)>,
    /// State changelog keys tombstoned.
    pub state_keys: u64,
}

impl std::fmt::Display for ResetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (partition, (before, after)) in &self.offsets {
            let before = before.map_or_else(|| "none".to_owned(), |o| o.to_string());
            writeln!(f, "partition {partition}: offset {before} -> {after}")?;
        }
        write!(f, "state changelog keys cleared: {}", self.state_keys)
    }
}

/// Resets the group's input offsets and its state changelog.
///
/// # Errors
/// [`ToolError::Refused`] while the group has active members; a Kafka
/// error otherwise. Offsets are committed only after every state key's
/// tombstone is acknowledged, so a failed run can be repeated.
pub async fn reset(config: &Config, args: &ResetArgs) -> Result<ResetReport, ToolError> {
    let group = config.kafka.group_id.as_str();
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(ToolError::Kafka)?;
    refuse_if_active(&consumer, group)?;
    let topic = config.topics.raw.as_str();
    let partitions = super::partitions(&consumer, topic).await?;
    let mut report = ResetReport::default();
    let mut wanted = TopicPartitionList::new();
    for &p in &partitions {
        wanted.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(wanted, TIMEOUT)
        .map_err(ToolError::Kafka)?;
    let targets = targets(&consumer, topic, &partitions, args.to_datetime)?;
    for elem in committed.elements() {
        let before = match elem.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        };
        let after = targets.get(&elem.partition()).copied().unwrap_or(0);
        report.offsets.insert(elem.partition(), (before, after));
    }
    let state_topic = config.topics.state_topic(group);
    let keys = state_keys(config, &state_topic).await?;
    report.state_keys = keys.len() as u64;
    if args.dry_run {
        return Ok(report);
    }
    // Tombstones for every key, then each partition's marker: an empty state
    // at the offset the replay starts from, so the next owner's restore is
    // complete at once (a restore waits for the committed offset's state).
    let fresh = DedupStore::new(
        config.validation.dedup_horizon_ms,
        config.validation.dedup_max_entries,
    )
    .meta();
    let mut records: Vec<StateWrite> = keys
        .iter()
        .filter(|(_, key)| !matches!(StateKey::decode(key), Ok((_, StateKey::Meta))))
        .map(|(p, key)| (*p, key.clone(), None))
        .collect();
    for (&partition, &(_, after)) in &report.offsets {
        let meta = PartitionMeta {
            next_offset: Some(after),
            dedup: fresh,
            hrv: HrvMeta::default(),
        };
        let value = encode_value(&meta)
            .map_err(|e| ToolError::Invalid(format!("encoding the state marker: {e}")))?;
        records.push((partition, StateKey::Meta.encode(partition), Some(value)));
    }
    clear_state(config, &state_topic, &records).await?;
    let mut offsets = TopicPartitionList::new();
    for (&partition, &(_, after)) in &report.offsets {
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(after))
            .map_err(ToolError::Kafka)?;
    }
    // Checked again: an instance started meanwhile would undo the reset.
    refuse_if_active(&consumer, group)?;
    consumer
        .commit(&offsets, CommitMode::Sync)
        .map_err(ToolError::Kafka)?;
    Ok(report)
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Refuses while `group` has members (describes the group).
fn refuse_if_active(consumer: &StreamConsumer, group: &str) -> Result<(), ToolError> {
    let groups = consumer
        .fetch_group_list(Some(group), TIMEOUT)
        .map_err(ToolError::Kafka)?;
    for info in groups.groups().iter().filter(|g| g.name() == group) {
        let members = info.members().len();
        if members > 0 {
            return Err(ToolError::Refused(format!(
                "consumer group `{group}` has {members} active member(s) (state {}); stop every \
                 vitalstream instance of the group, then reset",
                info.state()
            )));
        }
    }
    Ok(())
}

/// Target offset per partition: the earliest, or the first at or after `at`.
fn targets(
    consumer: &StreamConsumer,
    topic: &str,
    partitions: &[i32],
    at: Option<SystemTime>,
) -> Result<BTreeMap<i32, i64>, ToolError> {
    let mut out = BTreeMap::new();
    let Some(at) = at else {
        for &p in partitions {
            let (low, _) = consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .map_err(ToolError::Kafka)?;
            out.insert(p, low);
        }
        return Ok(out);
    };
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| ToolError::Invalid("--to-datetime is before 1970".into()))?;
    let mut query = TopicPartitionList::new();
    for &p in partitions {
        query
            .add_partition_offset(topic, p, Offset::Offset(ms))
            .map_err(ToolError::Kafka)?;
    }
    let found = consumer
        .offsets_for_times(query, TIMEOUT)
        .map_err(ToolError::Kafka)?;
    for elem in found.elements() {
        let offset = match elem.offset() {
            Offset::Offset(n) => n,
            // Nothing written at or after that time: the end.
            _ => {
                consumer
                    .fetch_watermarks(topic, elem.partition(), TIMEOUT)
                    .map_err(ToolError::Kafka)?
                    .1
            }
        };
        out.insert(elem.partition(), offset);
    }
    Ok(out)
}

/// The live keys of the state changelog (committed records only), with
/// their partitions.
async fn state_keys(config: &Config, topic: &str) -> Result<Vec<(i32, Vec<u8>)>, ToolError> {
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set("group.id", format!("{}.reset", config.kafka.group_id))
        .create()
        .map_err(ToolError::Kafka)?;
    let partitions = match super::partitions(&consumer, topic).await {
        Ok(p) => p,
        // No changelog yet: no state to clear.
        Err(ToolError::MissingTopic(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let reader = StateReader::new(&config.kafka, topic).map_err(ToolError::Kafka)?;
    let mut keys = Vec::new();
    for partition in partitions {
        let live = reader
            .live_keys(partition)
            .await
            .map_err(|e| ToolError::Invalid(format!("reading {topic}: {e}")))?;
        keys.extend(
            live.into_iter()
                .filter(|(key, present)| *present && clears(key))
                .map(|(key, _)| (partition, key)),
        );
    }
    Ok(keys)
}

/// Whether a reset clears this changelog key. Every kind of per-partition
/// state is cleared so the replay starts from nothing; a new kind of key
/// must be decided on here (the match is exhaustive).
fn clears(key: &[u8]) -> bool {
    match StateKey::decode(key) {
        Ok((
            _,
            StateKey::Meta
            | StateKey::DedupGroup(_)
            | StateKey::HrvPatient(_)
            | StateKey::HrvChunk(..)
            | StateKey::Alerts(_)
            | StateKey::AlertSlot(..)
            | StateKey::AlertBaseline(..)
            | StateKey::AlertPending(..),
        )) => true,
        // State of an older format this version does not read: cleared too.
        Err(KeyError::Retired) => true,
        // Not a key vitalstream writes: left alone.
        Err(_) => false,
    }
}

/// One changelog write: partition, key, value (`None`: a tombstone).
type StateWrite = (i32, Vec<u8>, Option<Vec<u8>>);

/// Writes each record (a tombstone where the value is `None`) and waits for
/// all of them.
async fn clear_state(config: &Config, topic: &str, keys: &[StateWrite]) -> Result<(), ToolError> {
    let producer: FutureProducer = client_config(&config.kafka)
        .set("enable.idempotence", "true")
        .create()
        .map_err(ToolError::Kafka)?;
    let mut deliveries = Vec::with_capacity(keys.len());
    for (partition, key, value) in keys {
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).partition(*partition).key(&key[..]);
        if let Some(value) = value {
            record = record.payload(&value[..]);
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                // A large state fills the producer queue: wait for room.
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(ToolError::Kafka(e)),
            }
        }
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(ToolError::Kafka(e)),
            Err(_) => return Err(ToolError::Kafka(rdkafka::error::KafkaError::Canceled)),
        }
    }
    Ok(())
}
