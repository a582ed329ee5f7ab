//! The operator tools as an operator runs them (the `vitalstream` binary)
//! against tansu: `tail`, `dlq redrive`, `reset`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use serde_json::Value;
use vitalstream::config::Config;
use vitalstream::model::{BloodPressure, Measurement};
use vitalstream::pipeline::now_ms;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

/// A config file pointing the binary at `cfg`'s broker and group.
fn config_file(dir: &Path, cfg: &Config) -> PathBuf {
    let path = dir.join("vitalstream.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\nsession_timeout_ms = 6000\n",
            cfg.kafka.brokers, cfg.kafka.group_id
        ),
    )
    .expect("write config");
    path
}

/// Runs the binary; (exit code, stdout, stderr). Fails the test after 60 s.
async fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BIN)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("vitalstream {args:?} did not finish within 60 s"))
    .expect("run binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vitalstream tail <topic> --from-beginning --idle-timeout 3s <extra>`,
/// one parsed JSON value per line.
async fn tail(config: &Path, topic: &str, extra: &[&str]) -> Vec<Value> {
    let config = config.display().to_string();
    let mut args = vec![
        "tail",
        topic,
        "--config",
        &config,
        "--from-beginning",
        "--idle-timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run(&args).await;
    assert_eq!(code, Some(0), "tail {topic}: {stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn scan(id: &str, patient: &str) -> Rec {
    raw_record(
        id,
        patient,
        now_ms() - 1_000,
        Measurement::BodyScan(vitalstream::model::BodyScan {
            weight_kg: Decimal::new(80_125, 3),
            resistance_ohm: Decimal::new(45_000, 2),
            reactance_ohm: Decimal::new(5_500, 2),
            segments: vec![],
        }),
    )
}

fn bp(id: &str, patient: &str) -> Rec {
    raw_record(
        id,
        patient,
        now_ms() - 1_000,
        Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 121,
            diastolic_mmhg: 79,
            pulse_bpm: Some(64),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_outputs_and_dead_letters_as_json_lines() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;
    register_patients(&broker, &cfg, &["p-1", "p-2"]).await;
    let unknown = bp("r-unknown", "p-new");
    produce(
        &broker,
        &cfg.topics.raw,
        &[scan("r-1", "p-1"), bp("r-2", "p-2"), unknown.clone()],
    )
    .await;
    let p = start_pipeline(cfg.clone());
    p.wait_consumed(3, Duration::from_secs(60)).await;
    p.stop().await.expect("clean stop");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), &cfg);
    let enriched = tail(&config, &cfg.topics.enriched, &[]).await;
    assert_eq!(enriched.len(), 2, "{enriched:?}");
    let scan = enriched
        .iter()
        .find(|l| l["key"] == "p-1")
        .expect("p-1's reading");
    assert_eq!(scan["topic"], cfg.topics.enriched);
    assert_eq!(scan["schema_id"], cfg.schemas.enriched_reading);
    let value = &scan["value"];
    assert_eq!(value["reading"]["reading_id"], "r-1");
    assert_eq!(
        value["reading"]["measurement"]["BodyScan"]["weight_kg"], "80.125",
        "decimals are exact strings: {value}"
    );
    let bmi = value["body_composition"]["bmi"]
        .as_str()
        .expect("BMI as a string");
    assert!(bmi.starts_with("24.7"), "{bmi}");

    let only_p2 = tail(&config, &cfg.topics.enriched, &["--patient", "p-2"]).await;
    assert_eq!(only_p2.len(), 1);
    assert_eq!(only_p2[0]["value"]["reading"]["reading_id"], "r-2");
    assert_eq!(
        tail(&config, &cfg.topics.enriched, &["--max", "1"])
            .await
            .len(),
        1
    );

    let dlq = tail(&config, &cfg.topics.dlq, &[]).await;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0]["key"], "p-new");
    assert_eq!(dlq[0]["headers"]["reason"], "unknown_patient");
    assert_eq!(dlq[0]["headers"]["source_topic"], cfg.topics.raw);
    use base64::Engine;
    let original = base64::engine::general_purpose::STANDARD
        .decode(dlq[0]["original_base64"].as_str().expect("base64"))
        .expect("valid base64");
    assert_eq!(Some(original), unknown.payload, "the original bytes");
    assert_eq!(dlq[0]["original"]["reading_id"], "r-unknown", "and decoded");

    // Live: only what arrives after the start. Records keep arriving
    // until the tail has printed one.
    let config_arg = config.display().to_string();
    let topic = cfg.topics.dlq.clone();
    let mut live = tokio::spawn(async move {
        run(&[
            "tail",
            &topic,
            "--config",
            &config_arg,
            "--max",
            "1",
            "--idle-timeout",
            "30s",
        ])
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let (code, stdout, stderr) = loop {
        produce(
            &broker,
            &cfg.topics.dlq,
            &[Rec::new("p-live", b"x".to_vec())],
        )
        .await;
        tokio::select! {
            done = &mut live => break done.expect("live tail"),
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live tail printed nothing"
        );
    };
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 1, "--max 1: {stdout}");
    assert_eq!(lines[0]["key"], "p-live", "only new records: {stdout}");

    // The raw topic decodes too (any topic with Confluent-framed Avro).
    let raw = tail(&config, &cfg.topics.raw, &["--patient", "p-1"]).await;
    assert_eq!(raw[0]["value"]["reading_id"], "r-1", "{raw:?}");
}

/// `vitalstream dlq redrive --reason unknown_patient`; its report line.
async fn redrive(config: &Path) -> String {
    let config = config.display().to_string();
    let (code, stdout, stderr) = run(&[
        "dlq",
        "redrive",
        "--reason",
        "unknown_patient",
        "--config",
        &config,
        "--idle-timeout",
        "2s",
    ])
    .await;
    assert_eq!(code, Some(0), "redrive: {stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_republishes_readings_whose_profile_arrived_once() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    // One partition: the DLQ order is the order written.
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-1"]).await;
    produce(
        &broker,
        &cfg.topics.raw,
        &[
            bp("r-never", "p-never"),
            bp("r-late-1", "p-late"),
            scan("r-late-2", "p-late"),
            bp("r-1", "p-1"),
        ],
    )
    .await;
    let p = start_pipeline(cfg.clone());
    p.wait_consumed(4, Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), &cfg);

    // Before the profile exists nothing can succeed.
    let report = redrive(&config).await;
    assert!(
        report.contains("redriven 0, still without a profile 3"),
        "{report}"
    );
    // The onboarding race resolves: p-late's profile arrives.
    register_patients(&broker, &cfg, &["p-late"]).await;
    let report = redrive(&config).await;
    assert!(
        report.contains("redriven 2, still without a profile 1"),
        "{report}"
    );
    p.wait_consumed(6, Duration::from_secs(60)).await;
    // A re-run re-publishes nothing twice.
    let report = redrive(&config).await;
    assert!(report.contains("redriven 0"), "{report}");
    assert!(report.contains("already redriven 2"), "{report}");
    p.stop().await.expect("clean stop");
    assert_eq!(
        raw_records(&broker, &cfg).await,
        6,
        "the raw topic holds the four readings and the two re-driven ones"
    );

    let enriched = read_topic(&broker, &cfg.topics.enriched, 3, Duration::from_secs(1)).await;
    let mut ids = enriched_ids(&enriched);
    ids.sort();
    assert_eq!(ids, ["r-1", "r-late-1", "r-late-2"], "each enriched once");
    let dlq = read_topic(&broker, &cfg.topics.dlq, 3, Duration::from_secs(1)).await;
    assert_eq!(
        dlq.len(),
        3,
        "the DLQ keeps its records (retention removes them)"
    );
}

/// Records on the raw topic.
async fn raw_records(broker: &Broker, cfg: &Config) -> usize {
    read_topic(broker, &cfg.topics.raw, 6, Duration::from_secs(1))
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_replays_the_input_instead_of_deduplicating_it() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-1"]).await;
    produce(
        &broker,
        &cfg.topics.raw,
        &[bp("r-1", "p-1"), scan("r-2", "p-1")],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), &cfg);
    let config = config.display().to_string();

    let p = start_pipeline(cfg.clone());
    p.wait_consumed(2, Duration::from_secs(60)).await;
    let (code, _, stderr) = run(&["reset", "--config", &config]).await;
    assert_eq!(code, Some(3), "refused while the group is active: {stderr}");
    assert!(stderr.contains("active member"), "{stderr}");
    p.stop().await.expect("clean stop");

    let (code, stdout, stderr) = run(&["reset", "--config", &config, "--dry-run"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("partition 0: offset 2 -> 0"), "{stdout}");
    assert!(stdout.contains("dry run"), "{stdout}");
    // By time: everything was written after 2000. (A time after the last
    // record, which Kafka answers with the end, tansu 0.6 answers with the
    // first offset of the batch: not checked here.)
    for (at, expected) in [("2000-01-01T00:00:00Z", "offset 2 -> 0")] {
        let (code, stdout, stderr) = run(&[
            "reset",
            "--config",
            &config,
            "--dry-run",
            "--to-datetime",
            at,
        ])
        .await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains(expected), "--to-datetime {at}: {stdout}");
    }
    let (code, stdout, stderr) = run(&["reset", "--config", &config]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("partition 0: offset 2 -> 0"), "{stdout}");
    assert!(
        !stdout.contains("state changelog keys cleared: 0"),
        "the dedup state is cleared: {stdout}"
    );

    // The replay reprocesses: both readings are enriched again, none is a
    // duplicate.
    let p = start_pipeline(cfg.clone());
    p.wait_consumed(2, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");
    assert_eq!(vitalstream::telemetry::Stats::get(&stats.duplicates), 0);
    let enriched = read_topic(&broker, &cfg.topics.enriched, 4, Duration::from_secs(1)).await;
    let mut ids = enriched_ids(&enriched);
    ids.sort();
    assert_eq!(
        ids,
        ["r-1", "r-1", "r-2", "r-2"],
        "republished, not deduplicated"
    );
}
