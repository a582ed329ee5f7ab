//! Durable per-partition state (DESIGN.md §6): what the processor holds for
//! each input partition (dedup keys, open HRV windows, alert history,
//! cool-downs and readings awaiting confirmation) as records of the compacted
//! changelog topic, and back. The process core knows nothing of this layer:
//! it depends on the core's state types, never the reverse.
//!
//! * `key`: compact binary keys, one per store entry.
//! * `value`: the versioned binary value format.
//! * `changelog`: records for what changed, coalesced per commit.
//! * `restore`: state rebuilt record by record, and the completeness check.

mod changelog;
mod error;
mod key;
mod restore;
#[cfg(all(test, feature = "simulator"))]
mod restore_tests;
mod value;

pub use changelog::{ChangelogBuffer, ChangelogWriter, StateRecord};
pub use error::StateError;
pub use key::{KeyError, StateKey, patient_hash};
pub use restore::{Restored, Restorer};
pub use value::{
    FORMAT_VERSION, PartitionMeta, ValueError, decode, decode_dedup_group, decode_slot, encode,
    encode_slot,
};
