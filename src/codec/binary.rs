//! Avro binary encoding primitives (zig-zag varints, length-prefixed bytes
//! and strings, blocked arrays) for the schema-specific codec in
//! [`super::direct`].
//!
//! Hand-written rather than apache-avro's generic `Value` reader because the
//! hot path needs to borrow strings from the Kafka payload and decode into the
//! typed record without building a `Value` tree: with apache-avro 0.22 a
//! reading cost a `Value` tree, a re-encode to check canonical length and one
//! heap allocation per string. apache-avro's serde path also owns its strings.
//! apache-avro stays the reference: tests and fuzzing compare the two.
//!
//! Decoding is strict: input that ends early, varints longer than canonical,
//! lengths beyond the remaining bytes or the configured caps, and invalid
//! UTF-8 are errors that name the field; nothing panics on any input.

use super::DecodeError;

/// Caps on lengths read from the wire, so a length field can never make the
/// decoder allocate or scan more than the configuration allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest string or bytes value accepted, in bytes.
    pub max_string_bytes: usize,
    /// Most items accepted in one array (e.g. RR intervals of a reading).
    pub max_array_items: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_string_bytes: 4_096,
            max_array_items: 10_000,
        }
    }
}

/// A cursor over one Avro datum.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    limits: DecodeLimits,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(datum: &'a [u8], limits: DecodeLimits) -> Self {
        Self {
            rest: datum,
            limits,
        }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// A zig-zag varint `long`.
    pub(crate) fn long(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let mut raw: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some((&byte, rest)) = self.rest.split_first() else {
                return Err(DecodeError::field(field, "datum ends inside a number"));
            };
            self.rest = rest;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::field(field, "number does not fit in 64 bits"));
            }
            raw |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(DecodeError::field(
                        field,
                        "number is not canonically encoded (redundant bytes)",
                    ));
                }
                break;
            }
            shift += 7;
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A zig-zag varint `int`.
    pub(crate) fn int(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        let v = self.long(field)?;
        i32::try_from(v).map_err(|_| DecodeError::field(field, format!("{v} does not fit an int")))
    }

    /// A length prefix: non-negative, within the remaining bytes and `cap`.
    fn length(&mut self, field: &'static str, cap: usize) -> Result<usize, DecodeError> {
        let len = self.long(field)?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::field(field, format!("negative length {len}")))?;
        if len > cap {
            return Err(DecodeError::field(
                field,
                format!("length {len} exceeds the configured limit of {cap}"),
            ));
        }
        if len > self.rest.len() {
            return Err(DecodeError::field(
                field,
                format!("length {len} exceeds the {} bytes left", self.rest.len()),
            ));
        }
        Ok(len)
    }

    /// A `bytes` value, borrowed from the datum.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.length(field, self.limits.max_string_bytes)?;
        let (value, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(value)
    }

    /// A `string` value, borrowed from the datum.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::field(field, "string is not UTF-8"))
    }

    /// An enum symbol or union branch index below `count`.
    pub(crate) fn index(
        &mut self,
        field: &'static str,
        count: usize,
    ) -> Result<usize, DecodeError> {
        let i = self.long(field)?;
        match usize::try_from(i) {
            Ok(i) if i < count => Ok(i),
            _ => Err(DecodeError::field(
                field,
                format!("index {i} is outside the {count} symbols or branches"),
            )),
        }
    }

    /// An array: appends `item`'s value to `out` once per element, across
    /// all blocks. Space is reserved per block, after its count has been
    /// checked against the caps and the remaining input.
    pub(crate) fn array<T>(
        &mut self,
        field: &'static str,
        out: &mut Vec<T>,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut total = 0usize;
        loop {
            let count = self.long(field)?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                // A negative count is followed by the block's size in bytes.
                let size = self.long(field)?;
                if size < 0 {
                    return Err(DecodeError::field(field, "negative array block size"));
                }
            }
            // Every item of vitalstream's arrays takes at least one byte.
            let count = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
            total = total.saturating_add(count);
            if total > self.limits.max_array_items {
                return Err(DecodeError::field(
                    field,
                    format!(
                        "array of at least {total} items exceeds the configured limit of {}",
                        self.limits.max_array_items
                    ),
                ));
            }
            if count > self.rest.len() {
                return Err(DecodeError::field(
                    field,
                    format!(
                        "array block of {count} items exceeds the {} bytes left",
                        self.rest.len()
                    ),
                ));
            }
            out.reserve(count);
            for _ in 0..count {
                out.push(item(self)?);
            }
        }
    }
}

/// Appends `v` as a zig-zag varint (`int` and `long` share the encoding).
pub(crate) fn put_long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Appends a length-prefixed `bytes` value.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_long(buf, bytes.len() as i64);
    buf.extend_from_slice(bytes);
}

/// Appends a length-prefixed `string` value.
pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, s.as_bytes());
}

/// Appends an array as one block (or just the terminator when empty), the
/// way apache-avro writes it.
pub(crate) fn put_array<T, E>(
    buf: &mut Vec<u8>,
    items: &[T],
    mut item: impl FnMut(&mut Vec<u8>, &T) -> Result<(), E>,
) -> Result<(), E> {
    if !items.is_empty() {
        put_long(buf, items.len() as i64);
        for i in items {
            item(buf, i)?;
        }
    }
    put_long(buf, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reader(bytes: &[u8]) -> Reader<'_> {
        Reader::new(bytes, DecodeLimits::default())
    }

    #[test]
    fn known_varints() {
        let enc = |v| {
            let mut b = Vec::new();
            put_long(&mut b, v);
            b
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(-1), [0x01]);
        assert_eq!(enc(1), [0x02]);
        assert_eq!(enc(64), [0x80, 0x01]);
        assert_eq!(
            enc(i64::MIN),
            [0xFF; 9].iter().copied().chain([0x01]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn malformed_varints_are_errors() {
        assert!(reader(&[]).long("f").is_err(), "empty");
        assert!(reader(&[0x80]).long("f").is_err(), "ends inside");
        assert!(reader(&[0x82, 0x00]).long("f").is_err(), "redundant byte");
        let mut eleven = vec![0xFF; 10];
        eleven.push(0x01);
        assert!(reader(&eleven).long("f").is_err(), "longer than 64 bits");
        let mut big = vec![0xFF; 9];
        big.push(0x02);
        assert!(reader(&big).long("f").is_err(), "bit 64 set");
        assert!(
            reader(&[0x80, 0x80, 0x80, 0x80, 0x10]).int("f").is_err(),
            "int overflow"
        );
    }

    #[test]
    fn lengths_are_capped_by_input_and_config() {
        let limits = DecodeLimits {
            max_string_bytes: 3,
            max_array_items: 2,
        };
        let err = Reader::new(&[0x08, b'a', b'b', b'c', b'd'], limits)
            .str("id")
            .expect_err("4 > 3");
        assert!(err.to_string().contains("configured limit of 3"), "{err}");
        let err = reader(&[0x08, b'a']).str("id").expect_err("4 > 1 left");
        assert!(err.to_string().contains("1 bytes left"), "{err}");
        assert!(reader(&[0x01]).str("id").is_err(), "negative length");
        assert!(reader(&[0x02, 0xFF]).str("id").is_err(), "not UTF-8");
        let mut items = Vec::new();
        let err = Reader::new(&[0x06, 2, 4, 6, 0], limits)
            .array("rr", &mut items, |r| r.int("rr"))
            .expect_err("3 > 2 items");
        assert!(err.to_string().contains("configured limit of 2"), "{err}");
        // A huge count is refused before any item is read or reserved.
        assert!(
            reader(&[0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 2])
                .array("rr", &mut items, |r| r.int("rr"))
                .is_err()
        );
        assert_eq!((items.len(), items.capacity()), (0, 0));
    }

    #[test]
    fn arrays_in_several_blocks_and_with_byte_sizes_decode() {
        // Block of 2 (negative count with byte size 2), then a block of 1, then end.
        let bytes = [0x03, 0x04, 0x02, 0x04, 0x02, 0x06, 0x00];
        let mut got = Vec::new();
        let mut r = reader(&bytes);
        r.array("rr", &mut got, |r| r.int("rr")).expect("decodes");
        assert_eq!((got, r.remaining()), (vec![1, 2, 3], 0));
    }

    proptest! {
        #[test]
        fn longs_round_trip(v in any::<i64>()) {
            let mut b = Vec::new();
            put_long(&mut b, v);
            let mut r = reader(&b);
            prop_assert_eq!(r.long("f").expect("decodes"), v);
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = reader(&bytes);
            let _ = r.str("s");
            let _ = r.array("a", &mut Vec::new(), |r| r.long("a"));
            let _ = r.index("i", 3);
        }
    }
}
