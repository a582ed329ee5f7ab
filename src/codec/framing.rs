//! Confluent wire framing: magic byte 0, 4-byte big-endian schema id, datum.

use super::DecodeError;

/// Length of the Confluent header.
pub const HEADER_LEN: usize = 5;
/// The Confluent magic byte.
pub const MAGIC: u8 = 0;

/// Splits a framed payload into its schema id and Avro datum.
///
/// # Errors
/// [`DecodeError::TooShort`] or [`DecodeError::BadMagic`]; never panics.
pub fn split(payload: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    let Some((header, datum)) = payload.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TooShort { len: payload.len() });
    };
    if header[0] != MAGIC {
        return Err(DecodeError::BadMagic(header[0]));
    }
    let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Ok((id, datum))
}

/// Appends the header for `schema_id` to `buf`.
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32) {
    buf.push(MAGIC);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_header_and_datum() {
        let mut buf = Vec::new();
        write_header(&mut buf, 0x0102_0304);
        buf.extend_from_slice(b"xyz");
        assert_eq!(split(&buf), Ok((0x0102_0304, &b"xyz"[..])));
    }

    #[test]
    fn short_and_bad_magic_are_errors() {
        assert_eq!(split(&[0, 0, 0]), Err(DecodeError::TooShort { len: 3 }));
        assert_eq!(split(&[]), Err(DecodeError::TooShort { len: 0 }));
        assert_eq!(split(&[7, 0, 0, 0, 1]), Err(DecodeError::BadMagic(7)));
    }
}
