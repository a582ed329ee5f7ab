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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::process::{DedupKey, DedupMeta, HrvMeta, Sample, Signal};

/// Version of the value layout written by this build.
/// 2: dedup ids in one record per generation; alert state as one record per entry (samples per event time, hourly
/// baseline sums, waiting readings, cool-downs), not one per patient.
/// 3: alert samples per reading in reusable slots ([`encode_slot`]), in
/// fixed point; waiting readings hold such a sample.
/// 4: an HRV window chunk may carry its patient's event-time marks (a
/// trailing field), in place of a rewritten patient head record.
/// 5: the partition meta's HRV part carries the time of the last hourly
/// sweep for quiet patients (a trailing field).
pub const FORMAT_VERSION: u8 = 5;

/// The oldest version this build reads: 3's and 4's layouts are 5's without
/// the optional trailing fields added since, so a state written by the
/// previous releases restores as it is (no `vitalstream reset` on upgrade).
pub const OLDEST_READABLE: u8 = 3;

/// Whether this build reads values of `version`.
fn readable(version: u8) -> Result<(), ValueError> {
    match (OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
        true => Ok(()),
        false => Err(ValueError::UnknownVersion { found: version }),
    }
}

fn put_varint(out: &mut Vec<u8>, mut z: u64) {
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Reads a varint off the front of `rest`.
fn take_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut z = 0_u64;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        if shift > 63 {
            return None;
        }
        z |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b < 0x80 {
            return Some(z);
        }
    }
}

/// An alert slot's record: the version byte, then per sample its signal
/// (1), event time (zigzag varint, ms), value scale (1) and mantissa
/// (zigzag varint), secondary scale (1, 255: none) and mantissa (zigzag
/// varint, when present), reading id length (varint) and bytes. About 32
/// bytes for a sample with a 16-byte reading id. Hand-written rather than
/// serde: the record is written for most readings, and MessagePack would
/// write each decimal as a string.
pub fn encode_slot<'a>(samples: impl IntoIterator<Item = &'a Sample>, out: &mut Vec<u8>) {
    out.clear();
    out.push(FORMAT_VERSION);
    for s in samples {
        let (value, scale, secondary, secondary_scale) = s.raw();
        out.push(s.signal as u8);
        put_varint(out, zigzag(s.t_ms));
        out.push(scale);
        put_varint(out, zigzag(i64::from(value)));
        out.push(secondary_scale);
        if secondary_scale != u8::MAX {
            put_varint(out, zigzag(i64::from(secondary)));
        }
        put_varint(out, s.reading_id.len() as u64);
        out.extend_from_slice(s.reading_id.as_bytes());
    }
}

/// Reads a record written by [`encode_slot`]: the samples of `slot`.
///
/// # Errors
/// [`ValueError`].
pub fn decode_slot(bytes: &[u8], slot: u16) -> Result<Vec<Sample>, ValueError> {
    let (&version, mut rest) = bytes.split_first().ok_or(ValueError::Empty)?;
    readable(version)?;
    let bad = |what: &str| ValueError::Corrupt(format!("alert slot: {what}"));
    let mut out = Vec::with_capacity(2);
    while !rest.is_empty() {
        let mut byte = || {
            let (&b, tail) = rest.split_first().ok_or_else(|| bad("cut short"))?;
            rest = tail;
            Ok::<u8, ValueError>(b)
        };
        let signal = Signal::from_index(usize::from(byte()?)).ok_or_else(|| bad("signal"))?;
        let number = |rest: &mut &[u8]| take_varint(rest).ok_or_else(|| bad("cut short"));
        let t_ms = unzigzag(number(&mut rest)?);
        let (&scale, tail) = rest.split_first().ok_or_else(|| bad("cut short"))?;
        rest = tail;
        let value = i32::try_from(unzigzag(number(&mut rest)?)).map_err(|_| bad("value"))?;
        let (&secondary_scale, tail) = rest.split_first().ok_or_else(|| bad("cut short"))?;
        rest = tail;
        let secondary = if secondary_scale == u8::MAX {
            0
        } else {
            i32::try_from(unzigzag(number(&mut rest)?)).map_err(|_| bad("value"))?
        };
        let len = usize::try_from(number(&mut rest)?).map_err(|_| bad("id"))?;
        let id = rest.get(..len).ok_or_else(|| bad("cut short"))?;
        let id = std::str::from_utf8(id).map_err(|_| bad("reading id not UTF-8"))?;
        rest = &rest[len..];
        let raw = (value, scale, secondary, secondary_scale);
        out.push(Sample::from_raw(signal, t_ms, raw, id, slot).ok_or_else(|| bad("scale"))?);
    }
    Ok(out)
}

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
    readable(version)?;
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
        "format version {found} (this build reads versions {OLDEST_READABLE} to {FORMAT_VERSION}): written by another vitalstream version"
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
    readable(version)?;
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
                swept_at_ms: Some(1_789_999_000_000),
            },
        }
    }

    #[test]
    fn a_format_4_meta_reads_with_no_sweep_time() {
        // Format 4's meta: the same arrays without the trailing sweep time.
        let old = (
            Some(1_234_567_i64),
            (1_790_000_000_000_i64, i64::MIN),
            (Some(1_790_000_000_000_i64), 3_u64),
        );
        let mut bytes = encode(&old).expect("encodes");
        bytes[0] = 4;
        let read = decode::<PartitionMeta>(&bytes).expect("format 4 reads");
        let mut want = meta();
        want.hrv.swept_at_ms = None;
        assert_eq!(read, want);
        // The sweep time costs one 64-bit integer (9 bytes) on top of it.
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
        assert_eq!(encode(&meta()).expect("encodes").len(), bytes.len() + 9);
    }

    #[test]
    fn values_round_trip_behind_the_version_byte() {
        let bytes = encode(&meta()).expect("encodes");
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<PartitionMeta>(&bytes), Ok(meta()));
        // Varints: far smaller than the JSON it replaces (and see
        // `a_format_4_meta_reads_with_no_sweep_time` for the exact size).
        assert!(bytes.len() < 50, "{} bytes", bytes.len());
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
    fn alert_slots_round_trip_in_about_32_bytes_a_sample() {
        let dec = |s: &str| s.parse::<rust_decimal::Decimal>().expect("decimal");
        let samples = [
            Sample::new(
                Signal::BloodPressure,
                1_790_000_000_123,
                dec("181"),
                Some(dec("95")),
                "rd-42-0000012345",
            ),
            Sample::new(Signal::RestingHeartRate, -5, dec("-0.125"), None, "é"),
            Sample::new(Signal::Weight, 0, dec("80.100"), None, ""),
        ];
        let mut out = Vec::new();
        encode_slot(&samples[..1], &mut out);
        assert!(out.len() <= 32, "{}", out.len());
        encode_slot(&samples, &mut out);
        let back = decode_slot(&out, 7).expect("decodes");
        let with_slot: Vec<Sample> = samples
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.slot = 7;
                s
            })
            .collect();
        assert_eq!(back, with_slot);
        assert_eq!(back[2].value().to_string(), "80.100");
        for cut in 1..out.len() {
            let _ = decode_slot(&out[..cut], 7);
        }
        assert!(decode_slot(&out[..out.len() - 1], 7).is_err());
        let mut bad_signal = out.clone();
        bad_signal[1] = 99;
        assert!(decode_slot(&bad_signal, 7).is_err());
        out[0] = 2;
        assert_eq!(
            decode_slot(&out, 7),
            Err(ValueError::UnknownVersion { found: 2 })
        );
    }

    #[test]
    fn the_previous_releases_values_still_read() {
        // Version 3 wrote the same layouts (an HRV chunk without marks).
        let mut bytes = encode(&meta()).expect("encodes");
        bytes[0] = 3;
        assert_eq!(decode::<PartitionMeta>(&bytes), Ok(meta()));
        bytes[0] = 2;
        assert_eq!(
            decode::<PartitionMeta>(&bytes),
            Err(ValueError::UnknownVersion { found: 2 })
        );
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
