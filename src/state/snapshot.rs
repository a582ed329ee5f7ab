//! Changelog values: the partition's scalar state and one patient's
//! snapshot as JSON (small, versionable, readable when debugging), a dedup
//! entry as its 8-byte big-endian event time.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::process::{AlertPatientState, DedupMeta, HrvMeta, HrvPatientState};

/// A changelog record that cannot be read back. Fatal: running on with
/// silently missing state could admit duplicates or lose alerts.
#[derive(Debug, Error)]
pub enum StateError {
    /// The value does not decode.
    #[error("state changelog partition {partition}: undecodable {store} record: {detail}")]
    Undecodable {
        /// Changelog partition.
        partition: i32,
        /// `meta`, `dedup` or `patient` (never the key itself: it may name a patient).
        store: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// State that cannot be written (a defect).
    #[error("state changelog partition {partition}: {store} state does not encode: {detail}")]
    Unencodable {
        /// Changelog partition.
        partition: i32,
        /// `meta` or `patient`.
        store: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// The partition's scalar state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Dedup horizon bookkeeping.
    pub dedup: DedupMeta,
    /// HRV watermark and late count.
    pub hrv: HrvMeta,
}

/// One patient's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientSnapshot {
    /// The patient (the key holds only a hash of it).
    pub patient_id: String,
    /// Open HRV windows.
    pub hrv: Option<HrvPatientState>,
    /// Alert history, cool-downs, readings awaiting confirmation.
    pub alerts: Option<AlertPatientState>,
}

impl PatientSnapshot {
    /// Whether nothing is held (the record becomes a tombstone).
    pub fn is_empty(&self) -> bool {
        self.hrv.is_none() && self.alerts.is_none()
    }
}

/// JSON of a snapshot or meta value of `store` in `partition`.
pub(crate) fn to_json<T: Serialize>(
    value: &T,
    partition: i32,
    store: &'static str,
) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value).map_err(|e| StateError::Unencodable {
        partition,
        store,
        detail: e.to_string(),
    })
}

/// Reads a JSON value of `store` in `partition`.
pub(crate) fn from_json<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    partition: i32,
    store: &'static str,
) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Undecodable {
        partition,
        store,
        detail: e.to_string(),
    })
}

/// Reads a dedup entry's event time.
pub(crate) fn event_ms(bytes: &[u8], partition: i32) -> Result<i64, StateError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| StateError::Undecodable {
        partition,
        store: "dedup",
        detail: format!("{} bytes where 8 belong", bytes.len()),
    })?;
    Ok(i64::from_be_bytes(raw))
}
