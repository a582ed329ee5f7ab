//! Exact conversion between Avro `decimal` (big-endian two's complement
//! unscaled bytes, scale fixed by the schema) and `rust_decimal::Decimal`.
//! Values never pass through binary floating point.

use rust_decimal::Decimal;

use super::{DecodeError, EncodeError};

/// Decimal shape of a schema field: `decimal(precision, scale)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalSpec {
    /// Maximum number of significant digits.
    pub precision: u32,
    /// Digits after the decimal point.
    pub scale: u32,
}

impl DecimalSpec {
    pub(crate) const fn new(precision: u32, scale: u32) -> Self {
        Self { precision, scale }
    }
}

/// Decodes unscaled big-endian two's complement bytes at `spec.scale`.
pub(crate) fn from_unscaled_be(
    bytes: &[u8],
    spec: DecimalSpec,
    field: &'static str,
) -> Result<Decimal, DecodeError> {
    if bytes.is_empty() || bytes.len() > 12 {
        return Err(DecodeError::field(
            field,
            format!("decimal of {} bytes is outside 1..=12", bytes.len()),
        ));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    let unscaled = i128::from_be_bytes(wide);
    Decimal::try_from_i128_with_scale(unscaled, spec.scale)
        .map_err(|e| DecodeError::field(field, e.to_string()))
}

/// Encodes `value` as minimal big-endian two's complement bytes at `spec.scale`.
///
/// # Errors
/// [`EncodeError::Decimal`] when `value` has more decimals than the scale or
/// more digits than the precision: a value is never rounded silently.
pub(crate) fn to_unscaled_be(
    value: Decimal,
    spec: DecimalSpec,
    field: &'static str,
) -> Result<Vec<u8>, EncodeError> {
    Ok(Unscaled::of(value, spec, field)?.as_bytes().to_vec())
}

/// The minimal big-endian two's complement bytes of a decimal's unscaled
/// value, held inline (no allocation).
pub(crate) struct Unscaled {
    bytes: [u8; 16],
    start: usize,
}

impl Unscaled {
    /// `value` at `spec.scale`; see [`to_unscaled_be`] for the errors.
    pub(crate) fn of(
        value: Decimal,
        spec: DecimalSpec,
        field: &'static str,
    ) -> Result<Self, EncodeError> {
        let err = || EncodeError::Decimal {
            field,
            value,
            precision: spec.precision,
            scale: spec.scale,
        };
        // The unscaled value at `spec.scale`, in integer arithmetic: exact,
        // and much cheaper than `Decimal::rescale`.
        let (mantissa, scale) = (value.mantissa(), value.scale());
        let unscaled = if scale <= spec.scale {
            10i128
                .checked_pow(spec.scale - scale)
                .and_then(|f| mantissa.checked_mul(f))
                .ok_or_else(err)?
        } else {
            let f = 10i128.checked_pow(scale - spec.scale).ok_or_else(err)?;
            if mantissa % f != 0 {
                return Err(err());
            }
            mantissa / f
        };
        if unscaled.unsigned_abs() >= 10u128.pow(spec.precision) {
            return Err(err());
        }
        let bytes = unscaled.to_be_bytes();
        // Drop redundant sign-extension bytes, keeping the sign bit intact.
        let mut start = 0;
        while start < 15 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0);
            if !redundant {
                break;
            }
            start += 1;
        }
        Ok(Self { bytes, start })
    }

    /// The encoded bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: DecimalSpec = DecimalSpec::new(7, 3);

    #[test]
    fn known_encodings() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal literal");
        assert_eq!(
            to_unscaled_be(d("80.5"), W, "w").expect("fits"),
            vec![0x01, 0x3A, 0x74]
        );
        assert_eq!(
            to_unscaled_be(d("-0.001"), W, "w").expect("fits"),
            vec![0xFF]
        );
        assert_eq!(to_unscaled_be(d("0"), W, "w").expect("fits"), vec![0x00]);
        assert_eq!(
            to_unscaled_be(d("0.128"), W, "w").expect("fits"),
            vec![0x00, 0x80]
        );
    }

    #[test]
    fn rounding_or_overflow_is_refused() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal literal");
        assert!(to_unscaled_be(d("80.0005"), W, "w").is_err());
        assert!(to_unscaled_be(d("10000"), W, "w").is_err());
        // Trailing zeros beyond the scale are not rounding.
        assert!(to_unscaled_be(d("80.50000"), W, "w").is_ok());
    }

    #[test]
    fn bad_lengths_are_errors_not_panics() {
        assert!(from_unscaled_be(&[], W, "w").is_err());
        assert!(from_unscaled_be(&[1; 13], W, "w").is_err());
    }

    proptest! {
        /// Exactly the values that rescale to the spec without rounding
        /// encode, to the value rescaled.
        #[test]
        fn encodes_exactly_what_fits(m in any::<i64>(), scale in 0u32..=12) {
            let value = Decimal::new(m, scale);
            let mut rescaled = value;
            rescaled.rescale(W.scale);
            let fits = rescaled == value
                && rescaled.mantissa().unsigned_abs() < 10u128.pow(W.precision);
            match to_unscaled_be(value, W, "w") {
                Ok(bytes) => {
                    prop_assert!(fits);
                    prop_assert_eq!(from_unscaled_be(&bytes, W, "w").expect("decodes"), value);
                }
                Err(_) => prop_assert!(!fits),
            }
        }

        #[test]
        fn round_trips_exactly(unscaled in -9_999_999i64..=9_999_999) {
            let value = Decimal::new(unscaled, 3);
            let bytes = to_unscaled_be(value, W, "w").expect("fits");
            prop_assert_eq!(from_unscaled_be(&bytes, W, "w").expect("decodes"), value);
        }
    }
}
