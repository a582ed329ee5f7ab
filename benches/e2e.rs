//! End-to-end benchmark on loopback against tansu (DESIGN.md §8), one fresh
//! broker per target:
//!
//! * `ceiling`: a no-op rdkafka passthrough (consume → produce the payload
//!   unchanged) with vitalstream's own client settings: the transport's
//!   ceiling on this machine;
//! * `exactly_once` and `at_least_once`: the vitalstream pipeline.
//!
//! For each: sustained throughput catching up on a backlog of simulated
//! gateway readings (a realistic mix: every kind, duplicates, malformed,
//! out-of-range, unknown patients), then latency at fixed input rates: the
//! time from the gateway's send to the output being readable by a
//! read_committed consumer, per reading, p50 and p99.
//!
//! Run: `cargo bench --bench e2e` (needs tansu: the one in `.venv-test`,
//! which `bash scripts/test.sh` creates, or TANSU_BIN). `E2E_BACKLOG` (default 200000),
//! `E2E_RATES` (default "5000,10000"), `E2E_SECONDS` (default 15) and
//! `E2E_PATIENTS` (default 10000) size it;
//! `E2E_ONLY=<target>` runs one target alone.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::faults::workload;
use common::{Broker, Rec, create_topics, produce, start_broker, start_pipeline};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use vitalstream::codec::Codec;
use vitalstream::config::{Config, Guarantee};
use vitalstream::gateway::SimRecord;
use vitalstream::kafka::{consumer_config, producer_config};
use vitalstream::telemetry::Stats;

const PARTITIONS: i32 = 4;
/// Simulated patients unless `E2E_PATIENTS` says otherwise: state size
/// (changelog volume, restore) grows with it, and 500 hid that.
const PATIENTS: usize = 10_000;
const CEILING_OUT: &str = "ceiling.out";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Ceiling,
    Vitalstream(Guarantee),
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Ceiling => "ceiling",
            Self::Vitalstream(g) => g.as_str(),
        }
    }
}

/// One target's figures.
struct Figures {
    target: Target,
    backlog_per_s: f64,
    /// (input rate, achieved output rate, p50 ms, p99 ms, outputs seen).
    latency: Vec<(u64, f64, f64, f64, usize)>,
}

/// What runs the target: the pipeline, or the passthrough task.
enum Running {
    Pipeline(common::RunningPipeline),
    Passthrough(tokio::task::JoinHandle<()>, Arc<AtomicU64>),
}

impl Running {
    fn consumed(&self) -> u64 {
        match self {
            Self::Pipeline(p) => Stats::get(&p.stats.consumed),
            Self::Passthrough(_, n) => n.load(Ordering::Relaxed),
        }
    }

    async fn stop(self) {
        match self {
            Self::Pipeline(p) => p.stop().await.expect("pipeline stops cleanly"),
            Self::Passthrough(task, _) => task.abort(),
        }
    }
}

fn config(broker: &Broker, guarantee: Guarantee) -> Config {
    let mut cfg = common::config(broker);
    cfg.processing.guarantee = guarantee;
    cfg.telemetry.log_level = "warn".into();
    // E2E_BATCH overrides processing.batch_max_messages (to study batching).
    cfg.processing.batch_max_messages = env_or("E2E_BATCH", cfg.processing.batch_max_messages);
    cfg
}

/// The no-op passthrough: consume, produce the same key and payload, and
/// once the broker acknowledged the copy store the input offset and count
/// it (at-least-once, as vitalstream's at_least_once mode); at most
/// `processing.max_in_flight` copies await acknowledgement, as in
/// vitalstream. Same client settings as vitalstream at_least_once.
fn passthrough(cfg: &Config) -> Running {
    let consumer: Arc<StreamConsumer> = Arc::new(
        consumer_config(&cfg.kafka, &cfg.processing)
            .set("group.id", "ceiling")
            .create()
            .expect("consumer"),
    );
    let producer: FutureProducer = producer_config(&cfg.kafka, None, &cfg.processing)
        .create()
        .expect("producer");
    consumer.subscribe(&[&cfg.topics.raw]).expect("subscribe");
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let in_topic = cfg.topics.raw.clone();
    let (acks, mut pending) = tokio::sync::mpsc::channel(cfg.processing.max_in_flight);
    let task = tokio::spawn(async move {
        let copy = async {
            loop {
                let msg = consumer.recv().await.expect("consume");
                let mut out = FutureRecord::<[u8], [u8]>::to(CEILING_OUT);
                if let Some(k) = msg.key() {
                    out = out.key(k);
                }
                if let Some(p) = msg.payload() {
                    out = out.payload(p);
                }
                let delivery = loop {
                    match producer.send_result(out) {
                        Ok(delivery) => break delivery,
                        Err((_, back)) => {
                            out = back;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                };
                if acks
                    .send((delivery, msg.partition(), msg.offset()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        };
        let acknowledge = async {
            while let Some((delivery, partition, offset)) = pending.recv().await {
                if matches!(delivery.await, Ok(Ok(_))) {
                    consumer
                        .store_offset(&in_topic, partition, offset)
                        .expect("store");
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        tokio::join!(copy, acknowledge);
    });
    Running::Passthrough(task, count)
}

fn start(target: Target, cfg: &Config) -> Running {
    match target {
        Target::Ceiling => passthrough(cfg),
        Target::Vitalstream(_) => Running::Pipeline(start_pipeline(cfg.clone())),
    }
}

async fn wait_consumed(running: &Running, n: u64) -> Duration {
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let c = running.consumed();
        if c > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if c >= n {
            return first.map_or(Duration::ZERO, |t| t.elapsed());
        }
        assert!(Instant::now() < deadline, "{c} of {n} consumed in 600 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The reading id of a raw payload, if it decodes.
fn reading_id(codec: &Codec, payload: &[u8]) -> Option<String> {
    codec
        .decode_raw(payload)
        .ok()
        .map(|r| r.reading_id.into_owned())
}

/// Sends `records` at `rate`/s; returns each reading id's first send time.
async fn send_paced(
    bootstrap: &str,
    topic: &str,
    records: &[SimRecord],
    ids: &[Option<String>],
    rate: u64,
) -> HashMap<String, Instant> {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let tick = Duration::from_millis(10);
    let per_tick = ((rate as usize) / 100).max(1);
    let mut sent_at = HashMap::with_capacity(records.len());
    let mut deliveries = Vec::with_capacity(records.len());
    let started = tokio::time::Instant::now();
    for (i, (chunk, chunk_ids)) in records
        .chunks(per_tick)
        .zip(ids.chunks(per_tick))
        .enumerate()
    {
        tokio::time::sleep_until(started + tick * i as u32).await;
        for (r, id) in chunk.iter().zip(chunk_ids) {
            let now = Instant::now();
            let fut = producer
                .send_result(
                    FutureRecord::to(topic)
                        .key(r.key.as_bytes())
                        .payload(&r.payload[..]),
                )
                .expect("producer queue has room");
            deliveries.push(fut);
            if let Some(id) = id {
                sent_at.entry(id.clone()).or_insert(now);
            }
        }
    }
    for d in deliveries {
        d.await.expect("delivery").expect("delivered");
    }
    sent_at
}

/// Reads `topic` from its current end with read_committed and returns, per
/// reading id, when it became readable. Stops after `quiet` without data
/// once `stop_after` has passed.
fn tail(
    bootstrap: &str,
    topic: &str,
    target: Target,
) -> (
    tokio::task::JoinHandle<Vec<(String, Instant)>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "e2e-tail")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("tail consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::End)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let codec = Codec::new(Default::default()).expect("codec");
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => return seen,
                msg = consumer.recv() => {
                    let msg = msg.expect("tail consume");
                    let at = Instant::now();
                    let Some(payload) = msg.payload() else { continue };
                    let id = match target {
                        Target::Ceiling => reading_id(&codec, payload),
                        Target::Vitalstream(_) => codec
                            .decode_enriched(payload)
                            .ok()
                            .map(|e| e.reading.reading_id.into_owned()),
                    };
                    if let Some(id) = id {
                        seen.push((id, at));
                    }
                }
            }
        }
    });
    (task, stop_tx)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn bench_target(target: Target, backlog: usize, rates: &[u64], seconds: u64) -> Figures {
    let broker = start_broker().await;
    let guarantee = match target {
        Target::Vitalstream(g) => g,
        Target::Ceiling => Guarantee::AtLeastOnce,
    };
    let cfg = config(&broker, guarantee);
    create_topics(&broker, &cfg, PARTITIONS).await;
    if target == Target::Ceiling {
        vitalstream::kafka::ensure_topics(
            &common::client(&broker),
            &[vitalstream::kafka::TopicSpec::new(CEILING_OUT, PARTITIONS)],
        )
        .await
        .expect("ceiling topic");
    }
    let paced_total: usize = rates.iter().map(|r| (*r * seconds) as usize).sum();
    let w = workload(backlog + paced_total, env_or("E2E_PATIENTS", PATIENTS), 42);
    let profiles: Vec<Rec> = w
        .profiles
        .iter()
        .map(|(k, v)| Rec::new(k, v.clone()))
        .collect();
    produce(&broker, &cfg.topics.patients, &profiles).await;
    let (backlog_recs, paced) = w.records.split_at(backlog);
    let recs: Vec<Rec> = backlog_recs
        .iter()
        .map(|r| Rec::new(&r.key, r.payload.clone()))
        .collect();
    produce(&broker, &cfg.topics.raw, &recs).await;

    let running = start(target, &cfg);
    let took = wait_consumed(&running, backlog as u64).await;
    let backlog_per_s = backlog as f64 / took.as_secs_f64();
    eprintln!(
        "{}: backlog of {backlog} in {:.1} s",
        target.name(),
        took.as_secs_f64()
    );

    let codec = Codec::new(Default::default()).expect("codec");
    let out_topic = match target {
        Target::Ceiling => CEILING_OUT.to_owned(),
        Target::Vitalstream(_) => cfg.topics.enriched.clone(),
    };
    let mut latency = Vec::new();
    let mut rest = paced;
    let mut consumed = backlog as u64;
    for &rate in rates {
        let n = (rate * seconds) as usize;
        let (now_recs, later) = rest.split_at(n);
        rest = later;
        let ids: Vec<Option<String>> = now_recs
            .iter()
            .map(|r| reading_id(&codec, &r.payload))
            .collect();
        let (tail_task, stop_tail) = tail(&broker.bootstrap, &out_topic, target);
        // Let the tail consumer reach the end before sending.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let sent_at = send_paced(&broker.bootstrap, &cfg.topics.raw, now_recs, &ids, rate).await;
        consumed += n as u64;
        wait_consumed(&running, consumed).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = stop_tail.send(());
        let seen = tail_task.await.expect("tail task");
        let mut ms: Vec<f64> = seen
            .iter()
            .filter_map(|(id, at)| {
                sent_at
                    .get(id)
                    .map(|s| at.duration_since(*s).as_secs_f64() * 1e3)
            })
            .collect();
        let span = seen
            .last()
            .map_or(1.0, |(_, at)| at.duration_since(started).as_secs_f64());
        ms.sort_by(f64::total_cmp);
        latency.push((
            rate,
            ms.len() as f64 / span,
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms.len(),
        ));
        eprintln!(
            "{} at {rate}/s: {} outputs, p50 {:.1} ms, p99 {:.1} ms",
            target.name(),
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
    }
    running.stop().await;
    Figures {
        target,
        backlog_per_s,
        latency,
    }
}

fn main() {
    let backlog: usize = env_or("E2E_BACKLOG", 200_000);
    let seconds: u64 = env_or("E2E_SECONDS", 15);
    let rates: Vec<u64> = std::env::var("E2E_RATES")
        .unwrap_or_else(|_| "5000,10000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    // `cargo test --benches` runs this too: keep that a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (backlog, seconds, rates) = if smoke {
        (2_000, 2, vec![500])
    } else {
        (backlog, seconds, rates)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let targets = [
        Target::Ceiling,
        Target::Vitalstream(Guarantee::AtLeastOnce),
        Target::Vitalstream(Guarantee::ExactlyOnce),
    ];
    // E2E_ONLY=at_least_once runs just that target (e.g. under a profiler).
    if let Ok(only) = std::env::var("E2E_ONLY") {
        let target = targets
            .into_iter()
            .find(|t| t.name() == only)
            .expect("E2E_ONLY: ceiling, at_least_once or exactly_once");
        let f = rt.block_on(bench_target(target, backlog, &rates, seconds));
        println!("{only}: backlog {:.0} readings/s", f.backlog_per_s);
        return;
    }
    let figures: Vec<Figures> = targets
        .iter()
        .map(|&t| rt.block_on(bench_target(t, backlog, &rates, seconds)))
        .collect();

    println!(
        "\ne2e on loopback, tansu, {PARTITIONS} partitions, {} cores; backlog {backlog} readings",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<14} {:>12} {:>10} {:>8} {:>10} {:>9} {:>9}",
        "target", "backlog r/s", "vs ceiling", "rate/s", "achieved", "p50 ms", "p99 ms"
    );
    let ceiling = figures[0].backlog_per_s;
    for f in &figures {
        for (i, (rate, achieved, p50, p99, _)) in f.latency.iter().enumerate() {
            let (tp, ratio) = if i == 0 {
                (
                    format!("{:.0}", f.backlog_per_s),
                    format!("{:.2}", f.backlog_per_s / ceiling),
                )
            } else {
                (String::new(), String::new())
            };
            println!(
                "{:<14} {tp:>12} {ratio:>10} {rate:>8} {achieved:>10.0} {p50:>9.1} {p99:>9.1}",
                if i == 0 { f.target.name() } else { "" }
            );
        }
    }
    let eos = figures[2].backlog_per_s;
    let alo = figures[1].backlog_per_s;
    println!("exactly_once / at_least_once throughput: {:.2}", eos / alo);
}
