//! [`PartitionState`]: everything the processor holds for one input
//! partition, with its changelog form: the records that bring a restored
//! copy up to date ([`PartitionState::take_changelog`]) and the state rebuilt
//! from a partition's changelog ([`PartitionState::restore`]).

use std::collections::{BTreeSet, HashMap};

use super::{AlertEngine, DedupChange, DedupStore, HrvWindows};
use crate::state::snapshot::{event_ms, from_json, to_json};
use crate::state::{
    PartitionMeta, PatientSnapshot, StateError, StateKey, StateRecord, decode_key, encode_key,
};

/// State of one input partition.
#[derive(Debug, Clone)]
pub struct PartitionState {
    /// Reading ids seen.
    pub dedup: DedupStore,
    /// Open HRV windows.
    pub hrv: HrvWindows,
    /// Alert history, cool-downs, readings awaiting confirmation.
    pub alerts: AlertEngine,
}

/// What a restore read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Live changelog keys applied.
    pub keys: usize,
    /// Records read, superseded ones and tombstones included.
    pub records: usize,
}

impl PartitionState {
    /// Changelog records for every change since the last call, in order:
    /// dedup entries remembered or forgotten, a snapshot (or tombstone) of
    /// each patient whose HRV or alert state changed, then the partition's
    /// scalar state. Empty when nothing changed.
    ///
    /// # Errors
    /// [`StateError::Unencodable`] (a defect).
    pub fn take_changelog(&mut self, partition: i32) -> Result<Vec<StateRecord>, StateError> {
        let mut records = Vec::new();
        for change in self.dedup.take_changes() {
            let (key, value) = match change {
                DedupChange::Remembered(key, t) => (key, Some(t.to_be_bytes().to_vec())),
                DedupChange::Forgotten(key) => (key, None),
            };
            records.push(StateRecord {
                partition,
                key: encode_key(partition, &StateKey::Dedup(key)),
                value,
            });
        }
        // Sorted: the same changes always give the same records.
        let patients: BTreeSet<String> = self
            .hrv
            .take_dirty()
            .into_iter()
            .chain(self.alerts.take_dirty())
            .collect();
        for patient in patients {
            let key = encode_key(partition, &StateKey::patient(&patient));
            let snapshot = PatientSnapshot {
                hrv: self.hrv.patient_state(&patient).cloned(),
                alerts: self.alerts.patient_state(&patient),
                patient_id: patient,
            };
            let value = if snapshot.is_empty() {
                None
            } else {
                Some(to_json(&snapshot, partition, "patient")?)
            };
            records.push(StateRecord {
                partition,
                key,
                value,
            });
        }
        if !records.is_empty() {
            let meta = PartitionMeta {
                dedup: self.dedup.meta(),
                hrv: self.hrv.meta(),
            };
            records.push(StateRecord {
                partition,
                key: encode_key(partition, &StateKey::Meta),
                value: Some(to_json(&meta, partition, "meta")?),
            });
        }
        Ok(records)
    }

    /// Rebuilds `fresh` (empty state with the configured limits) from the
    /// changelog records of `partition`, in log order; later records win,
    /// tombstones delete. Records of other partitions and unknown keys are
    /// ignored.
    ///
    /// # Errors
    /// [`StateError::Undecodable`] for a value that does not decode.
    pub fn restore<K, V>(
        mut fresh: PartitionState,
        partition: i32,
        records: impl IntoIterator<Item = (K, Option<V>)>,
    ) -> Result<(PartitionState, Restored), StateError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut latest: HashMap<StateKey, Option<V>> = HashMap::new();
        let mut read = 0;
        for (key, value) in records {
            read += 1;
            match decode_key(key.as_ref()) {
                Some((p, key)) if p == partition => {
                    latest.insert(key, value);
                }
                _ => {}
            }
        }
        let mut meta = None;
        let mut keys = 0;
        for (key, value) in latest {
            let Some(value) = value else { continue };
            let bytes = value.as_ref();
            keys += 1;
            match key {
                StateKey::Meta => {
                    meta = Some(from_json::<PartitionMeta>(bytes, partition, "meta")?);
                }
                StateKey::Dedup(key) => fresh.dedup.restore_entry(key, event_ms(bytes, partition)?),
                StateKey::Patient(_) => {
                    let snapshot: PatientSnapshot = from_json(bytes, partition, "patient")?;
                    let patient = snapshot.patient_id;
                    if let Some(hrv) = snapshot.hrv {
                        fresh.hrv.restore_patient(&patient, hrv);
                    }
                    if let Some(alerts) = snapshot.alerts {
                        fresh.alerts.restore_patient(&patient, alerts);
                    }
                }
            }
        }
        if let Some(meta) = meta {
            fresh.hrv.restore_meta(meta.hrv);
            fresh.dedup.restore_meta(meta.dedup);
        }
        Ok((
            fresh,
            Restored {
                keys,
                records: read,
            },
        ))
    }
}
