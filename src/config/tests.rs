//! Unit tests of loading and validating the configuration.

use rust_decimal::Decimal;

use super::*;

#[test]
fn the_default_transactional_id_is_the_group_and_the_os_host_name() {
    let cfg = Config::default();
    let id = cfg.kafka.transactional_id();
    let host = gethostname::gethostname()
        .into_string()
        .expect("UTF-8 host name");
    assert_eq!(id.id, format!("vitalstream-{host}"));
    assert_eq!(id.source, TransactionalIdSource::HostName);
    assert_eq!(cfg.kafka.transactional_id(), id, "stable within a run");
    let mut set = Config::default();
    set.kafka.transactional_id = "tx-1".into();
    assert_eq!(
        set.kafka.transactional_id().source,
        TransactionalIdSource::Configured
    );
}

#[test]
fn defaults_are_valid() {
    Config::default().validate().expect("defaults validate");
}

#[test]
fn unknown_key_is_an_error_naming_the_key() {
    let err = Config::from_toml("[kafka]\nbrokerz = \"x:1\"\n").expect_err("unknown key");
    assert!(err.to_string().contains("brokerz"), "{err}");
}

#[test]
fn passthrough_and_ranges_parse() {
    let cfg = Config::from_toml(
        r#"
        [kafka]
        brokers = "b1:9092,b2:9092"
        [kafka.librdkafka]
        "security.protocol" = "SASL_SSL"
        [validation.ranges.weight_kg]
        min = 1.5
        max = 300
        "#,
    )
    .expect("parses");
    assert_eq!(
        cfg.kafka.librdkafka.get("security.protocol"),
        Some("SASL_SSL")
    );
    assert_eq!(cfg.validation.ranges.weight_kg.min, Decimal::new(15, 1));
}

#[test]
fn a_syntax_error_on_a_secret_line_does_not_quote_it() {
    let err = Config::from_toml("[kafka.security]\nsasl_password = \"half-typed-secret\n")
        .expect_err("syntax error");
    let text = err.to_string();
    assert!(!text.contains("half-typed-secret"), "{text}");
    assert!(text.contains("line 2"), "the position is kept: {text}");
    let err = Config::from_toml("[kafka]\nbrokers = \"b1:9092\n").expect_err("syntax error");
    assert!(
        err.to_string().contains("b1:9092"),
        "other lines are quoted: {err}"
    );
}

#[test]
fn the_log_markers_reader_is_plaintext_only() {
    let cfg = Config::from_toml("[kafka]\nchangelog_reader = \"log_markers\"\n").expect("valid");
    assert_eq!(cfg.kafka.changelog_reader, ChangelogReader::LogMarkers);
    assert_eq!(
        Config::default().kafka.changelog_reader,
        ChangelogReader::ReadCommitted
    );
    let err = Config::from_toml(
        "[kafka]\nchangelog_reader = \"log_markers\"\n\n[kafka.librdkafka]\n\"security.protocol\" = \"ssl\"\n",
    )
    .expect_err("refused");
    assert!(err.to_string().contains("kafka.changelog_reader"), "{err}");
}

#[test]
fn invalid_values_name_their_key() {
    let err = Config::from_toml("[validation]\nmax_invalid_ratio = 0\n").expect_err("invalid");
    assert!(
        err.to_string().contains("validation.max_invalid_ratio"),
        "{err}"
    );
    let err = Config::from_toml("[validation.ranges.spo2_pct]\nmin = 100\nmax = 50\n")
        .expect_err("invalid");
    assert!(err.to_string().contains("spo2_pct"), "{err}");
}
