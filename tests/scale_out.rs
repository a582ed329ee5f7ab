//! Scale-out and restarts as an operator runs them (docs/scale-out.md):
//! `vitalstream run` child processes started from a plain environment (no
//! `HOSTNAME`), killed and restarted, joined by more instances under
//! cooperative rebalancing, and refused when the state topic is too small.
//! Outputs are read back with read_committed applied from the log and
//! compared with one clean in-process run over the same input.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::faults::*;
use common::*;
use tokio::time::Instant;
use vitalstream::config::{Config, Guarantee};
use vitalstream::kafka::{TopicSpec, ensure_topics};

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

/// Creates the topics with `partitions` partitions and writes the
/// workload's profiles.
async fn setup(broker: &Broker, cfg: &Config, partitions: i32, readings: usize) -> Workload {
    create_topics(broker, cfg, partitions).await;
    let w = workload(readings, 30, 21);
    let recs: Vec<Rec> = w
        .profiles
        .iter()
        .map(|(k, v)| Rec::new(k, v.clone()))
        .collect();
    produce(broker, &cfg.topics.patients, &recs).await;
    w
}

/// Lines of an instance's log, without colour codes.
fn log_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    strip_ansi(&text).lines().map(str::to_owned).collect()
}

/// The value of ` name=` in a log line, up to the next space (quotes kept).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')? + 2;
        return Some(&rest[..end]);
    }
    if rest.starts_with('[') {
        return Some(&rest[..=rest.find(']')?]);
    }
    Some(rest.split(' ').next().unwrap_or(rest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_without_hostname_is_exactly_once_and_does_not_stall() {
    let broker = start_broker().await;
    // No transactional id configured: the default, from the host name.
    let cfg = child_config(&broker, Guarantee::ExactlyOnce, "");
    // A pool the input cannot run out of before the last kill; writing
    // stops then.
    let w = setup(&broker, &cfg, 2, 6_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(&cfg, dir.path(), "vitalstream.toml");
    let log = dir.path().join("instances.log");
    let producer = PacedProducer::start(&broker.bootstrap, &cfg.topics.raw, &w.records, 150);
    // Each instance is killed once it has published some outputs of its
    // own (progress, not a wall-clock guess), while the input still flows.
    for (cycle, n) in [150, 250].into_iter().enumerate() {
        let before = published(&broker, &cfg, 2).await.enriched.len();
        let instance = Instance::start(&file, &log);
        wait_until(
            Duration::from_secs(90),
            format_args!("cycle {cycle}: {n} new enriched outputs"),
            async || published(&broker, &cfg, 2).await.enriched.len() >= before + n,
        )
        .await;
        instance.kill_9();
        assert!(!producer.is_done(), "kill {cycle} fell mid-stream");
        println!(
            "cycle {cycle}: SIGKILL after {n}+ new outputs, {:.0} % of the input written",
            producer.progress() * 100.0
        );
    }
    let written = producer.stop().await;
    println!("{written} readings written");
    let expected = reference(&broker, &cfg, &w.profiles, 2).await;
    let before_last = published(&broker, &cfg, 2).await.enriched.len();
    println!(
        "killed instances published {before_last} of {}",
        expected.enriched.len()
    );
    let last = Instance::start(&file, &log);
    // A restart under a new id would wait for the killed instance's open
    // transaction for good on tansu (it never times them out).
    wait_complete(&broker, &cfg, 2, &expected, Duration::from_secs(90)).await;
    last.stop();
    published(&broker, &cfg, 2).await.assert_exactly(&expected);
    let ids: Vec<String> = log_lines(&log)
        .iter()
        .filter(|l| l.contains("transactional id"))
        .map(|l| {
            assert!(l.contains("source=\"host name\""), "{l}");
            field(l, "transactional_id").expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 3, "one id line per start: {ids:?}");
    assert!(
        ids.iter().all(|id| id == &ids[0]) && ids[0].starts_with("vitalstream-faults-"),
        "the same host-name id at every start: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_topic_with_fewer_partitions_than_the_input_is_refused_at_start_up() {
    let broker = start_broker().await;
    let cfg = child_config(&broker, Guarantee::ExactlyOnce, "small-state");
    let state = cfg.topics.state_topic(&cfg.kafka.group_id);
    ensure_topics(
        &client(&broker),
        &[
            TopicSpec::new(&cfg.topics.raw, 3),
            TopicSpec::compacted(&cfg.topics.patients, 1),
            TopicSpec::compacted(&state, 2),
        ],
    )
    .await
    .expect("topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(&cfg, dir.path(), "vitalstream.toml");
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("start vitalstream");
    let status = wait_exit(
        &mut child,
        Duration::from_secs(60),
        "with a too small state topic",
    )
    .await;
    assert_eq!(status.code(), Some(2));
    let line = error_line(&stderr);
    assert!(
        line.contains(&format!("state topic `{state}` has 2 partitions"))
            && line.contains("`vitals.readings.raw` has 3")
            && line.contains("--partitions 3"),
        "{line}"
    );
}

/// The partitions in the last "assignment after rebalance" line of a log.
fn assignment(log: &Path) -> Option<Vec<i32>> {
    let lines = log_lines(log);
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains("assignment after rebalance"))?;
    let list = field(line, "partitions")?;
    Some(
        list.trim_matches(['[', ']'])
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect(),
    )
}

/// Waits until the instances' assignments are disjoint and cover
/// `partitions` partitions, each holding at least one.
async fn wait_balanced(logs: &[&Path], partitions: usize) -> Vec<Vec<i32>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held: Vec<Vec<i32>> = logs
            .iter()
            .map(|l| assignment(l).unwrap_or_default())
            .collect();
        let mut all: Vec<i32> = held.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        let total: usize = held.iter().map(Vec::len).sum();
        if total == partitions && all.len() == partitions && held.iter().all(|h| !h.is_empty()) {
            return held;
        }
        assert!(Instant::now() < deadline, "balanced within 60 s: {held:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 2 → 3 instances under cooperative rebalancing while input flows: only
/// the partition that moves is revoked (the instance that keeps all its
/// partitions is never interrupted), and every output appears exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_instance_joins_cooperatively_and_nothing_is_lost_or_repeated() {
    let broker = start_broker().await;
    let cfgs: Vec<Config> = ["coop-a", "coop-b", "coop-c"]
        .iter()
        .map(|id| child_config(&broker, Guarantee::ExactlyOnce, id))
        .collect();
    let w = setup(&broker, &cfgs[0], 3, 2_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let logs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.log")))
        .collect();
    let files: Vec<_> = cfgs
        .iter()
        .zip(["a", "b", "c"])
        .map(|(c, n)| write_config(c, dir.path(), &format!("{n}.toml")))
        .collect();
    let producer = PacedProducer::start(&broker.bootstrap, &cfgs[0].topics.raw, &w.records, 150);
    let a = Instance::start(&files[0], &logs[0]);
    let b = Instance::start(&files[1], &logs[1]);
    let before = wait_balanced(&[&logs[0], &logs[1]], 3).await;
    producer.reached(0.3).await;
    let revocations = |log: &Path| {
        log_lines(log)
            .iter()
            .filter(|l| l.contains("partitions revoked"))
            .count()
    };
    let revoked_before = [revocations(&logs[0]), revocations(&logs[1])];
    let c = Instance::start(&files[2], &logs[2]);
    let after = wait_balanced(&[&logs[0], &logs[1], &logs[2]], 3).await;
    println!("assignments: before {before:?}, after {after:?}");
    // Counted now: stopping an instance later revokes its partitions too.
    let revoked: Vec<usize> = (0..2)
        .map(|i| revocations(&logs[i]) - revoked_before[i])
        .collect();
    producer.finish().await;
    let expected = reference(&broker, &cfgs[0], &w.profiles, 3).await;
    wait_complete(&broker, &cfgs[0], 3, &expected, Duration::from_secs(90)).await;
    for instance in [a, b, c] {
        instance.stop();
    }
    let got = published(&broker, &cfgs[0], 3).await;
    println!("{} repeated outputs", got.repeated());
    got.assert_exactly(&expected);
    // The instance that held one partition kept it, uninterrupted; the one
    // that held two gave one up.
    for (i, held) in before.iter().enumerate() {
        let expected_revocations = usize::from(held.len() == 2);
        assert_eq!(
            revoked[i], expected_revocations,
            "instance {i} held {held:?}"
        );
        assert!(
            after[i].iter().all(|p| held.contains(p)),
            "sticky: {after:?}"
        );
    }
    assert!(
        log_lines(&logs[2])
            .iter()
            .any(|l| l.contains("protocol=\"cooperative\"")),
        "the group rebalanced cooperatively"
    );
}
