//! [`ProfileTable`]: the global, shared table of patient profiles.
//!
//! Every instance reads all partitions of the compacted `vitals.patients`
//! topic into this table (the loader lives in [`crate::kafka`]); the processor
//! only reads it. It is the one piece of state shared across tasks, hence a
//! `DashMap` (STYLE.md §3). A tombstone erases the profile and marks the
//! patient as erased, so later readings of that patient are dropped and
//! counted rather than dead-lettered: erased data must not be retained.
//!
//! Erased patients are remembered by a 128-bit hash of their id, not the id
//! itself, so the table keeps no identifier of a deleted account.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::{DashMap, DashSet};
use xxhash_rust::xxh3::xxh3_128;

use super::{OverrideRejection, check_overrides};

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

/// Patient profiles by id, plus the set of erased patients.
#[derive(Debug, Default)]
pub struct ProfileTable {
    profiles: DashMap<String, Arc<PatientProfile>>,
    erased: DashSet<u128>,
    /// Erasures the processor has not yet purged from its per-partition state.
    pending_purges: Mutex<Vec<String>>,
    caught_up: AtomicBool,
}

impl ProfileTable {
    /// An empty table, not caught up.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces a profile, its clinician overrides checked first
    /// ([`check_overrides`]: unusable ones are removed so the defaults
    /// apply). Returns what was removed, for the caller to log and count. A
    /// profile arriving after a tombstone (the id was re-registered) makes
    /// the patient known again.
    pub fn upsert(&self, mut profile: PatientProfile) -> Vec<OverrideRejection> {
        let rejected = check_overrides(&mut profile);
        self.erased.remove(&xxh3_128(profile.patient_id.as_bytes()));
        self.profiles
            .insert(profile.patient_id.clone(), Arc::new(profile));
        rejected
    }

    /// Applies a tombstone: drops the profile, remembers the patient as erased
    /// and queues the purge of per-partition state ([`Self::take_purges`]).
    pub fn erase(&self, patient_id: &str) {
        self.profiles.remove(patient_id);
        self.erased.insert(xxh3_128(patient_id.as_bytes()));
        self.pending_purges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(patient_id.to_owned());
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
        !self.erased.is_empty() && self.erased.contains(&xxh3_128(key))
    }

    /// Patient ids erased since the last call; the owner of per-partition
    /// state purges them.
    pub fn take_purges(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .pending_purges
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
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
        assert_eq!(t.take_purges(), vec!["p-1".to_owned()]);
        assert!(t.take_purges().is_empty());
        t.upsert(profile("p-1"));
        assert!(matches!(t.lookup("p-1"), Lookup::Known(_)));
        assert!(!t.is_erased_key(b"p-1"));
    }

    #[test]
    fn a_tombstone_for_an_unknown_patient_still_erases() {
        let t = ProfileTable::new();
        t.erase("p-9");
        assert_eq!(t.lookup("p-9"), Lookup::Erased);
        assert!(t.is_empty());
    }
}
