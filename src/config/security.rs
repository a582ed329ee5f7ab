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
use super::passthrough::Librdkafka;
use super::secret::{REDACTED, Secret};

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

    /// Checks that the settings fit together (no file is read).
    ///
    /// `effective` is the protocol in force, this section's or the
    /// passthrough map's; `None` when the map names one librdkafka knows and
    /// vitalstream does not.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending key. No message
    /// contains a secret.
    pub fn validate(
        &self,
        passthrough: &Librdkafka,
        effective: Option<SecurityProtocol>,
    ) -> Result<(), ConfigError> {
        for (field, property) in self.properties_set() {
            if passthrough.contains(property) {
                return Err(invalid(
                    &format!("kafka.librdkafka.\"{property}\""),
                    format!("is also set by kafka.security.{field}; set it in one place"),
                ));
            }
        }
        for (inline, file, name) in [
            (
                &self.sasl_password,
                &self.sasl_password_file,
                "sasl_password",
            ),
            (
                &self.ssl_key_password,
                &self.ssl_key_password_file,
                "ssl_key_password",
            ),
        ] {
            if inline.is_some() && file.is_some() {
                return Err(invalid(
                    &format!("kafka.security.{name}"),
                    format!("and kafka.security.{name}_file are both set; give the secret one way"),
                ));
            }
            if let Some(secret) = inline {
                check_secret(&format!("kafka.security.{name}"), secret)?;
            }
        }
        if self
            .sasl_username
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            return Err(invalid("kafka.security.sasl_username", "must not be empty"));
        }
        self.validate_sasl(passthrough, effective)?;
        self.validate_tls(effective)
    }

    fn validate_sasl(
        &self,
        passthrough: &Librdkafka,
        effective: Option<SecurityProtocol>,
    ) -> Result<(), ConfigError> {
        let has_password = self.sasl_password.is_some() || self.sasl_password_file.is_some();
        let sasl = effective.is_none_or(SecurityProtocol::uses_sasl);
        if !sasl {
            let protocol = effective.map_or("", SecurityProtocol::as_str);
            for (set, key) in [
                (self.sasl_mechanism.is_some(), "sasl_mechanism"),
                (self.sasl_username.is_some(), "sasl_username"),
                (has_password, "sasl_password"),
            ] {
                if set {
                    return Err(invalid(
                        &format!("kafka.security.{key}"),
                        format!(
                            "is set but protocol is {protocol}; SASL needs protocol = \"sasl_ssl\" (or \"sasl_plaintext\")"
                        ),
                    ));
                }
            }
            return Ok(());
        }
        let mechanism_in_passthrough =
            passthrough.contains("sasl.mechanisms") || passthrough.contains("sasl.mechanism");
        if self.protocol.is_some_and(SecurityProtocol::uses_sasl)
            && self.sasl_mechanism.is_none()
            && !mechanism_in_passthrough
        {
            return Err(invalid(
                "kafka.security.sasl_mechanism",
                "must be set when protocol is sasl_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            ));
        }
        if let Some(mechanism) = self.sasl_mechanism {
            if self.sasl_username.is_none() {
                return Err(invalid(
                    "kafka.security.sasl_username",
                    format!(
                        "must be set for sasl_mechanism = \"{}\"",
                        mechanism.as_str()
                    ),
                ));
            }
            if !has_password {
                return Err(invalid(
                    "kafka.security.sasl_password",
                    format!(
                        "must be set for sasl_mechanism = \"{}\": sasl_password_file, the \
                         VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD variable, or inline",
                        mechanism.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_tls(&self, effective: Option<SecurityProtocol>) -> Result<(), ConfigError> {
        let has_key_password =
            self.ssl_key_password.is_some() || self.ssl_key_password_file.is_some();
        if let Some(protocol) = effective.filter(|p| !p.uses_tls()) {
            for (set, key) in [
                (self.ssl_ca_location.is_some(), "ssl_ca_location"),
                (
                    self.ssl_certificate_location.is_some(),
                    "ssl_certificate_location",
                ),
                (self.ssl_key_location.is_some(), "ssl_key_location"),
                (has_key_password, "ssl_key_password"),
                (
                    self.ssl_endpoint_identification.is_some(),
                    "ssl_endpoint_identification",
                ),
            ] {
                if set {
                    return Err(invalid(
                        &format!("kafka.security.{key}"),
                        format!(
                            "has no effect with protocol {}; TLS needs protocol = \"ssl\" or \"sasl_ssl\"",
                            protocol.as_str()
                        ),
                    ));
                }
            }
        }
        match (&self.ssl_certificate_location, &self.ssl_key_location) {
            (Some(_), None) => {
                return Err(invalid(
                    "kafka.security.ssl_key_location",
                    "must be set with ssl_certificate_location (mutual TLS needs both)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "kafka.security.ssl_certificate_location",
                    "must be set with ssl_key_location (mutual TLS needs both)",
                ));
            }
            _ => {}
        }
        if has_key_password && self.ssl_key_location.is_none() {
            return Err(invalid(
                "kafka.security.ssl_key_password",
                "is set but ssl_key_location is not",
            ));
        }
        Ok(())
    }

    /// Reads the `*_file` secrets and checks that the TLS files exist, so a
    /// missing mount fails at start-up naming the file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the file, never its content.
    pub fn load_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.sasl_password_file {
            self.sasl_password_from_file = Some(super::read_secret_file(
                "kafka.security.sasl_password_file",
                path,
            )?);
        }
        if let Some(path) = &self.ssl_key_password_file {
            self.ssl_key_password_from_file = Some(super::read_secret_file(
                "kafka.security.ssl_key_password_file",
                path,
            )?);
        }
        for (key, path) in [
            ("kafka.security.ssl_ca_location", &self.ssl_ca_location),
            (
                "kafka.security.ssl_certificate_location",
                &self.ssl_certificate_location,
            ),
            ("kafka.security.ssl_key_location", &self.ssl_key_location),
        ] {
            // `probe` asks librdkafka to look for the system's CA store.
            let path = path.as_deref().filter(|p| *p != Path::new("probe"));
            if let Some(path) = path.filter(|p| !p.is_file()) {
                return Err(invalid(
                    key,
                    format!("names {}, which is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
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
mod tests {
    use super::*;
    use crate::config::Config;

    fn error_of(toml_text: &str) -> String {
        Config::from_toml(toml_text)
            .expect_err("configuration is rejected")
            .to_string()
    }

    #[test]
    fn sasl_scram_over_tls_with_a_password_file_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "correct horse\n").expect("write");
        let cfg = Config::from_toml(&format!(
            r#"
            [kafka.security]
            protocol = "sasl_ssl"
            sasl_mechanism = "SCRAM-SHA-512"
            sasl_username = "vitalstream"
            sasl_password_file = {:?}
            ssl_endpoint_identification = "https"
            "#,
            pw.display().to_string()
        ))
        .expect("valid");
        let s = &cfg.kafka.security;
        assert_eq!(s.protocol, Some(SecurityProtocol::SaslSsl));
        assert_eq!(s.sasl_mechanism, Some(SaslMechanism::ScramSha512));
        // One trailing newline dropped, inner spaces kept.
        assert_eq!(s.sasl_password().map(Secret::expose), Some("correct horse"));
        assert!(!format!("{cfg:?}").contains("correct horse"));
    }

    #[test]
    fn kafka_spellings_of_protocol_and_mechanism_are_accepted() {
        let cfg = Config::from_toml(
            "[kafka.security]\nprotocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"scram-sha-256\"\n\
             sasl_username = \"u\"\nsasl_password = \"p\"\n",
        )
        .expect("valid");
        assert_eq!(
            cfg.kafka.security.protocol,
            Some(SecurityProtocol::SaslPlaintext)
        );
        assert_eq!(
            cfg.kafka.security.sasl_mechanism,
            Some(SaslMechanism::ScramSha256)
        );
    }

    #[test]
    fn a_mechanism_without_username_is_rejected() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_password = \"p4ss\"\n",
        );
        assert!(err.contains("kafka.security.sasl_username"), "{err}");
        assert!(err.contains("PLAIN"), "{err}");
        assert!(!err.contains("p4ss"), "{err}");
    }

    #[test]
    fn a_mechanism_without_password_is_rejected() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-256\"\nsasl_username = \"u\"\n",
        );
        assert!(err.contains("kafka.security.sasl_password"), "{err}");
        assert!(
            err.contains("sasl_password_file"),
            "says how to give it: {err}"
        );
    }

    #[test]
    fn sasl_protocol_without_mechanism_is_rejected() {
        let err = error_of("[kafka.security]\nprotocol = \"sasl_ssl\"\n");
        assert!(err.contains("kafka.security.sasl_mechanism"), "{err}");
    }

    #[test]
    fn a_mechanism_given_in_the_passthrough_map_satisfies_sasl() {
        Config::from_toml(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\n[kafka.librdkafka]\n\"sasl.mechanisms\" = \"OAUTHBEARER\"\n",
        )
        .expect("valid");
    }

    #[test]
    fn password_inline_and_from_file_is_rejected_naming_both() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n\
             sasl_password = \"inline-pw\"\nsasl_password_file = \"/run/secrets/pw\"\n",
        );
        assert!(err.contains("kafka.security.sasl_password"), "{err}");
        assert!(err.contains("sasl_password_file"), "{err}");
        assert!(!err.contains("inline-pw"), "{err}");
    }

    #[test]
    fn sasl_credentials_on_a_plaintext_connection_are_rejected() {
        let err = error_of("[kafka.security]\nsasl_username = \"u\"\n");
        assert!(err.contains("kafka.security.sasl_username"), "{err}");
        assert!(err.contains("sasl_ssl"), "{err}");
    }

    #[test]
    fn tls_files_without_tls_are_rejected() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"sasl_plaintext\"\nsasl_mechanism = \"PLAIN\"\n\
             sasl_username = \"u\"\nsasl_password = \"p\"\nssl_ca_location = \"/etc/ca.pem\"\n",
        );
        assert!(err.contains("kafka.security.ssl_ca_location"), "{err}");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"ssl\"\nssl_certificate_location = \"/etc/client.pem\"\n",
        );
        assert!(err.contains("kafka.security.ssl_key_location"), "{err}");
        let err = error_of(
            "[kafka.security]\nprotocol = \"ssl\"\nssl_certificate_location = \"/c.pem\"\n\
             ssl_key_location = \"/k.pem\"\nssl_key_password = \"kp\"\nssl_key_password_file = \"/kp\"\n",
        );
        assert!(err.contains("kafka.security.ssl_key_password"), "{err}");
    }

    #[test]
    fn a_setting_in_both_places_is_rejected() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"ssl\"\n[kafka.librdkafka]\n\"security.protocol\" = \"SSL\"\n",
        );
        assert!(err.contains("security.protocol"), "{err}");
        assert!(err.contains("kafka.security.protocol"), "{err}");
    }

    #[test]
    fn a_missing_password_file_names_the_file() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n\
             sasl_password_file = \"/nonexistent/vitalstream-pw\"\n",
        );
        assert!(err.contains("kafka.security.sasl_password_file"), "{err}");
        assert!(err.contains("/nonexistent/vitalstream-pw"), "{err}");
    }

    #[test]
    fn a_missing_ca_file_names_the_file() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"ssl\"\nssl_ca_location = \"/nonexistent/ca.pem\"\n",
        );
        assert!(err.contains("kafka.security.ssl_ca_location"), "{err}");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        Config::from_toml("[kafka.security]\nprotocol = \"ssl\"\nssl_ca_location = \"probe\"\n")
            .expect("probe is librdkafka's, not a file");
    }

    #[test]
    fn an_empty_or_redacted_secret_is_rejected() {
        let base = "[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n";
        let err = error_of(&format!("{base}sasl_password = \"\"\n"));
        assert!(err.contains("must not be empty"), "{err}");
        let err = error_of(&format!("{base}sasl_password = \"[redacted]\"\n"));
        assert!(err.contains("placeholder"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("empty");
        std::fs::write(&pw, "\n").expect("write");
        let err = error_of(&format!(
            "{base}sasl_password_file = {:?}\n",
            pw.display().to_string()
        ));
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn a_numeric_password_is_rejected_without_echoing_it() {
        let err = error_of(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n\
             sasl_password = 8675309\n",
        );
        assert!(!err.contains("8675309"), "{err}");
        assert!(err.contains("sasl_password"), "{err}");
    }

    #[test]
    fn the_dump_redacts_every_secret_and_reloads() {
        let cfg = Config::from_toml(
            r#"
            [kafka.security]
            protocol = "sasl_ssl"
            sasl_mechanism = "SCRAM-SHA-256"
            sasl_username = "vitalstream"
            sasl_password = "s3cret-sasl"
            [kafka.librdkafka]
            "sasl.oauthbearer.client.secret" = "s3cret-oauth"
            "linger.ms" = "7"
            "#,
        )
        .expect("valid");
        let dump = cfg.to_redacted_toml().expect("dump");
        assert!(!dump.contains("s3cret"), "{dump}");
        assert!(dump.contains("sasl_password = \"[redacted]\""), "{dump}");
        assert!(dump.contains("SCRAM-SHA-256"), "{dump}");
        assert!(dump.contains("\"linger.ms\" = \"7\""), "{dump}");
        // The dump is a config file again; its placeholders are refused as secrets.
        let err = Config::from_toml(&dump).expect_err("placeholder secret");
        assert!(err.to_string().contains("placeholder"), "{err}");
        let plain = Config::default().to_redacted_toml().expect("dump");
        assert_eq!(
            Config::from_toml(&plain).expect("reloads"),
            Config::default()
        );
    }

    /// Found by the config fuzz target: a password spelled like another
    /// setting's value (`true`) is redacted all the same, and the dump does
    /// not depend on the password at all.
    #[test]
    fn a_password_spelled_like_another_value_is_redacted() {
        let with = |password: &str| {
            Config::from_toml(&format!(
                "[kafka.security]\nprotocol = \"sasl_ssl\"\n\
                 sasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"vitalstream\"\n\
                 sasl_password = \"{password}\"\n"
            ))
            .expect("valid")
            .to_redacted_toml()
            .expect("dump")
        };
        let dump = with("true");
        assert!(dump.contains("sasl_password = \"[redacted]\""), "{dump}");
        assert_eq!(dump, with("another-password"));
    }
}
