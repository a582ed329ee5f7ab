//! A partition's state rebuilt from its changelog, record by record.
//!
//! Each record is decoded and applied as it is read (a later write of a
//! key replaces the earlier one, a tombstone deletes it), so a restore
//! holds the live state and nothing of the log it has read past: memory
//! follows the state, not the changelog's length. Tombstones carry no
//! patient id; the ids seen in values are kept by hash to apply them.
//! HRV window chunks, alert samples, baseline sums and waiting readings
//! carry no patient id either: the patient's HRV or alert head record
//! (written with or before them) names it; one read before any of those
//! (after compaction moved a rewritten head past them) waits until the id
//! is known.
//!
//! Completeness ([`Restorer::is_complete`]): the partition's meta record
//! carries the input offset its state reflects, written in the same
//! transaction as that offset's commit (exactly-once) or before the offset
//! is stored (at-least-once). A restore is complete once it has read a
//! marker at or past the group's committed input offset.

use compact_str::CompactString;
use xxhash_rust::xxh3::xxh3_64;

use super::StateError;
use super::changelog::{ChangelogWriter, Written};
use super::key::StateKey;
use super::value::{PartitionMeta, ValueError, decode, decode_dedup_group, decode_slot};
use crate::model::AlertRule;
use crate::process::{
    Cooldowns, FastMap, HrvPatientState, PartitionState, Pending, Processor, Signal, WindowChunk,
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

/// A record kept until its patient's id is known: key, value.
type OwnedRecord = (StateKey, Option<Vec<u8>>);

/// Applies one partition's changelog records, in log order, to empty state.
#[derive(Debug)]
pub struct Restorer {
    partition: i32,
    state: PartitionState,
    meta: Option<PartitionMeta>,
    ids: FastMap<u64, CompactString>,
    /// Records without a patient id (HRV chunks, alert entries) of patients
    /// whose id is not known yet, in log order.
    waiting: FastMap<u64, Vec<OwnedRecord>>,
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
            waiting: FastMap::default(),
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
            (StateKey::DedupGroup(g), v) => {
                // A generation's record replaces or deletes all its ids.
                state.dedup.forget_generation(g);
                if let Some(v) = v {
                    for (key, t) in decode_dedup_group(v).map_err(err)? {
                        state.dedup.restore_entry(key, t, g);
                    }
                }
            }
            (StateKey::HrvPatient(h), Some(v)) => {
                let (id, head): (String, HrvPatientState) = decode(v).map_err(err)?;
                let keys = self.written.patients.entry(h).or_default();
                keys.head = Some(xxh3_64(v));
                keys.late = head.late_unreported();
                learn(partition, state, &mut self.ids, &mut self.waiting, h, &id)?;
                state.hrv.restore_head(&id, head);
            }
            (StateKey::HrvPatient(h), None) => {
                if let Some(id) = self.ids.get(&h) {
                    state.hrv.reset_head(id);
                }
                if let Some(keys) = self.written.patients.get_mut(&h) {
                    keys.head = None;
                }
            }
            (StateKey::HrvChunk(h, start, seq), _) => {
                let keys = self.written.patients.entry(h).or_default();
                keys.windows.retain(|(s, _)| *s != start);
                if value.is_some() {
                    keys.windows.push((start, seq.saturating_add(1)));
                }
                match self.ids.get(&h) {
                    Some(id) => apply_id_less(partition, state, id, key, value)?,
                    None => self
                        .waiting
                        .entry(h)
                        .or_default()
                        .push((key, value.map(<[u8]>::to_vec))),
                }
            }
            (StateKey::Alerts(h), Some(v)) => {
                let (id, cooldowns): (String, Cooldowns) = decode(v).map_err(err)?;
                learn(partition, state, &mut self.ids, &mut self.waiting, h, &id)?;
                state.alerts.restore_cooldowns(&id, cooldowns);
            }
            (StateKey::Alerts(h), None) => match self.ids.get(&h) {
                Some(id) => {
                    state.alerts.purge_patient(id);
                }
                // Everything read of the patient so far is deleted with it.
                None => {
                    self.waiting.remove(&h);
                }
            },
            (
                StateKey::AlertSlot(h, _)
                | StateKey::AlertBaseline(h, ..)
                | StateKey::AlertPending(h, _),
                _,
            ) => match self.ids.get(&h) {
                Some(id) => apply_id_less(partition, state, id, key, value)?,
                None => self
                    .waiting
                    .entry(h)
                    .or_default()
                    .push((key, value.map(<[u8]>::to_vec))),
            },
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
            waiting,
            ..
        } = self;
        state.hrv.finish_restore();
        state.alerts.finish_restore();
        if !waiting.is_empty() {
            // Never written so by this version: records of a patient whose
            // head was lost. Their id is unknown, so they cannot be held.
            tracing::warn!(
                partition,
                patients = waiting.len(),
                "alert state records without their patient's head record dropped"
            );
        }
        // What each generation's record holds, before horizon and cap
        // evict (those evictions reach the writer as changes).
        written.dedup_live = state.dedup.generation_counts();
        state.dedup.finish_restore();
        if let Some(meta) = meta {
            state.hrv.restore_meta(meta.hrv);
            // Applies horizon and capacity; what that evicts is a change.
            state.dedup.restore_meta(meta.dedup);
            state.next_offset = meta.next_offset;
        }
        written.next_offset = state.next_offset;
        written.patients.retain(|_, k| !k.is_empty());
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

/// A head record names patient `id` (hash `h`): the records that waited for
/// it are applied now, in log order and before the head itself, as they
/// were written before it (an HRV head's event-time marks then replace
/// theirs); later records of `h` apply at once.
fn learn(
    partition: i32,
    state: &mut PartitionState,
    ids: &mut FastMap<u64, CompactString>,
    waiting: &mut FastMap<u64, Vec<OwnedRecord>>,
    h: u64,
    id: &str,
) -> Result<(), StateError> {
    if ids.contains_key(&h) {
        return Ok(());
    }
    for (key, value) in waiting.remove(&h).unwrap_or_default() {
        apply_id_less(partition, state, id, key, value.as_deref())?;
    }
    ids.insert(h, CompactString::from(id));
    Ok(())
}

/// Applies one record that holds no patient id (an HRV window chunk, an
/// alert sample, baseline or waiting reading) of the patient `id`.
fn apply_id_less(
    partition: i32,
    state: &mut PartitionState,
    id: &str,
    key: StateKey,
    value: Option<&[u8]>,
) -> Result<(), StateError> {
    let err = |source: ValueError| StateError::Value {
        partition,
        store: key.store(),
        source,
    };
    let unknown = |what: &str| err(ValueError::Corrupt(format!("unknown {what} in the key")));
    let signal = |i: u8| Signal::from_index(usize::from(i)).ok_or_else(|| unknown("signal"));
    let alerts = &mut state.alerts;
    match (key, value) {
        (StateKey::HrvChunk(_, start, seq), Some(v)) => {
            let chunk: WindowChunk = decode(v).map_err(err)?;
            if let Some(marks) = chunk.marks() {
                state.hrv.restore_marks(id, marks);
            }
            state.hrv.restore_chunk(id, start, usize::from(seq), chunk);
        }
        (StateKey::HrvChunk(_, start, _), None) => state.hrv.forget_window(id, start),
        (StateKey::AlertSlot(_, slot), Some(v)) => {
            alerts.restore_slot(id, slot, decode_slot(v, slot).map_err(err)?);
        }
        (StateKey::AlertSlot(_, slot), None) => alerts.forget_slot(id, slot),
        (StateKey::AlertBaseline(_, s, hour), Some(v)) => {
            alerts.restore_bucket(id, signal(s)?, hour, decode(v).map_err(err)?);
        }
        (StateKey::AlertBaseline(_, s, hour), None) => alerts.forget_bucket(id, signal(s)?, hour),
        (StateKey::AlertPending(_, r), v) => {
            let rule = *AlertRule::ALL
                .get(usize::from(r))
                .ok_or_else(|| unknown("rule"))?;
            match v {
                Some(v) => {
                    let pending: Pending = decode(v).map_err(err)?;
                    alerts.restore_pending(id, rule, pending);
                }
                None => alerts.forget_pending(id, rule),
            }
        }
        _ => {}
    }
    Ok(())
}
