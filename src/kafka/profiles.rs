//! The profile loader: reads every partition of the compacted patients topic
//! from the beginning into the shared profile table, then follows it live.
//! It feeds the table through [`ProfileSink`], the processing core's
//! interface for it, and knows nothing else of the core's state.
//!
//! It uses its own consumer with manual assignment (no group, no commits):
//! every instance needs the whole table, not a share of it. The table is
//! marked caught up once every partition has reported end-of-partition once;
//! the pipeline starts consuming readings only then, so a restart does not
//! dead-letter readings of patients whose profile is merely not loaded yet.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::client::profile_consumer_config;
use super::context::EofQuietContext;
use super::erasures::ErasureLog;
use crate::codec::{Codec, InputKind};
use crate::config::Config;
use crate::erasure::{Position, ProfileVerdict};
use crate::process::{OverrideRejection, ProfileSink};
use crate::registry::WriterResolver;
use crate::telemetry::{ERASED_PATIENTS, OVERRIDES_REJECTED, PROFILE_UPDATES, PROFILES};

/// Why the profile loader stopped. Fatal: readings cannot be joined.
#[derive(Debug, Error)]
pub enum ProfileLoadError {
    /// Creating the consumer or assigning partitions failed.
    #[error("profile loader set-up: {0}")]
    Setup(#[source] KafkaError),
    /// The patients topic has no partitions (missing or not yet created).
    #[error(
        "patients topic `{0}` does not exist or has no partitions; create it (compacted) first"
    )]
    MissingTopic(String),
    /// The consumer reported an unrecoverable error.
    #[error("consuming the patients topic failed: {0}")]
    Consume(#[source] KafkaError),
    /// The erasures topic cannot be created or read, or holds records this
    /// instance cannot use.
    #[error("{0}")]
    Erasures(String),
    /// An erasure record could not be written: the erasure would not
    /// outlive its tombstone, so the run stops (a restart writes it again).
    #[error("writing an erasure record failed: {0}")]
    ErasureWrite(#[source] KafkaError),
    /// A profile's writer schema could not be looked up in the registry.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryUnavailable),
}

struct LoaderMetrics {
    upserts: Counter,
    tombstones: Counter,
    invalid: Counter,
    profiles: metrics::Gauge,
    erased: metrics::Gauge,
}

impl LoaderMetrics {
    fn new() -> Self {
        Self {
            upserts: metrics::counter!(PROFILE_UPDATES, "kind" => "upsert"),
            tombstones: metrics::counter!(PROFILE_UPDATES, "kind" => "tombstone"),
            invalid: metrics::counter!(PROFILE_UPDATES, "kind" => "invalid"),
            profiles: metrics::gauge!(PROFILES),
            erased: metrics::gauge!(ERASED_PATIENTS),
        }
    }
}

/// Loads the patients topic into `table` and keeps following it until the
/// returned future is dropped.
///
/// # Errors
/// [`ProfileLoadError`] when the topic is missing or the consumer fails.
pub async fn follow_profiles(
    config: &Config,
    codec: Arc<Codec>,
    resolver: Option<Arc<WriterResolver>>,
    table: Arc<dyn ProfileSink>,
) -> Result<(), ProfileLoadError> {
    // Erasures first: a profile older than a recorded erasure must not
    // bring the patient back while the patients topic loads.
    let mut erasures = ErasureLog::open(config, &*table).await?;
    let topic = config.topics.patients.as_str();
    let consumer: StreamConsumer<EofQuietContext> = profile_consumer_config(&config.kafka)
        .create_with_context(EofQuietContext("profile loader"))
        .map_err(ProfileLoadError::Setup)?;
    let partitions = partitions_of(&consumer, topic).await?;
    let mut assignment = TopicPartitionList::with_capacity(partitions.len());
    for &p in &partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .map_err(ProfileLoadError::Setup)?;
    }
    consumer
        .assign(&assignment)
        .map_err(ProfileLoadError::Setup)?;
    info!(
        topic,
        partitions = partitions.len(),
        "loading patient profiles"
    );
    let metrics = LoaderMetrics::new();
    let mut pending: BTreeSet<i32> = partitions.into_iter().collect();
    loop {
        match consumer.recv().await {
            Ok(msg) => {
                if let Some(resolver) = &resolver {
                    resolver
                        .prepare(InputKind::PatientProfile, msg.payload())
                        .await?;
                }
                apply(&msg, &codec, &*table, &metrics, &mut erasures)?;
                if table.is_caught_up() {
                    erasures.flush().await?;
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                if pending.remove(&p) && pending.is_empty() && !table.is_caught_up() {
                    erasures.flush().await?;
                    // librdkafka's buffers for the whole topic are freed
                    // now: give them back (src/alloc.rs).
                    crate::alloc::release_c_heap();
                    table.set_caught_up();
                    info!(
                        profiles = table.profile_count(),
                        "patient profiles caught up"
                    );
                }
            }
            // A lost connection: librdkafka reconnects and the loader
            // goes on from where it was (the context logged the error).
            Err(e) if super::is_transient(&e) => {}
            Err(e) => return Err(ProfileLoadError::Consume(e)),
        }
        // Entry counts are far below f64's exact-integer range.
        #[allow(clippy::cast_precision_loss)]
        metrics.profiles.set(table.profile_count() as f64);
        #[allow(clippy::cast_precision_loss)]
        metrics.erased.set(table.erased_count() as f64);
    }
}

/// Partition ids of `topic`, retrying briefly while metadata is incomplete.
async fn partitions_of(
    consumer: &StreamConsumer<EofQuietContext>,
    topic: &str,
) -> Result<Vec<i32>, ProfileLoadError> {
    for attempt in 0..10 {
        let found =
            super::blocking(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(5))).map(
                |md| {
                    md.topics()
                        .iter()
                        .filter(|t| t.name() == topic && t.error().is_none())
                        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                        .collect::<Vec<_>>()
                },
            );
        match found {
            Ok(ids) if !ids.is_empty() => return Ok(ids),
            Ok(_) => debug!(attempt, "patients topic not (yet) in metadata"),
            Err(e) => warn!(error = %e, attempt, "fetching patients topic metadata failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ProfileLoadError::MissingTopic(topic.to_owned()))
}

/// Applies one record of the patients topic. Bad records are counted and
/// logged by coordinates, never by content.
fn apply(
    msg: &BorrowedMessage<'_>,
    codec: &Codec,
    table: &dyn ProfileSink,
    m: &LoaderMetrics,
    erasures: &mut ErasureLog,
) -> Result<(), ProfileLoadError> {
    let (partition, offset) = (msg.partition(), msg.offset());
    let position = Position {
        partition,
        offset,
        timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
    };
    let Some(key) = msg.key().and_then(|k| std::str::from_utf8(k).ok()) else {
        m.invalid.increment(1);
        warn!(
            partition,
            offset, "patient record without a UTF-8 key ignored"
        );
        return Ok(());
    };
    let Some(payload) = msg.payload() else {
        m.tombstones.increment(1);
        if let Some(hash) = table.erase_at(key, Some(position)) {
            erasures.record(hash, position)?;
            info!(partition, offset, "patient erased (tombstone)");
        }
        return Ok(());
    };
    match codec.decode_profile(payload) {
        Ok(profile) if profile.patient_id == key => {
            let (verdict, rejections) = table.apply_profile(profile, Some(position));
            match verdict {
                ProfileVerdict::NotErased => {}
                ProfileVerdict::Lifted => {
                    erasures.forget(table.hasher().hash(key.as_bytes()))?;
                    info!(
                        partition,
                        offset, "erased patient id registered again: erasure lifted"
                    );
                }
                ProfileVerdict::Stale => {
                    debug!(
                        partition,
                        offset, "profile older than the patient's erasure ignored"
                    );
                    return Ok(());
                }
            }
            for rejected in rejections {
                let rule = rejected.rule_label();
                metrics::counter!(OVERRIDES_REJECTED, "rule" => rule).increment(1);
                // Coordinates and rule only: neither the patient nor the value.
                match rejected {
                    OverrideRejection::UnknownRule => warn!(
                        partition,
                        offset,
                        "clinician threshold override ignored: unknown rule name; the defaults apply"
                    ),
                    OverrideRejection::OutOfBounds { min, max, .. } => warn!(
                        partition,
                        offset,
                        rule,
                        %min,
                        %max,
                        "clinician threshold override ignored: outside the rule's sane bounds \
                         (a unit mistake?); the default applies"
                    ),
                }
            }
            m.upserts.increment(1);
        }
        Ok(_) => {
            m.invalid.increment(1);
            warn!(
                partition,
                offset, "patient profile ignored: key differs from patient_id"
            );
        }
        Err(e) => {
            m.invalid.increment(1);
            warn!(partition, offset, error = %e, "patient profile ignored: does not decode");
        }
    }
    Ok(())
}
