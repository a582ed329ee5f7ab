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

#[test]
fn every_command_has_help() {
    for cmd in ["run", "demo", "loadgen", "schemas"] {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_on_sigterm_with_exit_code_zero() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_loopback_port()).into();
    let mut child = Command::new(BIN)
        .args(["run", "--create-topics"])
        .env("VITALSTREAM_KAFKA__BROKERS", &broker.bootstrap)
        .env("VITALSTREAM_KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("VITALSTREAM_HTTP__LISTEN_ADDR", http.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vitalstream run");
    // Ready once it has loaded the (empty) profile table and joined the group.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            child.try_wait().expect("poll child").is_none(),
            "still running before SIGTERM"
        );
        if std::net::TcpStream::connect(http).is_ok() && http_get(http, "/readyz").await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz not 200 within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http_get(http, "/healthz").await.0, 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("poll child") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exit.code(), Some(0), "clean shutdown exits 0");
}
