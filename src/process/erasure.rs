//! Purging erased patients from a partition's state, by keyed hash
//! ([`crate::erasure`]): the ids of erased patients are not known any more,
//! only their hashes, so the state's patients are hashed and matched.
//!
//! The purge goes through the stores' own change tracking, so the next
//! changelog write tombstones every key the patient had (dedup entries and
//! the patient's HRV and alert state), whatever the changelog format.

use super::{FastSet, PartitionState};
use crate::erasure::{PatientHash, PatientHasher};

impl PartitionState {
    /// Removes every piece of state of the patients in `erased` (dedup
    /// entries, open HRV windows, alert history, readings awaiting
    /// confirmation, alerts not yet published) and records the changelog
    /// tombstones. Idempotent. Returns the entries dropped.
    pub fn purge_erased(&mut self, erased: &[PatientHash], hasher: &PatientHasher) -> usize {
        if erased.is_empty() {
            return 0;
        }
        let hashes: FastSet<u128> = erased.iter().map(|h| h.0).collect();
        let dedup_parts: FastSet<u64> = erased.iter().map(|h| h.dedup_part()).collect();
        let mut dropped = self.dedup.purge_where(|p| dedup_parts.contains(&p));
        let is_erased = |id: &str| hashes.contains(&hasher.hash(id.as_bytes()).0);
        let mut patients: Vec<String> = self
            .hrv
            .patient_ids()
            .chain(self.alerts.patient_ids())
            .filter(|id| is_erased(id))
            .map(str::to_owned)
            .collect();
        patients.sort_unstable();
        patients.dedup();
        for patient in &patients {
            dropped += self.hrv.purge_patient(patient) + self.alerts.purge_patient(patient);
        }
        dropped
    }
}
