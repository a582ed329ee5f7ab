//! `[schema_registry]`: a Confluent-compatible schema registry (DESIGN.md
//! §1), typed and checked at load. Unset `url`: no registry, the ids of
//! `[schemas]` and the embedded schema files are used.
//!
//! Authentication and TLS follow `[kafka.security]`: each secret inline,
//! from a file (`*_file`) or from the environment
//! (`VITALSTREAM_SCHEMA_REGISTRY__BASIC_AUTH_PASSWORD`, taken verbatim);
//! `ssl_ca_location`, `ssl_certificate_location` and `ssl_key_location` name
//! PEM files, as librdkafka's properties of the same names do.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::secret::Secret;
use super::security::check_secret;

/// The schema registry client settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistryConfig {
    /// Base URL, e.g. `https://registry:8081`; several comma-separated
    /// URLs are tried in order. Empty: no registry.
    pub url: String,
    /// User name of HTTP basic authentication (Confluent Cloud: the API key).
    pub basic_auth_username: Option<String>,
    /// Its password, inline or from `VITALSTREAM_SCHEMA_REGISTRY__BASIC_AUTH_PASSWORD`.
    pub basic_auth_password: Option<Secret>,
    /// File holding the basic-auth password (e.g. a mounted Kubernetes secret).
    pub basic_auth_password_file: Option<PathBuf>,
    /// Bearer token, inline or from `VITALSTREAM_SCHEMA_REGISTRY__BEARER_TOKEN`.
    pub bearer_token: Option<Secret>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) that verify the registry; unset: the system's CAs.
    pub ssl_ca_location: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub ssl_certificate_location: Option<PathBuf>,
    /// Client private key (PEM, PKCS#8) for mutual TLS.
    pub ssl_key_location: Option<PathBuf>,
    /// Deadline of one HTTP request.
    pub request_timeout_ms: u64,
    /// How long start-up tries to reach the registry (and register the
    /// output schemas) before the run stops (exit code 4).
    pub startup_timeout_ms: u64,
    /// While running: how long the lookup of a writer id not yet cached
    /// retries an unreachable registry before the run stops (exit code 4,
    /// nothing of the open batch committed). Cached ids keep working
    /// meanwhile.
    pub unavailable_timeout_ms: u64,
    /// How long an id the registry does not know stays known as missing
    /// (its records go to the DLQ as `unknown_schema` without a lookup).
    pub not_found_cache_ms: u64,
    /// `basic_auth_password_file`'s content, once read.
    #[serde(skip)]
    basic_auth_password_from_file: Option<Secret>,
    /// `bearer_token_file`'s content, once read.
    #[serde(skip)]
    bearer_token_from_file: Option<Secret>,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            basic_auth_username: None,
            basic_auth_password: None,
            basic_auth_password_file: None,
            bearer_token: None,
            bearer_token_file: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            request_timeout_ms: 10_000,
            startup_timeout_ms: 30_000,
            unavailable_timeout_ms: 30_000,
            not_found_cache_ms: 60_000,
            basic_auth_password_from_file: None,
            bearer_token_from_file: None,
        }
    }
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("schema_registry.{key}"),
        problem: problem.into(),
    }
}

impl SchemaRegistryConfig {
    /// Whether a registry is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The configured base URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The basic-auth password from whichever source gave it.
    pub fn basic_auth_password(&self) -> Option<&Secret> {
        self.basic_auth_password
            .as_ref()
            .or(self.basic_auth_password_from_file.as_ref())
    }

    /// The bearer token from whichever source gave it.
    pub fn bearer_token(&self) -> Option<&Secret> {
        self.bearer_token
            .as_ref()
            .or(self.bearer_token_from_file.as_ref())
    }

    /// Checks that the settings fit together (no file is read).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending key; no message
    /// contains a secret.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let has_password =
            self.basic_auth_password.is_some() || self.basic_auth_password_file.is_some();
        let has_token = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if !self.enabled() {
            let set = has_password
                || has_token
                || self.basic_auth_username.is_some()
                || self.ssl_ca_location.is_some()
                || self.ssl_certificate_location.is_some()
                || self.ssl_key_location.is_some();
            if set {
                return Err(invalid(
                    "url",
                    "must be set when other schema_registry keys are",
                ));
            }
            return Ok(());
        }
        for url in self.urls() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "url",
                    format!("`{url}` must start with http:// or https://"),
                ));
            }
        }
        for (inline, file, name) in [
            (
                &self.basic_auth_password,
                &self.basic_auth_password_file,
                "basic_auth_password",
            ),
            (&self.bearer_token, &self.bearer_token_file, "bearer_token"),
        ] {
            if inline.is_some() && file.is_some() {
                return Err(invalid(
                    name,
                    format!(
                        "and schema_registry.{name}_file are both set; give the secret one way"
                    ),
                ));
            }
            if let Some(secret) = inline {
                check_secret(&format!("schema_registry.{name}"), secret)?;
            }
        }
        if has_token && (self.basic_auth_username.is_some() || has_password) {
            return Err(invalid(
                "bearer_token",
                "and basic_auth_* are both set; choose one authentication",
            ));
        }
        if self.basic_auth_username.is_some() != has_password {
            return Err(invalid(
                "basic_auth_username",
                "and basic_auth_password must be set together",
            ));
        }
        if self.ssl_certificate_location.is_some() != self.ssl_key_location.is_some() {
            return Err(invalid(
                "ssl_certificate_location",
                "and ssl_key_location must be set together (mutual TLS needs both)",
            ));
        }
        for (key, value) in [
            ("request_timeout_ms", self.request_timeout_ms),
            ("startup_timeout_ms", self.startup_timeout_ms),
            ("unavailable_timeout_ms", self.unavailable_timeout_ms),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// Reads the `*_file` secrets and checks that the TLS files exist.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the file, never its content.
    pub fn load_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.basic_auth_password_file {
            self.basic_auth_password_from_file = Some(super::read_secret_file(
                "schema_registry.basic_auth_password_file",
                path,
            )?);
        }
        if let Some(path) = &self.bearer_token_file {
            self.bearer_token_from_file = Some(super::read_secret_file(
                "schema_registry.bearer_token_file",
                path,
            )?);
        }
        for (key, path) in [
            ("ssl_ca_location", &self.ssl_ca_location),
            ("ssl_certificate_location", &self.ssl_certificate_location),
            ("ssl_key_location", &self.ssl_key_location),
        ] {
            if let Some(path) = path.as_deref().filter(|p| !p.is_file()) {
                return Err(invalid(
                    key,
                    format!("names {}, which is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn registry_settings_parse_and_check() {
        let cfg = Config::from_toml(
            "[schema_registry]\nurl = \"https://a:8081, https://b:8081/\"\n\
             basic_auth_username = \"key\"\nbasic_auth_password = \"s3cret\"\n",
        )
        .expect("valid");
        assert_eq!(
            cfg.schema_registry.urls(),
            ["https://a:8081", "https://b:8081"]
        );
        assert!(!format!("{cfg:?}").contains("s3cret"));
        for (text, key) in [
            (
                "[schema_registry]\nbasic_auth_username = \"k\"\n",
                "schema_registry.url",
            ),
            (
                "[schema_registry]\nurl = \"registry:8081\"\n",
                "schema_registry.url",
            ),
            (
                "[schema_registry]\nurl = \"http://r\"\nbearer_token = \"t\"\n\
                 basic_auth_username = \"k\"\nbasic_auth_password = \"p\"\n",
                "schema_registry.bearer_token",
            ),
            (
                "[schema_registry]\nurl = \"http://r\"\nbasic_auth_username = \"k\"\n",
                "schema_registry.basic_auth_username",
            ),
            (
                "[schema_registry]\nurl = \"http://r\"\nssl_key_location = \"/k.pem\"\n",
                "schema_registry.ssl_certificate_location",
            ),
        ] {
            let err = Config::from_toml(text).expect_err(text);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }
}
