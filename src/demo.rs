//! `vitalstream demo`: the whole product in one process.
//!
//! Starts an in-process Kafka (librdkafka's mock cluster) unless `--brokers`
//! names a real one, runs the simulated gateway and the pipeline side by side,
//! prints live progress, then reads the output topics back and prints a
//! summary whose counts must add up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use tokio::time::Instant;

use crate::codec::Codec;
use crate::config::Config;
use crate::gateway::{Gateway, GatewayConfig, GatewayReport, produce};
use crate::kafka::{TopicSpec, ensure_topics};
use crate::model::MeasurementKind;
use crate::pipeline;
use crate::process::DlqReason;
use crate::telemetry::Stats;

/// Options of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// A real broker instead of the in-process one.
    pub brokers: Option<String>,
    /// Readings the gateway sends.
    pub readings: u64,
    /// Gateway send rate, readings per second.
    pub rate_per_s: u64,
    /// Partitions per topic.
    pub partitions: i32,
    /// Gateway simulation settings.
    pub gateway: GatewayConfig,
}

/// What a demo run observed.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// What the gateway sent.
    pub sent: GatewayReport,
    /// Pipeline counters.
    pub consumed: u64,
    /// Enriched readings the pipeline delivered.
    pub enriched: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// DLQ records by reason, as counted by the pipeline.
    pub dlq: BTreeMap<DlqReason, u64>,
    /// Enriched readings per kind.
    pub enriched_by_kind: BTreeMap<MeasurementKind, u64>,
    /// Records found on the enriched topic when read back.
    pub enriched_on_topic: u64,
    /// Records found on the DLQ topic when read back, by reason header.
    pub dlq_on_topic: BTreeMap<String, u64>,
    /// Wall time from first send to last reading processed.
    pub elapsed: Duration,
}

impl DemoSummary {
    /// Whether every reading ended in exactly one place, on both the
    /// pipeline's counters and the output topics.
    pub fn adds_up(&self) -> bool {
        let dlq: u64 = self.dlq.values().sum();
        let dlq_topic: u64 = self.dlq_on_topic.values().sum();
        self.consumed == self.sent.sent
            && self.enriched + self.duplicates + dlq == self.consumed
            && self.enriched_on_topic == self.enriched
            && dlq_topic == dlq
            && self.enriched == self.sent.valid_total()
            && self.duplicates == self.sent.duplicates
    }
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dlq: u64 = self.dlq.values().sum();
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        writeln!(f, "vitalstream demo summary")?;
        writeln!(
            f,
            "  gateway sent        {:>8}  ({} valid, {} duplicates, {} malformed, {} out of range)",
            self.sent.sent,
            self.sent.valid_total(),
            self.sent.duplicates,
            self.sent.malformed,
            self.sent.out_of_range
        )?;
        writeln!(f, "  readings in         {:>8}", self.consumed)?;
        let kinds: Vec<String> = self
            .enriched_by_kind
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        writeln!(
            f,
            "  enriched            {:>8}  ({})",
            self.enriched,
            kinds.join(", ")
        )?;
        writeln!(f, "  duplicates dropped  {:>8}", self.duplicates)?;
        let reasons: Vec<String> = self
            .dlq
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect();
        writeln!(
            f,
            "  dead-lettered       {:>8}  ({})",
            dlq,
            reasons.join(", ")
        )?;
        let dlq_topic: u64 = self.dlq_on_topic.values().sum();
        writeln!(
            f,
            "  read back           enriched topic {}, DLQ topic {}",
            self.enriched_on_topic, dlq_topic
        )?;
        writeln!(
            f,
            "  throughput          {:>8.0} readings/s over {:.1} s",
            self.consumed as f64 / secs,
            secs
        )?;
        let verdict = if self.adds_up() { "yes" } else { "NO" };
        write!(
            f,
            "  counts add up       {verdict}: enriched {} + duplicates {} + DLQ {} = {} of {} sent",
            self.enriched,
            self.duplicates,
            dlq,
            self.enriched + self.duplicates + dlq,
            self.sent.sent
        )
    }
}

/// Runs the demo and returns its summary.
///
/// # Errors
/// Broker set-up or delivery failures, or a pipeline error.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoSummary> {
    let mut config = Config::default();
    let topic_names = [
        &config.topics.raw,
        &config.topics.enriched,
        &config.topics.dlq,
    ];
    // The mock cluster lives as long as this function.
    let mut mock = None;
    let brokers = match &opts.brokers {
        Some(b) => b.clone(),
        None => {
            let cluster = MockCluster::new(1).context("starting the in-process Kafka")?;
            for name in topic_names {
                cluster
                    .create_topic(name, opts.partitions, 1)
                    .context("creating topics on the in-process Kafka")?;
            }
            let b = cluster.bootstrap_servers();
            mock = Some(cluster);
            b
        }
    };
    println!(
        "kafka: {}",
        if opts.brokers.is_some() {
            brokers.as_str()
        } else {
            "in-process mock cluster"
        }
    );
    config.kafka.brokers = brokers.clone();
    config.kafka.group_id = format!("vitalstream-demo-{}", pipeline::now_ms());
    config.kafka.session_timeout_ms = 6000;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &brokers);
    if mock.is_none() {
        let topics: Vec<TopicSpec> = topic_names
            .into_iter()
            .map(|t| TopicSpec::new(t, opts.partitions))
            .collect();
        ensure_topics(&client, &topics)
            .await
            .context("creating topics")?;
    }

    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pipeline_task = tokio::spawn(pipeline::run(config.clone(), stats.clone(), async {
        let _ = stop_rx.await;
    }));

    let codec = Codec::new(config.schemas)?;
    let mut gateway = Gateway::new(codec, opts.gateway.clone());
    let start = Instant::now();
    let progress_stats = stats.clone();
    let progress = move |r: &GatewayReport| print_progress(r.sent, &progress_stats);
    let sent = produce(
        &client,
        &config.topics.raw,
        &mut gateway,
        opts.rate_per_s,
        Some(opts.readings),
        None,
        progress,
    )
    .await
    .context("simulated gateway")?;

    // Wait until the pipeline has taken every record in.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Stats::get(&stats.consumed) < sent.sent {
        if pipeline_task.is_finished() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    print_progress(sent.sent, &stats);
    let _ = stop_tx.send(());
    pipeline_task.await.context("pipeline task")??;

    let (enriched_on_topic, dlq_on_topic) = read_back(
        &brokers,
        &config,
        Stats::get(&stats.enriched),
        stats.dlq_total(),
    )
    .await?;
    drop(mock);
    Ok(DemoSummary {
        consumed: Stats::get(&stats.consumed),
        enriched: Stats::get(&stats.enriched),
        duplicates: Stats::get(&stats.duplicates),
        dlq: DlqReason::ALL.iter().map(|r| (*r, stats.dlq(*r))).collect(),
        enriched_by_kind: MeasurementKind::ALL
            .iter()
            .map(|k| (*k, stats.enriched_of(*k)))
            .collect(),
        sent,
        enriched_on_topic,
        dlq_on_topic,
        elapsed,
    })
}

fn print_progress(sent: u64, stats: &Stats) {
    println!(
        "sent {:>8} | in {:>8} | enriched {:>8} | duplicates {:>6} | dlq {:>6}",
        sent,
        Stats::get(&stats.consumed),
        Stats::get(&stats.enriched),
        Stats::get(&stats.duplicates),
        stats.dlq_total()
    );
}

/// Reads the enriched and DLQ topics from the start until the expected
/// counts are seen or nothing arrives for a while.
async fn read_back(
    brokers: &str,
    config: &Config,
    expect_enriched: u64,
    expect_dlq: u64,
) -> anyhow::Result<(u64, BTreeMap<String, u64>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("vitalstream-demo-check-{}", pipeline::now_ms()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "6000")
        .create()?;
    consumer.subscribe(&[&config.topics.enriched, &config.topics.dlq])?;
    let mut enriched = 0u64;
    let mut dlq: BTreeMap<String, u64> = BTreeMap::new();
    let idle = Duration::from_secs(10);
    loop {
        let total_dlq: u64 = dlq.values().sum();
        if enriched >= expect_enriched && total_dlq >= expect_dlq {
            break;
        }
        match tokio::time::timeout(idle, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => bail!("reading the output topics back: {e}"),
            Ok(Ok(msg)) => {
                if msg.topic() == config.topics.enriched {
                    enriched += 1;
                } else {
                    let reason = msg
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == "reason").and_then(|h| h.value))
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_else(|| "missing".into());
                    *dlq.entry(reason).or_default() += 1;
                }
            }
        }
    }
    Ok((enriched, dlq))
}
