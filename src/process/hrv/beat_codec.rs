//! Compact serde form of an open window's beats, for the state changelog:
//! one byte string of varints. Each beat is written as the change of its RR
//! from the previous beat's, shifted left by one bit that says whether a
//! gap follows: the gap between its time and (previous beat time + its RR),
//! which is 0 for consecutive beats of one recording and written only when
//! it is not. Successive RR changes are mostly under 32 ms, so a beat
//! takes one byte, rarely two, where a `(t_ms, rr_ms)` pair takes 13 in
//! MessagePack and the RR alone two in the reading's Avro.

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
pub(super) fn encode<I>(beats: I) -> Vec<u8>
where
    I: IntoIterator<Item = Beat>,
    I::IntoIter: ExactSizeIterator,
{
    let beats = beats.into_iter();
    let mut out = Vec::with_capacity(beats.len() * 2 + 8);
    let (mut prev_t, mut prev_rr) = (0_i64, 0_i64);
    for b in beats {
        let rr = i64::from(b.rr_ms);
        let gap = b.t_ms.wrapping_sub(prev_t).wrapping_sub(rr);
        put(
            &mut out,
            (zigzag(rr.wrapping_sub(prev_rr)) << 1) | u64::from(gap != 0),
        );
        if gap != 0 {
            put(&mut out, zigzag(gap));
        }
        (prev_t, prev_rr) = (b.t_ms, rr);
    }
    out
}

/// Beats from [`encode`]'s bytes; `None` when they are cut short.
pub(super) fn decode(mut bytes: &[u8]) -> Option<Vec<Beat>> {
    let mut beats = Vec::with_capacity(bytes.len());
    let (mut prev_t, mut prev_rr) = (0_i64, 0_i64);
    while !bytes.is_empty() {
        let head = take(&mut bytes)?;
        let rr = prev_rr.wrapping_add(unzigzag(head >> 1));
        let gap = if head & 1 == 1 {
            unzigzag(take(&mut bytes)?)
        } else {
            0
        };
        let t_ms = prev_t.wrapping_add(rr).wrapping_add(gap);
        beats.push(Beat {
            t_ms,
            rr_ms: i32::try_from(rr).ok()?,
        });
        (prev_t, prev_rr) = (t_ms, rr);
    }
    Some(beats)
}

/// Serialises the beats as [`encode`]'s byte string.
pub(super) fn serialize<I, S>(beats: I, s: S) -> Result<S::Ok, S::Error>
where
    I: IntoIterator<Item = Beat>,
    I::IntoIter: ExactSizeIterator,
    S: Serializer,
{
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
    fn beats_round_trip_in_about_a_byte_each() {
        let mut t = 1_790_000_000_000_i64;
        let mut beats = Vec::new();
        for i in 0..120 {
            // Breathing-like modulation plus noise, as a PPG gives.
            let rr = 800 + [0, 12, 20, 12, 0, -12, -20, -12][i % 8] + (i as i32 * 37 % 15);
            // A gap between two recordings half way.
            t += i64::from(rr) + if i == 60 { 45_000 } else { 0 };
            beats.push(Beat { t_ms: t, rr_ms: rr });
        }
        beats.push(Beat {
            t_ms: t - 5_000,
            rr_ms: 3_500,
        });
        let bytes = encode(beats.iter().copied());
        // The first beat's time (a gap from 0) takes about 6 bytes.
        assert!(bytes.len() < 120 * 3 / 2 + 16, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes), Some(beats));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[]), Some(Vec::new()));
    }
}
