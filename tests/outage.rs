//! Network faults (DESIGN.md §6, §7), through tansu and a loopback proxy
//! (`tests/common/proxy.rs`): a `vitalstream run` process loses every
//! broker connection for about 10 s, twice, while readings stream in; it
//! must say so (log, metrics, readiness), recover by itself, and the
//! output must hold every reading exactly once (exactly_once, read with
//! read_committed applied from the log). And with no broker at start-up it
//! must fail clearly or keep retrying, as configured, never hang silently.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::faults::{Instance, committed};
use common::proxy::start_broker_behind_proxy;
use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;
use vitalstream::model::{BloodPressure, Measurement};
use vitalstream::pipeline::now_ms;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");
const PARTITIONS: i32 = 2;
const READINGS: usize = 20_000;
const PATIENTS: usize = 50;
const OUTAGES: usize = 2;
const OUTAGE: Duration = Duration::from_secs(10);

/// One look at the instance's `/readyz` and `/metrics`.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    ready: bool,
    readyz: String,
    connected: Option<f64>,
    outages: Option<f64>,
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn sample(addr: std::net::SocketAddr) -> Sample {
    let (status, readyz) = http_get(addr, "/readyz").await;
    let (_, metrics) = http_get(addr, "/metrics").await;
    Sample {
        at: Instant::now(),
        ready: status == 200,
        readyz: readyz.trim().to_owned(),
        connected: metric(&metrics, "vitalstream_kafka_connected"),
        outages: metric(&metrics, "vitalstream_kafka_outages_total"),
    }
}

/// Writes `records` to `topic` in chunks, counting deliveries; a cut
/// network stalls it (librdkafka retries), it never drops a record.
fn produce_in_background(
    bootstrap: &str,
    topic: &str,
    records: Vec<Rec>,
    delivered: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let topic = topic.to_owned();
    tokio::spawn(async move {
        for chunk in records.chunks(100) {
            let sends = chunk.iter().map(|r| {
                let rec = FutureRecord::to(&topic)
                    .key(r.key.as_deref().expect("key"))
                    .payload(r.payload.as_deref().expect("payload"));
                producer.send(rec, Duration::from_secs(60))
            });
            for res in futures::future::join_all(sends).await {
                res.expect("raw record delivered");
            }
            delivered.fetch_add(chunk.len(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Reading ids on the enriched topic (read_committed applied from the log).
async fn enriched_ids_published(broker: &Broker, topic: &str) -> Vec<String> {
    let codec = codec();
    committed(broker, topic, PARTITIONS)
        .await
        .into_iter()
        .map(|(_, r)| {
            codec
                .decode_enriched(r.value.as_deref().expect("value"))
                .expect("enriched decodes")
                .reading
                .reading_id
                .into_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_outages_mid_stream_are_reported_and_lose_or_repeat_nothing_exactly_once() {
    let (broker, proxy) = start_broker_behind_proxy().await;
    let mut cfg = config(&broker);
    cfg.kafka.group_id = "vitalstream-outage".into();
    create_topics(&broker, &cfg, PARTITIONS).await;
    register_numbered(&broker, &cfg, PATIENTS).await;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = if std::env::var_os("FAULTS_KEEP_LOGS").is_some() {
        tmp.keep()
    } else {
        tmp.path().to_owned()
    };
    let http_port = free_loopback_port();
    let file = dir.join("outage.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\nsession_timeout_ms = 6000\n\
             transactional_id = \"outage-1\"\nchangelog_reader = \"log_markers\"\n\n[processing]\nguarantee = \"exactly_once\"\n\
             batch_max_wait_ms = 50\ncommit_interval_ms = 200\n\n\
             [http]\nlisten_addr = \"127.0.0.1:{http_port}\"\n\n[telemetry]\nlog_level = \"info\"\n",
            broker.bootstrap, cfg.kafka.group_id
        ),
    )
    .expect("config");
    let log = dir.join("instance.log");
    println!("instance log: {}", log.display());
    let instance = Instance::start(&file, &log);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], http_port).into();

    // Ready first (HTTP bound, profiles loaded, partitions assigned).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() && sample(addr).await.ready {
            break;
        }
        assert!(Instant::now() < deadline, "ready within 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Watch readiness and the outage metrics throughout.
    let watching = Arc::new(AtomicBool::new(true));
    let monitor = tokio::spawn({
        let watching = watching.clone();
        async move {
            let mut samples = Vec::new();
            while watching.load(Ordering::Relaxed) {
                samples.push(sample(addr).await);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        }
    });

    let now = now_ms();
    let records: Vec<Rec> = (0..READINGS)
        .map(|i| {
            raw_record(
                &format!("r-{i}"),
                &format!("p-{}", i % PATIENTS),
                now - 120_000 + i as i64,
                Measurement::BloodPressure(BloodPressure {
                    systolic_mmhg: 118,
                    diastolic_mmhg: 76,
                    pulse_bpm: Some(64),
                }),
            )
        })
        .collect();
    let delivered = Arc::new(AtomicUsize::new(0));
    let producer = produce_in_background(
        &broker.bootstrap,
        &cfg.topics.raw,
        records,
        delivered.clone(),
    );

    // Cut the network mid-stream, OUTAGES times.
    let mut cuts = Vec::new();
    for cycle in 0..OUTAGES {
        let share = (cycle + 1) as f64 / (OUTAGES + 1) as f64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while (delivered.load(Ordering::Relaxed) as f64) < share * READINGS as f64 {
            assert!(
                Instant::now() < deadline,
                "input reached {share:.2} within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let written = delivered.load(Ordering::Relaxed);
        assert!(written < READINGS, "outage {cycle} falls mid-stream");
        proxy.cut();
        let cut_at = Instant::now();
        println!("outage {cycle}: network cut with {written} of {READINGS} readings written");
        tokio::time::sleep(OUTAGE).await;
        proxy.restore();
        println!(
            "outage {cycle}: restored after {:.1} s ({} connections refused so far)",
            cut_at.elapsed().as_secs_f64(),
            proxy.refused.load(Ordering::Relaxed)
        );
        let restored_at = Instant::now();
        cuts.push((cut_at, restored_at));
        // Recovered by itself: ready again (a statistics report saw a
        // broker) before the next cut, so each outage is one of its own.
        let deadline = restored_at + Duration::from_secs(30);
        while !sample(addr).await.ready {
            assert!(
                Instant::now() < deadline,
                "outage {cycle}: ready again within 30 s of the restore"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "outage {cycle}: ready again {:.1} s after the restore",
            restored_at.elapsed().as_secs_f64()
        );
    }
    tokio::time::timeout(Duration::from_secs(180), producer)
        .await
        .expect("input written within 180 s of the last outage")
        .expect("producer task");

    // Everything processed: every reading on the enriched topic.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let got = enriched_ids_published(&broker, &cfg.topics.enriched)
            .await
            .len();
        if got >= READINGS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {READINGS} readings enriched within 240 s; log: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Ready again once a statistics report saw the brokers (every 5 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        let s = sample(addr).await;
        if s.ready {
            break s;
        }
        assert!(Instant::now() < deadline, "ready again within 30 s: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    watching.store(false, Ordering::Relaxed);
    let samples = monitor.await.expect("monitor");
    instance.stop();

    let mut ids = enriched_ids_published(&broker, &cfg.topics.enriched).await;
    let published = ids.len();
    ids.sort();
    ids.dedup();
    let distinct = ids.len();
    let lost = READINGS - distinct;
    let duplicated = published - distinct;
    let dlq = committed(&broker, &cfg.topics.dlq, PARTITIONS).await.len();
    let text = std::fs::read_to_string(&log).expect("instance log");
    let aborted = text.matches("transaction aborted").count();
    println!(
        "outage figures: {OUTAGES} cycles of {OUTAGE:?}, {READINGS} readings, {lost} lost, \
         {duplicated} duplicated, {dlq} dead-lettered, {} outages counted, {aborted} \
         transaction-abort log lines",
        last.outages.unwrap_or(-1.0)
    );
    assert_eq!(lost, 0, "no reading lost");
    assert_eq!(duplicated, 0, "no reading published twice");
    assert_eq!(dlq, 0, "nothing dead-lettered");

    // Reported: not ready and disconnected during each outage, ready and
    // connected after, each outage counted, logged both ways.
    for (i, (from, to)) in cuts.iter().enumerate() {
        let during: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at > *from && s.at <= *to + Duration::from_secs(2))
            .collect();
        assert!(
            during
                .iter()
                .any(|s| !s.ready && s.readyz.contains("Kafka brokers unreachable")),
            "outage {i}: /readyz said the brokers are unreachable; saw {:?}",
            during.iter().map(|s| &s.readyz).collect::<Vec<_>>()
        );
        assert!(
            during.iter().any(|s| s.connected == Some(0.0)),
            "outage {i}: vitalstream_kafka_connected went to 0"
        );
    }
    assert_eq!(last.connected, Some(1.0), "connected after the outages");
    assert!(
        last.outages.unwrap_or(0.0) >= OUTAGES as f64,
        "every outage counted: {:?}",
        last.outages
    );
    assert!(
        text.contains("all Kafka brokers unreachable"),
        "the outage is logged"
    );
    assert!(
        text.contains("Kafka brokers reachable again"),
        "the recovery is logged"
    );
}

/// `vitalstream run` against a closed port with `startup_timeout_ms`.
fn run_without_broker(
    startup_timeout_ms: u64,
) -> (Child, String, std::path::PathBuf, tempfile::TempDir) {
    let port = free_loopback_port();
    let brokers = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("absent.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\nstartup_timeout_ms = {startup_timeout_ms}\nchangelog_reader = \"log_markers\"\n\n\
             [http]\nenabled = false\n"
        ),
    )
    .expect("config");
    let log = dir.path().join("stderr.log");
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start vitalstream");
    (child, brokers, log, dir)
}

#[tokio::test]
async fn no_broker_at_start_up_exits_with_code_4_naming_the_bootstrap_servers() {
    let (mut child, brokers, log, _dir) = run_without_broker(3_000);
    let status = wait_exit(
        &mut child,
        Duration::from_secs(30),
        "with kafka.startup_timeout_ms = 3000",
    )
    .await;
    let error = error_line(&log);
    println!("{error}");
    assert_eq!(status.code(), Some(4), "exit code of an unreachable broker");
    assert!(
        error.contains(&format!("no Kafka broker reachable at {brokers}"))
            && error.contains("kafka.startup_timeout_ms"),
        "the error names the bootstrap servers and the setting: {error}"
    );
}

#[tokio::test]
async fn no_broker_at_start_up_without_a_timeout_keeps_retrying_and_says_so() {
    let (mut child, brokers, log, _dir) = run_without_broker(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "still running: kafka.startup_timeout_ms = 0 waits for ever"
        );
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        let retries = stderr
            .lines()
            .filter(|l| {
                l.contains("no Kafka broker reachable at start-up; retrying")
                    && l.contains(&brokers)
            })
            .count();
        if retries >= 2 {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("two retry warnings naming {brokers} within 30 s: {stderr}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SIGTERM ends the wait cleanly.
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = wait_exit(&mut child, Duration::from_secs(15), "of SIGTERM").await;
    assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");
}
