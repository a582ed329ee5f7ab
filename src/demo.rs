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
use crate::gateway::{Gateway, GatewayConfig, GatewayReport, produce, publish_profiles};
use crate::kafka::{TopicSpec, ensure_topics};
use crate::model::{HrvQuality, MeasurementKind};
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
    /// Enriched body scans with body composition.
    pub body_compositions: u64,
    /// Enriched blood-pressure readings with a BP category.
    pub bp_categories: u64,
    /// HRV windows published, by quality.
    pub hrv_windows: BTreeMap<&'static str, u64>,
    /// HRV windows found on the windows topic when read back.
    pub hrv_windows_on_topic: u64,
    /// HRV windows still open when the demo stopped (their watermark had
    /// not passed yet).
    pub hrv_open_windows: u64,
    /// Beats that arrived after their window closed.
    pub late_beats: u64,
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
            && self
                .dlq
                .get(&DlqReason::UnknownPatient)
                .copied()
                .unwrap_or(0)
                == self.sent.unknown_patient
            && self.hrv_windows_on_topic == self.hrv_windows.values().sum::<u64>()
    }
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dlq: u64 = self.dlq.values().sum();
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        writeln!(f, "vitalstream demo summary")?;
        writeln!(
            f,
            "  gateway sent        {:>8}  ({} valid, {} duplicates, {} malformed, {} out of range, {} unknown patient)",
            self.sent.sent,
            self.sent.valid_total(),
            self.sent.duplicates,
            self.sent.malformed,
            self.sent.out_of_range,
            self.sent.unknown_patient
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
        writeln!(
            f,
            "  derived             body composition {}, BP category {}",
            self.body_compositions, self.bp_categories
        )?;
        let windows: u64 = self.hrv_windows.values().sum();
        let by_quality: Vec<String> = self
            .hrv_windows
            .iter()
            .map(|(q, n)| format!("{q} {n}"))
            .collect();
        writeln!(
            f,
            "  HRV windows         {:>8}  ({}; {} late beats; {} still open at stop)",
            windows,
            by_quality.join(", "),
            self.late_beats,
            self.hrv_open_windows
        )?;
        let dlq_topic: u64 = self.dlq_on_topic.values().sum();
        writeln!(
            f,
            "  read back           enriched topic {}, DLQ topic {}, HRV topic {}",
            self.enriched_on_topic, dlq_topic, self.hrv_windows_on_topic
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
    let specs = TopicSpec::all(&config.topics, opts.partitions);
    // The mock cluster lives as long as this function.
    let mut mock = None;
    let brokers = match &opts.brokers {
        Some(b) => b.clone(),
        None => {
            let cluster = MockCluster::new(1).context("starting the in-process Kafka")?;
            for spec in &specs {
                cluster
                    .create_topic(&spec.name, spec.partitions, 1)
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
    // The demo is one short process; it serves no endpoints.
    config.http.enabled = false;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &brokers);
    if mock.is_none() {
        ensure_topics(&client, &specs)
            .await
            .context("creating topics")?;
    }
    let codec = Codec::new(config.schemas)?;
    let mut gateway = Gateway::new(codec, opts.gateway.clone());
    let profiles = publish_profiles(&client, &config.topics.patients, &gateway)
        .await
        .context("publishing patient profiles")?;
    println!(
        "patients: {profiles} profiles on {}",
        config.topics.patients
    );

    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pipeline_task = tokio::spawn(pipeline::run(config.clone(), stats.clone(), async {
        let _ = stop_rx.await;
    }));

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

    let hrv_windows: BTreeMap<&'static str, u64> = [HrvQuality::Ok, HrvQuality::Insufficient]
        .into_iter()
        .map(|q| (q.label(), stats.hrv_windows(q)))
        .collect();
    let read = read_back(
        &brokers,
        &config,
        Stats::get(&stats.enriched),
        stats.dlq_total(),
        hrv_windows.values().sum(),
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
        enriched_on_topic: read.enriched,
        dlq_on_topic: read.dlq,
        body_compositions: Stats::get(&stats.body_compositions),
        bp_categories: Stats::get(&stats.bp_categories),
        hrv_windows,
        hrv_windows_on_topic: read.hrv_windows,
        hrv_open_windows: Stats::get(&stats.hrv_open_windows),
        late_beats: Stats::get(&stats.late_beats),
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

/// What reading the output topics back found.
#[derive(Debug, Default)]
struct ReadBack {
    enriched: u64,
    dlq: BTreeMap<String, u64>,
    hrv_windows: u64,
}

/// Reads the output topics from the start until the expected counts are
/// seen or nothing arrives for a while.
async fn read_back(
    brokers: &str,
    config: &Config,
    expect_enriched: u64,
    expect_dlq: u64,
    expect_windows: u64,
) -> anyhow::Result<ReadBack> {
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
    let t = &config.topics;
    consumer.subscribe(&[&t.enriched, &t.dlq, &t.hrv_windows])?;
    let mut read = ReadBack::default();
    let idle = Duration::from_secs(10);
    loop {
        let total_dlq: u64 = read.dlq.values().sum();
        if read.enriched >= expect_enriched
            && total_dlq >= expect_dlq
            && read.hrv_windows >= expect_windows
        {
            break;
        }
        match tokio::time::timeout(idle, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => bail!("reading the output topics back: {e}"),
            Ok(Ok(msg)) => {
                if msg.topic() == t.enriched {
                    read.enriched += 1;
                } else if msg.topic() == t.hrv_windows {
                    read.hrv_windows += 1;
                } else {
                    let reason = msg
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == "reason").and_then(|h| h.value))
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_else(|| "missing".into());
                    *read.dlq.entry(reason).or_default() += 1;
                }
            }
        }
    }
    Ok(read)
}
