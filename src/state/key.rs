//! Changelog record keys: compact binary, one key per store entry.
//!
//! Layout: a store tag (1 byte), the input partition (4 bytes, big endian),
//! then the entry:
//!
//! | tag | store        | entry                                              |
//! |-----|--------------|----------------------------------------------------|
//! | 1   | partition    | nothing: scalar state and the input offset marker  |
//! | 2   | dedup        | patient hash (8) + reading-id hash (8)             |
//! | 3   | HRV patient  | patient hash (16)                                  |
//! | 4   | HRV window   | patient hash (16) + window start, ms (8)           |
//! | 5   | alerts       | patient hash (16)                                  |
//!
//! Keys never carry a patient id (only 64- or 128-bit hashes of it), so the
//! tombstone an erasure writes holds nothing of the patient. The partition
//! is part of the key and records go to the changelog partition of the same
//! number: restoring an input partition reads one changelog partition.

use xxhash_rust::xxh3::xxh3_128;

use crate::process::DedupKey;

const TAG_META: u8 = 1;
const TAG_DEDUP: u8 = 2;
const TAG_HRV_PATIENT: u8 = 3;
const TAG_HRV_WINDOW: u8 = 4;
const TAG_ALERTS: u8 = 5;

/// Which entry of which store a changelog record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKey {
    /// The partition's scalar state and the input offset it reflects.
    Meta,
    /// One remembered reading id.
    Dedup(DedupKey),
    /// A patient's HRV state besides its open windows, by patient hash.
    HrvPatient(u128),
    /// One open HRV window: patient hash, window start (ms).
    HrvWindow(u128, i64),
    /// A patient's alert history, cool-downs and pending confirmations.
    Alerts(u128),
}

/// The 128-bit hash that stands for a patient id in keys.
pub fn patient_hash(patient_id: &str) -> u128 {
    xxh3_128(patient_id.as_bytes())
}

impl StateKey {
    /// The store's name, for errors and logs (never the entry: it may
    /// stand for a patient).
    pub fn store(&self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Dedup(_) => "dedup",
            Self::HrvPatient(_) => "hrv patient",
            Self::HrvWindow(..) => "hrv window",
            Self::Alerts(_) => "alerts",
        }
    }

    /// The key's bytes for `partition`.
    pub fn encode(&self, partition: i32) -> Vec<u8> {
        let mut out = Vec::with_capacity(29);
        let (tag, hash) = match *self {
            Self::Meta => (TAG_META, None),
            Self::Dedup(_) => (TAG_DEDUP, None),
            Self::HrvPatient(h) => (TAG_HRV_PATIENT, Some(h)),
            Self::HrvWindow(h, _) => (TAG_HRV_WINDOW, Some(h)),
            Self::Alerts(h) => (TAG_ALERTS, Some(h)),
        };
        out.push(tag);
        out.extend_from_slice(&partition.to_be_bytes());
        if let Some(h) = hash {
            out.extend_from_slice(&h.to_be_bytes());
        }
        match *self {
            Self::Dedup((patient, reading)) => {
                out.extend_from_slice(&patient.to_be_bytes());
                out.extend_from_slice(&reading.to_be_bytes());
            }
            Self::HrvWindow(_, start) => out.extend_from_slice(&start.to_be_bytes()),
            _ => {}
        }
        out
    }

    /// Reads a key: its partition and entry.
    ///
    /// # Errors
    /// [`KeyError`] for a key this version does not write.
    pub fn decode(bytes: &[u8]) -> Result<(i32, Self), KeyError> {
        let (&tag, rest) = bytes.split_first().ok_or(KeyError::Unknown)?;
        if tag.is_ascii_digit() && bytes.contains(&b'/') {
            return Err(KeyError::Legacy);
        }
        let partition = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
            .ok_or(KeyError::Unknown)?;
        let entry = &rest[4..];
        let u64_at = |i: usize| -> Option<u64> {
            entry
                .get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        let hash = || -> Option<u128> {
            entry
                .get(..16)
                .and_then(|b| b.try_into().ok())
                .map(u128::from_be_bytes)
        };
        let key = match (tag, entry.len()) {
            (TAG_META, 0) => Some(Self::Meta),
            (TAG_DEDUP, 16) => u64_at(0).zip(u64_at(8)).map(Self::Dedup),
            (TAG_HRV_PATIENT, 16) => hash().map(Self::HrvPatient),
            (TAG_HRV_WINDOW, 24) => hash()
                .zip(u64_at(16))
                .map(|(h, start)| Self::HrvWindow(h, start as i64)),
            (TAG_ALERTS, 16) => hash().map(Self::Alerts),
            _ => None,
        };
        key.map(|k| (partition, k)).ok_or(KeyError::Unknown)
    }
}

/// A changelog key this version cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text keys of vitalstream before the binary format (`3/meta`).
    #[error("written by an older vitalstream (text keys, JSON values)")]
    Legacy,
    /// Not a key this version writes (a newer version's, or not ours).
    #[error("unknown key layout (written by a newer vitalstream, or not by vitalstream)")]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_name_no_patient() {
        let h = patient_hash("p/with/slashes");
        for key in [
            StateKey::Meta,
            StateKey::Dedup((u64::MAX, 7)),
            StateKey::HrvPatient(h),
            StateKey::HrvWindow(h, -300_000),
            StateKey::HrvWindow(h, 1_790_000_100_000),
            StateKey::Alerts(h),
        ] {
            let bytes = key.encode(12);
            assert_eq!(StateKey::decode(&bytes), Ok((12, key)));
        }
        assert_eq!(StateKey::Meta.encode(3), [1, 0, 0, 0, 3]);
        assert_eq!(StateKey::Dedup((1, 2)).encode(0).len(), 21);
        let key = StateKey::Alerts(patient_hash("p-secret")).encode(1);
        assert!(!key.windows(8).any(|w| w == b"p-secret"));
    }

    #[test]
    fn foreign_and_legacy_keys_are_refused() {
        assert_eq!(StateKey::decode(b"3/meta"), Err(KeyError::Legacy));
        assert_eq!(
            StateKey::decode(b"12/dedup/00000000000000000000000000000001"),
            Err(KeyError::Legacy)
        );
        for bad in [
            &b""[..],
            &[1, 0, 0],
            &[1, 0, 0, 0, 0, 9],
            &[9, 0, 0, 0, 0],
            &[2; 20],
        ] {
            assert_eq!(StateKey::decode(bad), Err(KeyError::Unknown), "{bad:?}");
        }
    }
}
