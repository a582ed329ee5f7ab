//! Any framed Avro record as plain JSON, for `vitalstream tail`.
//!
//! Writer schemas come from the registry (any id) or, without one, from the
//! embedded schemas under the configured ids. The JSON is what a person or
//! `jq` wants rather than Avro's JSON encoding: decimals are strings with
//! every digit (`"80.125"`, never a binary float), a union is its value
//! (`{"BodyScan": {...}}` when more than one branch is a named type, so the
//! branch is visible), bytes are base64, enums their symbol, timestamps
//! milliseconds since the epoch and dates days since the epoch, as on the
//! wire.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use base64::Engine;
use serde_json::{Map, Value as Json, json};

use crate::codec::{CodecConfig, SchemaIds, framing, schemas};
use crate::registry::SchemaRegistry;

/// A parsed writer schema with the schemas it references.
struct Parsed {
    schema: Schema,
    references: Vec<Schema>,
}

/// Where writer schemas come from, with a cache by id.
pub struct WriterSchemas {
    registry: Option<SchemaRegistry>,
    cache: HashMap<u32, Result<Arc<Parsed>, String>>,
}

impl WriterSchemas {
    /// The embedded schemas under `ids` and the configured other writer
    /// versions of `RawReading` (no registry).
    pub fn embedded(ids: SchemaIds, codec: &CodecConfig) -> Self {
        let mut cache = HashMap::new();
        for (id, text, references) in [
            (ids.raw_reading, schemas::RAW_READING_AVSC, None),
            (ids.patient_profile, schemas::PATIENT_PROFILE_AVSC, None),
            // EnrichedReading names RawReading.
            (
                ids.enriched_reading,
                schemas::ENRICHED_READING_AVSC,
                Some(schemas::RAW_READING_AVSC),
            ),
            (ids.hrv_window, schemas::HRV_WINDOW_AVSC, None),
            (ids.clinician_alert, schemas::CLINICIAN_ALERT_AVSC, None),
        ] {
            let parsed = Schema::parse_str_with_list(text, references)
                .map(|(schema, references)| Arc::new(Parsed { schema, references }))
                .map_err(|e| e.to_string());
            cache.insert(id, parsed);
        }
        for writer in &codec.raw_reading_writers {
            let parsed = std::fs::read_to_string(&writer.schema_file)
                .map_err(|e| format!("{}: {e}", writer.schema_file.display()))
                .and_then(|text| Schema::parse_str(&text).map_err(|e| e.to_string()))
                .map(|schema| {
                    Arc::new(Parsed {
                        schema,
                        references: Vec::new(),
                    })
                });
            cache.insert(writer.id, parsed);
        }
        Self {
            registry: None,
            cache,
        }
    }

    /// Every id fetched from `registry`.
    pub fn from_registry(registry: SchemaRegistry) -> Self {
        Self {
            registry: Some(registry),
            cache: HashMap::new(),
        }
    }

    async fn get(&mut self, id: u32) -> Result<Arc<Parsed>, String> {
        if let Some(found) = self.cache.get(&id) {
            return found.clone();
        }
        let Some(registry) = &self.registry else {
            return Err(format!("schema id {id} is not one of the configured ids"));
        };
        let fetched = match registry.fetch(id).await {
            Ok(f) => f,
            // Not cached: the registry may answer next time.
            Err(e) if e.is_unreachable() => return Err(e.to_string()),
            Err(e) => {
                let e = e.to_string();
                self.cache.insert(id, Err(e.clone()));
                return Err(e);
            }
        };
        let parsed = fetched.avro.and_then(|text| {
            Schema::parse_str_with_list(&text, &fetched.references)
                .map(|(schema, references)| Arc::new(Parsed { schema, references }))
                .map_err(|e| e.to_string())
        });
        self.cache.insert(id, parsed.clone());
        parsed
    }

    /// Decodes a framed payload to (schema id, JSON value).
    ///
    /// # Errors
    /// Why it does not decode.
    pub async fn decode(&mut self, payload: &[u8]) -> Result<(u32, Json), String> {
        let (id, mut datum) = framing::split(payload).map_err(|e| e.to_string())?;
        let parsed = self.get(id).await?;
        let refs: Vec<&Schema> = parsed.references.iter().collect();
        let reader = GenericDatumReader::builder(&parsed.schema)
            .writer_schemata(refs.clone())
            .and_then(|b| b.build())
            .map_err(|e| e.to_string())?;
        let value = reader
            .read_value(&mut datum)
            .map_err(|e| format!("schema id {id}: {e}"))?;
        let mut all = refs;
        all.push(&parsed.schema);
        let resolved = ResolvedSchema::new_with_schemata(all).map_err(|e| e.to_string())?;
        let names = resolved.get_names();
        Ok((id, to_json(&value, &parsed.schema, names)))
    }
}

type Names<'a> = HashMap<Name, &'a Schema>;

/// `value` (of `schema`) as plain JSON.
pub fn to_json(value: &Value, schema: &Schema, names: &Names<'_>) -> Json {
    let schema = match schema {
        Schema::Ref { name } => match names.get(name) {
            Some(s) => *s,
            None => return Json::Null,
        },
        other => other,
    };
    match (value, schema) {
        (Value::Null, _) => Json::Null,
        (Value::Boolean(b), _) => json!(b),
        (Value::Int(n) | Value::Date(n) | Value::TimeMillis(n), _) => json!(n),
        (
            Value::Long(n)
            | Value::TimeMicros(n)
            | Value::TimestampMillis(n)
            | Value::TimestampMicros(n)
            | Value::TimestampNanos(n)
            | Value::LocalTimestampMillis(n)
            | Value::LocalTimestampMicros(n)
            | Value::LocalTimestampNanos(n),
            _,
        ) => json!(n),
        (Value::Float(f), _) => json!(f),
        (Value::Double(f), _) => json!(f),
        (Value::String(s), _) => json!(s),
        (Value::Enum(_, symbol), _) => json!(symbol),
        (Value::Uuid(u), _) => json!(u.to_string()),
        (Value::Bytes(b) | Value::Fixed(_, b), _) => json!(base64(b)),
        (Value::Decimal(d), Schema::Decimal(ds)) => {
            let bytes: Vec<u8> = d.try_into().unwrap_or_default();
            json!(decimal_string(&bytes, ds.scale))
        }
        (Value::Decimal(d), _) => {
            let bytes: Vec<u8> = d.try_into().unwrap_or_default();
            json!(decimal_string(&bytes, 0))
        }
        (Value::BigDecimal(d), _) => json!(d.to_string()),
        (Value::Duration(d), _) => json!(format!("{d:?}")),
        (Value::Union(i, inner), Schema::Union(union)) => {
            let variants = union.variants();
            let Some(branch) = variants.get(*i as usize) else {
                return Json::Null;
            };
            let named_branches = variants.iter().filter(|v| named(v).is_some()).count();
            let json = to_json(inner, branch, names);
            match named(branch) {
                Some(name) if named_branches > 1 => json!({ name: json }),
                _ => json,
            }
        }
        (Value::Union(_, inner), other) => to_json(inner, other, names),
        (Value::Array(items), Schema::Array(array)) => Json::Array(
            items
                .iter()
                .map(|v| to_json(v, &array.items, names))
                .collect(),
        ),
        (Value::Map(entries), Schema::Map(map)) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v, &map.types, names)))
                .collect(),
        ),
        (Value::Record(fields), Schema::Record(record)) => {
            let mut object = Map::new();
            for ((name, v), field) in fields.iter().zip(&record.fields) {
                object.insert(name.clone(), to_json(v, &field.schema, names));
            }
            Json::Object(object)
        }
        // A value that does not match its schema cannot come out of the
        // decoder; keep what can be shown.
        (Value::Array(_) | Value::Map(_) | Value::Record(_), _) => Json::Null,
    }
}

/// The record, enum or fixed name of a union branch.
fn named(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Record(r) => Some(r.name.name().to_owned()),
        Schema::Enum(e) => Some(e.name.name().to_owned()),
        Schema::Fixed(f) => Some(f.name.name().to_owned()),
        Schema::Ref { name } => Some(name.name().to_owned()),
        _ => None,
    }
}

/// Standard base64 of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A two's-complement big-endian unscaled value with `scale` decimals, as
/// an exact decimal string.
fn decimal_string(bytes: &[u8], scale: usize) -> String {
    // Up to 16 bytes fit an i128 (38 digits, more than any schema here).
    if bytes.is_empty() || bytes.len() > 16 {
        return format!("0x{}", hex(bytes));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    let unscaled = i128::from_be_bytes(wide);
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::model::{Attribution, DeviceKind, Measurement, RawReading};
    use rust_decimal::Decimal;
    use std::borrow::Cow;

    #[test]
    fn decimals_are_exact_strings() {
        assert_eq!(decimal_string(&[0x01, 0x39, 0x05], 3), "80.133");
        assert_eq!(decimal_string(&[0xFF, 0x85], 2), "-1.23");
        assert_eq!(decimal_string(&[0x05], 3), "0.005");
        assert_eq!(decimal_string(&[0x2A], 0), "42");
    }

    #[tokio::test]
    async fn a_reading_prints_with_its_union_branch_and_decimal_strings() {
        let ids = SchemaIds::default();
        let codec = Codec::new(ids).expect("codec");
        let reading = RawReading {
            reading_id: Cow::Borrowed("r-1"),
            device_id: Cow::Borrowed("d-1"),
            device_model: Cow::Borrowed("m"),
            device_kind: DeviceKind::PulseOximeter,
            patient_id: Cow::Borrowed("p-1"),
            measured_at_ms: 1_700_000_000_000,
            received_at_ms: 1_700_000_000_500,
            attribution: Attribution::Device,
            measurement: Measurement::SpO2 {
                pct: Decimal::new(975, 1),
            },
        };
        let mut buf = Vec::new();
        codec.encode_raw(&reading, &mut buf).expect("encode");
        let (id, json) = WriterSchemas::embedded(ids, &CodecConfig::default())
            .decode(&buf)
            .await
            .expect("decodes");
        assert_eq!(id, ids.raw_reading);
        assert_eq!(json["reading_id"], "r-1");
        assert_eq!(json["measured_at"], 1_700_000_000_000_i64);
        let measurement = json["measurement"].as_object().expect("object");
        let (branch, value) = measurement.iter().next().expect("one branch");
        assert!(branch.contains("SpO2"), "{json}");
        let pct = value
            .as_object()
            .expect("record")
            .values()
            .next()
            .expect("pct");
        assert_eq!(pct, "97.5");
    }
}
