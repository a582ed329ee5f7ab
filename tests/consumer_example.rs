//! `examples/alert_consumer.py`, the consumer docs/consuming.md describes,
//! run as an alert consumer would run it: the official Confluent Python
//! client with read_committed, against tansu and the pipeline.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use rdkafka::message::Message;
use rust_decimal::Decimal;
use vitalstream::model::Measurement;
use vitalstream::pipeline::now_ms;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/alert_consumer.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_prints_each_alert_once_with_exact_decimals() {
    let python = require_python_modules(&["confluent_kafka", "fastavro"]);
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-fever"]).await;
    let p = start_pipeline(cfg.clone());
    let fever = raw_record(
        "r-fever-1",
        "p-fever",
        now_ms() - 60_000,
        Measurement::Temperature {
            celsius: Decimal::new(391, 1),
        },
    );
    produce(&broker, &cfg.topics.raw, &[fever]).await;
    let alerts = read_topic(&broker, &cfg.topics.alerts, 1, Duration::from_millis(500)).await;
    assert_eq!(alerts.len(), 1, "one fever alert published");
    p.stop().await.expect("clean stop");

    // The same alert again, as an at_least_once run repeats it after a crash.
    let repeat = Rec::new(
        "p-fever",
        alerts[0].payload().expect("alert value").to_vec(),
    );
    produce(&broker, &cfg.topics.alerts, &[repeat]).await;

    let out = tokio::process::Command::new(&python)
        .arg(EXAMPLE)
        .args(["--brokers", &broker.bootstrap])
        .args(["--group", "example-consumer", "--from-beginning"])
        .args(["--max-messages", "2", "--idle-timeout-s", "45"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the example consumer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "example exits 0:\n{stdout}\n{stderr}");
    let printed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is one JSON alert"))
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "the repeat is dropped:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("duplicate alert_id"),
        "the repeat is reported: {stderr}"
    );
    let alert = &printed[0];
    assert_eq!(alert["patient_id"], "p-fever");
    assert_eq!(alert["rule"], "fever");
    assert_eq!(alert["severity"], "WARNING");
    // Exact decimals at the schema's scale, as strings: never 39.1 as a float.
    assert_eq!(alert["observed"], "39.100");
    assert_eq!(alert["threshold"], "38.000");
    assert_eq!(
        alert["evidence_reading_ids"],
        serde_json::json!(["r-fever-1"])
    );
    assert_eq!(alert["care_team"], serde_json::json!(["care-team-1"]));
    assert!(
        alert["note"]
            .as_str()
            .is_some_and(|n| n.contains("not a diagnosis")),
        "{alert}"
    );
    assert!(!alert["alert_id"].as_str().unwrap_or_default().is_empty());
}
