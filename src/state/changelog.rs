//! Changelog records for what changed, one record per store entry, and the
//! buffer that coalesces them until they are sent.
//!
//! What changed comes from the core's own change tracking (dedup changes,
//! patients whose HRV state changed, alert entries that changed). For a
//! patient whose HRV state changed, an open window's new chunks (one per
//! reading that reached it) are appended under their own keys: a window is
//! never rewritten. The HRV head is written when its bytes differ from what
//! was last written for it, unless only its event-time marks moved and a
//! new chunk is written: that chunk carries the marks instead. Windows that
//! closed and patients whose state emptied get tombstones for every key
//! they had. What was written is remembered per patient
//! ([`ChangelogWriter`]: the head's 64-bit hash, each window's chunk
//! count), rebuilt on restore. The alert engine names each changed entry
//! itself (a new reading's samples in their slot, an hour's baseline sum, the
//! cool-downs, a waiting reading), so only those are written, or deleted
//! when they are gone: a patient's alert history is never rewritten whole,
//! and a sample leaving the look-back costs no record (its slot is
//! overwritten by a later reading; a restore drops it by event time).
//!
//! [`ChangelogBuffer`] is the record cache: writes to the same key before
//! the buffer is sent (one batch at least-once, one transaction
//! exactly-once) coalesce, the last one wins. The partition's meta record
//! (scalar state and the input offset it reflects) is sent last.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::xxh3_64;

use super::StateError;
use super::key::{StateKey, patient_hash};
use super::value::{PartitionMeta, encode_dedup_group, encode_into, encode_slot};
use crate::process::{
    AlertEngine, AlertEntry, DedupChange, DedupKey, FastMap, FastSet, OpenWindow, PartitionState,
    Processor,
};

/// One record for the changelog topic: `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// Input (and changelog) partition.
    pub partition: i32,
    /// Encoded key.
    pub key: Vec<u8>,
    /// Encoded value, or `None` to delete the key.
    pub value: Option<Vec<u8>>,
}

/// Hashes of the values last written for one patient's keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct PatientKeys {
    pub(crate) head: Option<u64>,
    /// The late-beat count of the head record written: while it holds,
    /// a change of the event-time marks alone may ride on a chunk.
    pub(crate) late: u32,
    /// (window start, chunks written), one per open window.
    pub(crate) windows: WindowsWritten,
}

/// A patient's open windows written, inline up to two (the usual case: no
/// heap block per patient, none per write of a patient's windows).
pub(crate) type WindowsWritten = smallvec::SmallVec<[(i64, u16); 2]>;

impl PatientKeys {
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none() && self.windows.is_empty()
    }
}

/// What was last written for one partition's keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Written {
    pub(crate) next_offset: Option<i64>,
    /// Live ids per dedup generation written: a generation's record is
    /// deleted when its last id leaves.
    pub(crate) dedup_live: FastMap<u32, u32>,
    pub(crate) patients: FastMap<u64, PatientKeys>,
}

/// Turns state changes into changelog records.
#[derive(Debug, Default)]
pub struct ChangelogWriter {
    partitions: BTreeMap<i32, Written>,
    buf: Vec<u8>,
}

impl ChangelogWriter {
    /// A writer that has written nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// After a restore: what the changelog holds for `partition`.
    pub(crate) fn install(&mut self, partition: i32, written: Written) {
        self.partitions.insert(partition, written);
    }

    /// Puts the records for every change `processor` made since the last
    /// call into `into`. Forgets partitions the processor no longer holds.
    ///
    /// # Errors
    /// [`StateError::Unencodable`] (a defect).
    pub fn take(
        &mut self,
        processor: &mut Processor,
        into: &mut ChangelogBuffer,
    ) -> Result<(), StateError> {
        let mut held = Vec::new();
        for (partition, state) in processor.partitions_mut() {
            held.push(partition);
            let written = self.partitions.entry(partition).or_default();
            take_partition(partition, state, written, into, &mut self.buf)?;
        }
        self.partitions.retain(|p, _| held.contains(p));
        Ok(())
    }
}

/// Encodes `value` into `buf` and hashes it.
fn encoded<T: serde::Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    partition: i32,
    store: &'static str,
) -> Result<u64, StateError> {
    encode_into(value, buf).map_err(|detail| StateError::Unencodable {
        partition,
        store,
        detail,
    })?;
    Ok(xxh3_64(buf))
}

fn take_partition(
    p: i32,
    state: &mut PartitionState,
    written: &mut Written,
    into: &mut ChangelogBuffer,
    buf: &mut Vec<u8>,
) -> Result<(), StateError> {
    let before = into.puts;
    take_dedup(p, state, written, into, buf);
    for patient in state.hrv.take_dirty() {
        let h = patient_hash(&patient);
        let keys = written.patients.entry(h).or_default();
        let mut windows = WindowsWritten::new();
        if let Some(head) = state.hrv.patient_state(&patient) {
            // The windows with chunks not written yet: (start, window, first, end).
            let mut fresh = smallvec::SmallVec::<[(i64, &OpenWindow, u16, u16); 2]>::new();
            for (start, window) in state.hrv.patient_windows(&patient) {
                let written = keys
                    .windows
                    .iter()
                    .find(|(s, _)| *s == start)
                    .map_or(0, |w| w.1);
                // A window holds one chunk per reading: far fewer than 2^16.
                let chunks = u16::try_from(window.chunks()).unwrap_or(u16::MAX);
                if chunks > written {
                    fresh.push((start, window, written, chunks));
                }
                windows.push((start, chunks.max(written)));
            }
            // Once the head record is written, and while its late-beat count
            // holds, the head can differ from it only in the event-time
            // marks: the newest new chunk carries them (one record for the
            // reading, not two; no need to encode the head to compare).
            let marks_on_chunk =
                keys.head.is_some() && keys.late == head.late_unreported() && !fresh.is_empty();
            if !marks_on_chunk {
                let hash = encoded(&(&patient, head), buf, p, "hrv patient")?;
                if keys.head != Some(hash) {
                    into.put(p, StateKey::HrvPatient(h), Some(buf.clone()));
                    keys.head = Some(hash);
                    keys.late = head.late_unreported();
                }
            }
            let last = fresh.len().wrapping_sub(1);
            for (i, &(start, window, from, to)) in fresh.iter().enumerate() {
                for (seq, chunk) in (from..to).zip(window.chunks_from(usize::from(from))) {
                    let chunk = match marks_on_chunk && i == last && seq + 1 == to {
                        true => chunk.with_marks(head.marks()),
                        false => chunk,
                    };
                    encoded(&chunk, buf, p, "hrv window")?;
                    into.put(p, StateKey::HrvChunk(h, start, seq), Some(buf.clone()));
                }
            }
        } else if keys.head.take().is_some() {
            into.put(p, StateKey::HrvPatient(h), None);
        }
        for &(start, chunks) in &keys.windows {
            if !windows.iter().any(|(s, _)| *s == start) {
                for seq in 0..chunks {
                    into.put(p, StateKey::HrvChunk(h, start, seq), None);
                }
            }
        }
        keys.windows = windows;
        if keys.is_empty() {
            written.patients.remove(&h);
        }
    }
    for (patient, entries) in state.alerts.take_dirty() {
        let h = patient_hash(&patient);
        for entry in entries {
            take_alert_entry(p, &state.alerts, &patient, h, entry, into, buf)?;
        }
    }
    if into.puts > before || state.next_offset != written.next_offset {
        let meta = PartitionMeta {
            next_offset: state.next_offset,
            dedup: state.dedup.meta(),
            hrv: state.hrv.meta(),
        };
        encoded(&meta, buf, p, "meta")?;
        into.put(p, StateKey::Meta, Some(buf.clone()));
        written.next_offset = state.next_offset;
    }
    Ok(())
}

/// Dedup ids remembered since the last take are one record per generation
/// (a batch's ids, at most [`crate::process::GENERATION_MAX`]); a
/// generation's record is deleted once its last id left the store, and
/// written again without the ids an erasure purged. Ids evicted by the
/// horizon or the cap stay in their generation's record until it goes: a
/// restore applies horizon and cap again ([`crate::process::DedupStore::restore_meta`]).
fn take_dedup(
    p: i32,
    state: &mut PartitionState,
    written: &mut Written,
    into: &mut ChangelogBuffer,
    buf: &mut Vec<u8>,
) {
    let mut fresh: BTreeMap<u32, Vec<(DedupKey, i64)>> = BTreeMap::new();
    let mut purged = FastSet::default();
    for change in state.dedup.take_changes() {
        let (g, purge) = match change {
            DedupChange::Remembered(key, t, g) => {
                fresh.entry(g).or_default().push((key, t));
                *written.dedup_live.entry(g).or_default() += 1;
                continue;
            }
            DedupChange::Forgotten(_, g) => (g, false),
            DedupChange::Purged(_, g) => (g, true),
        };
        if purge {
            purged.insert(g);
        }
        if let Some(live) = written.dedup_live.get_mut(&g) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                written.dedup_live.remove(&g);
                fresh.remove(&g);
                purged.remove(&g);
                into.put(p, StateKey::DedupGroup(g), None);
            }
        }
    }
    if !purged.is_empty() {
        for g in &purged {
            fresh.remove(g);
        }
        let mut again: BTreeMap<u32, Vec<(DedupKey, i64)>> = BTreeMap::new();
        for (g, key, t) in state.dedup.generation_entries(&purged) {
            again.entry(g).or_default().push((key, t));
        }
        fresh.extend(again);
    }
    for (g, entries) in fresh {
        encode_dedup_group(&entries, buf);
        into.put(p, StateKey::DedupGroup(g), Some(buf.clone()));
    }
}

/// Puts the record of one alert entry as it is now (a tombstone when it
/// is gone).
fn take_alert_entry(
    p: i32,
    alerts: &AlertEngine,
    patient: &str,
    h: u64,
    entry: AlertEntry,
    into: &mut ChangelogBuffer,
    buf: &mut Vec<u8>,
) -> Result<(), StateError> {
    let (key, present) = match entry {
        AlertEntry::Head => {
            let cooldowns = alerts.cooldowns(patient);
            if let Some(c) = cooldowns {
                encoded(&(patient, c), buf, p, "alerts")?;
            }
            (StateKey::Alerts(h), cooldowns.is_some())
        }
        AlertEntry::Slot(slot) => {
            let mut samples = alerts.slot_samples(patient, slot).peekable();
            let present = samples.peek().is_some();
            if present {
                encode_slot(samples, buf);
            }
            (StateKey::AlertSlot(h, slot), present)
        }
        AlertEntry::Baseline(signal, hour) => {
            let bucket = alerts.bucket(patient, signal, hour);
            if let Some(b) = bucket {
                encoded(&b, buf, p, "alert baseline")?;
            }
            (
                StateKey::AlertBaseline(h, signal as u8, hour),
                bucket.is_some(),
            )
        }
        AlertEntry::Pending(rule) => {
            let pending = alerts.pending_of(patient, rule);
            if let Some(w) = pending {
                encoded(w, buf, p, "alert pending")?;
            }
            (StateKey::AlertPending(h, rule as u8), pending.is_some())
        }
    };
    into.put(p, key, present.then(|| buf.clone()));
    Ok(())
}

/// Changelog records waiting to be sent, one per key: a later write to a
/// key replaces an earlier one.
#[derive(Debug, Default)]
pub struct ChangelogBuffer {
    records: FastMap<(i32, StateKey), Option<Vec<u8>>>,
    puts: u64,
}

impl ChangelogBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers a write of `key` in `partition` (`None`: delete it).
    pub fn put(&mut self, partition: i32, key: StateKey, value: Option<Vec<u8>>) {
        self.puts += 1;
        self.records.insert((partition, key), value);
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records waiting to be sent.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Writes replaced by a later write to the same key since the last drain.
    pub fn coalesced(&self) -> u64 {
        self.puts - self.records.len() as u64
    }

    /// The records to send, in (partition, key) order with each
    /// partition's meta record after its other records; empties the buffer.
    /// The order is the keys' (`StateKey`'s `Ord`, compared before they
    /// are encoded): an open HRV window's chunks must reach a restore in
    /// chunk order.
    pub fn drain(&mut self) -> Vec<StateRecord> {
        self.puts = 0;
        // (partition, is meta, key): each partition's meta record last.
        type Order = (i32, bool, StateKey);
        let mut entries: Vec<(Order, Option<Vec<u8>>)> = self
            .records
            .drain()
            .map(|((partition, key), value)| ((partition, key == StateKey::Meta, key), value))
            .collect();
        entries.sort_unstable_by_key(|(order, _)| *order);
        entries
            .into_iter()
            .map(|((partition, _, key), value)| StateRecord {
                partition,
                key: key.encode(partition),
                value,
            })
            .collect()
    }
}
