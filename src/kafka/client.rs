//! librdkafka client configuration: vitalstream's defaults, then the
//! operator's passthrough map (so an operator can override any default).

use rdkafka::ClientConfig;

use crate::config::{Guarantee, KafkaConfig, ProcessingConfig};

fn base(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", &cfg.client_id);
    c
}

fn apply_passthrough(c: &mut ClientConfig, cfg: &KafkaConfig) {
    for (k, v) in &cfg.librdkafka {
        c.set(k, v);
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
        .set("enable.partition.eof", "true");
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
        .set("enable.partition.eof", "true");
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
    if let Some(id) = transactional_id {
        c.set("transactional.id", id).set(
            "transaction.timeout.ms",
            processing.transaction_timeout_ms.to_string(),
        );
    }
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", cfg.message_timeout_ms.to_string())
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
