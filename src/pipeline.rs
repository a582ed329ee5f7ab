//! Wiring: poll → process → produce → deliver → store offsets → commit.
//!
//! At-least-once: a batch's input offsets are stored only after every output
//! record of the batch is acknowledged by the broker. If a delivery fails the
//! run stops with an error and nothing of that batch is committed, so a
//! restart re-reads it. Every input record ends in exactly one place:
//! enriched topic, DLQ (original bytes plus reason headers) or the duplicate
//! counter.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::try_join_all;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::codec::{Codec, InputKind};
use crate::config::{Config, Guarantee};
use crate::kafka::{
    BrokerLink, BrokersUnreachable, LinkProducerContext, PipelineContext, PipelineProducer,
    ProfileLoadError, StateReader, Transactions, TxnOutcome, consumer_config, follow_profiles,
    is_transient, producer_config, wait_for_brokers,
};
use crate::model::{ClinicianAlert, HrvWindow};
use crate::process::{
    Disposition, InvalidRatioExceeded, InvalidRatioGuard, Processor, ProfileTable,
};
use crate::registry::WriterResolver;
use crate::state::{ChangelogBuffer, ChangelogWriter, Restorer, StateRecord};
use crate::telemetry::{BatchCounts, Metrics, StateSizes, Stats};

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

/// Runs the pipeline until `shutdown` resolves, then finishes the batch in
/// flight, commits and returns.
///
/// # Errors
/// [`PipelineError`] on a fatal condition; the failed batch is not committed.
pub async fn run(
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PipelineError> {
    tokio::pin!(shutdown);
    crate::telemetry::prometheus();
    // Dropped when this function returns, which stops the HTTP endpoints.
    let (_http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    if config.http.enabled {
        let addr = config.http.listen_addr;
        crate::http::serve(addr, stats.clone(), config.http.stall_after_ms, async {
            let _ = http_stopped.await;
        })
        .await
        .map_err(|source| PipelineError::Http { addr, source })?;
    }
    let (ids, registry) = if config.schema_registry.enabled() {
        let (registry, ids) = crate::registry::connect(&config)
            .await
            .map_err(PipelineError::SchemaRegistry)?;
        (ids, Some(Arc::new(registry)))
    } else {
        (config.schemas, None)
    };
    let codec = Arc::new(
        Codec::from_config(ids, &config.codec).map_err(|e| PipelineError::Schema(e.to_string()))?,
    );
    let resolver = registry.map(|r| {
        Arc::new(WriterResolver::new(
            r,
            codec.clone(),
            &config.schema_registry,
        ))
    });
    stats.health.set_kafka_reachable(false);
    if !wait_for_brokers(&config.kafka, shutdown.as_mut()).await? {
        info!("shutdown requested before a Kafka broker answered");
        return Ok(());
    }
    stats.health.set_kafka_reachable(true);
    let profiles = Arc::new(ProfileTable::with_hasher(config.erasure.hasher()));
    let mut loader = tokio::spawn({
        let (config, codec, profiles) = (config.clone(), codec.clone(), profiles.clone());
        let resolver = resolver.clone();
        async move { follow_profiles(&config, codec, resolver, profiles).await }
    });
    let result = async {
        if !wait_for_profiles(&profiles, &mut loader, shutdown.as_mut()).await? {
            info!("shutdown requested before the profile table caught up");
            return Ok(());
        }
        stats.health.set_profiles_caught_up();
        run_consumer(
            config,
            codec,
            resolver,
            profiles.clone(),
            stats,
            &mut loader,
            shutdown,
        )
        .await
    }
    .await;
    loader.abort();
    result
}

/// Waits until the profile table has caught up with the patients topic.
/// `Ok(false)` when shutdown came first.
async fn wait_for_profiles(
    profiles: &ProfileTable,
    loader: &mut JoinHandle<Result<(), ProfileLoadError>>,
    mut shutdown: impl Future<Output = ()> + Unpin,
) -> Result<bool, PipelineError> {
    let started = Instant::now();
    let mut next_log = started + Duration::from_secs(10);
    while !profiles.is_caught_up() {
        tokio::select! {
            () = &mut shutdown => return Ok(false),
            res = &mut *loader => return Err(loader_stopped(res)),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if Instant::now() >= next_log {
            info!(
                waited_s = started.elapsed().as_secs(),
                profiles = profiles.len(),
                "waiting for the patient profile table to catch up"
            );
            next_log += Duration::from_secs(10);
        }
    }
    Ok(true)
}

fn loader_stopped(
    res: Result<Result<(), ProfileLoadError>, tokio::task::JoinError>,
) -> PipelineError {
    match res {
        Ok(Err(e)) => PipelineError::Profiles(e),
        Ok(Ok(())) => PipelineError::Config("profile loader ended unexpectedly".into()),
        Err(e) => PipelineError::Config(format!("profile loader task failed: {e}")),
    }
}

async fn run_consumer(
    config: Config,
    codec: Arc<Codec>,
    resolver: Option<Arc<WriterResolver>>,
    profiles: Arc<ProfileTable>,
    stats: Arc<Stats>,
    loader: &mut JoinHandle<Result<(), ProfileLoadError>>,
    shutdown: impl Future<Output = ()> + Unpin,
) -> Result<(), PipelineError> {
    let link = Arc::new(BrokerLink::new(&config.kafka.brokers, stats.clone()));
    let context = PipelineContext::new(stats.clone(), &config.topics.raw, link.clone());
    let state_topic = config.topics.state_topic(&config.kafka.group_id);
    let state_reader =
        StateReader::new(&config.kafka, &state_topic).map_err(PipelineError::Setup)?;
    let consumer: StreamConsumer<PipelineContext> =
        consumer_config(&config.kafka, &config.processing)
            .create_with_context(context.clone())
            .map_err(PipelineError::Setup)?;
    let guarantee = config.processing.guarantee;
    let transactional_id =
        (guarantee == Guarantee::ExactlyOnce).then(|| config.kafka.transactional_id());
    if let Some(id) = &transactional_id {
        crate::kafka::log_transactional_id(id);
    }
    let producer: PipelineProducer = producer_config(
        &config.kafka,
        transactional_id.as_ref().map(|t| t.id.as_str()),
        &config.processing,
    )
    .create_with_context(LinkProducerContext::new(link))
    .map_err(PipelineError::Setup)?;
    let txn = match &transactional_id {
        Some(id) => {
            let timeout = Duration::from_millis(config.processing.transaction_timeout_ms);
            let txn = Transactions::init(producer.clone(), timeout)
                .await
                .map_err(PipelineError::Transaction)?;
            context.events.set_transactions(txn.clone());
            info!(transactional_id = %id.id, "transactional producer ready");
            Some(txn)
        }
        None => None,
    };
    let state_partitions = crate::kafka::check_state_topic(
        &consumer,
        &config.topics.raw,
        &state_topic,
        Duration::from_millis(config.kafka.startup_timeout_ms.clamp(5_000, 30_000)),
    )?;
    consumer
        .subscribe(&[&config.topics.raw])
        .map_err(PipelineError::Setup)?;
    info!(
        topic = %config.topics.raw,
        group = %config.kafka.group_id,
        guarantee = guarantee.as_str(),
        "pipeline started"
    );

    let processor = Processor::new(
        codec.clone(),
        config.validation.clone(),
        config.hrv.clone(),
        config.alerts.clone(),
        profiles,
    )
    .map_err(|e| PipelineError::Config(e.to_string()))?;
    let mut pipeline = Pipeline {
        processor,
        guard: InvalidRatioGuard::new(
            config.validation.invalid_ratio_window,
            config.validation.max_invalid_ratio,
        ),
        codec,
        resolver,
        metrics: Metrics::new(),
        stats,
        producer,
        context,
        config,
        state_reader,
        state_topic,
        state_partitions,
        changelog: ChangelogWriter::new(),
        dedup_horizon_short: false,
        txn,
        open: OpenTxn::default(),
        buf: Vec::with_capacity(1024),
    };
    let result = pipeline.run_loop(&consumer, loader, shutdown).await;
    if let Some(txn) = &mut pipeline.txn {
        // Only a failed batch leaves a transaction open: abort it, so the
        // next owner is not held up until the transaction times out.
        if let Err(e) = txn.abort().await {
            warn!(error = %e, "aborting the open transaction failed");
        }
    } else {
        // Whatever happened, stored offsets are those of fully delivered batches.
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => info!("final offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                info!("no new offsets to commit")
            }
            Err(e) => warn!(error = %e, "final offset commit failed"),
        }
    }
    info!(
        open_windows = pipeline.processor.open_windows(),
        "pipeline stopped; open state is in the changelog"
    );
    result
}

/// How much longer than the transaction timeout a restore waits at the end
/// of the readable changelog for the committed state to become readable.
const RESTORE_WAIT_MARGIN: Duration = Duration::from_secs(10);

struct Pipeline {
    processor: Processor,
    guard: InvalidRatioGuard,
    codec: Arc<Codec>,
    /// Learns unknown writer ids from the schema registry, when one is set.
    resolver: Option<Arc<WriterResolver>>,
    metrics: Metrics,
    stats: Arc<Stats>,
    producer: PipelineProducer,
    context: PipelineContext,
    config: Config,
    state_reader: StateReader,
    state_topic: String,
    /// Partitions of the state topic (checked at start-up).
    state_partitions: usize,
    /// Turns state changes into changelog records.
    changelog: ChangelogWriter,
    /// Whether the dedup entry cap holds the horizon below the configured one.
    dedup_horizon_short: bool,
    /// The producer's transactions (exactly_once), else `None`.
    txn: Option<Transactions>,
    /// Batches in the open transaction (exactly_once).
    open: OpenTxn,
    buf: Vec<u8>,
}

/// Batches whose outputs, changelog records and offsets sit in the open
/// transaction (exactly_once); they commit together once the transaction
/// is `processing.commit_interval_ms` old.
#[derive(Default)]
struct OpenTxn {
    started: Option<Instant>,
    deliveries: Vec<DeliveryFuture>,
    next_offsets: BTreeMap<i32, i64>,
    batches: Vec<(BatchCounts, Vec<Instant>)>,
    /// State changes of the transaction, one record per key, sent when it
    /// commits.
    changelog: ChangelogBuffer,
}

/// Outputs and offsets of one batch.
#[derive(Default)]
struct Batch {
    deliveries: Vec<DeliveryFuture>,
    /// Next offset to consume per input partition (last offset + 1).
    next_offsets: BTreeMap<i32, i64>,
    /// First offset of the batch per input partition.
    first_offsets: BTreeMap<i32, i64>,
    /// When each input record of the batch was consumed (latency metric).
    consumed_at: Vec<Instant>,
    counts: BatchCounts,
    /// State changes of the batch (at_least_once), one record per key,
    /// written once its outputs are delivered.
    changelog: ChangelogBuffer,
}

impl Pipeline {
    async fn run_loop(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        loader: &mut JoinHandle<Result<(), ProfileLoadError>>,
        mut shutdown: impl Future<Output = ()> + Unpin,
    ) -> Result<(), PipelineError> {
        let max_messages = self.config.processing.batch_max_messages;
        let max_wait = Duration::from_millis(self.config.processing.batch_max_wait_ms);
        loop {
            self.stats.health.beat(now_ms());
            self.restore_assigned(consumer).await?;
            self.stats.health.set_state_restored(true);
            let mut batch = Batch::default();
            let mut stopping = false;
            // Wait for the first record (or shutdown), then fill the batch
            // until it is full or its time is up.
            let mut deadline: Option<Instant> = None;
            while batch.counts.consumed < max_messages as u64 {
                // While idle, wake every second so the liveness heartbeat
                // keeps beating; an empty batch is simply not finished.
                // An open transaction is committed when it is due.
                let idle_until = self
                    .commit_due_at()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                let timeout = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => tokio::time::sleep_until(idle_until).await,
                    }
                };
                tokio::select! {
                    biased;
                    () = &mut shutdown => { stopping = true; break; }
                    () = timeout => break,
                    res = &mut *loader => return Err(loader_stopped(res)),
                    msg = consumer.recv() => {
                        let msg = match msg {
                            Ok(msg) => msg,
                            // Lost connections and the like: librdkafka
                            // reconnects and the context reports the outage.
                            Err(e) if is_transient(&e) => {
                                debug!(error = %e, "transient consumer error");
                                continue;
                            }
                            Err(e) => return Err(PipelineError::Consume(e)),
                        };
                        if self.context.events.take_txn_aborted() {
                            // The batch went with the aborted transaction.
                            batch = Batch::default();
                            let kept = self.drop_aborted_work(consumer)?;
                            if kept.contains(&msg.partition()) {
                                // Read again from the committed offset.
                                continue;
                            }
                        }
                        // The rebalance that delivered this record may
                        // have revoked its partition first.
                        self.release_revoked();
                        if self.context.events.has_assigned()
                            || !self.processor.has_partition(msg.partition())
                        {
                            // A restore reads the group's committed offsets,
                            // which this instance's own open transaction
                            // holds unstable: the batch so far commits first.
                            let done = std::mem::take(&mut batch);
                            deadline = None;
                            let rewound = self.close_batch(consumer, done, true).await?;
                            self.restore_assigned(consumer).await?;
                            if rewound {
                                // Read again from the committed offset.
                                continue;
                            }
                            self.ensure_restored(consumer, msg.partition()).await?;
                        }
                        deadline.get_or_insert_with(|| Instant::now() + max_wait);
                        self.handle(&msg, &mut batch).await?;
                        drop(msg);
                        self.relieve(consumer).await?;
                    }
                }
            }
            if self.context.events.take_txn_aborted() {
                self.drop_aborted_work(consumer)?;
                if stopping {
                    return Ok(());
                }
                continue;
            }
            self.release_revoked();
            self.close_batch(consumer, batch, stopping).await?;
            if stopping {
                info!("shutdown requested: in-flight batch delivered and stored");
                return Ok(());
            }
        }
    }

    /// Closes a batch: publishes what it derived, takes its state changes
    /// and finishes it (exactly_once: commits the open transaction when due,
    /// or at once with `commit_now`). Returns whether the transaction was
    /// aborted, every assigned partition rewound to its committed offset.
    async fn close_batch(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        mut batch: Batch,
        commit_now: bool,
    ) -> Result<bool, PipelineError> {
        // Before anything derived leaves: nothing of a patient erased by
        // now is published, not even an alert raised earlier.
        let purged = self.processor.apply_erasures();
        if purged > 0 {
            info!(entries = purged, "erased patients' state purged");
        }
        self.publish_derived(&mut batch).await?;
        // exactly_once: changes coalesce over the whole transaction.
        let changes = if self.txn.is_some() {
            &mut self.open.changelog
        } else {
            &mut batch.changelog
        };
        self.changelog.take(&mut self.processor, changes)?;
        let open_txn = self.txn.as_ref().is_some_and(Transactions::is_open);
        if batch.counts.consumed > 0
            || !batch.deliveries.is_empty()
            || !batch.changelog.is_empty()
            || !self.open.changelog.is_empty()
            || self.open.started.is_some()
            || open_txn
        {
            return self
                .finish(consumer, batch, commit_now)
                .instrument(info_span!("batch"))
                .await;
        }
        Ok(false)
    }

    /// Restores every newly assigned partition (and those requeued after an
    /// aborted transaction) before any of their records is processed.
    ///
    /// The restore reads the group's committed offset of each, with the
    /// stable-offsets guarantee of `read_committed`: an open transaction
    /// holding offsets for the group makes the broker answer "unstable"
    /// until it ends. Were it this instance's own transaction, the fetch
    /// would wait for its timeout, so the open transaction (exactly_once)
    /// commits first and no new one begins before the restores are done.
    async fn restore_assigned(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<(), PipelineError> {
        if !self.context.events.has_assigned() {
            return Ok(());
        }
        let mut pending = self.context.events.take_assigned();
        pending.retain(|p| !self.processor.has_partition(*p));
        if pending.is_empty() {
            return Ok(());
        }
        if self.close_batch(consumer, Batch::default(), true).await? {
            // Aborted: every assigned partition was rewound and requeued.
            pending = self.context.events.take_assigned();
        }
        pending.sort_unstable();
        pending.dedup();
        for partition in pending {
            self.ensure_restored(consumer, partition).await?;
        }
        Ok(())
    }

    /// Processes one record and enqueues its output.
    async fn handle(
        &mut self,
        msg: &rdkafka::message::BorrowedMessage<'_>,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        if let Some(resolver) = &self.resolver {
            resolver
                .prepare(InputKind::RawReading, msg.payload())
                .await?;
        }
        self.begin()?;
        let record = crate::process::InputRecord {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            payload: msg.payload(),
        };
        let now = now_ms();
        let disposition = self.processor.process(&record, now);
        batch.counts.consumed += 1;
        batch.consumed_at.push(Instant::now());
        let batch_first_offset = *batch
            .first_offsets
            .entry(record.partition)
            .or_insert(record.offset);
        self.guard
            .record(
                matches!(&disposition, Disposition::Dlq(r) if r.reason.signals_broken_producer()),
            )
            .map_err(|source| PipelineError::InvalidRatio {
                source,
                partition: record.partition,
                offset: record.offset,
                batch_first_offset,
            })?;
        let topics = &self.config.topics;
        match disposition {
            Disposition::Erased => {
                batch.counts.erased += 1;
                debug!(
                    partition = record.partition,
                    offset = record.offset,
                    "reading of an erased patient dropped"
                );
            }
            Disposition::Duplicate => {
                batch.counts.duplicates += 1;
                debug!(
                    partition = record.partition,
                    offset = record.offset,
                    "duplicate dropped"
                );
            }
            Disposition::Enriched(enriched) => {
                let kind = enriched.reading.measurement.kind();
                // Millisecond differences are far below f64's exact-integer range.
                #[allow(clippy::cast_precision_loss)]
                self.metrics
                    .event_time_lag
                    .record(now.saturating_sub(enriched.reading.measured_at_ms) as f64 / 1000.0);
                match self.codec.encode_enriched(&enriched, &mut self.buf) {
                    Ok(()) => {
                        let out = FutureRecord::to(&topics.enriched)
                            .key(enriched.reading.patient_id.as_bytes())
                            .payload(&self.buf[..]);
                        let fut = send(&self.producer, out).await?;
                        batch.deliveries.push(fut);
                        batch.counts.enriched[kind as usize] += 1;
                        batch.counts.body_compositions +=
                            u64::from(enriched.body_composition.is_some());
                        batch.counts.bp_categories += u64::from(enriched.bp_category.is_some());
                    }
                    Err(e) => {
                        // A defect, not bad input: keep the reading in the DLQ.
                        warn!(partition = record.partition, offset = record.offset, error = %e, "enriched reading failed to encode");
                        let rejection = crate::process::Rejection::new(
                            crate::process::DlqReason::ProcessingError,
                            e.to_string(),
                        );
                        self.dead_letter(&record, &rejection, batch).await?;
                    }
                }
            }
            Disposition::Dlq(rejection) => {
                debug!(
                    partition = record.partition,
                    offset = record.offset,
                    reason = rejection.reason.as_str(),
                    "reading rejected"
                );
                self.dead_letter(&record, &rejection, batch).await?;
            }
        }
        batch
            .next_offsets
            .insert(record.partition, record.offset + 1);
        Ok(())
    }

    async fn dead_letter(
        &self,
        record: &crate::process::InputRecord<'_>,
        rejection: &crate::process::Rejection,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: "reason",
                value: Some(rejection.reason.as_str()),
            })
            .insert(Header {
                key: "detail",
                value: Some(rejection.detail.as_str()),
            })
            .insert(Header {
                key: "source_topic",
                value: Some(record.topic),
            })
            .insert(Header {
                key: "source_partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "source_offset",
                value: Some(offset.as_str()),
            });
        let mut out: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.config.topics.dlq).headers(headers);
        if let Some(key) = record.key {
            out = out.key(key);
        }
        if let Some(payload) = record.payload {
            out = out.payload(payload);
        }
        let fut = send(&self.producer, out).await?;
        batch.deliveries.push(fut);
        batch.counts.dlq[rejection.reason as usize] += 1;
        Ok(())
    }

    /// Backpressure: once `processing.max_in_flight` outputs await the
    /// broker's acknowledgement, every assigned partition is paused until
    /// half of them have drained. librdkafka then drops what it had
    /// prefetched and fetches again from the next unconsumed offset on
    /// resume, so memory stays bounded however large the input backlog.
    async fn relieve(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<(), PipelineError> {
        let high = i32::try_from(self.config.processing.max_in_flight).unwrap_or(i32::MAX);
        if self.producer.in_flight_count() < high {
            return Ok(());
        }
        let assignment = consumer.assignment().map_err(PipelineError::Consume)?;
        consumer
            .pause(&assignment)
            .map_err(PipelineError::Consume)?;
        let started = Instant::now();
        debug!(
            in_flight = self.producer.in_flight_count(),
            "producer queue full: consumption paused"
        );
        // Deliveries resolve or time out (message.timeout.ms), so this ends.
        while self.producer.in_flight_count() > high / 2 {
            self.stats.health.beat(now_ms());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        consumer
            .resume(&assignment)
            .map_err(PipelineError::Consume)?;
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.backpressure_pause(&self.stats, seconds);
        debug!(seconds, "producer queue drained: consumption resumed");
        Ok(())
    }

    /// Opens a transaction before anything is produced (exactly_once).
    fn begin(&mut self) -> Result<(), PipelineError> {
        match &mut self.txn {
            Some(txn) => txn.begin().map_err(PipelineError::Transaction),
            None => Ok(()),
        }
    }

    /// After the rebalance callback aborted the open transaction: the work
    /// in it is dropped with all partition state (restored from the
    /// changelog before a partition is processed again); partitions this
    /// instance kept (cooperative assignment) go back to their committed
    /// offsets, the others are fetched from there by their new owner.
    /// Returns the partitions rewound.
    fn drop_aborted_work(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<Vec<i32>, PipelineError> {
        self.open = OpenTxn::default();
        self.metrics.transaction(false);
        let revoked = self.context.events.take_revoked();
        let held = self.processor.held_partitions();
        self.processor.revoke(&held);
        let kept: Vec<i32> = held.into_iter().filter(|p| !revoked.contains(p)).collect();
        if !kept.is_empty() {
            self.seek_to_committed(consumer, |p| kept.contains(&p))?;
            self.context.events.requeue_assigned(&kept);
        }
        info!(
            revoked = ?revoked,
            rewound = ?kept,
            "work of the aborted transaction dropped; state goes back to the changelog"
        );
        Ok(kept)
    }

    /// Releases the state of partitions revoked while no transaction was
    /// open (a revocation with one open aborts it, and
    /// [`Self::drop_aborted_work`] releases them): all their work is
    /// committed, and their next owner restores it from the changelog.
    ///
    /// Called as soon as the pipeline sees the revocation, before it
    /// processes any record of a later assignment. Eager rebalancing
    /// revokes every partition and often hands some straight back to the
    /// same instance; a partition that comes back must be restored, not
    /// processed with the state held before: another owner may have moved
    /// it on meanwhile. Releasing it only after processing some of its
    /// records would also restore it right after this instance's own
    /// commit, which need not be readable yet (Kafka writes the commit
    /// markers after `commit_transaction` returns; tansu 0.6 keeps a
    /// committed transaction unreadable while an earlier open one of
    /// another producer shares a partition with it, see
    /// `tests/broker_limits.rs`), and that transaction's state would be lost.
    fn release_revoked(&mut self) {
        let revoked = self.context.events.take_revoked();
        if revoked.is_empty() {
            return;
        }
        let open = self.processor.revoke(&revoked);
        info!(
            partitions = ?revoked,
            open_windows = open,
            "state of revoked partitions released (kept in the changelog)"
        );
    }

    /// Restores `partition`'s state from the changelog unless it is held:
    /// reads until the state is that of the group's committed input offset
    /// (waiting out another producer's open transaction ahead of it, up to
    /// the transaction timeout), so the partition is never processed with
    /// part of its state.
    async fn ensure_restored(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        partition: i32,
    ) -> Result<(), PipelineError> {
        if self.processor.has_partition(partition) {
            return Ok(());
        }
        crate::kafka::check_partition(
            &self.config.topics.raw,
            partition,
            &self.state_topic,
            self.state_partitions,
        )?;
        let started = Instant::now();
        let committed = self.committed_offset(consumer, partition)?;
        let transaction_timeout =
            Duration::from_millis(self.config.processing.transaction_timeout_ms);
        let restorer = Restorer::new(partition, self.processor.fresh_partition());
        let restorer = self
            .state_reader
            .restore(
                partition,
                restorer,
                committed,
                transaction_timeout + RESTORE_WAIT_MARGIN,
            )
            .await
            .map_err(PipelineError::Restore)?;
        let restored = restorer.finish(&mut self.processor, &mut self.changelog);
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.state_restore.record(seconds);
        info!(
            partition,
            records = restored.records,
            bytes = restored.bytes,
            dedup_entries = restored.dedup_entries,
            open_windows = restored.open_windows,
            alert_patients = restored.alert_patients,
            committed_offset = committed,
            state_offset = restored.next_offset,
            seconds,
            "partition state restored"
        );
        Ok(())
    }

    /// The group's committed offset of input `partition`, if any.
    fn committed_offset(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
        partition: i32,
    ) -> Result<Option<i64>, PipelineError> {
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition(&self.config.topics.raw, partition);
        let timeout = Duration::from_millis(self.config.processing.transaction_timeout_ms);
        let committed = consumer
            .committed_offsets(tpl, timeout)
            .map_err(PipelineError::Commit)?;
        Ok(committed
            .find_partition(&self.config.topics.raw, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            }))
    }

    /// Publishes the HRV windows the batch closed and the alerts it raised
    /// (including those whose confirmation wait ran out while idle).
    async fn publish_derived(&mut self, batch: &mut Batch) -> Result<(), PipelineError> {
        let now = now_ms();
        let windows = self.processor.take_closed_windows(now);
        let alerts = self.processor.take_alerts(now);
        if !windows.is_empty() || !alerts.is_empty() {
            // Idle turns open no transaction: a revocation then has none to abort.
            self.begin()?;
        }
        for window in &windows {
            self.publish_window(window, batch).await?;
        }
        for alert in &alerts {
            self.publish_alert(alert, batch).await?;
        }
        let counts = self.processor.take_counts();
        batch.counts.late_beats += counts.late_beats;
        batch.counts.alerts_suppressed = counts.alerts_suppressed;
        Ok(())
    }

    async fn publish_alert(
        &mut self,
        alert: &ClinicianAlert,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        // Values are rounded to the schema's scale and far inside its
        // precision, so a failure is a defect; an alert must not vanish
        // quietly, so the run stops and the batch is re-read after restart.
        self.codec
            .encode_alert(alert, &mut self.buf)
            .map_err(PipelineError::AlertEncode)?;
        let out = FutureRecord::to(&self.config.topics.alerts)
            .key(alert.patient_id.as_bytes())
            .payload(&self.buf[..]);
        batch.deliveries.push(send(&self.producer, out).await?);
        batch.counts.alerts[alert.rule as usize][alert.severity as usize] += 1;
        info!(
            rule = alert.rule.as_str(),
            severity = alert.severity.label(),
            "clinician alert raised"
        );
        Ok(())
    }

    async fn publish_window(
        &mut self,
        window: &HrvWindow,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        if let Err(e) = self.codec.encode_hrv_window(window, &mut self.buf) {
            // Metrics are bounded far inside the schema's precision, so this
            // is a defect; say so loudly rather than stop the stream.
            tracing::error!(error = %e, "HRV window failed to encode and was not published");
            return Ok(());
        }
        let out = FutureRecord::to(&self.config.topics.hrv_windows)
            .key(window.patient_id.as_bytes())
            .payload(&self.buf[..]);
        batch.deliveries.push(send(&self.producer, out).await?);
        batch.counts.hrv_windows[window.quality as usize] += 1;
        Ok(())
    }

    /// When the open transaction is due to commit (exactly_once).
    fn commit_due_at(&self) -> Option<Instant> {
        let interval = Duration::from_millis(self.config.processing.commit_interval_ms);
        self.open.started.map(|t| t + interval)
    }

    /// Completes a batch. at_least_once: waits for every delivery, writes
    /// the changelog, stores the offsets. exactly_once: adds the changelog
    /// and offsets to the open transaction, which commits once due (or at
    /// once when `stopping`).
    async fn finish(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        batch: Batch,
        stopping: bool,
    ) -> Result<bool, PipelineError> {
        let committed = if self.txn.is_some() {
            if !self.open.changelog.is_empty() {
                self.begin()?;
            }
            let open = &mut self.open;
            open.started.get_or_insert_with(|| {
                batch
                    .consumed_at
                    .first()
                    .copied()
                    .unwrap_or_else(Instant::now)
            });
            open.deliveries.extend(batch.deliveries);
            open.next_offsets.extend(batch.next_offsets);
            open.batches.push((batch.counts, batch.consumed_at));
            let due = stopping || self.commit_due_at().is_some_and(|t| t <= Instant::now());
            if !due {
                return Ok(false);
            }
            let mut open = std::mem::take(&mut self.open);
            let coalesced = open.changelog.coalesced();
            let records = open.changelog.drain();
            self.count_changelog(&records, coalesced);
            open.deliveries
                .extend(self.write_changelog(&records).await?);
            let offsets = self.offsets(&open.next_offsets)?;
            if !self
                .commit_transaction(consumer, open.deliveries, offsets)
                .await?
            {
                // Nothing of these batches is visible; they are read again.
                self.metrics.transaction(false);
                self.rewind(consumer)?;
                return Ok(true);
            }
            self.metrics.transaction(true);
            open.batches
        } else {
            let offsets = self.offsets(&batch.next_offsets)?;
            let mut changelog = batch.changelog;
            let coalesced = changelog.coalesced();
            let records = changelog.drain();
            self.count_changelog(&records, coalesced);
            self.deliver_and_store(consumer, batch.deliveries, &records, offsets)
                .await?;
            vec![(batch.counts, batch.consumed_at)]
        };
        let acknowledged = Instant::now();
        self.metrics
            .set_producer_queue(self.producer.in_flight_count());
        self.check_dedup_horizon();
        let sizes = StateSizes {
            dedup_entries: self.processor.dedup_entries(),
            hrv_open_windows: self.processor.open_windows(),
            alert_patients: self.processor.alert_patients(),
        };
        for (counts, consumed_at) in committed {
            for t in &consumed_at {
                self.metrics
                    .publish_latency
                    .record(acknowledged.duration_since(*t).as_secs_f64());
            }
            if let Some(first) = consumed_at.first() {
                self.metrics
                    .batch_duration
                    .record(acknowledged.duration_since(*first).as_secs_f64());
            }
            self.metrics.publish(&counts, &self.stats, sizes);
        }
        Ok(false)
    }

    fn count_changelog(&self, records: &[StateRecord], coalesced: u64) {
        let bytes = records
            .iter()
            .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
            .sum();
        self.metrics.changelog(records.len(), bytes, coalesced);
    }

    /// Publishes the effective dedup horizon; warns when the entry cap
    /// holds it below the configured horizon (once, until it recovers).
    fn check_dedup_horizon(&mut self) {
        let Some(effective) = self.processor.dedup_horizon_ms() else {
            return;
        };
        self.metrics.set_dedup_horizon(effective);
        let configured = self.config.validation.dedup_horizon_ms;
        let short = effective < configured;
        if short && !self.dedup_horizon_short {
            warn!(
                effective_s = effective / 1000,
                configured_s = configured / 1000,
                max_entries = self.config.validation.dedup_max_entries,
                "validation.dedup_max_entries evicts reading ids inside the dedup horizon: \
                 older readings go to the DLQ as too_old; raise the cap (memory per entry: docs/state.md)"
            );
        } else if !short && self.dedup_horizon_short {
            info!("dedup covers its configured horizon again");
        }
        self.dedup_horizon_short = short;
    }

    /// The input offsets to commit: next offset per partition.
    fn offsets(&self, next: &BTreeMap<i32, i64>) -> Result<TopicPartitionList, PipelineError> {
        let mut offsets = TopicPartitionList::with_capacity(next.len());
        for (&partition, &next) in next {
            offsets
                .add_partition_offset(&self.config.topics.raw, partition, Offset::Offset(next))
                .map_err(PipelineError::Commit)?;
        }
        Ok(offsets)
    }
}

impl Pipeline {
    /// Sends the changelog records of a batch.
    async fn write_changelog(
        &self,
        changelog: &[StateRecord],
    ) -> Result<Vec<DeliveryFuture>, PipelineError> {
        let mut written = Vec::with_capacity(changelog.len());
        for record in changelog {
            let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.state_topic)
                .partition(record.partition)
                .key(&record.key[..]);
            if let Some(value) = &record.value {
                out = out.payload(&value[..]);
            }
            written.push(send(&self.producer, out).await?);
        }
        Ok(written)
    }

    /// at_least_once: outputs delivered, then the state changes, then the
    /// offsets stored. State changes only once the outputs they stand for
    /// are delivered: a restart never finds a reading remembered whose
    /// output was lost.
    async fn deliver_and_store(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
        deliveries: Vec<DeliveryFuture>,
        changelog: &[StateRecord],
        offsets: TopicPartitionList,
    ) -> Result<(), PipelineError> {
        delivered(deliveries).await?;
        delivered(self.write_changelog(changelog).await?).await?;
        if offsets.count() == 0 {
            // An alert-only batch (a confirmation wait ran out while idle).
        } else if let Err(e) = consumer.store_offsets(&offsets) {
            // Partitions revoked mid-batch can no longer be stored; their new
            // owner re-reads those records (at-least-once).
            warn!(error = %e, "storing offsets failed; records may be re-read by the next owner");
        }
        Ok(())
    }

    /// exactly_once: the input offsets join the open transaction's outputs
    /// and state changes, and it commits. `Ok(false)`: it was aborted.
    async fn commit_transaction(
        &mut self,
        consumer: &StreamConsumer<PipelineContext>,
        deliveries: Vec<DeliveryFuture>,
        offsets: TopicPartitionList,
    ) -> Result<bool, PipelineError> {
        let group = consumer.group_metadata().ok_or_else(|| {
            PipelineError::Config("the consumer has no group metadata for the transaction".into())
        })?;
        let Some(txn) = &mut self.txn else {
            return Ok(true);
        };
        match txn
            .commit(offsets, group)
            .await
            .map_err(PipelineError::Transaction)?
        {
            TxnOutcome::Committed => {
                // Committed means delivered; these resolve at once.
                delivered(deliveries).await?;
                Ok(true)
            }
            TxnOutcome::Aborted => Ok(false),
        }
    }

    /// Seeks the assigned partitions `which` selects back to their committed
    /// offsets (the beginning when none is committed); returns them.
    fn seek_to_committed(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
        which: impl Fn(i32) -> bool,
    ) -> Result<Vec<i32>, PipelineError> {
        let timeout = Duration::from_millis(self.config.processing.transaction_timeout_ms);
        let committed = consumer.committed(timeout).map_err(PipelineError::Commit)?;
        let mut partitions = Vec::new();
        for elem in committed.elements().iter().filter(|e| which(e.partition())) {
            let offset = match elem.offset() {
                Offset::Offset(n) => Offset::Offset(n),
                _ => Offset::Beginning,
            };
            consumer
                .seek(elem.topic(), elem.partition(), offset, timeout)
                .map_err(PipelineError::Commit)?;
            partitions.push(elem.partition());
        }
        Ok(partitions)
    }

    /// After an aborted transaction: every assigned partition goes back to
    /// its committed offset and its state is dropped, to be restored from
    /// the (committed) changelog before it is processed again.
    fn rewind(&mut self, consumer: &StreamConsumer<PipelineContext>) -> Result<(), PipelineError> {
        let partitions = self.seek_to_committed(consumer, |_| true)?;
        self.processor.revoke(&partitions);
        self.context.events.requeue_assigned(&partitions);
        warn!(
            partitions = ?partitions,
            "transaction aborted: partitions rewound to their committed offsets, state to the changelog"
        );
        Ok(())
    }
}

/// Waits until every delivery is acknowledged; the first failure is the error.
async fn delivered(deliveries: Vec<DeliveryFuture>) -> Result<(), PipelineError> {
    try_join_all(deliveries.into_iter().map(|f| async move {
        match f.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(PipelineError::Delivery(e)),
            Err(_) => Err(PipelineError::Delivery(KafkaError::Canceled)),
        }
    }))
    .await
    .map(|_| ())
}

/// Enqueues `record`, waiting for queue space when the producer queue is full
/// (backpressure instead of unbounded memory).
async fn send(
    producer: &PipelineProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> Result<DeliveryFuture, PipelineError> {
    loop {
        match producer.send_result(record) {
            Ok(fut) => return Ok(fut),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(PipelineError::Delivery(e)),
        }
    }
}

/// Processor wall clock, ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
