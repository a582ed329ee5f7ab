//! Changelog record keys: compact binary, one key per store entry.
//!
//! Layout: a store tag (1 byte), the input partition (a LEB128 varint: one
//! byte below 128), then the entry:
//!
//! | tag | store         | entry                                              |
//! |-----|---------------|----------------------------------------------------|
//! | 1   | partition     | nothing: scalar state and the input offset marker  |
//! | 10  | dedup group   | generation (4): the reading ids remembered together |
//! | 3   | HRV patient   | patient hash (8)                                   |
//! | 9   | HRV chunk     | patient hash (8) + window start, ms (8) + chunk (2) |
//! | 5   | alerts head   | patient hash (8)                                   |
//! | 11  | alert slot    | patient hash (8) + slot (2): one reading's samples |
//! | 7   | alert hourly  | patient hash (8) + signal (1) + hour start, ms (8) |
//! | 8   | alert pending | patient hash (8) + rule (1)                        |
//!
//! Keys never carry a patient id (only 64-bit hashes of it), so the
//! tombstone an erasure writes holds nothing of the patient. 64 bits, not
//! 128: the key is written with every sample and beat chunk, and two
//! patients of one partition share a hash with a probability of about
//! n²/2⁶⁵ (3·10⁻⁸ at a million patients per partition), the same risk the
//! dedup store takes on its keys. The partition is part of the key and
//! records go to the changelog partition of the same number: restoring an
//! input partition reads one changelog partition.

use xxhash_rust::xxh3::xxh3_64;

const TAG_META: u8 = 1;
// 2 was one reading id per key (format version 1).
const TAG_DEDUP_GROUP: u8 = 10;
const TAG_HRV_PATIENT: u8 = 3;
// 4 was a whole HRV window per key (format version 1).
const TAG_HRV_CHUNK: u8 = 9;
const TAG_ALERTS: u8 = 5;
/// Alert samples per event time, each deleted when it left the look-back
/// (format version 2).
const TAG_RETIRED_ALERT_SAMPLES: u8 = 6;
const TAG_ALERT_SLOT: u8 = 11;
const TAG_ALERT_BASELINE: u8 = 7;
const TAG_ALERT_PENDING: u8 = 8;

/// Which entry of which store a changelog record holds. Ordered by store,
/// then by the entry's fields (an HRV window's chunks by number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKey {
    /// The partition's scalar state and the input offset it reflects.
    Meta,
    /// The reading ids remembered together in one generation.
    DedupGroup(u32),
    /// A patient's HRV state besides its open windows, by patient hash.
    HrvPatient(u64),
    /// One reading's chunk of an open HRV window: patient hash, window
    /// start (ms), chunk number in the window.
    HrvChunk(u64, i64, u16),
    /// That a patient has alert state (their id) and their cool-downs.
    Alerts(u64),
    /// A patient's alert samples of one reading, in one of the patient's
    /// slots (reused by later readings once its samples left the look-back).
    AlertSlot(u64, u16),
    /// A patient's baseline sum of one signal (index) for one hour.
    AlertBaseline(u64, u8, i64),
    /// A patient's reading waiting for a repeat under one rule (index).
    AlertPending(u64, u8),
}

/// The 64-bit hash that stands for a patient id in keys.
pub fn patient_hash(patient_id: &str) -> u64 {
    xxh3_64(patient_id.as_bytes())
}

impl StateKey {
    /// The store's name, for errors and logs (never the entry: it may
    /// stand for a patient).
    pub fn store(&self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::DedupGroup(_) => "dedup",
            Self::HrvPatient(_) => "hrv patient",
            Self::HrvChunk(..) => "hrv window",
            Self::Alerts(_) => "alerts",
            Self::AlertSlot(..) => "alert samples",
            Self::AlertBaseline(..) => "alert baseline",
            Self::AlertPending(..) => "alert pending",
        }
    }

    /// The hash of the patient whose entry this is (`None`: not a
    /// patient's entry, or dedup, which holds another hash).
    pub fn patient(&self) -> Option<u64> {
        match *self {
            Self::Meta | Self::DedupGroup(_) => None,
            Self::HrvPatient(h)
            | Self::HrvChunk(h, ..)
            | Self::Alerts(h)
            | Self::AlertSlot(h, _)
            | Self::AlertBaseline(h, ..)
            | Self::AlertPending(h, _) => Some(h),
        }
    }

    /// The key's bytes for `partition`.
    pub fn encode(&self, partition: i32) -> Vec<u8> {
        let mut out = Vec::with_capacity(30);
        let tag = match *self {
            Self::Meta => TAG_META,
            Self::DedupGroup(_) => TAG_DEDUP_GROUP,
            Self::HrvPatient(_) => TAG_HRV_PATIENT,
            Self::HrvChunk(..) => TAG_HRV_CHUNK,
            Self::Alerts(_) => TAG_ALERTS,
            Self::AlertSlot(..) => TAG_ALERT_SLOT,
            Self::AlertBaseline(..) => TAG_ALERT_BASELINE,
            Self::AlertPending(..) => TAG_ALERT_PENDING,
        };
        let hash = self.patient();
        out.push(tag);
        // Partitions are never negative; a varint keeps the common ones to a byte.
        let mut p = partition.max(0) as u32;
        while p >= 0x80 {
            out.push((p as u8) | 0x80);
            p >>= 7;
        }
        out.push(p as u8);
        if let Some(h) = hash {
            out.extend_from_slice(&h.to_be_bytes());
        }
        match *self {
            Self::DedupGroup(generation) => out.extend_from_slice(&generation.to_be_bytes()),
            Self::HrvChunk(_, start, seq) => {
                out.extend_from_slice(&start.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Self::AlertSlot(_, slot) => out.extend_from_slice(&slot.to_be_bytes()),
            Self::AlertBaseline(_, signal, t) => {
                out.push(signal);
                out.extend_from_slice(&t.to_be_bytes());
            }
            Self::AlertPending(_, rule) => out.push(rule),
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
        if tag == TAG_RETIRED_ALERT_SAMPLES {
            return Err(KeyError::Retired);
        }
        let mut partition = 0_u32;
        let mut len = 0;
        loop {
            let &b = rest.get(len).ok_or(KeyError::Unknown)?;
            if len == 4 && b > 0x07 {
                return Err(KeyError::Unknown);
            }
            partition |= u32::from(b & 0x7f) << (7 * len);
            len += 1;
            if b < 0x80 {
                break;
            }
        }
        let partition = i32::try_from(partition).map_err(|_| KeyError::Unknown)?;
        let entry = &rest[len..];
        let u64_at = |i: usize| -> Option<u64> {
            entry
                .get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        let hash = || u64_at(0);
        let key = match (tag, entry.len()) {
            (TAG_META, 0) => Some(Self::Meta),
            (TAG_DEDUP_GROUP, 4) => entry
                .try_into()
                .ok()
                .map(|b| Self::DedupGroup(u32::from_be_bytes(b))),
            (TAG_HRV_PATIENT, 8) => hash().map(Self::HrvPatient),
            (TAG_HRV_CHUNK, 18) => hash()
                .zip(u64_at(8))
                .zip(entry.get(16..18).and_then(|b| b.try_into().ok()))
                .map(|((h, start), seq)| Self::HrvChunk(h, start as i64, u16::from_be_bytes(seq))),
            (TAG_ALERTS, 8) => hash().map(Self::Alerts),
            (TAG_ALERT_SLOT, 10) => hash()
                .zip(entry.get(8..10).and_then(|b| b.try_into().ok()))
                .map(|(h, slot)| Self::AlertSlot(h, u16::from_be_bytes(slot))),
            (TAG_ALERT_BASELINE, 17) => hash()
                .zip(entry.get(8).zip(u64_at(9)))
                .map(|(h, (&s, t))| Self::AlertBaseline(h, s, t as i64)),
            (TAG_ALERT_PENDING, 9) => hash()
                .zip(entry.get(8))
                .map(|(h, &r)| Self::AlertPending(h, r)),
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
    /// A key layout older versions wrote and this one does not read.
    #[error(
        "written by an older vitalstream (alert samples per event time, changelog format 2); \
         reset the state (`vitalstream reset`) to rebuild it from the input"
    )]
    Retired,
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
            StateKey::DedupGroup(u32::MAX),
            StateKey::DedupGroup(7),
            StateKey::HrvPatient(h),
            StateKey::HrvChunk(h, -300_000, 0),
            StateKey::HrvChunk(h, 1_790_000_100_000, 513),
            StateKey::Alerts(h),
            StateKey::AlertSlot(h, 0),
            StateKey::AlertSlot(h, 513),
            StateKey::AlertBaseline(h, 6, 1_790_000_000_000),
            StateKey::AlertPending(h, 2),
        ] {
            for partition in [0, 12, 127, 128, 300_000, i32::MAX] {
                let bytes = key.encode(partition);
                assert_eq!(StateKey::decode(&bytes), Ok((partition, key)));
            }
        }
        assert_eq!(StateKey::Meta.encode(3), [1, 3]);
        assert_eq!(StateKey::Meta.encode(128), [1, 0x80, 1]);
        assert_eq!(StateKey::DedupGroup(2).encode(0).len(), 6);
        assert_eq!(StateKey::AlertSlot(1, 2).encode(0).len(), 12);
        let key = StateKey::Alerts(patient_hash("p-secret")).encode(1);
        assert!(!key.windows(8).any(|w| w == b"p-secret"));
    }

    #[test]
    fn foreign_and_legacy_keys_are_refused() {
        assert_eq!(StateKey::decode(b"3/meta"), Err(KeyError::Legacy));
        let mut retired = vec![6, 0];
        retired.extend_from_slice(&[0; 17]);
        assert_eq!(StateKey::decode(&retired), Err(KeyError::Retired));
        assert_eq!(
            StateKey::decode(b"12/dedup/00000000000000000000000000000001"),
            Err(KeyError::Legacy)
        );
        for bad in [
            &b""[..],
            &[1, 0x80],
            &[1, 0, 9],
            &[10, 0],
            &[1, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[2; 20],
        ] {
            assert_eq!(StateKey::decode(bad), Err(KeyError::Unknown), "{bad:?}");
        }
    }
}
