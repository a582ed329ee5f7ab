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
const RATE_PER_S: u64 = 100;
/// Readings the handover test writes.
const READINGS: usize = 3_000;
/// Readings generated per kill cycle: the input keeps flowing until the
/// last kill (then stops), so this only has to outlast a slow cycle.
const POOL_PER_CYCLE: usize = 2_500;
/// Kill cycles of the exactly_once test in the gate; the long variant runs
/// `VITALSTREAM_KILL_CYCLES=20` (docs/testing.md).
const GATE_CYCLES: usize = 4;

/// The kill-cycle count: `VITALSTREAM_KILL_CYCLES`, else `default`.
fn kill_cycles_wanted(default: usize) -> usize {
    match std::env::var("VITALSTREAM_KILL_CYCLES") {
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("VITALSTREAM_KILL_CYCLES={n} is not a count")),
        Err(_) => default,
    }
}

async fn setup(broker: &Broker, cfg: &Config, readings: usize, seed: u64) -> Workload {
    create_topics(broker, cfg, PARTITIONS).await;
    let w = workload(readings, 30, seed);
    let recs: Vec<Rec> = w
        .profiles
        .iter()
        .map(|(k, v)| Rec::new(k, v.clone()))
        .collect();
    produce(broker, &cfg.topics.patients, &recs).await;
    w
}

/// Enriched readings published so far (read_committed applied).
async fn enriched_published(broker: &Broker, cfg: &Config) -> usize {
    committed(broker, &cfg.topics.enriched, PARTITIONS)
        .await
        .len()
}

/// `cycles` × (start → `n` new enriched outputs observed → SIGKILL) while
/// a paced producer writes; `n` is drawn from 20..200 per cycle, so kills
/// land at varied points of a batch, driven by the instance's progress
/// rather than a wall-clock guess. The input flows until the last kill,
/// so every kill falls mid-stream; then a last instance runs until every
/// expected output is published and stops cleanly.
async fn kill_cycles(guarantee: Guarantee, seed: u64, cycles: usize) -> (Outputs, Outputs) {
    let broker = start_broker().await;
    let cfg = faults_config(&broker, guarantee, "faults-1");
    let w = setup(&broker, &cfg, cycles * POOL_PER_CYCLE, seed).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(&cfg, dir.path(), "vitalstream.toml");
    let log = dir.path().join("instances.log");
    let producer = PacedProducer::start(&broker.bootstrap, &cfg.topics.raw, &w.records, RATE_PER_S);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut at_kills = Vec::new();
    for cycle in 0..cycles {
        let before = enriched_published(&broker, &cfg).await;
        let instance = Instance::start(&file, &log);
        let n = rng.random_range(20..200);
        let seen = wait_for(
            Duration::from_secs(120),
            format_args!("cycle {cycle}: {n} enriched outputs from a fresh instance"),
            async || {
                let got = enriched_published(&broker, &cfg).await;
                if got >= before + n {
                    Ok(got)
                } else {
                    Err(format!("{} new", got - before))
                }
            },
        )
        .await;
        instance.kill_9();
        assert!(
            !producer.is_done(),
            "kill {cycle} fell after the whole input pool ({} readings) was written: \
             raise POOL_PER_CYCLE",
            producer.total
        );
        println!(
            "cycle {cycle}: SIGKILL after {n}+ new outputs ({seen} in all), {} readings written, {:.1} s in",
            producer
                .delivered
                .load(std::sync::atomic::Ordering::Relaxed),
            started.elapsed().as_secs_f64()
        );
        // Readings written by the kill (outputs would count at_least_once's
        // repeats too).
        at_kills.push(
            producer
                .delivered
                .load(std::sync::atomic::Ordering::Relaxed),
        );
    }
    let written = producer.stop().await;
    let expected = reference(&broker, &cfg, &w.profiles, PARTITIONS).await;
    // Every kill left work undone: the input kept coming.
    let before_last = enriched_published(&broker, &cfg).await;
    println!(
        "killed instances published {before_last} enriched records for {} expected",
        expected.enriched.len()
    );
    assert!(
        at_kills.iter().all(|&k| k < written),
        "input kept coming after every kill (readings written at each kill: {at_kills:?} of {written})"
    );
    let last = Instance::start(&file, &log);
    let got = finish(last, &broker, &cfg, PARTITIONS, &expected).await;
    println!(
        "{written} readings, {cycles} kill cycles in {:.0} s: {} enriched, {} DLQ, {} HRV windows, {} alerts expected; {} repeated outputs published",
        started.elapsed().as_secs_f64(),
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

/// `VITALSTREAM_KILL_CYCLES=20` runs the long variant (docs/testing.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_cycles_lose_nothing_and_repeat_nothing_exactly_once() {
    let (expected, got) =
        kill_cycles(Guarantee::ExactlyOnce, 11, kill_cycles_wanted(GATE_CYCLES)).await;
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
    let w = setup(&broker, &cfg_a, READINGS, 13).await;
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
    let got = finish(b, &broker, &cfg_a, PARTITIONS, &expected).await;
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

/// exactly_once commits run in the background while the next batches are
/// processed and their outputs held (src/pipeline/hold.rs). An instance
/// fenced mid-stream, with a commit running nearly all the time (5 ms
/// interval, input faster than one batch per commit), fails that commit
/// or the next: what it held is never published, what it committed is not
/// redone by its successor, and the successor publishes the rest: every
/// output exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_fenced_while_commits_overlap_publishes_nothing_twice_and_loses_nothing() {
    let broker = start_broker().await;
    let mut cfg = faults_config(&broker, Guarantee::ExactlyOnce, "faults-fenced");
    cfg.processing.commit_interval_ms = 5;
    cfg.processing.batch_max_wait_ms = 5;
    // tansu 0.6 answers a fenced producer's transaction calls by closing
    // the connection, not with PRODUCER_FENCED: the calls time out after
    // the transaction timeout (and are retried), so the fenced instance
    // stops after a few of these.
    cfg.processing.transaction_timeout_ms = 2_000;
    let w = setup(&broker, &cfg, READINGS, 14).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    // FAULTS_KEEP_LOGS=1 keeps the instances' log for a look after a failure.
    let dir = if std::env::var_os("FAULTS_KEEP_LOGS").is_some() {
        tmp.keep()
    } else {
        tmp.path().to_owned()
    };
    let file = write_config(&cfg, &dir, "vitalstream.toml");
    let log = dir.join("instances.log");
    println!("instance log: {}", log.display());
    let producer = PacedProducer::start(&broker.bootstrap, &cfg.topics.raw, &w.records, 1_000);
    let a = Instance::start(&file, &log);
    let before = wait_for(
        Duration::from_secs(120),
        "the first instance publishes",
        async || match enriched_published(&broker, &cfg).await {
            n if n >= 300 => Ok(n),
            n => Err(format!("{n} enriched")),
        },
    )
    .await;
    // What an instance started with the same transactional id does: the
    // running one's next transaction call fails fatally.
    fence(&broker, &cfg.kafka.transactional_id);
    let status = a.wait_exit(Duration::from_secs(60));
    assert!(
        !status.success(),
        "the fenced instance stops with an error: {status}"
    );
    producer.finish().await;
    let expected = reference(&broker, &cfg, &w.profiles, PARTITIONS).await;
    let fenced_at = enriched_published(&broker, &cfg).await;
    assert!(
        fenced_at < expected.enriched.len(),
        "fenced mid-stream ({fenced_at} of {} published)",
        expected.enriched.len()
    );
    let b = Instance::start(&file, &log);
    let got = finish(b, &broker, &cfg, PARTITIONS, &expected).await;
    let text = strip_ansi(&std::fs::read_to_string(&log).expect("instances' log"));
    println!(
        "fenced after {before}+ of {} enriched ({fenced_at} at its exit); {} repeated outputs; \
         {} commits failed in the fenced instance's log",
        expected.enriched.len(),
        got.repeated(),
        text.lines()
            .filter(|l| l.contains("transaction failed"))
            .count()
    );
    got.assert_exactly(&expected);
}

/// A second instance joins while the first commits nearly all the time
/// (5 ms interval): the revocation of the partition that moves comes
/// while a commit runs with the next batches' outputs held behind it. The
/// rebalance callback waits for the commit to end and drops the held
/// work, the new owner starts from the committed offsets: every output
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_while_a_commit_runs_publishes_nothing_twice_and_loses_nothing() {
    let broker = start_broker().await;
    let cfgs: Vec<Config> = ["overlap-a", "overlap-b"]
        .iter()
        .map(|id| {
            let mut cfg = faults_config(&broker, Guarantee::ExactlyOnce, id);
            cfg.processing.commit_interval_ms = 5;
            cfg.processing.batch_max_wait_ms = 5;
            cfg
        })
        .collect();
    let w = setup(&broker, &cfgs[0], READINGS, 15).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let producer = PacedProducer::start(&broker.bootstrap, &cfgs[0].topics.raw, &w.records, 150);
    let a = Instance::start(&write_config(&cfgs[0], dir.path(), "a.toml"), &log_a);
    producer.reached(0.3).await;
    let b = Instance::start(&write_config(&cfgs[1], dir.path(), "b.toml"), &log_b);
    let lines = |log: &std::path::Path, needle: &str| {
        strip_ansi(&std::fs::read_to_string(log).unwrap_or_default())
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    wait_for(
        Duration::from_secs(60),
        "the second instance restores a partition",
        async || match lines(&log_b, "partition state restored") {
            0 => Err("none yet".to_owned()),
            n => Ok(n),
        },
    )
    .await;
    assert!(
        !producer.is_done(),
        "the partition moved while input was coming"
    );
    producer.finish().await;
    let expected = reference(&broker, &cfgs[0], &w.profiles, PARTITIONS).await;
    wait_complete(
        &broker,
        &cfgs[0],
        PARTITIONS,
        &expected,
        Duration::from_secs(120),
    )
    .await;
    b.stop();
    a.stop();
    let got = published(&broker, &cfgs[0], PARTITIONS).await;
    println!(
        "revocations in A: {}, of them after waiting for a running commit: {}; {} repeated outputs",
        lines(&log_a, "partitions revoked"),
        lines(
            &log_a,
            "the running commit ended before the partitions are handed over"
        ),
        got.repeated()
    );
    assert!(
        lines(&log_a, "partitions revoked") > 0,
        "A gave a partition up"
    );
    got.assert_exactly(&expected);
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
