//! TLS end to end: vitalstream with `[kafka.security] protocol = "ssl"` and a
//! CA file, against tansu behind a TLS-terminating proxy whose certificate
//! the test's own CA signed (tests/common/tls.rs). tansu cannot serve TLS or
//! SASL itself; SASL is covered without a broker (docs/security.md).

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::tls::*;
use common::*;
use rust_decimal::Decimal;
use vitalstream::codec::Codec;
use vitalstream::kafka::{TopicSpec, ensure_topics};
use vitalstream::model::{BloodPressure, Measurement};
use vitalstream::pipeline::now_ms;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_flow_end_to_end_over_tls_verified_by_a_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("vitalstream test CA");
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    let (broker, proxy) = start_broker_behind_tls(&ca).await;
    let mut cfg = config(&broker);
    cfg.kafka.security = ssl_security(&ca_file);
    // The production changelog reader: the log-markers compatibility mode
    // speaks plaintext only (and a fresh changelog has no aborted data).
    cfg.kafka.changelog_reader = vitalstream::config::ChangelogReader::ReadCommitted;
    let client = tls_client(&broker, &ca_file);
    ensure_topics(
        &client,
        // Two partitions: each is restored before its first record, with
        // no transaction of the pipeline's own open (which would hold the
        // group's committed offsets unstable).
        &TopicSpec::all(&cfg.topics, &cfg.kafka.group_id, 2),
    )
    .await
    .expect("create topics over TLS");

    let patients = ["tls-p-0", "tls-p-1", "tls-p-2"];
    let codec = Codec::new(cfg.schemas).expect("codec");
    let profiles: Vec<Rec> = patients
        .iter()
        .map(|id| {
            let mut buf = Vec::new();
            codec
                .encode_profile(&profile(id), &mut buf)
                .expect("encode");
            Rec::new(id, buf)
        })
        .collect();
    produce_with(&client, &cfg.topics.patients, &profiles).await;
    let start = now_ms() - 60_000;
    let readings: Vec<Rec> = (0..12)
        .map(|i| {
            let m = if i % 2 == 0 {
                Measurement::BloodPressure(BloodPressure {
                    systolic_mmhg: 120 + i,
                    diastolic_mmhg: 80,
                    pulse_bpm: Some(70),
                })
            } else {
                Measurement::SpO2 {
                    pct: Decimal::new(970 + i64::from(i), 1),
                }
            };
            let patient = patients[usize::try_from(i).expect("small") % patients.len()];
            raw_record(
                &format!("tls-r-{i}"),
                patient,
                start + i64::from(i) * 1000,
                m,
            )
        })
        .collect();
    produce_with(&client, &cfg.topics.raw, &readings).await;

    let pipeline = start_pipeline(cfg.clone());
    pipeline
        .wait_consumed(readings.len() as u64, Duration::from_secs(60))
        .await;
    let enriched = read_with(&client, &cfg.topics.enriched, readings.len()).await;
    pipeline.stop().await.expect("clean stop");

    let mut ids = enriched_ids(&enriched);
    ids.sort();
    let mut want: Vec<String> = (0..12).map(|i| format!("tls-r-{i}")).collect();
    want.sort();
    assert_eq!(ids, want, "every reading enriched, read back over TLS");
    assert!(
        proxy.handshakes.load(Ordering::Relaxed) > 0,
        "clients went through the TLS proxy"
    );
    assert_eq!(
        proxy.failed_handshakes.load(Ordering::Relaxed),
        0,
        "no handshake failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_ca_fails_start_up_naming_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("vitalstream test CA");
    let (broker, proxy) = start_broker_behind_tls(&ca).await;
    let other = TestCa::new("some other CA");
    let wrong_ca = other.write_pem(dir.path(), "other-ca.pem");
    let file = dir.path().join("vitalstream.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = {:?}\nstartup_timeout_ms = 4000\n\
             [kafka.security]\nprotocol = \"ssl\"\nssl_ca_location = {:?}\n\
             [http]\nlisten_addr = \"127.0.0.1:0\"\n",
            broker.bootstrap, wrong_ca
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
    let status = wait_exit(
        &mut child,
        Duration::from_secs(30),
        "after a failed TLS check",
    )
    .await;
    let text = std::fs::read_to_string(&stderr).expect("stderr");
    assert_eq!(
        status.code(),
        Some(4),
        "exit code of an unreachable broker: {text}"
    );
    let error = error_line(&stderr);
    println!("start-up error: {error}");
    assert!(
        error.contains("certificate verify failed") && error.contains("TLS"),
        "the error names TLS certificate verification: {error}\n{text}\nhandshakes ok {} failed {}",
        proxy.handshakes.load(Ordering::Relaxed),
        proxy.failed_handshakes.load(Ordering::Relaxed)
    );
    assert!(
        proxy.failed_handshakes.load(Ordering::Relaxed) > 0,
        "the client broke off the handshake"
    );
    assert_eq!(proxy.handshakes.load(Ordering::Relaxed), 0);
}
