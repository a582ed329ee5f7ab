//! A simulated device-ingest gateway: patients with scales, watches and BP
//! monitors, a configurable share of duplicates, malformed and out-of-range
//! readings, and scripted clinical scenarios that must raise known alerts.
//! Used by `vitalstream demo` and `vitalstream loadgen`.
//!
//! * `sim`: the random patient population and record classification.
//! * `scenarios`: scripted patients (heart failure, BP crisis, COPD, …)
//!   with the alerts each must raise.
//! * `produce`: writing profiles and readings to Kafka.

mod produce;
mod scenarios;
mod sim;

pub use produce::{produce, publish_profiles};
pub use scenarios::{Scenario, clinical_scenarios};
pub use sim::{Expected, Gateway, GatewayConfig, GatewayReport, SimRecord};
