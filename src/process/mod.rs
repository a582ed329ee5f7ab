//! The pure processing core: validation, dedup and enrichment.
//!
//! Nothing here awaits or knows about Kafka. [`Processor::process`] takes one
//! input record (bytes plus coordinates) and the processor clock and returns a
//! [`Disposition`]: where the reading ends. The async shell in
//! [`crate::pipeline`] only carries out that decision.

mod dedup;
mod disposition;
mod guard;
mod processor;
mod validate;

pub use dedup::{DedupOutcome, DedupStore};
pub use disposition::{Disposition, DlqReason, Rejection};
pub use guard::{InvalidRatioExceeded, InvalidRatioGuard};
pub use processor::{InputRecord, Processor};
pub use validate::validate;
