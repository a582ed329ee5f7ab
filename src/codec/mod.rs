//! Wire format: Confluent framing around Avro binary datums (DESIGN.md §1).
//!
//! `schemas/*.avsc` are the single source of truth; they are embedded at build
//! time and parsed once ([`schemas`]). [`framing`] checks and strips the 5-byte
//! Confluent header, [`Codec`] maps Avro values to the typed records of
//! [`crate::model`] and back.

mod alert;
mod binary;
mod decimal;
mod direct;
mod enriched;
mod error;
mod evolution;
pub mod framing;
mod hrv;
mod profile;
mod raw;
mod record_codec;
pub mod schemas;
mod value;

pub use binary::DecodeLimits;
pub use error::{DecodeError, EncodeError};
pub use evolution::{CodecConfig, InputKind, WriterSchema, WriterSchemaError};
pub use record_codec::{Codec, SchemaIds};

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod tests;
