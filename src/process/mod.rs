//! The pure processing core: validation, dedup, enrichment and alert rules.
//!
//! Nothing here awaits or knows about Kafka. [`Processor::process`] takes one
//! input record (bytes plus coordinates) and the processor clock and returns a
//! [`Disposition`]: where the reading ends. The async shell in
//! [`crate::pipeline`] only carries out that decision.

mod age;
mod alerts;
mod body_composition;
mod bp;
mod dedup;
mod disposition;
mod enrich;
mod erasure;
mod guard;
mod hashing;
mod hrv;
mod partition;
mod processor;
mod profiles;
mod ranges;
mod segments;
mod validate;

pub use age::age_years;
pub use alerts::{
    AlertEngine, AlertEntry, AlertsConfig, Cooldowns, Direction, OverrideRejection, Pending, RULES,
    RuleDef, Sample, Signal, Trigger, alert_id, check_overrides,
};
pub use body_composition::{BodyCompError, BodyInput, bmi, body_composition};
pub use bp::bp_category;
pub use dedup::{DedupChange, DedupKey, DedupMeta, DedupOutcome, DedupStore, GENERATION_MAX};
pub use disposition::{Disposition, Rejection};
// The DLQ reasons are part of the topic contract (the codec names them too).
pub use crate::model::DlqReason;
pub use guard::{InvalidRatioExceeded, InvalidRatioGuard};
pub use hashing::{FastMap, FastSet};
pub use hrv::{
    AddOutcome, ChunkRef, EventMarks, HrvConfig, HrvConfigError, HrvMeta, HrvPatientState,
    HrvWindows, OpenWindow, WindowChunk,
};
pub use partition::PartitionState;
pub use processor::{InputRecord, Processor, ProcessorCounts};
pub use profiles::{Lookup, ProfileSink, ProfileTable};
pub use ranges::{Range, Ranges, ValidationConfig};
pub use segments::{SEGMENT_TOLERANCE, segments_consistent};
pub use validate::{Checked, PAUSE_RR_MS, validate};
