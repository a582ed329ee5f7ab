//! [`ErasedSet`]: the erased patients, by keyed hash.

use std::sync::{PoisonError, RwLock};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::PatientHash;

/// Where a record sits on the patients topic. A profile re-registers an
/// erased patient only if it was written after the tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Patients-topic partition.
    pub partition: i32,
    /// Offset in it.
    pub offset: i64,
    /// Record timestamp, ms (compared when the partitions differ, e.g.
    /// after the topic was re-partitioned).
    pub timestamp_ms: i64,
}

impl Position {
    /// Whether `self` was written after `other`.
    pub fn is_after(&self, other: &Position) -> bool {
        if self.partition == other.partition {
            self.offset > other.offset
        } else {
            self.timestamp_ms > other.timestamp_ms
        }
    }
}

/// What a profile does to the erased set ([`ErasedSet::on_profile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileVerdict {
    /// The patient was not erased.
    NotErased,
    /// Written after the erasure: the id is registered again and the
    /// erasure is lifted (its durable record must be deleted).
    Lifted,
    /// Written before the erasure (its tombstone comes later in the log,
    /// or was already compacted away): ignored, the patient stays erased.
    Stale,
}

/// The erased patients: shared by the profile loader (writer) and the
/// processor (reader).
#[derive(Debug, Default)]
pub struct ErasedSet {
    erased: DashMap<u128, Option<Position>>,
    /// Every erasure in the order it was recorded; the processor follows it
    /// by index (its epoch), so each held partition purges each erasure.
    log: RwLock<Vec<PatientHash>>,
}

impl ErasedSet {
    /// Whether no patient is erased.
    pub fn is_empty(&self) -> bool {
        self.erased.is_empty()
    }

    /// Erased patients.
    pub fn len(&self) -> usize {
        self.erased.len()
    }

    /// Whether `hash` is erased.
    pub fn contains(&self, hash: PatientHash) -> bool {
        self.erased.contains_key(&hash.0)
    }

    /// Records an erasure at `position` (`None`: unknown). Returns whether
    /// this changed what is held (a new erasure, or another position): the
    /// durable record then needs (re)writing.
    pub fn insert(&self, hash: PatientHash, position: Option<Position>) -> bool {
        match self.erased.insert(hash.0, position) {
            None => {
                self.log
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(hash);
                true
            }
            Some(old) => old != position,
        }
    }

    /// A profile of the patient written at `position` (`None`: treated as
    /// the newest).
    pub fn on_profile(&self, hash: PatientHash, position: Option<Position>) -> ProfileVerdict {
        let Some(erased_at) = self.erased.get(&hash.0).map(|e| *e.value()) else {
            return ProfileVerdict::NotErased;
        };
        match (position, erased_at) {
            (Some(p), Some(e)) if !p.is_after(&e) => ProfileVerdict::Stale,
            _ => {
                self.erased.remove(&hash.0);
                ProfileVerdict::Lifted
            }
        }
    }

    /// Erasures recorded from index `epoch` on, and the index to ask from
    /// next time.
    pub fn since(&self, epoch: usize) -> (Vec<PatientHash>, usize) {
        let log = self.log.read().unwrap_or_else(PoisonError::into_inner);
        (log.get(epoch..).unwrap_or_default().to_vec(), log.len())
    }

    /// Every erased patient now.
    pub fn all(&self) -> Vec<PatientHash> {
        self.erased.iter().map(|e| PatientHash(*e.key())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> Option<Position> {
        Some(Position {
            partition,
            offset,
            timestamp_ms: offset * 10,
        })
    }

    #[test]
    fn a_profile_lifts_an_erasure_only_when_written_after_it() {
        let set = ErasedSet::default();
        let h = PatientHash(7);
        assert!(set.insert(h, at(0, 10)));
        assert!(!set.insert(h, at(0, 10)), "the same erasure again");
        assert!(set.insert(h, at(0, 11)), "another tombstone");
        assert_eq!(set.on_profile(h, at(0, 5)), ProfileVerdict::Stale);
        assert!(set.contains(h));
        assert_eq!(
            set.on_profile(h, at(1, 2)),
            ProfileVerdict::Stale,
            "older timestamp"
        );
        assert_eq!(set.on_profile(h, at(0, 12)), ProfileVerdict::Lifted);
        assert!(!set.contains(h));
        assert_eq!(set.on_profile(h, at(0, 13)), ProfileVerdict::NotErased);
    }

    #[test]
    fn the_log_hands_each_erasure_out_once_per_reader() {
        let set = ErasedSet::default();
        set.insert(PatientHash(1), None);
        let (first, epoch) = set.since(0);
        assert_eq!((first, epoch), (vec![PatientHash(1)], 1));
        set.insert(PatientHash(2), None);
        set.insert(PatientHash(1), at(0, 1));
        assert_eq!(set.since(epoch), (vec![PatientHash(2)], 2));
        assert_eq!(set.since(2).0, vec![]);
        assert_eq!(set.len(), 2);
    }
}
