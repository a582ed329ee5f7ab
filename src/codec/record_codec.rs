//! [`Codec`]: framed Avro ↔ typed records, with cached readers and writers.

use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::binary::{DecodeLimits, Reader};
use super::evolution::{CodecConfig, InputKind, WriterSchemaError, WriterSlot};
use super::{
    DecodeError, EncodeError, alert, direct, enriched, framing, hrv, profile, raw, schemas,
};
use crate::model::{ClinicianAlert, EnrichedReading, HrvWindow, PatientProfile, RawReading};

/// Confluent schema ids under which each record type is written and accepted.
///
/// vitalstream does not need a schema registry at run time: the ids are part
/// of the deployment's configuration and must match the registry entries the
/// gateway and the consumers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaIds {
    /// Id of `RawReading`.
    pub raw_reading: u32,
    /// Id of `PatientProfile`.
    pub patient_profile: u32,
    /// Id of `EnrichedReading`.
    pub enriched_reading: u32,
    /// Id of `HrvWindow`.
    pub hrv_window: u32,
    /// Id of `ClinicianAlert`.
    pub clinician_alert: u32,
}

impl Default for SchemaIds {
    fn default() -> Self {
        Self {
            raw_reading: 1,
            patient_profile: 2,
            enriched_reading: 3,
            hrv_window: 4,
            clinician_alert: 5,
        }
    }
}

/// Encodes and decodes every vitalstream record in Confluent framing.
///
/// Readers and writers resolve schema names once at construction; decoding a
/// message then costs one Avro decode plus the mapping to the typed record.
/// `RawReading` (decode and encode) and `EnrichedReading` (encode), the hot
/// path, use the schema-specific codec of `direct.rs` when the embedded
/// schemas are the ones it was written for, and apache-avro's generic path
/// otherwise.
pub struct Codec {
    ids: SchemaIds,
    limits: DecodeLimits,
    direct_raw: bool,
    direct_enriched: bool,
    /// Other accepted writer versions of `RawReading` (configured files).
    raw_writers: Vec<WriterSlot>,
    /// Writer schemas learnt from the schema registry, by kind and id.
    learnt: DashMap<(InputKind, u32), Arc<WriterSlot>>,
    raw: Slot,
    enriched: Slot,
    profile: Slot,
    hrv: Slot,
    alert: Slot,
}

/// Reader and writer of one record type under its schema id.
struct Slot {
    id: u32,
    reader: GenericDatumReader<'static>,
    writer: GenericDatumWriter<'static>,
}

impl Slot {
    fn new(id: u32, schema: &'static apache_avro::Schema) -> Result<Self, apache_avro::Error> {
        let set = schemas::get();
        Ok(Self {
            id,
            reader: GenericDatumReader::builder(schema)
                .writer_schemata(set.refs())?
                .build()?,
            writer: GenericDatumWriter::builder(schema)
                .schemata(set.refs())?
                .build()?,
        })
    }

    fn decode(&self, payload: &[u8]) -> Result<Value, DecodeError> {
        read_framed(&self.reader, &self.writer, self.id, payload)
    }

    fn encode(&self, value: &Value, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_framed(&self.writer, self.id, value, buf)
    }
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// Builds a codec for the given schema ids.
    ///
    /// # Errors
    /// Only if the embedded schemas fail name resolution, a build defect the
    /// unit tests rule out.
    pub fn new(ids: SchemaIds) -> Result<Self, apache_avro::Error> {
        Self::with_limits(ids, DecodeLimits::default())
    }

    /// Builds a codec for the given schema ids that refuses strings, bytes
    /// and arrays longer than `limits` on the hot path.
    ///
    /// # Errors
    /// As [`Codec::new`].
    pub fn with_limits(ids: SchemaIds, limits: DecodeLimits) -> Result<Self, apache_avro::Error> {
        let set = schemas::get();
        // apache-avro's own cap on one allocation from a length field is
        // process-wide and set once; no vitalstream record comes near it.
        apache_avro::util::max_allocation_bytes(GENERIC_MAX_ALLOCATION_BYTES);
        // `EnrichedReading` embeds `RawReading` (by name, in its canonical
        // form too), so its direct encoder needs both schemas unchanged.
        let direct_raw = direct::fingerprint(set.raw_reading()) == direct::RAW_READING_FINGERPRINT;
        let direct_enriched = direct_raw
            && direct::fingerprint(set.enriched_reading()) == direct::ENRICHED_READING_FINGERPRINT;
        Ok(Self {
            ids,
            limits,
            direct_raw,
            direct_enriched,
            raw_writers: Vec::new(),
            learnt: DashMap::new(),
            raw: Slot::new(ids.raw_reading, set.raw_reading())?,
            enriched: Slot::new(ids.enriched_reading, set.enriched_reading())?,
            profile: Slot::new(ids.patient_profile, set.patient_profile())?,
            hrv: Slot::new(ids.hrv_window, set.hrv_window())?,
            alert: Slot::new(ids.clinician_alert, set.clinician_alert())?,
        })
    }

    /// The schema ids this codec writes and accepts.
    pub fn ids(&self) -> SchemaIds {
        self.ids
    }

    /// Builds a codec from the configuration: schema ids, the `[codec]` caps
    /// and the other writer versions of `RawReading` it accepts.
    ///
    /// # Errors
    /// A writer schema file that cannot be read or parsed.
    pub fn from_config(ids: SchemaIds, config: &CodecConfig) -> Result<Self, WriterSchemaError> {
        let mut codec = Self::with_limits(ids, config.limits())
            .map_err(|e| WriterSchemaError::Embedded(e.to_string()))?;
        for spec in &config.raw_reading_writers {
            let slot = WriterSlot::load(spec)?;
            if let Err(reason) = slot.compatibility() {
                tracing::warn!(
                    schema_id = slot.id,
                    reason,
                    "configured RawReading writer schema cannot be read by this version; its readings go to the DLQ as unknown_schema"
                );
            }
            codec.raw_writers.push(slot);
        }
        Ok(codec)
    }

    /// Whether the schema-specific codec serves `RawReading` and
    /// `EnrichedReading` (true unless a schema changed without `direct.rs`).
    pub fn is_direct(&self) -> bool {
        // The enriched encoder is direct only when the raw codec is too.
        self.direct_enriched
    }

    /// Decodes a framed `RawReading`; its strings borrow from `payload`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong; never panics on any input.
    pub fn decode_raw<'a>(&self, payload: &'a [u8]) -> Result<RawReading<'a>, DecodeError> {
        if !self.direct_raw {
            return self.decode_raw_generic(payload);
        }
        let (id, datum) = framing::split(payload)?;
        if id != self.raw.id {
            return self.decode_other_writer(id, payload);
        }
        let mut reader = Reader::new(datum, self.limits);
        let reading = direct::read_raw(&mut reader)?;
        match reader.remaining() {
            0 => Ok(reading),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// A reading written with another version of the schema: configured,
    /// or learnt from the registry.
    fn decode_other_writer<'a>(
        &self,
        id: u32,
        payload: &'a [u8],
    ) -> Result<RawReading<'a>, DecodeError> {
        let slot = match self.raw_writers.iter().find(|w| w.id == id) {
            Some(slot) => return self.decode_raw_with(slot, payload),
            None => self.learnt_writer(InputKind::RawReading, id),
        };
        match slot {
            Some(slot) => self.decode_raw_with(&slot, payload),
            None => Err(DecodeError::UnknownSchema(id)),
        }
    }

    fn decode_raw_with<'a>(
        &self,
        slot: &WriterSlot,
        payload: &'a [u8],
    ) -> Result<RawReading<'a>, DecodeError> {
        if !slot.is_same() {
            return slot.decode(payload);
        }
        // The reader schema itself under another id.
        let (_, datum) = framing::split(payload)?;
        if self.direct_raw {
            let mut reader = Reader::new(datum, self.limits);
            let reading = direct::read_raw(&mut reader)?;
            return match reader.remaining() {
                0 => Ok(reading),
                n => Err(DecodeError::TrailingBytes(n)),
            };
        }
        raw::from_value(&read_framed(
            &self.raw.reader,
            &self.raw.writer,
            slot.id,
            payload,
        )?)
    }

    fn learnt_writer(&self, kind: InputKind, id: u32) -> Option<Arc<WriterSlot>> {
        self.learnt.get(&(kind, id)).map(|slot| Arc::clone(&slot))
    }

    /// Whether `id` is the id this codec reads `kind` under by default.
    pub fn is_primary(&self, kind: InputKind, id: u32) -> bool {
        match kind {
            InputKind::RawReading => id == self.raw.id,
            InputKind::PatientProfile => id == self.profile.id,
        }
    }

    /// Whether `id` is a writer schema this codec reads as `kind` (its own,
    /// a configured one or one learnt from the registry), compatible or not.
    pub fn knows_writer(&self, kind: InputKind, id: u32) -> bool {
        match kind {
            InputKind::RawReading => {
                id == self.raw.id
                    || self.raw_writers.iter().any(|w| w.id == id)
                    || self.learnt.contains_key(&(kind, id))
            }
            InputKind::PatientProfile => {
                id == self.profile.id || self.learnt.contains_key(&(kind, id))
            }
        }
    }

    /// Learns writer schema `id` of `kind` (its Avro text and, in
    /// dependency order, the schemas it references), as fetched from the
    /// schema registry. Returns why the reader schema cannot read it, if it
    /// cannot: its records then go to the DLQ as `unknown_schema`.
    ///
    /// # Errors
    /// The parser's message when the text is not a valid Avro schema.
    pub fn learn_writer(
        &self,
        kind: InputKind,
        id: u32,
        schema: &str,
        references: &[String],
    ) -> Result<Option<String>, String> {
        let slot = WriterSlot::parse(id, kind, schema, references)?;
        let incompatible = slot.compatibility().err().map(str::to_owned);
        self.learnt.insert((kind, id), Arc::new(slot));
        Ok(incompatible)
    }

    /// Records that writer schema `id` of `kind` cannot be read, for
    /// `reason` (e.g. not an Avro schema): its records go to the DLQ as
    /// `unknown_schema`.
    pub fn learn_incompatible(&self, kind: InputKind, id: u32, reason: &str) {
        self.learnt.insert(
            (kind, id),
            Arc::new(WriterSlot::incompatible(id, kind, reason)),
        );
    }

    /// Writer schemas learnt from the registry so far.
    pub fn learnt_writers(&self) -> usize {
        self.learnt.len()
    }

    /// Decodes a framed `RawReading` with apache-avro's generic reader, the
    /// reference the schema-specific decoder is tested against.
    ///
    /// # Errors
    /// As [`Codec::decode_raw`].
    #[doc(hidden)]
    pub fn decode_raw_generic<'a>(&self, payload: &'a [u8]) -> Result<RawReading<'a>, DecodeError> {
        match framing::split(payload)? {
            (id, _) if id != self.raw.id => self.decode_other_writer(id, payload),
            _ => raw::from_value(&self.raw.decode(payload)?),
        }
    }

    /// Encodes a `RawReading` into `buf` (cleared first).
    ///
    /// # Errors
    /// [`EncodeError`] if a decimal does not fit its schema exactly.
    pub fn encode_raw(
        &self,
        reading: &RawReading<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if !self.direct_raw {
            return self.encode_raw_generic(reading, buf);
        }
        buf.clear();
        framing::write_header(buf, self.raw.id);
        direct::write_raw(buf, reading)
    }

    /// Decodes a framed `EnrichedReading`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode_enriched(&self, payload: &[u8]) -> Result<EnrichedReading<'static>, DecodeError> {
        enriched::from_value(&self.enriched.decode(payload)?)
    }

    /// Encodes an `EnrichedReading` into `buf` (cleared first).
    ///
    /// # Errors
    /// [`EncodeError`] if a decimal does not fit its schema exactly.
    pub fn encode_enriched(
        &self,
        reading: &EnrichedReading<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if !self.direct_enriched {
            return self.encode_enriched_generic(reading, buf);
        }
        buf.clear();
        framing::write_header(buf, self.enriched.id);
        direct::write_enriched(buf, reading)
    }

    /// Encodes an `EnrichedReading` with apache-avro's generic writer, the
    /// reference the schema-specific encoder is tested against.
    ///
    /// # Errors
    /// As [`Codec::encode_enriched`].
    #[doc(hidden)]
    pub fn encode_enriched_generic(
        &self,
        reading: &EnrichedReading<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.enriched.encode(&enriched::to_value(reading)?, buf)
    }

    /// Encodes a `RawReading` with apache-avro's generic writer.
    ///
    /// # Errors
    /// As [`Codec::encode_raw`].
    #[doc(hidden)]
    pub fn encode_raw_generic(
        &self,
        reading: &RawReading<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.raw.encode(&raw::to_value(reading)?, buf)
    }

    /// Decodes a framed `PatientProfile`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode_profile(&self, payload: &[u8]) -> Result<PatientProfile, DecodeError> {
        let (id, _) = framing::split(payload)?;
        if id == self.profile.id {
            return profile::from_value(&self.profile.decode(payload)?);
        }
        let slot = self
            .learnt_writer(InputKind::PatientProfile, id)
            .ok_or(DecodeError::UnknownSchema(id))?;
        match slot.decode_value(payload)? {
            Some(value) => profile::from_value(&value),
            // The reader schema itself under another id.
            None => profile::from_value(&read_framed(
                &self.profile.reader,
                &self.profile.writer,
                id,
                payload,
            )?),
        }
    }

    /// Encodes a `PatientProfile` into `buf` (cleared first).
    ///
    /// # Errors
    /// [`EncodeError`] if a decimal does not fit its schema exactly.
    pub fn encode_profile(
        &self,
        profile: &PatientProfile,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.profile.encode(&profile::to_value(profile)?, buf)
    }

    /// Decodes a framed `HrvWindow`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode_hrv_window(&self, payload: &[u8]) -> Result<HrvWindow, DecodeError> {
        hrv::from_value(&self.hrv.decode(payload)?)
    }

    /// Encodes an `HrvWindow` into `buf` (cleared first).
    ///
    /// # Errors
    /// [`EncodeError`] if a metric does not fit its schema exactly.
    pub fn encode_hrv_window(
        &self,
        window: &HrvWindow,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.hrv.encode(&hrv::to_value(window)?, buf)
    }

    /// Decodes a framed `ClinicianAlert`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong.
    pub fn decode_alert(&self, payload: &[u8]) -> Result<ClinicianAlert, DecodeError> {
        alert::from_value(&self.alert.decode(payload)?)
    }

    /// Encodes a `ClinicianAlert` into `buf` (cleared first).
    ///
    /// # Errors
    /// [`EncodeError`] if a value does not fit its schema exactly.
    pub fn encode_alert(
        &self,
        alert: &ClinicianAlert,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.alert.encode(&alert::to_value(alert)?, buf)
    }
}

/// apache-avro's cap on one allocation from a length field (generic path).
const GENERIC_MAX_ALLOCATION_BYTES: usize = 1 << 20;

/// Decodes a framed datum strictly: all bytes consumed, and the value must
/// re-encode to exactly the bytes read.
///
/// The re-encode check exists because apache-avro reads end-of-input where a
/// union index belongs as the union's first branch (`null`): a payload cut
/// just before a trailing optional field would otherwise decode "successfully"
/// with that field silently missing. Avro's binary encoding of a value is
/// canonical, so a genuine datum always re-encodes to its own length.
pub(crate) fn read_framed(
    reader: &GenericDatumReader<'static>,
    writer: &GenericDatumWriter<'static>,
    expected_id: u32,
    payload: &[u8],
) -> Result<Value, DecodeError> {
    let (id, datum) = framing::split(payload)?;
    if id != expected_id {
        return Err(DecodeError::UnknownSchema(id));
    }
    let mut rest = datum;
    let value = reader
        .read_value(&mut rest)
        .map_err(|e| DecodeError::Avro(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    let mut counter = ByteCounter(0);
    writer
        .write_value_ref(&mut counter, &value)
        .map_err(|e| DecodeError::Avro(e.to_string()))?;
    let canonical_len = counter.0;
    if canonical_len != datum.len() {
        return Err(DecodeError::Avro(format!(
            "datum of {} bytes is not the canonical encoding of its value ({canonical_len} bytes): truncated or padded",
            datum.len()
        )));
    }
    Ok(value)
}

fn write_framed(
    writer: &GenericDatumWriter<'static>,
    schema_id: u32,
    value: &Value,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    buf.clear();
    framing::write_header(buf, schema_id);
    writer
        .write_value_ref(buf, value)
        .map_err(|e| EncodeError::Avro(e.to_string()))?;
    Ok(())
}

/// A `Write` that only counts bytes (apache-avro's returned count omits some).
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
