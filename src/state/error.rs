//! [`StateError`]: a changelog that cannot be written or read back.

use thiserror::Error;

use super::{KeyError, ValueError};

/// A changelog record that cannot be written or read back, or a restore
/// that cannot be completed. Fatal: running on with silently missing state
/// could admit duplicates or lose alerts; the run stops and its input is
/// read again after a restart.
#[derive(Debug, Error)]
pub enum StateError {
    /// A key this version cannot read.
    #[error(
        "state changelog partition {partition}: a record key {source}; restore needs a changelog of this version's format (see docs/state.md, 'Format')"
    )]
    Key {
        /// Changelog partition.
        partition: i32,
        /// What is wrong.
        source: KeyError,
    },
    /// A value that does not decode.
    #[error("state changelog partition {partition}: undecodable {store} record: {source}")]
    Value {
        /// Changelog partition.
        partition: i32,
        /// Store name (never the key itself: it stands for a patient).
        store: &'static str,
        /// What is wrong.
        source: ValueError,
    },
    /// State that cannot be written (a defect).
    #[error("state changelog partition {partition}: {store} state does not encode: {detail}")]
    Unencodable {
        /// Changelog partition.
        partition: i32,
        /// Store name.
        store: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The changelog does not (yet) hold the state of the committed input
    /// offset, and waiting did not change that.
    #[error(
        "state changelog partition {partition} holds the state up to input offset {marker:?}, but the group committed input offset {committed}; waited {waited_ms} ms (an open transaction of another producer ahead of it, or a deleted or foreign state topic)"
    )]
    Incomplete {
        /// Changelog (and input) partition.
        partition: i32,
        /// Input offset of the newest marker read.
        marker: Option<i64>,
        /// The group's committed input offset.
        committed: i64,
        /// How long the restore waited at the end of the readable log.
        waited_ms: u64,
    },
}
