//! The schema registry client against an in-test Confluent-REST registry
//! (DESIGN.md §1, §8): output schemas registered under `<topic>-value` with
//! the `RawReading` reference, the registry's ids written, foreign writer
//! ids of readings and profiles resolved, incompatible and unknown writers
//! dead-lettered, cached ids working while the registry is down, and
//! start-up failing clearly when it is unreachable or refuses.

mod common;

use std::time::Duration;

use common::registry::*;
use common::*;
use rdkafka::message::{Message, OwnedMessage};
use rust_decimal::Decimal;
use serde_json::Value;
use vitalstream::codec::{Codec, SchemaIds, framing, schemas};
use vitalstream::config::Config;
use vitalstream::model::{BloodPressure, Measurement};
use vitalstream::pipeline::{PipelineError, now_ms};
use vitalstream::registry::RegistryError;

fn bp(sys: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: 80,
        pulse_bpm: Some(70),
    })
}

/// `RawReading` with one more field at the end (a gateway's next version).
fn raw_reading_v2() -> String {
    let mut schema: Value = serde_json::from_str(schemas::RAW_READING_AVSC).expect("avsc");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "firmware", "type": "string", "default": ""}));
    schema.to_string()
}

/// `RawReading` without `device_model`, which the reader needs and has no
/// default for: not readable as the current schema.
fn raw_reading_incompatible() -> String {
    let mut schema: Value = serde_json::from_str(schemas::RAW_READING_AVSC).expect("avsc");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .retain(|f| f["name"] != "device_model");
    schema.to_string()
}

/// A reading framed under `id`, its datum followed by `extra` bytes (the
/// encoding of fields a newer writer appends).
fn reading_under(id: u32, reading_id: &str, patient: &str, extra: &[u8]) -> Rec {
    let reading = raw_reading(reading_id, patient, now_ms() - 1_000, bp(120));
    let mut buf = Vec::new();
    codec().encode_raw(&reading, &mut buf).expect("encode");
    let mut framed = Vec::new();
    framing::write_header(&mut framed, id);
    framed.extend_from_slice(&buf[framing::HEADER_LEN..]);
    framed.extend_from_slice(extra);
    Rec::new(patient, framed)
}

/// `patient`'s profile written under the registry id the patients'
/// producer got, its datum followed by `extra` bytes.
async fn publish_profile_under(
    broker: &Broker,
    cfg: &Config,
    id: u32,
    patient: &str,
    extra: &[u8],
) {
    let mut buf = Vec::new();
    codec()
        .encode_profile(&profile(patient), &mut buf)
        .expect("encode");
    let mut framed = Vec::new();
    framing::write_header(&mut framed, id);
    framed.extend_from_slice(&buf[framing::HEADER_LEN..]);
    framed.extend_from_slice(extra);
    produce(broker, &cfg.topics.patients, &[Rec::new(patient, framed)]).await;
}

/// `PatientProfile` with one more field at the end (the CRM's next version).
fn patient_profile_v2() -> String {
    let mut schema: Value = serde_json::from_str(schemas::PATIENT_PROFILE_AVSC).expect("avsc");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "crm_ref", "type": "string", "default": ""}));
    schema.to_string()
}

fn schema_id(msg: &OwnedMessage) -> u32 {
    framing::split(msg.payload().expect("value"))
        .expect("framed")
        .0
}

fn reading_ids(c: &Codec, msgs: &[OwnedMessage]) -> Vec<String> {
    let mut ids: Vec<String> = msgs
        .iter()
        .map(|m| {
            c.decode_enriched(m.payload().expect("value"))
                .expect("enriched decodes")
                .reading
                .reading_id
                .into_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_ids_are_written_and_foreign_writers_resolved() {
    let broker = start_broker().await;
    let registry = start_registry().await;
    // Other teams' schemas came first: no id is the static default.
    registry.register(
        "other-value",
        r#"{"type":"record","name":"Other","fields":[]}"#,
    );
    let gateway_id = registry.register("vitals.readings.raw-value", schemas::RAW_READING_AVSC);
    let crm_id = registry.register("vitals.patients-value", schemas::PATIENT_PROFILE_AVSC);
    let crm_v2 = registry.register("vitals.patients-value", &patient_profile_v2());
    let mut cfg = config(&broker);
    cfg.schema_registry.url = registry.url.clone();
    cfg.schema_registry.unavailable_timeout_ms = 1_000;
    create_topics(&broker, &cfg, 1).await;
    publish_profile_under(&broker, &cfg, crm_id, "p-1", &[]).await;
    // p-2's profile comes from the CRM's newer version: resolved too.
    publish_profile_under(&broker, &cfg, crm_v2, "p-2", &[0]).await;
    // p-3's from a version vitalstream cannot read: ignored (counted).
    let mut crm_broken: Value = serde_json::from_str(schemas::PATIENT_PROFILE_AVSC).expect("avsc");
    crm_broken["fields"]
        .as_array_mut()
        .expect("fields")
        .retain(|f| f["name"] != "height_cm");
    let crm_broken = registry.register("vitals.patients-value", &crm_broken.to_string());
    publish_profile_under(&broker, &cfg, crm_broken, "p-3", &[]).await;

    let p = start_pipeline(cfg.clone());
    produce(
        &broker,
        &cfg.topics.raw,
        &[reading_under(gateway_id, "r-same", "p-1", &[])],
    )
    .await;
    p.wait_consumed(1, Duration::from_secs(60)).await;

    // The gateway rolls out a new version, and a broken one, after start.
    let v2 = registry.register("vitals.readings.raw-value", &raw_reading_v2());
    let broken = registry.register("vitals.readings.raw-value", &raw_reading_incompatible());
    // "fw-1" as an Avro string: zig-zag length 4 = 0x08, then the bytes.
    let firmware = [&[0x08][..], b"fw-1"].concat();
    produce(
        &broker,
        &cfg.topics.raw,
        &[
            reading_under(v2, "r-v2", "p-2", &firmware),
            reading_under(broken, "r-broken", "p-1", &[]),
            reading_under(9_999, "r-unregistered", "p-1", &[]),
            reading_under(gateway_id, "r-p3", "p-3", &[]),
        ],
    )
    .await;
    p.wait_consumed(5, Duration::from_secs(60)).await;

    let (_, metrics) = http_get(p.http_addr().await, "/metrics").await;
    for series in [
        r#"vitalstream_schema_registry_lookups_total{result="resolved"}"#,
        r#"vitalstream_schema_registry_lookups_total{result="incompatible"}"#,
        r#"vitalstream_schema_registry_lookups_total{result="not_found"}"#,
        r#"vitalstream_schema_registry_requests_total{outcome="ok"}"#,
    ] {
        assert!(metrics.contains(series), "{series} in /metrics");
    }
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("vitalstream_schema_registry") && l.contains("9999")),
        "no schema id as a label"
    );

    // The registry goes away: cached writer ids keep working.
    registry.stop();
    produce(
        &broker,
        &cfg.topics.raw,
        &[
            reading_under(gateway_id, "r-same-2", "p-2", &[]),
            reading_under(v2, "r-v2-2", "p-1", &firmware),
        ],
    )
    .await;
    p.wait_consumed(7, Duration::from_secs(60)).await;
    // Committed, then a writer id never seen: with the registry down it
    // cannot be looked up, and the run stops rather than dead-lettering it.
    read_topic(&broker, &cfg.topics.enriched, 4, Duration::ZERO).await;
    produce(
        &broker,
        &cfg.topics.raw,
        &[reading_under(4_242, "r-new-id", "p-1", &[])],
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(60), p.join())
        .await
        .expect("stops within unavailable_timeout_ms")
        .expect_err("an unknown id while the registry is down");
    assert!(
        matches!(err, PipelineError::RegistryUnavailable(_)),
        "{err}"
    );
    assert_eq!(err.exit_code(), 4);
    assert!(err.to_string().contains("4242"), "{err}");

    let enriched_subject = registry.versions("vitals.readings.enriched-value");
    assert_eq!(enriched_subject.len(), 1, "EnrichedReading registered once");
    let enriched_id = enriched_subject[0];
    let references = registry.references(enriched_id);
    assert_eq!(
        references,
        serde_json::json!([{"name": "io.vitalstream.RawReading",
            "subject": "io.vitalstream.RawReading", "version": 1}]),
        "the RawReading reference is a registry reference"
    );
    assert_eq!(
        registry.versions("io.vitalstream.RawReading"),
        [gateway_id],
        "the reference target is the gateway's schema, under vitalstream's own subject"
    );
    assert_eq!(registry.versions("vitals.hrv.windows-value").len(), 1);
    assert_eq!(registry.versions("vitals.alerts-value").len(), 1);
    assert_eq!(
        registry.versions("vitals.readings.raw-value"),
        [gateway_id, v2, broken],
        "vitalstream never writes to the gateway's subject"
    );

    let out = read_topic(&broker, &cfg.topics.enriched, 4, Duration::from_secs(1)).await;
    assert!(
        out.iter().all(|m| schema_id(m) == enriched_id),
        "enriched records carry the registry's id"
    );
    let c = Codec::new(SchemaIds {
        enriched_reading: enriched_id,
        ..SchemaIds::default()
    })
    .expect("codec");
    assert_eq!(
        reading_ids(&c, &out),
        ["r-same", "r-same-2", "r-v2", "r-v2-2"],
        "the registry's writer ids are read, also while it is down"
    );
    let dlq = read_topic(&broker, &cfg.topics.dlq, 3, Duration::from_secs(1)).await;
    assert_eq!(dlq.len(), 3, "incompatible and unregistered writers, p-3");
    let reasons: Vec<(String, String)> = dlq
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(m.key().expect("key")).into_owned(),
                header(m, "reason").expect("reason"),
            )
        })
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|(_, r)| r == "unknown_schema")
            .count(),
        2,
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("p-3".into(), "unknown_patient".into())),
        "a profile written with an unreadable schema is not taken: {reasons:?}"
    );
    let dlq: Vec<OwnedMessage> = dlq
        .into_iter()
        .filter(|m| header(m, "reason").as_deref() == Some("unknown_schema"))
        .collect();
    let details: Vec<String> = dlq
        .iter()
        .map(|m| header(m, "detail").expect("detail"))
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains(&broken.to_string()) && d.contains("device_model")),
        "the incompatible writer is named with the reason: {details:?}"
    );
    assert!(details.iter().any(|d| d.contains("9999")), "{details:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_at_start_up_is_a_clear_error() {
    let mut cfg = Config::default();
    let reserved = closed_port();
    let port = reserved.port;
    cfg.schema_registry.url = format!("http://127.0.0.1:{port}");
    cfg.schema_registry.startup_timeout_ms = 500;
    cfg.http.enabled = false;
    let p = start_pipeline(cfg);
    let err = tokio::time::timeout(Duration::from_secs(30), p.join())
        .await
        .expect("start-up gives up within its timeout")
        .expect_err("no registry");
    assert!(
        matches!(
            err,
            PipelineError::SchemaRegistry(RegistryError::Unreachable { .. })
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 4);
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("schema_registry.url"),
        "names the registry and the setting: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_and_bearer_authentication_are_sent() {
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("api-key:api-secret")
    );
    let registry = start_registry_with_auth(Some(basic)).await;
    let mut cfg = Config::default();
    cfg.schema_registry.url = registry.url.clone();
    cfg.schema_registry.basic_auth_username = Some("api-key".into());
    cfg.schema_registry.basic_auth_password = Some(vitalstream::config::Secret::new("api-secret"));
    let (_, ids) = vitalstream::registry::connect(&cfg)
        .await
        .expect("basic auth accepted");
    assert_eq!(
        registry.versions("vitals.readings.enriched-value"),
        [ids.enriched_reading]
    );

    let registry = start_registry_with_auth(Some("Bearer tok-1".into())).await;
    let mut cfg = Config::default();
    cfg.schema_registry.url = registry.url.clone();
    cfg.schema_registry.bearer_token = Some(vitalstream::config::Secret::new("tok-1"));
    vitalstream::registry::connect(&cfg)
        .await
        .expect("bearer token accepted");
    cfg.schema_registry.bearer_token = Some(vitalstream::config::Secret::new("tok-2"));
    let err = vitalstream::registry::connect(&cfg)
        .await
        .expect_err("wrong token refused");
    assert!(matches!(err, RegistryError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.to_string().contains("tok-2"), "no secret in the error");
}

#[test]
fn decimals_survive_a_resolved_writer() {
    // A writer schema with an extra field resolves; decimal values keep
    // every digit through resolution (apache-avro's resolution checks
    // decimal byte lengths, see codec::evolution).
    let codec = codec();
    let v2 = raw_reading_v2();
    assert_eq!(
        codec.learn_writer(vitalstream::codec::InputKind::RawReading, 77, &v2, &[]),
        Ok(None)
    );
    let reading = raw_reading(
        "r-1",
        "p-1",
        1_700_000_000_000,
        Measurement::SpO2 {
            pct: Decimal::new(975, 1),
        },
    );
    let mut buf = Vec::new();
    codec.encode_raw(&reading, &mut buf).expect("encode");
    let mut framed = Vec::new();
    framing::write_header(&mut framed, 77);
    framed.extend_from_slice(&buf[framing::HEADER_LEN..]);
    framed.push(0); // firmware ""
    assert_eq!(codec.decode_raw(&framed).expect("resolved"), reading);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registry_is_verified_with_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (registry, ca) = start_tls_registry(dir.path()).await;
    let mut cfg = Config::default();
    cfg.schema_registry.url = registry.url.clone();
    cfg.schema_registry.startup_timeout_ms = 300;
    let err = vitalstream::registry::connect(&cfg)
        .await
        .expect_err("a self-signed certificate is not trusted by default");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "the error says why: {err}"
    );
    cfg.schema_registry.ssl_ca_location = Some(ca);
    let (_, ids) = vitalstream::registry::connect(&cfg)
        .await
        .expect("trusted through schema_registry.ssl_ca_location");
    assert_eq!(
        registry.versions("vitals.alerts-value"),
        [ids.clinician_alert]
    );
}
