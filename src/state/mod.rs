//! Durable per-partition state (DESIGN.md §6): what the processor holds for
//! each input partition (dedup keys, open HRV windows, alert history,
//! cool-downs and readings awaiting confirmation) as records of the compacted
//! changelog topic, and back.
//!
//! * `record`: changelog keys and values.
//! * `snapshot`: building records from changed state and state from records.

mod record;
pub(crate) mod snapshot;

pub use record::{StateKey, StateRecord, decode_key, encode_key};
pub use snapshot::{PartitionMeta, PatientSnapshot, StateError};
