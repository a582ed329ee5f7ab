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

/// The input record a foreign writer schema is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// `RawReading`, on the raw readings topic.
    RawReading,
    /// `PatientProfile`, on the patients topic.
    PatientProfile,
}

impl InputKind {
    /// The embedded reader schema of this record.
    pub(crate) fn reader(self) -> &'static Schema {
        let set = schemas::get();
        match self {
            Self::RawReading => set.raw_reading(),
            Self::PatientProfile => set.patient_profile(),
        }
    }

    /// Metric label and log name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RawReading => "raw_reading",
            Self::PatientProfile => "patient_profile",
        }
    }
}

/// Another writer version of an input record: a configured file or a
/// schema fetched from the registry.
pub(crate) struct WriterSlot {
    pub(crate) id: u32,
    kind: InputKind,
    resolution: Resolution,
}

enum Resolution {
    /// The writer schema is the reader schema (same canonical form): the
    /// codec's own decoder serves it.
    Same,
    /// Read through apache-avro's schema resolution (reader, writer).
    Resolved(Box<(GenericDatumReader<'static>, GenericDatumWriter<'static>)>),
    /// The reader schema cannot read this writer's data; why.
    Incompatible(String),
}

impl WriterSlot {
    /// Loads and checks `spec` (a `RawReading` writer).
    pub(crate) fn load(spec: &WriterSchema) -> Result<Self, WriterSchemaError> {
        let text = std::fs::read_to_string(&spec.schema_file).map_err(|source| {
            WriterSchemaError::Read {
                path: spec.schema_file.clone(),
                source,
            }
        })?;
        Self::parse(spec.id, InputKind::RawReading, &text, &[]).map_err(|reason| {
            WriterSchemaError::Parse {
                path: spec.schema_file.clone(),
                reason,
            }
        })
    }

    /// Parses writer schema `text` (with the schemas it references, in
    /// dependency order) and checks it against `kind`'s reader schema.
    ///
    /// # Errors
    /// The parser's message when `text` is not a valid Avro schema.
    pub(crate) fn parse(
        id: u32,
        kind: InputKind,
        text: &str,
        references: &[String],
    ) -> Result<Self, String> {
        let (schema, refs) = if references.is_empty() {
            (
                Schema::parse_str(text).map_err(|e| e.to_string())?,
                Vec::new(),
            )
        } else {
            Schema::parse_str_with_list(text, references).map_err(|e| e.to_string())?
        };
        let reader_schema = kind.reader();
        if refs.is_empty() && schema.canonical_form() == reader_schema.canonical_form() {
            return Ok(Self {
                id,
                kind,
                resolution: Resolution::Same,
            });
        }
        // Writer schemas are few (a rollout's versions) and live as long as
        // the codec, which is the life of the process; cached datum readers
        // need them `'static`.
        let schema: &'static Schema = Box::leak(Box::new(schema));
        let refs: &'static [Schema] = Box::leak(refs.into_boxed_slice());
        let ref_list: Vec<&'static Schema> = refs.iter().collect();
        if let Err(e) = SchemaCompatibility::can_read(schema, reader_schema) {
            return Ok(Self {
                id,
                kind,
                resolution: Resolution::Incompatible(e.to_string()),
            });
        }
        let reader = GenericDatumReader::builder(schema)
            .writer_schemata(ref_list.clone())
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        let writer = GenericDatumWriter::builder(schema)
            .schemata(ref_list)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            id,
            kind,
            resolution: Resolution::Resolved(Box::new((reader, writer))),
        })
    }

    /// A writer schema known to be unreadable, for `reason`.
    pub(crate) fn incompatible(id: u32, kind: InputKind, reason: &str) -> Self {
        Self {
            id,
            kind,
            resolution: Resolution::Incompatible(reason.to_owned()),
        }
    }

    /// Whether the embedded reader schema can read this writer's data.
    pub(crate) fn compatibility(&self) -> Result<(), &str> {
        match &self.resolution {
            Resolution::Incompatible(reason) => Err(reason),
            _ => Ok(()),
        }
    }

    /// Whether the writer schema is the reader schema itself.
    pub(crate) fn is_same(&self) -> bool {
        matches!(self.resolution, Resolution::Same)
    }

    /// Decodes `payload` written with this schema as a value of the reader
    /// schema. `None` for [`Resolution::Same`]: the caller's own decoder
    /// reads it.
    pub(crate) fn decode_value(&self, payload: &[u8]) -> Result<Option<Value>, DecodeError> {
        let (reader, writer) = match &self.resolution {
            Resolution::Same => return Ok(None),
            Resolution::Incompatible(reason) => {
                return Err(DecodeError::IncompatibleSchema {
                    id: self.id,
                    reason: reason.clone(),
                });
            }
            Resolution::Resolved(pair) => (&pair.0, &pair.1),
        };
        let mut written: Value =
            super::record_codec::read_framed(reader, writer, self.id, payload)?;
        widen_decimals(&mut written)?;
        let set = schemas::get();
        let resolved = written
            .resolve_schemata(self.kind.reader(), set.refs())
            .map_err(|e| DecodeError::Avro(e.to_string()))?;
        Ok(Some(resolved))
    }

    /// Decodes a `RawReading` written with this schema (not [`Resolution::Same`]).
    pub(crate) fn decode(&self, payload: &[u8]) -> Result<RawReading<'static>, DecodeError> {
        match self.decode_value(payload)? {
            Some(value) => raw::from_value(&value),
            None => Err(DecodeError::UnknownSchema(self.id)),
        }
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
