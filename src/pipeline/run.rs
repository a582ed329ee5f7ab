//! Wiring: connects to the brokers and the schema registry, loads the
//! patient profile table, creates the Kafka clients and the commit strategy
//! of `processing.guarantee`, runs the batch loop until shutdown and ends
//! the run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::info;

use super::PipelineError;
use super::backpressure::Backpressure;
use super::batch::Pipeline;
use super::commit::{AtLeastOnce, ChangelogSink, CommitStrategy, ExactlyOnce};
use super::report::Reporter;
use super::route::Router;
use crate::codec::Codec;
use crate::config::{Config, Guarantee};
use crate::kafka::{
    BrokerLink, LinkProducerContext, PipelineContext, PipelineProducer, ProfileLoadError,
    StateReader, Transactions, consumer_config, follow_profiles, producer_config, wait_for_brokers,
};
use crate::process::{InvalidRatioGuard, Processor, ProfileTable};
use crate::registry::WriterResolver;
use crate::state::ChangelogWriter;
use crate::telemetry::{Metrics, StartupPhase, Stats};

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
    stats
        .startup
        .end(StartupPhase::Brokers, Some(stats.startup.elapsed_s()));
    let profiles = Arc::new(ProfileTable::with_hasher(config.erasure.hasher()));
    let mut loader = tokio::spawn({
        let (config, codec, profiles) = (config.clone(), codec.clone(), profiles.clone());
        let resolver = resolver.clone();
        async move { follow_profiles(&config, codec, resolver, profiles).await }
    });
    let result = async {
        // The group join (seconds on a broker that waits for more members,
        // as Kafka's group.initial.rebalance.delay.ms does) and the
        // transactional producer's fencing run while the profile table
        // loads; records are consumed only once it has caught up.
        let clients = connect(&config, stats.clone()).await?;
        let waited = Instant::now();
        if !wait_for_profiles(&profiles, &mut loader, shutdown.as_mut()).await? {
            info!("shutdown requested before the profile table caught up");
            return Ok(());
        }
        stats.health.set_profiles_caught_up();
        stats
            .startup
            .end(StartupPhase::Profiles, Some(waited.elapsed().as_secs_f64()));
        run_consumer(
            config,
            codec,
            resolver,
            profiles.clone(),
            stats,
            clients,
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

pub(super) fn loader_stopped(
    res: Result<Result<(), ProfileLoadError>, tokio::task::JoinError>,
) -> PipelineError {
    match res {
        Ok(Err(e)) => PipelineError::Profiles(e),
        Ok(Ok(())) => PipelineError::Config("profile loader ended unexpectedly".into()),
        Err(e) => PipelineError::Config(format!("profile loader task failed: {e}")),
    }
}

/// The Kafka clients of a run, connected and subscribed.
struct Clients {
    context: PipelineContext,
    state_reader: StateReader,
    state_topic: String,
    state_partitions: usize,
    consumer: StreamConsumer<PipelineContext>,
    producer: PipelineProducer,
    txn: Option<Transactions>,
}

/// Creates the pipeline's clients, fences the predecessor's transactions
/// (exactly_once), checks the state topic and subscribes, so the group
/// join starts.
///
/// Nothing polls the consumer until the profile table has caught up: the
/// join proceeds meanwhile (librdkafka's own thread), the assignment is
/// served at the first poll, and librdkafka leaves the group if that takes
/// longer than `max.poll.interval.ms` (5 minutes by default; it rejoins at
/// the first poll).
async fn connect(config: &Config, stats: Arc<Stats>) -> Result<Clients, PipelineError> {
    let link = Arc::new(BrokerLink::new(&config.kafka.brokers, stats.clone()));
    let context = PipelineContext::new(stats.clone(), &config.topics.raw, link.clone());
    let state_topic = config.topics.state_topic(&config.kafka.group_id);
    let state_reader =
        StateReader::new(&config.kafka, &state_topic).map_err(PipelineError::Setup)?;
    let consumer: StreamConsumer<PipelineContext> =
        consumer_config(&config.kafka, &config.processing)
            .create_with_context(context.clone())
            .map_err(PipelineError::Setup)?;
    let state_partitions = crate::kafka::blocking(|| {
        crate::kafka::check_state_topic(
            &consumer,
            &config.topics.raw,
            &state_topic,
            Duration::from_millis(config.kafka.startup_timeout_ms.clamp(5_000, 30_000)),
        )
    })?;
    consumer
        .subscribe(&[&config.topics.raw])
        .map_err(PipelineError::Setup)?;
    stats.startup.end(StartupPhase::Subscribed, None);
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
    let started = Instant::now();
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
    stats.startup.end(
        StartupPhase::Producer,
        Some(started.elapsed().as_secs_f64()),
    );
    info!(
        topic = %config.topics.raw,
        group = %config.kafka.group_id,
        guarantee = guarantee.as_str(),
        "pipeline started"
    );
    Ok(Clients {
        context,
        state_reader,
        state_topic,
        state_partitions,
        consumer,
        producer,
        txn,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_consumer(
    config: Config,
    codec: Arc<Codec>,
    resolver: Option<Arc<WriterResolver>>,
    profiles: Arc<ProfileTable>,
    stats: Arc<Stats>,
    clients: Clients,
    loader: &mut JoinHandle<Result<(), ProfileLoadError>>,
    shutdown: impl Future<Output = ()> + Unpin,
) -> Result<(), PipelineError> {
    let Clients {
        context,
        state_reader,
        state_topic,
        state_partitions,
        consumer,
        producer,
        txn,
    } = clients;
    let processor = Processor::new(
        codec.clone(),
        config.validation.clone(),
        config.hrv.clone(),
        config.alerts.clone(),
        profiles,
    )
    .map_err(|e| PipelineError::Config(e.to_string()))?;
    let metrics = Metrics::new();
    let sink = ChangelogSink::new(producer.clone(), state_topic.clone(), metrics.clone());
    let raw_topic = config.topics.raw.clone();
    let commit = match txn {
        Some(txn) => CommitStrategy::ExactlyOnce(ExactlyOnce::new(
            txn,
            Duration::from_millis(config.processing.commit_interval_ms),
            sink,
            raw_topic,
            metrics.clone(),
        )),
        None => CommitStrategy::AtLeastOnce(AtLeastOnce::new(sink, raw_topic)),
    };
    let mut pipeline = Pipeline {
        processor,
        guard: InvalidRatioGuard::new(
            config.validation.invalid_ratio_window,
            config.validation.max_invalid_ratio,
        ),
        resolver,
        stats,
        router: Router::new(
            producer.clone(),
            codec,
            config.topics.clone(),
            metrics.clone(),
        ),
        backpressure: Backpressure::new(
            producer.clone(),
            config.processing.max_in_flight,
            metrics.clone(),
        ),
        report: Reporter::new(
            metrics,
            config.validation.dedup_horizon_ms,
            config.validation.dedup_max_entries,
        ),
        producer,
        context,
        config,
        state_reader,
        state_topic,
        state_partitions,
        changelog: ChangelogWriter::new(),
        commit,
    };
    let result = pipeline.run_loop(&consumer, loader, shutdown).await;
    let ended = pipeline.commit.shutdown(&consumer).await;
    // The run's own error comes first; a failed final commit is an error
    // of a run that otherwise ended well.
    if let (Err(_), Err(e)) = (&result, &ended) {
        tracing::warn!(error = %e, "after the run's error, the final commit failed too");
    }
    let result = result.and(ended);
    info!(
        open_windows = pipeline.processor.open_windows(),
        "pipeline stopped; open state is in the changelog"
    );
    result
}
