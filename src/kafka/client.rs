//! librdkafka client configuration: connection and `[kafka.security]`,
//! vitalstream's defaults per client role, then the operator's passthrough
//! map (so an operator can override any default).
//!
//! Every client vitalstream creates (pipeline consumer and producer, profile
//! and state readers, admin client, load generator, demo readers) starts from
//! [`client_config`], so none can miss the TLS and SASL settings.
//!
//! A `ClientConfig` holds secrets in clear (librdkafka needs them): never log
//! one with `{:?}`.

use rdkafka::ClientConfig;

use crate::config::{Guarantee, KafkaConfig, ProcessingConfig, SecurityConfig};

/// Connection, security and passthrough settings, without any role's
/// defaults: for admin clients and tools.
pub fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = base(cfg);
    apply_passthrough(&mut c, cfg);
    c
}

fn base(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", &cfg.client_id);
    apply_security(&mut c, &cfg.security);
    c
}

/// `[kafka.security]` as librdkafka properties; unset keys set nothing.
fn apply_security(c: &mut ClientConfig, s: &SecurityConfig) {
    for setting in s.librdkafka_settings() {
        if let Some(value) = setting.value {
            c.set(setting.property, value);
        }
    }
}

fn apply_passthrough(c: &mut ClientConfig, cfg: &KafkaConfig) {
    for (k, v) in cfg.librdkafka.iter() {
        // A `file`/`env` value is read at load; one that was not (a config
        // built in code) is left to librdkafka's default.
        if let Some(v) = v {
            c.set(k, v);
        }
    }
}

/// Consumer settings. at_least_once: offsets are stored by the pipeline only
/// after every output of a record is delivered, and committed by
/// librdkafka's timer and synchronously at shutdown. exactly_once: offsets
/// are committed only inside the producer's transactions.
pub fn consumer_config(cfg: &KafkaConfig, processing: &ProcessingConfig) -> ClientConfig {
    let mut c = base(cfg);
    let auto_commit = processing.guarantee == Guarantee::AtLeastOnce;
    c.set("group.id", &cfg.group_id)
        .set("enable.auto.commit", auto_commit.to_string())
        .set(
            "auto.commit.interval.ms",
            processing.commit_interval_ms.to_string(),
        )
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        .set(
            "partition.assignment.strategy",
            cfg.rebalancing.assignment_strategy(),
        )
        .set("enable.partition.eof", "false")
        // Consumer lag per partition for the metrics (PipelineContext::stats).
        .set("statistics.interval.ms", "5000")
        // Bounded prefetch: memory stays flat when the input has a backlog.
        .set("queued.max.messages.kbytes", "16384");
    apply_passthrough(&mut c, cfg);
    c
}

/// Profile-loader settings: manual assignment of every partition, no group
/// membership or commits, end-of-partition events to detect catching up.
pub fn profile_consumer_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = base(cfg);
    // librdkafka wants a group id even for assign(); nothing is committed under it.
    c.set("group.id", format!("{}.profiles", cfg.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // A restore holds the live state, not the log: keep the prefetch small.
        .set("queued.max.messages.kbytes", "16384");
    apply_passthrough(&mut c, cfg);
    c
}

/// State-restore settings: manual assignment of one changelog partition at
/// a time, committed records only, end-of-partition events.
pub fn state_consumer_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = base(cfg);
    c.set("group.id", format!("{}.state-restore", cfg.group_id))
        // Restores wait on the partition's end, not for more data.
        .set("fetch.wait.max.ms", "10")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // Partitions restore in parallel, a consumer each: a bounded
        // prefetch (librdkafka's default is 64 MiB) keeps their buffers
        // from adding to the restored state's memory.
        .set("queued.max.messages.kbytes", "16384");
    apply_passthrough(&mut c, cfg);
    c
}

/// Start-up broker check: a plain client asking for metadata; it joins no
/// group and consumes nothing.
pub fn startup_check_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = base(cfg);
    c.set("group.id", format!("{}.startup-check", cfg.group_id));
    apply_passthrough(&mut c, cfg);
    c
}

/// Idempotent producer settings: no duplicates or reordering from retries.
/// With a `transactional_id` (exactly_once) the producer is transactional.
/// The queue holds twice `processing.max_in_flight`, where the pipeline
/// pauses consumption.
pub fn producer_config(
    cfg: &KafkaConfig,
    transactional_id: Option<&str>,
    processing: &ProcessingConfig,
) -> ClientConfig {
    let mut c = base(cfg);
    let mut message_timeout_ms = u64::from(cfg.message_timeout_ms);
    if let Some(id) = transactional_id {
        c.set("transactional.id", id).set(
            "transaction.timeout.ms",
            processing.transaction_timeout_ms.to_string(),
        );
        // librdkafka refuses a message timeout above the transaction timeout.
        message_timeout_ms = message_timeout_ms.min(processing.transaction_timeout_ms);
    }
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", message_timeout_ms.to_string())
        // Broker reachability for the outage report (kafka::link): the
        // producer's statistics are served by its own thread, so they end
        // an outage within a second of a broker answering.
        .set("statistics.interval.ms", "1000")
        .set(
            "queue.buffering.max.messages",
            (processing.max_in_flight * 2).to_string(),
        );
    apply_passthrough(&mut c, cfg);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn security_settings_reach_every_client() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let (ca, cert, key) = (
            write("ca.pem", "ca"),
            write("c.pem", "c"),
            write("k.pem", "k"),
        );
        let key_pw = write("key-pw", "key-secret\n");
        let cfg = Config::from_toml(&format!(
            r#"
            [kafka.security]
            protocol = "sasl_ssl"
            sasl_mechanism = "SCRAM-SHA-512"
            sasl_username = "svc-vitalstream"
            sasl_password = "sasl-secret"
            ssl_ca_location = {ca:?}
            ssl_certificate_location = {cert:?}
            ssl_key_location = {key:?}
            ssl_key_password_file = {key_pw:?}
            ssl_endpoint_identification = "none"
            "#
        ))
        .expect("valid");
        let k = &cfg.kafka;
        let p = &cfg.processing;
        for (role, c) in [
            ("admin", client_config(k)),
            ("consumer", consumer_config(k, p)),
            ("producer", producer_config(k, Some("tx"), p)),
            ("profiles", profile_consumer_config(k)),
            ("state", state_consumer_config(k)),
        ] {
            for (property, value) in [
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanisms", "SCRAM-SHA-512"),
                ("sasl.username", "svc-vitalstream"),
                ("sasl.password", "sasl-secret"),
                ("ssl.ca.location", ca.as_str()),
                ("ssl.certificate.location", cert.as_str()),
                ("ssl.key.location", key.as_str()),
                ("ssl.key.password", "key-secret"),
                ("ssl.endpoint.identification.algorithm", "none"),
            ] {
                assert_eq!(c.get(property), Some(value), "{role}: {property}");
            }
        }
    }

    #[test]
    fn cooperative_by_default_and_the_message_timeout_within_the_transaction_timeout() {
        let cfg = Config::default();
        let c = consumer_config(&cfg.kafka, &cfg.processing);
        assert_eq!(
            c.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        let eager = Config::from_toml("[kafka]\nrebalancing = \"eager\"\n").expect("valid");
        let c = consumer_config(&eager.kafka, &eager.processing);
        assert_eq!(
            c.get("partition.assignment.strategy"),
            Some("range,roundrobin")
        );
        let mut p = cfg.processing.clone();
        assert_eq!(p.transaction_timeout_ms, 30_000);
        p.transaction_timeout_ms = 10_000;
        let c = producer_config(&cfg.kafka, Some("tx"), &p);
        assert_eq!(c.get("message.timeout.ms"), Some("10000"));
        let c = producer_config(&cfg.kafka, None, &p);
        assert_eq!(c.get("message.timeout.ms"), Some("30000"));
    }

    #[test]
    fn unset_security_sets_nothing_and_passthrough_still_applies() {
        let cfg = Config::from_toml(
            "[kafka.librdkafka]\n\"security.protocol\" = \"SSL\"\n\"linger.ms\" = \"9\"\n",
        )
        .expect("valid");
        let c = producer_config(&cfg.kafka, None, &cfg.processing);
        assert_eq!(c.get("security.protocol"), Some("SSL"));
        assert_eq!(
            c.get("linger.ms"),
            Some("9"),
            "passthrough overrides a default"
        );
        assert_eq!(c.get("sasl.mechanisms"), None);
        let c = client_config(&Config::default().kafka);
        assert_eq!(c.get("security.protocol"), None);
    }

    #[test]
    fn a_librdkafka_client_accepts_the_tls_and_scram_settings() {
        // Proves the linked librdkafka has TLS and SCRAM (the `ssl` feature):
        // without OpenSSL it refuses `security.protocol = sasl_ssl` at creation.
        let cfg = Config::from_toml(
            "[kafka]\nbrokers = \"127.0.0.1:1\"\n[kafka.security]\nprotocol = \"sasl_ssl\"\n\
             sasl_mechanism = \"SCRAM-SHA-256\"\nsasl_username = \"u\"\nsasl_password = \"p\"\n",
        )
        .expect("valid");
        let created: Result<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>, _> =
            client_config(&cfg.kafka).create();
        if let Err(e) = created {
            panic!("librdkafka refused TLS/SCRAM settings: {e}");
        }
    }
}
