//! `vitalstream dlq redrive --reason unknown_patient`: re-publishes to the
//! raw topic the dead-lettered readings that can now succeed.
//!
//! `unknown_patient` is usually a race with onboarding: the profile arrives
//! after the first readings (DESIGN.md §3). The tool loads the patient
//! table as the pipeline does, reads the DLQ from where its previous run
//! stopped (consumer group `<group_id>.dlq-redrive`), and sends each record
//! of that reason whose patient now has a profile back to its source topic
//! with its original key and bytes. Readings of erased patients are never
//! re-published.
//!
//! Idempotent: the group offset of each DLQ partition is committed after
//! the re-published records are acknowledged. It stops at the first record
//! still without a profile, so a later run looks at it again; the records
//! after it that were re-published are listed, per DLQ partition, in the
//! compacted topic `vitalstream.<group_id>.dlq-redrive` and skipped next
//! time. (Offset-commit metadata would hold them too, but not every broker
//! keeps it: tansu drops it.) Should a run die between publishing and
//! committing, the pipeline drops the repeats as duplicates (same
//! reading_id).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::ToolError;
use crate::codec::Codec;
use crate::config::Config;
use crate::kafka::{client_config, follow_profiles};
use crate::process::{Lookup, ProfileTable};
use crate::registry::WriterResolver;

/// DLQ reasons that can be re-driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedriveReason {
    /// No profile existed for the patient; re-driven once one does.
    #[value(name = "unknown_patient")]
    UnknownPatient,
}

impl RedriveReason {
    fn header(self) -> &'static str {
        match self {
            Self::UnknownPatient => "unknown_patient",
        }
    }
}

/// Options of `vitalstream dlq redrive`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedriveArgs {
    /// Which dead letters to re-drive.
    #[arg(long, value_enum)]
    pub reason: RedriveReason,
    /// TOML configuration file (as for `run`); `VITALSTREAM_*` env variables override it.
    #[arg(long, short)]
    pub config: Option<std::path::PathBuf>,
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT]`; overrides `kafka.brokers`.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Re-publish at most this many records in this run.
    #[arg(long, default_value_t = 10_000)]
    pub max: u64,
    /// Report what would be re-published; publish and commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The DLQ counts as read to its end once no record arrived for this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub idle_timeout: Duration,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// DLQ records read.
    pub examined: u64,
    /// Re-published to the raw topic (or, with `--dry-run`, would be).
    pub redriven: u64,
    /// Of the reason, but the patient still has no profile: looked at again next run.
    pub still_unknown: u64,
    /// Of the reason, but the patient was erased: never re-published.
    pub erased: u64,
    /// Other reasons, or records without a usable key: left alone.
    pub skipped: u64,
    /// Re-published by an earlier run (listed in the progress topic).
    pub already_redriven: u64,
}

impl std::fmt::Display for RedriveReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "examined {}, redriven {}, still without a profile {}, erased patients {}, \
             other reasons {}, already redriven {}",
            self.examined,
            self.redriven,
            self.still_unknown,
            self.erased,
            self.skipped,
            self.already_redriven
        )
    }
}

/// Progress through one DLQ partition.
#[derive(Debug, Default)]
struct PartitionProgress {
    /// Offset after the last record looked at.
    next: Option<i64>,
    /// First record still waiting for its profile: the commit stops there.
    first_pending: Option<i64>,
    /// Offsets re-published at or after `first_pending`.
    done_after_pending: Vec<i64>,
    /// Offsets an earlier run re-published (from the progress topic).
    done_before: Vec<i64>,
}

/// Most bytes of one partition's progress record.
const MAX_METADATA: usize = 100_000;

/// Runs one re-drive pass.
///
/// # Errors
/// [`ToolError`] when the profiles cannot be loaded, the DLQ read, a
/// record re-published or the offsets committed. Nothing is committed
/// for a partition whose re-published records were not all acknowledged.
pub async fn redrive(config: &Config, args: &RedriveArgs) -> Result<RedriveReport, ToolError> {
    let table = load_profiles(config).await?;
    let group = format!("{}.dlq-redrive", config.kafka.group_id);
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(ToolError::Kafka)?;
    let topic = config.topics.dlq.as_str();
    let progress_topic = format!("vitalstream.{}.dlq-redrive", config.kafka.group_id);
    let done = read_progress(config, &progress_topic).await?;
    let mut progress = assign_from_committed(&consumer, topic, done).await?;
    let producer: FutureProducer = client_config(&config.kafka)
        .set("enable.idempotence", "true")
        .create()
        .map_err(ToolError::Kafka)?;
    let mut report = RedriveReport::default();
    let mut deliveries = Vec::new();
    let mut full: Vec<i32> = Vec::new();
    while report.redriven < args.max {
        let msg = match tokio::time::timeout(args.idle_timeout, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) if crate::kafka::is_transient(&e) => continue,
            Ok(Err(e)) => return Err(ToolError::Kafka(e)),
            Ok(Ok(msg)) => msg,
        };
        let (partition, offset) = (msg.partition(), msg.offset());
        if full.contains(&partition) {
            continue;
        }
        let state = progress.entry(partition).or_default();
        state.next = Some(offset + 1);
        report.examined += 1;
        if state.done_before.contains(&offset) {
            report.already_redriven += 1;
            if state.first_pending.is_some() {
                state.done_after_pending.push(offset);
            }
            continue;
        }
        if header(&msg, "reason") != Some(args.reason.header()) {
            report.skipped += 1;
            continue;
        }
        let Some(patient) = msg.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            report.skipped += 1;
            continue;
        };
        match table.lookup(patient) {
            Lookup::Known(_) => {}
            Lookup::Erased => {
                report.erased += 1;
                continue;
            }
            Lookup::Unknown => {
                report.still_unknown += 1;
                state.first_pending.get_or_insert(offset);
                continue;
            }
        }
        report.redriven += 1;
        if state.first_pending.is_some() {
            state.done_after_pending.push(offset);
            if format_offsets(&state.done_after_pending).len() > MAX_METADATA {
                // This partition's progress record is full: stop it here.
                state.done_after_pending.pop();
                state.next = Some(offset);
                report.redriven -= 1;
                report.examined -= 1;
                full.push(partition);
                continue;
            }
        }
        if !args.dry_run {
            deliveries.push(republish(&producer, &msg, config)?);
        }
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(ToolError::Kafka(e)),
            Err(_) => return Err(ToolError::Kafka(rdkafka::error::KafkaError::Canceled)),
        }
    }
    if !args.dry_run {
        write_progress(&producer, &progress_topic, &progress).await?;
        commit(&consumer, topic, &progress)?;
    }
    Ok(report)
}

/// Assigns every DLQ partition from the group's committed offset (the
/// beginning when none), with what earlier runs re-published after it.
async fn assign_from_committed(
    consumer: &StreamConsumer,
    topic: &str,
    mut done: BTreeMap<i32, Vec<i64>>,
) -> Result<BTreeMap<i32, PartitionProgress>, ToolError> {
    let mut wanted = TopicPartitionList::new();
    for p in super::partitions(consumer, topic).await? {
        wanted.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(wanted, Duration::from_secs(30))
        .map_err(ToolError::Kafka)?;
    let mut progress = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for elem in committed.elements() {
        let start = match elem.offset() {
            Offset::Offset(n) => Offset::Offset(n),
            _ => Offset::Beginning,
        };
        progress.insert(
            elem.partition(),
            PartitionProgress {
                done_before: done.remove(&elem.partition()).unwrap_or_default(),
                ..PartitionProgress::default()
            },
        );
        assignment
            .add_partition_offset(topic, elem.partition(), start)
            .map_err(ToolError::Kafka)?;
    }
    consumer.assign(&assignment).map_err(ToolError::Kafka)?;
    Ok(progress)
}

/// Sends `msg`'s original key and bytes back to its source topic.
fn republish(
    producer: &FutureProducer,
    msg: &BorrowedMessage<'_>,
    config: &Config,
) -> Result<rdkafka::producer::DeliveryFuture, ToolError> {
    // Only the raw topic is re-driven: a DLQ record naming another source
    // topic (a misconfiguration) goes to the configured raw topic.
    let topic = config.topics.raw.as_str();
    let from = format!("{}/{}/{}", msg.topic(), msg.partition(), msg.offset());
    let headers = OwnedHeaders::new().insert(Header {
        key: "redriven_from",
        value: Some(from.as_str()),
    });
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
    if let Some(key) = msg.key() {
        record = record.key(key);
    }
    if let Some(payload) = msg.payload() {
        record = record.payload(payload);
    }
    producer
        .send_result(record)
        .map_err(|(e, _)| ToolError::Kafka(e))
}

/// The re-published offsets after each DLQ partition's commit point, as
/// the previous run left them.
async fn read_progress(config: &Config, topic: &str) -> Result<BTreeMap<i32, Vec<i64>>, ToolError> {
    crate::kafka::ensure_topics(
        &client_config(&config.kafka),
        &[crate::kafka::TopicSpec::compacted(topic, 1)],
    )
    .await
    .map_err(|e| ToolError::Invalid(format!("creating {topic}: {e}")))?;
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set(
            "group.id",
            format!("{}.dlq-redrive-progress", config.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(ToolError::Kafka)?;
    let mut assignment = TopicPartitionList::new();
    for p in super::partitions(&consumer, topic).await? {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .map_err(ToolError::Kafka)?;
    }
    consumer.assign(&assignment).map_err(ToolError::Kafka)?;
    let mut done = BTreeMap::new();
    // A handful of small records: read until quiet.
    while let Ok(msg) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) if crate::kafka::is_transient(&e) => continue,
            Err(e) => return Err(ToolError::Kafka(e)),
        };
        let partition = msg
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse::<i32>().ok());
        if let Some(partition) = partition {
            let offsets = msg
                .payload()
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(parse_offsets)
                .unwrap_or_default();
            done.insert(partition, offsets);
        }
    }
    Ok(done)
}

/// Records each partition's re-published offsets after its commit point.
async fn write_progress(
    producer: &FutureProducer,
    topic: &str,
    progress: &BTreeMap<i32, PartitionProgress>,
) -> Result<(), ToolError> {
    for (partition, state) in progress.iter().filter(|(_, s)| s.next.is_some()) {
        let key = partition.to_string();
        let value = format_offsets(&state.done_after_pending);
        let record: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_str());
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {}
            Err((e, _)) => return Err(ToolError::Kafka(e)),
        }
    }
    Ok(())
}

/// Commits each partition's progress: up to its first pending record.
fn commit(
    consumer: &StreamConsumer,
    topic: &str,
    progress: &BTreeMap<i32, PartitionProgress>,
) -> Result<(), ToolError> {
    let mut offsets = TopicPartitionList::new();
    for (&partition, state) in progress {
        let Some(next) = state.next else { continue };
        let at = state.first_pending.unwrap_or(next);
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(at))
            .map_err(ToolError::Kafka)?;
    }
    if offsets.count() == 0 {
        return Ok(());
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .map_err(ToolError::Kafka)
}

/// `[3, 4, 5, 9]` → `"3-5,9"`.
fn format_offsets(offsets: &[i64]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < offsets.len() {
        let start = offsets[i];
        let mut end = start;
        while i + 1 < offsets.len() && offsets[i + 1] == end + 1 {
            i += 1;
            end = offsets[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// The inverse of [`format_offsets`]; anything else reads as none.
fn parse_offsets(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let range: Option<(i64, i64)> = match part.split_once('-') {
            Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
            None => part.parse().ok().map(|n| (n, n)),
        };
        match range {
            Some((a, b)) if a <= b && b - a < 1_000_000 => out.extend(a..=b),
            _ => return Vec::new(),
        }
    }
    out
}

fn header<'a>(msg: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    msg.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The patient table as the pipeline would see it now.
async fn load_profiles(config: &Config) -> Result<Arc<ProfileTable>, ToolError> {
    let (ids, resolver_registry) = if config.schema_registry.enabled() {
        let (registry, ids) = crate::registry::connect(config)
            .await
            .map_err(ToolError::Registry)?;
        (ids, Some(Arc::new(registry)))
    } else {
        (config.schemas, None)
    };
    let codec = Arc::new(
        Codec::from_config(ids, &config.codec).map_err(|e| ToolError::Invalid(e.to_string()))?,
    );
    let resolver = resolver_registry.map(|r| {
        Arc::new(WriterResolver::new(
            r,
            codec.clone(),
            &config.schema_registry,
        ))
    });
    let table = Arc::new(ProfileTable::new());
    let mut loader = tokio::spawn({
        let (config, table) = (config.clone(), table.clone());
        async move { follow_profiles(&config, codec, resolver, table).await }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let result = loop {
        if table.is_caught_up() {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(ToolError::Refused(
                "the patient profiles did not load within 120 s".into(),
            ));
        }
        tokio::select! {
            res = &mut loader => break Err(ToolError::Refused(match res {
                Ok(Err(e)) => e.to_string(),
                _ => "the profile loader stopped".into(),
            })),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    };
    loader.abort();
    result.map(|()| table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_as_ranges() {
        let offsets = vec![3, 4, 5, 9, 11, 12];
        assert_eq!(format_offsets(&offsets), "3-5,9,11-12");
        assert_eq!(parse_offsets("3-5,9,11-12"), offsets);
        assert_eq!(parse_offsets(""), Vec::<i64>::new());
        assert_eq!(parse_offsets("garbage"), Vec::<i64>::new());
    }
}
