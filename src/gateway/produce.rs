//! Producing the simulated gateway's output: profiles to the patients topic
//! and readings to the raw topic, rate-limited, waiting for every delivery.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::time::Instant;

use super::{Gateway, GatewayReport};

/// Writes the profiles of `gateway`'s patients to the patients topic and
/// waits until all are delivered. Returns how many were written.
///
/// # Errors
/// A producer creation or delivery error.
pub async fn publish_profiles(
    client: &ClientConfig,
    topic: &str,
    gateway: &Gateway,
) -> Result<u64, KafkaError> {
    let producer: FutureProducer = client.clone().set("enable.idempotence", "true").create()?;
    let profiles = gateway
        .profiles()
        .map_err(|_| KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessage))?;
    // Bounded in flight: 100k profiles at once overflow the producer queue.
    let mut deliveries = std::collections::VecDeque::new();
    for (key, value) in &profiles {
        let mut record = FutureRecord::to(topic)
            .key(key.as_bytes())
            .payload(&value[..]);
        loop {
            match producer.send_result(record) {
                Ok(d) => {
                    deliveries.push_back(d);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    match deliveries.pop_front() {
                        Some(d) => check(d.await)?,
                        None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    for d in deliveries {
        check(d.await)?;
    }
    Ok(profiles.len() as u64)
}

/// Produces `count` records (or until `duration` passes) at `rate_per_s` to
/// `topic`, waits until all are delivered and returns what was sent.
///
/// # Errors
/// A producer creation or delivery error.
pub async fn produce(
    client: &ClientConfig,
    topic: &str,
    gateway: &mut Gateway,
    rate_per_s: u64,
    count: Option<u64>,
    duration: Option<Duration>,
    on_progress: impl Fn(&GatewayReport),
) -> Result<GatewayReport, KafkaError> {
    let producer: FutureProducer = client.clone().set("enable.idempotence", "true").create()?;
    let mut report = GatewayReport::default();
    let start = Instant::now();
    let tick = Duration::from_millis(10);
    let per_tick = (rate_per_s.max(1) as f64 / 100.0).max(0.01);
    let mut allowance = 0.0f64;
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut interval = tokio::time::interval(tick);
    let mut last_progress = Instant::now();
    loop {
        let done_count = count.is_some_and(|c| report.sent >= c);
        let done_time = duration.is_some_and(|d| start.elapsed() >= d);
        if done_count || done_time {
            break;
        }
        interval.tick().await;
        allowance += per_tick;
        while allowance >= 1.0 && count.is_none_or(|c| report.sent < c) {
            allowance -= 1.0;
            let rec = gateway
                .next_record(crate::clock::now_ms())
                .map_err(|_| KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessage))?;
            let mut out = FutureRecord::to(topic)
                .key(rec.key.as_bytes())
                .payload(&rec.payload[..]);
            loop {
                match producer.send_result(out) {
                    Ok(f) => {
                        pending.push_back(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        out = back;
                        if let Some(f) = pending.pop_front() {
                            check(f.await)?;
                        }
                    }
                    Err((e, _)) => return Err(e),
                }
            }
            report.count(rec.expected);
            report.bytes += (rec.key.len() + rec.payload.len()) as u64;
        }
        while pending.len() > 10_000 {
            if let Some(f) = pending.pop_front() {
                check(f.await)?;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            on_progress(&report);
            last_progress = Instant::now();
        }
    }
    for f in pending {
        check(f.await)?;
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(report)
}

fn check(
    result: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
) -> Result<(), KafkaError> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(KafkaError::Canceled),
    }
}
