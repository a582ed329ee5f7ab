//! The no-op passthrough ceiling for `scripts/backlog_bench.py`: consume the
//! input topic, produce each key and payload unchanged to another topic, and
//! store the input offset once the broker acknowledged the copy
//! (at-least-once, as vitalstream's at_least_once mode), with vitalstream's
//! own client settings and at most `processing.max_in_flight` copies in
//! flight. Exits once `--count` copies are acknowledged and prints the
//! catch-up rate (first record to last acknowledgement) and its CPU time per
//! record, so the benchmark compares vitalstream with the transport's
//! ceiling on the same broker in the same run. (benches/e2e.rs's ceiling
//! target does the same in the bench's own process.)
//!
//! Run: `cargo run --release --example passthrough -- <brokers> <topic> <count>
//! [--records-per-input R] [PROPERTY=VALUE ...]`; the trailing librdkafka
//! properties go to both clients after vitalstream's defaults, as
//! `[kafka.librdkafka]` does (scripts/latency_bench.py passes its broker
//! workarounds this way).
//!
//! `--records-per-input R` (default 1) produces R records per input record
//! on average, as vitalstream produces an enriched reading plus its state
//! changelog records: the copy, then R − 1 extra records (the fraction by
//! input offset) to `<topic>.passthrough.extra`, each with the input's key
//! and its payload's first 64 bytes (about a changelog record's size). The
//! input offset is stored once all of them are acknowledged. It measures
//! what the transport alone costs for vitalstream's record count.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use vitalstream::config::Config;
use vitalstream::kafka::{consumer_config, producer_config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: passthrough <brokers> <topic> <count> [PROPERTY=VALUE ...]";
    let brokers = args.next().context(usage)?;
    let topic = args.next().context(usage)?;
    let count: u64 = args.next().context(usage)?.parse().context(usage)?;
    let mut cfg = Config::default();
    cfg.kafka.brokers = brokers;
    let mut per_input = 1.0_f64;
    let mut rest = args.peekable();
    if rest.peek().is_some_and(|a| a == "--records-per-input") {
        rest.next();
        per_input = rest.next().context(usage)?.parse().context(usage)?;
        anyhow::ensure!(per_input >= 1.0, "--records-per-input must be at least 1");
    }
    // Extra records per input, in hundredths: input offset o gets
    // `extra / 100` of them plus one more when `o % 100 < extra % 100`.
    let extra = ((per_input - 1.0) * 100.0).round() as i64;
    for setting in rest {
        let (k, v) = setting.split_once('=').context(usage)?;
        cfg.kafka.librdkafka.insert(k, v);
    }
    let consumer: StreamConsumer = consumer_config(&cfg.kafka, &cfg.processing)
        .set("group.id", format!("passthrough-ceiling-{extra}"))
        .create()?;
    let producer: FutureProducer = producer_config(&cfg.kafka, None, &cfg.processing).create()?;
    consumer.subscribe(&[&topic])?;
    let out_topic = format!("{topic}.passthrough");
    let extra_topic = format!("{topic}.passthrough.extra");
    let (acks, mut pending) = tokio::sync::mpsc::channel(cfg.processing.max_in_flight);
    let copy = async {
        let mut first = None;
        loop {
            let msg = consumer.recv().await?;
            first.get_or_insert_with(Instant::now);
            let payload = msg.payload().unwrap_or_default();
            let extras = extra / 100 + i64::from(msg.offset().rem_euclid(100) < extra % 100);
            let mut deliveries = Vec::with_capacity(1 + extras as usize);
            for n in 0..=extras {
                let (to, body) = if n == 0 {
                    (&out_topic, payload)
                } else {
                    (&extra_topic, &payload[..payload.len().min(64)])
                };
                let mut out = FutureRecord::<[u8], [u8]>::to(to).payload(body);
                if let Some(k) = msg.key() {
                    out = out.key(k);
                }
                deliveries.push(loop {
                    match producer.send_result(out) {
                        Ok(delivery) => break delivery,
                        Err((_, back)) => {
                            out = back;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                });
            }
            if acks
                .send((deliveries, msg.partition(), msg.offset(), first))
                .await
                .is_err()
            {
                return anyhow::Ok(());
            }
        }
    };
    let acknowledge = async {
        let mut done = 0;
        while let Some((deliveries, partition, offset, first)) = pending.recv().await {
            let mut delivered = true;
            for delivery in deliveries {
                delivered &= matches!(delivery.await, Ok(Ok(_)));
            }
            if delivered {
                consumer.store_offset(&topic, partition, offset)?;
                done += 1;
                if done >= count {
                    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
                    println!(
                        "passthrough: {done} records in {seconds:.2} s = {:.0}/s",
                        done as f64 / seconds.max(1e-9)
                    );
                    return anyhow::Ok(());
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = copy => r?,
        r = acknowledge => r?,
    }
    Ok(())
}
