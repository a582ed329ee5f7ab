//! One typed, validated configuration (TOML file + `VITALSTREAM_*` env overrides).
//!
//! One file per section: [`KafkaConfig`] (`kafka.rs`, TLS and SASL in
//! `security/`), [`Topics`], [`ProcessingConfig`], [`ErasureConfig`],
//! [`HttpConfig`] and [`TelemetryConfig`] (`telemetry.rs`), the schema
//! registry (`registry.rs`); the cross-field checks in `validate.rs`. The
//! sections the processing core applies ([`ValidationConfig`], HRV, alerts)
//! are defined in [`crate::process`] and only assembled here.
//!
//! Unknown keys are errors that name the key. Units are in field names.
//! [`Config::validate`] runs at start-up and returns a typed error, so a bad
//! deployment fails before it touches a broker.
//!
//! Secrets (SASL and TLS key passwords, secret librdkafka properties) are
//! [`Secret`]s: every `Debug`, `Display` and `Serialize` of the configuration
//! shows `[redacted]` in their place, and no load error quotes one.

mod env;
mod erasure;
mod kafka;
mod passthrough;
mod processing;
mod registry;
mod secret;
mod security;
mod telemetry;
mod topics;
mod validate;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use erasure::ErasureConfig;
pub use kafka::{
    ChangelogReader, KafkaConfig, Rebalancing, TransactionalId, TransactionalIdSource,
};
pub use passthrough::{Librdkafka, PassthroughValue};
pub use processing::{Guarantee, ProcessingConfig};
pub use registry::SchemaRegistryConfig;
pub use secret::{REDACTED, Secret, is_secret_property};
pub use security::{EndpointIdentification, SaslMechanism, SecurityConfig, SecurityProtocol};
pub use telemetry::{HttpConfig, LogFormat, TelemetryConfig};
pub use topics::Topics;
// Validation settings belong to the processing core that applies them;
// re-exported so `config::ValidationConfig` keeps working.
pub use crate::process::{Range, Ranges, ValidationConfig};

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
mod tests;
