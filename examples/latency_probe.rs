//! The end-to-end latency probe for `scripts/latency_bench.py`: a
//! read_committed consumer outside the process under test that times every
//! output record from the raw record's producer timestamp to the moment the
//! output became readable here.
//!
//! It reads the raw topic as well as the output topic and joins the two by
//! reading id (decoded from both), rather than trusting anything the
//! pipeline writes: the raw record's timestamp is the one librdkafka gave it
//! in `vitalstream loadgen` (CreateTime, the moment the gateway produced
//! it), and the pipeline does not carry it over. A re-sent duplicate shares
//! its reading id with the first send: raw timestamps queue per id and each
//! output takes the oldest, so the no-op passthrough (which copies the
//! duplicates too) and vitalstream (which drops them) are timed alike.
//!
//! Only outputs whose raw record was produced in `[from_ms, until_ms)`
//! (Unix ms) count; the probe exits at `stop_ms` and prints one JSON line:
//! records timed, raw records produced in the window, outputs it could not
//! join, the latency percentiles in milliseconds, and those of the raw hop
//! alone (loadgen -> broker -> probe, the floor under every output).
//!
//! The probe's own client settings are part of what it measures (its fetch
//! wait is added to every record it times): pass them with `-X`, e.g.
//! `-X fetch.wait.max.ms=5`.
//!
//! Run: `cargo run --release --example latency_probe -- --brokers HOST:PORT
//! --raw-topic T --output-topic T.enriched --kind enriched --from-ms .. --until-ms .. --stop-ms ..`

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vitalstream::codec::Codec;
use vitalstream::config::Config;
use vitalstream::kafka::{TopicSpec, client_config, ensure_topics};

/// What the output topic holds.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Raw readings copied unchanged (examples/passthrough.rs).
    Raw,
    /// vitalstream's enriched readings.
    Enriched,
}

#[derive(Parser)]
struct Args {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    raw_topic: String,
    #[arg(long)]
    output_topic: String,
    #[arg(long, value_enum)]
    kind: Kind,
    /// Partitions of the output topic, created if missing (the passthrough
    /// produces to a topic nobody created).
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Time outputs of raw records produced from this Unix ms on...
    #[arg(long)]
    from_ms: i64,
    /// ...until this one (exclusive).
    #[arg(long)]
    until_ms: i64,
    /// Exit at this Unix ms.
    #[arg(long)]
    stop_ms: i64,
    /// librdkafka property for the probe's consumer (repeatable).
    #[arg(short = 'X', value_name = "PROPERTY=VALUE")]
    librdkafka: Vec<String>,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Raw send times per reading id, and outputs seen before their raw record.
#[derive(Default)]
struct Join {
    sent_ms: HashMap<String, VecDeque<i64>>,
    /// Outputs whose raw record the probe has not read yet: when each
    /// became readable (Unix µs).
    early: HashMap<String, VecDeque<i64>>,
    latencies_us: Vec<i64>,
}

impl Join {
    fn raw(&mut self, id: &str, sent_ms: i64, window: (i64, i64)) {
        if let Some(readable) = self.early.get_mut(id).and_then(VecDeque::pop_front) {
            self.time(sent_ms, readable, window);
            return;
        }
        self.sent_ms
            .entry(id.to_owned())
            .or_default()
            .push_back(sent_ms);
    }

    fn output(&mut self, id: &str, readable_us: i64, window: (i64, i64)) {
        match self.sent_ms.get_mut(id).and_then(VecDeque::pop_front) {
            Some(sent_ms) => self.time(sent_ms, readable_us, window),
            None => self
                .early
                .entry(id.to_owned())
                .or_default()
                .push_back(readable_us),
        }
    }

    fn time(&mut self, sent_ms: i64, readable_us: i64, (from, until): (i64, i64)) {
        if (from..until).contains(&sent_ms) {
            self.latencies_us.push(readable_us - sent_ms * 1000);
        }
    }
}

fn assign_all(consumer: &BaseConsumer, topics: &[&str]) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
        for p in 0..partitions {
            tpl.add_partition_offset(topic, i32::try_from(p)?, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg = Config::default();
    cfg.kafka.brokers.clone_from(&args.brokers);
    let client = client_config(&cfg.kafka);
    ensure_topics(
        &client,
        &[TopicSpec::new(&args.output_topic, args.partitions)],
    )
    .await
    .context("creating the output topic")?;
    let mut consumer_cfg = client.clone();
    consumer_cfg
        .set("group.id", "latency-probe")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    for setting in &args.librdkafka {
        let (k, v) = setting.split_once('=').context("-X takes PROPERTY=VALUE")?;
        consumer_cfg.set(k, v);
    }
    let consumer: BaseConsumer = consumer_cfg.create()?;
    assign_all(&consumer, &[&args.raw_topic, &args.output_topic])?;
    let codec = Codec::new(cfg.schemas)?;
    let window = (args.from_ms, args.until_ms);
    let mut join = Join::default();
    let (mut raw_in_window, mut outputs) = (0u64, 0u64);
    // The raw hop alone (loadgen -> broker -> probe): the floor under every
    // output's latency, and what the probe's own settings cost.
    let mut raw_hop_us = Vec::new();
    while now_us() < args.stop_ms * 1000 {
        let Some(msg) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let msg = msg?;
        let readable_us = now_us();
        let payload = msg.payload().unwrap_or_default();
        if msg.topic() == args.raw_topic {
            let sent_ms = msg.timestamp().to_millis().unwrap_or(0);
            if (window.0..window.1).contains(&sent_ms) {
                raw_in_window += 1;
                raw_hop_us.push(readable_us - sent_ms * 1000);
            }
            // Malformed records (no reading id) have no output to time.
            if let Ok(raw) = codec.decode_raw(payload) {
                join.raw(&raw.reading_id, sent_ms, window);
            }
            continue;
        }
        outputs += 1;
        let id = match args.kind {
            Kind::Raw => codec.decode_raw(payload).map(|r| r.reading_id.into_owned()),
            Kind::Enriched => codec
                .decode_enriched(payload)
                .map(|e| e.reading.reading_id.into_owned()),
        };
        if let Ok(id) = id {
            join.output(&id, readable_us, window);
        }
    }
    let unjoined: usize = join.early.values().map(VecDeque::len).sum();
    let mut lat = join.latencies_us;
    lat.sort_unstable();
    raw_hop_us.sort_unstable();
    let pct = |lat: &[i64], p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    let summary = serde_json::json!({
        "timed": lat.len(),
        "raw_in_window": raw_in_window,
        "outputs": outputs,
        "unjoined": unjoined,
        "p50_ms": pct(&lat, 0.50),
        "p90_ms": pct(&lat, 0.90),
        "p99_ms": pct(&lat, 0.99),
        "p999_ms": pct(&lat, 0.999),
        "max_ms": pct(&lat, 1.0),
        "raw_hop_p50_ms": pct(&raw_hop_us, 0.50),
        "raw_hop_p99_ms": pct(&raw_hop_us, 0.99),
    });
    println!("{summary}");
    Ok(())
}
