//! A configuration value that must never be shown: a SASL password, a TLS key
//! password, an OAuth client secret.
//!
//! [`Secret`] wraps `secrecy::SecretString` (wiped from memory on drop, read
//! only through an explicit [`Secret::expose`]) and adds what a config field
//! needs: `Debug`, `Display` and `Serialize` all print [`REDACTED`], so no
//! `derive(Debug)`, log line, panic message or config dump can carry the value,
//! and deserialising never echoes the value in an error.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// What every secret prints as.
pub const REDACTED: &str = "[redacted]";

/// A secret string. Compare and clone it freely; read it with [`Secret::expose`]
/// only where it is handed to librdkafka.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value itself. Call it only to hand the value to the Kafka client.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`, not `str`: some formats (serde_json) reject a non-string
        // themselves for `str`, quoting it, before the visitor is asked.
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts a string. serde's default errors for other types quote the value
/// (`invalid type: integer 12345`), so every scalar is rejected here with a
/// message that does not.
struct SecretVisitor;

fn not_a_string<E: de::Error>(found: &str) -> E {
    E::custom(format!(
        "a secret must be a string, found {found} (quote it; the value is not shown)"
    ))
}

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(not_a_string("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(not_a_string("bytes"))
    }
}

/// Whether a librdkafka property holds a secret: passwords, client secrets,
/// an inline private key, and the OAUTHBEARER config string (it may carry a
/// client secret).
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password")
        || name.contains("secret")
        || name == "ssl.key.pem"
        || name == "sasl.oauthbearer.config"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendering_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(
            format!("{:?}", Some(s.clone())),
            format!("Some({REDACTED})")
        );
        assert_eq!(
            serde_json::to_string(&s).expect("serialises"),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_non_string_is_rejected_without_echoing_it() {
        let err = serde_json::from_str::<Secret>("918273645").expect_err("not a string");
        assert!(!err.to_string().contains("918273645"), "{err}");
        assert!(err.to_string().contains("must be a string"), "{err}");
    }

    #[test]
    fn secret_properties_are_recognised() {
        for name in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret_property(name), "{name}");
        }
        for name in ["sasl.username", "ssl.ca.location", "linger.ms"] {
            assert!(!is_secret_property(name), "{name}");
        }
    }
}
