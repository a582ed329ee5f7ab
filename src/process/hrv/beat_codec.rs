//! Compact serde form of an open window's beats, for the state changelog:
//! one byte string of varints. Each beat is written as the change of its RR
//! from the previous beat's, shifted left by one bit that says whether a
//! gap follows: the gap between its time and (previous beat time + its RR),
//! which is 0 for consecutive beats of one recording and written only when
//! it is not. Successive RR changes are mostly under 32 ms, so a beat
//! takes one byte, rarely two, where a `(t_ms, rr_ms)` pair takes 13 in
//! MessagePack and the RR alone two in the reading's Avro.

use serde::Deserializer;
use serde::de::{self, SeqAccess, Visitor};

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

/// Appends beats to a byte string one at a time, as [`encode`] writes
/// them: an open window keeps its beats in this form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Encoder {
    prev_t: i64,
    prev_rr: i64,
}

impl Encoder {
    /// The encoder that continues after `last`, the last beat written.
    pub(super) fn after(last: Option<Beat>) -> Self {
        last.map_or_else(Self::default, |b| Self {
            prev_t: b.t_ms,
            prev_rr: i64::from(b.rr_ms),
        })
    }

    /// Writes `b` to `out`.
    pub(super) fn push(&mut self, out: &mut Vec<u8>, b: Beat) {
        let rr = i64::from(b.rr_ms);
        let gap = b.t_ms.wrapping_sub(self.prev_t).wrapping_sub(rr);
        put(
            out,
            (zigzag(rr.wrapping_sub(self.prev_rr)) << 1) | u64::from(gap != 0),
        );
        if gap != 0 {
            put(out, zigzag(gap));
        }
        (self.prev_t, self.prev_rr) = (b.t_ms, rr);
    }
}

/// The beats as one byte string.
#[cfg(test)]
pub(super) fn encode<I>(beats: I) -> Vec<u8>
where
    I: IntoIterator<Item = Beat>,
    I::IntoIter: ExactSizeIterator,
{
    let beats = beats.into_iter();
    let mut out = Vec::with_capacity(beats.len() * 2 + 8);
    let mut enc = Encoder::default();
    for b in beats {
        enc.push(&mut out, b);
    }
    out
}

/// The beats of [`encode`]'s bytes, one by one; an `Err` item (then the
/// end) when they are cut short or an RR does not fit.
pub(super) fn beats(bytes: &[u8]) -> Beats<'_> {
    Beats {
        bytes,
        prev: Encoder::default(),
    }
}

/// Iterator of [`beats`].
#[derive(Debug, Clone)]
pub(super) struct Beats<'a> {
    bytes: &'a [u8],
    prev: Encoder,
}

/// The bytes do not hold whole beats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CutShort;

impl Iterator for Beats<'_> {
    type Item = Result<Beat, CutShort>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let beat = self.step();
        if beat.is_none() {
            self.bytes = &[];
        }
        Some(beat.ok_or(CutShort))
    }
}

impl Beats<'_> {
    fn step(&mut self) -> Option<Beat> {
        let head = take(&mut self.bytes)?;
        let rr = self.prev.prev_rr.wrapping_add(unzigzag(head >> 1));
        let gap = if head & 1 == 1 {
            unzigzag(take(&mut self.bytes)?)
        } else {
            0
        };
        let t_ms = self.prev.prev_t.wrapping_add(rr).wrapping_add(gap);
        self.prev = Encoder {
            prev_t: t_ms,
            prev_rr: rr,
        };
        Some(Beat {
            t_ms,
            rr_ms: i32::try_from(rr).ok()?,
        })
    }
}

/// Beats from [`encode`]'s bytes; `None` when they are cut short.
#[cfg(test)]
pub(super) fn decode(bytes: &[u8]) -> Option<Vec<Beat>> {
    beats(bytes).collect::<Result<_, _>>().ok()
}

/// `#[serde(deserialize_with)]` of the byte string itself, checked to
/// hold whole beats.
pub(super) fn deserialize_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct BytesVisitor;
    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("beats as a byte string of varints")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            self.visit_byte_buf(v.to_vec())
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            match beats(&v).all(|b| b.is_ok()) {
                true => Ok(v),
                false => Err(E::custom("beats cut short")),
            }
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            self.visit_byte_buf(bytes)
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
