//! Interoperability through a schema registry with the official Confluent
//! Python client (DESIGN.md §8): its `AvroSerializer` writes profiles and
//! readings with the registry's ids (one reading with a newer version of
//! `RawReading` registered under a new id), vitalstream processes them, and
//! its `AvroDeserializer` reads vitalstream's enriched outputs, resolving
//! the registered `RawReading` reference. Runs tests/interop/confluent_registry.py
//! with the test tools' Python (`.venv-test`, see scripts/test.sh).

mod common;

use std::path::Path;
use std::time::Duration;

use common::registry::start_registry;
use common::*;
use serde_json::Value;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/confluent_registry.py"
);

/// Runs the script with `args`; its stdout. Fails the test on a non-zero exit.
async fn python(args: &[&str]) -> String {
    let interpreter = require_python_modules(&["confluent_kafka.schema_registry.avro", "fastavro"]);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&interpreter)
            .arg(SCRIPT)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finishes within 120 s")
    .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "confluent_registry.py {args:?} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_python_client_writes_and_reads_through_the_registry() {
    let broker = start_broker().await;
    let registry = start_registry().await;
    // Another team's schema first: no id is one of the static defaults.
    registry.register(
        "other-value",
        r#"{"type":"record","name":"Other","fields":[]}"#,
    );
    let mut cfg = config(&broker);
    cfg.schema_registry.url = registry.url.clone();
    create_topics(&broker, &cfg, 2).await;
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let schemas = schemas.display().to_string();

    let written = python(&[
        "produce",
        "--bootstrap",
        &broker.bootstrap,
        "--registry",
        &registry.url,
        "--schemas",
        &schemas,
        "--raw-topic",
        &cfg.topics.raw,
        "--patients-topic",
        &cfg.topics.patients,
    ])
    .await;
    let ids: Value = serde_json::from_str(written.trim()).expect("ids as JSON");
    let newest_raw = ids["raw"].as_u64().expect("raw id");
    assert!(
        registry
            .versions(&format!("{}-value", cfg.topics.raw))
            .len()
            == 2,
        "the Python serializer registered two versions of RawReading"
    );

    let p = start_pipeline(cfg.clone());
    p.wait_consumed(3, Duration::from_secs(60)).await;
    p.stop().await.expect("clean stop");
    let dlq = read_topic(&broker, &cfg.topics.dlq, 0, Duration::from_millis(500)).await;
    assert!(dlq.is_empty(), "nothing dead-lettered: {:?}", dlq.len());

    let read = python(&[
        "consume",
        "--bootstrap",
        &broker.bootstrap,
        "--registry",
        &registry.url,
        "--topic",
        &cfg.topics.enriched,
        "--expect",
        "3",
    ])
    .await;
    let records: Vec<Value> = read
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 3, "{read}");
    let enriched_id = registry.versions(&format!("{}-value", cfg.topics.enriched))[0];
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r["value"]["reading"]["reading_id"] == id)
            .unwrap_or_else(|| panic!("{id} in {read}"))
    };
    for r in &records {
        assert_eq!(r["schema_id"], enriched_id, "vitalstream's registry id");
    }
    let scan = &by_id("py-r-scan")["value"];
    // The Python client decodes decimals to Decimal: printed exactly.
    assert_eq!(scan["reading"]["measurement"]["weight_kg"], "80.125");
    assert_eq!(scan["loinc_code"], "29463-7");
    assert!(
        scan["body_composition"]["bmi"]
            .as_str()
            .is_some_and(|b| b.starts_with("24.7")),
        "{scan}"
    );
    let bp = &by_id("py-r-bp")["value"];
    assert_eq!(bp["bp_category"], "ELEVATED");
    let v2 = &by_id("py-r-v2")["value"];
    assert_eq!(
        v2["reading"]["measurement"]["spo2_pct"], "97.5",
        "the reading written with the newer schema (id {newest_raw}) was resolved"
    );
}
