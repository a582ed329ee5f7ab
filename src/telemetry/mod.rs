//! Telemetry in one place (STYLE.md §8): metric names, the Prometheus
//! recorder, run counters, health flags and log set-up.
//!
//! The pipeline counts locally per batch and publishes once per batch into
//! both the `metrics` facade (for Prometheus) and [`Stats`] (lock-free
//! counters the demo, tests and health endpoints read). Handles are
//! registered once; recording a reading allocates nothing. No patient or
//! device id is ever a label.

mod health;
mod logging;
mod names;
mod prometheus;
mod startup;
mod stats;

pub use health::{Health, NotReady};
pub use logging::init_logging;
pub use names::*;
pub use prometheus::{prometheus, render};
pub use startup::{StartupPhase, StartupTimeline};
pub use stats::{BatchCounts, Metrics, StateSizes, Stats};
