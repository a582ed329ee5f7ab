//! Bounded, event-time dedup of reading ids ([`store`]), over a compact
//! set of id fingerprints grouped in blocks ([`ids`]).

mod ids;
mod store;

pub use store::{DedupChange, DedupKey, DedupMeta, DedupOutcome, DedupStore, GENERATION_MAX};
