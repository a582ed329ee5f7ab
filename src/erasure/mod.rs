//! Durable, idempotent erasure (DESIGN.md §3): the set of patients whose
//! account was deleted (a tombstone on the patients topic), kept so that it
//! outlives the tombstone.
//!
//! * [`PatientHasher`]: the keyed hash (SipHash-2-4-128) by which an erased
//!   patient is remembered. Nothing vitalstream persists about an erasure
//!   holds the patient id; without the key, the hashes cannot be tested
//!   against a list of candidate ids. Dedup keys use the same hash, so a
//!   restored partition's entries of an erased patient can be found by it.
//! * [`ErasedSet`]: the in-memory set, with where each erasure happened on
//!   the patients topic (a profile written later re-registers the id) and an
//!   append-only log the processor follows, so every held partition purges
//!   each erasure once and every restored one purges them all.
//! * [`record`]: the records of the compacted erasures topic
//!   (`vitalstream.<group_id>.erasures`), which every instance reads in full
//!   at start-up, before the patients topic.
//!
//! Where it applies: readings of an erased patient are dropped by key before
//! decoding; a held partition purges the patient's state when the tombstone
//! is seen; a partition's state restored from the changelog (at assignment,
//! after a rebalance hand-over, after an aborted transaction or a rewind) is
//! purged of every erased patient before it is used, and the purge's
//! changelog tombstones are written with the next commit. See
//! docs/erasure.md.

mod hasher;
pub mod record;
mod set;

pub use hasher::{PatientHash, PatientHasher};
pub use set::{ErasedSet, Position, ProfileVerdict};
