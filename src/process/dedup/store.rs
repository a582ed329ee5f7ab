//! Bounded, event-time dedup of reading ids for one input partition.
//!
//! Keys are 128 bits: a keyed hash of the patient id (64 bits of
//! [`PatientHasher`]'s, the hash erasures are remembered by, so a restored
//! store can be purged of an erased patient whose id is no longer known)
//! and a hash of the reading id (xxh3, 64 bits). An entry costs about 28
//! bytes whatever the id lengths ([`super::ids`]). A repeated id under
//! another patient is never mistaken for a duplicate, and a new reading id
//! of a patient is taken for a remembered one of that patient with a
//! probability of k/2⁶⁴ for k ids of theirs held: with a thousand held per
//! patient, one false duplicate (a reading dropped) is expected every
//! 1.8·10¹⁶ readings, some 5,800 years at 100 k readings/s. Across
//! patients the odds are n/2¹²⁸ for n ids held. 64 bits of key instead
//! would save 8 bytes an id but make it n/2⁶⁴: one dropped reading every
//! six years or so at a million ids and 100 k readings/s.
//! Entries leave when they fall behind the horizon (max event time seen minus
//! `horizon_ms`) or, beyond `max_entries`, oldest first. A reading older than
//! the oldest point the store still covers is reported as [`DedupOutcome::TooOld`]
//! rather than accepted unchecked: every accepted reading is proven unique.

use super::ids::IdSet;
use crate::process::{FastMap, FastSet};

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
    /// Event time and generation of each remembered id, oldest first.
    seen: IdSet,
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
            seen: IdSet::default(),
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
        let mut out = self.seen.generation_entries(which);
        out.sort_unstable_by_key(|&(g, k, t)| (g, t, k));
        out
    }

    /// Ids held per generation (what each generation's record still
    /// counts, for the changelog writer after a restore).
    pub fn generation_counts(&self) -> FastMap<u32, u32> {
        self.seen.generation_counts()
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
        self.seen.remove(&key);
        self.seen.insert(key, event_ms, generation);
        if generation >= self.generation {
            self.generation = generation;
            self.next_generation();
        }
    }

    /// Drops the restored entries of `generation` (its changelog record
    /// was deleted or written anew; no change is recorded). Returns how
    /// many.
    pub fn forget_generation(&mut self, generation: u32) -> usize {
        self.seen.remove_generation(generation)
    }

    /// Gives back the growth slack of a restore.
    pub fn finish_restore(&mut self) {
        self.seen.shrink_to_fit();
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
        self.seen.len() == 0
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
        if self.seen.contains(&key) {
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
        self.seen.insert(key, event_ms, self.generation);
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
        self.seen.remove_patients(erased, |key, generation| {
            changes.push(DedupChange::Purged(key, generation));
        });
        before - self.seen.len()
    }

    fn expire(&mut self) {
        let horizon_start = self.max_event_ms.saturating_sub(self.horizon_ms);
        while let Some((t, _)) = self.seen.oldest() {
            let over_capacity = self.seen.len() > self.max_entries;
            if t >= horizon_start && !over_capacity {
                break;
            }
            if let Some((_, key, generation)) = self.seen.pop_oldest() {
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

    /// The store as it was before the compact id set (a map plus a set
    /// ordered by time): the new one must behave the same, change for change.
    #[derive(Default)]
    struct Reference {
        seen: std::collections::HashMap<DedupKey, (i64, u32)>,
        by_time: std::collections::BTreeSet<(i64, DedupKey)>,
        max_event_ms: Option<i64>,
        evicted_up_to_ms: Option<i64>,
        changes: Vec<DedupChange>,
    }

    impl Reference {
        fn covered_from_ms(&self) -> i64 {
            let start = self.max_event_ms.unwrap_or(i64::MIN).saturating_sub(H);
            start.max(self.evicted_up_to_ms.unwrap_or(i64::MIN).saturating_add(1))
        }

        fn check(&mut self, key: DedupKey, t: i64, generation: u32, cap: usize) -> DedupOutcome {
            if self.seen.contains_key(&key) {
                return DedupOutcome::Duplicate;
            }
            let covered_from_ms = self.covered_from_ms();
            if t < covered_from_ms {
                return DedupOutcome::TooOld { covered_from_ms };
            }
            self.seen.insert(key, (t, generation));
            self.by_time.insert((t, key));
            self.changes
                .push(DedupChange::Remembered(key, t, generation));
            self.max_event_ms = self.max_event_ms.max(Some(t));
            let horizon_start = self.max_event_ms.unwrap_or(i64::MIN).saturating_sub(H);
            while let Some(&(t, key)) = self.by_time.first() {
                let over = self.seen.len() > cap;
                if t >= horizon_start && !over {
                    break;
                }
                self.by_time.pop_first();
                let (_, g) = self.seen.remove(&key).expect("held");
                self.changes.push(DedupChange::Forgotten(key, g));
                if over && t >= horizon_start {
                    self.evicted_up_to_ms = self.evicted_up_to_ms.max(Some(t));
                }
            }
            DedupOutcome::New
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Check { patient: u8, id: u8, t: i64 },
        Purge(u8),
        Take,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..4, 0u8..200, 0i64..3_000).prop_map(|(patient, id, t)| Op::Check { patient, id, t }),
            1 => (0u8..4).prop_map(Op::Purge),
            2 => Just(Op::Take),
        ]
    }

    proptest! {
        /// The compact store answers, evicts and logs exactly as the
        /// map-and-set store did, across blocks, purges and generations;
        /// and a store restored from its changes answers the same.
        #[test]
        fn behaves_as_the_map_and_set_store(
            cap in 1usize..40,
            ops in prop::collection::vec(op(), 1..400),
        ) {
            let mut s = DedupStore::new(H, cap);
            let mut r = Reference::default();
            let mut log: std::collections::HashMap<DedupKey, (i64, u32)> = Default::default();
            for op in ops {
                match op {
                    Op::Check { patient, id, t } => {
                        let p = format!("p{patient}");
                        let key = (s.hasher.hash(p.as_bytes()).dedup_part(), xxh3_64(format!("r{id}").as_bytes()));
                        if s.filled >= GENERATION_MAX {
                            s.next_generation();
                        }
                        let expect = r.check(key, t, s.generation, cap);
                        prop_assert_eq!(s.check(&p, &format!("r{id}"), t), expect);
                    }
                    Op::Purge(patient) => {
                        let p = format!("p{patient}");
                        let part = s.hasher.hash(p.as_bytes()).dedup_part();
                        let mut gone: Vec<_> = r.seen.iter().filter(|(k, _)| k.0 == part).map(|(k, v)| (*k, *v)).collect();
                        gone.sort_unstable_by_key(|&(k, (t, _))| (t, k));
                        for (k, (t, _)) in &gone {
                            r.seen.remove(k);
                            r.by_time.remove(&(*t, *k));
                        }
                        prop_assert_eq!(s.purge_patient(&p), gone.len());
                        // In the order of the store's blocks: taken as it is.
                        let logged = s.changes.len() - gone.len();
                        let purges = s.changes[logged..].to_vec();
                        let mut purged: Vec<_> = purges.iter().filter_map(|c| match c {
                            DedupChange::Purged(k, g) => Some((*k, *g)),
                            _ => None,
                        }).collect();
                        purged.sort_unstable();
                        let mut expect: Vec<_> = gone.iter().map(|&(k, (_, g))| (k, g)).collect();
                        expect.sort_unstable();
                        prop_assert_eq!(purged, expect);
                        r.changes.extend(purges);
                    }
                    Op::Take => {
                        let changes = s.take_changes();
                        prop_assert_eq!(&changes, &std::mem::take(&mut r.changes));
                        for c in changes {
                            match c {
                                DedupChange::Remembered(k, t, g) => { log.insert(k, (t, g)); }
                                DedupChange::Forgotten(k, _) | DedupChange::Purged(k, _) => { log.remove(&k); }
                            }
                        }
                    }
                }
                prop_assert_eq!(s.len(), r.seen.len());
                prop_assert_eq!(s.covered_from_ms(), r.covered_from_ms());
                for (k, v) in &r.seen {
                    prop_assert_eq!(s.seen.get(k), Some(*v));
                }
            }
            // Restored from what the changelog was told, it answers alike.
            for c in s.take_changes() {
                match c {
                    DedupChange::Remembered(k, t, g) => { log.insert(k, (t, g)); }
                    DedupChange::Forgotten(k, _) | DedupChange::Purged(k, _) => { log.remove(&k); }
                }
            }
            let mut restored = DedupStore::new(H, cap).with_hasher(s.hasher);
            for (k, (t, g)) in &log {
                restored.restore_entry(*k, *t, *g);
            }
            restored.restore_meta(s.meta());
            prop_assert_eq!(restored.len(), s.len());
            for id in 0..200u8 {
                let t = 2_999 - i64::from(id);
                prop_assert_eq!(restored.check("p0", &format!("r{id}"), t), s.check("p0", &format!("r{id}"), t));
            }
        }

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
