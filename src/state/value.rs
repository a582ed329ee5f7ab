//! Changelog values: a format-version byte, then the state struct of the
//! process core through serde in MessagePack (`rmp-serde`; structs as
//! arrays, so no field names are written, integers in their smallest form).
//! MessagePack rather than a non-self-describing format (postcard,
//! bincode): `rust_decimal` reads its values through `deserialize_any`.
//!
//! The value types are the core's own state structs (`HrvPatientState`,
//! `OpenWindow`, `Pending`, `DedupMeta`, `HrvMeta`), so a field
//! added there is written and read here with no change to this module.
//! Fields are written by position, though: a changed layout reads old
//! records wrongly or not at all. Whoever changes a serialised state
//! struct bumps [`FORMAT_VERSION`]; a restore that meets a version it does
//! not know stops with [`ValueError::UnknownVersion`] instead of guessing.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::process::{DedupKey, DedupMeta, HrvMeta, Sample};

/// Version of the value layout written by this build.
/// 2: dedup ids in one record per generation; alert state as one record per entry (samples per event time, hourly
/// baseline sums, waiting readings, cool-downs), not one per patient.
pub const FORMAT_VERSION: u8 = 2;

/// A dedup generation's record: the version byte, then per reading id its
/// two 64-bit hashes (big endian) and its event time as a zigzag varint
/// of the change from the previous entry's (from 0 for the first): about
/// 18 bytes an id, where a record per id took 28 (key and value).
pub fn encode_dedup_group(entries: &[(DedupKey, i64)], out: &mut Vec<u8>) {
    out.clear();
    out.push(FORMAT_VERSION);
    let mut prev = 0_i64;
    for &((patient, reading), t) in entries {
        out.extend_from_slice(&patient.to_be_bytes());
        out.extend_from_slice(&reading.to_be_bytes());
        let d = t.wrapping_sub(prev);
        let mut z = ((d << 1) ^ (d >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
        prev = t;
    }
}

/// Reads a record written by [`encode_dedup_group`].
///
/// # Errors
/// [`ValueError`].
pub fn decode_dedup_group(bytes: &[u8]) -> Result<Vec<(DedupKey, i64)>, ValueError> {
    let (&version, mut rest) = bytes.split_first().ok_or(ValueError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(ValueError::UnknownVersion { found: version });
    }
    let cut = || ValueError::Corrupt("dedup group cut short".into());
    let mut out = Vec::with_capacity(rest.len() / 18);
    let mut prev = 0_i64;
    while !rest.is_empty() {
        let hash = |b: &[u8]| -> Option<u64> { b.try_into().ok().map(u64::from_be_bytes) };
        let patient = rest.get(..8).and_then(hash).ok_or_else(cut)?;
        let reading = rest.get(8..16).and_then(hash).ok_or_else(cut)?;
        rest = &rest[16..];
        let mut z = 0_u64;
        let mut shift = 0;
        loop {
            let (&b, tail) = rest.split_first().ok_or_else(cut)?;
            rest = tail;
            if shift > 63 {
                return Err(cut());
            }
            z |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        let t = prev.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
        out.push(((patient, reading), t));
        prev = t;
    }
    Ok(out)
}

/// One alert sample as its record holds it: its key holds the patient,
/// the signal and the event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleValue<'a> {
    /// Primary value.
    pub value: Decimal,
    /// Diastolic, for blood pressure.
    pub secondary: Option<Decimal>,
    /// The reading it came from (alert evidence).
    pub reading_id: Cow<'a, str>,
}

impl<'a> SampleValue<'a> {
    /// The record form of `sample`.
    pub fn of(sample: &'a Sample) -> Self {
        Self {
            value: sample.value,
            secondary: sample.secondary,
            reading_id: Cow::Borrowed(&sample.reading_id),
        }
    }

    /// The sample at event time `t_ms`.
    pub fn into_sample(self, t_ms: i64) -> Sample {
        Sample {
            t_ms,
            value: self.value,
            secondary: self.secondary,
            reading_id: self.reading_id.as_ref().into(),
        }
    }
}

/// The partition's scalar state: written with every change of the
/// partition, last in its transaction or batch, so it doubles as the
/// marker of the input offset the partition's state reflects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Offset after the last input record the state reflects.
    pub next_offset: Option<i64>,
    /// Dedup horizon bookkeeping.
    pub dedup: DedupMeta,
    /// HRV watermark and late count.
    pub hrv: HrvMeta,
}

/// A value that does not read back.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    /// No bytes where a value belongs.
    #[error("empty value")]
    Empty,
    /// A format version this build does not know.
    #[error(
        "format version {found} (this build reads version {FORMAT_VERSION}): written by another vitalstream version"
    )]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// The bytes after the version do not decode.
    #[error("{0}")]
    Corrupt(String),
}

/// Appends `value` in the versioned format to `out` (cleared first).
///
/// # Errors
/// A value serde cannot write (a defect in a state struct).
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    out.push(FORMAT_VERSION);
    rmp_serde::encode::write(out, value).map_err(|e| e.to_string())
}

/// `value` in the versioned format.
///
/// # Errors
/// As [`encode_into`].
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Reads a value written by [`encode`].
///
/// # Errors
/// [`ValueError`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValueError> {
    let (&version, body) = bytes.split_first().ok_or(ValueError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(ValueError::UnknownVersion { found: version });
    }
    let mut rest = body;
    let value = T::deserialize(&mut rmp_serde::Deserializer::new(&mut rest))
        .map_err(|e| ValueError::Corrupt(e.to_string()))?;
    let rest = rest.len();
    if rest > 0 {
        return Err(ValueError::Corrupt(format!(
            "{rest} bytes left after the value"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> PartitionMeta {
        PartitionMeta {
            next_offset: Some(1_234_567),
            dedup: DedupMeta {
                max_event_ms: 1_790_000_000_000,
                evicted_up_to_ms: i64::MIN,
            },
            hrv: HrvMeta {
                max_event_ms: Some(1_790_000_000_000),
                late_total: 3,
            },
        }
    }

    #[test]
    fn values_round_trip_behind_the_version_byte() {
        let bytes = encode(&meta()).expect("encodes");
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<PartitionMeta>(&bytes), Ok(meta()));
        // Varints: far smaller than the JSON it replaces.
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
        let id = encode(&("patient-1", 42_i64)).expect("encodes");
        assert_eq!(decode::<(String, i64)>(&id), Ok(("patient-1".into(), 42)));
    }

    #[test]
    fn dedup_groups_round_trip_in_about_18_bytes_an_id() {
        let entries: Vec<(DedupKey, i64)> = (0..100)
            .map(|i| {
                (
                    (i * 7, u64::MAX - i),
                    1_790_000_000_000 + (i as i64 % 7) * 300 - 1000,
                )
            })
            .collect();
        let mut out = Vec::new();
        encode_dedup_group(&entries, &mut out);
        assert!(out.len() < 100 * 19 + 8, "{}", out.len());
        assert_eq!(decode_dedup_group(&out), Ok(entries));
        assert!(decode_dedup_group(&out[..out.len() - 1]).is_err());
        assert_eq!(decode_dedup_group(&[FORMAT_VERSION]), Ok(Vec::new()));
    }

    #[test]
    fn an_unknown_version_is_a_clear_error() {
        let mut bytes = encode(&meta()).expect("encodes");
        bytes[0] = FORMAT_VERSION + 1;
        let err = decode::<PartitionMeta>(&bytes).expect_err("refused");
        assert_eq!(
            err,
            ValueError::UnknownVersion {
                found: FORMAT_VERSION + 1
            }
        );
        assert!(err.to_string().contains("another vitalstream version"));
        // The JSON values of the first changelog format start with `{`.
        assert!(matches!(
            decode::<PartitionMeta>(b"{\"dedup\":{}}"),
            Err(ValueError::UnknownVersion { found: b'{' })
        ));
        assert_eq!(decode::<PartitionMeta>(&[]), Err(ValueError::Empty));
    }

    #[test]
    fn truncated_or_padded_values_are_corrupt() {
        let bytes = encode(&meta()).expect("encodes");
        assert!(matches!(
            decode::<PartitionMeta>(&bytes[..bytes.len() - 1]),
            Err(ValueError::Corrupt(_))
        ));
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(
            decode::<PartitionMeta>(&padded),
            Err(ValueError::Corrupt(_))
        ));
    }
}
