//! Other writer versions of `RawReading`: the `[codec]` configuration and
//! the slots that read them through Avro schema resolution.
//!
//! The gateway may write readings with an older or a newer version of the
//! schema under its own Confluent id (e.g. during a rollout). Each configured
//! version is parsed at start-up and checked against the embedded reader
//! schema; a compatible one decodes through apache-avro's resolution (fields
//! the writer lacks take the reader's defaults, fields the reader lacks are
//! skipped), an incompatible one sends its readings to the DLQ as
//! `unknown_schema` with the reason.

use std::path::PathBuf;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::{Deserialize, Serialize};

use super::binary::DecodeLimits;
use super::{DecodeError, raw, schemas};
use crate::model::RawReading;

/// The `[codec]` section: decoder caps and additional writer schemas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodecConfig {
    /// Longest string or bytes value accepted in a reading, in bytes.
    pub max_string_bytes: usize,
    /// Most items accepted in one array (e.g. RR intervals of a reading).
    pub max_array_items: usize,
    /// Other versions of `RawReading` accepted on the raw topic, each under
    /// its own Confluent schema id.
    pub raw_reading_writers: Vec<WriterSchema>,
}

impl Default for CodecConfig {
    fn default() -> Self {
        let limits = DecodeLimits::default();
        Self {
            max_string_bytes: limits.max_string_bytes,
            max_array_items: limits.max_array_items,
            raw_reading_writers: Vec::new(),
        }
    }
}

impl CodecConfig {
    /// The decoder caps.
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_string_bytes: self.max_string_bytes,
            max_array_items: self.max_array_items,
        }
    }
}

/// One additional writer schema of `RawReading`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterSchema {
    /// Its Confluent schema id.
    pub id: u32,
    /// Its `.avsc` file.
    pub schema_file: PathBuf,
}

/// Why the codec could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum WriterSchemaError {
    /// The embedded schemas failed name resolution (a build defect the unit
    /// tests rule out).
    #[error("embedded schemas: {0}")]
    Embedded(String),
    /// The file could not be read.
    #[error("codec.raw_reading_writers: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid Avro schema.
    #[error("codec.raw_reading_writers: {path} is not a valid Avro schema: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
}

/// A configured writer version of `RawReading`.
pub(crate) struct WriterSlot {
    pub(crate) id: u32,
    reader: GenericDatumReader<'static>,
    writer: GenericDatumWriter<'static>,
    /// Why the reader schema cannot read this one, if it cannot.
    incompatible: Option<String>,
}

impl WriterSlot {
    /// Loads and checks `spec`.
    pub(crate) fn load(spec: &WriterSchema) -> Result<Self, WriterSchemaError> {
        let text = std::fs::read_to_string(&spec.schema_file).map_err(|source| {
            WriterSchemaError::Read {
                path: spec.schema_file.clone(),
                source,
            }
        })?;
        let parse = |e: apache_avro::Error| WriterSchemaError::Parse {
            path: spec.schema_file.clone(),
            reason: e.to_string(),
        };
        // Loaded once per process at start-up; readers and writers need the
        // schema for the life of the codec, which is the life of the process.
        let schema: &'static Schema = Box::leak(Box::new(Schema::parse_str(&text).map_err(parse)?));
        let incompatible = SchemaCompatibility::can_read(schema, schemas::get().raw_reading())
            .err()
            .map(|e| e.to_string());
        Ok(Self {
            id: spec.id,
            reader: GenericDatumReader::builder(schema).build().map_err(parse)?,
            writer: GenericDatumWriter::builder(schema).build().map_err(parse)?,
            incompatible,
        })
    }

    /// Whether the embedded reader schema can read this writer's data.
    pub(crate) fn compatibility(&self) -> Result<(), &str> {
        match &self.incompatible {
            None => Ok(()),
            Some(reason) => Err(reason),
        }
    }

    /// Decodes `payload` written with this schema into the current reading.
    pub(crate) fn decode(&self, payload: &[u8]) -> Result<RawReading<'static>, DecodeError> {
        if let Some(reason) = &self.incompatible {
            return Err(DecodeError::IncompatibleSchema {
                id: self.id,
                reason: reason.clone(),
            });
        }
        let mut written: Value =
            super::record_codec::read_framed(&self.reader, &self.writer, self.id, payload)?;
        widen_decimals(&mut written)?;
        let set = schemas::get();
        let resolved = written
            .resolve_schemata(set.raw_reading(), set.refs())
            .map_err(|e| DecodeError::Avro(e.to_string()))?;
        raw::from_value(&resolved)
    }
}

/// Sign-extends every decimal to [`WIDE_DECIMAL_BYTES`].
///
/// apache-avro 0.22 refuses to resolve a `bytes` decimal whose byte length
/// could not hold the schema's full precision (80.125 as decimal(7,3) takes 3
/// bytes, which "hold" only 6 digits), although Avro writes decimals in the
/// fewest bytes. Widening keeps the value and satisfies that check for every
/// precision vitalstream uses.
fn widen_decimals(value: &mut Value) -> Result<(), DecodeError> {
    match value {
        Value::Decimal(d) => {
            let bytes: Vec<u8> = (&*d)
                .try_into()
                .map_err(|e: apache_avro::Error| DecodeError::Avro(e.to_string()))?;
            if bytes.len() < WIDE_DECIMAL_BYTES {
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xFF
                } else {
                    0x00
                };
                let mut wide = vec![fill; WIDE_DECIMAL_BYTES - bytes.len()];
                wide.extend_from_slice(&bytes);
                *d = apache_avro::Decimal::from(wide);
            }
        }
        Value::Record(fields) => {
            for (_, v) in fields {
                widen_decimals(v)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                widen_decimals(v)?;
            }
        }
        Value::Union(_, inner) => widen_decimals(inner)?,
        _ => {}
    }
    Ok(())
}

/// Holds 28 digits; the decimal decoder accepts up to 12 bytes.
const WIDE_DECIMAL_BYTES: usize = 12;
