//! Per-patient event-time tumbling windows of one input partition.
//!
//! Beat times are `measured_at + cumulative RR` (the first RR ends at
//! `measured_at + RR₀`), so one reading may span two windows. Windows are
//! `[k·window_ms, (k+1)·window_ms)`.
//!
//! Event time is kept **per patient** (DESIGN.md §4): every device has its
//! own clock and upload rhythm, so one patient's watch running fast must not
//! make another patient's beats late. A patient's watermark is their newest
//! beat time minus `allowed_lateness_ms`; their window closes as soon as it
//! passes the window's end. Beats of a reading are routed against the
//! watermark as it was *before* that reading, so a reading is never late with
//! respect to itself.
//!
//! A patient who goes silent has their windows closed by the partition's
//! event time (the newest event time of any accepted reading, see
//! [`HrvWindows::observe_event_time`]): once it is `idle_close_ms` past both
//! the window's end and the partition event time when the patient's last
//! reading arrived. Event time, so a replay gives the same output; measured
//! from the patient's last arrival too, so a watch uploading hours of backlog
//! after a day away from its phone is not cut off after its first reading.
//!
//! A beat of a window already closed for its patient is *late*: counted in
//! [`AddOutcome::late`], in [`HrvWindows::late_beats_total`], and on the next
//! window emitted for that patient ([`HrvWindow::n_late`]). Beats are buffered
//! per window and sorted by beat time at close, so the metrics do not depend
//! on arrival order within the lateness bound nor on how beats are split
//! across readings.
//!
//! RR values outside the plausible range ([`HrvWindows::set_plausible_rr`])
//! stay part of the recording: a positive one still advances the beat clock,
//! and every one is counted as rejected in the window of its beat time, so no
//! successive difference bridges it. Non-positive values carry no time.

use std::collections::BTreeSet;

use super::super::{FastMap, FastSet};

use serde::{Deserialize, Serialize};

use crate::model::{HrvQuality, HrvWindow};

use super::config::{HrvConfig, HrvConfigError};
use super::filter::{Beat, filter_sorted};
use super::metrics;
use super::open_window::{ChunkWriter, OpenWindow, WindowBeat, WindowChunk};

/// How long, in partition event time after a patient's newest beat, their
/// event-time record (watermark, last closed window) is kept once they have
/// no open window. Readings older than the dedup horizon (default 24 h) are
/// `too_old` anyway; a reading for a window forgotten after that opens it
/// anew.
const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// What happened to the beats of one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOutcome {
    /// Beats buffered in open windows.
    pub buffered: u32,
    /// Beats for windows already closed for the patient, excluded from every window.
    pub late: u32,
    /// Non-positive or implausible RR values, counted as rejected in their window.
    pub invalid: u32,
    /// Beats whose time is outside the representable window range.
    pub out_of_range: u32,
}

/// A patient's open windows, sorted by start. Usually one or two: a
/// vector sized to them, where a `BTreeMap` node holds room for eleven
/// (about 1 KB per patient at 100 k patients).
#[derive(Debug, Clone, Default, PartialEq)]
struct OpenWindows(Vec<OpenWindow>);

impl OpenWindows {
    fn find(&self, start: i64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&start, OpenWindow::start_ms)
    }

    /// The window starting at `start`, made empty if there is none.
    fn get_or_insert(&mut self, start: i64, new: impl FnOnce()) -> &mut OpenWindow {
        let i = match self.find(start) {
            Ok(i) => i,
            Err(i) => {
                new();
                self.0.reserve_exact(1);
                self.0.insert(i, OpenWindow::starting(start));
                i
            }
        };
        &mut self.0[i]
    }

    fn remove(&mut self, start: &i64) -> Option<OpenWindow> {
        let i = self.find(*start).ok()?;
        Some(self.0.remove(i))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (i64, &OpenWindow)> {
        self.0.iter().map(|w| (w.start_ms(), w))
    }

    fn keys(&self) -> impl Iterator<Item = i64> {
        self.0.iter().map(OpenWindow::start_ms)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut OpenWindow> {
        self.0.iter_mut()
    }
}

impl IntoIterator for OpenWindows {
    type Item = (i64, OpenWindow);
    type IntoIter =
        std::iter::Map<std::vec::IntoIter<OpenWindow>, fn(OpenWindow) -> (i64, OpenWindow)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().map(|w| (w.start_ms(), w))
    }
}

/// One patient's HRV state: open windows, their own event time and
/// unreported late beats. The changelog keeps each open window under its own
/// key (so a new beat rewrites one window, not the patient) and the rest of
/// this struct under the patient's: the windows are skipped when it is
/// serialised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HrvPatientState {
    /// Open windows by start.
    #[serde(skip)]
    windows: OpenWindows,
    /// Late beats not yet reported on an emitted window.
    late_unreported: u32,
    /// The patient's newest beat time (their event time).
    #[serde(default)]
    newest_ms: Mark,
    /// End of the newest window closed for this patient: beats at or
    /// before it are late.
    #[serde(default)]
    closed_through_ms: Mark,
    /// Partition event time when the patient's last reading arrived.
    #[serde(default)]
    seen_at_ms: Mark,
}

/// An optional time in 8 bytes, where `Option<i64>` takes 16: `i64::MIN`
/// (no event time a device sends) stands for none, which orders it before
/// every time as `None` is before every `Some`. Held three times per
/// patient, in a table whose every slot has room for one state (~5 MiB
/// at 100 k patients, BENCHMARKS.md). Serialised as `Option<i64>`, so the
/// changelog's format is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "Option<i64>", into = "Option<i64>")]
struct Mark(i64);

impl std::fmt::Debug for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl Mark {
    const NONE: Self = Self(i64::MIN);

    fn get(self) -> Option<i64> {
        (self != Self::NONE).then_some(self.0)
    }
}

impl Default for Mark {
    fn default() -> Self {
        Self::NONE
    }
}

impl From<Option<i64>> for Mark {
    fn from(t: Option<i64>) -> Self {
        t.map_or(Self::NONE, Self)
    }
}

impl From<Mark> for Option<i64> {
    fn from(m: Mark) -> Self {
        m.get()
    }
}

type PatientState = HrvPatientState;

/// A patient id as the window state holds it: inline up to 24 bytes (no
/// heap block per patient key and per `by_end` entry, which a `String`
/// took), so looking one up or removing a window by it allocates nothing.
type Name = compact_str::CompactString;

/// A patient's event-time marks: the part of [`HrvPatientState`] that a
/// reading with beats changes. A window chunk may carry them in place of a
/// rewritten head record (a reading that adds a chunk then writes one
/// record, not two). While the patient is held they only grow: a restore
/// lets a head record replace them and a chunk read after it raise them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMarks {
    /// The patient's newest beat time.
    pub newest_ms: Option<i64>,
    /// End of the newest window closed for the patient.
    pub closed_through_ms: Option<i64>,
    /// Partition event time when the patient's last reading arrived.
    pub seen_at_ms: Option<i64>,
}

impl HrvPatientState {
    /// The event-time marks.
    pub fn marks(&self) -> EventMarks {
        EventMarks {
            newest_ms: self.newest_ms.get(),
            closed_through_ms: self.closed_through_ms.get(),
            seen_at_ms: self.seen_at_ms.get(),
        }
    }

    /// Late beats not yet reported on an emitted window.
    pub fn late_unreported(&self) -> u32 {
        self.late_unreported
    }

    /// Takes the newer of each mark.
    fn merge_marks(&mut self, marks: EventMarks) {
        self.newest_ms = self.newest_ms.max(marks.newest_ms.into());
        self.closed_through_ms = self.closed_through_ms.max(marks.closed_through_ms.into());
        self.seen_at_ms = self.seen_at_ms.max(marks.seen_at_ms.into());
    }

    /// Beats of windows ending at or before this time are late.
    fn late_through(&self, lateness_ms: i64) -> Option<i64> {
        let wm = self.newest_ms.get().map(|n| n.saturating_sub(lateness_ms));
        wm.max(self.closed_through_ms.get())
    }
}

/// The partition's scalar HRV state, for the changelog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HrvMeta {
    /// Partition event time: the newest event time of any accepted reading
    /// (drives only the idle close).
    pub max_event_ms: Option<i64>,
    /// Late beats counted so far.
    pub late_total: u64,
    /// Partition event time of the last hourly sweep for quiet patients, so
    /// a restored instance sweeps when the original would have (format 5; a
    /// record of an older format reads as none: the sweep runs at once).
    #[serde(default)]
    pub swept_at_ms: Option<i64>,
}

/// HRV window state of one input partition.
#[derive(Debug, Clone)]
pub struct HrvWindows {
    config: HrvConfig,
    /// Plausible RR interval range, ms (inclusive).
    plausible_rr_ms: (i32, i32),
    patients: FastMap<Name, PatientState>,
    /// Open windows by (end, patient): the idle-closing order.
    by_end: BTreeSet<(i64, Name)>,
    max_event_ms: Option<i64>,
    buffered_beats: usize,
    late_total: u64,
    /// Windows closed since the last [`HrvWindows::advance`].
    closed: Vec<HrvWindow>,
    /// Partition event time of the last sweep for forgettable patients.
    swept_at_ms: Option<i64>,
    /// Patients whose state changed since the last [`HrvWindows::take_dirty`].
    dirty: FastSet<Name>,
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
            plausible_rr_ms: (i32::MIN, i32::MAX),
            patients: FastMap::default(),
            by_end: BTreeSet::new(),
            max_event_ms: None,
            buffered_beats: 0,
            late_total: 0,
            closed: Vec::new(),
            swept_at_ms: None,
            dirty: FastSet::default(),
        })
    }

    /// Sets the plausible RR range (the validation range): values outside
    /// it advance the beat clock but are rejected beats.
    pub fn set_plausible_rr(&mut self, min_ms: i32, max_ms: i32) {
        self.plausible_rr_ms = (min_ms, max_ms);
    }

    /// Patients whose state changed since the last call (for the changelog).
    pub fn take_dirty(&mut self) -> FastSet<Name> {
        // The next batch's set starts at this one's size: no growth on the way.
        let n = self.dirty.len();
        std::mem::replace(
            &mut self.dirty,
            FastSet::with_capacity_and_hasher(n, Default::default()),
        )
    }

    /// The patients with state held.
    pub fn patient_ids(&self) -> impl Iterator<Item = &str> {
        self.patients.keys().map(Name::as_str)
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
            swept_at_ms: self.swept_at_ms,
        }
    }

    /// Restores the scalar state from the changelog.
    pub fn restore_meta(&mut self, meta: HrvMeta) {
        self.max_event_ms = meta.max_event_ms;
        self.late_total = meta.late_total;
        self.swept_at_ms = meta.swept_at_ms;
    }

    /// A patient's open windows by start (for the changelog).
    pub fn patient_windows(&self, patient_id: &str) -> impl Iterator<Item = (i64, &OpenWindow)> {
        self.patients
            .get(patient_id)
            .into_iter()
            .flat_map(|s| s.windows.iter())
    }

    /// Restores a patient's state apart from its windows (`head`'s windows
    /// are ignored; those already restored are kept). The head replaces the
    /// marks too: a head record is written after every chunk before it in
    /// the log, and the patient may have been forgotten and come back since
    /// those (in one transaction the head's tombstone then never reaches the
    /// log, so older marks must not survive it). A chunk written after the
    /// head is read after it and raises them again ([`Self::restore_marks`]).
    pub fn restore_head(&mut self, patient_id: &str, head: HrvPatientState) {
        let Some(state) = patient_mut(&mut self.patients, patient_id) else {
            return;
        };
        let windows = std::mem::take(&mut state.windows);
        *state = HrvPatientState { windows, ..head };
    }

    /// A patient's head record was deleted: their state apart from open
    /// windows is back to nothing, marks included.
    pub fn reset_head(&mut self, patient_id: &str) {
        if let Some(state) = self.patients.get_mut(patient_id) {
            let windows = std::mem::take(&mut state.windows);
            *state = HrvPatientState {
                windows,
                ..HrvPatientState::default()
            };
        }
    }

    /// Restores event-time marks a window chunk carried (the newer of
    /// each is kept).
    pub fn restore_marks(&mut self, patient_id: &str, marks: EventMarks) {
        if let Some(state) = patient_mut(&mut self.patients, patient_id) {
            state.merge_marks(marks);
        }
    }

    /// Restores chunk `seq` of a patient's open window: appended to it
    /// (chunks are written in order); chunk 0 starts the window anew.
    pub fn restore_chunk(&mut self, patient_id: &str, start: i64, seq: usize, chunk: WindowChunk) {
        if seq == 0 {
            self.forget_window(patient_id, start);
        }
        let end = start.saturating_add(self.config.window_ms);
        let Some(state) = patient_mut(&mut self.patients, patient_id) else {
            return;
        };
        let by_end = &mut self.by_end;
        let window = state.windows.get_or_insert(start, || {
            by_end.insert((end, patient_id.into()));
        });
        self.buffered_beats += window.restore_chunk(&chunk);
    }

    /// Drops one restored window (its changelog key was deleted).
    pub fn forget_window(&mut self, patient_id: &str, start: i64) {
        let Some(state) = self.patients.get_mut(patient_id) else {
            return;
        };
        if let Some(old) = state.windows.remove(&start) {
            self.buffered_beats -= old.beat_count();
            self.by_end.remove(&(
                start.saturating_add(self.config.window_ms),
                patient_id.into(),
            ));
        }
    }

    /// Ends a restore: drops patients left with nothing held and forgets
    /// what restoring marked as changed.
    pub fn finish_restore(&mut self) {
        self.patients
            .retain(|_, s| !s.windows.is_empty() || *s != HrvPatientState::default());
        // A restore appends chunk after chunk: give back the growth slack
        // (up to half of each window's buffers), as most windows get few
        // more beats before they close.
        for window in self
            .patients
            .values_mut()
            .flat_map(|s| s.windows.values_mut())
        {
            window.shrink_to_fit();
        }
        self.dirty.clear();
    }

    /// Restores a patient's state from the changelog (replacing any).
    pub fn restore_patient(&mut self, patient_id: &str, state: HrvPatientState) {
        self.purge_patient(patient_id);
        self.dirty.remove(patient_id);
        for (start, window) in state.windows.iter() {
            self.by_end.insert((
                start.saturating_add(self.config.window_ms),
                patient_id.into(),
            ));
            self.buffered_beats += window.beat_count();
        }
        self.patients.insert(patient_id.into(), state);
    }

    /// The configuration in force.
    pub fn config(&self) -> &HrvConfig {
        &self.config
    }

    /// Advances the partition event time with an accepted reading's event
    /// time (its measured_at, or its last beat).
    pub fn observe_event_time(&mut self, t_ms: i64) {
        self.max_event_ms = Some(self.max_event_ms.map_or(t_ms, |m| m.max(t_ms)));
    }

    fn touch(&mut self, patient_id: &str) {
        if !self.dirty.contains(patient_id) {
            self.dirty.insert(patient_id.into());
        }
    }

    /// Adds the RR intervals of one reading (`rr_ms` in beat order starting at
    /// `measured_at_ms`), advances the patient's watermark and closes the
    /// windows it passes. Call [`Self::advance`] afterwards (per reading or
    /// per batch) to collect closed windows.
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
        self.touch(patient_id);
        // A patient back from silence: their idle windows closed before
        // this reading, whatever the batch boundaries were.
        self.close_idle_of(patient_id);
        let window_ms = self.config.window_ms;
        let lateness = self.config.allowed_lateness_ms;
        let (lo, hi) = self.plausible_rr_ms;
        // The key is allocated only for a new patient.
        let Some(state) = patient_mut(&mut self.patients, patient_id) else {
            return out;
        };
        let late_through = state.late_through(lateness);
        let mut t = measured_at_ms;
        let mut newest: Option<i64> = None;
        let mut current: Option<(i64, &mut OpenWindow, ChunkWriter)> = None;
        for &rr in rr_ms {
            let advances = rr > 0;
            if advances {
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
            if late_through.is_some_and(|through| end <= through) {
                out.late = out.late.saturating_add(1);
                continue;
            }
            // Consecutive beats mostly share a window: look it up only when
            // the window changes.
            if current.as_ref().is_none_or(|(s, ..)| *s != start) {
                let by_end = &mut self.by_end;
                let window = state.windows.get_or_insert(start, || {
                    by_end.insert((end, patient_id.into()));
                });
                let writer = match window.last_reading_id() == Some(reading_id) {
                    true => window.resume_chunk(),
                    false => None,
                };
                let writer = writer.unwrap_or_else(|| window.open_chunk(reading_id));
                current = Some((start, window, writer));
            }
            let Some((_, window, writer)) = current.as_mut() else {
                continue;
            };
            let beat = Beat { t_ms: t, rr_ms: rr };
            let valid = WindowBeat::new(start, beat).is_some();
            if advances && (lo..=hi).contains(&rr) && valid {
                window.push_beat(writer, beat);
                out.buffered = out.buffered.saturating_add(1);
            } else {
                window.add_invalid(writer);
                out.invalid = out.invalid.saturating_add(1);
            }
            if advances {
                newest = Some(t);
            }
        }
        state.late_unreported = state.late_unreported.saturating_add(out.late);
        if let Some(n) = newest {
            state.newest_ms = state.newest_ms.max(Mark(n));
        }
        self.late_total = self.late_total.saturating_add(u64::from(out.late));
        self.buffered_beats += out.buffered as usize;
        if let Some(n) = newest {
            self.observe_event_time(n);
        }
        let seen_at = self.max_event_ms.or(Some(measured_at_ms));
        if let Some(state) = self.patients.get_mut(patient_id) {
            // Never moves back (a mark: see `EventMarks`).
            state.seen_at_ms = state.seen_at_ms.max(seen_at.into());
        }
        self.close_passed_of(patient_id);
        out
    }

    /// Windows closed since the last call, in (window end, patient id)
    /// order: those the patients' own watermarks passed, then those of
    /// silent patients that the partition event time closes now.
    pub fn advance(&mut self) -> Vec<HrvWindow> {
        if let Some(now) = self.max_event_ms {
            let idle = self.config.idle_close_ms;
            let due: Vec<Name> = self
                .by_end
                .iter()
                .take_while(|(end, _)| end.saturating_add(idle) <= now)
                .map(|(_, patient)| patient.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            for patient in due {
                self.close_idle_of(&patient);
            }
            self.forget_quiet(now);
        }
        let mut closed = std::mem::take(&mut self.closed);
        closed.sort_by(|a, b| {
            (a.window_end_ms, &a.patient_id).cmp(&(b.window_end_ms, &b.patient_id))
        });
        closed
    }

    /// Closes every open window regardless of event time (end of input), in
    /// (window end, patient id) order, after those already closed.
    pub fn flush_all(&mut self) -> Vec<HrvWindow> {
        let mut out = self.advance();
        let keys = std::mem::take(&mut self.by_end);
        for (end, patient) in keys {
            out.extend(self.close(&patient, end));
        }
        out
    }

    /// Erases everything held for a patient (account deletion): open windows,
    /// their beats and reading ids, their event time and the unreported late
    /// count. Returns the number of buffered beats dropped.
    pub fn purge_patient(&mut self, patient_id: &str) -> usize {
        self.closed.retain(|w| w.patient_id != patient_id);
        let Some(state) = self.patients.remove(patient_id) else {
            return 0;
        };
        self.dirty.insert(patient_id.into());
        let mut dropped = 0;
        for (start, window) in state.windows {
            let end = start.saturating_add(self.config.window_ms);
            self.by_end.remove(&(end, patient_id.into()));
            dropped += window.beat_count();
        }
        self.buffered_beats -= dropped;
        dropped
    }

    /// A patient's current watermark: their newest beat time minus the
    /// allowed lateness; `None` before their first beat.
    pub fn watermark_ms(&self, patient_id: &str) -> Option<i64> {
        self.patients
            .get(patient_id)?
            .newest_ms
            .get()
            .map(|n| n.saturating_sub(self.config.allowed_lateness_ms))
    }

    /// The partition event time (newest event time of any accepted reading).
    pub fn partition_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    /// Open windows across all patients.
    pub fn open_windows(&self) -> usize {
        self.by_end.len()
    }

    /// Beats buffered in open windows.
    pub fn buffered_beats(&self) -> usize {
        self.buffered_beats
    }

    /// Patients with open windows, unreported late beats or an event-time
    /// record still kept.
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

    /// Closes the patient's windows their own watermark has passed.
    fn close_passed_of(&mut self, patient: &str) {
        let lateness = self.config.allowed_lateness_ms;
        let window_ms = self.config.window_ms;
        let Some(state) = self.patients.get(patient) else {
            return;
        };
        let Some(wm) = state.newest_ms.get().map(|n| n.saturating_sub(lateness)) else {
            return;
        };
        let ends: Vec<i64> = state
            .windows
            .keys()
            .map(|start| start.saturating_add(window_ms))
            .take_while(|&end| end <= wm)
            .collect();
        for end in ends {
            self.by_end.remove(&(end, patient.into()));
            if let Some(w) = self.close(patient, end) {
                self.closed.push(w);
            }
        }
    }

    /// Closes the patient's windows that the partition event time has left
    /// `idle_close_ms` behind, both past their end and past the patient's
    /// last arrival.
    fn close_idle_of(&mut self, patient: &str) {
        let Some(now) = self.max_event_ms else {
            return;
        };
        let idle = self.config.idle_close_ms;
        let window_ms = self.config.window_ms;
        let Some(state) = self.patients.get(patient) else {
            return;
        };
        if state
            .seen_at_ms
            .get()
            .is_some_and(|seen| seen.saturating_add(idle) > now)
        {
            return;
        }
        let ends: Vec<i64> = state
            .windows
            .keys()
            .map(|start| start.saturating_add(window_ms))
            .take_while(|&end| end.saturating_add(idle) <= now)
            .collect();
        for end in ends {
            self.by_end.remove(&(end, patient.into()));
            if let Some(w) = self.close(patient, end) {
                self.closed.push(w);
            }
        }
    }

    /// Once per hour of partition event time: forgets the event-time record
    /// of patients without open windows or unreported late beats whose newest
    /// beat is [`FORGET_AFTER_MS`] behind.
    fn forget_quiet(&mut self, now: i64) {
        const HOUR_MS: i64 = 60 * 60 * 1000;
        if self
            .swept_at_ms
            .is_some_and(|at| now.saturating_sub(at) < HOUR_MS)
        {
            return;
        }
        self.swept_at_ms = Some(now);
        let quiet: Vec<Name> = self
            .patients
            .iter()
            .filter(|(_, s)| {
                s.windows.is_empty()
                    && s.late_unreported == 0
                    && s.newest_ms
                        .get()
                        .is_none_or(|n| n.saturating_add(FORGET_AFTER_MS) < now)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for patient in quiet {
            self.patients.remove(&patient);
            self.dirty.insert(patient);
        }
    }

    /// Removes the window ending at `end` of `patient` (already taken out of
    /// `by_end`) and computes its output.
    fn close(&mut self, patient: &str, end: i64) -> Option<HrvWindow> {
        let start = end.checked_sub(self.config.window_ms)?;
        let state = self.patients.get_mut(patient)?;
        let window = state.windows.remove(&start)?;
        let n_late = std::mem::take(&mut state.late_unreported);
        state.closed_through_ms = state.closed_through_ms.max(Mark(end));
        if !self.dirty.contains(patient) {
            self.dirty.insert(patient.into());
        }
        self.buffered_beats -= window.beat_count();
        let mut beats = window.window_beats();
        beats.sort_unstable();
        let mut reading_ids = window.reading_ids();
        reading_ids.sort_unstable();
        reading_ids.dedup();
        let filter = self.config.artifact_filter;
        let sums = filter_sorted(beats.iter().map(|b| b.beat(start)), filter);
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
            n_rejected: sums.n_rejected.saturating_add(window.n_invalid()),
            n_late,
            mean_nn_ms: m.map(|m| m.mean_nn_ms),
            sdnn_ms: m.map(|m| m.sdnn_ms),
            rmssd_ms: m.map(|m| m.rmssd_ms),
            pnn50_pct: m.map(|m| m.pnn50_pct),
            mean_hr_bpm: m.map(|m| m.mean_hr_bpm),
            reading_ids,
        })
    }
}

/// A patient's state, made empty if there is none (the id is copied only
/// then).
fn patient_mut<'a>(
    patients: &'a mut FastMap<Name, PatientState>,
    patient_id: &str,
) -> Option<&'a mut PatientState> {
    if !patients.contains_key(patient_id) {
        patients.insert(patient_id.into(), PatientState::default());
    }
    patients.get_mut(patient_id)
}

/// `[start, end)` of the window holding time `t`, if representable.
fn window_of(t: i64, window_ms: i64) -> Option<(i64, i64)> {
    let start = t.div_euclid(window_ms).checked_mul(window_ms)?;
    Some((start, start.checked_add(window_ms)?))
}

#[cfg(test)]
mod mark_tests {
    use serde::Serialize;

    use super::*;

    /// The head record as it was written with `Option<i64>` marks.
    #[derive(Serialize)]
    struct OptionMarks {
        late_unreported: u32,
        newest_ms: Option<i64>,
        closed_through_ms: Option<i64>,
        seen_at_ms: Option<i64>,
    }

    #[test]
    fn marks_take_8_bytes_each_and_keep_the_head_records_format() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<HrvPatientState>(), 56);
        let state = HrvPatientState {
            windows: OpenWindows::default(),
            late_unreported: 2,
            newest_ms: Mark(1_764_000_000_000),
            closed_through_ms: Mark::NONE,
            seen_at_ms: Mark(-5),
        };
        let before = OptionMarks {
            late_unreported: 2,
            newest_ms: Some(1_764_000_000_000),
            closed_through_ms: None,
            seen_at_ms: Some(-5),
        };
        let bytes = rmp_serde::to_vec(&state).expect("encode");
        assert_eq!(bytes, rmp_serde::to_vec(&before).expect("encode"));
        let back: HrvPatientState = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(back, state);
        assert_eq!(back.marks().closed_through_ms, None);
        // None orders before every time, as it did as an Option.
        assert!(Mark::NONE < Mark(i64::MIN + 1));
    }
}
