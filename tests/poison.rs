//! Poison input (DESIGN.md §3), through tansu: a burst of invalid records
//! above `validation.max_invalid_ratio` stops the consumer with a clear
//! error and exit code 3 and commits nothing from the batch that tripped
//! the limit on; below the limit every bad record reaches the DLQ once with
//! its reason and every good one the enriched topic once.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::faults::committed;
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use tokio::time::Instant;
use vitalstream::config::{Config, Guarantee};
use vitalstream::model::{BloodPressure, BodyScan, HeartRhythm, Measurement, RhythmSource};
use vitalstream::pipeline::now_ms;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

fn bp(sys: i32, dia: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: Some(70),
    })
}

/// The group's committed offset of `topic`/`partition`, read from the broker.
async fn group_offset(broker: &Broker, group: &str, topic: &str, partition: i32) -> Option<i64> {
    let (cfg, topic) = (
        client(broker).set("group.id", group).clone(),
        topic.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = cfg.create().expect("offset reader");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, partition);
        let got = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets from the broker");
        match got.find_partition(&topic, partition).map(|e| e.offset()) {
            Some(Offset::Offset(n)) => Some(n),
            _ => None,
        }
    })
    .await
    .expect("offset task")
}

/// The number after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> i64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {text}"));
    text[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("number after {marker:?} in {text}"))
}

/// Good readings, then a burst of garbage: the guard (window 100, limit
/// 50 %) trips at the 51st bad record. Returns nothing; asserts the exit
/// code, the error, the committed offset and the visible outputs.
async fn burst_stops_the_consumer(guarantee: Guarantee) {
    const GOOD: usize = 300;
    const BAD: usize = 200;
    let broker = start_broker().await;
    let mut cfg: Config = config(&broker);
    cfg.kafka.group_id = format!("poison-{}", guarantee.as_str());
    create_topics(&broker, &cfg, 1).await;
    register_numbered(&broker, &cfg, 10).await;
    let now = now_ms();
    let good: Vec<Rec> = (0..GOOD)
        .map(|i| {
            raw_record(
                &format!("good-{i}"),
                &format!("p-{}", i % 10),
                now - 60_000,
                bp(118, 76),
            )
        })
        .collect();
    produce(&broker, &cfg.topics.raw, &good).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("poison.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\nsession_timeout_ms = 6000\n\
             transactional_id = \"poison-1\"\nchangelog_reader = \"log_markers\"\n\n[processing]\nguarantee = \"{}\"\n\
             batch_max_wait_ms = 20\ncommit_interval_ms = 100\n\n[validation]\n\
             max_invalid_ratio = 0.5\ninvalid_ratio_window = 100\n\n[http]\nenabled = false\n",
            broker.bootstrap,
            cfg.kafka.group_id,
            guarantee.as_str()
        ),
    )
    .expect("config");
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("log"))
        .spawn()
        .expect("start vitalstream");

    // The good readings are processed and committed first.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let at = group_offset(&broker, &cfg.kafka.group_id, &cfg.topics.raw, 0).await;
        if at == Some(GOOD as i64) {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "vitalstream exited early: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "good readings committed within 90 s (at {at:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The burst: undecodable records.
    let bad: Vec<Rec> = (0..BAD)
        .map(|i| {
            Rec::new(
                &format!("p-{}", i % 10),
                format!("garbage {i}").into_bytes(),
            )
        })
        .collect();
    produce(&broker, &cfg.topics.raw, &bad).await;
    let status = wait_exit(&mut child, Duration::from_secs(60), "of the burst").await;
    let error = error_line(&stderr);
    println!("{error}");
    assert_eq!(status.code(), Some(3), "invalid-ratio exit code; {error}");
    assert!(
        error.contains("of the last 100 readings were invalid")
            && error.contains("validation.max_invalid_ratio"),
        "the error says what happened and what to do: {error}"
    );
    let tripped_at = number_after(&error, "tripped at partition 0 offset ");
    let batch_first = number_after(&error, "nothing from offset ");
    // Window of 100 full of good readings: the 51st bad one trips it.
    assert_eq!(
        tripped_at,
        (GOOD + 50) as i64,
        "tripped at the 51st bad record"
    );
    assert!((GOOD as i64..=tripped_at).contains(&batch_first));

    let committed_at = group_offset(&broker, &cfg.kafka.group_id, &cfg.topics.raw, 0)
        .await
        .expect("an offset is committed");
    println!(
        "{}: tripped at offset {tripped_at}, batch from {batch_first}, committed offset {committed_at}",
        guarantee.as_str()
    );
    assert!(
        (GOOD as i64..=batch_first).contains(&committed_at),
        "committed offset {committed_at} lies between the last good reading and the first \
         offset {batch_first} of the batch that tripped the guard"
    );

    // Every good reading enriched exactly once.
    let codec = codec();
    let mut enriched: Vec<String> = committed(&broker, &cfg.topics.enriched, 1)
        .await
        .into_iter()
        .map(|(_, r)| {
            codec
                .decode_enriched(r.value.as_deref().expect("value"))
                .expect("decodes")
                .reading
                .reading_id
                .into_owned()
        })
        .collect();
    enriched.sort();
    let mut want: Vec<String> = (0..GOOD).map(|i| format!("good-{i}")).collect();
    want.sort();
    assert_eq!(enriched, want, "every good reading enriched once");
    let dlq_offsets: Vec<i64> = committed(&broker, &cfg.topics.dlq, 1)
        .await
        .into_iter()
        .map(|(_, r)| {
            let offset = r
                .headers
                .iter()
                .find(|(k, _)| k == "source_offset")
                .and_then(|(_, v)| v.as_deref())
                .expect("source_offset header");
            String::from_utf8_lossy(offset).parse().expect("offset")
        })
        .collect();
    if guarantee == Guarantee::ExactlyOnce {
        // Nothing of the failing batch (nor of anything uncommitted) is
        // visible to a read_committed reader.
        assert!(
            dlq_offsets.iter().all(|o| *o < committed_at),
            "DLQ records visible only below the committed offset {committed_at}: {dlq_offsets:?}"
        );
        let mut distinct = dlq_offsets.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), dlq_offsets.len(), "no DLQ record twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_above_the_invalid_ratio_stops_with_exit_code_3_committing_nothing_of_it_exactly_once()
 {
    burst_stops_the_consumer(Guarantee::ExactlyOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_above_the_invalid_ratio_stops_with_exit_code_3_committing_nothing_of_it_at_least_once()
 {
    burst_stops_the_consumer(Guarantee::AtLeastOnce).await;
}

/// What a bad record should turn into: DLQ reason and a word the detail names.
struct Bad {
    rec: Rec,
    reason: &'static str,
    detail: Option<&'static str>,
}

fn bad_records(i: usize, now: i64) -> Vec<Bad> {
    let patient = format!("p-{}", i % 10);
    let valid = raw_record(&format!("trunc-{i}"), &patient, now - 60_000, bp(120, 80));
    let payload = valid.payload.clone().expect("payload");
    let mut wrong_schema = payload.clone();
    wrong_schema[1..5].copy_from_slice(&4242u32.to_be_bytes());
    let truncated = payload[..payload.len() - 3].to_vec();
    let oor =
        |id: &str, m: Measurement| raw_record(&format!("{id}-{i}"), &patient, now - 60_000, m);
    vec![
        Bad {
            rec: Rec::new(&patient, vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37]),
            reason: "malformed",
            detail: None,
        },
        Bad {
            rec: Rec::new(&patient, wrong_schema),
            reason: "unknown_schema",
            detail: None,
        },
        Bad {
            rec: Rec::new(&patient, truncated),
            reason: "malformed",
            detail: None,
        },
        Bad {
            rec: oor("oor-sys", bp(340, 80)),
            reason: "out_of_range",
            detail: Some("systolic_mmhg"),
        },
        Bad {
            rec: oor(
                "oor-weight",
                Measurement::BodyScan(BodyScan {
                    weight_kg: Decimal::new(512_000, 3),
                    resistance_ohm: Decimal::new(45_000, 2),
                    reactance_ohm: Decimal::new(5_500, 2),
                    segments: vec![],
                }),
            ),
            reason: "out_of_range",
            detail: Some("weight_kg"),
        },
        Bad {
            rec: oor(
                "oor-spo2",
                Measurement::SpO2 {
                    pct: Decimal::new(305, 1),
                },
            ),
            reason: "out_of_range",
            detail: Some("spo2_pct"),
        },
        Bad {
            rec: oor(
                "oor-temp",
                Measurement::Temperature {
                    celsius: Decimal::new(5_120, 2),
                },
            ),
            reason: "out_of_range",
            detail: Some("temperature_c"),
        },
        Bad {
            rec: oor(
                "oor-rr",
                // No plausible interval at all (one odd beat among normal
                // ones is kept, flagged: DESIGN.md §3).
                Measurement::HeartRhythm(HeartRhythm {
                    rr_intervals_ms: vec![90, 4_100, 120],
                    source: RhythmSource::Ppg,
                }),
            ),
            reason: "out_of_range",
            detail: Some("rr_intervals_ms"),
        },
    ]
}

/// Below the limit (window 50, limit 50 %, a quarter of the input bad,
/// interleaved) every record ends in exactly one place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_invalid_ratio_every_bad_record_reaches_the_dlq_once_with_its_reason() {
    const PARTITIONS: i32 = 2;
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    cfg.kafka.group_id = "poison-below".into();
    cfg.validation.invalid_ratio_window = 50;
    cfg.validation.max_invalid_ratio = 0.5;
    create_topics(&broker, &cfg, PARTITIONS).await;
    register_numbered(&broker, &cfg, 10).await;
    let now = now_ms();
    // 30 rounds of 24 good readings and the 8 kinds of bad record.
    let mut recs: Vec<Rec> = Vec::new();
    let mut expect: Vec<Option<(&'static str, Option<&'static str>)>> = Vec::new();
    let mut good_ids = Vec::new();
    for round in 0..30 {
        let bad = bad_records(round, now);
        for (j, b) in bad.into_iter().enumerate() {
            for k in 0..3 {
                let id = format!("good-{round}-{j}-{k}");
                recs.push(raw_record(
                    &id,
                    &format!("p-{}", (round + j + k) % 10),
                    now - 60_000,
                    bp(118, 76),
                ));
                expect.push(None);
                good_ids.push(id);
            }
            recs.push(b.rec);
            expect.push(Some((b.reason, b.detail)));
        }
    }
    // Each group of three good records and one bad goes to one partition,
    // alternately: a quarter of either partition is bad, however the
    // pipeline interleaves their fetches.
    for (i, r) in recs.iter_mut().enumerate() {
        r.partition = Some(((i / 4) % 2) as i32);
    }
    let coords = produce(&broker, &cfg.topics.raw, &recs).await;
    let where_of: BTreeMap<(i32, i64), usize> =
        coords.iter().enumerate().map(|(i, c)| (*c, i)).collect();

    let p = start_pipeline(cfg.clone());
    wait_until(
        Duration::from_secs(90),
        "all records consumed",
        async || {
            assert!(!p.is_finished(), "the pipeline stopped below the limit");
            vitalstream::telemetry::Stats::get(&p.stats.consumed) >= recs.len() as u64
        },
    )
    .await;
    // A graceful stop finishes and commits the batch in flight.
    p.stop()
        .await
        .expect("no stop: the bad share stayed below the limit");

    let mut landed = vec![Vec::<&str>::new(); recs.len()];
    let codec = codec();
    for (_, r) in committed(&broker, &cfg.topics.enriched, PARTITIONS).await {
        let e = codec
            .decode_enriched(r.value.as_deref().expect("value"))
            .expect("decodes");
        let i = where_of[&(e.provenance.partition, e.provenance.offset)];
        assert_eq!(e.reading.reading_id, good_ids_at(&good_ids, &expect, i));
        landed[i].push("enriched");
    }
    for (_, r) in committed(&broker, &cfg.topics.dlq, PARTITIONS).await {
        let h = |name: &str| -> String {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| panic!("DLQ header {name}"))
        };
        let at = (
            h("source_partition").parse().expect("partition"),
            h("source_offset").parse().expect("offset"),
        );
        let i = where_of[&at];
        let (reason, detail) = expect[i].unwrap_or_else(|| panic!("good record {i} dead-lettered"));
        assert_eq!(h("reason"), reason, "record {i}");
        if let Some(field) = detail {
            assert!(h("detail").contains(field), "detail of {i} names {field}");
        }
        assert_eq!(r.value, recs[i].payload, "original bytes of {i}");
        landed[i].push("dlq");
    }
    let misplaced: Vec<(usize, &Vec<&str>)> = landed
        .iter()
        .enumerate()
        .filter(|(_, l)| l.len() != 1)
        .collect();
    assert!(
        misplaced.is_empty(),
        "every input in exactly one place; not so: {:?}",
        &misplaced[..misplaced.len().min(10)]
    );
    let bad = expect.iter().filter(|e| e.is_some()).count();
    println!(
        "{} records: {} enriched, {bad} dead-lettered once each",
        recs.len(),
        recs.len() - bad
    );
}

/// The reading id of good record `i`.
fn good_ids_at<'a>(
    good_ids: &'a [String],
    expect: &[Option<(&'static str, Option<&'static str>)>],
    i: usize,
) -> &'a str {
    assert!(expect[i].is_none(), "bad record {i} was enriched");
    let nth = expect[..i].iter().filter(|e| e.is_none()).count();
    &good_ids[nth]
}
