//! Changelog record keys: `{partition}/meta`, `{partition}/dedup/{32 hex}`
//! (patient and reading-id hashes), `{partition}/patient/{32 hex}` (hash of
//! the patient id; the id itself is in the value). Keys never carry a patient
//! id, so the tombstone an erasure writes holds nothing of the patient. The
//! partition is part of the key, and records are written to the changelog
//! partition of the same number, so restoring an input partition reads one
//! changelog partition and nothing else.

use xxhash_rust::xxh3::xxh3_128;

use crate::process::DedupKey;

/// What a changelog record holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StateKey {
    /// The partition's scalar state.
    Meta,
    /// One remembered reading id.
    Dedup(DedupKey),
    /// One patient's HRV and alert state, by hash of the patient id.
    Patient(u128),
}

impl StateKey {
    /// The key of `patient_id`'s snapshot.
    pub fn patient(patient_id: &str) -> Self {
        Self::Patient(xxh3_128(patient_id.as_bytes()))
    }
}

/// One record for the changelog topic: `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// Input (and changelog) partition.
    pub partition: i32,
    /// Encoded key.
    pub key: Vec<u8>,
    /// Encoded value, or `None` to delete the key.
    pub value: Option<Vec<u8>>,
}

/// Encodes a changelog key.
pub fn encode_key(partition: i32, key: &StateKey) -> Vec<u8> {
    match key {
        StateKey::Meta => format!("{partition}/meta"),
        StateKey::Dedup((patient, reading)) => {
            format!("{partition}/dedup/{patient:016x}{reading:016x}")
        }
        StateKey::Patient(hash) => format!("{partition}/patient/{hash:032x}"),
    }
    .into_bytes()
}

/// Decodes a changelog key; `None` if it is not one vitalstream writes.
pub fn decode_key(bytes: &[u8]) -> Option<(i32, StateKey)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (partition, rest) = text.split_once('/')?;
    let partition: i32 = partition.parse().ok()?;
    let key = if rest == "meta" {
        StateKey::Meta
    } else if let Some(hex) = rest.strip_prefix("dedup/") {
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let patient = u64::from_str_radix(&hex[..16], 16).ok()?;
        let reading = u64::from_str_radix(&hex[16..], 16).ok()?;
        StateKey::Dedup((patient, reading))
    } else {
        let hex = rest.strip_prefix("patient/")?;
        if hex.len() != 32 {
            return None;
        }
        StateKey::Patient(u128::from_str_radix(hex, 16).ok()?)
    };
    Some((partition, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in [
            StateKey::Meta,
            StateKey::Dedup((u64::MAX, 7)),
            StateKey::patient("p/with/slashes"),
        ] {
            let bytes = encode_key(12, &key);
            assert_eq!(decode_key(&bytes), Some((12, key)));
        }
        assert_eq!(encode_key(3, &StateKey::Meta), b"3/meta");
        let key = encode_key(1, &StateKey::patient("p-secret"));
        assert!(!String::from_utf8_lossy(&key).contains("p-secret"));
        for bad in [
            &b"meta"[..],
            b"x/meta",
            b"1/dedup/12",
            b"1/other/x",
            b"\xff/meta",
        ] {
            assert_eq!(decode_key(bad), None);
        }
    }
}
