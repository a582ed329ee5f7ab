//! Environment overrides: `VITALSTREAM_<SECTION>__<KEY>` (`__` between
//! levels, e.g. `VITALSTREAM_KAFKA__BROKERS`, `VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD`).
//!
//! Only nested variables (with a `__`) are configuration. Every top-level
//! setting lives in a section, so a variable without `__` can never name one,
//! and other software sets such variables: Kubernetes injects
//! `VITALSTREAM_SERVICE_HOST`, `VITALSTREAM_PORT=tcp://10.0.0.1:9464`,
//! `VITALSTREAM_PORT_9464_TCP_ADDR`, … into every pod of a namespace holding
//! a Service named `vitalstream`. Those are ignored. A variable that is
//! exactly a section and one of its keys joined by a single `_`
//! (`VITALSTREAM_KAFKA_BROKERS`) is a typo of a real setting and an error
//! that names the intended variable, rather than a silently ignored override.

use std::collections::BTreeSet;

use figment::Figment;
use figment::providers::{Env, Serialized};
use figment::value::Value;

use super::{Config, ConfigError, security};

/// The prefix of every configuration variable.
pub const PREFIX: &str = "VITALSTREAM_";

/// The separator between levels.
const SEPARATOR: &str = "__";

/// What a `VITALSTREAM_*` variable is to the loader.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum EnvVar {
    /// A nested override, given to figment.
    Override,
    /// Not configuration (no `__`): ignored.
    Ignored,
    /// `<SECTION>_<KEY>` of an existing setting: the correctly nested name.
    Typo(String),
}

/// Classifies `name` (the full variable name) against the known
/// `section.key` settings.
pub(super) fn classify(name: &str, settings: &BTreeSet<(String, String)>) -> EnvVar {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return EnvVar::Ignored;
    };
    if rest.contains(SEPARATOR) {
        return EnvVar::Override;
    }
    let lower = rest.to_ascii_lowercase();
    for (section, key) in settings {
        if lower.len() == section.len() + 1 + key.len()
            && lower.starts_with(section.as_str())
            && lower[section.len()..].starts_with('_')
            && lower.ends_with(key.as_str())
        {
            return EnvVar::Typo(format!(
                "{PREFIX}{}{SEPARATOR}{}",
                section.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            ));
        }
    }
    EnvVar::Ignored
}

/// Every `(section, key)` of the default configuration.
fn known_settings() -> BTreeSet<(String, String)> {
    let mut settings = BTreeSet::new();
    let Ok(Value::Dict(_, sections)) = Value::serialize(Config::default()) else {
        return settings;
    };
    for (section, value) in sections {
        if let Value::Dict(_, keys) = value {
            settings.extend(keys.into_keys().map(|key| (section.clone(), key)));
        }
    }
    settings
}

/// Merges the environment's overrides into `figment`.
///
/// # Errors
/// [`ConfigError::Invalid`] for a mistyped variable (naming the right one)
/// or a secret variable that is not UTF-8.
pub(super) fn merge(mut figment: Figment) -> Result<Figment, ConfigError> {
    let settings = known_settings();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if let EnvVar::Typo(intended) = classify(name, &settings) {
            return Err(ConfigError::Invalid {
                key: name.to_owned(),
                problem: format!(
                    "is not a setting: levels are separated by two underscores, `{intended}`"
                ),
            });
        }
    }
    let verbatim = security::VERBATIM_ENV.map(|(_, key)| key);
    figment = figment.merge(
        Env::prefixed(PREFIX)
            .filter(|key| key.as_str().contains(SEPARATOR))
            .split(SEPARATOR)
            .ignore(&verbatim),
    );
    for (var, key) in security::VERBATIM_ENV {
        if let Some(value) = std::env::var_os(var) {
            let Some(value) = value.to_str() else {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    problem: format!("from {var} is not valid UTF-8"),
                });
            };
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    Ok(figment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_variables_are_overrides() {
        let s = known_settings();
        assert_eq!(classify("VITALSTREAM_KAFKA__BROKERS", &s), EnvVar::Override);
        assert_eq!(
            classify("VITALSTREAM_KAFKA__SECURITY__SASL_PASSWORD", &s),
            EnvVar::Override
        );
    }

    #[test]
    fn kubernetes_service_variables_are_ignored() {
        let s = known_settings();
        for name in [
            "VITALSTREAM_SERVICE_HOST",
            "VITALSTREAM_SERVICE_PORT",
            "VITALSTREAM_SERVICE_PORT_METRICS",
            "VITALSTREAM_PORT",
            "VITALSTREAM_PORT_9464_TCP",
            "VITALSTREAM_PORT_9464_TCP_PROTO",
            "VITALSTREAM_PORT_9464_TCP_PORT",
            "VITALSTREAM_PORT_9464_TCP_ADDR",
            "VITALSTREAM_TEST_PYTHON",
            "OTHER_KAFKA__BROKERS",
        ] {
            assert_eq!(classify(name, &s), EnvVar::Ignored, "{name}");
        }
    }

    #[test]
    fn a_single_underscore_after_a_section_names_the_intended_variable() {
        let s = known_settings();
        assert_eq!(
            classify("VITALSTREAM_KAFKA_BROKERS", &s),
            EnvVar::Typo("VITALSTREAM_KAFKA__BROKERS".into())
        );
        assert_eq!(
            classify("VITALSTREAM_HTTP_LISTEN_ADDR", &s),
            EnvVar::Typo("VITALSTREAM_HTTP__LISTEN_ADDR".into())
        );
    }
}
