//! Codec errors and how the pipeline disposes of them.

use thiserror::Error;

/// Why a payload could not be decoded. Every variant is bad data: the
/// pipeline sends the original bytes to the DLQ with [`DecodeError::dlq_reason`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the 5-byte Confluent header.
    #[error("payload of {len} bytes is shorter than the 5-byte Confluent header")]
    TooShort {
        /// Payload length.
        len: usize,
    },
    /// First byte is not the Confluent magic byte 0.
    #[error("magic byte is {0:#04x}, expected 0x00")]
    BadMagic(u8),
    /// Schema id is not one this processor knows for the expected record.
    #[error("schema id {0} is not a known writer schema for this topic")]
    UnknownSchema(u32),
    /// The schema id is a configured writer schema that the processor's
    /// reader schema cannot read (Avro schema resolution fails).
    #[error("writer schema id {id} cannot be read as the current schema: {reason}")]
    IncompatibleSchema {
        /// Writer schema id.
        id: u32,
        /// Why resolution fails.
        reason: String,
    },
    /// The Avro datum did not decode against its writer schema.
    #[error("avro datum does not decode: {0}")]
    Avro(String),
    /// Bytes left over after the datum: framing or schema is wrong.
    #[error("{0} trailing bytes after the avro datum")]
    TrailingBytes(usize),
    /// The datum decoded but a field does not have the expected shape.
    #[error("field `{field}`: {problem}")]
    Field {
        /// Field path.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl DecodeError {
    /// The DLQ `reason` header for this error (DESIGN.md §3).
    pub fn dlq_reason(&self) -> crate::model::DlqReason {
        match self {
            Self::UnknownSchema(_) | Self::IncompatibleSchema { .. } => {
                crate::model::DlqReason::UnknownSchema
            }
            _ => crate::model::DlqReason::Malformed,
        }
    }

    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Field {
            field,
            problem: problem.into(),
        }
    }
}

/// Why a record could not be encoded. These are programming or configuration
/// errors (a value with more decimals than its schema allows), never input data.
#[derive(Debug, Error)]
pub enum EncodeError {
    /// A decimal does not fit the schema's precision/scale without rounding.
    /// The message names the field, never the value: it is logged at WARN
    /// and above, where no clinical value belongs (DESIGN.md §7).
    #[error("field `{field}`: the value does not fit decimal({precision},{scale}) exactly")]
    Decimal {
        /// Field path.
        field: &'static str,
        /// Offending value (for debugging; not in the message).
        value: rust_decimal::Decimal,
        /// Schema precision.
        precision: u32,
        /// Schema scale.
        scale: u32,
    },
    /// apache-avro rejected the value.
    #[error("avro encoding failed: {0}")]
    Avro(String),
}
