//! Durable per-partition state (DESIGN.md §6) through a real broker: what
//! the processor holds survives a restart via the changelog topic.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::message::Message;
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;
use vitalstream::telemetry::Stats;

const MIN: i64 = 60_000;

/// One minute of beats at 1000 ms.
fn minute_of_beats() -> Measurement {
    Measurement::HeartRhythm(HeartRhythm {
        rr_intervals_ms: vec![1_000; 60],
        source: RhythmSource::Ppg,
    })
}

fn bp(sys: i32, dia: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: Some(80),
    })
}

/// What one run did.
struct Totals {
    enriched: u64,
    duplicates: u64,
    alerts: u64,
    hrv_windows: u64,
}

/// Produces `recs`, runs the pipeline until it consumed them, stops it.
async fn run_once(cfg: &vitalstream::config::Config, broker: &Broker, recs: &[Rec]) -> Totals {
    produce(broker, &cfg.topics.raw, recs).await;
    let p = start_pipeline(cfg.clone());
    p.wait_consumed(recs.len() as u64, Duration::from_secs(60))
        .await;
    let s = p.stats.clone();
    p.stop().await.expect("clean stop");
    Totals {
        enriched: Stats::get(&s.enriched),
        duplicates: Stats::get(&s.duplicates),
        alerts: s.alerts_total(),
        hrv_windows: s.hrv_windows(HrvQuality::Ok) + s.hrv_windows(HrvQuality::Insufficient),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_waiting_alerts_and_dedup_survive_a_restart() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;
    register_patients(&broker, &cfg, &["p-1"]).await;
    // A 5-minute window boundary an hour ago.
    let t = (now_ms() - 60 * MIN).div_euclid(5 * MIN) * 5 * MIN;

    // First run: three minutes of the window, and a crisis reading whose
    // repeat comes only after the restart.
    let first: Vec<Rec> = (0..3)
        .map(|i| raw_record(&format!("rr-{i}"), "p-1", t + i * MIN, minute_of_beats()))
        .chain([raw_record("bp-1", "p-1", t + 10 * MIN, bp(186, 124))])
        .collect();
    let before = run_once(&cfg, &broker, &first).await;
    assert_eq!(before.enriched, 4);
    assert_eq!(
        before.alerts, 0,
        "the crisis reading is waiting for its repeat"
    );
    assert_eq!(before.hrv_windows, 0, "the window is still open");

    // Second run: the rest of the window and beyond (the watermark passes
    // the window's end), the repeat, and a re-send of a first-run reading.
    let second: Vec<Rec> = (3..8)
        .map(|i| raw_record(&format!("rr-{i}"), "p-1", t + i * MIN, minute_of_beats()))
        .chain([
            raw_record("bp-2", "p-1", t + 12 * MIN, bp(183, 121)),
            first[0].clone(),
        ])
        .collect();
    let after = run_once(&cfg, &broker, &second).await;
    assert_eq!(after.duplicates, 1, "dedup keys survived the restart");
    assert_eq!(after.enriched, 6);

    let windows = read_topic(&broker, &cfg.topics.hrv_windows, 1, Duration::from_secs(2)).await;
    let c = codec();
    let first_window = windows
        .iter()
        .map(|m| {
            c.decode_hrv_window(m.payload().expect("value"))
                .expect("window")
        })
        .find(|w| w.window_start_ms == t)
        .expect("the window spanning the restart closed");
    // Beats at t+1 s … t+299 s; the one at t+300 s opens the next window.
    assert_eq!(first_window.n_beats, 299, "beats from both runs");
    assert_eq!(
        first_window.reading_ids,
        ["rr-0", "rr-1", "rr-2", "rr-3", "rr-4"]
    );
    assert_eq!(first_window.quality, HrvQuality::Ok);

    let alerts = read_topic(&broker, &cfg.topics.alerts, 1, Duration::from_secs(2)).await;
    assert_eq!(alerts.len(), 1);
    let alert = c
        .decode_alert(alerts[0].payload().expect("value"))
        .expect("alert");
    assert_eq!(
        (alert.rule, alert.severity),
        (AlertRule::BpCrisis, Severity::Critical)
    );
    assert_eq!(alert.evidence_reading_ids, ["bp-1", "bp-2"]);
}

/// Waits until `p` holds `n` partitions of the raw topic.
async fn wait_assigned(p: &RunningPipeline, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while p.stats.health.assigned_partitions() != n {
        assert!(!p.is_finished(), "pipeline stopped early");
        assert!(
            std::time::Instant::now() < deadline,
            "{n} partitions assigned within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Scale-out (DESIGN.md §6): an idle instance whose partition is revoked,
/// moved on by another owner and then handed back restores it from the
/// changelog instead of carrying on with the state it held before. The
/// stale state would not know the reading the other owner processed, and
/// its re-send would be published a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_handed_back_is_restored_with_what_its_other_owner_did() {
    let broker = start_broker().await;
    let mut cfg_b = config(&broker);
    cfg_b.kafka.client_id = "vitalstream-b".into();
    cfg_b.kafka.transactional_id = "handback-b".into();
    // Eager: every partition is revoked on a rebalance, and the range
    // assignor decides who gets it (cooperative-sticky would leave it with B).
    cfg_b.kafka.rebalancing = vitalstream::config::Rebalancing::Eager;
    // Member ids begin with the client id, and the range assignor gives a
    // single partition to the first member in id order: A takes it from B
    // while both are in the group.
    let mut cfg_a = cfg_b.clone();
    cfg_a.kafka.client_id = "vitalstream-a".into();
    cfg_a.kafka.transactional_id = "handback-a".into();
    create_topics(&broker, &cfg_b, 1).await;
    register_patients(&broker, &cfg_b, &["p-1"]).await;
    let t = now_ms() - 60 * MIN;
    let first = raw_record("bp-1", "p-1", t, bp(118, 76));
    let second = raw_record("bp-2", "p-1", t + MIN, bp(119, 77));

    // B alone: it holds the partition's state with bp-1 in it.
    let b = start_pipeline(cfg_b.clone());
    produce(&broker, &cfg_b.topics.raw, &[first]).await;
    b.wait_consumed(1, Duration::from_secs(60)).await;
    // A joins: the partition is revoked from B while B is idle (no open
    // transaction) and goes to A, which processes bp-2 and leaves.
    let a = start_pipeline(cfg_a.clone());
    wait_assigned(&a, 1).await;
    produce(&broker, &cfg_b.topics.raw, std::slice::from_ref(&second)).await;
    a.wait_consumed(1, Duration::from_secs(60)).await;
    let a_stats = a.stats.clone();
    a.stop().await.expect("clean stop");
    assert_eq!(Stats::get(&a_stats.enriched), 1, "A published bp-2");

    // Back with B, the gateway re-sends bp-2: a duplicate.
    wait_assigned(&b, 1).await;
    produce(&broker, &cfg_b.topics.raw, &[second]).await;
    b.wait_consumed(2, Duration::from_secs(60)).await;
    let b_stats = b.stats.clone();
    b.stop().await.expect("clean stop");
    assert_eq!(
        (
            Stats::get(&b_stats.enriched),
            Stats::get(&b_stats.duplicates)
        ),
        (1, 1),
        "B published bp-1 and dropped the re-sent bp-2 that A had published"
    );
    let out = read_topic(&broker, &cfg_b.topics.enriched, 2, Duration::from_secs(2)).await;
    assert_eq!(enriched_ids(&out), ["bp-1", "bp-2"]);
}

/// DESIGN.md §6, a provably complete restore: when the newest readable
/// state is older than the group's committed input offset (its
/// transaction's state not readable yet: another producer's open
/// transaction ahead of it on Kafka, commit markers not yet written), the
/// restore waits, not ready and processing nothing, until the state of the
/// committed offset comes.
///
/// The open transaction itself cannot stage this on tansu 0.6: there a
/// transaction committed behind another producer's open one stays
/// invisible everywhere, its committed input offsets included, so a
/// restart sees a consistent older state and re-reads (see
/// `tests/broker_limits.rs`). The stale marker stands in for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_waits_for_the_state_of_the_committed_offset() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use vitalstream::process::{DedupMeta, HrvMeta};
    use vitalstream::state::{PartitionMeta, StateKey, encode};

    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-1"]).await;
    let t = now_ms() - 60 * MIN;
    let first = raw_record("bp-1", "p-1", t, bp(118, 76));
    let second = raw_record("bp-2", "p-1", t + MIN, bp(119, 77));
    run_once(&cfg, &broker, &[first, second.clone()]).await;

    // The newest marker readable says offset 1, the group committed 2.
    let marker = |next_offset| {
        let meta = PartitionMeta {
            next_offset: Some(next_offset),
            dedup: DedupMeta {
                max_event_ms: t + MIN,
                evicted_up_to_ms: i64::MIN,
            },
            hrv: HrvMeta::default(),
        };
        encode(&meta).expect("encodes")
    };
    let producer: FutureProducer = client(&broker).create().expect("producer");
    let state_topic = cfg.topics.state_topic(&cfg.kafka.group_id);
    let key = StateKey::Meta.encode(0);
    let write = |value: Vec<u8>| {
        let (producer, state_topic, key) = (&producer, &state_topic, &key);
        async move {
            let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(state_topic)
                .partition(0)
                .key(&key[..])
                .payload(&value[..]);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .expect("written");
        }
    };
    write(marker(1)).await;

    produce(&broker, &cfg.topics.raw, &[second]).await;
    let p = start_pipeline(cfg.clone());
    let addr = p.http_addr().await;
    wait_assigned(&p, 1).await;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        assert!(!p.is_finished(), "the restore waits, it does not fail");
        assert_eq!(Stats::get(&p.stats.consumed), 0, "nothing processed");
        assert_eq!(http_get(addr, "/readyz").await.0, 503, "not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The committed offset's state becomes readable.
    write(marker(2)).await;
    p.wait_consumed(1, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");
    assert_eq!(
        (Stats::get(&stats.enriched), Stats::get(&stats.duplicates)),
        (0, 1),
        "the re-sent bp-2 is a duplicate"
    );
}

/// The production reader (`kafka.changelog_reader = "read_committed"`, a
/// librdkafka consumer) restores the state of the committed offset too.
/// Safe on tansu here because no transaction of this test aborts (tansu
/// would hand aborted records to it, DESIGN.md §8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_librdkafka_reader_restores_the_committed_state() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    cfg.kafka.changelog_reader = vitalstream::config::ChangelogReader::ReadCommitted;
    create_topics(&broker, &cfg, 2).await;
    register_patients(&broker, &cfg, &["p-1", "p-2"]).await;
    let t = now_ms() - 60 * MIN;
    let first = [
        raw_record("bp-1", "p-1", t, bp(118, 76)),
        raw_record("bp-2", "p-2", t, bp(121, 79)),
    ];
    let before = run_once(&cfg, &broker, &first).await;
    assert_eq!(before.enriched, 2);
    let after = run_once(&cfg, &broker, &first).await;
    assert_eq!(
        (after.enriched, after.duplicates),
        (0, 2),
        "both re-sends known"
    );
}
