//! Records of the compacted erasures topic: key `erased/<32 hex>` (the keyed
//! hash of the patient id, never the id), value a small versioned JSON
//! object. A tombstone deletes the record when the id is registered again.

use serde::{Deserialize, Serialize};

use super::{PatientHash, Position};

/// Version of the value written.
pub const VERSION: u32 = 1;

const PREFIX: &str = "erased/";

/// The value of one erasure record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Fingerprint of the hash key ([`super::PatientHasher::key_id`]).
    pub key_id: String,
    /// Where the tombstone was on the patients topic.
    pub position: Option<Position>,
}

/// The record key of `hash`.
pub fn encode_key(hash: PatientHash) -> Vec<u8> {
    format!("{PREFIX}{}", hash.to_hex()).into_bytes()
}

/// The hash in a record key; `None` for a key vitalstream does not write.
pub fn decode_key(key: &[u8]) -> Option<PatientHash> {
    let text = std::str::from_utf8(key).ok()?;
    PatientHash::from_hex(text.strip_prefix(PREFIX)?)
}

/// Encodes a value.
pub fn encode(record: &ErasureRecord) -> Vec<u8> {
    // A struct of integers and a string always serialises.
    serde_json::to_vec(record).unwrap_or_default()
}

/// Decodes a value.
///
/// # Errors
/// What is wrong with it (never quoting it).
pub fn decode(value: &[u8]) -> Result<ErasureRecord, String> {
    let record: ErasureRecord = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    if record.version != VERSION {
        return Err(format!(
            "version {} (this build reads {VERSION})",
            record.version
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_hold_no_id() {
        let hasher = super::super::PatientHasher::new(b"k");
        let hash = hasher.hash(b"p-secret");
        let key = encode_key(hash);
        assert_eq!(decode_key(&key), Some(hash));
        assert_eq!(decode_key(b"other/00"), None);
        let record = ErasureRecord {
            version: VERSION,
            key_id: hasher.key_id(),
            position: Some(Position {
                partition: 1,
                offset: 9,
                timestamp_ms: 5,
            }),
        };
        let value = encode(&record);
        assert_eq!(decode(&value), Ok(record));
        let text = String::from_utf8_lossy(&value).into_owned() + &String::from_utf8_lossy(&key);
        assert!(!text.contains("p-secret"), "{text}");
        assert!(decode(br#"{"version":2,"key_id":"x","position":null}"#).is_err());
    }
}
