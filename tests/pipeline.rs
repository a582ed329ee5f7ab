//! End-to-end behaviour of the pipeline against a real Kafka-protocol broker.

mod common;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use rdkafka::message::Message;
use rust_decimal::Decimal;
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;
use vitalstream::telemetry::Stats;

fn reading(id: &str, patient: &str, measurement: Measurement) -> RawReading<'static> {
    let now = now_ms();
    RawReading {
        reading_id: Cow::Owned(id.to_owned()),
        device_id: Cow::Borrowed("dev-1"),
        device_model: Cow::Borrowed("Body Scan"),
        device_kind: DeviceKind::Scale,
        patient_id: Cow::Owned(patient.to_owned()),
        measured_at_ms: now - 1_000,
        received_at_ms: now,
        attribution: Attribution::Device,
        measurement,
    }
}

fn bp(sys: i32, dia: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: Some(70),
    })
}

fn every_kind() -> Vec<Measurement> {
    vec![
        Measurement::BodyScan(BodyScan {
            weight_kg: Decimal::new(80_000, 3),
            resistance_ohm: Decimal::new(45_000, 2),
            reactance_ohm: Decimal::new(5_500, 2),
            segments: vec![],
        }),
        Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: vec![800, 810, 790],
            source: RhythmSource::Ecg,
        }),
        bp(128, 78),
        Measurement::SpO2 {
            pct: Decimal::new(975, 1),
        },
        Measurement::Temperature {
            celsius: Decimal::new(3_680, 2),
        },
        Measurement::Ecg(EcgResult {
            classification: EcgClassification::SinusRhythm,
            heart_rate_bpm: 72,
        }),
    ]
}

fn encode(r: &RawReading<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    codec().encode_raw(r, &mut buf).expect("encode");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_readings_arrive_enriched_with_provenance() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;
    register_numbered(&broker, &cfg, 10).await;
    let readings: Vec<RawReading<'static>> = every_kind()
        .into_iter()
        .enumerate()
        .map(|(i, m)| reading(&format!("r-{i}"), &format!("p-{i}"), m))
        .collect();
    let recs: Vec<Rec> = readings
        .iter()
        .map(|r| Rec::new(&r.patient_id, encode(r)))
        .collect();
    let coords = produce(&broker, &cfg.topics.raw, &recs).await;

    let p = start_pipeline(cfg.clone());
    p.wait_consumed(readings.len() as u64, Duration::from_secs(60))
        .await;
    p.stop().await.expect("clean stop");

    let out = read_topic(
        &broker,
        &cfg.topics.enriched,
        readings.len(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        out.len(),
        readings.len(),
        "one enriched record per valid reading"
    );
    let c = codec();
    for msg in &out {
        let e = c
            .decode_enriched(msg.payload().expect("value"))
            .expect("enriched decodes");
        let i = readings
            .iter()
            .position(|r| r.reading_id == e.reading.reading_id)
            .expect("known reading");
        assert_eq!(e.reading, readings[i], "reading carried through unchanged");
        assert_eq!(
            msg.key(),
            Some(readings[i].patient_id.as_bytes()),
            "keyed by patient"
        );
        assert_eq!(e.provenance.topic, cfg.topics.raw);
        assert_eq!(
            (e.provenance.partition, e.provenance.offset),
            coords[i],
            "provenance = source coordinates"
        );
        assert!(e.loinc_code.is_some(), "every kind here has a LOINC code");
        let expected_category = match &e.reading.measurement {
            Measurement::BloodPressure(_) => Some(BpCategory::Elevated), // 128/78
            _ => None,
        };
        assert_eq!(
            e.bp_category, expected_category,
            "ACC/AHA category on BP readings only"
        );
    }
    let dlq = read_topic(&broker, &cfg.topics.dlq, 0, Duration::from_secs(1)).await;
    assert!(dlq.is_empty(), "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_reaches_the_dlq_with_reason_detail_and_original_bytes() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    register_numbered(&broker, &cfg, 10).await;

    let good = encode(&reading("ok-1", "p-1", bp(120, 70)));
    let mut unknown_schema = good.clone();
    unknown_schema[1..5].copy_from_slice(&999u32.to_be_bytes());
    let mut future = reading("fut-1", "p-1", bp(120, 70));
    future.measured_at_ms = now_ms() + 3_600_000;
    let old_and_new = [
        (
            Rec::new("p-1", vec![0, 0, 0, 0, 1, 0xFF, 0xFF]),
            "malformed",
            None,
        ),
        (
            Rec::new("p-1", b"not avro at all".to_vec()),
            "malformed",
            None,
        ),
        (
            Rec {
                key: Some(b"p-1".to_vec()),
                payload: None,
                partition: None,
            },
            "malformed",
            None,
        ),
        (Rec::new("p-1", unknown_schema), "unknown_schema", None),
        (
            Rec::new("p-1", encode(&reading("oor-1", "p-1", bp(320, 80)))),
            "out_of_range",
            Some("systolic_mmhg"),
        ),
        (
            Rec::new(
                "p-1",
                encode(&reading(
                    "oor-2",
                    "p-1",
                    Measurement::SpO2 {
                        pct: Decimal::new(300, 1),
                    },
                )),
            ),
            "out_of_range",
            Some("spo2_pct"),
        ),
        (
            Rec::new("p-2", encode(&reading("km-1", "p-1", bp(120, 70)))),
            "key_mismatch",
            None,
        ),
        (Rec::new("p-1", encode(&future)), "future_timestamp", None),
        (
            Rec::new(
                "p-unregistered",
                encode(&reading("up-1", "p-unregistered", bp(120, 70))),
            ),
            "unknown_patient",
            None,
        ),
    ];
    let mut recs: Vec<Rec> = old_and_new.iter().map(|(r, _, _)| r.clone()).collect();
    recs.push(Rec::new("p-1", good));
    let coords = produce(&broker, &cfg.topics.raw, &recs).await;

    let p = start_pipeline(cfg.clone());
    p.wait_consumed(recs.len() as u64, Duration::from_secs(60))
        .await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");

    let dlq = read_topic(
        &broker,
        &cfg.topics.dlq,
        old_and_new.len(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        dlq.len(),
        old_and_new.len(),
        "every bad record dead-lettered once"
    );
    for msg in &dlq {
        let offset: i64 = header(msg, "source_offset")
            .expect("source_offset")
            .parse()
            .expect("number");
        let i = coords
            .iter()
            .position(|c| c.1 == offset)
            .expect("offset of a produced record");
        let (rec, reason, field) = &old_and_new[i];
        assert_eq!(
            header(msg, "reason").as_deref(),
            Some(*reason),
            "record {i}"
        );
        assert_eq!(
            header(msg, "source_topic").as_deref(),
            Some(cfg.topics.raw.as_str())
        );
        assert_eq!(header(msg, "source_partition").as_deref(), Some("0"));
        let detail = header(msg, "detail").expect("detail");
        if let Some(f) = field {
            assert!(detail.contains(f), "detail {detail:?} names {f}");
        }
        assert!(!detail.contains("p-1"), "no patient id in the detail");
        assert_eq!(
            msg.payload().map(<[u8]>::to_vec),
            rec.payload,
            "original bytes kept"
        );
        assert_eq!(msg.key().map(<[u8]>::to_vec), rec.key, "original key kept");
    }
    let enriched = read_topic(&broker, &cfg.topics.enriched, 1, Duration::from_secs(1)).await;
    assert_eq!(enriched.len(), 1, "the one good reading is enriched");
    assert_eq!(stats.dlq_total(), old_and_new.len() as u64);
    assert_eq!(Stats::get(&stats.enriched), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_dropped_and_counts_add_up() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 3).await;
    register_numbered(&broker, &cfg, 10).await;
    let mut recs = Vec::new();
    let mut unique = HashSet::new();
    for i in 0..60 {
        let patient = format!("p-{}", i % 7);
        let r = reading(&format!("r-{i}"), &patient, bp(110 + i % 30, 70));
        let rec = Rec::new(&patient, encode(&r));
        unique.insert(r.reading_id.to_string());
        recs.push(rec.clone());
        if i % 4 == 0 {
            recs.push(rec); // gateway retry: same reading, same key
        }
    }
    recs.push(Rec::new("p-1", vec![1, 2, 3]));
    let p = start_pipeline(cfg.clone());
    produce(&broker, &cfg.topics.raw, &recs).await;
    p.wait_consumed(recs.len() as u64, Duration::from_secs(60))
        .await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");

    assert_eq!(Stats::get(&stats.duplicates), 15);
    assert_eq!(
        Stats::get(&stats.enriched) + Stats::get(&stats.duplicates) + stats.dlq_total(),
        recs.len() as u64,
        "every record ends in exactly one place"
    );
    let out = read_topic(
        &broker,
        &cfg.topics.enriched,
        unique.len(),
        Duration::from_secs(2),
    )
    .await;
    let ids = enriched_ids(&out);
    assert_eq!(
        ids.len(),
        unique.len(),
        "no duplicate reaches the enriched topic"
    );
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), unique);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_committed_offsets_without_loss() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;
    register_numbered(&broker, &cfg, 10).await;
    let batch = |from: usize, to: usize| -> Vec<Rec> {
        (from..to)
            .map(|i| {
                let patient = format!("p-{}", i % 5);
                Rec::new(
                    &patient,
                    encode(&reading(&format!("r-{i}"), &patient, bp(120, 75))),
                )
            })
            .collect()
    };
    produce(&broker, &cfg.topics.raw, &batch(0, 40)).await;
    let first = start_pipeline(cfg.clone());
    first.wait_consumed(40, Duration::from_secs(60)).await;
    first.stop().await.expect("clean stop");

    // Written while no pipeline runs; the next run must pick up exactly here.
    produce(&broker, &cfg.topics.raw, &batch(40, 100)).await;
    let second = start_pipeline(cfg.clone());
    second.wait_consumed(60, Duration::from_secs(60)).await;
    // Every new reading enriched: a re-read record would have come before
    // them in its partition, so the count below is final.
    wait_until(
        Duration::from_secs(60),
        "the 60 new readings enriched",
        async || Stats::get(&second.stats.enriched) >= 60,
    )
    .await;
    let consumed_again = Stats::get(&second.stats.consumed);
    second.stop().await.expect("clean stop");
    assert_eq!(
        consumed_again, 60,
        "the second run re-read nothing the first committed"
    );

    let out = read_topic(&broker, &cfg.topics.enriched, 100, Duration::from_secs(2)).await;
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for id in enriched_ids(&out) {
        *per_id.entry(id).or_default() += 1;
    }
    assert_eq!(per_id.len(), 100, "no reading lost across the restart");
    assert!(
        per_id.values().all(|&n| n == 1),
        "graceful stop commits: nothing re-emitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_pauses_consumption_and_loses_nothing() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    // Batches far larger than the in-flight limit: the queue fills mid-batch.
    cfg.processing.batch_max_messages = 2_000;
    cfg.processing.batch_max_wait_ms = 1_000;
    cfg.processing.max_in_flight = 50;
    create_topics(&broker, &cfg, 2).await;
    register_numbered(&broker, &cfg, 10).await;
    let recs: Vec<Rec> = (0..600)
        .map(|i| {
            let patient = format!("p-{}", i % 10);
            Rec::new(
                &patient,
                encode(&reading(&format!("r-{i}"), &patient, bp(100 + i % 40, 70))),
            )
        })
        .collect();
    produce(&broker, &cfg.topics.raw, &recs).await;
    let p = start_pipeline(cfg.clone());
    p.wait_consumed(recs.len() as u64, Duration::from_secs(120))
        .await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");
    let pauses = Stats::get(&stats.backpressure_pauses);
    println!("{} readings, {pauses} backpressure pauses", recs.len());
    assert!(pauses > 0, "consumption paused while the queue was full");
    assert_eq!(Stats::get(&stats.enriched), recs.len() as u64);
    let out = read_topic(
        &broker,
        &cfg.topics.enriched,
        recs.len(),
        Duration::from_secs(2),
    )
    .await;
    let ids: HashSet<String> = enriched_ids(&out).into_iter().collect();
    assert_eq!(
        out.len(),
        recs.len(),
        "each reading once, after {pauses} pauses"
    );
    assert_eq!(ids.len(), recs.len(), "no reading lost or repeated");
}
