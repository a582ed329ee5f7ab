//! A partition's state rebuilt from its changelog, record by record.
//!
//! Each record is decoded and applied as it is read (a later write of a
//! key replaces the earlier one, a tombstone deletes it), so a restore
//! holds the live state and nothing of the log it has read past: memory
//! follows the state, not the changelog's length. Tombstones carry no
//! patient id; the ids seen in values are kept by hash to apply them.
//!
//! Completeness ([`Restorer::is_complete`]): the partition's meta record
//! carries the input offset its state reflects, written in the same
//! transaction as that offset's commit (exactly-once) or before the offset
//! is stored (at-least-once). A restore is complete once it has read a
//! marker at or past the group's committed input offset.

use xxhash_rust::xxh3::xxh3_64;

use super::StateError;
use super::changelog::{ChangelogWriter, Written};
use super::key::StateKey;
use super::value::{PartitionMeta, ValueError, decode};
use crate::process::{
    AlertPatientState, FastMap, HrvPatientState, OpenWindow, PartitionState, Processor,
};

/// What a restore read and rebuilt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Records read, superseded ones and tombstones included.
    pub records: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
    /// Reading ids remembered.
    pub dedup_entries: usize,
    /// HRV windows open.
    pub open_windows: usize,
    /// Patients with alert state.
    pub alert_patients: usize,
    /// Input offset the restored state reflects (`None`: no marker read).
    pub next_offset: Option<i64>,
}

/// Applies one partition's changelog records, in log order, to empty state.
#[derive(Debug)]
pub struct Restorer {
    partition: i32,
    state: PartitionState,
    meta: Option<PartitionMeta>,
    ids: FastMap<u128, String>,
    written: Written,
    records: u64,
    bytes: u64,
}

impl Restorer {
    /// A restore of `partition` into `fresh` (empty state, configured limits).
    pub fn new(partition: i32, fresh: PartitionState) -> Self {
        Self {
            partition,
            state: fresh,
            meta: None,
            ids: FastMap::default(),
            written: Written::default(),
            records: 0,
            bytes: 0,
        }
    }

    /// Input offset of the newest marker applied.
    pub fn marker(&self) -> Option<i64> {
        self.meta.and_then(|m| m.next_offset)
    }

    /// Whether the state read so far is that of `committed`, the group's
    /// committed input offset (`None`: nothing committed, so any state read
    /// up to the end of the log is complete).
    pub fn is_complete(&self, committed: Option<i64>) -> bool {
        committed.is_none_or(|c| self.marker().is_some_and(|m| m >= c))
    }

    /// Records applied so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Applies one record. Records without a key are not vitalstream's and
    /// are skipped; a key of another partition is skipped too.
    ///
    /// # Errors
    /// [`StateError::Key`] or [`StateError::Value`]: the record does not
    /// decode (another format version, corruption).
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.records += 1;
        self.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        let partition = self.partition;
        let (p, key) =
            StateKey::decode(key).map_err(|source| StateError::Key { partition, source })?;
        if p != partition {
            return Ok(());
        }
        let err = |source: ValueError| StateError::Value {
            partition,
            store: key.store(),
            source,
        };
        let state = &mut self.state;
        match (key, value) {
            (StateKey::Meta, Some(v)) => self.meta = Some(decode(v).map_err(err)?),
            (StateKey::Meta, None) => self.meta = None,
            (StateKey::Dedup(k), Some(v)) => state.dedup.restore_entry(k, decode(v).map_err(err)?),
            (StateKey::Dedup(k), None) => state.dedup.forget_entry(k),
            (StateKey::HrvPatient(h), Some(v)) => {
                let (id, head): (String, HrvPatientState) = decode(v).map_err(err)?;
                state.hrv.restore_head(&id, head);
                self.written.patients.entry(h).or_default().head = Some(xxh3_64(v));
                self.ids.insert(h, id);
            }
            (StateKey::HrvPatient(h), None) => {
                if let Some(id) = self.ids.get(&h) {
                    state.hrv.restore_head(id, HrvPatientState::default());
                }
                if let Some(keys) = self.written.patients.get_mut(&h) {
                    keys.head = None;
                }
            }
            (StateKey::HrvWindow(h, start), Some(v)) => {
                let (id, window): (String, OpenWindow) = decode(v).map_err(err)?;
                state.hrv.restore_window(&id, start, window);
                let keys = self.written.patients.entry(h).or_default();
                keys.windows.retain(|(s, _)| *s != start);
                keys.windows.push((start, xxh3_64(v)));
                self.ids.insert(h, id);
            }
            (StateKey::HrvWindow(h, start), None) => {
                if let Some(id) = self.ids.get(&h) {
                    state.hrv.forget_window(id, start);
                }
                if let Some(keys) = self.written.patients.get_mut(&h) {
                    keys.windows.retain(|(s, _)| *s != start);
                }
            }
            (StateKey::Alerts(h), Some(v)) => {
                let (id, alerts): (String, AlertPatientState) = decode(v).map_err(err)?;
                state.alerts.restore_patient(&id, alerts);
                self.written.patients.entry(h).or_default().alerts = Some(xxh3_64(v));
                self.ids.insert(h, id);
            }
            (StateKey::Alerts(h), None) => {
                if let Some(id) = self.ids.get(&h) {
                    state.alerts.purge_patient(id);
                }
                if let Some(keys) = self.written.patients.get_mut(&h) {
                    keys.alerts = None;
                }
            }
        }
        Ok(())
    }

    /// Installs the restored state in `processor` (replacing any held for
    /// the partition) and what the changelog holds in `writer`.
    pub fn finish(self, processor: &mut Processor, writer: &mut ChangelogWriter) -> Restored {
        let Self {
            partition,
            mut state,
            meta,
            mut written,
            records,
            bytes,
            ..
        } = self;
        state.hrv.finish_restore();
        state.alerts.take_dirty();
        if let Some(meta) = meta {
            state.hrv.restore_meta(meta.hrv);
            // Applies horizon and capacity; what that evicts is a change.
            state.dedup.restore_meta(meta.dedup);
            state.next_offset = meta.next_offset;
        }
        written.next_offset = state.next_offset;
        written
            .patients
            .retain(|_, k| k.head.is_some() || k.alerts.is_some() || !k.windows.is_empty());
        let restored = Restored {
            records,
            bytes,
            dedup_entries: state.dedup.len(),
            open_windows: state.hrv.open_windows(),
            alert_patients: state.alerts.patients(),
            next_offset: state.next_offset,
        };
        processor.install_partition(partition, state);
        writer.install(partition, written);
        restored
    }
}
