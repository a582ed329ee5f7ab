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

/// Waits until the published outputs hold `want` enriched readings.
async fn wait_for_outputs(broker: &Broker, cfg: &Config, partitions: i32, want: usize) {
    let timeout = Duration::from_secs(90);
    let deadline = Instant::now() + timeout;
    loop {
        let got = published(broker, cfg, partitions).await.enriched.len();
        if got >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {want} enriched readings within {timeout:?}: processing stalled"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Lines of an instance's log, without colour codes.
fn log_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain.lines().map(str::to_owned).collect()
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
    let w = setup(&broker, &cfg, 2, 1_500).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(&cfg, dir.path(), "vitalstream.toml");
    let log = dir.path().join("instances.log");
    let producer = PacedProducer::start(&broker.bootstrap, &cfg.topics.raw, &w.records, 150);
    for (cycle, alive_ms) in [4_500, 5_500].into_iter().enumerate() {
        let instance = Instance::start(&file, &log);
        tokio::time::sleep(Duration::from_millis(alive_ms)).await;
        instance.kill_9();
        println!(
            "cycle {cycle}: SIGKILL after {alive_ms} ms, {:.0} % of the input written",
            producer.progress() * 100.0
        );
    }
    producer.finish().await;
    let expected = reference(&broker, &cfg, &w.profiles, 2).await;
    let before_last = published(&broker, &cfg, 2).await.enriched.len();
    println!(
        "killed instances published {before_last} of {}",
        expected.enriched.len()
    );
    let last = Instance::start(&file, &log);
    // A restart under a new id would wait for the killed instance's open
    // transaction for good on tansu (it never times them out).
    wait_for_outputs(&broker, &cfg, 2, expected.enriched.len()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
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
