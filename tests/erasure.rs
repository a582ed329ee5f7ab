//! Durable erasure (DESIGN.md §3, docs/erasure.md) through a real broker:
//! an erased patient's state leaves memory and the changelog however the
//! partition moves, whatever aborts, and after the tombstone is gone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::faults::*;
use common::*;
use tokio::time::Instant;
use vitalstream::config::{Config, Guarantee};
use vitalstream::erasure::PatientHasher;
use vitalstream::kafka::{TopicSpec, ensure_topics};
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;
use vitalstream::state::{StateKey, decode_dedup_group, patient_hash};
use vitalstream::telemetry::Stats;

const MIN: i64 = 60_000;

fn bp(sys: i32, dia: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: Some(80),
    })
}

fn beats() -> Measurement {
    Measurement::HeartRhythm(HeartRhythm {
        rr_intervals_ms: vec![1_000; 60],
        source: RhythmSource::Ppg,
    })
}

/// Readings that leave state behind for `patient`: dedup keys, an open HRV
/// window, and a crisis reading awaiting its repeat, on `partition`.
fn stateful_readings(patient: &str, tag: &str, partition: Option<i32>) -> Vec<Rec> {
    let t = now_ms() - 30 * MIN;
    [
        raw_record(&format!("{tag}-bp"), patient, t, bp(186, 124)),
        raw_record(&format!("{tag}-rr"), patient, t + MIN, beats()),
        raw_record(&format!("{tag}-bp2"), patient, t + 2 * MIN, bp(121, 79)),
    ]
    .into_iter()
    .map(|mut r| {
        r.partition = partition;
        r
    })
    .collect()
}

/// Waits until `log` has `n` lines containing `needle`.
async fn wait_log(log: &Path, needle: &str, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
        if text.lines().filter(|l| l.contains(needle)).count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} × `{needle}` in {} within {timeout:?}:\n{text}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `n` enriched readings are committed.
async fn wait_enriched(broker: &Broker, cfg: &Config, partitions: i32, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while published(broker, cfg, partitions).await.enriched.len() < n {
        assert!(
            Instant::now() < deadline,
            "{n} enriched readings within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The live (latest, not deleted) committed changelog keys and values.
async fn live_changelog(
    broker: &Broker,
    cfg: &Config,
    partitions: i32,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let topic = cfg.topics.state_topic(&cfg.kafka.group_id);
    let mut live = BTreeMap::new();
    for (_, r) in committed(broker, &topic, partitions).await {
        let key = r.key.expect("changelog key");
        match r.value {
            Some(v) => live.insert(key, v),
            None => live.remove(&key),
        };
    }
    live
}

/// Live changelog records that hold something of `patient`: their HRV and
/// alert records (keyed by the patient's hash), or a dedup generation
/// holding one of their reading ids (under their keyed hash).
fn keys_of(live: &BTreeMap<Vec<u8>, Vec<u8>>, patient: &str) -> Vec<String> {
    let dedup = PatientHasher::default()
        .hash(patient.as_bytes())
        .dedup_part();
    let h = patient_hash(patient);
    live.iter()
        .filter(|(k, v)| match StateKey::decode(k) {
            Ok((_, StateKey::DedupGroup(_))) => decode_dedup_group(v)
                .expect("dedup group")
                .iter()
                .any(|((x, _), _)| *x == dedup),
            Ok((_, k)) => k.patient() == Some(h),
            _ => false,
        })
        .map(|(k, _)| format!("{k:02x?}"))
        .collect()
}

/// A killed instance held the partition when the tombstone came; the other
/// instance, which did not hold it, purges the patient when it takes the
/// partition over and restores it from the changelog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_while_another_instance_holds_the_partition_is_applied_on_hand_over() {
    let broker = start_broker().await;
    let cfg_a = child_config(&broker, Guarantee::ExactlyOnce, "erasure-a");
    let cfg_b = child_config(&broker, Guarantee::ExactlyOnce, "erasure-b");
    create_topics(&broker, &cfg_a, 1).await;
    register_patients(&broker, &cfg_a, &["p-1", "p-2"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let a = Instance::start(&write_config(&cfg_a, dir.path(), "a.toml"), &log_a);
    wait_log(
        &log_a,
        "assignment after rebalance partitions=[0]",
        1,
        Duration::from_secs(60),
    )
    .await;
    let b = Instance::start(&write_config(&cfg_b, dir.path(), "b.toml"), &log_b);
    wait_log(
        &log_b,
        "assignment after rebalance partitions=[]",
        1,
        Duration::from_secs(60),
    )
    .await;

    let mut first = stateful_readings("p-1", "one", None);
    first.push(raw_record("two-bp", "p-2", now_ms() - MIN, bp(118, 76)));
    produce(&broker, &cfg_a.topics.raw, &first).await;
    wait_enriched(&broker, &cfg_a, 1, 4).await;
    assert!(!keys_of(&live_changelog(&broker, &cfg_a, 1).await, "p-1").is_empty());

    // A dies holding the partition; the tombstone comes while B holds nothing.
    a.kill_9();
    erase_patient(&broker, &cfg_a, "p-1").await;
    wait_log(
        &log_b,
        "patient erased (tombstone)",
        1,
        Duration::from_secs(30),
    )
    .await;
    fence(&broker, "erasure-a");
    wait_log(
        &log_b,
        "erased patients' state purged",
        1,
        Duration::from_secs(60),
    )
    .await;
    produce(
        &broker,
        &cfg_a.topics.raw,
        &[
            first[0].clone(),
            raw_record("two-bp2", "p-2", now_ms() - MIN / 2, bp(119, 77)),
        ],
    )
    .await;
    wait_enriched(&broker, &cfg_a, 1, 5).await;
    b.stop();

    let live = live_changelog(&broker, &cfg_a, 1).await;
    assert_eq!(
        keys_of(&live, "p-1"),
        Vec::<String>::new(),
        "p-1 left the changelog"
    );
    assert!(!keys_of(&live, "p-2").is_empty(), "p-2's state is kept");
    let out = published(&broker, &cfg_a, 1).await;
    assert_eq!(
        out.enriched,
        ["one-bp", "one-bp2", "one-rr", "two-bp", "two-bp2"]
    );
    assert!(
        out.dlq.is_empty(),
        "the re-sent reading of p-1 is dropped, not dead-lettered"
    );
}

/// The transaction that carries an erasure's purge is aborted (a new
/// instance joins and takes a partition): the state rebuilt from the
/// changelog, which predates the purge, is purged again, on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_whose_transaction_is_aborted_is_applied_again_on_restore() {
    let broker = start_broker().await;
    let mut cfg = child_config(&broker, Guarantee::ExactlyOnce, "erasure-abort-a");
    create_topics(&broker, &cfg, 2).await;
    register_patients(&broker, &cfg, &["p-1", "p-2"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = |name: &str| dir.path().join(name);

    // The patients' state committed on both partitions.
    let mut readings = stateful_readings("p-1", "p1a", Some(0));
    readings.extend(stateful_readings("p-1", "p1b", Some(1)));
    readings.extend(stateful_readings("p-2", "p2", Some(1)));
    produce(&broker, &cfg.topics.raw, &readings).await;
    let first = Instance::start(
        &write_config(&cfg, dir.path(), "first.toml"),
        &logs("first.log"),
    );
    wait_enriched(&broker, &cfg, 2, readings.len()).await;
    first.stop();
    let live = live_changelog(&broker, &cfg, 2).await;
    assert!(keys_of(&live, "p-1").len() >= 6, "both partitions hold p-1");

    // Long transactions, so the one with the purge is still open when B joins.
    cfg.processing.commit_interval_ms = 20_000;
    cfg.processing.transaction_timeout_ms = 40_000;
    let a_log = logs("a.log");
    let a = Instance::start(&write_config(&cfg, dir.path(), "a.toml"), &a_log);
    wait_log(
        &a_log,
        "assignment after rebalance partitions=[0, 1]",
        1,
        Duration::from_secs(60),
    )
    .await;
    wait_log(
        &a_log,
        "partition state restored",
        2,
        Duration::from_secs(30),
    )
    .await;
    erase_patient(&broker, &cfg, "p-1").await;
    wait_log(
        &a_log,
        "erased patients' state purged",
        1,
        Duration::from_secs(30),
    )
    .await;
    let mut cfg_b = cfg.clone();
    cfg_b.kafka.transactional_id = "erasure-abort-b".into();
    let b_log = logs("b.log");
    let b = Instance::start(&write_config(&cfg_b, dir.path(), "b.toml"), &b_log);
    wait_log(
        &a_log,
        "open transaction aborted on revocation",
        1,
        Duration::from_secs(60),
    )
    .await;
    // A restores the partition it kept, B the one it took: each purges it.
    wait_log(
        &a_log,
        "erased patients' state purged",
        2,
        Duration::from_secs(60),
    )
    .await;
    wait_log(
        &b_log,
        "erased patients' state purged",
        1,
        Duration::from_secs(60),
    )
    .await;
    b.stop();
    a.stop();

    let live = live_changelog(&broker, &cfg, 2).await;
    assert_eq!(
        keys_of(&live, "p-1"),
        Vec::<String>::new(),
        "p-1 left the changelog"
    );
    assert!(!keys_of(&live, "p-2").is_empty(), "p-2's state is kept");
}

/// The tombstone is gone from the patients topic (here: a new patients
/// topic without it, as after its `delete.retention.ms`): after a restart
/// the patient is still erased, their readings dropped and counted, not
/// dead-lettered as `unknown_patient`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_outlives_its_tombstone_across_a_restart() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    cfg.erasure.hash_key = Some(vitalstream::config::Secret::new("a-test-key-of-16+-chars"));
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-1", "p-2"]).await;
    erase_patient(&broker, &cfg, "p-1").await;
    let p = start_pipeline(cfg.clone());
    produce(
        &broker,
        &cfg.topics.raw,
        &[raw_record("r-1", "p-1", now_ms() - MIN, bp(120, 80))],
    )
    .await;
    p.wait_consumed(1, Duration::from_secs(60)).await;
    assert_eq!(Stats::get(&p.stats.erased), 1);
    p.stop().await.expect("clean stop");
    let erasures = cfg.topics.erasures_topic(&cfg.kafka.group_id);
    let records = read_topic(&broker, &erasures, 1, Duration::from_secs(1)).await;
    assert_eq!(records.len(), 1, "one erasure record");
    use rdkafka::message::Message;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(records[0].key().expect("key")),
        String::from_utf8_lossy(records[0].payload().expect("value"))
    );
    assert!(
        !text.contains("p-1"),
        "no patient id in the erasure record: {text}"
    );

    cfg.topics.patients = "vitals.patients.recreated".into();
    ensure_topics(
        &client(&broker),
        &[TopicSpec::compacted(&cfg.topics.patients, 1)],
    )
    .await
    .expect("topic");
    register_patients(&broker, &cfg, &["p-2"]).await;
    let p = start_pipeline(cfg.clone());
    produce(
        &broker,
        &cfg.topics.raw,
        &[
            raw_record("r-2", "p-1", now_ms() - MIN, bp(121, 80)),
            Rec::new("p-1", b"not avro".to_vec()),
            raw_record("r-3", "p-2", now_ms() - MIN, bp(122, 80)),
        ],
    )
    .await;
    p.wait_consumed(3, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");
    assert_eq!(
        (
            Stats::get(&stats.erased),
            Stats::get(&stats.enriched),
            stats.dlq_total()
        ),
        (2, 1, 0),
        "p-1 still erased after the restart"
    );
}

/// Erasures recorded under one `erasure.hash_key` match nothing under
/// another: an instance configured with a different key refuses to start,
/// naming both key fingerprints, instead of forgetting every erasure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_another_hash_key_refuses_to_start() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    cfg.erasure.hash_key = Some(vitalstream::config::Secret::new("the-first-key-16-chars"));
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-1"]).await;
    erase_patient(&broker, &cfg, "p-1").await;
    let p = start_pipeline(cfg.clone());
    let erasures = cfg.topics.erasures_topic(&cfg.kafka.group_id);
    read_topic(&broker, &erasures, 1, Duration::ZERO).await;
    p.stop().await.expect("clean stop");

    cfg.erasure.hash_key = Some(vitalstream::config::Secret::new("another-key-16-chars"));
    let err = start_pipeline(cfg.clone())
        .join()
        .await
        .expect_err("refused")
        .to_string();
    let first = PatientHasher::new(b"the-first-key-16-chars").key_id();
    let second = PatientHasher::new(b"another-key-16-chars").key_id();
    assert!(
        err.contains(&first) && err.contains(&second) && err.contains("erasure.hash_key"),
        "{err}"
    );
}
