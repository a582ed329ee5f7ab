//! `[kafka.librdkafka]`: free-form librdkafka properties, applied after
//! vitalstream's own settings.
//!
//! A value is a string, or a table naming where the value comes from, so a
//! secret property never has to sit in the file:
//!
//! ```toml
//! [kafka.librdkafka]
//! "linger.ms" = "10"
//! "sasl.oauthbearer.client.secret" = { file = "/run/secrets/oauth-client-secret" }
//! "ssl.keystore.password" = { env = "KEYSTORE_PASSWORD" }
//! ```
//!
//! Files and variables are read once, at load. Values of secret properties
//! ([`is_secret_property`]) print as `[redacted]` in `Debug` and in a config
//! dump; a `file` or `env` source prints as itself (the path or the variable
//! name), never its content.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::ConfigError;
use super::secret::{REDACTED, Secret, is_secret_property};

/// One passthrough value as configured.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum PassthroughValue {
    /// The value itself.
    Text(String),
    /// Read from a file at load (one trailing newline is dropped).
    File {
        /// The file.
        file: PathBuf,
        /// Its content, once loaded.
        #[serde(skip)]
        loaded: Option<Secret>,
    },
    /// Read from an environment variable at load.
    Env {
        /// The variable's name.
        env: String,
        /// Its value, once loaded.
        #[serde(skip)]
        loaded: Option<Secret>,
    },
}

impl PassthroughValue {
    /// The value to hand to librdkafka; `None` for a `file` or `env` source
    /// that was not loaded (see [`Librdkafka::load_sources`]).
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::File { loaded, .. } | Self::Env { loaded, .. } => {
                loaded.as_ref().map(Secret::expose)
            }
        }
    }
}

/// The `[kafka.librdkafka]` map: property name → value.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Librdkafka(BTreeMap<String, PassthroughValue>);

impl Librdkafka {
    /// Whether `property` is set.
    pub fn contains(&self, property: &str) -> bool {
        self.0.contains_key(property)
    }

    /// The loaded value of `property`, if set.
    pub fn get(&self, property: &str) -> Option<&str> {
        self.0.get(property).and_then(PassthroughValue::value)
    }

    /// Sets `property` to a literal value.
    pub fn insert(&mut self, property: impl Into<String>, value: impl Into<String>) {
        self.0
            .insert(property.into(), PassthroughValue::Text(value.into()));
    }

    /// Every property with its loaded value, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.value()))
    }

    /// Reads every `file` and `env` source.
    ///
    /// # Errors
    /// [`ConfigError`] naming the property and the file or variable (never
    /// its content) when it cannot be read or is empty.
    pub fn load_sources(&mut self) -> Result<(), ConfigError> {
        for (property, value) in &mut self.0 {
            let key = format!("kafka.librdkafka.\"{property}\"");
            match value {
                PassthroughValue::Text(_) => {}
                PassthroughValue::File { file, loaded } => {
                    *loaded = Some(super::read_secret_file(&key, file)?);
                }
                PassthroughValue::Env { env, loaded } => {
                    let text = std::env::var(env.as_str()).map_err(|e| ConfigError::Invalid {
                        key: key.clone(),
                        problem: format!("reads environment variable {env}, which is {e}"),
                    })?;
                    if text.is_empty() {
                        return Err(ConfigError::Invalid {
                            key,
                            problem: format!("reads environment variable {env}, which is empty"),
                        });
                    }
                    *loaded = Some(Secret::new(text));
                }
            }
        }
        Ok(())
    }
}

/// What a value shows in `Debug` and in a dump.
enum Shown<'a> {
    Text(&'a str),
    File(&'a PathBuf),
    Env(&'a str),
}

fn shown<'a>(property: &str, value: &'a PassthroughValue) -> Shown<'a> {
    match value {
        PassthroughValue::Text(_) if is_secret_property(property) => Shown::Text(REDACTED),
        PassthroughValue::Text(text) => Shown::Text(text),
        PassthroughValue::File { file, .. } => Shown::File(file),
        PassthroughValue::Env { env, .. } => Shown::Env(env),
    }
}

impl fmt::Debug for PassthroughValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without its property name a value cannot tell whether it is a
        // secret, so a literal is always redacted here.
        match shown("password", self) {
            Shown::Text(text) => f.write_str(text),
            Shown::File(file) => write!(f, "{{ file = {} }}", file.display()),
            Shown::Env(env) => write!(f, "{{ env = {env} }}"),
        }
    }
}

impl fmt::Debug for Librdkafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (property, value) in &self.0 {
            match shown(property, value) {
                Shown::Text(text) => map.entry(property, &text),
                Shown::File(file) => {
                    map.entry(property, &format_args!("{{ file = {} }}", file.display()))
                }
                Shown::Env(env) => map.entry(property, &format_args!("{{ env = {env} }}")),
            };
        }
        map.finish()
    }
}

#[derive(Serialize)]
struct FileSource<'a> {
    file: &'a PathBuf,
}

#[derive(Serialize)]
struct EnvSource<'a> {
    env: &'a str,
}

impl Serialize for Librdkafka {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (property, value) in &self.0 {
            match shown(property, value) {
                Shown::Text(text) => map.serialize_entry(property, text)?,
                Shown::File(file) => map.serialize_entry(property, &FileSource { file })?,
                Shown::Env(env) => map.serialize_entry(property, &EnvSource { env })?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Librdkafka {
        #[derive(Deserialize)]
        struct Doc {
            librdkafka: Librdkafka,
        }
        toml::from_str::<Doc>(toml_text).expect("parses").librdkafka
    }

    #[test]
    fn literal_file_and_env_values_parse() {
        let map = parse(
            r#"
            [librdkafka]
            "linger.ms" = "10"
            "sasl.password" = { file = "/run/secrets/pw" }
            "ssl.keystore.password" = { env = "KS_PW" }
            "#,
        );
        assert_eq!(map.get("linger.ms"), Some("10"));
        assert!(map.contains("sasl.password"));
        // Sources are read only by load_sources.
        assert_eq!(map.get("sasl.password"), None);
    }

    #[test]
    fn an_unknown_source_kind_is_rejected() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            librdkafka: Librdkafka,
        }
        let err = toml::from_str::<Doc>("[librdkafka]\n\"sasl.password\" = { vault = \"x\" }\n")
            .expect_err("unknown source");
        assert!(err.to_string().contains("sasl.password"), "{err}");
    }

    #[test]
    fn secret_literals_are_redacted_in_debug_and_dump() {
        let mut map = Librdkafka::default();
        map.insert("sasl.password", "hunter2");
        map.insert("sasl.oauthbearer.client.secret", "s3cr3t-client");
        map.insert("linger.ms", "10");
        let debug = format!("{map:?}");
        let dump = toml::to_string(&map).expect("serialises");
        for shown in [&debug, &dump] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("s3cr3t-client"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
            assert!(
                shown.contains("10"),
                "non-secret values stay visible: {shown}"
            );
        }
    }

    #[test]
    fn a_file_source_is_read_and_shown_by_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "client-secret-value\n").expect("write");
        let mut map = parse(&format!(
            "[librdkafka]\n\"sasl.oauthbearer.client.secret\" = {{ file = {:?} }}\n",
            path.display().to_string()
        ));
        map.load_sources().expect("loads");
        assert_eq!(
            map.get("sasl.oauthbearer.client.secret"),
            Some("client-secret-value")
        );
        let dump = toml::to_string(&map).expect("serialises");
        assert!(dump.contains(&path.display().to_string()), "{dump}");
        assert!(!dump.contains("client-secret-value"), "{dump}");
        assert!(!format!("{map:?}").contains("client-secret-value"));
    }

    #[test]
    fn a_missing_env_source_names_the_variable() {
        let mut map = parse(
            "[librdkafka]\n\"ssl.keystore.password\" = { env = \"VITALSTREAM_TEST_UNSET_VARIABLE\" }\n",
        );
        let err = map.load_sources().expect_err("unset");
        let text = err.to_string();
        assert!(text.contains("VITALSTREAM_TEST_UNSET_VARIABLE"), "{text}");
        assert!(text.contains("ssl.keystore.password"), "{text}");
    }
}
