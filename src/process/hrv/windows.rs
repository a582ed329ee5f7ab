//! Per-patient event-time tumbling windows of one input partition.
//!
//! Beat times are `measured_at + cumulative RR` (the first RR ends at
//! `measured_at + RR₀`), so one reading may span two windows. Windows are
//! `[k·window_ms, (k+1)·window_ms)`. The partition watermark is the newest beat
//! time seen in the partition minus `allowed_lateness_ms`; a window closes
//! once its end is at or below the watermark. Beats of a reading are routed
//! against the watermark as it was *before* that reading, so a reading is
//! never late with respect to itself.
//!
//! A beat whose window has already closed (end ≤ watermark) is *late*: it is
//! counted in [`AddOutcome::late`], in [`HrvWindows::late_beats_total`], and on
//! the next window emitted for that patient ([`HrvWindow::n_late`]). Beats are
//! buffered per window and sorted by beat time at close, so the metrics do not
//! depend on arrival order within the lateness bound nor on how beats are
//! split across readings.
//!
//! Non-positive RR values (impossible; the validator rejects them upstream)
//! carry no time: they do not advance the beat clock and are counted as
//! rejected in the window of the current beat time.

use std::collections::{BTreeMap, BTreeSet};

use super::super::{FastMap, FastSet};

use serde::{Deserialize, Serialize};

use crate::model::{HrvQuality, HrvWindow};

use super::config::{HrvConfig, HrvConfigError};
use super::filter::{Beat, filter_sorted};
use super::metrics;

/// What happened to the beats of one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOutcome {
    /// Beats buffered in open windows.
    pub buffered: u32,
    /// Beats for already-closed windows, excluded from every window.
    pub late: u32,
    /// Non-positive RR values, counted as rejected in their window.
    pub invalid: u32,
    /// Beats whose time is outside the representable window range.
    pub out_of_range: u32,
}

/// Beats and readings collected for one open window: what the state
/// changelog keeps per (patient, window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenWindow {
    #[serde(with = "super::beat_codec")]
    beats: Vec<Beat>,
    /// Non-positive RR values routed to this window.
    n_invalid: u32,
    reading_ids: Vec<String>,
}

/// One patient's open windows and unreported late beats. The changelog
/// keeps each open window under its own key (so a new beat rewrites one
/// window, not the patient) and the rest of this struct under the
/// patient's: the windows are skipped when it is serialised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HrvPatientState {
    /// Open windows by start.
    #[serde(skip)]
    windows: BTreeMap<i64, OpenWindow>,
    /// Late beats not yet reported on an emitted window.
    late_unreported: u32,
}

type PatientState = HrvPatientState;

/// The partition's scalar HRV state, for the changelog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HrvMeta {
    /// Newest beat time seen (the watermark is derived from it).
    pub max_event_ms: Option<i64>,
    /// Late beats counted so far.
    pub late_total: u64,
}

/// HRV window state of one input partition.
#[derive(Debug, Clone)]
pub struct HrvWindows {
    config: HrvConfig,
    patients: FastMap<String, PatientState>,
    /// Open windows by (end, patient): the closing order.
    by_end: BTreeSet<(i64, String)>,
    max_event_ms: Option<i64>,
    buffered_beats: usize,
    late_total: u64,
    /// Patients whose state changed since the last [`HrvWindows::take_dirty`].
    dirty: FastSet<String>,
}

impl HrvWindows {
    /// Empty state.
    ///
    /// # Errors
    /// [`HrvConfigError`] when the configuration does not validate.
    pub fn new(config: HrvConfig) -> Result<Self, HrvConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            patients: FastMap::default(),
            by_end: BTreeSet::new(),
            max_event_ms: None,
            buffered_beats: 0,
            late_total: 0,
            dirty: FastSet::default(),
        })
    }

    /// Patients whose state changed since the last call (for the changelog).
    pub fn take_dirty(&mut self) -> FastSet<String> {
        std::mem::take(&mut self.dirty)
    }

    /// A patient's state, `None` when nothing is held for them.
    pub fn patient_state(&self, patient_id: &str) -> Option<&HrvPatientState> {
        self.patients.get(patient_id)
    }

    /// Scalar state for the changelog.
    pub fn meta(&self) -> HrvMeta {
        HrvMeta {
            max_event_ms: self.max_event_ms,
            late_total: self.late_total,
        }
    }

    /// Restores the scalar state from the changelog.
    pub fn restore_meta(&mut self, meta: HrvMeta) {
        self.max_event_ms = meta.max_event_ms;
        self.late_total = meta.late_total;
    }

    /// A patient's open windows by start (for the changelog).
    pub fn patient_windows(&self, patient_id: &str) -> impl Iterator<Item = (i64, &OpenWindow)> {
        self.patients
            .get(patient_id)
            .into_iter()
            .flat_map(|s| s.windows.iter().map(|(start, w)| (*start, w)))
    }

    /// Restores a patient's state apart from its windows (`head`'s windows
    /// are ignored; those already restored are kept).
    pub fn restore_head(&mut self, patient_id: &str, head: HrvPatientState) {
        let state = self.patients.entry(patient_id.to_owned()).or_default();
        let windows = std::mem::take(&mut state.windows);
        *state = HrvPatientState { windows, ..head };
    }

    /// Restores one open window of a patient (replacing it).
    pub fn restore_window(&mut self, patient_id: &str, start: i64, window: OpenWindow) {
        self.forget_window(patient_id, start);
        let state = self.patients.entry(patient_id.to_owned()).or_default();
        self.buffered_beats += window.beats.len();
        state.windows.insert(start, window);
        self.by_end.insert((
            start.saturating_add(self.config.window_ms),
            patient_id.to_owned(),
        ));
    }

    /// Drops one restored window (its changelog key was deleted).
    pub fn forget_window(&mut self, patient_id: &str, start: i64) {
        let Some(state) = self.patients.get_mut(patient_id) else {
            return;
        };
        if let Some(old) = state.windows.remove(&start) {
            self.buffered_beats -= old.beats.len();
            self.by_end.remove(&(
                start.saturating_add(self.config.window_ms),
                patient_id.to_owned(),
            ));
        }
    }

    /// Ends a restore: drops patients left with nothing held and forgets
    /// what restoring marked as changed.
    pub fn finish_restore(&mut self) {
        self.patients
            .retain(|_, s| !s.windows.is_empty() || *s != HrvPatientState::default());
        self.dirty.clear();
    }

    /// Restores a patient's state from the changelog (replacing any).
    pub fn restore_patient(&mut self, patient_id: &str, state: HrvPatientState) {
        self.purge_patient(patient_id);
        self.dirty.remove(patient_id);
        for (start, window) in &state.windows {
            self.by_end.insert((
                start.saturating_add(self.config.window_ms),
                patient_id.to_owned(),
            ));
            self.buffered_beats += window.beats.len();
        }
        self.patients.insert(patient_id.to_owned(), state);
    }

    /// The configuration in force.
    pub fn config(&self) -> &HrvConfig {
        &self.config
    }

    /// Adds the RR intervals of one reading (`rr_ms` in beat order starting at
    /// `measured_at_ms`) and advances the watermark. Call [`Self::advance`]
    /// afterwards (per reading or per batch) to collect closed windows.
    ///
    /// Readings must be deduplicated upstream: the same reading added twice
    /// yields duplicate beat times, which the filter rejects.
    pub fn add_reading(
        &mut self,
        patient_id: &str,
        reading_id: &str,
        measured_at_ms: i64,
        rr_ms: &[i32],
    ) -> AddOutcome {
        let mut out = AddOutcome::default();
        if rr_ms.is_empty() {
            return out;
        }
        if !self.dirty.contains(patient_id) {
            self.dirty.insert(patient_id.to_owned());
        }
        let watermark = self.watermark_ms();
        let window_ms = self.config.window_ms;
        // One lookup per reading; the key is allocated only for a new patient.
        if !self.patients.contains_key(patient_id) {
            self.patients
                .insert(patient_id.to_owned(), PatientState::default());
        }
        let Some(state) = self.patients.get_mut(patient_id) else {
            return out;
        };
        let mut t = measured_at_ms;
        let mut newest: Option<i64> = None;
        let mut current: Option<(i64, &mut OpenWindow)> = None;
        for &rr in rr_ms {
            let valid = rr > 0;
            if valid {
                match t.checked_add(i64::from(rr)) {
                    Some(next) => t = next,
                    None => {
                        out.out_of_range = out.out_of_range.saturating_add(1);
                        continue;
                    }
                }
            }
            let Some((start, end)) = window_of(t, window_ms) else {
                out.out_of_range = out.out_of_range.saturating_add(1);
                continue;
            };
            if watermark.is_some_and(|wm| end <= wm) {
                out.late = out.late.saturating_add(1);
                continue;
            }
            // Consecutive beats mostly share a window: look it up only when
            // the window changes.
            if current.as_ref().is_none_or(|(s, _)| *s != start) {
                let by_end = &mut self.by_end;
                let window = state.windows.entry(start).or_insert_with(|| {
                    by_end.insert((end, patient_id.to_owned()));
                    OpenWindow::default()
                });
                if window.reading_ids.last().is_none_or(|id| id != reading_id) {
                    window.reading_ids.push(reading_id.to_owned());
                }
                current = Some((start, window));
            }
            let Some((_, window)) = current.as_mut() else {
                continue;
            };
            if valid {
                window.beats.push(Beat { t_ms: t, rr_ms: rr });
                out.buffered = out.buffered.saturating_add(1);
                newest = Some(t);
            } else {
                window.n_invalid = window.n_invalid.saturating_add(1);
                out.invalid = out.invalid.saturating_add(1);
            }
        }
        state.late_unreported = state.late_unreported.saturating_add(out.late);
        if state.windows.is_empty() && state.late_unreported == 0 {
            self.patients.remove(patient_id);
        }
        self.late_total = self.late_total.saturating_add(u64::from(out.late));
        self.buffered_beats += out.buffered as usize;
        if let Some(n) = newest {
            self.max_event_ms = Some(self.max_event_ms.map_or(n, |m| m.max(n)));
        }
        out
    }

    /// Closes every window whose end is at or below the watermark, in
    /// (window end, patient id) order.
    pub fn advance(&mut self) -> Vec<HrvWindow> {
        let Some(wm) = self.watermark_ms() else {
            return Vec::new();
        };
        let mut closed = Vec::new();
        while let Some(first) = self.by_end.first() {
            if first.0 > wm {
                break;
            }
            if let Some((end, patient)) = self.by_end.pop_first() {
                closed.extend(self.close(&patient, end));
            }
        }
        closed
    }

    /// Closes every open window regardless of the watermark (end of input,
    /// shutdown, partition revoked), in (window end, patient id) order.
    pub fn flush_all(&mut self) -> Vec<HrvWindow> {
        let keys = std::mem::take(&mut self.by_end);
        keys.into_iter()
            .filter_map(|(end, patient)| self.close(&patient, end))
            .collect()
    }

    /// Erases everything held for a patient (account deletion): open windows,
    /// their beats and reading ids, and the unreported late count. Returns the
    /// number of buffered beats dropped.
    pub fn purge_patient(&mut self, patient_id: &str) -> usize {
        let Some(state) = self.patients.remove(patient_id) else {
            return 0;
        };
        self.dirty.insert(patient_id.to_owned());
        let mut dropped = 0;
        for (start, window) in state.windows {
            let end = start.saturating_add(self.config.window_ms);
            self.by_end.remove(&(end, patient_id.to_owned()));
            dropped += window.beats.len();
        }
        self.buffered_beats -= dropped;
        dropped
    }

    /// Current watermark: newest beat time seen minus the allowed lateness;
    /// `None` before the first beat.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.max_event_ms
            .map(|m| m.saturating_sub(self.config.allowed_lateness_ms))
    }

    /// Open windows across all patients.
    pub fn open_windows(&self) -> usize {
        self.by_end.len()
    }

    /// Beats buffered in open windows.
    pub fn buffered_beats(&self) -> usize {
        self.buffered_beats
    }

    /// Patients with open windows or unreported late beats.
    pub fn patients(&self) -> usize {
        self.patients.len()
    }

    /// Late beats since this state was created.
    pub fn late_beats_total(&self) -> u64 {
        self.late_total
    }

    /// Late beats of `patient_id` not yet reported on an emitted window.
    pub fn late_beats_unreported(&self, patient_id: &str) -> u32 {
        self.patients
            .get(patient_id)
            .map_or(0, |s| s.late_unreported)
    }

    /// Removes the window ending at `end` of `patient` and computes its output.
    fn close(&mut self, patient: &str, end: i64) -> Option<HrvWindow> {
        let start = end.checked_sub(self.config.window_ms)?;
        let state = self.patients.get_mut(patient)?;
        if !self.dirty.contains(patient) {
            self.dirty.insert(patient.to_owned());
        }
        let mut window = state.windows.remove(&start)?;
        let n_late = std::mem::take(&mut state.late_unreported);
        if state.windows.is_empty() {
            self.patients.remove(patient);
        }
        self.buffered_beats -= window.beats.len();
        window.beats.sort_unstable();
        window.reading_ids.sort_unstable();
        window.reading_ids.dedup();
        let filter = self.config.artifact_filter;
        let sums = filter_sorted(&window.beats, filter);
        let m = metrics::compute(&sums, self.config.min_nn_duration_ms);
        Some(HrvWindow {
            patient_id: patient.to_owned(),
            window_start_ms: start,
            window_end_ms: end,
            artifact_filter: filter,
            quality: if m.is_some() {
                HrvQuality::Ok
            } else {
                HrvQuality::Insufficient
            },
            n_beats: sums.n,
            n_rejected: sums.n_rejected.saturating_add(window.n_invalid),
            n_late,
            mean_nn_ms: m.map(|m| m.mean_nn_ms),
            sdnn_ms: m.map(|m| m.sdnn_ms),
            rmssd_ms: m.map(|m| m.rmssd_ms),
            pnn50_pct: m.map(|m| m.pnn50_pct),
            mean_hr_bpm: m.map(|m| m.mean_hr_bpm),
            reading_ids: window.reading_ids,
        })
    }
}

/// `[start, end)` of the window holding time `t`, if representable.
fn window_of(t: i64, window_ms: i64) -> Option<(i64, i64)> {
    let start = t.div_euclid(window_ms).checked_mul(window_ms)?;
    Some((start, start.checked_add(window_ms)?))
}
