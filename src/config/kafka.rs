//! `[kafka]`: connection, group, transactional id and rebalancing settings
//! (TLS and SASL in [`super::security`]).

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, Librdkafka, Secret, SecurityConfig, SecurityProtocol, is_secret_property, security,
};

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
    pub(super) fn validate_security(&self) -> Result<(), ConfigError> {
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
    pub(super) fn load_secret_sources(&mut self) -> Result<(), ConfigError> {
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
