//! The embedded `schemas/*.avsc`, parsed once per process.
//!
//! `EnrichedReading` refers to `RawReading` by name, so the files are parsed
//! together with [`Schema::parse_list`]. The parsed set lives for the whole
//! process (it is immutable), which lets cached datum readers and writers hold
//! `&'static` references instead of re-resolving names per message.

use std::sync::LazyLock;

use apache_avro::Schema;

/// `schemas/raw_reading.avsc`
pub const RAW_READING_AVSC: &str = include_str!("../../schemas/raw_reading.avsc");
/// `schemas/patient_profile.avsc`
pub const PATIENT_PROFILE_AVSC: &str = include_str!("../../schemas/patient_profile.avsc");
/// `schemas/enriched_reading.avsc`
pub const ENRICHED_READING_AVSC: &str = include_str!("../../schemas/enriched_reading.avsc");
/// `schemas/hrv_window.avsc`
pub const HRV_WINDOW_AVSC: &str = include_str!("../../schemas/hrv_window.avsc");
/// `schemas/clinician_alert.avsc`
pub const CLINICIAN_ALERT_AVSC: &str = include_str!("../../schemas/clinician_alert.avsc");

/// Every schema file with its record name, in dependency order.
pub const ALL: [(&str, &str); 5] = [
    ("RawReading", RAW_READING_AVSC),
    ("PatientProfile", PATIENT_PROFILE_AVSC),
    ("EnrichedReading", ENRICHED_READING_AVSC),
    ("HrvWindow", HRV_WINDOW_AVSC),
    ("ClinicianAlert", CLINICIAN_ALERT_AVSC),
];

/// The parsed schema set.
pub struct SchemaSet {
    /// All schemas in [`ALL`] order; references between them resolve within this list.
    pub all: Vec<Schema>,
}

impl SchemaSet {
    /// `RawReading`.
    pub fn raw_reading(&self) -> &Schema {
        &self.all[0]
    }
    /// `PatientProfile`.
    pub fn patient_profile(&self) -> &Schema {
        &self.all[1]
    }
    /// `EnrichedReading`.
    pub fn enriched_reading(&self) -> &Schema {
        &self.all[2]
    }
    /// `HrvWindow`.
    pub fn hrv_window(&self) -> &Schema {
        &self.all[3]
    }
    /// `ClinicianAlert`.
    pub fn clinician_alert(&self) -> &Schema {
        &self.all[4]
    }
    /// All schemas as references, for name resolution.
    pub fn refs(&self) -> Vec<&Schema> {
        self.all.iter().collect()
    }
}

/// Parses the embedded schemas.
///
/// # Errors
/// The apache-avro parse error; only possible if a schema file is broken,
/// which the unit tests rule out.
pub fn parse() -> Result<SchemaSet, apache_avro::Error> {
    let all = Schema::parse_list(ALL.iter().map(|(_, text)| *text))?;
    Ok(SchemaSet { all })
}

/// The process-wide parsed schema set.
pub fn get() -> &'static SchemaSet {
    static SET: LazyLock<SchemaSet> = LazyLock::new(|| match parse() {
        Ok(set) => set,
        // The schemas are compiled into the binary and checked by unit tests,
        // so this is a build defect, not a runtime condition.
        Err(e) => panic!("embedded Avro schemas do not parse: {e}"),
    });
    &SET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_parses_with_its_record_name() {
        let set = parse().expect("schemas parse");
        for ((name, _), schema) in ALL.iter().zip(&set.all) {
            let Schema::Record(record) = schema else {
                panic!("{name} is not a record");
            };
            assert_eq!(record.name.name(), *name);
        }
    }
}

/// A schema name that [`json`] does not know.
#[derive(Debug, thiserror::Error)]
#[error("no schema named `{name}`; the schemas are {}", ALL.map(|(n, _)| n).join(", "))]
pub struct UnknownSchemaName {
    /// The name asked for.
    pub name: String,
}

/// The schema files as JSON, what `vitalstream schemas` prints so it can
/// feed a schema registry or a code generator: with `name` (the record name,
/// `RawReading`, or the file's stem, `raw_reading`) that schema alone;
/// without, one object mapping each record name to its schema.
///
/// # Errors
/// [`UnknownSchemaName`] for a name that is none of them.
pub fn json(name: Option<&str>) -> Result<serde_json::Value, UnknownSchemaName> {
    // The files are checked to be valid JSON by the unit tests, so a parse
    // failure is a build defect.
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).expect("embedded schema file is JSON")
    };
    match name {
        None => Ok(serde_json::Value::Object(
            ALL.iter()
                .map(|(record, text)| ((*record).to_owned(), parse(text)))
                .collect(),
        )),
        Some(name) => ALL
            .iter()
            .find(|(record, _)| {
                record.eq_ignore_ascii_case(name) || snake_case(record) == name.to_ascii_lowercase()
            })
            .map(|(_, text)| parse(text))
            .ok_or_else(|| UnknownSchemaName {
                name: name.to_owned(),
            }),
    }
}

/// `RawReading` → `raw_reading`, the file stem of each schema.
fn snake_case(record: &str) -> String {
    let mut out = String::with_capacity(record.len() + 4);
    for (i, c) in record.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn every_schema_is_json_under_its_record_name() {
        let all = json(None).expect("all");
        for (record, _) in ALL {
            assert_eq!(all[record]["name"], record, "{record}");
        }
    }

    #[test]
    fn one_schema_by_record_name_or_file_stem() {
        assert_eq!(
            json(Some("RawReading")).expect("by name")["name"],
            "RawReading"
        );
        assert_eq!(
            json(Some("hrv_window")).expect("by stem")["name"],
            "HrvWindow"
        );
        let err = json(Some("Reading")).expect_err("unknown");
        assert!(err.to_string().contains("ClinicianAlert"), "{err}");
    }
}
