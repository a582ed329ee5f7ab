//! Configuration of the HRV windows.

use serde::{Deserialize, Serialize};

use crate::model::ArtifactFilter;

/// HRV window settings (DESIGN.md §4 defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HrvConfig {
    /// Tumbling window length; windows are aligned to the Unix epoch.
    pub window_ms: i64,
    /// How far behind the patient's newest beat a window of that patient may
    /// still receive beats; the patient's watermark is `their newest beat
    /// time − allowed_lateness_ms`.
    pub allowed_lateness_ms: i64,
    /// RR artifact filter.
    pub artifact_filter: ArtifactFilter,
    /// Accepted NN time (sum of accepted RR) a window needs for quality `ok`.
    pub min_nn_duration_ms: i64,
    /// A patient who goes silent has their open windows closed once the
    /// partition's newest event time is this far past both the window's end
    /// and the partition event time when the patient's last reading arrived
    /// (so a watch uploading hours of backlog is not cut off mid-upload).
    pub idle_close_ms: i64,
}

impl Default for HrvConfig {
    fn default() -> Self {
        Self {
            window_ms: 5 * 60 * 1000,
            allowed_lateness_ms: 2 * 60 * 1000,
            artifact_filter: ArtifactFilter::Malik,
            min_nn_duration_ms: 2 * 60 * 1000,
            idle_close_ms: 30 * 60 * 1000,
        }
    }
}

/// An HRV setting is out of range; fix the configuration (fatal at start-up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hrv.{key}={value}: {expected}")]
pub struct HrvConfigError {
    /// Setting name.
    pub key: &'static str,
    /// Its value.
    pub value: i64,
    /// What it must be.
    pub expected: &'static str,
}

impl HrvConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`HrvConfigError`] when the window is not positive or longer than a
    /// day, or when the lateness or minimum duration is negative.
    pub fn validate(&self) -> Result<(), HrvConfigError> {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        let err = |key, value, expected| {
            Err(HrvConfigError {
                key,
                value,
                expected,
            })
        };
        if !(1..=DAY_MS).contains(&self.window_ms) {
            return err("window_ms", self.window_ms, "must be in 1..=86400000");
        }
        if !(0..=DAY_MS).contains(&self.allowed_lateness_ms) {
            return err(
                "allowed_lateness_ms",
                self.allowed_lateness_ms,
                "must be in 0..=86400000",
            );
        }
        if !(0..=7 * DAY_MS).contains(&self.idle_close_ms) {
            return err(
                "idle_close_ms",
                self.idle_close_ms,
                "must be in 0..=604800000",
            );
        }
        if self.min_nn_duration_ms < 0 {
            return err(
                "min_nn_duration_ms",
                self.min_nn_duration_ms,
                "must not be negative",
            );
        }
        Ok(())
    }
}
