//! [`AlertEngine`]: runs the rule table over one partition's accepted
//! readings and closed HRV windows and collects [`ClinicianAlert`]s.
//!
//! Consent first: a patient who is not RPM-enrolled with consent to
//! clinician sharing is not evaluated and nothing is remembered for them
//! (what was remembered is forgotten). Then every observation of a reading
//! goes through every rule of its signal; candidate alerts pass the
//! per-(patient, rule) cool-down and get a deterministic id.

use std::collections::BTreeMap;

use compact_str::CompactString;

use super::super::FastMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use super::AlertsConfig;
use super::history::{Cooldowns, PatientHistory, Retention, Sample};
use super::observe::{Evidence, Observation, observations};
use super::rules::{RULES, RuleDef, Signal, Trigger, history_ms, recent_needed};
use crate::model::{
    AlertRule, ClinicianAlert, HrvQuality, HrvWindow, PatientProfile, RawReading, SCREENING_NOTE,
    Severity,
};
use crate::process::Checked;

/// One entry of a patient's alert state: the unit the state changelog
/// writes (one key each), so a new sample is written alone, not the
/// patient's whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertEntry {
    /// That the patient has alert state, and their rules' cool-downs.
    Head,
    /// The samples of one reading, in a slot that later readings reuse.
    Slot(u16),
    /// The baseline sum of a signal for the hour starting at (ms).
    Baseline(Signal, i64),
    /// The reading of a rule waiting for its repeat.
    Pending(AlertRule),
}

/// A patient's changed entries: usually a reading's slot, perhaps the head.
pub type DirtyEntries = smallvec::SmallVec<[AlertEntry; 2]>;

/// A reading beyond a [`Trigger::Confirmed`] rule, waiting for its repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    first: Sample,
    observed: Decimal,
    threshold: Decimal,
    care_team: Vec<String>,
    /// Processing clock when it started waiting.
    since_ms: i64,
}

/// An alert before cool-down and id.
struct Candidate {
    def: &'static RuleDef,
    severity: Severity,
    observed: Decimal,
    threshold: Decimal,
    evidence: Vec<String>,
    t_ms: i64,
}

/// Alert state and output of one input partition.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    cfg: AlertsConfig,
    patients: FastMap<CompactString, PatientHistory>,
    // Ordered: readings settled together are published in a fixed order.
    /// Readings waiting for a confirming repeat, by patient, then rule.
    pending: BTreeMap<String, BTreeMap<AlertRule, Pending>>,
    retention: [Retention; Signal::COUNT],
    /// Signals kept as hourly baseline sums, not samples.
    baseline: [bool; Signal::COUNT],
    out: Vec<ClinicianAlert>,
    suppressed: [u64; AlertRule::ALL.len()],
    /// Entries changed since the last [`AlertEngine::take_dirty`], by patient.
    dirty: FastMap<CompactString, DirtyEntries>,
}

impl AlertEngine {
    /// An engine with no history.
    pub fn new(cfg: AlertsConfig) -> Self {
        let mut retention = [Retention::default(); Signal::COUNT];
        let mut baseline = [false; Signal::COUNT];
        for def in &RULES {
            retention[def.signal as usize] = Retention {
                span_ms: history_ms(def.signal),
                keep_last: recent_needed(def.signal),
            };
            baseline[def.signal as usize] |= matches!(def.trigger, Trigger::BelowBaseline { .. });
        }
        Self {
            cfg,
            patients: FastMap::default(),
            pending: BTreeMap::new(),
            retention,
            baseline,
            out: Vec::new(),
            suppressed: [0; AlertRule::ALL.len()],
            dirty: FastMap::default(),
        }
    }

    /// The entries changed since the last call, by patient (for the
    /// changelog): each is now as [`AlertEngine::cooldowns`],
    /// [`AlertEngine::slot_samples`], [`AlertEngine::bucket`] and
    /// [`AlertEngine::pending_of`] say, absent when they find nothing.
    pub fn take_dirty(&mut self) -> FastMap<CompactString, DirtyEntries> {
        // The batch's shared slots are taken now: later readings start new ones.
        for patient in self.dirty.keys() {
            if let Some(h) = self.patients.get_mut(patient.as_str()) {
                h.close_slot();
            }
        }
        // The next batch's set starts at this one's size: no growth on the
        // way (patient ids up to 24 bytes and two entries are inline).
        let n = self.dirty.len();
        std::mem::replace(
            &mut self.dirty,
            FastMap::with_capacity_and_hasher(n, Default::default()),
        )
    }

    /// The patients with state held (history, readings awaiting
    /// confirmation, or alerts not yet taken).
    pub fn patient_ids(&self) -> impl Iterator<Item = &str> {
        self.patients
            .keys()
            .map(CompactString::as_str)
            .chain(self.pending.keys().map(String::as_str))
            .chain(self.out.iter().map(|a| a.patient_id.as_str()))
    }

    /// The cool-downs of a patient with alert state (`None`: nothing held).
    pub fn cooldowns(&self, patient_id: &str) -> Option<Cooldowns> {
        self.patients.get(patient_id).map(PatientHistory::cooldowns)
    }

    /// A patient's history, for tests comparing engines.
    #[cfg(test)]
    pub(crate) fn history(&self, patient_id: &str) -> Option<&PatientHistory> {
        self.patients.get(patient_id)
    }

    /// A patient's samples in changelog slot `slot` (those of one reading).
    pub fn slot_samples(&self, patient_id: &str, slot: u16) -> impl Iterator<Item = &Sample> {
        self.patients
            .get(patient_id)
            .into_iter()
            .flat_map(move |h| h.slot_samples(slot))
    }

    /// A patient's baseline sum and count of `signal` for one hour.
    pub fn bucket(&self, patient_id: &str, signal: Signal, hour_ms: i64) -> Option<(Decimal, u32)> {
        self.patients.get(patient_id)?.bucket(signal, hour_ms)
    }

    /// A patient's reading waiting for a repeat under `rule`.
    pub fn pending_of(&self, patient_id: &str, rule: AlertRule) -> Option<&Pending> {
        self.pending.get(patient_id)?.get(&rule)
    }

    /// Restores a patient's cool-downs from the changelog: the patient has
    /// alert state from now on.
    pub fn restore_cooldowns(&mut self, patient_id: &str, cooldowns: Cooldowns) {
        self.history_mut(patient_id).restore_cooldowns(cooldowns);
    }

    /// Restores the record of one slot of a patient (the samples of one
    /// reading), replacing what the slot held.
    pub fn restore_slot(
        &mut self,
        patient_id: &str,
        slot: u16,
        samples: impl IntoIterator<Item = Sample>,
    ) {
        self.history_mut(patient_id).restore_slot(slot, samples);
    }

    /// Restores one hour's baseline sum of a patient.
    pub fn restore_bucket(
        &mut self,
        patient_id: &str,
        signal: Signal,
        hour_ms: i64,
        (sum, count): (Decimal, u32),
    ) {
        self.history_mut(patient_id)
            .restore_bucket(signal, hour_ms, sum, count);
    }

    /// Restores a reading waiting for its repeat.
    pub fn restore_pending(&mut self, patient_id: &str, rule: AlertRule, pending: Pending) {
        self.history_mut(patient_id);
        self.pending
            .entry(patient_id.to_owned())
            .or_default()
            .insert(rule, pending);
    }

    /// Drops the restored samples of a patient's slot (its record was
    /// deleted).
    pub fn forget_slot(&mut self, patient_id: &str, slot: u16) {
        if let Some(h) = self.patients.get_mut(patient_id) {
            h.forget_slot(slot);
        }
    }

    /// Drops a restored hour's baseline sum (its record was deleted).
    pub fn forget_bucket(&mut self, patient_id: &str, signal: Signal, hour_ms: i64) {
        if let Some(h) = self.patients.get_mut(patient_id) {
            h.forget_bucket(signal, hour_ms);
        }
    }

    /// Drops a restored waiting reading (its record was deleted).
    pub fn forget_pending(&mut self, patient_id: &str, rule: AlertRule) {
        self.take_pending(patient_id, rule);
    }

    /// Ends a restore: drops the samples that had left their look-back
    /// when their slot's record was written (their records stay until the
    /// slot is reused) and forgets what restoring marked as changed.
    pub fn finish_restore(&mut self) {
        for history in self.patients.values_mut() {
            history.prune_restored(&self.retention);
            // A restore appends sample after sample: give back the growth slack.
            history.shrink_to_fit();
        }
        self.dirty.clear();
    }

    fn history_mut(&mut self, patient_id: &str) -> &mut PatientHistory {
        if !self.patients.contains_key(patient_id) {
            self.patients
                .insert(patient_id.into(), PatientHistory::default());
        }
        self.patients
            .get_mut(patient_id)
            .expect("inserted just above")
    }

    /// Marks `entry` of `patient_id` as changed.
    fn touch(&mut self, patient_id: &str, entry: AlertEntry) {
        let entries = match self.dirty.get_mut(patient_id) {
            Some(entries) => entries,
            None => self.dirty.entry(patient_id.into()).or_default(),
        };
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }

    /// Runs the rules over an accepted reading of `profile`'s patient,
    /// leaving out the secondary values `checked` found implausible.
    /// `now_ms` is the processing clock (for the confirmation wait only).
    pub fn observe_reading(
        &mut self,
        reading: &RawReading<'_>,
        checked: Checked,
        profile: &PatientProfile,
        now_ms: i64,
    ) {
        if !self.admit(profile) {
            return;
        }
        // The reading's samples share one changelog slot.
        let mut slot = None;
        for obs in observations(reading, checked).into_iter().flatten() {
            self.observe(&obs, profile, now_ms, &mut slot);
        }
    }

    /// Runs the rules over a closed HRV window of `profile`'s patient.
    pub fn observe_window(&mut self, window: &HrvWindow, profile: &PatientProfile, now_ms: i64) {
        if !self.admit(profile) || window.quality != HrvQuality::Ok {
            return;
        }
        if let Some(rmssd) = window.rmssd_ms {
            let obs = Observation {
                signal: Signal::Rmssd,
                t_ms: window.window_end_ms,
                value: rmssd,
                secondary: None,
                evidence: Evidence::Many(&window.reading_ids),
            };
            self.observe(&obs, profile, now_ms, &mut None);
        }
    }

    /// Publishes, unconfirmed, every waiting reading whose confirmation wait
    /// on the processing clock is over.
    pub fn expire(&mut self, now_ms: i64) {
        let due: Vec<(String, AlertRule)> = self
            .pending_keys()
            .filter(|(_, _, p)| now_ms.saturating_sub(p.since_ms) >= self.cfg.confirm_wait_ms)
            .map(|(patient, rule, _)| (patient.to_owned(), rule))
            .collect();
        for (patient, rule) in due {
            self.resolve_unconfirmed(&patient, rule);
        }
    }

    /// Publishes every waiting reading unconfirmed (the partition is being
    /// given up, or the process stops): an alert is never lost for want of
    /// its repeat.
    pub fn flush(&mut self) {
        let all: Vec<(String, AlertRule)> = self
            .pending_keys()
            .map(|(patient, rule, _)| (patient.to_owned(), rule))
            .collect();
        for (patient, rule) in all {
            self.resolve_unconfirmed(&patient, rule);
        }
    }

    /// Every waiting reading, in (patient, rule) order.
    fn pending_keys(&self) -> impl Iterator<Item = (&str, AlertRule, &Pending)> {
        self.pending.iter().flat_map(|(patient, rules)| {
            rules
                .iter()
                .map(move |(rule, p)| (patient.as_str(), *rule, p))
        })
    }

    /// Removes and returns the reading of `patient` waiting under `rule`.
    fn take_pending(&mut self, patient: &str, rule: AlertRule) -> Option<Pending> {
        let rules = self.pending.get_mut(patient)?;
        let p = rules.remove(&rule)?;
        if rules.is_empty() {
            self.pending.remove(patient);
        }
        self.touch(patient, AlertEntry::Pending(rule));
        Some(p)
    }

    /// Alerts produced since the last call.
    pub fn take_alerts(&mut self) -> Vec<ClinicianAlert> {
        std::mem::take(&mut self.out)
    }

    /// Alerts held back by a cool-down since the last call, per rule.
    pub fn take_suppressed(&mut self) -> [u64; AlertRule::ALL.len()] {
        std::mem::take(&mut self.suppressed)
    }

    /// Forgets everything held for `patient_id` (erasure, consent withdrawn),
    /// including readings waiting for confirmation and alerts not yet taken.
    /// Returns the entries dropped.
    pub fn purge_patient(&mut self, patient_id: &str) -> usize {
        // Every entry the changelog holds for the patient is deleted.
        // Every slot ever written, including those whose samples left the
        // look-back (their records stay until the slot is reused).
        let mut gone = Vec::new();
        if let Some(h) = self.patients.get(patient_id) {
            gone.push(AlertEntry::Head);
            gone.extend((0..h.slots()).map(AlertEntry::Slot));
            gone.extend(h.buckets_held().map(|(s, t)| AlertEntry::Baseline(s, t)));
        }
        if let Some(rules) = self.pending.get(patient_id) {
            gone.extend(rules.keys().map(|r| AlertEntry::Pending(*r)));
        }
        for entry in gone {
            self.touch(patient_id, entry);
        }
        let history = self.patients.remove(patient_id).map_or(0, |h| h.entries());
        let pending = self
            .pending
            .remove(patient_id)
            .map_or(0, |rules| rules.len());
        let out = self.out.len();
        self.out.retain(|a| a.patient_id != patient_id);
        history + pending + (out - self.out.len())
    }

    /// Drops, unpublished, the waiting readings and untaken alerts of
    /// patients for whom `consented` is false (consent withdrawn, RPM
    /// ended, profile erased), with their history.
    pub fn drop_unconsented(&mut self, consented: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .pending
            .keys()
            .chain(self.out.iter().map(|a| &a.patient_id))
            .filter(|p| !consented(p))
            .cloned()
            .collect();
        for patient in gone {
            self.purge_patient(&patient);
        }
    }

    /// Patients with alert history.
    pub fn patients(&self) -> usize {
        self.patients.len()
    }

    /// Readings waiting for a confirming repeat.
    pub fn pending(&self) -> usize {
        self.pending.values().map(BTreeMap::len).sum()
    }

    fn admit(&mut self, profile: &PatientProfile) -> bool {
        let consented = profile.rpm_enrolled && profile.consent_clinician_sharing;
        if !self.cfg.enabled || !consented {
            if self.patients.contains_key(profile.patient_id.as_str()) {
                self.purge_patient(&profile.patient_id);
            }
            return false;
        }
        true
    }

    /// Runs the rules of `obs`'s signal and remembers it, in `slot` (the
    /// reading's, chosen by its first sample kept).
    fn observe(
        &mut self,
        obs: &Observation<'_>,
        profile: &PatientProfile,
        now_ms: i64,
        slot: &mut Option<u16>,
    ) {
        let patient = profile.patient_id.as_str();
        self.settle_passed(patient, obs.t_ms);
        if !self.patients.contains_key(patient) {
            self.patients
                .insert(patient.into(), PatientHistory::default());
            self.touch(patient, AlertEntry::Head);
        }
        let mut candidates = Vec::new();
        for def in RULES.iter().filter(|d| d.signal == obs.signal) {
            let threshold = def.threshold_with(profile.threshold_for(def.rule.as_str()));
            if let Trigger::Confirmed {
                within_ms,
                confirmed,
            } = def.trigger
            {
                candidates.extend(
                    self.confirm(def, threshold, obs, profile, now_ms, within_ms, confirmed),
                );
            } else if let Some(history) = self.patients.get(patient) {
                candidates.extend(evaluate(def, threshold, obs, history));
            }
        }
        let keep = self.retention[obs.signal as usize];
        let mut changed = Vec::new();
        let baseline = self.baseline[obs.signal as usize];
        let mut written = None;
        if let Some(history) = self.patients.get_mut(patient) {
            if !baseline && (keep.keep_last > 0 || keep.span_ms > 0) {
                let s = *slot.get_or_insert_with(|| history.slot_for_reading());
                let mut sample = obs.sample();
                sample.slot = s;
                // A sample that leaves at once (a late one) needs no record;
                // those leaving the look-back keep theirs until the slot is
                // reused.
                if history.record(sample, keep) {
                    history.open_slot(s);
                    written = Some(s);
                }
            }
            if baseline {
                history.add_to_baseline(
                    obs.signal,
                    obs.t_ms,
                    obs.value,
                    keep.span_ms,
                    &mut changed,
                );
            }
        }
        if let Some(s) = written {
            self.touch(patient, AlertEntry::Slot(s));
        }
        for t in changed {
            self.touch(patient, AlertEntry::Baseline(obs.signal, t));
        }
        for c in candidates {
            self.emit(patient, &profile.care_team, c);
        }
    }

    /// The [`Trigger::Confirmed`] step: confirm a waiting reading (or one
    /// already published unconfirmed, whose repeat came late), settle it
    /// unconfirmed, or start waiting.
    #[allow(clippy::too_many_arguments)]
    fn confirm(
        &mut self,
        def: &'static RuleDef,
        threshold: Decimal,
        obs: &Observation<'_>,
        profile: &PatientProfile,
        now_ms: i64,
        within_ms: i64,
        confirmed: Severity,
    ) -> Option<Candidate> {
        let patient = profile.patient_id.as_str();
        let beyond = tripped(def, threshold, obs.value, obs.secondary);
        let waiting = self
            .pending
            .get(patient)
            .and_then(|rules| rules.get(&def.rule));
        if let Some(p) = waiting {
            let close = obs.t_ms.abs_diff(p.first.t_ms) <= within_ms.unsigned_abs();
            if let (true, Some((observed, limit))) = (close, beyond) {
                let p = self.take_pending(patient, def.rule)?;
                return Some(confirmed_pair(
                    def, confirmed, observed, limit, &p.first, obs,
                ));
            }
            // A repeat that is not beyond, or one too far apart: the
            // waiting reading stays unconfirmed.
            self.resolve_unconfirmed(patient, def.rule);
        }
        let (observed, limit) = beyond?;
        // The first of the pair may have been published unconfirmed
        // already (the repeat came late: a delayed upload): the pair still
        // confirms it, by event time, and the higher severity passes the
        // cool-down of the unconfirmed alert.
        let earlier = self.patients.get(patient).and_then(|h| {
            h.samples(def.signal).iter().rev().find(|s| {
                s.t_ms.abs_diff(obs.t_ms) <= within_ms.unsigned_abs()
                    && tripped(def, threshold, s.value(), s.secondary()).is_some()
            })
        });
        if let Some(first) = earlier {
            return Some(confirmed_pair(def, confirmed, observed, limit, first, obs));
        }
        self.touch(patient, AlertEntry::Pending(def.rule));
        self.pending.entry(patient.to_owned()).or_default().insert(
            def.rule,
            Pending {
                first: obs.sample(),
                observed,
                threshold: limit,
                care_team: profile.care_team.clone(),
                since_ms: now_ms,
            },
        );
        None
    }

    /// Settles, unconfirmed, the patient's waiting readings whose repeat
    /// window a newer observation (at `t_ms`) has left behind.
    fn settle_passed(&mut self, patient: &str, t_ms: i64) {
        let Some(rules) = self.pending.get(patient) else {
            return;
        };
        let passed: Vec<AlertRule> = rules
            .iter()
            .filter(|(rule, pending)| match RULES[**rule as usize].trigger {
                Trigger::Confirmed { within_ms, .. } => {
                    t_ms > pending.first.t_ms.saturating_add(within_ms)
                }
                _ => true,
            })
            .map(|(rule, _)| *rule)
            .collect();
        for rule in passed {
            self.resolve_unconfirmed(patient, rule);
        }
    }

    fn resolve_unconfirmed(&mut self, patient: &str, rule: AlertRule) {
        let Some(p) = self.take_pending(patient, rule) else {
            return;
        };
        let def = &RULES[rule as usize];
        let candidate = Candidate {
            def,
            severity: def.severity,
            observed: p.observed,
            threshold: p.threshold,
            evidence: vec![p.first.reading_id.to_string()],
            t_ms: p.first.t_ms,
        };
        self.emit(patient, &p.care_team, candidate);
    }

    fn emit(&mut self, patient: &str, care_team: &[String], c: Candidate) {
        let rule = c.def.rule;
        let cooldown_ms = self.cfg.cooldown_ms;
        let history = self.history_mut(patient);
        if history.cooling_down(rule, c.t_ms, c.severity, cooldown_ms) {
            self.suppressed[rule as usize] += 1;
            return;
        }
        history.start_cooldown(rule, c.t_ms, c.severity);
        self.touch(patient, AlertEntry::Head);
        self.out.push(ClinicianAlert {
            alert_id: alert_id(patient, rule, c.severity, &c.evidence),
            patient_id: patient.to_owned(),
            care_team: care_team.to_vec(),
            rule,
            severity: c.severity,
            observed: c.observed.round_dp(3),
            threshold: c.threshold.round_dp(3),
            unit: c.def.unit.to_owned(),
            evidence_reading_ids: c.evidence,
            event_time_ms: c.t_ms,
            note: SCREENING_NOTE.to_owned(),
        });
    }
}

/// A confirmed alert on `first` and the repeat `obs`: evidence in event-time
/// order, event time the later of the two.
fn confirmed_pair(
    def: &'static RuleDef,
    severity: Severity,
    observed: Decimal,
    threshold: Decimal,
    first: &Sample,
    obs: &Observation<'_>,
) -> Candidate {
    let (a, b) = if first.t_ms <= obs.t_ms {
        (first.reading_id.to_string(), obs.last_id().to_owned())
    } else {
        (obs.last_id().to_owned(), first.reading_id.to_string())
    };
    Candidate {
        def,
        severity,
        observed,
        threshold,
        evidence: vec![a, b],
        t_ms: obs.t_ms.max(first.t_ms),
    }
}

/// `(observed, threshold)` of whichever value is beyond its limit, the
/// primary (systolic) first.
fn tripped(
    def: &RuleDef,
    threshold: Decimal,
    value: Decimal,
    secondary: Option<Decimal>,
) -> Option<(Decimal, Decimal)> {
    if def.direction.beyond(value, threshold) {
        return Some((value, threshold));
    }
    match (secondary, def.secondary) {
        (Some(v), Some(t)) if def.direction.beyond(v, t) => Some((v, t)),
        _ => None,
    }
}

/// Evaluates the history-based triggers against `history` (which does not
/// hold `obs` yet).
fn evaluate(
    def: &'static RuleDef,
    threshold: Decimal,
    obs: &Observation<'_>,
    history: &PatientHistory,
) -> Option<Candidate> {
    let candidate = |observed, threshold, evidence| Candidate {
        def,
        severity: def.severity,
        observed,
        threshold,
        evidence,
        t_ms: obs.t_ms,
    };
    match def.trigger {
        Trigger::Single => tripped(def, threshold, obs.value, obs.secondary)
            .map(|(o, t)| candidate(o, t, obs.evidence.to_vec())),
        Trigger::Sustained {
            readings,
            within_ms,
            min_apart_ms,
        } => {
            let (observed, limit) = tripped(def, threshold, obs.value, obs.secondary)?;
            let samples = history.samples(def.signal);
            // A late observation does not re-decide what newer ones decided.
            if samples.last().is_some_and(|s| s.t_ms > obs.t_ms) {
                return None;
            }
            let earlier = || {
                samples
                    .iter()
                    .rev()
                    .filter(|s| obs.t_ms - s.t_ms >= min_apart_ms)
                    .take(readings - 1)
            };
            let mut counted = 0;
            let all_beyond = earlier().all(|s| {
                counted += 1;
                tripped(def, threshold, s.value(), s.secondary()).is_some()
                    && obs.t_ms - s.t_ms <= within_ms
            }) && counted == readings - 1;
            all_beyond.then(|| {
                let mut evidence: Vec<String> =
                    earlier().map(|s| s.reading_id.to_string()).collect();
                evidence.reverse();
                evidence.push(obs.last_id().to_owned());
                candidate(observed, limit, evidence)
            })
        }
        Trigger::SincePrevious { from_ms, to_ms } => {
            let previous = history.newest_between(
                def.signal,
                obs.t_ms.saturating_sub(to_ms),
                obs.t_ms.saturating_sub(from_ms),
            )?;
            let rise = obs.value - previous.value();
            def.direction.beyond(rise, threshold).then(|| {
                candidate(
                    rise,
                    threshold,
                    vec![previous.reading_id.to_string(), obs.last_id().to_owned()],
                )
            })
        }
        Trigger::RiseOver { window_ms } => {
            let low = history.lowest_before(def.signal, obs.t_ms, window_ms)?;
            let rise = obs.value - low.value();
            def.direction.beyond(rise, threshold).then(|| {
                candidate(
                    rise,
                    threshold,
                    vec![low.reading_id.to_string(), obs.last_id().to_owned()],
                )
            })
        }
        Trigger::BelowBaseline {
            window_ms,
            min_samples,
        } => {
            let (mean, count) = history.baseline(def.signal, obs.t_ms, window_ms)?;
            let limit = (threshold * mean).round_dp(3);
            (count >= min_samples && def.direction.beyond(obs.value, limit))
                .then(|| candidate(obs.value, limit, obs.evidence.to_vec()))
        }
        // Handled with the waiting state in `AlertEngine::confirm`.
        Trigger::Confirmed { .. } => None,
    }
}

/// Deterministic alert id: a 128-bit hash of patient, rule, severity and the
/// sorted evidence ids, as 32 hex digits. A replay of the same readings
/// yields the same id, so consumers can drop a repeated alert.
pub fn alert_id(patient: &str, rule: AlertRule, severity: Severity, evidence: &[String]) -> String {
    let mut sorted: Vec<&str> = evidence.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut h = Xxh3::new();
    // Field separators keep ("ab","c") and ("a","bc") apart.
    for part in [patient, rule.as_str(), severity.as_str()]
        .into_iter()
        .chain(sorted)
    {
        h.update(part.as_bytes());
        h.update(&[0x1f]);
    }
    format!("{:032x}", h.digest128())
}
