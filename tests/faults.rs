//! Fault tests (DESIGN.md §6): the processor as child processes, killed
//! with SIGKILL at random points while a producer writes a known stream,
//! then restarted. Bounded: a few thousand readings, a few kill cycles.
//! The outputs are read back with read_committed applied from the log and
//! compared with one clean in-process run over the same input.

mod common;

use std::time::Duration;

use common::faults::*;
use common::*;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;
use vitalstream::config::{Config, Guarantee};

const PARTITIONS: i32 = 2;
const READINGS: usize = 3_000;
const RATE_PER_S: u64 = 250;

async fn setup(broker: &Broker, cfg: &Config, seed: u64) -> Workload {
    create_topics(broker, cfg, PARTITIONS).await;
    let w = workload(READINGS, 30, seed);
    let recs: Vec<Rec> = w
        .profiles
        .iter()
        .map(|(k, v)| Rec::new(k, v.clone()))
        .collect();
    produce(broker, &cfg.topics.patients, &recs).await;
    w
}

/// Waits until the published outputs hold at least the reference's
/// enriched readings (or panics after `timeout`).
async fn wait_for_outputs(broker: &Broker, cfg: &Config, want: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = published(broker, cfg, PARTITIONS).await.enriched.len();
        if got >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {want} enriched readings within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Runs `cycles` start → random wait → SIGKILL cycles while the workload is
/// produced, then a last instance until everything is processed.
async fn kill_cycles(guarantee: Guarantee, seed: u64, cycles: usize) -> (Outputs, Outputs) {
    let broker = start_broker().await;
    let cfg = faults_config(&broker, guarantee, "faults-1");
    let w = setup(&broker, &cfg, seed).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(&cfg, dir.path(), "vitalstream.toml");
    let log = dir.path().join("instances.log");
    let producer = {
        let (bootstrap, topic, records) = (
            broker.bootstrap.clone(),
            cfg.topics.raw.clone(),
            w.records.clone(),
        );
        tokio::spawn(async move { produce_paced(&bootstrap, &topic, &records, RATE_PER_S).await })
    };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    for cycle in 0..cycles {
        let instance = Instance::start(&file, &log);
        let alive_ms = rng.random_range(2_000..9_000);
        tokio::time::sleep(Duration::from_millis(alive_ms)).await;
        instance.kill_9();
        println!("cycle {cycle}: SIGKILL after {alive_ms} ms");
    }
    producer.await.expect("producer task");
    let expected = reference(&broker, &cfg, &w.profiles, PARTITIONS).await;
    // The kills fell mid-stream: the killed instances had published part
    // of the outputs, not none and not all.
    let before_last = published(&broker, &cfg, PARTITIONS).await.enriched.len();
    println!(
        "killed instances published {before_last} of {} enriched readings",
        expected.enriched.len()
    );
    assert!(
        before_last > 0 && before_last < expected.enriched.len(),
        "kills interrupted the work ({before_last} of {})",
        expected.enriched.len()
    );
    let last = Instance::start(&file, &log);
    wait_for_outputs(
        &broker,
        &cfg,
        expected.enriched.len(),
        Duration::from_secs(180),
    )
    .await;
    // Let the last batches settle, then stop cleanly.
    tokio::time::sleep(Duration::from_secs(3)).await;
    last.stop();
    let got = published(&broker, &cfg, PARTITIONS).await;
    println!(
        "{} readings, {cycles} kill cycles: {} enriched, {} DLQ, {} HRV windows, {} alerts expected; {} repeated outputs published",
        READINGS,
        expected.enriched.len(),
        expected.dlq.len(),
        expected.windows.len(),
        expected.alerts.len(),
        got.repeated()
    );
    (expected, got)
}

fn faults_config(broker: &Broker, guarantee: Guarantee, id: &str) -> Config {
    child_config(broker, guarantee, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_cycles_lose_nothing_and_repeat_nothing_exactly_once() {
    let (expected, got) = kill_cycles(Guarantee::ExactlyOnce, 11, 4).await;
    assert!(!expected.alerts.is_empty() && !expected.windows.is_empty());
    assert_eq!(
        got.enriched, expected.enriched,
        "every valid reading enriched once"
    );
    assert_eq!(got.dlq, expected.dlq, "DLQ complete, nothing twice");
    assert_eq!(
        got.windows, expected.windows,
        "every HRV window once, complete"
    );
    assert_eq!(got.alerts, expected.alerts, "every alert once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_cycles_lose_nothing_at_least_once() {
    let (expected, got) = kill_cycles(Guarantee::AtLeastOnce, 12, 3).await;
    let distinct = |v: &[String]| {
        let mut d = v.to_vec();
        d.dedup();
        d
    };
    assert_eq!(
        distinct(&got.enriched),
        expected.enriched,
        "no reading lost"
    );
    assert_eq!(distinct(&got.alerts), expected.alerts, "no alert lost");
    let mut dlq = got.dlq.clone();
    dlq.dedup();
    assert_eq!(dlq, expected.dlq, "no DLQ record lost");
    println!(
        "at_least_once: {} duplicate outputs after kills (allowed, counted)",
        got.repeated()
    );
}
