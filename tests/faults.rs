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
const RATE_PER_S: u64 = 100;

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

/// Runs start → random wait → SIGKILL cycles while the workload is being
/// produced (at least `min_cycles`, every kill before nine tenths of the
/// input is written, so each falls mid-stream), then a last instance until
/// everything is processed.
async fn kill_cycles(guarantee: Guarantee, seed: u64, min_cycles: usize) -> (Outputs, Outputs) {
    let broker = start_broker().await;
    let cfg = faults_config(&broker, guarantee, "faults-1");
    let w = setup(&broker, &cfg, seed).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(&cfg, dir.path(), "vitalstream.toml");
    let log = dir.path().join("instances.log");
    let producer = PacedProducer::start(&broker.bootstrap, &cfg.topics.raw, &w.records, RATE_PER_S);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut cycles = 0;
    while cycles < min_cycles || producer.progress() < 0.6 {
        let instance = Instance::start(&file, &log);
        let alive_ms = rng.random_range(2_000..6_000);
        tokio::time::sleep(Duration::from_millis(alive_ms)).await;
        let progress = producer.progress();
        instance.kill_9();
        println!(
            "cycle {cycles}: SIGKILL after {alive_ms} ms, {:.0} % of the input written",
            progress * 100.0
        );
        assert!(
            progress < 0.9,
            "kill {cycles} fell mid-stream (input {:.0} % written); slow the producer down",
            progress * 100.0
        );
        cycles += 1;
    }
    producer.finish().await;
    let expected = reference(&broker, &cfg, &w.profiles, PARTITIONS).await;
    // The killed instances had published part of the outputs, not none.
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
    // Every valid reading enriched once, the DLQ complete, every HRV window
    // once and complete, every alert once; nothing else.
    got.assert_exactly(&expected);
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

/// Two instances in one group; A is killed halfway and B takes over its
/// partition with the restored state. FAULTS_KEEP_LOGS=1 keeps the
/// instances' logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_takes_over_a_killed_ones_partitions_with_its_state() {
    let broker = start_broker().await;
    let cfg_a = faults_config(&broker, Guarantee::ExactlyOnce, "faults-a");
    let cfg_b = faults_config(&broker, Guarantee::ExactlyOnce, "faults-b");
    let w = setup(&broker, &cfg_a, 13).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    // FAULTS_KEEP_LOGS=1 keeps the instances' logs for a look after a failure.
    let dir = if std::env::var_os("FAULTS_KEEP_LOGS").is_some() {
        tmp.keep()
    } else {
        tmp.path().to_owned()
    };
    let file_a = write_config(&cfg_a, &dir, "a.toml");
    let file_b = write_config(&cfg_b, &dir, "b.toml");
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    println!("instance logs in {}", dir.display());
    let producer =
        PacedProducer::start(&broker.bootstrap, &cfg_a.topics.raw, &w.records, RATE_PER_S);
    let a = Instance::start(&file_a, &log_a);
    let b = Instance::start(&file_b, &log_b);
    // Both in the group with a partition each; halfway through, kill A.
    producer.reached(0.5).await;
    let before = published(&broker, &cfg_a, PARTITIONS).await.enriched.len();
    a.kill_9();
    let a_held = restored_partitions(&log_a);
    assert!(!a_held.is_empty(), "A held a partition when it was killed");
    producer.finish().await;
    // A Kafka transaction coordinator aborts A's open transaction once it
    // times out; tansu 0.6 never does (tests/tansu_canaries.rs), so fence
    // A's transactional id as the coordinator would. Until then B has been
    // restoring and writing behind A's open transaction.
    fence(&broker, &cfg_a.kafka.transactional_id);
    let expected = reference(&broker, &cfg_a, &w.profiles, PARTITIONS).await;
    assert!(
        before > 0 && before < expected.enriched.len(),
        "A was killed mid-stream ({before} of {})",
        expected.enriched.len()
    );
    wait_for_outputs(
        &broker,
        &cfg_a,
        expected.enriched.len(),
        Duration::from_secs(180),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.stop();
    let got = published(&broker, &cfg_a, PARTITIONS).await;
    println!(
        "handover: {READINGS} readings, {before} enriched before A was killed; A held {a_held:?}; {} repeated outputs",
        got.repeated()
    );
    // Windows open at the handover were restored by B and closed complete.
    got.assert_exactly(&expected);
    // B restored a partition A had worked on, with A's state in it.
    let taken_over: Vec<(i32, u64)> = restored_partitions(&log_b)
        .into_iter()
        .filter(|(p, records)| *records > 0 && a_held.iter().any(|(q, _)| q == p))
        .collect();
    println!("B restored {taken_over:?} (partition, changelog records read)");
    assert!(
        !taken_over.is_empty(),
        "B restored A's partition with its state"
    );
}

/// The (partition, changelog records read) of every "partition state
/// restored" line in an instance's log.
fn restored_partitions(log: &std::path::Path) -> Vec<(i32, u64)> {
    let text = std::fs::read_to_string(log).expect("instance log");
    strip_ansi(&text)
        .lines()
        .filter(|l| l.contains("partition state restored"))
        .map(|l| (field(l, "partition") as i32, field(l, "records")))
        .collect()
}

/// The number after ` name=` in a log line.
fn field(line: &str, name: &str) -> u64 {
    let at = line
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("{name} in {line}"));
    line[at + name.len() + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{name} value in {line}"))
}

/// The text without ANSI colour sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
