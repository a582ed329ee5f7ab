//! [`Config::validate`]: the cross-field and range checks run at start-up.

use super::{ChangelogReader, Config, ConfigError, SecurityProtocol};

impl Config {
    /// Checks cross-field and range constraints.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for the first offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                problem: problem.to_owned(),
            })
        };
        if self.kafka.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "must not be empty");
        }
        if self.kafka.group_id.trim().is_empty() {
            return invalid("kafka.group_id", "must not be empty");
        }
        self.kafka.validate_security()?;
        self.schema_registry.validate()?;
        if self.codec.max_string_bytes == 0 {
            return invalid("codec.max_string_bytes", "must be at least 1");
        }
        if self.codec.max_array_items == 0 {
            return invalid("codec.max_array_items", "must be at least 1");
        }
        let mut writer_ids = std::collections::BTreeSet::new();
        for w in &self.codec.raw_reading_writers {
            if w.id == self.schemas.raw_reading || !writer_ids.insert(w.id) {
                return invalid(
                    "codec.raw_reading_writers",
                    "each id must be distinct and differ from schemas.raw_reading",
                );
            }
        }
        if self.kafka.changelog_reader == ChangelogReader::LogMarkers
            && self.kafka.security_protocol() != Some(SecurityProtocol::Plaintext)
        {
            return invalid(
                "kafka.changelog_reader",
                "log_markers speaks plaintext only; use read_committed with TLS or SASL",
            );
        }
        if self.processing.batch_max_messages == 0 {
            return invalid("processing.batch_max_messages", "must be at least 1");
        }
        if !(10..=5_000_000).contains(&self.processing.max_in_flight) {
            return invalid("processing.max_in_flight", "must be from 10 to 5000000");
        }
        if self.processing.transaction_timeout_ms < 1_000 {
            return invalid("processing.transaction_timeout_ms", "must be at least 1000");
        }
        if self.processing.commit_interval_ms == 0 {
            return invalid("processing.commit_interval_ms", "must be at least 1");
        }
        if self.processing.commit_interval_ms >= self.processing.transaction_timeout_ms {
            return invalid(
                "processing.commit_interval_ms",
                "must be below processing.transaction_timeout_ms",
            );
        }
        self.hrv.validate()?;
        self.erasure.validate()?;
        if self.alerts.cooldown_ms < 0 {
            return invalid("alerts.cooldown_ms", "must not be negative");
        }
        if self.alerts.confirm_wait_ms <= 0 {
            return invalid("alerts.confirm_wait_ms", "must be positive");
        }
        if self.http.stall_after_ms < 1_000 {
            return invalid("http.stall_after_ms", "must be at least 1000");
        }
        let v = &self.validation;
        if v.dedup_horizon_ms <= 0 {
            return invalid("validation.dedup_horizon_ms", "must be positive");
        }
        if v.max_clock_skew_ms < 0 {
            return invalid("validation.max_clock_skew_ms", "must not be negative");
        }
        if v.dedup_max_entries == 0 {
            return invalid("validation.dedup_max_entries", "must be at least 1");
        }
        if !(v.max_invalid_ratio > 0.0 && v.max_invalid_ratio <= 1.0) {
            return invalid("validation.max_invalid_ratio", "must be in (0, 1]");
        }
        if v.invalid_ratio_window == 0 {
            return invalid("validation.invalid_ratio_window", "must be at least 1");
        }
        let r = &v.ranges;
        for (key, range) in [
            ("validation.ranges.weight_kg", r.weight_kg),
            ("validation.ranges.resistance_ohm", r.resistance_ohm),
            ("validation.ranges.reactance_ohm", r.reactance_ohm),
            ("validation.ranges.rr_interval_ms", r.rr_interval_ms),
            ("validation.ranges.height_cm", r.height_cm),
            ("validation.ranges.systolic_mmhg", r.systolic_mmhg),
            ("validation.ranges.diastolic_mmhg", r.diastolic_mmhg),
            ("validation.ranges.heart_rate_bpm", r.heart_rate_bpm),
            ("validation.ranges.spo2_pct", r.spo2_pct),
            ("validation.ranges.temperature_c", r.temperature_c),
        ] {
            if range.min > range.max {
                return invalid(key, "has min greater than max");
            }
        }
        let names = [
            &self.topics.raw,
            &self.topics.enriched,
            &self.topics.dlq,
            &self.topics.hrv_windows,
            &self.topics.alerts,
        ];
        if names.iter().any(|n| n.trim().is_empty()) {
            return invalid("topics", "names must not be empty");
        }
        if names[1..].contains(&names[0]) {
            return invalid("topics.raw", "must differ from every output topic");
        }
        Ok(())
    }
}
