//! Fault-test harness: the processor as a child process that can be killed,
//! a paced producer of simulated gateway records, and the output check.
//!
//! The check compares what the broker holds (read at the protocol level
//! with read_committed applied from the control markers, see
//! `tests/tansu_canaries.rs`) against one clean in-process run of the same
//! processing core over the same input, partition by partition in log
//! order: every enriched reading, DLQ record, HRV window and alert exactly
//! as often as the clean run makes it (once), nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use vitalstream::codec::Codec;
use vitalstream::config::{Config, Guarantee};
use vitalstream::gateway::{Gateway, GatewayConfig, SimRecord};
use vitalstream::kafka::read_committed;
use vitalstream::model::{ClinicianAlert, HrvWindow};
use vitalstream::pipeline::now_ms;
use vitalstream::process::{Disposition, InputRecord, Processor, ProfileTable};

use super::Broker;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

/// A `vitalstream run` child process, killed (SIGKILL) on drop.
pub struct Instance {
    child: Child,
}

impl Instance {
    /// Starts `vitalstream run --config <file>`; logs go to `log`. Started
    /// as from a plain shell or a systemd unit: no `HOSTNAME` in the
    /// environment.
    pub fn start(config_file: &Path, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config_file)
            .env_remove("HOSTNAME")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start vitalstream");
        Self { child }
    }

    /// SIGKILL: no shutdown, no flush, no commit.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own, up to `limit`.
    pub fn wait_exit(mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "exited within {limit:?}"
            );
            // Polling the exit (blocking callers), with the deadline above.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "clean exit after SIGTERM: {status}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "stopped within 60 s of SIGTERM"
            );
            // Polling the exit (blocking callers), with the deadline above.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `cfg` as the TOML file a child process reads.
pub fn write_config(cfg: &Config, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let text = toml_of(cfg);
    std::fs::write(&path, text).expect("write config");
    path
}

fn toml_of(cfg: &Config) -> String {
    format!(
        "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\nsession_timeout_ms = {}\ntransactional_id = \"{}\"\nrebalancing = \"{}\"\nchangelog_reader = \"log_markers\"\n\n\
         [processing]\nguarantee = \"{}\"\nbatch_max_wait_ms = {}\ncommit_interval_ms = {}\ntransaction_timeout_ms = {}\n\n\
         [http]\nenabled = false\n\n[telemetry]\nlog_level = \"info\"\n",
        cfg.kafka.brokers,
        cfg.kafka.group_id,
        cfg.kafka.session_timeout_ms,
        cfg.kafka.transactional_id,
        cfg.kafka.rebalancing.as_str(),
        cfg.processing.guarantee.as_str(),
        cfg.processing.batch_max_wait_ms,
        cfg.processing.commit_interval_ms,
        cfg.processing.transaction_timeout_ms,
    )
}

/// The simulated gateway's records and profiles for a fault test.
pub struct Workload {
    pub records: Vec<SimRecord>,
    pub profiles: Vec<(String, Vec<u8>)>,
}

/// `n` records of `patients` simulated patients (with the scripted alert
/// scenarios), measured around now.
pub fn workload(n: usize, patients: usize, seed: u64) -> Workload {
    let codec = Codec::new(Default::default()).expect("codec");
    let mut gateway = Gateway::new(
        codec,
        GatewayConfig {
            patients,
            seed,
            scenario_every: 20,
            rr_history_ms: 60 * 60 * 1000,
            ..GatewayConfig::default()
        },
    );
    let profiles = gateway.profiles().expect("profiles");
    let now = now_ms();
    let records = (0..n)
        .map(|_| gateway.next_record(now).expect("record"))
        .collect();
    Workload { records, profiles }
}

/// A producer task writing a workload at a fixed pace in the background.
pub struct PacedProducer {
    /// Records delivered so far.
    pub delivered: Arc<AtomicUsize>,
    /// Records to deliver in all.
    pub total: usize,
    /// Set to stop writing before the end of the workload.
    halt: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PacedProducer {
    /// Starts producing `records` to `topic` at about `per_s` records/s.
    pub fn start(bootstrap: &str, topic: &str, records: &[SimRecord], per_s: u64) -> Self {
        let delivered = Arc::new(AtomicUsize::new(0));
        let halt = Arc::new(AtomicBool::new(false));
        let (bootstrap, topic, records) =
            (bootstrap.to_owned(), topic.to_owned(), records.to_vec());
        let total = records.len();
        let (progress, halted) = (delivered.clone(), halt.clone());
        let task = tokio::spawn(async move {
            produce_paced(&bootstrap, &topic, &records, per_s, &progress, &halted).await
        });
        Self {
            delivered,
            total,
            halt,
            task,
        }
    }

    /// The share of the workload delivered so far, 0.0 to 1.0.
    pub fn progress(&self) -> f64 {
        self.delivered.load(Ordering::Relaxed) as f64 / self.total as f64
    }

    /// Whether the whole workload has been delivered.
    pub fn is_done(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until at least `share` of the workload is delivered.
    pub async fn reached(&self, share: f64) {
        super::wait_until(
            Duration::from_secs(120),
            format_args!("{:.0} % of the input written", share * 100.0),
            async || self.progress() >= share,
        )
        .await;
    }

    /// Waits for the last record to be delivered.
    pub async fn finish(self) {
        self.task.await.expect("producer task");
    }

    /// Stops writing (after the chunk in flight) and returns how many
    /// records were delivered.
    pub async fn stop(self) -> usize {
        self.halt.store(true, Ordering::Relaxed);
        self.task.await.expect("producer task");
        self.delivered.load(Ordering::Relaxed)
    }
}

async fn produce_paced(
    bootstrap: &str,
    topic: &str,
    records: &[SimRecord],
    per_s: u64,
    delivered: &AtomicUsize,
    halt: &AtomicBool,
) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let chunk = (per_s / 20).max(1) as usize;
    for part in records.chunks(chunk) {
        let sends = part.iter().map(|r| {
            producer.send(
                FutureRecord::to(topic)
                    .key(r.key.as_bytes())
                    .payload(&r.payload[..]),
                Duration::from_secs(30),
            )
        });
        for res in futures::future::join_all(sends).await {
            res.expect("raw record delivered");
        }
        delivered.fetch_add(part.len(), Ordering::Relaxed);
        if halt.load(Ordering::Relaxed) {
            return;
        }
        // The pace: a chunk every 50 ms.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Initialises a producer with `transactional_id`, which fences the
/// previous holder of the id and aborts its open transaction.
pub fn fence(broker: &Broker, transactional_id: &str) {
    let p: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("transactional.id", transactional_id)
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(30))
        .expect("fencing init_transactions");
}

/// Committed records of every partition of `topic`.
pub async fn committed(
    broker: &Broker,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, vitalstream::kafka::CommittedRecord)> {
    let mut out = Vec::new();
    for p in 0..partitions {
        let (bootstrap, topic) = (broker.bootstrap.clone(), topic.to_owned());
        let records = tokio::task::spawn_blocking(move || {
            read_committed(&bootstrap, &topic, p, Duration::from_secs(30))
        })
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("reading {p}: {e}"));
        out.extend(records.into_iter().map(|r| (p, r)));
    }
    out
}

/// What a run published, decoded, as sorted multisets.
#[derive(Debug, Default, PartialEq)]
pub struct Outputs {
    /// Enriched reading ids.
    pub enriched: Vec<String>,
    /// DLQ records as (reason, source partition, source offset).
    pub dlq: Vec<(String, i32, i64)>,
    /// HRV windows.
    pub windows: Vec<String>,
    /// Alerts as (alert_id, rule, severity).
    pub alerts: Vec<String>,
}

impl Outputs {
    fn sort(mut self) -> Self {
        self.enriched.sort();
        self.dlq.sort();
        self.windows.sort();
        self.alerts.sort();
        self
    }

    /// Panics unless these outputs are exactly `expected` (each entry as
    /// often as there, nothing else), naming what is missing or extra.
    pub fn assert_exactly(&self, expected: &Outputs) {
        let mut problems = Vec::new();
        diff(
            "enriched readings",
            &self.enriched,
            &expected.enriched,
            &mut problems,
        );
        diff("DLQ records", &self.dlq, &expected.dlq, &mut problems);
        diff(
            "HRV windows",
            &self.windows,
            &expected.windows,
            &mut problems,
        );
        diff("alerts", &self.alerts, &expected.alerts, &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Entries of `expected` not (or not as often) published here; repeats
    /// here do not make up for missing ones.
    pub fn missing(&self, expected: &Outputs) -> usize {
        fn short<T: Ord>(got: &[T], want: &[T]) -> usize {
            let (mut i, mut missing) = (0, 0);
            for w in want {
                while i < got.len() && got[i] < *w {
                    i += 1;
                }
                if i < got.len() && got[i] == *w {
                    i += 1;
                } else {
                    missing += 1;
                }
            }
            missing
        }
        short(&self.enriched, &expected.enriched)
            + short(&self.dlq, &expected.dlq)
            + short(&self.windows, &expected.windows)
            + short(&self.alerts, &expected.alerts)
    }

    /// Entries that occur more than once.
    pub fn repeated(&self) -> usize {
        fn reps<T: PartialEq>(v: &[T]) -> usize {
            v.windows(2).filter(|w| w[0] == w[1]).count()
        }
        reps(&self.enriched) + reps(&self.dlq) + reps(&self.windows) + reps(&self.alerts)
    }
}

/// Multiset difference of two sorted lists, as readable problems.
fn diff<T: Ord + Clone + std::fmt::Debug>(
    what: &str,
    got: &[T],
    want: &[T],
    problems: &mut Vec<String>,
) {
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < got.len() || j < want.len() {
        match (got.get(i), want.get(j)) {
            (Some(g), Some(w)) if g == w => (i, j) = (i + 1, j + 1),
            (Some(g), Some(w)) if g < w => (extra.push(g.clone()), i += 1).1,
            (Some(_), Some(w)) => (missing.push(w.clone()), j += 1).1,
            (Some(g), None) => (extra.push(g.clone()), i += 1).1,
            (None, Some(w)) => (missing.push(w.clone()), j += 1).1,
            (None, None) => unreachable!(),
        }
    }
    if !missing.is_empty() || !extra.is_empty() {
        problems.push(format!(
            "{what}: {} of {} published; {} missing {:?}; {} extra (repeated or unexpected) {:?}",
            got.len(),
            want.len(),
            missing.len(),
            &missing[..missing.len().min(5)],
            extra.len(),
            &extra[..extra.len().min(5)],
        ));
    }
}

fn window_key(w: &HrvWindow) -> String {
    format!("{w:?}")
}

fn alert_key(a: &ClinicianAlert) -> String {
    format!("{} {} {}", a.alert_id, a.rule.as_str(), a.severity.label())
}

/// Reads the output topics back (read_committed applied from the log).
pub async fn published(broker: &Broker, cfg: &Config, partitions: i32) -> Outputs {
    let codec = Codec::new(cfg.schemas).expect("codec");
    let t = &cfg.topics;
    let mut out = Outputs::default();
    for (_, r) in committed(broker, &t.enriched, partitions).await {
        let e = codec
            .decode_enriched(r.value.as_deref().expect("value"))
            .expect("enriched decodes");
        out.enriched.push(e.reading.reading_id.into_owned());
    }
    for (p, r) in committed(broker, &t.hrv_windows, partitions).await {
        let _ = p;
        let w = codec
            .decode_hrv_window(r.value.as_deref().expect("value"))
            .expect("window decodes");
        out.windows.push(window_key(&w));
    }
    for (_, r) in committed(broker, &t.alerts, partitions).await {
        let a = codec
            .decode_alert(r.value.as_deref().expect("value"))
            .expect("alert decodes");
        out.alerts.push(alert_key(&a));
    }
    for (_, r) in committed(broker, &t.dlq, partitions).await {
        let header = |name: &str| -> String {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        out.dlq.push((
            header("reason"),
            header("source_partition").parse().unwrap_or(-1),
            header("source_offset").parse().unwrap_or(-1),
        ));
    }
    out.sort()
}

/// Waits until everything `expected` holds is published (enriched
/// readings, DLQ records, HRV windows, alerts), failing after `limit` with
/// how much is still missing.
pub async fn wait_complete(
    broker: &Broker,
    cfg: &Config,
    partitions: i32,
    expected: &Outputs,
    limit: Duration,
) {
    super::wait_for(
        limit,
        "every expected output published",
        async || match published(broker, cfg, partitions).await.missing(expected) {
            0 => Ok(()),
            n => Err(format!("{n} outputs missing")),
        },
    )
    .await;
}

/// Lets `instance` publish everything `expected` holds (up to 180 s), stops
/// it (a clean exit) and returns what the output topics then hold.
pub async fn finish(
    instance: Instance,
    broker: &Broker,
    cfg: &Config,
    partitions: i32,
    expected: &Outputs,
) -> Outputs {
    wait_complete(broker, cfg, partitions, expected, Duration::from_secs(180)).await;
    instance.stop();
    published(broker, cfg, partitions).await
}

/// One clean in-process run of the processing core over the raw topic as
/// the broker holds it, partition by partition in log order.
pub async fn reference(
    broker: &Broker,
    cfg: &Config,
    profiles: &[(String, Vec<u8>)],
    partitions: i32,
) -> Outputs {
    let codec = Arc::new(Codec::new(cfg.schemas).expect("codec"));
    let table = ProfileTable::new();
    for (_, v) in profiles {
        table.upsert(codec.decode_profile(v).expect("profile"));
    }
    let mut processor = Processor::new(
        codec.clone(),
        cfg.validation.clone(),
        cfg.hrv.clone(),
        cfg.alerts.clone(),
        Arc::new(table),
    )
    .expect("processor");
    let raw = committed(broker, &cfg.topics.raw, partitions).await;
    let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for (p, r) in raw {
        by_partition.entry(p).or_default().push(r);
    }
    let mut out = Outputs::default();
    let now = now_ms();
    for (p, records) in &by_partition {
        for r in records {
            let input = InputRecord {
                topic: &cfg.topics.raw,
                partition: *p,
                offset: r.offset,
                key: r.key.as_deref(),
                payload: r.value.as_deref(),
            };
            match processor.process(&input, now) {
                Disposition::Enriched(e) => out.enriched.push(e.reading.reading_id.into_owned()),
                Disposition::Dlq(rej) => {
                    out.dlq.push((rej.reason.as_str().to_owned(), *p, r.offset));
                }
                Disposition::Duplicate | Disposition::Erased => {}
            }
        }
    }
    out.windows = processor
        .take_closed_windows(now)
        .iter()
        .map(window_key)
        .collect();
    out.alerts = processor.take_alerts(now).iter().map(alert_key).collect();
    out.sort()
}

/// A config for a fault-test child process.
pub fn child_config(broker: &Broker, guarantee: Guarantee, transactional_id: &str) -> Config {
    let mut cfg = Config::default();
    cfg.kafka.brokers = broker.bootstrap.clone();
    cfg.kafka.group_id = "vitalstream-faults".into();
    cfg.kafka.session_timeout_ms = 6000;
    cfg.kafka.transactional_id = transactional_id.into();
    cfg.processing.guarantee = guarantee;
    cfg.processing.batch_max_wait_ms = 50;
    cfg.processing.commit_interval_ms = 200;
    cfg.http.enabled = false;
    cfg
}
