//! `[validation]`: plausibility ranges and dedup settings, applied by the
//! validator and the dedup store. Defined here, beside the code that uses
//! them; [`crate::config`] assembles them into the configuration file.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An inclusive plausibility range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Smallest plausible value.
    pub min: Decimal,
    /// Largest plausible value.
    pub max: Decimal,
}

impl Range {
    fn new(min: i64, max: i64) -> Self {
        Self {
            min: Decimal::from(min),
            max: Decimal::from(max),
        }
    }

    /// Whether `value` lies within the range.
    pub fn contains(&self, value: Decimal) -> bool {
        self.min <= value && value <= self.max
    }
}

/// Plausibility ranges per measured quantity (DESIGN.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ranges {
    /// Body weight, kg.
    pub weight_kg: Range,
    /// Whole-body and segmental resistance at 50 kHz, ohm.
    pub resistance_ohm: Range,
    /// Whole-body and segmental reactance at 50 kHz, ohm.
    pub reactance_ohm: Range,
    /// RR interval, ms.
    pub rr_interval_ms: Range,
    /// Profile height, cm: outside it (e.g. metres typed as centimetres)
    /// no BMI or body composition is computed and the reading is flagged.
    pub height_cm: Range,
    /// Systolic pressure, mmHg.
    pub systolic_mmhg: Range,
    /// Diastolic pressure, mmHg.
    pub diastolic_mmhg: Range,
    /// Pulse or heart rate, bpm.
    pub heart_rate_bpm: Range,
    /// SpO2, percent.
    pub spo2_pct: Range,
    /// Body temperature, °C.
    pub temperature_c: Range,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            weight_kg: Range::new(2, 400),
            resistance_ohm: Range::new(150, 1200),
            reactance_ohm: Range::new(1, 200),
            rr_interval_ms: Range::new(200, 3000),
            height_cm: Range::new(50, 250),
            systolic_mmhg: Range::new(50, 300),
            diastolic_mmhg: Range::new(20, 200),
            heart_rate_bpm: Range::new(20, 300),
            spo2_pct: Range::new(50, 100),
            temperature_c: Range::new(30, 45),
        }
    }
}

/// Validation and dedup settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// How far `measured_at` may be ahead of the processor clock.
    pub max_clock_skew_ms: i64,
    /// Event-time horizon of dedup; older readings are `too_old`.
    pub dedup_horizon_ms: i64,
    /// Most reading ids remembered per partition.
    pub dedup_max_entries: usize,
    /// Most RR intervals in one HeartRhythm reading.
    pub max_rr_intervals: usize,
    /// Gateway delay beyond which a reading is flagged `delayed_delivery`.
    pub delayed_delivery_ms: i64,
    /// Invalid share of the last `invalid_ratio_window` readings that stops the consumer.
    pub max_invalid_ratio: f64,
    /// Number of recent readings the invalid ratio is measured over.
    pub invalid_ratio_window: usize,
    /// Plausibility ranges.
    pub ranges: Ranges,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_clock_skew_ms: 5 * 60 * 1000,
            dedup_horizon_ms: 24 * 60 * 60 * 1000,
            dedup_max_entries: 1_000_000,
            max_rr_intervals: 2048,
            delayed_delivery_ms: 60 * 60 * 1000,
            max_invalid_ratio: 0.5,
            invalid_ratio_window: 1000,
            ranges: Ranges::default(),
        }
    }
}
