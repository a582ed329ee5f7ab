//! Typed records of the vitalstream topic contract (DESIGN.md §1–2).
//!
//! These are plain data: no Kafka, no Avro. The codec turns wire bytes into
//! these types and back; the processing core works only on them.

mod alert;
mod dlq;
mod enriched;
mod hrv;
mod profile;
mod reading;

pub use alert::{AlertRule, ClinicianAlert, SCREENING_NOTE, Severity};
pub use dlq::DlqReason;
pub use enriched::{BodyComposition, BpCategory, EnrichedReading, Provenance, QualityFlag};
pub use hrv::{ArtifactFilter, HrvQuality, HrvWindow};
pub use profile::{PatientProfile, Sex, ThresholdOverride};
pub use reading::{
    Attribution, BloodPressure, BodyScan, BodySegment, DeviceKind, EcgClassification, EcgResult,
    HeartRhythm, Measurement, MeasurementKind, RawReading, RhythmSource, SegmentImpedance,
};
