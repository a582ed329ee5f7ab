//! Metric names (DESIGN.md §7): `vitalstream_*`, counters `_total`,
//! durations `_seconds`. Labels are bounded enums (kind, reason, quality,
//! rule, severity, store, outcome, partition), never a patient or device id.

/// Readings consumed from the raw topic.
pub const READINGS_CONSUMED: &str = "vitalstream_readings_consumed_total";
/// Readings published enriched, label `kind`.
pub const READINGS_ENRICHED: &str = "vitalstream_readings_enriched_total";
/// Readings sent to the DLQ, label `reason`.
pub const READINGS_REJECTED: &str = "vitalstream_readings_rejected_total";
/// Duplicate readings dropped.
pub const READINGS_DUPLICATE: &str = "vitalstream_readings_duplicate_total";
/// Batches completed (all outputs delivered, offsets stored).
pub const BATCHES: &str = "vitalstream_batches_total";
/// Readings of erased patients, dropped and written nowhere.
pub const READINGS_ERASED: &str = "vitalstream_readings_erased_total";
/// HRV windows published, label `quality`.
pub const HRV_WINDOWS: &str = "vitalstream_hrv_windows_total";
/// Beats that arrived after their window had closed.
pub const HRV_LATE_BEATS: &str = "vitalstream_hrv_late_beats_total";
/// Entries of per-partition state (gauge), label `store` (`dedup`,
/// `hrv_windows`, `alert_history` = patients with alert history).
pub const STATE_ENTRIES: &str = "vitalstream_state_entries";
/// Event time the dedup store still covers behind the newest reading
/// (gauge, seconds; the smallest over assigned partitions). Below
/// `validation.dedup_horizon_ms` when `validation.dedup_max_entries`
/// evicts entries before they leave the horizon.
pub const DEDUP_HORIZON: &str = "vitalstream_dedup_effective_horizon_seconds";
/// Records written to the state changelog (tombstones included).
pub const CHANGELOG_RECORDS: &str = "vitalstream_state_changelog_records_total";
/// Bytes (keys and values) written to the state changelog.
pub const CHANGELOG_BYTES: &str = "vitalstream_state_changelog_bytes_total";
/// State changelog writes replaced by a later write to the same key
/// before they were sent (coalesced).
pub const CHANGELOG_COALESCED: &str = "vitalstream_state_changelog_coalesced_total";
/// Records applied from the patients topic, label `kind` (`upsert`, `tombstone`, `invalid`).
pub const PROFILE_UPDATES: &str = "vitalstream_profile_updates_total";
/// Clinician threshold overrides rejected (unknown rule or outside the
/// rule's sane bounds; the default applies), label `rule` (a rule name or
/// `unknown`).
pub const OVERRIDES_REJECTED: &str = "vitalstream_threshold_overrides_rejected_total";
/// Profiles in the table (gauge).
pub const PROFILES: &str = "vitalstream_profiles";

/// Erased patients remembered (durable erasure set; gauge).
pub const ERASED_PATIENTS: &str = "vitalstream_erased_patients";

/// Clinician alerts published, labels `rule` and `severity`.
pub const ALERTS: &str = "vitalstream_alerts_total";
/// Alerts held back by the per-(patient, rule) cool-down, label `rule`.
pub const ALERTS_SUPPRESSED: &str = "vitalstream_alerts_suppressed_total";
/// Transactions ended (exactly-once mode), label `outcome` (`committed`, `aborted`).
pub const TRANSACTIONS: &str = "vitalstream_transactions_total";
/// Consumer lag in messages per assigned input partition (gauge), label
/// `partition`, from librdkafka statistics.
pub const CONSUMER_LAG: &str = "vitalstream_consumer_lag";
/// Consumption paused because the producer queue reached
/// `processing.max_in_flight` (backpressure): one sample per pause, its
/// length in seconds (histogram).
pub const BACKPRESSURE_PAUSE: &str = "vitalstream_backpressure_pause_seconds";
/// Messages in the producer queue not yet acknowledged (gauge).
pub const PRODUCER_QUEUE: &str = "vitalstream_producer_queue_messages";
/// Input partitions assigned to this instance (gauge).
pub const ASSIGNED_PARTITIONS: &str = "vitalstream_assigned_partitions";
/// 1 when `/readyz` answers 200 (gauge).
pub const READY: &str = "vitalstream_ready";
/// 1 while the Kafka clients reach at least one broker, 0 during an outage
/// (every broker unreachable) (gauge).
pub const KAFKA_CONNECTED: &str = "vitalstream_kafka_connected";
/// Outages: times every Kafka broker became unreachable.
pub const KAFKA_OUTAGES: &str = "vitalstream_kafka_outages_total";
/// Errors the Kafka clients reported (connection failures, timeouts), label
/// `client` (`consumer`, `producer`).
pub const KAFKA_CLIENT_ERRORS: &str = "vitalstream_kafka_client_errors_total";
/// Always 1, label `version` (gauge).
pub const BUILD_INFO: &str = "vitalstream_build_info";
/// Consume → all outputs of the record acknowledged, seconds (histogram).
pub const PUBLISH_LATENCY: &str = "vitalstream_publish_latency_seconds";
/// Processing time − `measured_at` of enriched readings, seconds (histogram).
pub const EVENT_TIME_LAG: &str = "vitalstream_event_time_lag_seconds";
/// Wall time of one batch from first record to offsets stored, seconds (histogram).
pub const BATCH_DURATION: &str = "vitalstream_batch_duration_seconds";
/// Time to commit a transaction (offsets sent, outputs flushed, commit
/// acknowledged), seconds (histogram; exactly_once). The batch loop waits
/// for it.
pub const TRANSACTION_COMMIT: &str = "vitalstream_transaction_commit_seconds";
/// Time to restore a partition's state on assignment, seconds (histogram).
pub const STATE_RESTORE: &str = "vitalstream_state_restore_seconds";
/// Seconds from the run's start to the end of each start-up phase, label
/// `phase` (`brokers`, `subscribed`, `producer`, `profiles`, `assigned`,
/// `ready`) (gauge).
pub const STARTUP_PHASE: &str = "vitalstream_startup_seconds";

/// Requests to the schema registry, label `outcome` (`ok`, `not_found`, `error`).
pub const SCHEMA_REGISTRY_REQUESTS: &str = "vitalstream_schema_registry_requests_total";
/// Failed schema registry requests, label `kind` (`unreachable`: no answer,
/// timeout or 5xx; `refused`: authentication, authorisation, a rejected schema).
pub const SCHEMA_REGISTRY_ERRORS: &str = "vitalstream_schema_registry_errors_total";
/// Lookups of writer ids not yet cached, label `result` (`resolved`,
/// `incompatible`, `not_found`, `error`).
pub const SCHEMA_REGISTRY_LOOKUPS: &str = "vitalstream_schema_registry_lookups_total";
/// Input records whose writer id other than the primary one was served from the cache.
pub const SCHEMA_REGISTRY_CACHE_HITS: &str = "vitalstream_schema_registry_cache_hits_total";

/// Alert rules (DESIGN.md §5), the `rule` label values.
pub const ALERT_RULES: [&str; 11] = [
    "weight_gain_24h",
    "weight_gain_7d",
    "bp_crisis",
    "bp_stage2_sustained",
    "hypotension",
    "spo2_low",
    "resting_hr_high",
    "resting_hr_low",
    "afib",
    "fever",
    "rmssd_low",
];
/// Alert severities, the `severity` label values.
pub const ALERT_SEVERITIES: [&str; 4] = ["info", "warning", "urgent", "critical"];

/// Bucket bounds of the latency histograms, seconds: 1 ms … 30 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds of the event-time lag histogram, seconds: 100 ms … 1 day
/// (watches sync hours of history at once).
pub const EVENT_LAG_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0,
];

/// Every metric name vitalstream exports, with its help text.
pub const DESCRIBED: [(&str, &str); 38] = [
    (READINGS_CONSUMED, "Readings consumed from the raw topic."),
    (
        READINGS_ENRICHED,
        "Readings published on the enriched topic, by measurement kind.",
    ),
    (READINGS_REJECTED, "Readings sent to the DLQ, by reason."),
    (READINGS_DUPLICATE, "Duplicate readings dropped."),
    (
        READINGS_ERASED,
        "Readings of erased patients dropped and written nowhere.",
    ),
    (
        BATCHES,
        "Batches completed: outputs delivered and offsets stored.",
    ),
    (HRV_WINDOWS, "HRV windows published, by quality."),
    (
        HRV_LATE_BEATS,
        "Heart beats that arrived after their HRV window closed.",
    ),
    (STATE_ENTRIES, "Entries of per-partition state, by store."),
    (
        DEDUP_HORIZON,
        "Seconds of event time the dedup store covers (smallest partition).",
    ),
    (CHANGELOG_RECORDS, "Records written to the state changelog."),
    (
        CHANGELOG_BYTES,
        "Bytes of keys and values written to the state changelog.",
    ),
    (
        CHANGELOG_COALESCED,
        "State changelog writes replaced by a later write to the same key before sending.",
    ),
    (
        PROFILE_UPDATES,
        "Records applied from the patients topic, by kind.",
    ),
    (PROFILES, "Patient profiles held in the table."),
    (
        ERASED_PATIENTS,
        "Erased patients remembered (keyed hashes, from the erasures topic and tombstones).",
    ),
    (ALERTS, "Clinician alerts published, by rule and severity."),
    (
        ALERTS_SUPPRESSED,
        "Clinician alerts held back by the per-patient cool-down, by rule.",
    ),
    (
        TRANSACTIONS,
        "Producer transactions ended, by outcome (exactly_once mode).",
    ),
    (
        CONSUMER_LAG,
        "Messages behind the end of each assigned input partition.",
    ),
    (
        PRODUCER_QUEUE,
        "Messages in the producer queue not yet acknowledged.",
    ),
    (
        ASSIGNED_PARTITIONS,
        "Input partitions assigned to this instance.",
    ),
    (READY, "1 when the instance is ready (see /readyz)."),
    (
        KAFKA_CONNECTED,
        "1 while a Kafka broker is reachable, 0 during an outage.",
    ),
    (
        KAFKA_OUTAGES,
        "Outages: times every Kafka broker became unreachable.",
    ),
    (
        KAFKA_CLIENT_ERRORS,
        "Errors reported by the Kafka clients, by client.",
    ),
    (BUILD_INFO, "Build information; always 1."),
    (
        PUBLISH_LATENCY,
        "Seconds from consuming a reading to all its outputs acknowledged.",
    ),
    (
        EVENT_TIME_LAG,
        "Seconds from a reading's measured_at to its processing.",
    ),
    (
        BATCH_DURATION,
        "Seconds per batch from first record to offsets stored.",
    ),
    (
        TRANSACTION_COMMIT,
        "Seconds to commit a transaction, offsets and flush included (exactly_once).",
    ),
    (
        STATE_RESTORE,
        "Seconds to restore a partition's state on assignment.",
    ),
    (
        STARTUP_PHASE,
        "Seconds from the run's start to the end of each start-up phase.",
    ),
    (
        BACKPRESSURE_PAUSE,
        "Seconds consumption stayed paused because the producer queue was full.",
    ),
    (
        SCHEMA_REGISTRY_REQUESTS,
        "Requests to the schema registry, by outcome.",
    ),
    (
        SCHEMA_REGISTRY_ERRORS,
        "Failed schema registry requests, by kind (unreachable, refused).",
    ),
    (
        SCHEMA_REGISTRY_LOOKUPS,
        "Lookups of writer schema ids not yet cached, by result.",
    ),
    (
        SCHEMA_REGISTRY_CACHE_HITS,
        "Input records whose writer schema id was served from the registry cache.",
    ),
];

/// The process metrics exported beside the `vitalstream_*` ones (by the
/// metrics-process collector on each scrape, with the names of Prometheus'
/// own client libraries), as the dashboard's resource panels query them.
pub const PROCESS_METRICS: [&str; 8] = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];
