//! Bounded, event-time dedup of reading ids for one input partition.
//!
//! Keys are 128 bits: a keyed hash of the patient id (64 bits of
//! [`PatientHasher`]'s, the hash erasures are remembered by, so a restored
//! store can be purged of an erased patient whose id is no longer known)
//! and a hash of the reading id,
//! so one entry costs a few dozen bytes whatever the id lengths, and a
//! repeated id under another patient is never mistaken for a duplicate.
//! Entries leave when they fall behind the horizon (max event time seen minus
//! `horizon_ms`) or, beyond `max_entries`, oldest first. A reading older than
//! the oldest point the store still covers is reported as [`DedupOutcome::TooOld`]
//! rather than accepted unchecked: every accepted reading is proven unique.

use std::collections::BTreeSet;

use super::{FastMap, FastSet};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::erasure::{PatientHash, PatientHasher};

/// Result of offering a reading id to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupOutcome {
    /// First sighting: remembered now.
    New,
    /// Seen before within the horizon.
    Duplicate,
    /// Older than the store covers; dedup cannot be guaranteed.
    TooOld {
        /// Oldest event time the store still covers, ms.
        covered_from_ms: i64,
    },
}

/// An entry's key: hashes of the patient id and of the reading id.
pub type DedupKey = (u64, u64);
type Key = DedupKey;

/// Entries remembered together between two [`DedupStore::take_changes`]
/// share a generation (at most [`GENERATION_MAX`] each): the state
/// changelog writes a generation's entries as one record.
pub const GENERATION_MAX: u32 = 4096;

/// One change to the store, in order, for the state changelog. Each names
/// the entry's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupChange {
    /// A new reading id, remembered at its event time.
    Remembered(DedupKey, i64, u32),
    /// An id evicted (horizon, capacity).
    Forgotten(DedupKey, u32),
    /// An id purged (erasure): the rest of its generation must be written
    /// again without it.
    Purged(DedupKey, u32),
}

/// The store's scalar state besides its entries, for the changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupMeta {
    /// Newest event time seen.
    pub max_event_ms: i64,
    /// Newest event time evicted early by the capacity cap.
    pub evicted_up_to_ms: i64,
}

/// Dedup state of one partition.
#[derive(Debug, Clone)]
pub struct DedupStore {
    /// Event time and generation of each remembered id.
    seen: FastMap<Key, (i64, u32)>,
    by_time: BTreeSet<(i64, Key)>,
    horizon_ms: i64,
    max_entries: usize,
    max_event_ms: i64,
    evicted_up_to_ms: i64,
    /// Changes since the last [`DedupStore::take_changes`].
    changes: Vec<DedupChange>,
    hasher: PatientHasher,
    /// Generation of the ids remembered now, and how many it holds.
    generation: u32,
    filled: u32,
}

impl DedupStore {
    /// An empty store.
    pub fn new(horizon_ms: i64, max_entries: usize) -> Self {
        Self {
            seen: FastMap::default(),
            by_time: BTreeSet::new(),
            horizon_ms,
            max_entries: max_entries.max(1),
            max_event_ms: i64::MIN,
            evicted_up_to_ms: i64::MIN,
            changes: Vec::new(),
            hasher: PatientHasher::default(),
            generation: 0,
            filled: 0,
        }
    }

    /// The store hashing patient ids with `hasher` (the profile table's).
    #[must_use]
    pub fn with_hasher(mut self, hasher: PatientHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// Changes since the last call, oldest first (for the changelog). Ids
    /// remembered from now on start a new generation.
    pub fn take_changes(&mut self) -> Vec<DedupChange> {
        if self.filled > 0 {
            self.next_generation();
        }
        std::mem::take(&mut self.changes)
    }

    fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.filled = 0;
    }

    /// The ids of the generations `which` holds now: (generation, key,
    /// event time). Linear in the store size: for purges, which are rare.
    pub fn generation_entries(&self, which: &FastSet<u32>) -> Vec<(u32, DedupKey, i64)> {
        let mut out: Vec<_> = self
            .seen
            .iter()
            .filter(|(_, (_, g))| which.contains(g))
            .map(|(k, (t, g))| (*g, *k, *t))
            .collect();
        out.sort_unstable_by_key(|&(g, k, t)| (g, t, k));
        out
    }

    /// Scalar state for the changelog.
    pub fn meta(&self) -> DedupMeta {
        DedupMeta {
            max_event_ms: self.max_event_ms,
            evicted_up_to_ms: self.evicted_up_to_ms,
        }
    }

    /// Restores one entry of `generation` from the changelog (no change is
    /// recorded); ids remembered from now on go to a later generation.
    pub fn restore_entry(&mut self, key: DedupKey, event_ms: i64, generation: u32) {
        if let Some((old, _)) = self.seen.insert(key, (event_ms, generation)) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((event_ms, key));
        if generation >= self.generation {
            self.generation = generation;
            self.next_generation();
        }
    }

    /// Drops one restored entry (its changelog record was deleted; no
    /// change is recorded).
    pub fn forget_entry(&mut self, key: DedupKey) {
        if let Some((old, _)) = self.seen.remove(&key) {
            self.by_time.remove(&(old, key));
        }
    }

    /// Restores the scalar state, then applies horizon and capacity (what
    /// that evicts is recorded, so the changelog forgets it too).
    pub fn restore_meta(&mut self, meta: DedupMeta) {
        self.max_event_ms = meta.max_event_ms;
        self.evicted_up_to_ms = meta.evicted_up_to_ms;
        self.expire();
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Oldest event time for which a duplicate is still detected.
    pub fn covered_from_ms(&self) -> i64 {
        let horizon_start = self.max_event_ms.saturating_sub(self.horizon_ms);
        horizon_start.max(self.evicted_up_to_ms.saturating_add(1))
    }

    /// Event time covered behind the newest reading, ms: the configured
    /// horizon, or less once the entry cap evicted entries inside it
    /// (`None` before the first reading).
    pub fn effective_horizon_ms(&self) -> Option<i64> {
        (self.max_event_ms != i64::MIN).then(|| {
            self.max_event_ms
                .saturating_sub(self.covered_from_ms())
                .clamp(0, self.horizon_ms)
        })
    }

    /// Checks `reading_id` of `patient_id` measured at `event_ms` and remembers it if new.
    pub fn check(&mut self, patient_id: &str, reading_id: &str, event_ms: i64) -> DedupOutcome {
        let patient = self.hasher.hash(patient_id.as_bytes());
        self.check_hashed(patient, reading_id, event_ms)
    }

    /// [`Self::check`] for a patient id already hashed with this store's
    /// hasher (the processor hashes each record's key once).
    pub fn check_hashed(
        &mut self,
        patient: PatientHash,
        reading_id: &str,
        event_ms: i64,
    ) -> DedupOutcome {
        let key = (patient.dedup_part(), xxh3_64(reading_id.as_bytes()));
        if self.seen.contains_key(&key) {
            return DedupOutcome::Duplicate;
        }
        let covered_from_ms = self.covered_from_ms();
        if event_ms < covered_from_ms {
            return DedupOutcome::TooOld { covered_from_ms };
        }
        if self.filled >= GENERATION_MAX {
            self.next_generation();
        }
        self.filled += 1;
        self.seen.insert(key, (event_ms, self.generation));
        self.by_time.insert((event_ms, key));
        self.changes
            .push(DedupChange::Remembered(key, event_ms, self.generation));
        self.max_event_ms = self.max_event_ms.max(event_ms);
        self.expire();
        DedupOutcome::New
    }

    /// Forgets every reading id of `patient_id` (erasure). Returns how many
    /// entries were removed. Linear in the store size; erasures are rare.
    pub fn purge_patient(&mut self, patient_id: &str) -> usize {
        let patient = self.hasher.hash(patient_id.as_bytes()).dedup_part();
        self.purge_where(|p| p == patient)
    }

    /// Forgets every reading id whose patient part (see
    /// [`crate::erasure::PatientHash::dedup_part`]) `erased` accepts.
    /// Returns how many entries were removed.
    pub fn purge_where(&mut self, erased: impl Fn(u64) -> bool) -> usize {
        let before = self.seen.len();
        let changes = &mut self.changes;
        self.seen.retain(|key, (_, generation)| {
            let keep = !erased(key.0);
            if !keep {
                changes.push(DedupChange::Purged(*key, *generation));
            }
            keep
        });
        if self.seen.len() != before {
            self.by_time.retain(|(_, key)| !erased(key.0));
        }
        before - self.seen.len()
    }

    fn expire(&mut self) {
        let horizon_start = self.max_event_ms.saturating_sub(self.horizon_ms);
        while let Some(&(t, key)) = self.by_time.first() {
            let over_capacity = self.seen.len() > self.max_entries;
            if t >= horizon_start && !over_capacity {
                break;
            }
            self.by_time.pop_first();
            if let Some((_, generation)) = self.seen.remove(&key) {
                self.changes.push(DedupChange::Forgotten(key, generation));
            }
            if over_capacity && t >= horizon_start {
                self.evicted_up_to_ms = self.evicted_up_to_ms.max(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 1_000;

    #[test]
    fn the_effective_horizon_shrinks_when_the_cap_evicts_inside_it() {
        let mut s = DedupStore::new(H, 100);
        assert_eq!(s.effective_horizon_ms(), None);
        for i in 0..50 {
            s.check("p", &format!("r{i}"), i * 10);
        }
        assert_eq!(s.effective_horizon_ms(), Some(H), "under the cap");
        for i in 50..400 {
            s.check("p", &format!("r{i}"), i * 10);
        }
        // 100 entries 10 ms apart cover about 1 s: the cap binds now.
        let h = s.effective_horizon_ms().expect("readings seen");
        assert!((980..H).contains(&h), "{h}");
        let mut tight = DedupStore::new(H, 10);
        for i in 0..400 {
            tight.check("p", &format!("r{i}"), i * 10);
        }
        // Newest 3990, the last evicted 3890: covered from 3891.
        assert_eq!(tight.effective_horizon_ms(), Some(99));
    }

    #[test]
    fn a_store_rebuilt_from_its_changes_behaves_the_same() {
        let mut s = DedupStore::new(H, 3);
        let mut log: std::collections::HashMap<DedupKey, (i64, u32)> = Default::default();
        let mut apply = |s: &mut DedupStore| {
            for c in s.take_changes() {
                match c {
                    DedupChange::Remembered(k, t, g) => log.insert(k, (t, g)),
                    DedupChange::Forgotten(k, _) | DedupChange::Purged(k, _) => log.remove(&k),
                };
            }
            log.clone()
        };
        for (i, t) in [(1, 10), (2, 20), (3, 30), (4, 40), (5, 2_000)] {
            s.check("p", &format!("r{i}"), t);
        }
        s.check("q", "x", 2_001);
        s.purge_patient("q");
        let entries = apply(&mut s);
        let mut r = DedupStore::new(H, 3);
        for (k, (t, g)) in &entries {
            r.restore_entry(*k, *t, *g);
        }
        r.restore_meta(s.meta());
        assert_eq!(r.len(), s.len());
        assert_eq!(r.covered_from_ms(), s.covered_from_ms());
        for (id, t) in [("r5", 2_000), ("r4", 1_500), ("x", 2_001), ("r6", 2_002)] {
            assert_eq!(r.check("p", id, t), s.check("p", id, t), "{id}");
        }
        assert_eq!(
            r.check("q", "x", 2_003),
            DedupOutcome::New,
            "purge was logged"
        );
    }

    #[test]
    fn purge_forgets_only_that_patient() {
        let mut s = DedupStore::new(H, 100);
        s.check("p", "r1", 10);
        s.check("p", "r2", 11);
        s.check("q", "r1", 12);
        assert_eq!(s.purge_patient("p"), 2);
        assert_eq!(s.len(), 1);
        assert_eq!(s.check("q", "r1", 13), DedupOutcome::Duplicate);
        assert_eq!(s.check("p", "r1", 13), DedupOutcome::New);
    }

    #[test]
    fn second_sighting_is_a_duplicate() {
        let mut s = DedupStore::new(H, 100);
        assert_eq!(s.check("p1", "r1", 10), DedupOutcome::New);
        assert_eq!(s.check("p1", "r1", 10), DedupOutcome::Duplicate);
        assert_eq!(s.check("p2", "r1", 10), DedupOutcome::New, "other patient");
    }

    #[test]
    fn entries_behind_the_horizon_are_dropped_and_older_readings_too_old() {
        let mut s = DedupStore::new(H, 100);
        s.check("p", "a", 0);
        s.check("p", "b", 2 * H);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.check("p", "a", 0),
            DedupOutcome::TooOld { covered_from_ms: H }
        );
    }

    #[test]
    fn capacity_eviction_moves_the_covered_point() {
        let mut s = DedupStore::new(H, 2);
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(s.check("p", id, i as i64), DedupOutcome::New);
        }
        assert_eq!(s.len(), 2);
        // "a" (t=0) was evicted; a replay of it must not pass as new.
        assert!(matches!(s.check("p", "a", 0), DedupOutcome::TooOld { .. }));
        assert_eq!(s.check("p", "b", 1), DedupOutcome::Duplicate);
    }

    proptest! {
        /// Within the horizon and capacity, each id is New exactly once, whatever the order.
        #[test]
        fn each_id_is_new_exactly_once(ids in prop::collection::vec(0u8..50, 1..300)) {
            // A reading id always carries the same measured_at.
            let mut s = DedupStore::new(H, 10_000);
            let mut news = std::collections::HashSet::new();
            for id in &ids {
                match s.check("p", &id.to_string(), i64::from(*id) * 10) {
                    DedupOutcome::New => prop_assert!(news.insert(*id), "id {} new twice", id),
                    DedupOutcome::Duplicate => prop_assert!(news.contains(id)),
                    DedupOutcome::TooOld { .. } => prop_assert!(false, "all within horizon"),
                }
            }
        }

        /// Bounded memory: never more than max_entries ids, and never a false New.
        #[test]
        fn bounded_and_never_falsely_new(ids in prop::collection::vec(0u8..80, 1..400)) {
            let mut s = DedupStore::new(H, 16);
            let mut accepted = std::collections::HashSet::new();
            for id in &ids {
                if s.check("p", &id.to_string(), i64::from(*id) * 60) == DedupOutcome::New {
                    prop_assert!(accepted.insert(*id), "id {} accepted twice", id);
                }
                prop_assert!(s.len() <= 16);
            }
        }
    }
}
