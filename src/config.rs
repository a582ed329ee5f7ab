//! One typed, validated configuration (TOML file + `VITALSTREAM_*` env overrides).
//!
//! Unknown keys are errors that name the key. Units are in field names.
//! [`Config::validate`] runs at start-up and returns a typed error, so a bad
//! deployment fails before it touches a broker.
//!
//! Secrets (SASL and TLS key passwords, secret librdkafka properties) are
//! [`Secret`]s: every `Debug`, `Display` and `Serialize` of the configuration
//! shows `[redacted]` in their place, and no load error quotes one.

mod env;
mod passthrough;
mod registry;
mod secret;
mod security;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use passthrough::{Librdkafka, PassthroughValue};
pub use registry::SchemaRegistryConfig;
pub use secret::{REDACTED, Secret, is_secret_property};
pub use security::{EndpointIdentification, SaslMechanism, SecurityConfig, SecurityProtocol};

use crate::codec::{CodecConfig, SchemaIds};
use crate::process::{AlertsConfig, HrvConfig, HrvConfigError};

/// Errors loading or validating the configuration. All are fatal at start-up.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file or an env override does not parse, or names an unknown key.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of its allowed range.
    #[error("configuration: `{key}` {problem}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A file holding a secret cannot be read.
    #[error("configuration: `{key}`: cannot read {}: {source}", path.display())]
    SecretFile {
        /// Dotted key path.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// An `[hrv]` setting is out of range.
    #[error("configuration: {0}")]
    Hrv(#[from] HrvConfigError),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka connection and client settings.
    pub kafka: KafkaConfig,
    /// Topic names.
    pub topics: Topics,
    /// Confluent schema ids (used when no schema registry is configured).
    pub schemas: SchemaIds,
    /// Confluent-compatible schema registry.
    pub schema_registry: SchemaRegistryConfig,
    /// Decoder length caps and other accepted writer versions of `RawReading`.
    pub codec: CodecConfig,
    /// Batching and commits.
    pub processing: ProcessingConfig,
    /// Validation, plausibility ranges and dedup.
    pub validation: ValidationConfig,
    /// HRV windows.
    pub hrv: HrvConfig,
    /// Clinician alerts.
    pub alerts: AlertsConfig,
    /// Durable erasure.
    pub erasure: ErasureConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Metrics and health endpoints.
    pub http: HttpConfig,
}

/// The `/metrics`, `/healthz`, `/readyz` listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve the endpoints at all.
    pub enabled: bool,
    /// Listen address; loopback by default (set `0.0.0.0:9464` in a container).
    pub listen_addr: SocketAddr,
    /// `/healthz` fails once the pipeline loop has not turned for this long.
    pub stall_after_ms: i64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            stall_after_ms: 60_000,
        }
    }
}

/// Kafka connection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group id; instances with the same id share the partitions.
    pub group_id: String,
    /// Client id reported to the broker.
    pub client_id: String,
    /// Consumer group session timeout.
    pub session_timeout_ms: u32,
    /// How long the producer may try to deliver one record before failing.
    pub message_timeout_ms: u32,
    /// How long start-up waits for a bootstrap server to answer before the
    /// run stops (exit code 4); 0 waits for ever, warning at every attempt.
    pub startup_timeout_ms: u64,
    /// Transactional id of this instance (exactly_once). Must be unique per
    /// instance and stable across its restarts, so a restart fences its
    /// previous incarnation at once. Empty: `<group_id>-<host name>`, the
    /// host name as the operating system reports it (not `$HOSTNAME`, which
    /// a shell or systemd unit need not export); on Kubernetes that is the
    /// pod name, stable under a StatefulSet. Set it explicitly for more than
    /// one instance per host.
    pub transactional_id: String,
    /// Rebalancing protocol of the consumer group: `cooperative` (default,
    /// librdkafka's `cooperative-sticky`: partitions that do not move keep
    /// running through a rebalance) or `eager` (`range,roundrobin`: every
    /// partition is revoked and reassigned). All instances of a group must
    /// use the same; change it with every instance stopped.
    pub rebalancing: Rebalancing,
    /// TLS and SASL towards the brokers.
    pub security: SecurityConfig,
    /// Extra librdkafka properties, applied after vitalstream's defaults and
    /// `security` (e.g. `"sasl.mechanisms" = "OAUTHBEARER"`).
    pub librdkafka: Librdkafka,
    /// How partition state is read back from the changelog (docs/state.md).
    pub changelog_reader: ChangelogReader,
}

/// How the state changelog is read on restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangelogReader {
    /// A librdkafka `read_committed` consumer through every bootstrap
    /// broker, trusting the broker's aborted-transaction list: production
    /// brokers (Apache Kafka, Redpanda, MSK).
    #[default]
    ReadCommitted,
    /// Compatibility mode for brokers that send no aborted-transaction
    /// list (tansu 0.6): fetches at the protocol level, plaintext only, and
    /// applies the log's own commit/abort markers.
    LogMarkers,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            group_id: "vitalstream".into(),
            client_id: "vitalstream".into(),
            session_timeout_ms: 10_000,
            message_timeout_ms: 30_000,
            startup_timeout_ms: 60_000,
            transactional_id: String::new(),
            rebalancing: Rebalancing::default(),
            security: SecurityConfig::default(),
            librdkafka: Librdkafka::default(),
            changelog_reader: ChangelogReader::default(),
        }
    }
}

/// Topic names (DESIGN.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    /// Raw readings in.
    pub raw: String,
    /// Patient profiles in (compacted).
    pub patients: String,
    /// Enriched readings out.
    pub enriched: String,
    /// HRV windows out.
    pub hrv_windows: String,
    /// Clinician alerts out.
    pub alerts: String,
    /// Dead-letter queue out.
    pub dlq: String,
    /// Compacted state changelog (internal); empty = `vitalstream.<group_id>.state`.
    pub state: String,
    /// Compacted set of erased patients (internal, keyed hashes only);
    /// empty = `vitalstream.<group_id>.erasures`. Created at start-up if missing.
    pub erasures: String,
}

/// Durable erasure (docs/erasure.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErasureConfig {
    /// Secret key of the hash by which erased patients are remembered (on
    /// the erasures topic and in dedup keys). The same on every instance of
    /// the group, and never changed: erasures recorded under another key
    /// match nothing. Unset: a built-in, public key (start-up warns).
    /// Environment: `VITALSTREAM_ERASURE__HASH_KEY`, taken verbatim.
    pub hash_key: Option<Secret>,
    /// A file holding `hash_key` (one trailing newline dropped).
    pub hash_key_file: Option<PathBuf>,
    /// `hash_key_file`'s content, once read.
    #[serde(skip)]
    hash_key_from_file: Option<Secret>,
}

fn erasure_invalid(key: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.to_owned(),
    }
}

impl ErasureConfig {
    /// The hasher of patient ids this configuration names.
    pub fn hasher(&self) -> crate::erasure::PatientHasher {
        match self.hash_key.as_ref().or(self.hash_key_from_file.as_ref()) {
            Some(key) => crate::erasure::PatientHasher::new(key.expose().as_bytes()),
            None => crate::erasure::PatientHasher::default(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.hash_key.is_some() && self.hash_key_file.is_some() {
            return Err(erasure_invalid(
                "erasure.hash_key",
                "and erasure.hash_key_file are both set; keep one",
            ));
        }
        if self
            .hash_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            return Err(erasure_invalid(
                "erasure.hash_key",
                "must be at least 16 characters",
            ));
        }
        Ok(())
    }

    fn load_file(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.hash_key_file {
            let key = read_secret_file("erasure.hash_key_file", path)?;
            if key.expose().len() < 16 {
                return Err(erasure_invalid(
                    "erasure.hash_key_file",
                    "must hold at least 16 characters",
                ));
            }
            self.hash_key_from_file = Some(key);
        }
        Ok(())
    }
}

impl KafkaConfig {
    /// The security protocol in force: `[kafka.security]`'s, else the
    /// passthrough map's, else plaintext. `None` when the map names a value
    /// vitalstream does not know (librdkafka then judges it).
    pub fn security_protocol(&self) -> Option<SecurityProtocol> {
        match (
            self.security.protocol,
            self.librdkafka.get("security.protocol"),
        ) {
            (Some(protocol), _) => Some(protocol),
            (None, Some(value)) => SecurityProtocol::parse(value),
            (None, None) => Some(SecurityProtocol::Plaintext),
        }
    }

    /// Checks `[kafka.security]` and the secret values of `[kafka.librdkafka]`.
    fn validate_security(&self) -> Result<(), ConfigError> {
        self.security
            .validate(&self.librdkafka, self.security_protocol())?;
        for (property, value) in self.librdkafka.iter() {
            if let Some(value) = value.filter(|_| is_secret_property(property)) {
                security::check_secret(
                    &format!("kafka.librdkafka.\"{property}\""),
                    &Secret::new(value),
                )?;
            }
        }
        Ok(())
    }

    /// Reads every secret given as a file or an environment variable.
    fn load_secret_sources(&mut self) -> Result<(), ConfigError> {
        self.security.load_files()?;
        self.librdkafka.load_sources()
    }

    /// The transactional id in force and where it came from (see
    /// [`KafkaConfig::transactional_id`]).
    pub fn transactional_id(&self) -> TransactionalId {
        if !self.transactional_id.trim().is_empty() {
            return TransactionalId {
                id: self.transactional_id.clone(),
                source: TransactionalIdSource::Configured,
            };
        }
        let host = gethostname::gethostname();
        match host.to_str().map(str::trim) {
            Some(host) if !host.is_empty() => TransactionalId {
                id: format!("{}-{host}", self.group_id),
                source: TransactionalIdSource::HostName,
            },
            // No usable host name (not valid UTF-8, or empty): an id that
            // does not survive a restart, which the start-up log warns about.
            _ => TransactionalId {
                id: format!("{}-{:016x}", self.group_id, rand::random::<u64>()),
                source: TransactionalIdSource::Random,
            },
        }
    }
}

/// A transactional id and its origin, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionalId {
    /// The id.
    pub id: String,
    /// Where it came from.
    pub source: TransactionalIdSource,
}

/// Where the transactional id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionalIdSource {
    /// `kafka.transactional_id`.
    Configured,
    /// `<group_id>-<host name>` (the operating system's; the pod name on Kubernetes).
    HostName,
    /// The host name was unusable: a random suffix, new at every start.
    Random,
}

impl TransactionalIdSource {
    /// Log name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "kafka.transactional_id",
            Self::HostName => "host name",
            Self::Random => "random (no usable host name)",
        }
    }
}

/// Consumer group rebalancing protocol (see [`KafkaConfig::rebalancing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rebalancing {
    /// Incremental (`cooperative-sticky`): only partitions that move are
    /// revoked; the others keep running.
    #[default]
    Cooperative,
    /// Stop-the-world (`range,roundrobin`): every partition is revoked.
    Eager,
}

impl Rebalancing {
    /// Config and log name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooperative => "cooperative",
            Self::Eager => "eager",
        }
    }

    /// librdkafka's `partition.assignment.strategy` for this protocol.
    pub fn assignment_strategy(self) -> &'static str {
        match self {
            Self::Cooperative => "cooperative-sticky",
            Self::Eager => "range,roundrobin",
        }
    }
}

impl Topics {
    /// The erasures topic of consumer group `group_id`.
    pub fn erasures_topic(&self, group_id: &str) -> String {
        if self.erasures.trim().is_empty() {
            format!("vitalstream.{group_id}.erasures")
        } else {
            self.erasures.clone()
        }
    }

    /// The state changelog topic of consumer group `group_id`.
    pub fn state_topic(&self, group_id: &str) -> String {
        if self.state.trim().is_empty() {
            format!("vitalstream.{group_id}.state")
        } else {
            self.state.clone()
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            raw: "vitals.readings.raw".into(),
            patients: "vitals.patients".into(),
            enriched: "vitals.readings.enriched".into(),
            hrv_windows: "vitals.hrv.windows".into(),
            alerts: "vitals.alerts".into(),
            dlq: "vitals.readings.dlq".into(),
            state: String::new(),
            erasures: String::new(),
        }
    }
}

/// Batching and commit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingConfig {
    /// Most messages in one batch. Each batch ends with a wait for the
    /// broker's acknowledgements (at_least_once) or joins the open
    /// transaction, so larger batches raise catch-up throughput: on the e2e
    /// bench 5,000 doubled at_least_once's over 1,000. Under a steady input
    /// rate batches close after `batch_max_wait_ms` long before filling.
    pub batch_max_messages: usize,
    /// Longest a batch stays open waiting for more messages.
    pub batch_max_wait_ms: u64,
    /// exactly_once: how long a transaction stays open, collecting batches,
    /// before it commits (outputs become visible to read_committed
    /// consumers then). at_least_once: how often stored offsets are
    /// committed to the group.
    pub commit_interval_ms: u64,
    /// Delivery guarantee.
    pub guarantee: Guarantee,
    /// The broker's transaction timeout and the deadline of one
    /// transaction call (init, commit, abort) (exactly_once). A killed
    /// instance's open transaction holds back `read_committed` readers of
    /// every partition it wrote to (outputs, changelog) until its
    /// transactional id is reused (a restart with the same id aborts it at
    /// once) or this timeout passes, so it should be short. It also caps
    /// the transactional producer's message timeout (librdkafka requires
    /// `message.timeout.ms` ≤ `transaction.timeout.ms`), which is how long
    /// a broker outage is ridden out before the run stops. 30 s (was 60 s)
    /// is the shortest value that keeps `kafka.message_timeout_ms`'s 30 s
    /// delivery deadline; 10 s (Kafka Streams' exactly-once default) would
    /// also cut that to 10 s. See docs/scale-out.md.
    pub transaction_timeout_ms: u64,
    /// Backpressure: output messages awaiting the broker's acknowledgement
    /// at which consumption pauses; it resumes once half have drained. The
    /// producer queue holds at most twice this many.
    pub max_in_flight: usize,
}

/// Delivery guarantee (DESIGN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// A transactional producer: each batch's outputs, state changelog
    /// records and input offsets commit in one transaction.
    #[default]
    ExactlyOnce,
    /// Offsets stored only after every output of a batch is delivered;
    /// a crash may repeat outputs, never lose them.
    AtLeastOnce,
}

impl Guarantee {
    /// Config and log name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExactlyOnce => "exactly_once",
            Self::AtLeastOnce => "at_least_once",
        }
    }
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            batch_max_messages: 5000,
            batch_max_wait_ms: 50,
            commit_interval_ms: 100,
            guarantee: Guarantee::ExactlyOnce,
            transaction_timeout_ms: 30_000,
            max_in_flight: 50_000,
        }
    }
}

/// An inclusive plausibility range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Smallest plausible value.
    pub min: Decimal,
    /// Largest plausible value.
    pub max: Decimal,
}

impl Range {
    fn new(min: i64, max: i64) -> Self {
        Self {
            min: Decimal::from(min),
            max: Decimal::from(max),
        }
    }

    /// Whether `value` lies within the range.
    pub fn contains(&self, value: Decimal) -> bool {
        self.min <= value && value <= self.max
    }
}

/// Plausibility ranges per measured quantity (DESIGN.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ranges {
    /// Body weight, kg.
    pub weight_kg: Range,
    /// Whole-body and segmental resistance at 50 kHz, ohm.
    pub resistance_ohm: Range,
    /// Whole-body and segmental reactance at 50 kHz, ohm.
    pub reactance_ohm: Range,
    /// RR interval, ms.
    pub rr_interval_ms: Range,
    /// Profile height, cm: outside it (e.g. metres typed as centimetres)
    /// no BMI or body composition is computed and the reading is flagged.
    pub height_cm: Range,
    /// Systolic pressure, mmHg.
    pub systolic_mmhg: Range,
    /// Diastolic pressure, mmHg.
    pub diastolic_mmhg: Range,
    /// Pulse or heart rate, bpm.
    pub heart_rate_bpm: Range,
    /// SpO2, percent.
    pub spo2_pct: Range,
    /// Body temperature, °C.
    pub temperature_c: Range,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            weight_kg: Range::new(2, 400),
            resistance_ohm: Range::new(150, 1200),
            reactance_ohm: Range::new(1, 200),
            rr_interval_ms: Range::new(200, 3000),
            height_cm: Range::new(50, 250),
            systolic_mmhg: Range::new(50, 300),
            diastolic_mmhg: Range::new(20, 200),
            heart_rate_bpm: Range::new(20, 300),
            spo2_pct: Range::new(50, 100),
            temperature_c: Range::new(30, 45),
        }
    }
}

/// Validation and dedup settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// How far `measured_at` may be ahead of the processor clock.
    pub max_clock_skew_ms: i64,
    /// Event-time horizon of dedup; older readings are `too_old`.
    pub dedup_horizon_ms: i64,
    /// Most reading ids remembered per partition.
    pub dedup_max_entries: usize,
    /// Most RR intervals in one HeartRhythm reading.
    pub max_rr_intervals: usize,
    /// Gateway delay beyond which a reading is flagged `delayed_delivery`.
    pub delayed_delivery_ms: i64,
    /// Invalid share of the last `invalid_ratio_window` readings that stops the consumer.
    pub max_invalid_ratio: f64,
    /// Number of recent readings the invalid ratio is measured over.
    pub invalid_ratio_window: usize,
    /// Plausibility ranges.
    pub ranges: Ranges,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_clock_skew_ms: 5 * 60 * 1000,
            dedup_horizon_ms: 24 * 60 * 60 * 1000,
            dedup_max_entries: 1_000_000,
            max_rr_intervals: 2048,
            delayed_delivery_ms: 60 * 60 * 1000,
            max_invalid_ratio: 0.5,
            invalid_ratio_window: 1000,
            ranges: Ranges::default(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Log format.
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `vitalstream=debug`.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `path` (if given), then `VITALSTREAM_*` env
    /// variables (`__` separates levels: `VITALSTREAM_KAFKA__BROKERS`; one
    /// without `__`, such as Kubernetes' `VITALSTREAM_SERVICE_HOST`, is not
    /// configuration and is ignored).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, key and problem.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config".into(),
                    problem: format!("file {} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = env::merge(figment)?;
        Self::finish(figment)
    }

    /// Extracts, validates, then reads the secrets given as files or
    /// variables (after validation, so a conflict is reported before any
    /// file is touched).
    fn finish(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| Box::new(hide_secret_lines(e)))?;
        config.validate()?;
        config.kafka.load_secret_sources()?;
        config.erasure.load_file()?;
        config.schema_registry.load_files()?;
        Ok(config)
    }

    /// The configuration as TOML, secrets shown as `[redacted]`; what
    /// `vitalstream config dump` prints.
    ///
    /// # Errors
    /// A value TOML cannot hold (none of the built-in settings).
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Parses a TOML document (no env overrides) and validates it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and problem.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::finish(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    /// Checks cross-field and range constraints.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for the first offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                problem: problem.to_owned(),
            })
        };
        if self.kafka.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "must not be empty");
        }
        if self.kafka.group_id.trim().is_empty() {
            return invalid("kafka.group_id", "must not be empty");
        }
        self.kafka.validate_security()?;
        self.schema_registry.validate()?;
        if self.codec.max_string_bytes == 0 {
            return invalid("codec.max_string_bytes", "must be at least 1");
        }
        if self.codec.max_array_items == 0 {
            return invalid("codec.max_array_items", "must be at least 1");
        }
        let mut writer_ids = std::collections::BTreeSet::new();
        for w in &self.codec.raw_reading_writers {
            if w.id == self.schemas.raw_reading || !writer_ids.insert(w.id) {
                return invalid(
                    "codec.raw_reading_writers",
                    "each id must be distinct and differ from schemas.raw_reading",
                );
            }
        }
        if self.kafka.changelog_reader == ChangelogReader::LogMarkers
            && self.kafka.security_protocol() != Some(SecurityProtocol::Plaintext)
        {
            return invalid(
                "kafka.changelog_reader",
                "log_markers speaks plaintext only; use read_committed with TLS or SASL",
            );
        }
        if self.processing.batch_max_messages == 0 {
            return invalid("processing.batch_max_messages", "must be at least 1");
        }
        if !(10..=5_000_000).contains(&self.processing.max_in_flight) {
            return invalid("processing.max_in_flight", "must be from 10 to 5000000");
        }
        if self.processing.transaction_timeout_ms < 1_000 {
            return invalid("processing.transaction_timeout_ms", "must be at least 1000");
        }
        if self.processing.commit_interval_ms == 0 {
            return invalid("processing.commit_interval_ms", "must be at least 1");
        }
        if self.processing.commit_interval_ms >= self.processing.transaction_timeout_ms {
            return invalid(
                "processing.commit_interval_ms",
                "must be below processing.transaction_timeout_ms",
            );
        }
        self.hrv.validate()?;
        self.erasure.validate()?;
        if self.alerts.cooldown_ms < 0 {
            return invalid("alerts.cooldown_ms", "must not be negative");
        }
        if self.alerts.confirm_wait_ms <= 0 {
            return invalid("alerts.confirm_wait_ms", "must be positive");
        }
        if self.http.stall_after_ms < 1_000 {
            return invalid("http.stall_after_ms", "must be at least 1000");
        }
        let v = &self.validation;
        if v.dedup_horizon_ms <= 0 {
            return invalid("validation.dedup_horizon_ms", "must be positive");
        }
        if v.max_clock_skew_ms < 0 {
            return invalid("validation.max_clock_skew_ms", "must not be negative");
        }
        if v.dedup_max_entries == 0 {
            return invalid("validation.dedup_max_entries", "must be at least 1");
        }
        if !(v.max_invalid_ratio > 0.0 && v.max_invalid_ratio <= 1.0) {
            return invalid("validation.max_invalid_ratio", "must be in (0, 1]");
        }
        if v.invalid_ratio_window == 0 {
            return invalid("validation.invalid_ratio_window", "must be at least 1");
        }
        let r = &v.ranges;
        for (key, range) in [
            ("validation.ranges.weight_kg", r.weight_kg),
            ("validation.ranges.resistance_ohm", r.resistance_ohm),
            ("validation.ranges.reactance_ohm", r.reactance_ohm),
            ("validation.ranges.rr_interval_ms", r.rr_interval_ms),
            ("validation.ranges.height_cm", r.height_cm),
            ("validation.ranges.systolic_mmhg", r.systolic_mmhg),
            ("validation.ranges.diastolic_mmhg", r.diastolic_mmhg),
            ("validation.ranges.heart_rate_bpm", r.heart_rate_bpm),
            ("validation.ranges.spo2_pct", r.spo2_pct),
            ("validation.ranges.temperature_c", r.temperature_c),
        ] {
            if range.min > range.max {
                return invalid(key, "has min greater than max");
            }
        }
        let names = [
            &self.topics.raw,
            &self.topics.enriched,
            &self.topics.dlq,
            &self.topics.hrv_windows,
            &self.topics.alerts,
        ];
        if names.iter().any(|n| n.trim().is_empty()) {
            return invalid("topics", "names must not be empty");
        }
        if names[1..].contains(&names[0]) {
            return invalid("topics.raw", "must differ from every output topic");
        }
        Ok(())
    }
}

/// A TOML syntax error quotes the offending line (`2 | key = "value`). On a
/// line naming a password or secret, that quote could be the secret itself,
/// so it is replaced; the line and column numbers remain.
fn hide_secret_lines(mut error: figment::Error) -> figment::Error {
    if let figment::error::Kind::Message(message) = &mut error.kind {
        let hidden: Vec<String> = message
            .lines()
            .map(|line| match line.split_once(" | ") {
                Some((number, text))
                    if !number.trim().is_empty()
                        && number.trim().chars().all(|c| c.is_ascii_digit())
                        && mentions_secret(text) =>
                {
                    format!("{number} | {REDACTED} (a line that may hold a secret)")
                }
                _ => line.to_owned(),
            })
            .collect();
        *message = hidden.join("\n");
    }
    error
}

/// Whether a config line names a secret key (see [`is_secret_property`]).
fn mentions_secret(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "password",
        "secret",
        "ssl.key.pem",
        "sasl.oauthbearer.config",
        "token",
    ]
    .iter()
    .any(|word| text.contains(word))
}

/// Reads a secret from `path`, dropping trailing newlines (`echo` adds one).
///
/// # Errors
/// [`ConfigError`] naming `key` and the file: unreadable, not UTF-8 or empty.
/// The content is never part of the error.
fn read_secret_file(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::SecretFile {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let problem = |what: &str| ConfigError::Invalid {
        key: key.to_owned(),
        problem: format!("names {}, which {what}", path.display()),
    };
    let text = String::from_utf8(bytes).map_err(|_| problem("is not UTF-8 text"))?;
    let secret = Secret::new(text.trim_end_matches(['\n', '\r']));
    if secret.expose().is_empty() {
        return Err(problem("is empty"));
    }
    security::check_secret(key, &secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_transactional_id_is_the_group_and_the_os_host_name() {
        let cfg = Config::default();
        let id = cfg.kafka.transactional_id();
        let host = gethostname::gethostname()
            .into_string()
            .expect("UTF-8 host name");
        assert_eq!(id.id, format!("vitalstream-{host}"));
        assert_eq!(id.source, TransactionalIdSource::HostName);
        assert_eq!(cfg.kafka.transactional_id(), id, "stable within a run");
        let mut set = Config::default();
        set.kafka.transactional_id = "tx-1".into();
        assert_eq!(
            set.kafka.transactional_id().source,
            TransactionalIdSource::Configured
        );
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Config::from_toml("[kafka]\nbrokerz = \"x:1\"\n").expect_err("unknown key");
        assert!(err.to_string().contains("brokerz"), "{err}");
    }

    #[test]
    fn passthrough_and_ranges_parse() {
        let cfg = Config::from_toml(
            r#"
            [kafka]
            brokers = "b1:9092,b2:9092"
            [kafka.librdkafka]
            "security.protocol" = "SASL_SSL"
            [validation.ranges.weight_kg]
            min = 1.5
            max = 300
            "#,
        )
        .expect("parses");
        assert_eq!(
            cfg.kafka.librdkafka.get("security.protocol"),
            Some("SASL_SSL")
        );
        assert_eq!(cfg.validation.ranges.weight_kg.min, Decimal::new(15, 1));
    }

    #[test]
    fn a_syntax_error_on_a_secret_line_does_not_quote_it() {
        let err = Config::from_toml("[kafka.security]\nsasl_password = \"half-typed-secret\n")
            .expect_err("syntax error");
        let text = err.to_string();
        assert!(!text.contains("half-typed-secret"), "{text}");
        assert!(text.contains("line 2"), "the position is kept: {text}");
        let err = Config::from_toml("[kafka]\nbrokers = \"b1:9092\n").expect_err("syntax error");
        assert!(
            err.to_string().contains("b1:9092"),
            "other lines are quoted: {err}"
        );
    }

    #[test]
    fn the_log_markers_reader_is_plaintext_only() {
        let cfg =
            Config::from_toml("[kafka]\nchangelog_reader = \"log_markers\"\n").expect("valid");
        assert_eq!(cfg.kafka.changelog_reader, ChangelogReader::LogMarkers);
        assert_eq!(
            Config::default().kafka.changelog_reader,
            ChangelogReader::ReadCommitted
        );
        let err = Config::from_toml(
            "[kafka]\nchangelog_reader = \"log_markers\"\n\n[kafka.librdkafka]\n\"security.protocol\" = \"ssl\"\n",
        )
        .expect_err("refused");
        assert!(err.to_string().contains("kafka.changelog_reader"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let err = Config::from_toml("[validation]\nmax_invalid_ratio = 0\n").expect_err("invalid");
        assert!(
            err.to_string().contains("validation.max_invalid_ratio"),
            "{err}"
        );
        let err = Config::from_toml("[validation.ranges.spo2_pct]\nmin = 100\nmax = 50\n")
            .expect_err("invalid");
        assert!(err.to_string().contains("spo2_pct"), "{err}");
    }
}
