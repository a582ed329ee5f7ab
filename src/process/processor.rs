//! [`Processor`]: bytes in, [`Disposition`] out, per-partition state inside.
//!
//! Order of checks for one record, each ending the record's path when it
//! fails: erased patient (by key, before anything else, so nothing of an
//! erased patient reaches any topic) → decode → key matches patient →
//! plausibility → profile known → dedup → enrichment. Heart-rhythm readings
//! also feed the partition's HRV windows; closed windows are collected per
//! batch with [`Processor::take_closed_windows`]. Accepted readings and
//! closed windows run through the partition's alert rules; alerts are
//! collected per batch with [`Processor::take_alerts`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::ValidationConfig;
use super::enrich::enrich;
use super::partition::PartitionState;
use super::{
    AlertEngine, AlertsConfig, DedupOutcome, DedupStore, Disposition, DlqReason, HrvConfig,
    HrvConfigError, HrvWindows, Lookup, ProfileTable, Rejection, validate,
};
use crate::codec::Codec;
use crate::erasure::PatientHash;
use crate::model::{
    AlertRule, Attribution, ClinicianAlert, EnrichedReading, HrvWindow, Measurement, Provenance,
};
use rust_decimal::prelude::ToPrimitive;

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

/// Tallies of derived-metric events since the last [`Processor::take_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessorCounts {
    /// Beats that arrived after their window closed (reported on the
    /// patient's next window as `n_late`).
    pub late_beats: u64,
    /// Alerts held back by a cool-down, by rule.
    pub alerts_suppressed: [u64; AlertRule::ALL.len()],
}

/// The synchronous processing core. Owns the state of every partition its
/// task is assigned; one task owns one processor.
#[derive(Debug)]
pub struct Processor {
    codec: Arc<Codec>,
    cfg: ValidationConfig,
    profiles: Arc<ProfileTable>,
    partitions: BTreeMap<i32, PartitionState>,
    /// Empty state a newly seen partition starts from.
    fresh: PartitionState,
    counts: ProcessorCounts,
    /// How far the log of erasures has been applied to held partitions.
    erasure_epoch: usize,
    /// Entries purged on restore since the last [`Self::apply_erasures`].
    purged: usize,
}

impl Processor {
    /// A processor with empty state.
    ///
    /// # Errors
    /// [`HrvConfigError`] when the HRV settings do not validate.
    pub fn new(
        codec: Arc<Codec>,
        cfg: ValidationConfig,
        hrv: HrvConfig,
        alerts: AlertsConfig,
        profiles: Arc<ProfileTable>,
    ) -> Result<Self, HrvConfigError> {
        let mut windows = HrvWindows::new(hrv)?;
        let rr = &cfg.ranges.rr_interval_ms;
        windows.set_plausible_rr(
            rr.min.ceil().to_i32().unwrap_or(i32::MAX),
            rr.max.floor().to_i32().unwrap_or(i32::MIN),
        );
        let fresh = PartitionState {
            dedup: DedupStore::new(cfg.dedup_horizon_ms, cfg.dedup_max_entries)
                .with_hasher(profiles.hasher()),
            hrv: windows,
            alerts: AlertEngine::new(alerts),
            next_offset: None,
        };
        Ok(Self {
            codec,
            cfg,
            profiles,
            partitions: BTreeMap::new(),
            fresh,
            counts: ProcessorCounts::default(),
            erasure_epoch: 0,
            purged: 0,
        })
    }

    /// Decides where `record` ends, at processor wall-clock time `now_ms`.
    /// Never panics on any input.
    pub fn process<'a>(&mut self, record: &InputRecord<'a>, now_ms: i64) -> Disposition<'a> {
        // Whatever the record's fate, the partition's state now reflects it.
        self.partitions
            .entry(record.partition)
            .or_insert_with(|| self.fresh.clone())
            .next_offset = Some(record.offset.saturating_add(1));
        // The key's keyed hash, computed once per record: the erased check
        // here, the one on the decoded id and the dedup key share it.
        let key_hash = record.key.map(|k| self.profiles.hasher().hash(k));
        if key_hash.is_some_and(|h| self.profiles.is_erased_hash(h)) {
            return Disposition::Erased;
        }
        match self.accept(record, key_hash, now_ms) {
            Ok(Some(enriched)) => Disposition::Enriched(enriched),
            Ok(None) => Disposition::Duplicate,
            Err(Some(rejection)) => Disposition::Dlq(rejection),
            Err(None) => Disposition::Erased,
        }
    }

    /// `Ok(None)`: duplicate; `Err(None)`: erased patient.
    fn accept<'a>(
        &mut self,
        record: &InputRecord<'a>,
        key_hash: Option<PatientHash>,
        now_ms: i64,
    ) -> Result<Option<EnrichedReading<'a>>, Option<Rejection>> {
        let payload = record
            .payload
            .ok_or_else(|| Rejection::new(DlqReason::Malformed, "record has no value"))?;
        let reading = self
            .codec
            .decode_raw(payload)
            .map_err(|e| Rejection::new(e.dlq_reason(), e.to_string()))?;
        let keyed = record.key == Some(reading.patient_id.as_bytes());
        let patient = match key_hash {
            Some(hash) if keyed => hash,
            _ => self.profiles.hasher().hash(reading.patient_id.as_bytes()),
        };
        // By the decoded id too: a keyless or mis-keyed record of an erased
        // patient goes nowhere, not even to the DLQ. (A keyed record's hash
        // was checked in `process` already.)
        if !keyed && self.profiles.is_erased_hash(patient) {
            return Err(None);
        }
        if !keyed {
            return Err(Some(Rejection::new(
                DlqReason::KeyMismatch,
                "Kafka key differs from the reading's patient_id",
            )));
        }
        let checked = validate(&reading, &self.cfg, now_ms)?;
        let profile = match self.profiles.lookup(&reading.patient_id) {
            Lookup::Known(p) => p,
            Lookup::Erased => return Err(None),
            Lookup::Unknown => {
                return Err(Some(Rejection::new(
                    DlqReason::UnknownPatient,
                    "no profile for this patient on the patients topic",
                )));
            }
        };
        let state = self
            .partitions
            .entry(record.partition)
            .or_insert_with(|| self.fresh.clone());
        match state
            .dedup
            .check_hashed(patient, &reading.reading_id, reading.measured_at_ms)
        {
            DedupOutcome::New => {}
            DedupOutcome::Duplicate => return Ok(None),
            DedupOutcome::TooOld { covered_from_ms } => {
                return Err(Some(Rejection::new(
                    DlqReason::TooOld,
                    format!(
                        "measured_at is {} ms before the dedup horizon of this partition",
                        covered_from_ms.saturating_sub(reading.measured_at_ms)
                    ),
                )));
            }
        }
        state.hrv.observe_event_time(reading.measured_at_ms);
        // A shared scale or cuff that could not tell its users apart: the
        // reading is published, flagged, but feeds no rule, history,
        // baseline or HRV window: another person's values must never raise
        // (or mask) this patient's alert.
        if reading.attribution != Attribution::Ambiguous {
            if let Measurement::HeartRhythm(rhythm) = &reading.measurement {
                let added = state.hrv.add_reading(
                    &reading.patient_id,
                    &reading.reading_id,
                    reading.measured_at_ms,
                    &rhythm.rr_intervals_ms,
                );
                self.counts.late_beats += u64::from(added.late);
            }
            state
                .alerts
                .observe_reading(&reading, checked, &profile, now_ms);
        }
        let provenance = Provenance {
            topic: Cow::Borrowed(record.topic),
            partition: record.partition,
            offset: record.offset,
        };
        Ok(Some(enrich(
            reading, checked, &profile, &self.cfg, provenance, now_ms,
        )))
    }

    /// Windows whose end the partition watermark has passed, across all
    /// owned partitions, ready to publish. Each also runs through the alert
    /// rules of its patient (at processing clock `now_ms`).
    pub fn take_closed_windows(&mut self, now_ms: i64) -> Vec<HrvWindow> {
        let mut closed = Vec::new();
        for state in self.partitions.values_mut() {
            for window in state.hrv.advance() {
                if let Lookup::Known(profile) = self.profiles.lookup(&window.patient_id) {
                    state.alerts.observe_window(&window, &profile, now_ms);
                }
                closed.push(window);
            }
        }
        closed
    }

    /// Alerts raised since the last call, across all owned partitions,
    /// including readings whose wait for a confirming repeat ran out by
    /// processing clock `now_ms`.
    pub fn take_alerts(&mut self, now_ms: i64) -> Vec<ClinicianAlert> {
        let mut alerts = Vec::new();
        for state in self.partitions.values_mut() {
            // Consent withdrawn (or RPM ended) since the reading: its
            // pending alert is dropped at once, not published.
            state
                .alerts
                .drop_unconsented(|patient| match self.profiles.lookup(patient) {
                    Lookup::Known(p) => p.rpm_enrolled && p.consent_clinician_sharing,
                    // An unknown profile is no withdrawal; an erased
                    // patient is purged by the erasure itself.
                    Lookup::Unknown | Lookup::Erased => true,
                });
            state.alerts.expire(now_ms);
            alerts.extend(state.alerts.take_alerts());
            let suppressed = state.alerts.take_suppressed();
            for (total, n) in self.counts.alerts_suppressed.iter_mut().zip(suppressed) {
                *total += n;
            }
        }
        alerts
    }

    /// Whether state for `partition` is held (restored or started).
    pub fn has_partition(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// Empty state with the configured limits, to restore a partition into.
    pub fn fresh_partition(&self) -> PartitionState {
        self.fresh.clone()
    }

    /// Installs the state of `partition` (restored from its changelog),
    /// replacing any held, purged of every erasure so far, whenever it
    /// happened: the changelog may predate it (the partition was not held,
    /// or the purge's transaction was aborted). The purge's tombstones go to
    /// the changelog with the next commit.
    pub fn install_partition(&mut self, partition: i32, mut state: PartitionState) {
        let erased = self.profiles.erased().all();
        self.purged += state.purge_erased(&erased, &self.profiles.hasher());
        self.partitions.insert(partition, state);
    }

    /// The state of every owned partition, by partition (for the changelog).
    pub fn partitions_mut(&mut self) -> impl Iterator<Item = (i32, &mut PartitionState)> {
        self.partitions.iter_mut().map(|(p, s)| (*p, s))
    }

    /// Purges the state of patients erased since the last call from every
    /// held partition (dedup keys, buffered HRV beats, alert history,
    /// readings awaiting confirmation); partitions restored later are purged
    /// of every erasure as they are restored. Call before each batch.
    /// Returns the number of entries dropped since the last call, those
    /// of restores included.
    pub fn apply_erasures(&mut self) -> usize {
        let (erased, epoch) = self.profiles.erasures_since(self.erasure_epoch);
        self.erasure_epoch = epoch;
        // A patient registered again since is not purged.
        let erased: Vec<_> = erased
            .into_iter()
            .filter(|h| self.profiles.erased().contains(*h))
            .collect();
        let hasher = self.profiles.hasher();
        let mut dropped = std::mem::take(&mut self.purged);
        for state in self.partitions.values_mut() {
            dropped += state.purge_erased(&erased, &hasher);
        }
        dropped
    }

    /// Tallies since the last call.
    pub fn take_counts(&mut self) -> ProcessorCounts {
        std::mem::take(&mut self.counts)
    }

    /// Drops the state of partitions this processor no longer owns (after
    /// their changes went to the changelog: the new owner restores it).
    /// Returns the HRV windows that were open in them.
    pub fn revoke(&mut self, partitions: &[i32]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.remove(p))
            .map(|s| s.hrv.open_windows())
            .sum()
    }

    /// The partitions whose state this processor holds.
    pub fn held_partitions(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    /// Reading ids remembered across all owned partitions.
    pub fn dedup_entries(&self) -> usize {
        self.partitions.values().map(|s| s.dedup.len()).sum()
    }

    /// The smallest effective dedup horizon over owned partitions, ms
    /// (see [`DedupStore::effective_horizon_ms`]).
    pub fn dedup_horizon_ms(&self) -> Option<i64> {
        self.partitions
            .values()
            .filter_map(|s| s.dedup.effective_horizon_ms())
            .min()
    }

    /// Patients with alert history across all owned partitions.
    pub fn alert_patients(&self) -> usize {
        self.partitions.values().map(|s| s.alerts.patients()).sum()
    }

    /// HRV windows open across all owned partitions.
    pub fn open_windows(&self) -> usize {
        self.partitions.values().map(|s| s.hrv.open_windows()).sum()
    }
}
