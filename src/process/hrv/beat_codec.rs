//! Compact serde form of an open window's beats, for the state changelog:
//! one byte string of varints. Each beat is written as its RR and the gap
//! between its time and (previous beat time + its RR), which is 0 for
//! consecutive beats of one recording: about 3 bytes a beat where a
//! `(t_ms, rr_ms)` pair takes 13 in MessagePack.

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use super::filter::Beat;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The beats as one byte string.
pub(super) fn encode(beats: &[Beat]) -> Vec<u8> {
    let mut out = Vec::with_capacity(beats.len() * 3 + 8);
    let mut prev = 0_i64;
    for b in beats {
        let rr = i64::from(b.rr_ms);
        put(&mut out, zigzag(rr));
        put(&mut out, zigzag(b.t_ms.wrapping_sub(prev).wrapping_sub(rr)));
        prev = b.t_ms;
    }
    out
}

/// Beats from [`encode`]'s bytes; `None` when they are cut short.
pub(super) fn decode(mut bytes: &[u8]) -> Option<Vec<Beat>> {
    let mut beats = Vec::with_capacity(bytes.len() / 3);
    let mut prev = 0_i64;
    while !bytes.is_empty() {
        let rr = unzigzag(take(&mut bytes)?);
        let gap = unzigzag(take(&mut bytes)?);
        let t_ms = prev.wrapping_add(rr).wrapping_add(gap);
        beats.push(Beat {
            t_ms,
            rr_ms: i32::try_from(rr).ok()?,
        });
        prev = t_ms;
    }
    Some(beats)
}

/// `#[serde(with)]` serialiser.
pub(super) fn serialize<S: Serializer>(beats: &[Beat], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(&encode(beats))
}

/// `#[serde(with)]` deserialiser.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Beat>, D::Error> {
    struct BytesVisitor;
    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<Beat>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("beats as a byte string of varints")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            decode(v).ok_or_else(|| E::custom("beats cut short"))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            self.visit_bytes(&bytes)
        }
    }
    d.deserialize_bytes(BytesVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_round_trip_in_about_three_bytes_each() {
        let mut t = 1_790_000_000_000_i64;
        let mut beats = Vec::new();
        for i in 0..120 {
            let rr = 700 + (i * 37 % 300);
            // A gap between two recordings half way.
            t += i64::from(rr) + if i == 60 { 45_000 } else { 0 };
            beats.push(Beat { t_ms: t, rr_ms: rr });
        }
        beats.push(Beat {
            t_ms: t - 5_000,
            rr_ms: 3_500,
        });
        let bytes = encode(&beats);
        assert!(bytes.len() < 120 * 3 + 16, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes), Some(beats));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[]), Some(Vec::new()));
    }
}
