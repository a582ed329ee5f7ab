//! [`ProfileTable`]: the global, shared table of patient profiles.
//!
//! Every instance reads all partitions of the compacted `vitals.patients`
//! topic into this table (the loader lives in [`crate::kafka`]); the processor
//! only reads it. It is the one piece of state shared across tasks, hence a
//! `DashMap` (STYLE.md §3). A tombstone erases the profile and marks the
//! patient as erased, so later readings of that patient are dropped and
//! counted rather than dead-lettered: erased data must not be retained.
//!
//! Erased patients are remembered by a keyed hash of their id
//! ([`crate::erasure`]), not the id itself, so the table keeps no identifier
//! of a deleted account. The set is loaded from the erasures topic at
//! start-up, so it outlives the tombstone on the patients topic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use compact_str::CompactString;
use dashmap::DashMap;

use super::{OverrideRejection, check_overrides};
use crate::erasure::{ErasedSet, PatientHash, PatientHasher, Position, ProfileVerdict};
use crate::model::PatientProfile;

/// What the table knows about a patient.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A current profile.
    Known(Arc<PatientProfile>),
    /// The account was deleted (tombstone seen and no profile since).
    Erased,
    /// No profile has been seen.
    Unknown,
}

/// What the profile loader feeds: the interface between the Kafka side
/// (which reads the patients and erasures topics, [`crate::kafka`]) and the
/// table the processor reads. The loader knows no more of the table than
/// this; [`ProfileTable`] implements it.
pub trait ProfileSink: Send + Sync {
    /// The keyed hash of patient ids the erasures are recorded under.
    fn hasher(&self) -> PatientHasher;
    /// A profile read at `position` of the patients topic (see
    /// [`ProfileTable::apply_profile`]).
    fn apply_profile(
        &self,
        profile: PatientProfile,
        position: Option<Position>,
    ) -> (ProfileVerdict, Vec<OverrideRejection>);
    /// A tombstone at `position`; the patient's hash when the erasure is
    /// new, so its durable record is due (see [`ProfileTable::erase_at`]).
    fn erase_at(&self, patient_id: &str, position: Option<Position>) -> Option<PatientHash>;
    /// An erasure read back from the erasures topic.
    fn restore_erasure(&self, hash: PatientHash, position: Option<Position>);
    /// Marks the topic read to its end: readings may be processed now.
    fn set_caught_up(&self);
    /// Whether [`Self::set_caught_up`] was called.
    fn is_caught_up(&self) -> bool;
    /// Known profiles (a gauge).
    fn profile_count(&self) -> usize;
    /// Erased patients (a gauge).
    fn erased_count(&self) -> usize;
}

impl ProfileSink for ProfileTable {
    fn hasher(&self) -> PatientHasher {
        ProfileTable::hasher(self)
    }

    fn apply_profile(
        &self,
        profile: PatientProfile,
        position: Option<Position>,
    ) -> (ProfileVerdict, Vec<OverrideRejection>) {
        ProfileTable::apply_profile(self, profile, position)
    }

    fn erase_at(&self, patient_id: &str, position: Option<Position>) -> Option<PatientHash> {
        ProfileTable::erase_at(self, patient_id, position)
    }

    fn restore_erasure(&self, hash: PatientHash, position: Option<Position>) {
        ProfileTable::restore_erasure(self, hash, position);
    }

    fn set_caught_up(&self) {
        ProfileTable::set_caught_up(self);
    }

    fn is_caught_up(&self) -> bool {
        ProfileTable::is_caught_up(self)
    }

    fn profile_count(&self) -> usize {
        self.len()
    }

    fn erased_count(&self) -> usize {
        self.erased().len()
    }
}

/// Patient profiles by id, plus the set of erased patients.
#[derive(Debug, Default)]
pub struct ProfileTable {
    /// foldhash, not the default SipHash: looked up once per reading, and
    /// the keys are patient ids from our own topics, not untrusted map
    /// input that could be chosen to collide (the seed is random anyway).
    /// Keys are `CompactString`s: an id of up to 24 bytes is held inline,
    /// not in a heap block of its own per patient (a longer one, such as a
    /// 36-character UUID, still takes a block).
    profiles: DashMap<CompactString, Arc<PatientProfile>, foldhash::fast::RandomState>,
    hasher: PatientHasher,
    erased: ErasedSet,
    caught_up: AtomicBool,
}

impl ProfileTable {
    /// An empty table, not caught up, hashing erased ids with the built-in key.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table hashing erased ids with `hasher`.
    pub fn with_hasher(hasher: PatientHasher) -> Self {
        Self {
            hasher,
            ..Self::default()
        }
    }

    /// The keyed hash of patient ids.
    pub fn hasher(&self) -> PatientHasher {
        self.hasher
    }

    /// The erased patients.
    pub fn erased(&self) -> &ErasedSet {
        &self.erased
    }

    /// Inserts or replaces a profile, its clinician overrides checked first
    /// ([`check_overrides`]: unusable ones are removed so the defaults
    /// apply). Returns what was removed, for the caller to log and count. A
    /// profile arriving after a tombstone (the id was re-registered) makes
    /// the patient known again.
    pub fn upsert(&self, profile: PatientProfile) -> Vec<OverrideRejection> {
        self.apply_profile(profile, None).1
    }

    /// A profile read at `position` of the patients topic. One written
    /// before the patient's erasure is ignored ([`ProfileVerdict::Stale`]);
    /// one written after it lifts the erasure ([`ProfileVerdict::Lifted`]).
    /// Its overrides are checked as by [`Self::upsert`].
    pub fn apply_profile(
        &self,
        mut profile: PatientProfile,
        position: Option<Position>,
    ) -> (ProfileVerdict, Vec<OverrideRejection>) {
        let hash = self.hasher.hash(profile.patient_id.as_bytes());
        let verdict = self.erased.on_profile(hash, position);
        if verdict == ProfileVerdict::Stale {
            return (verdict, Vec::new());
        }
        let rejected = check_overrides(&mut profile);
        self.profiles
            .insert(CompactString::from(&profile.patient_id), Arc::new(profile));
        (verdict, rejected)
    }

    /// Applies a tombstone: drops the profile and remembers the patient as
    /// erased; the processor purges their state from every partition it
    /// holds or restores ([`Self::erasures_since`]).
    pub fn erase(&self, patient_id: &str) {
        self.erase_at(patient_id, None);
    }

    /// [`Self::erase`] for a tombstone at `position`. Returns the patient's
    /// hash when the erasure is new (or moved): its durable record is due.
    pub fn erase_at(&self, patient_id: &str, position: Option<Position>) -> Option<PatientHash> {
        self.profiles.remove(patient_id);
        let hash = self.hasher.hash(patient_id.as_bytes());
        self.erased.insert(hash, position).then_some(hash)
    }

    /// An erasure read back from the erasures topic.
    pub fn restore_erasure(&self, hash: PatientHash, position: Option<Position>) {
        self.erased.insert(hash, position);
    }

    /// Erasures recorded from index `epoch` on, and the next index.
    pub fn erasures_since(&self, epoch: usize) -> (Vec<PatientHash>, usize) {
        self.erased.since(epoch)
    }

    /// Looks a patient up by id.
    pub fn lookup(&self, patient_id: &str) -> Lookup {
        if let Some(p) = self.profiles.get(patient_id) {
            return Lookup::Known(Arc::clone(p.value()));
        }
        if self.is_erased_key(patient_id.as_bytes()) {
            Lookup::Erased
        } else {
            Lookup::Unknown
        }
    }

    /// Whether a record keyed by `key` belongs to an erased patient. Checked
    /// before decoding, so not even an undecodable record of an erased
    /// patient reaches the DLQ.
    pub fn is_erased_key(&self, key: &[u8]) -> bool {
        !self.erased.is_empty() && self.erased.contains(self.hasher.hash(key))
    }

    /// [`Self::is_erased_key`] for a key already hashed with [`Self::hasher`].
    pub fn is_erased_hash(&self, hash: PatientHash) -> bool {
        !self.erased.is_empty() && self.erased.contains(hash)
    }

    /// Profiles held.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether no profile is held.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// Marks the initial load of the topic as complete.
    pub fn set_caught_up(&self) {
        self.caught_up.store(true, Ordering::Release);
    }

    /// Whether the initial load of the topic is complete (readiness).
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::model::Sex;

    fn profile(id: &str) -> PatientProfile {
        PatientProfile {
            patient_id: id.into(),
            birth_date_days: 0,
            sex: Sex::Female,
            height_cm: Decimal::new(1650, 1),
            rpm_enrolled: false,
            consent_clinician_sharing: false,
            care_team: vec![],
            threshold_overrides: vec![],
            dry_weight_kg: None,
        }
    }

    #[test]
    fn unknown_known_erased_and_reregistered() {
        let t = ProfileTable::new();
        assert_eq!(t.lookup("p-1"), Lookup::Unknown);
        t.upsert(profile("p-1"));
        assert!(matches!(t.lookup("p-1"), Lookup::Known(p) if p.patient_id == "p-1"));
        t.erase("p-1");
        assert_eq!(t.lookup("p-1"), Lookup::Erased);
        assert!(t.is_erased_key(b"p-1"));
        assert!(!t.is_erased_key(b"p-2"));
        let h = t.hasher().hash(b"p-1");
        assert_eq!(t.erasures_since(0), (vec![h], 1));
        assert!(t.erasures_since(1).0.is_empty());
        t.upsert(profile("p-1"));
        assert!(matches!(t.lookup("p-1"), Lookup::Known(_)));
        assert!(!t.is_erased_key(b"p-1"));
    }

    #[test]
    fn a_profile_older_than_a_restored_erasure_does_not_bring_the_patient_back() {
        let t = ProfileTable::with_hasher(PatientHasher::new(b"k"));
        let at = |offset| {
            Some(Position {
                partition: 0,
                offset,
                timestamp_ms: 0,
            })
        };
        t.restore_erasure(t.hasher().hash(b"p-1"), at(10));
        assert_eq!(
            t.apply_profile(profile("p-1"), at(4)).0,
            ProfileVerdict::Stale
        );
        assert_eq!(t.lookup("p-1"), Lookup::Erased);
        assert_eq!(t.erase_at("p-1", at(10)), None, "already recorded");
        assert_eq!(
            t.apply_profile(profile("p-1"), at(11)).0,
            ProfileVerdict::Lifted
        );
        assert!(matches!(t.lookup("p-1"), Lookup::Known(_)));
    }

    #[test]
    fn a_tombstone_for_an_unknown_patient_still_erases() {
        let t = ProfileTable::new();
        t.erase("p-9");
        assert_eq!(t.lookup("p-9"), Lookup::Erased);
        assert!(t.is_empty());
    }
}
