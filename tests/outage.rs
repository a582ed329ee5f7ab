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
const READINGS: usize = 10_000;
const PATIENTS: usize = 50;
const OUTAGES: usize = 2;
/// How long the network stays cut at least: the scenario (longer than the
/// 6 s session timeout, so the group coordinator gives up on the member),
/// not a wait for something to happen.
const OUTAGE: Duration = Duration::from_secs(10);

/// One look at the instance's `/readyz` and `/metrics`.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    ready: bool,
    readyz: String,
    connected: Option<f64>,
    outages: Option<f64>,
    consumed: Option<f64>,
    enriched: Option<f64>,
    duplicates: Option<f64>,
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of a metric's series over all its labels.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
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
        consumed: metric_sum(&metrics, "vitalstream_readings_consumed_total"),
        enriched: metric_sum(&metrics, "vitalstream_readings_enriched_total"),
        duplicates: metric_sum(&metrics, "vitalstream_readings_duplicate_total"),
    }
}

/// Writes `records` to `topic` in chunks, counting deliveries; a cut
/// network stalls it (librdkafka retries), it never drops a record.
/// Writes `records` in chunks, never beyond the budget the test grants
/// (`allowed`): the input is paced by the scenario's progress, so each
/// outage falls mid-stream however fast or slow the machine is.
fn produce_in_background(
    bootstrap: &str,
    topic: &str,
    records: Vec<Rec>,
    delivered: Arc<AtomicUsize>,
    mut allowed: tokio::sync::watch::Receiver<usize>,
) -> tokio::task::JoinHandle<()> {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let topic = topic.to_owned();
    tokio::spawn(async move {
        let mut written = 0;
        for chunk in records.chunks(100) {
            written += chunk.len();
            allowed
                .wait_for(|budget| *budget >= written)
                .await
                .expect("budget sender alive");
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

/// What one outage run saw.
struct OutageRun {
    /// Reading ids on the enriched topic, sorted, with repeats.
    published: Vec<String>,
    /// Records on the DLQ.
    dlq: usize,
    /// The instance's counters at the end: consumed, enriched, duplicates
    /// dropped.
    consumed: f64,
    enriched: f64,
    duplicates_dropped: f64,
}

/// A `vitalstream run` process (`guarantee`, HTTP on port 0) processes
/// [`READINGS`] readings written while it runs; the network is cut
/// [`OUTAGES`] times, at even shares of the input (the writer stalls too
/// and resumes; it runs at most half a share past a cut until the instance
/// is ready again, so every cut falls mid-stream). Each cut lasts [`OUTAGE`] and until the instance reports
/// it (`/readyz` names the unreachable brokers and
/// `vitalstream_kafka_connected` is 0). Asserts the reporting (readiness, metrics, log); returns the
/// outputs for the guarantee's own checks.
async fn outage_run(guarantee: &str) -> OutageRun {
    let (broker, proxy) = start_broker_behind_proxy().await;
    let mut cfg = config(&broker);
    cfg.kafka.group_id = format!("vitalstream-outage-{guarantee}");
    create_topics(&broker, &cfg, PARTITIONS).await;
    register_numbered(&broker, &cfg, PATIENTS).await;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = if std::env::var_os("FAULTS_KEEP_LOGS").is_some() {
        tmp.keep()
    } else {
        tmp.path().to_owned()
    };
    let file = dir.join("outage.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\nsession_timeout_ms = 6000\n\
             transactional_id = \"outage-1\"\nchangelog_reader = \"log_markers\"\n\n[processing]\nguarantee = \"{guarantee}\"\n\
             batch_max_wait_ms = 50\ncommit_interval_ms = 200\n\n\
             [http]\nlisten_addr = \"127.0.0.1:0\"\n\n[telemetry]\nlog_level = \"info\"\n",
            broker.bootstrap, cfg.kafka.group_id
        ),
    )
    .expect("config");
    let log = dir.join("instance.log");
    println!("instance log: {}", log.display());
    let instance = Instance::start(&file, &log);
    let addr = http_addr_from_log(&log, Duration::from_secs(60)).await;

    // Ready first (profiles loaded, partitions assigned).
    wait_until(Duration::from_secs(90), "ready", async || {
        sample(addr).await.ready
    })
    .await;

    // Watch readiness and the outage metrics throughout.
    let watching = Arc::new(AtomicBool::new(true));
    let monitor = tokio::spawn({
        let watching = watching.clone();
        async move {
            let mut samples = Vec::new();
            while watching.load(Ordering::Relaxed) {
                samples.push(sample(addr).await);
                // Sampling cadence, not a wait.
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
    // The writer may run half a share past each cut, then waits for the
    // scenario (the instance ready again) before it goes on.
    let budget = |cycle: usize| (READINGS * (2 * cycle + 3) / (2 * (OUTAGES + 1))).min(READINGS);
    let (allow, allowed) = tokio::sync::watch::channel(budget(0));
    let producer = produce_in_background(
        &broker.bootstrap,
        &cfg.topics.raw,
        records,
        delivered.clone(),
        allowed,
    );

    // Cut the network mid-stream, OUTAGES times.
    let mut cuts = Vec::new();
    for cycle in 0..OUTAGES {
        let share = (cycle + 1) as f64 / (OUTAGES + 1) as f64;
        wait_until(
            Duration::from_secs(120),
            format_args!("input reached {share:.2}"),
            async || delivered.load(Ordering::Relaxed) as f64 >= share * READINGS as f64,
        )
        .await;
        let written = delivered.load(Ordering::Relaxed);
        assert!(written < READINGS, "outage {cycle} falls mid-stream");
        proxy.cut();
        let cut_at = Instant::now();
        println!("outage {cycle}: network cut with {written} of {READINGS} readings written");
        // Held for the scenario's length, and until the instance has said
        // so (librdkafka reports all brokers down as soon as the
        // connections drop).
        wait_until(
            OUTAGE + Duration::from_secs(60),
            format_args!("outage {cycle}: reported as Kafka brokers unreachable"),
            async || {
                let s = sample(addr).await;
                cut_at.elapsed() >= OUTAGE
                    && !s.ready
                    && s.readyz.contains("Kafka brokers unreachable")
                    && s.connected == Some(0.0)
            },
        )
        .await;
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
        wait_until(
            Duration::from_secs(30),
            format_args!("outage {cycle}: ready again after the restore"),
            async || sample(addr).await.ready,
        )
        .await;
        println!(
            "outage {cycle}: ready again {:.1} s after the restore",
            restored_at.elapsed().as_secs_f64()
        );
        let next = if cycle + 1 == OUTAGES {
            READINGS
        } else {
            budget(cycle + 1)
        };
        allow.send_replace(next);
    }
    tokio::time::timeout(Duration::from_secs(180), producer)
        .await
        .expect("input written within 180 s of the last outage")
        .expect("producer task");

    // Everything processed: every reading on the enriched topic.
    wait_for(
        Duration::from_secs(240),
        format_args!("{READINGS} readings enriched (log: {})", log.display()),
        async || {
            let mut ids = enriched_ids_published(&broker, &cfg.topics.enriched).await;
            ids.sort();
            ids.dedup();
            if ids.len() >= READINGS {
                Ok(())
            } else {
                Err(format!("{} distinct", ids.len()))
            }
        },
    )
    .await;
    // Ready again once a statistics report saw the brokers (every 5 s),
    // and every reading counted as consumed (the counters are final).
    let last = wait_for(
        Duration::from_secs(30),
        "ready again and every reading counted",
        async || {
            let s = sample(addr).await;
            if s.ready && s.consumed.unwrap_or(0.0) >= READINGS as f64 {
                Ok(s)
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await;
    watching.store(false, Ordering::Relaxed);
    let samples = monitor.await.expect("monitor");
    instance.stop();

    let mut published = enriched_ids_published(&broker, &cfg.topics.enriched).await;
    published.sort();
    let dlq = committed(&broker, &cfg.topics.dlq, PARTITIONS).await.len();
    let text = std::fs::read_to_string(&log).expect("instance log");
    let aborted = text.matches("transaction aborted").count();
    let mut distinct = published.clone();
    distinct.dedup();
    println!(
        "outage figures ({guarantee}): {OUTAGES} outages, {READINGS} readings, {} lost, \
         {} published twice or more, {dlq} dead-lettered, {} outages counted, {aborted} \
         transaction-abort log lines; counters: consumed {:?}, enriched {:?}, duplicates dropped {:?}",
        READINGS - distinct.len(),
        published.len() - distinct.len(),
        last.outages.unwrap_or(-1.0),
        last.consumed,
        last.enriched,
        last.duplicates,
    );

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
    OutageRun {
        published,
        dlq,
        consumed: last.consumed.unwrap_or(-1.0),
        enriched: last.enriched.unwrap_or(-1.0),
        duplicates_dropped: last.duplicates.unwrap_or(0.0),
    }
}

/// Sorted ids without repeats.
fn distinct(ids: &[String]) -> Vec<String> {
    let mut d = ids.to_vec();
    d.dedup();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_outages_mid_stream_are_reported_and_lose_or_repeat_nothing_exactly_once() {
    let run = outage_run("exactly_once").await;
    let distinct = distinct(&run.published);
    assert_eq!(READINGS - distinct.len(), 0, "no reading lost");
    assert_eq!(
        run.published.len(),
        distinct.len(),
        "no reading published twice"
    );
    assert_eq!(run.dlq, 0, "nothing dead-lettered");
}

/// at_least_once through the same outages: nothing lost; a reading may be
/// published again (offsets are stored only after delivery, so a batch
/// cut off by the outage is read again), but every repeat is accounted
/// for by the counters and bounded by what was read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_outages_mid_stream_lose_nothing_at_least_once_and_repeats_are_counted() {
    let run = outage_run("at_least_once").await;
    let distinct = distinct(&run.published);
    let expected: Vec<String> = {
        let mut ids: Vec<String> = (0..READINGS).map(|i| format!("r-{i}")).collect();
        ids.sort();
        ids
    };
    assert_eq!(distinct, expected, "every reading enriched, none lost");
    assert_eq!(run.dlq, 0, "nothing dead-lettered");
    let repeats = run.published.len() - distinct.len();
    // Every reading consumed ends in exactly one place: enriched (again)
    // or dropped as a counted duplicate, so what was read twice is what
    // the counters say...
    let read_again = run.consumed - READINGS as f64;
    assert!(read_again >= 0.0, "consumed {} < {READINGS}", run.consumed);
    assert_eq!(
        run.consumed,
        run.enriched + run.duplicates_dropped,
        "consumed = enriched + duplicates dropped"
    );
    // ...and every repeat on the topic is a reading enriched again: the
    // producer is idempotent, so none comes from a retried send.
    assert_eq!(
        repeats as f64,
        run.enriched - READINGS as f64,
        "repeats on the enriched topic = readings enriched twice"
    );
    // Bounded: at most what the outages made it read again.
    assert!(
        repeats as f64 <= read_again,
        "{repeats} repeats, {read_again} readings read again"
    );
    println!(
        "at_least_once: {repeats} repeated outputs, {read_again} readings read again, {} of them dropped as counted duplicates",
        run.duplicates_dropped
    );
}

/// `vitalstream run` against a closed port with `startup_timeout_ms`.
fn run_without_broker(
    startup_timeout_ms: u64,
) -> (
    Child,
    String,
    std::path::PathBuf,
    (tempfile::TempDir, ClosedPort),
) {
    let reserved = closed_port();
    let brokers = format!("127.0.0.1:{}", reserved.port);
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
    (child, brokers, log, (dir, reserved))
}

#[tokio::test]
async fn no_broker_at_start_up_exits_with_code_4_naming_the_bootstrap_servers() {
    let (mut child, brokers, log, _keep) = run_without_broker(3_000);
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
    let (mut child, brokers, log, _keep) = run_without_broker(0);
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
