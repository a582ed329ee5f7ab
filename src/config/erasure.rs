//! `[erasure]`: the key of the hash by which erased patients are remembered.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, read_secret_file};

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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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

    pub(super) fn load_file(&mut self) -> Result<(), ConfigError> {
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
