//! [`Processor`]: bytes in, [`Disposition`] out, per-partition state inside.

use std::collections::HashMap;
use std::sync::Arc;

use super::{DedupOutcome, DedupStore, Disposition, DlqReason, Rejection, validate};
use crate::codec::Codec;
use crate::config::ValidationConfig;
use crate::model::{
    Attribution, EnrichedReading, Measurement, MeasurementKind, Provenance, QualityFlag, RawReading,
};

/// One input record as the processor sees it: coordinates, key and value bytes.
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Kafka key (the gateway writes the patient id).
    pub key: Option<&'a [u8]>,
    /// Kafka value (framed Avro `RawReading`).
    pub payload: Option<&'a [u8]>,
}

/// The synchronous processing core. Owns the dedup state of every partition
/// its task is assigned; one task owns one processor.
#[derive(Debug)]
pub struct Processor {
    codec: Arc<Codec>,
    cfg: ValidationConfig,
    dedup: HashMap<i32, DedupStore>,
}

impl Processor {
    /// A processor with empty state.
    pub fn new(codec: Arc<Codec>, cfg: ValidationConfig) -> Self {
        Self {
            codec,
            cfg,
            dedup: HashMap::new(),
        }
    }

    /// Decides where `record` ends, at processor wall-clock time `now_ms`.
    /// Never panics on any input.
    pub fn process(&mut self, record: &InputRecord<'_>, now_ms: i64) -> Disposition {
        match self.accept(record, now_ms) {
            Ok(Some(enriched)) => Disposition::Enriched(Box::new(enriched)),
            Ok(None) => Disposition::Duplicate,
            Err(rejection) => Disposition::Dlq(rejection),
        }
    }

    fn accept(
        &mut self,
        record: &InputRecord<'_>,
        now_ms: i64,
    ) -> Result<Option<EnrichedReading<'static>>, Rejection> {
        let payload = record
            .payload
            .ok_or_else(|| Rejection::new(DlqReason::Malformed, "record has no value"))?;
        let reading = self
            .codec
            .decode_raw(payload)
            .map_err(|e| Rejection::new(e.dlq_reason(), e.to_string()))?;
        if record.key != Some(reading.patient_id.as_bytes()) {
            return Err(Rejection::new(
                DlqReason::KeyMismatch,
                "Kafka key differs from the reading's patient_id",
            ));
        }
        validate(&reading, &self.cfg, now_ms)?;
        let store = self.dedup.entry(record.partition).or_insert_with(|| {
            DedupStore::new(self.cfg.dedup_horizon_ms, self.cfg.dedup_max_entries)
        });
        match store.check(
            &reading.patient_id,
            &reading.reading_id,
            reading.measured_at_ms,
        ) {
            DedupOutcome::New => {}
            DedupOutcome::Duplicate => return Ok(None),
            DedupOutcome::TooOld { covered_from_ms } => {
                return Err(Rejection::new(
                    DlqReason::TooOld,
                    format!(
                        "measured_at is {} ms before the dedup horizon of this partition",
                        covered_from_ms.saturating_sub(reading.measured_at_ms)
                    ),
                ));
            }
        }
        Ok(Some(self.enrich(reading, record, now_ms)))
    }

    fn enrich(
        &self,
        reading: RawReading<'static>,
        record: &InputRecord<'_>,
        now_ms: i64,
    ) -> EnrichedReading<'static> {
        let mut quality_flags = Vec::new();
        match reading.attribution {
            Attribution::Ambiguous => quality_flags.push(QualityFlag::AmbiguousAttribution),
            Attribution::Manual => quality_flags.push(QualityFlag::ManualEntry),
            Attribution::Device => {}
        }
        if reading
            .received_at_ms
            .saturating_sub(reading.measured_at_ms)
            > self.cfg.delayed_delivery_ms
        {
            quality_flags.push(QualityFlag::DelayedDelivery);
        }
        let bp_category = match &reading.measurement {
            Measurement::BloodPressure(bp) => {
                Some(super::bp_category(bp.systolic_mmhg, bp.diastolic_mmhg))
            }
            _ => None,
        };
        EnrichedReading {
            loinc_code: loinc_code(&reading.measurement),
            reading,
            quality_flags,
            bp_category,
            body_composition: None,
            provenance: Provenance {
                topic: record.topic.to_owned(),
                partition: record.partition,
                offset: record.offset,
            },
            processed_at_ms: now_ms,
        }
    }

    /// Drops the state of partitions this processor no longer owns.
    pub fn revoke(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.dedup.remove(p);
        }
    }

    /// Reading ids remembered across all owned partitions.
    pub fn dedup_entries(&self) -> usize {
        self.dedup.values().map(DedupStore::len).sum()
    }
}

/// LOINC code of the primary observation (DESIGN.md §2).
fn loinc_code(m: &Measurement) -> Option<&'static str> {
    Some(match m.kind() {
        MeasurementKind::BodyScan => "29463-7",
        MeasurementKind::HeartRhythm | MeasurementKind::Ecg => "8867-4",
        MeasurementKind::BloodPressure => "85354-9",
        MeasurementKind::SpO2 => "59408-5",
        MeasurementKind::Temperature => "8310-5",
    })
}
