//! The `vitalstream` binary as an operator runs it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

#[test]
fn unknown_config_key_is_rejected_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[kafka]\nbrokers = \"127.0.0.1:1\"\nbatch_sise = 10\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("batch_sise"),
        "stderr names the key: {stderr}"
    );
}

/// A Service named `vitalstream` makes the kubelet inject these into every
/// pod of its namespace; they are not configuration and must not stop start-up.
const KUBERNETES_SERVICE_ENV: [(&str, &str); 7] = [
    ("VITALSTREAM_PORT", "tcp://10.0.0.1:9464"),
    ("VITALSTREAM_SERVICE_HOST", "10.0.0.1"),
    ("VITALSTREAM_SERVICE_PORT", "9464"),
    ("VITALSTREAM_SERVICE_PORT_METRICS", "9464"),
    ("VITALSTREAM_PORT_9464_TCP", "tcp://10.0.0.1:9464"),
    ("VITALSTREAM_PORT_9464_TCP_PROTO", "tcp"),
    ("VITALSTREAM_PORT_9464_TCP_ADDR", "10.0.0.1"),
];

#[test]
fn kubernetes_service_variables_do_not_break_start_up() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/config/vitalstream.toml"
    );
    let (code, stdout, stderr) = run_bin(
        &["config", "check", "--config", config],
        &KUBERNETES_SERVICE_ENV,
    );
    assert_eq!(code, Some(0), "config check exits 0:\n{stdout}{stderr}");
    // Nested variables still override the file next to the injected ones.
    let mut env = KUBERNETES_SERVICE_ENV.to_vec();
    env.push(("VITALSTREAM_KAFKA__BROKERS", "kafka-0.kafka:9092"));
    let (code, stdout, stderr) = run_bin(&["config", "dump", "--config", config], &env);
    assert_eq!(code, Some(0), "config dump exits 0:\n{stderr}");
    assert!(
        stdout.contains("brokers = \"kafka-0.kafka:9092\""),
        "the nested override applies:\n{stdout}"
    );
}

#[test]
fn a_single_underscore_after_the_section_is_rejected_naming_the_right_variable() {
    let (code, _, stderr) = run_bin(
        &["config", "check"],
        &[("VITALSTREAM_KAFKA_BROKERS", "kafka:9092")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("VITALSTREAM_KAFKA__BROKERS"),
        "names the intended variable: {stderr}"
    );
}

#[test]
fn schemas_prints_json_for_a_registry() {
    let (code, stdout, stderr) = run_bin(&["schemas"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let all: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON value");
    let names: Vec<&str> = all
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "ClinicianAlert",
            "EnrichedReading",
            "HrvWindow",
            "PatientProfile",
            "RawReading"
        ]
    );
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/raw_reading.avsc"
        ))
        .expect("schema file"),
    )
    .expect("schema file is JSON");
    assert_eq!(all["RawReading"], file, "the file's schema, unchanged");

    let (code, stdout, stderr) = run_bin(&["schemas", "--name", "RawReading"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let one: serde_json::Value = serde_json::from_str(&stdout).expect("one schema as JSON");
    assert_eq!(one, file);

    let (code, _, stderr) = run_bin(&["schemas", "--name", "Reading"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("RawReading"), "lists the names: {stderr}");
}

#[test]
fn replication_factor_below_one_is_refused() {
    for cmd in ["run", "loadgen"] {
        let (code, _, stderr) = run_bin(&[cmd, "--replication-factor", "0"], &[]);
        assert_eq!(code, Some(2), "{cmd}: {stderr}");
        assert!(stderr.contains("replication-factor"), "{cmd}: {stderr}");
    }
}

/// `loadgen --config` writes to the file's `[topics]` with its `[schemas]` ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_uses_topics_and_schema_ids_from_the_config() {
    let broker = start_broker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("loadgen.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{}\"\n\
             [topics]\nraw = \"gw.readings\"\npatients = \"gw.patients\"\n\
             [schemas]\nraw_reading = 41\npatient_profile = 42\n",
            broker.bootstrap
        ),
    )
    .expect("write config");
    let out = tokio::process::Command::new(BIN)
        .args(["loadgen", "--config"])
        .arg(&path)
        .args([
            "--create-topics",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
            "--patients",
            "5",
            "--count",
            "20",
            "--malformed-ratio",
            "0",
            "--duration",
            "60s",
        ])
        .output()
        .await
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen exits 0:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("to gw.patients"), "{stdout}");
    let schema_id = |m: &rdkafka::message::OwnedMessage| {
        use rdkafka::Message;
        let v = m.payload().expect("a value");
        u32::from_be_bytes([v[1], v[2], v[3], v[4]])
    };
    let readings = read_topic(&broker, "gw.readings", 20, Duration::from_millis(200)).await;
    assert_eq!(readings.len(), 20);
    assert!(
        readings.iter().all(|m| schema_id(m) == 41),
        "raw_reading id 41"
    );
    // The simulated patients plus the scripted alert scenarios' patients.
    let published: usize = stdout
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("`published N patient profiles` first");
    let profiles = read_topic(
        &broker,
        "gw.patients",
        published,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(profiles.len(), published);
    assert!(
        profiles.iter().all(|m| schema_id(m) == 42),
        "patient_profile id 42"
    );
}

/// `vitalstream healthcheck ARGS` with `env`: (exit code, stdout, stderr).
async fn healthcheck(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .expect("run healthcheck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_by_the_health_of_the_configured_listener() {
    let reserved = closed_port();
    let closed = format!("127.0.0.1:{}", reserved.port);
    let (code, _, stderr) = healthcheck(&["--addr", &closed], &[]).await;
    assert_eq!(code, Some(1), "nothing listening: {stderr}");
    assert!(stderr.contains("unhealthy"), "{stderr}");

    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    let p = start_pipeline(cfg);
    let bound = p.http_addr().await;
    // As in a container: the listener is bound to every interface and the
    // check finds it through the same setting.
    let env = [(
        "VITALSTREAM_HTTP__LISTEN_ADDR",
        format!("0.0.0.0:{}", bound.port()),
    )];
    let (code, _, stderr) = healthcheck(&["--live"], &env).await;
    assert_eq!(code, Some(0), "/healthz answers 200: {stderr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, stdout, stderr) = healthcheck(&[], &env).await;
        if code == Some(0) {
            assert!(stdout.contains("ready"), "{stdout}");
            break;
        }
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("503"),
            "not ready yet, with the reason: {stderr}"
        );
        assert!(Instant::now() < deadline, "ready within 30 s: {stderr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.stop().await.expect("clean stop");
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "run",
        "demo",
        "loadgen",
        "healthcheck",
        "config",
        "schemas",
        "tail",
        "reset",
        "dlq",
    ] {
        let out = Command::new(BIN)
            .args([cmd, "--help"])
            .output()
            .expect("run binary");
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd} --help prints usage"
        );
    }
}

const SASL_SCRAM: &str = "[kafka.security]\nprotocol = \"sasl_ssl\"\n\
    sasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"vitalstream\"\n";

/// Runs the binary; (exit code, stdout + stderr).
fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_hidden(secret: &str, stdout: &str, stderr: &str) {
    assert!(!stdout.contains(secret), "secret in stdout:\n{stdout}");
    assert!(!stderr.contains(secret), "secret in stderr:\n{stderr}");
}

#[test]
fn config_dump_redacts_a_password_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("sasl-password");
    std::fs::write(&pw, "file-secret-Kq7\n").expect("write");
    let path = dir.path().join("vitalstream.toml");
    std::fs::write(
        &path,
        format!(
            "{SASL_SCRAM}sasl_password_file = {:?}\n\
             [kafka.librdkafka]\n\"ssl.keystore.password\" = \"inline-secret-Zx3\"\n\
             \"ssl.key.password\" = {{ env = \"VS_TEST_KEY_PW\" }}\n",
            pw.display().to_string()
        ),
    )
    .expect("write");
    let path = path.display().to_string();
    let (code, stdout, stderr) = run_bin(
        &["config", "dump", "--config", &path],
        &[("VS_TEST_KEY_PW", "env-secret-Jw9")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    for secret in ["file-secret-Kq7", "inline-secret-Zx3", "env-secret-Jw9"] {
        assert_hidden(secret, &stdout, &stderr);
    }
    assert!(stdout.contains("[redacted]"), "{stdout}");
    assert!(
        stdout.contains("sasl-password"),
        "the file is named: {stdout}"
    );
    assert!(
        stdout.contains("VS_TEST_KEY_PW"),
        "the variable is named: {stdout}"
    );
    assert!(stdout.contains("SCRAM-SHA-512"), "{stdout}");
    let (code, stdout, stderr) = run_bin(
        &["config", "check", "--config", &path],
        &[("VS_TEST_KEY_PW", "env-secret-Jw9")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_hidden("file-secret-Kq7", &stdout, &stderr);
}

#[test]
fn config_dump_redacts_a_password_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vitalstream.toml");
    std::fs::write(&path, SASL_SCRAM).expect("write");
    let path = path.display().to_string();
    // Digits only: taken verbatim, not parsed into a number (which would
    // fail to load, quoting it).
    let secret = "00731946285";
    let (code, stdout, stderr) = run_bin(
        &["config", "dump", "--config", &path],
        &[("VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD", secret)],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_hidden(secret, &stdout, &stderr);
    assert!(
        stdout.contains("sasl_password = \"[redacted]\""),
        "{stdout}"
    );
}

#[test]
fn help_never_shows_a_secret_from_the_environment() {
    let secret = "help-secret-Vb2";
    let env = [
        ("VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD", secret),
        ("VITALSTREAM_KAFKA__SECURITY__SSL_KEY_PASSWORD", secret),
    ];
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["loadgen", "--help"],
        &["config", "dump", "--help"],
        &["config", "check", "--help"],
    ] {
        let (code, stdout, stderr) = run_bin(args, &env);
        assert_eq!(code, Some(0), "{args:?}");
        assert_hidden(secret, &stdout, &stderr);
    }
}

#[test]
fn a_missing_password_file_fails_naming_the_file_not_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("not-mounted").join("sasl-password");
    let path = dir.path().join("vitalstream.toml");
    std::fs::write(
        &path,
        format!(
            "{SASL_SCRAM}sasl_password_file = {:?}\n\
             [kafka.librdkafka]\n\"sasl.oauthbearer.client.secret\" = \"inline-secret-Qp4\"\n",
            missing.display().to_string()
        ),
    )
    .expect("write");
    let path = path.display().to_string();
    for command in ["run", "config check", "config dump"] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend(["--config", &path]);
        let (code, stdout, stderr) = run_bin(&args, &[]);
        assert_eq!(code, Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("kafka.security.sasl_password_file")
                && stderr.contains(&missing.display().to_string()),
            "{command}: names the key and the file: {stderr}"
        );
        assert_hidden("inline-secret-Qp4", &stdout, &stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_on_sigterm_with_exit_code_zero() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(BIN)
        .args(["run", "--create-topics"])
        .env("VITALSTREAM_KAFKA__BROKERS", &broker.bootstrap)
        .env("VITALSTREAM_KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("VITALSTREAM_HTTP__LISTEN_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start vitalstream run");
    let http = http_addr_from_log(&log, Duration::from_secs(30)).await;
    // Ready once it has loaded the (empty) profile table and joined the group.
    wait_until(
        Duration::from_secs(30),
        "/readyz 200 (still running before SIGTERM)",
        async || {
            assert!(
                child.try_wait().expect("poll child").is_none(),
                "still running before SIGTERM"
            );
            http_get(http, "/readyz").await.0 == 200
        },
    )
    .await;
    assert_eq!(http_get(http, "/healthz").await.0, 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = common::wait_exit(&mut child, Duration::from_secs(30), "of SIGTERM").await;
    assert_eq!(exit.code(), Some(0), "clean shutdown exits 0");
}
