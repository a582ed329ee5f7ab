//! [`SecurityConfig::validate`] (do the settings fit together) and
//! [`SecurityConfig::load_files`] (read the secrets given as files).

use std::path::Path;

use super::super::passthrough::Librdkafka;
use super::super::{ConfigError, read_secret_file};
use super::{SecurityConfig, SecurityProtocol, check_secret, invalid};

impl SecurityConfig {
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
            self.sasl_password_from_file =
                Some(read_secret_file("kafka.security.sasl_password_file", path)?);
        }
        if let Some(path) = &self.ssl_key_password_file {
            self.ssl_key_password_from_file = Some(read_secret_file(
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
