//! `[kafka.security]`: TLS and SASL towards the brokers, typed and checked at
//! load. `crate::kafka` maps it to librdkafka's `security.protocol`,
//! `sasl.*` and `ssl.*` properties for every client vitalstream creates.
//!
//! Each secret can be given inline, from a file (`*_file`, read at load, one
//! trailing newline dropped) or from the environment
//! (`VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD`, taken verbatim).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::secret::{REDACTED, Secret};

mod validate;

/// How the connection to the brokers is protected (librdkafka `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// Neither encrypted nor authenticated.
    #[serde(alias = "PLAINTEXT")]
    Plaintext,
    /// TLS; the client authenticates with a certificate if one is given.
    #[serde(alias = "SSL")]
    Ssl,
    /// SASL authentication over an unencrypted connection.
    #[serde(alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[serde(alias = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Parses a librdkafka value (any case).
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "plaintext" => Some(Self::Plaintext),
            "ssl" => Some(Self::Ssl),
            "sasl_plaintext" => Some(Self::SaslPlaintext),
            "sasl_ssl" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    /// Whether the connection uses TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// SASL mechanism (librdkafka `sasl.mechanisms`). Others (GSSAPI,
/// OAUTHBEARER) can be configured through `[kafka.librdkafka]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// Username and password sent as they are: use it only with `sasl_ssl`.
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Whether the client checks that the broker's certificate names the host it
/// connected to (librdkafka `ssl.endpoint.identification.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointIdentification {
    /// Check the host name (librdkafka's default).
    Https,
    /// Do not check: only for brokers whose certificates lack their names.
    None,
}

impl EndpointIdentification {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::None => "none",
        }
    }
}

/// TLS and SASL settings. Every key is optional; unset keys leave
/// librdkafka's defaults (plaintext, no authentication).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: Option<SecurityProtocol>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password, inline or from `VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD`.
    pub sasl_password: Option<Secret>,
    /// File holding the SASL password (e.g. a mounted Kubernetes secret).
    pub sasl_password_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) that verify the brokers; unset: the system's CAs.
    pub ssl_ca_location: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub ssl_certificate_location: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    pub ssl_key_location: Option<PathBuf>,
    /// Password of an encrypted client key, inline or from
    /// `VITALSTREAM_KAFKA__SECURITY__SSL_KEY_PASSWORD`.
    pub ssl_key_password: Option<Secret>,
    /// File holding the client key's password.
    pub ssl_key_password_file: Option<PathBuf>,
    /// Broker host-name verification: `https` (librdkafka's default) or `none`.
    pub ssl_endpoint_identification: Option<EndpointIdentification>,
    /// `sasl_password_file`'s content, once read.
    #[serde(skip)]
    sasl_password_from_file: Option<Secret>,
    /// `ssl_key_password_file`'s content, once read.
    #[serde(skip)]
    ssl_key_password_from_file: Option<Secret>,
}

/// One `[kafka.security]` setting as a librdkafka property.
pub struct LibrdkafkaSetting<'a> {
    /// The `[kafka.security]` key.
    pub field: &'static str,
    /// The librdkafka property it sets.
    pub property: &'static str,
    /// Whether the configuration gives it (inline or as a file).
    pub given: bool,
    /// The value to set; `None` when not given (or a file not read yet).
    pub value: Option<Cow<'a, str>>,
}

/// Environment variables read verbatim for secret-bearing keys: figment would
/// parse `12345` as a number and `"x"` as `x`, and report a type error with
/// the value in it. (variable, dotted key)
pub(super) const VERBATIM_ENV: [(&str, &str); 6] = [
    ("VITALSTREAM_ERASURE__HASH_KEY", "erasure.hash_key"),
    (
        "VITALSTREAM_KAFKA__SECURITY__SASL_USERNAME",
        "kafka.security.sasl_username",
    ),
    (
        "VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD",
        "kafka.security.sasl_password",
    ),
    (
        "VITALSTREAM_KAFKA__SECURITY__SSL_KEY_PASSWORD",
        "kafka.security.ssl_key_password",
    ),
    (
        "VITALSTREAM_SCHEMA_REGISTRY__BASIC_AUTH_PASSWORD",
        "schema_registry.basic_auth_password",
    ),
    (
        "VITALSTREAM_SCHEMA_REGISTRY__BEARER_TOKEN",
        "schema_registry.bearer_token",
    ),
];

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

impl SecurityConfig {
    /// The SASL password from whichever source gave it.
    pub fn sasl_password(&self) -> Option<&Secret> {
        self.sasl_password
            .as_ref()
            .or(self.sasl_password_from_file.as_ref())
    }

    /// The client key's password from whichever source gave it.
    pub fn ssl_key_password(&self) -> Option<&Secret> {
        self.ssl_key_password
            .as_ref()
            .or(self.ssl_key_password_from_file.as_ref())
    }

    /// Each setting with the librdkafka property it sets: the one mapping
    /// from `[kafka.security]` to librdkafka, used both to configure clients
    /// and to refuse the same property in the passthrough map.
    pub fn librdkafka_settings(&self) -> [LibrdkafkaSetting<'_>; 9] {
        fn path(p: &Option<PathBuf>) -> Option<Cow<'_, str>> {
            p.as_deref().map(Path::to_string_lossy)
        }
        fn text(v: Option<&'static str>) -> Option<Cow<'static, str>> {
            v.map(Cow::Borrowed)
        }
        fn secret(s: Option<&Secret>) -> Option<Cow<'_, str>> {
            s.map(|s| Cow::Borrowed(s.expose()))
        }
        let setting = |field, property, given, value| LibrdkafkaSetting {
            field,
            property,
            given,
            value,
        };
        [
            setting(
                "protocol",
                "security.protocol",
                self.protocol.is_some(),
                text(self.protocol.map(SecurityProtocol::as_str)),
            ),
            setting(
                "sasl_mechanism",
                "sasl.mechanisms",
                self.sasl_mechanism.is_some(),
                text(self.sasl_mechanism.map(SaslMechanism::as_str)),
            ),
            setting(
                "sasl_username",
                "sasl.username",
                self.sasl_username.is_some(),
                self.sasl_username.as_deref().map(Cow::Borrowed),
            ),
            setting(
                "sasl_password",
                "sasl.password",
                self.sasl_password.is_some() || self.sasl_password_file.is_some(),
                secret(self.sasl_password()),
            ),
            setting(
                "ssl_ca_location",
                "ssl.ca.location",
                self.ssl_ca_location.is_some(),
                path(&self.ssl_ca_location),
            ),
            setting(
                "ssl_certificate_location",
                "ssl.certificate.location",
                self.ssl_certificate_location.is_some(),
                path(&self.ssl_certificate_location),
            ),
            setting(
                "ssl_key_location",
                "ssl.key.location",
                self.ssl_key_location.is_some(),
                path(&self.ssl_key_location),
            ),
            setting(
                "ssl_key_password",
                "ssl.key.password",
                self.ssl_key_password.is_some() || self.ssl_key_password_file.is_some(),
                secret(self.ssl_key_password()),
            ),
            setting(
                "ssl_endpoint_identification",
                "ssl.endpoint.identification.algorithm",
                self.ssl_endpoint_identification.is_some(),
                text(
                    self.ssl_endpoint_identification
                        .map(EndpointIdentification::as_str),
                ),
            ),
        ]
    }

    /// Typed setting → librdkafka property it sets, for the settings that
    /// are given (a password file counts before it is read), plus librdkafka's
    /// alias `sasl.mechanism` of `sasl.mechanisms`.
    fn properties_set(&self) -> Vec<(&'static str, &'static str)> {
        let mut set: Vec<_> = self
            .librdkafka_settings()
            .into_iter()
            .filter(|s| s.given)
            .map(|s| (s.field, s.property))
            .collect();
        if self.sasl_mechanism.is_some() {
            set.push(("sasl_mechanism", "sasl.mechanism"));
        }
        set
    }
}

/// Rejects an empty secret and the placeholder a config dump prints.
pub(super) fn check_secret(key: &str, secret: &Secret) -> Result<(), ConfigError> {
    if secret.expose().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    if secret.expose() == REDACTED {
        return Err(invalid(
            key,
            format!("is {REDACTED}, the placeholder of a config dump, not the secret itself"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
