//! Unit tests of `[kafka.security]`: checks, file loading, redaction.

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
