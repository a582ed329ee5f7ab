//! Clinician alerts (DESIGN.md §5): a data-driven rule table evaluated over
//! each partition's accepted readings and closed HRV windows.
//!
//! * [`rules`]: the rule table (signal, threshold, unit, severity, trigger).
//! * [`observe`]: readings → signal observations.
//! * [`history`]: what is remembered per patient (samples, baselines, cool-downs).
//! * [`engine`]: consent, evaluation, confirmation, cool-down, alert ids.
//! * [`overrides`]: clinician overrides checked against sane bounds.

mod config;
mod engine;
mod history;
mod observe;
mod overrides;
mod rules;

#[cfg(test)]
mod slot_tests;
#[cfg(test)]
mod tests;

pub use config::AlertsConfig;
pub use engine::{AlertEngine, AlertEntry, Pending, alert_id};
pub use history::{Cooldowns, Sample};
pub use overrides::{OverrideRejection, check_overrides};
pub use rules::{Direction, RULES, RuleDef, Signal, Trigger};
