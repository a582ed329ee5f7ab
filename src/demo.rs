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
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use tokio::time::Instant;

mod alerts;
mod summary;

use alerts::AlertWatcher;
pub use summary::{DemoSummary, ScenarioOutcome};

use crate::codec::Codec;
use crate::config::Config;
use crate::gateway::{Gateway, GatewayConfig, GatewayReport, produce, publish_profiles};
use crate::kafka::{TopicSpec, client_config, ensure_topics};
use crate::model::{AlertRule, HrvQuality, MeasurementKind, Severity};
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

/// Runs the demo and returns its summary.
///
/// # Errors
/// Broker set-up or delivery failures, or a pipeline error.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoSummary> {
    let mut config = Config::default();
    config.kafka.group_id = format!("vitalstream-demo-{}", crate::clock::now_ms());
    let specs = TopicSpec::all(&config.topics, &config.kafka.group_id, opts.partitions);
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
    config.kafka.session_timeout_ms = 6000;
    // The demo is one short process; it serves no endpoints.
    config.http.enabled = false;
    let client = client_config(&config.kafka);
    if mock.is_none() {
        ensure_topics(&client, &specs)
            .await
            .context("creating topics")?;
    }
    let codec = Codec::from_config(config.schemas, &config.codec)?;
    let mut gateway = Gateway::new(codec, opts.gateway.clone());
    let scenarios = gateway.scenarios().to_vec();
    let watcher = AlertWatcher::start(
        &config.kafka,
        &config.topics.alerts,
        Codec::new(config.schemas)?,
    )
    .context("following the alerts topic")?;
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
        &config,
        Stats::get(&stats.enriched),
        stats.dlq_total(),
        hrv_windows.values().sum(),
    )
    .await?;
    let alerts_seen = watcher
        .finish(stats.alerts_total(), Duration::from_secs(15))
        .await;
    drop(mock);
    let scenarios = scenarios
        .iter()
        .map(|s| {
            let mut seen: Vec<(AlertRule, Severity)> = alerts_seen
                .iter()
                .filter(|a| a.patient_id == s.profile.patient_id)
                .map(|a| (a.rule, a.severity))
                .collect();
            seen.sort_unstable();
            let mut expected = s.expected.clone();
            expected.sort_unstable();
            ScenarioOutcome {
                name: s.name,
                expected,
                seen,
            }
        })
        .collect();
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
        alerts: AlertRule::ALL
            .iter()
            .map(|r| (*r, stats.alerts_of(*r)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        alerts_suppressed: Stats::get(&stats.alerts_suppressed),
        alerts_on_topic: alerts_seen.len() as u64,
        scenarios,
        elapsed,
    })
}

fn print_progress(sent: u64, stats: &Stats) {
    println!(
        "sent {:>8} | in {:>8} | enriched {:>8} | duplicates {:>6} | dlq {:>6} | alerts {:>4}",
        sent,
        Stats::get(&stats.consumed),
        Stats::get(&stats.enriched),
        Stats::get(&stats.duplicates),
        stats.dlq_total(),
        stats.alerts_total()
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
    config: &Config,
    expect_enriched: u64,
    expect_dlq: u64,
    expect_windows: u64,
) -> anyhow::Result<ReadBack> {
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set(
            "group.id",
            format!("vitalstream-demo-check-{}", crate::clock::now_ms()),
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
