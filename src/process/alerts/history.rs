//! What the alert rules remember about one patient: recent observations,
//! hourly baseline sums, and the cool-down of each rule.
//!
//! Bounded by construction: samples older than the longest window a rule of
//! their signal looks back over are pruned on every insert (keeping at least
//! the count the sustained rules need), at most [`MAX_SAMPLES`] per signal;
//! baselines keep one bucket per hour.
//!
//! Layout, for memory and scans (about 100 k patients per partition): all
//! samples of a patient in one vector ordered by (signal, event time), each
//! a fixed 48 bytes with its value in fixed point and its reading id inline;
//! baselines in one boxed vector (only watch wearers have any); cool-downs
//! boxed, as most patients never had an alert: 48 bytes per patient
//! besides the samples.
//!
//! Slots: every sample carries the number of the changelog record that
//! holds it. The observations of a patient's readings in one batch share
//! a slot (one record for a week a hub uploads at once), and the patient's
//! first reading of a batch takes the lowest slot no live sample uses, so
//! a patient's slots stay as few as the samples they hold at most. A
//! sample that leaves the look-back is only dropped from memory: its record
//! is overwritten when the slot is taken again, and a restore drops it
//! again by the same rule ([`PatientHistory::prune_restored`]).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rules::Signal;
use crate::model::{AlertRule, Severity};

/// Most samples kept per signal and patient, whatever their age: a scale
/// used many times a day for a week stays well under it.
pub const MAX_SAMPLES: usize = 256;
const HOUR_MS: i64 = 3_600_000;
/// `secondary_scale` of a sample without a secondary value.
const NO_SECONDARY: u8 = u8::MAX;

/// One remembered observation: 48 bytes, no heap for reading ids up to 24
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Event time, ms.
    pub t_ms: i64,
    /// Reading the value came from; held inline up to 24 bytes, so keeping a
    /// sample does not allocate for typical reading ids.
    pub reading_id: compact_str::CompactString,
    value: i32,
    secondary: i32,
    /// Changelog slot holding the sample.
    pub slot: u16,
    /// Which signal.
    pub signal: Signal,
    scale: u8,
    secondary_scale: u8,
}

/// `d` as a 32-bit mantissa and a scale. Readings' decimals have at most 9
/// digits (their Avro precision), which always fit; a wider value keeps
/// its 9 most significant digits.
fn fixed(d: Decimal) -> (i32, u8) {
    let mut d = d;
    loop {
        if let Ok(m) = i32::try_from(d.mantissa()) {
            // A Decimal's scale is at most 28.
            return (m, d.scale() as u8);
        }
        let normal = d.normalize();
        d = if normal.scale() < d.scale() {
            normal
        } else if d.scale() > 0 {
            d.round_dp(d.scale() - 1)
        } else {
            // An integer beyond ±2^31: no reading is (saturates).
            return (
                if d.is_sign_negative() {
                    i32::MIN
                } else {
                    i32::MAX
                },
                0,
            );
        };
    }
}

impl Sample {
    /// A sample of `signal` at `t_ms` from `reading_id`, in slot 0.
    pub fn new(
        signal: Signal,
        t_ms: i64,
        value: Decimal,
        secondary: Option<Decimal>,
        reading_id: &str,
    ) -> Self {
        let (value, scale) = fixed(value);
        let (secondary, secondary_scale) = secondary.map_or((0, NO_SECONDARY), fixed);
        Self {
            t_ms,
            reading_id: reading_id.into(),
            value,
            secondary,
            slot: 0,
            signal,
            scale,
            secondary_scale,
        }
    }

    /// Primary value (systolic for blood pressure).
    pub fn value(&self) -> Decimal {
        Decimal::new(i64::from(self.value), u32::from(self.scale))
    }

    /// Diastolic, for blood pressure.
    pub fn secondary(&self) -> Option<Decimal> {
        (self.secondary_scale != NO_SECONDARY)
            .then(|| Decimal::new(i64::from(self.secondary), u32::from(self.secondary_scale)))
    }

    /// The fixed-point parts (value, scale, secondary, its scale or
    /// `u8::MAX` for none), for the changelog.
    pub fn raw(&self) -> (i32, u8, i32, u8) {
        (self.value, self.scale, self.secondary, self.secondary_scale)
    }

    /// A sample from its changelog parts; `None` if a scale is out of range.
    pub fn from_raw(
        signal: Signal,
        t_ms: i64,
        (value, scale, secondary, secondary_scale): (i32, u8, i32, u8),
        reading_id: &str,
        slot: u16,
    ) -> Option<Self> {
        let ok = |s: u8| s <= 28;
        (ok(scale) && (ok(secondary_scale) || secondary_scale == NO_SECONDARY)).then(|| Self {
            t_ms,
            reading_id: reading_id.into(),
            value,
            secondary: if secondary_scale == NO_SECONDARY {
                0
            } else {
                secondary
            },
            slot,
            signal,
            scale,
            secondary_scale,
        })
    }
}

/// Sum of one hour's values, for baselines.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    hour_start_ms: i64,
    sum: Decimal,
    count: u32,
    signal: Signal,
}

/// The last alert of each rule (event time, severity): what cool-downs
/// are measured from.
pub type Cooldowns = [Option<(i64, Severity)>; AlertRule::ALL.len()];

/// How long and how much of a signal to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Event-time span to keep, ms behind the newest sample.
    pub span_ms: i64,
    /// Newest samples always kept, whatever their age.
    pub keep_last: usize,
}

impl Retention {
    /// How many of `samples` (one signal's, oldest first) leave: those
    /// older than the span behind the newest beyond the `keep_last`
    /// newest, then the oldest beyond [`MAX_SAMPLES`].
    fn excess(self, samples: &[Sample]) -> usize {
        let Some(newest) = samples.last().map(|s| s.t_ms) else {
            return 0;
        };
        let from = newest.saturating_sub(self.span_ms);
        let old = samples.partition_point(|s| s.t_ms < from);
        let by_age = old.min(samples.len().saturating_sub(self.keep_last.max(1)));
        by_age.max(samples.len().saturating_sub(MAX_SAMPLES))
    }
}

/// Alert history of one patient.
#[derive(Debug, Clone, Default)]
pub struct PatientHistory {
    /// Ordered by (signal, event time, reading id).
    samples: Vec<Sample>,
    /// Ordered by (signal, hour); boxed, as only watch wearers have any:
    /// 8 bytes inline instead of an empty vector's 24, for every patient.
    #[allow(clippy::box_collection)]
    baselines: Option<Box<Vec<Bucket>>>,
    cooldowns: Option<Box<Cooldowns>>,
    /// Slots the changelog may hold a record in: `0..slots`.
    slots: u16,
    /// Whether a slot below `slots` may be unused (a sample left since
    /// the last scan): without, the next free slot is `slots`, no scan.
    gaps: bool,
    /// The slot this batch's readings of the patient share until the
    /// changelog takes it (a device syncing a week at once: one record).
    open: Option<u16>,
}

/// The state held, not the `gaps` hint or the open slot.
impl PartialEq for PatientHistory {
    fn eq(&self, other: &Self) -> bool {
        self.samples == other.samples
            && self.baselines == other.baselines
            && self.cooldowns == other.cooldowns
            && self.slots == other.slots
    }
}

impl PatientHistory {
    /// Frees the capacity the samples and baselines do not use.
    pub fn shrink_to_fit(&mut self) {
        self.samples.shrink_to_fit();
        if let Some(b) = &mut self.baselines {
            b.shrink_to_fit();
        }
    }

    fn buckets(&self) -> &[Bucket] {
        self.baselines.as_deref().map_or(&[], Vec::as_slice)
    }

    fn buckets_mut(&mut self) -> &mut Vec<Bucket> {
        self.baselines.get_or_insert_default()
    }

    /// Where the samples of `signal` are in `self.samples`.
    fn span(&self, signal: Signal) -> std::ops::Range<usize> {
        let start = self.samples.partition_point(|s| s.signal < signal);
        let end = start + self.samples[start..].partition_point(|s| s.signal == signal);
        start..end
    }

    /// Samples of `signal`, oldest first.
    pub fn samples(&self, signal: Signal) -> &[Sample] {
        &self.samples[self.span(signal)]
    }

    /// Remembers `sample` (of its signal, in its slot) in event-time order
    /// and drops what `keep` no longer needs. Returns whether `sample` is
    /// still held (a late one may leave at once).
    pub fn record(&mut self, sample: Sample, keep: Retention) -> bool {
        let range = self.span(sample.signal);
        let at = self.insert(sample);
        let range = range.start..range.end + 1;
        let gone = keep.excess(&self.samples[range.clone()]);
        self.samples.drain(range.start..range.start + gone);
        self.gaps |= gone > 0;
        at >= range.start + gone
    }

    /// The lowest slot no sample uses: where a new reading's samples go.
    /// Scans the samples only when one left since the last scan.
    pub fn free_slot(&mut self) -> u16 {
        if !self.gaps {
            return self.slots;
        }
        // One bit per slot up to the highest in use; inline up to 256
        // slots, on the heap beyond (a week of a watch's frequent readings
        // fills several signals' MAX_SAMPLES): one pass over the samples
        // either way, never a scan per candidate slot.
        let words = usize::from(self.slots).div_ceil(64).max(1);
        let mut used = smallvec::SmallVec::<[u64; 4]>::from_elem(0, words);
        for s in &self.samples {
            if let Some(word) = used.get_mut(usize::from(s.slot / 64)) {
                *word |= 1 << (s.slot % 64);
            }
        }
        let Some(i) = used.iter().position(|w| *w != u64::MAX) else {
            // Every slot below `slots` is in use.
            self.gaps = false;
            return self.slots;
        };
        let free = (i * 64) as u16 + used[i].trailing_ones() as u16;
        // No other gap below `slots` once this one is filled (if the new
        // sample leaves at once, `record` marks the gap again).
        let below: u32 = used.iter().map(|w| w.count_ones()).sum();
        if free >= self.slots || below + 1 == u32::from(self.slots) {
            self.gaps = false;
        }
        free.min(self.slots)
    }

    /// The slot a reading's samples go to: the one this batch's earlier
    /// readings of the patient took, else the lowest free one.
    pub fn slot_for_reading(&mut self) -> u16 {
        match self.open {
            Some(slot) => slot,
            None => self.free_slot(),
        }
    }

    /// Marks `slot` as holding this batch's readings until
    /// [`PatientHistory::close_slot`].
    pub fn open_slot(&mut self, slot: u16) {
        self.use_slot(slot);
        self.open = Some(slot);
    }

    /// The changelog took the batch's slot: the next reading takes a free one.
    pub fn close_slot(&mut self) {
        self.open = None;
    }

    /// Marks `slot` as holding a record (from now until the patient is
    /// purged, its key is deleted with the patient's).
    pub fn use_slot(&mut self, slot: u16) {
        self.slots = self.slots.max(slot.saturating_add(1));
    }

    /// Slots the changelog may hold a record of this patient in (`0..n`).
    pub fn slots(&self) -> u16 {
        self.slots
    }

    /// The samples in `slot` (those of one reading).
    pub fn slot_samples(&self, slot: u16) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.slot == slot)
    }

    /// Restores the record of `slot`: replaces what it held with `samples`
    /// (no pruning: [`PatientHistory::prune_restored`] does that at the end).
    pub fn restore_slot(&mut self, slot: u16, samples: impl IntoIterator<Item = Sample>) {
        self.forget_slot(slot);
        self.use_slot(slot);
        for mut sample in samples {
            sample.slot = slot;
            self.insert(sample);
        }
    }

    /// Puts `sample` in its place among its signal's samples, by event time
    /// and, at equal times, by reading id: the order a restore rebuilds too,
    /// whatever order it reads the slots in (arrival order would not be).
    /// Returns its index.
    fn insert(&mut self, sample: Sample) -> usize {
        let range = self.span(sample.signal);
        let key = (sample.t_ms, sample.reading_id.as_str());
        let at = range.start
            + self.samples[range].partition_point(|s| (s.t_ms, s.reading_id.as_str()) <= key);
        self.samples.insert(at, sample);
        at
    }

    /// Drops the samples of `slot` (its record was deleted).
    pub fn forget_slot(&mut self, slot: u16) {
        self.samples.retain(|s| s.slot != slot);
        self.gaps = true;
    }

    /// After a restore: drops what each signal's retention drops, relative
    /// to the patient's own newest sample of the signal. Samples that left
    /// the look-back after their record was written are still in the
    /// changelog until their slot is reused; they are the oldest of their
    /// signal and leave again here, so the restored samples are those held
    /// before.
    pub fn prune_restored(&mut self, keep: &[Retention; Signal::COUNT]) {
        for signal in Signal::ALL {
            let range = self.span(signal);
            let gone = keep[signal as usize].excess(&self.samples[range.clone()]);
            self.samples.drain(range.start..range.start + gone);
        }
        self.gaps = true;
    }

    /// Where the buckets of `signal` are.
    fn bucket_span(&self, signal: Signal) -> std::ops::Range<usize> {
        let buckets = self.buckets();
        let start = buckets.partition_point(|b| b.signal < signal);
        let end = start + buckets[start..].partition_point(|b| b.signal == signal);
        start..end
    }

    /// Index of the bucket of `signal` for `hour_start_ms`, or where it goes.
    fn bucket_at(&self, signal: Signal, hour_start_ms: i64) -> Result<usize, usize> {
        let range = self.bucket_span(signal);
        let buckets = &self.buckets()[range.clone()];
        let at = buckets.partition_point(|b| b.hour_start_ms < hour_start_ms);
        match buckets.get(at) {
            Some(b) if b.hour_start_ms == hour_start_ms => Ok(range.start + at),
            _ => Err(range.start + at),
        }
    }

    /// Drops the baseline sum of one hour (its record was deleted).
    pub fn forget_bucket(&mut self, signal: Signal, hour_start_ms: i64) {
        if let Ok(i) = self.bucket_at(signal, hour_start_ms) {
            self.buckets_mut().remove(i);
        }
    }

    /// The baseline sum and count of `signal` for the hour starting at
    /// `hour_start_ms`.
    pub fn bucket(&self, signal: Signal, hour_start_ms: i64) -> Option<(Decimal, u32)> {
        let i = self.bucket_at(signal, hour_start_ms).ok()?;
        let b = &self.buckets()[i];
        Some((b.sum, b.count))
    }

    /// Restores one hour's baseline sum (replacing it).
    pub fn restore_bucket(&mut self, signal: Signal, hour_start_ms: i64, sum: Decimal, count: u32) {
        let bucket = Bucket {
            hour_start_ms,
            sum,
            count,
            signal,
        };
        match self.bucket_at(signal, hour_start_ms) {
            Ok(i) => self.buckets_mut()[i] = bucket,
            Err(i) => self.buckets_mut().insert(i, bucket),
        }
    }

    /// The cool-down of every rule.
    pub fn cooldowns(&self) -> Cooldowns {
        self.cooldowns.as_deref().copied().unwrap_or_default()
    }

    /// Restores the cool-downs.
    pub fn restore_cooldowns(&mut self, cooldowns: Cooldowns) {
        self.cooldowns = cooldowns
            .iter()
            .any(Option::is_some)
            .then(|| Box::new(cooldowns));
    }

    /// Every (signal, hour) with a baseline sum: the entries the changelog
    /// holds for them.
    pub fn buckets_held(&self) -> impl Iterator<Item = (Signal, i64)> + '_ {
        self.buckets().iter().map(|b| (b.signal, b.hour_start_ms))
    }

    /// The lowest sample in `[t_ms − window_ms, t_ms)`, earliest on ties.
    pub fn lowest_before(&self, signal: Signal, t_ms: i64, window_ms: i64) -> Option<&Sample> {
        let samples = self.samples(signal);
        let from = samples.partition_point(|s| s.t_ms < t_ms.saturating_sub(window_ms));
        let to = samples.partition_point(|s| s.t_ms < t_ms);
        samples[from..to.max(from)]
            .iter()
            .fold(None, |low: Option<&Sample>, s| match low {
                Some(l) if l.value() <= s.value() => Some(l),
                _ => Some(s),
            })
    }

    /// The newest sample with event time in `[from_ms, to_ms]`.
    pub fn newest_between(&self, signal: Signal, from_ms: i64, to_ms: i64) -> Option<&Sample> {
        let samples = self.samples(signal);
        let to = samples.partition_point(|s| s.t_ms <= to_ms);
        samples[..to].last().filter(|s| s.t_ms >= from_ms)
    }

    /// Adds `value` at `t_ms` to the hourly baseline sums of `signal`,
    /// keeping `span_ms` behind the newest hour. Pushes the hours whose
    /// sums changed (the one added to, those dropped) onto `changed`.
    pub fn add_to_baseline(
        &mut self,
        signal: Signal,
        t_ms: i64,
        value: Decimal,
        span_ms: i64,
        changed: &mut Vec<i64>,
    ) {
        let hour_start_ms = t_ms.div_euclid(HOUR_MS) * HOUR_MS;
        changed.push(hour_start_ms);
        match self.bucket_at(signal, hour_start_ms) {
            Ok(i) => {
                let b = &mut self.buckets_mut()[i];
                b.sum += value;
                b.count += 1;
            }
            Err(i) => self.buckets_mut().insert(
                i,
                Bucket {
                    hour_start_ms,
                    sum: value,
                    count: 1,
                    signal,
                },
            ),
        }
        let range = self.bucket_span(signal);
        let buckets = self.buckets_mut();
        let newest = buckets[range.end - 1].hour_start_ms;
        let old = buckets[range.clone()]
            .partition_point(|b| b.hour_start_ms < newest.saturating_sub(span_ms));
        changed.extend(
            buckets
                .drain(range.start..range.start + old)
                .map(|b| b.hour_start_ms),
        );
    }

    /// Mean and count of the baseline values of the hours starting in
    /// `[t_ms − window_ms, t_ms)`.
    pub fn baseline(&self, signal: Signal, t_ms: i64, window_ms: i64) -> Option<(Decimal, u32)> {
        let from = t_ms.saturating_sub(window_ms);
        let (sum, count) = self.buckets()[self.bucket_span(signal)]
            .iter()
            .filter(|b| b.hour_start_ms >= from && b.hour_start_ms < t_ms)
            .fold((Decimal::ZERO, 0u32), |(s, c), b| (s + b.sum, c + b.count));
        (count > 0).then(|| (sum / Decimal::from(count), count))
    }

    /// Whether an alert of `rule` at `t_ms` with `severity` is held back by
    /// the cool-down of an earlier one: within `cooldown_ms` of event time
    /// and not of a higher severity.
    pub fn cooling_down(
        &self,
        rule: AlertRule,
        t_ms: i64,
        severity: Severity,
        cooldown_ms: i64,
    ) -> bool {
        self.cooldowns
            .as_ref()
            .and_then(|c| c[rule as usize])
            .is_some_and(|(last_ms, last_severity)| {
                t_ms.saturating_sub(last_ms) < cooldown_ms && severity <= last_severity
            })
    }

    /// Starts the cool-down of `rule` from an alert at `t_ms`.
    pub fn start_cooldown(&mut self, rule: AlertRule, t_ms: i64, severity: Severity) {
        let slot = &mut self.cooldowns.get_or_insert_default()[rule as usize];
        let from = slot.map_or(t_ms, |(last, _)| last.max(t_ms));
        *slot = Some((from, severity));
    }

    /// Entries held (samples, hourly buckets, cool-downs), for state metrics
    /// and erasure accounting.
    pub fn entries(&self) -> usize {
        self.samples.len()
            + self.buckets().len()
            + self
                .cooldowns
                .as_ref()
                .map_or(0, |c| c.iter().flatten().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: i64, value: i64) -> Sample {
        Sample::new(
            Signal::Weight,
            t_ms,
            Decimal::from(value),
            None,
            &format!("r-{t_ms}"),
        )
    }

    fn of(signal: Signal, t_ms: i64) -> Sample {
        Sample {
            signal,
            ..sample(t_ms, 90)
        }
    }

    #[test]
    fn samples_stay_in_event_time_order_and_old_ones_leave() {
        let mut h = PatientHistory::default();
        let keep = Retention {
            span_ms: 100,
            keep_last: 2,
        };
        for t in [10, 30, 20, 200, 250] {
            h.record(sample(t, t), keep);
        }
        let kept: Vec<i64> = h.samples(Signal::Weight).iter().map(|s| s.t_ms).collect();
        assert_eq!(kept, [200, 250]);
        // A late sample older than the span leaves at once.
        assert!(!h.record(sample(5, 5), keep));
        assert!(h.record(sample(240, 5), keep));
        // The newest `keep_last` survive however old they are.
        let mut h = PatientHistory::default();
        for t in [0, 1_000_000] {
            h.record(of(Signal::SpO2, t), keep);
        }
        assert_eq!(h.samples(Signal::SpO2).len(), 2);
    }

    #[test]
    fn signals_are_kept_apart_in_one_vector() {
        let mut h = PatientHistory::default();
        let keep = Retention {
            span_ms: 1_000,
            keep_last: 0,
        };
        for (signal, t) in [
            (Signal::SpO2, 5),
            (Signal::Weight, 7),
            (Signal::Temperature, 1),
            (Signal::Weight, 3),
            (Signal::SpO2, 2),
        ] {
            h.record(of(signal, t), keep);
        }
        let times = |signal| h.samples(signal).iter().map(|s| s.t_ms).collect::<Vec<_>>();
        assert_eq!(times(Signal::Weight), [3, 7]);
        assert_eq!(times(Signal::SpO2), [2, 5]);
        assert_eq!(times(Signal::Temperature), [1]);
        assert!(times(Signal::BloodPressure).is_empty());
    }

    #[test]
    fn values_keep_their_decimal_exactly() {
        for (v, s) in [("80.123", None), ("-0.5", Some("120")), ("97.0", None)] {
            let v: Decimal = v.parse().expect("decimal");
            let s = s.map(|s| s.parse::<Decimal>().expect("decimal"));
            let sample = Sample::new(Signal::BloodPressure, 1, v, s, "r");
            assert_eq!(sample.value(), v);
            assert_eq!(sample.value().scale(), v.scale());
            assert_eq!(sample.secondary(), s);
        }
        // Beyond 9 digits: the most significant ones are kept.
        let wide: Decimal = "12345.678901234".parse().expect("decimal");
        let kept = Sample::new(Signal::Weight, 1, wide, None, "r").value();
        assert!((kept - wide).abs() < Decimal::new(1, 4), "{kept}");
        assert_eq!(std::mem::size_of::<Sample>(), 48);
        assert_eq!(std::mem::size_of::<PatientHistory>(), 48);
    }

    /// Two weights of the same millisecond from two readings (a scale that
    /// sends its reading twice under two ids): their order, and so which one
    /// the rules take as the newest, does not depend on the order a restore
    /// reads their slots in.
    #[test]
    fn equal_times_keep_the_same_sample_restored_or_not() {
        let keep = Retention {
            span_ms: 0,
            keep_last: 1,
        };
        let dec = |s: &str| s.parse::<Decimal>().expect("decimal");
        let first = Sample {
            slot: 0,
            ..Sample::new(Signal::Weight, 1_000, dec("80.1"), None, "r-2")
        };
        let second = Sample {
            slot: 1,
            ..Sample::new(Signal::Weight, 1_000, dec("80.4"), None, "r-1")
        };
        let mut live = PatientHistory::default();
        for s in [&first, &second] {
            live.use_slot(s.slot);
            live.record(s.clone(), keep);
        }
        let mut restored = PatientHistory::default();
        restored.restore_slot(1, [second.clone()]);
        restored.restore_slot(0, [first.clone()]);
        restored.prune_restored(&[keep; Signal::COUNT]);
        assert_eq!(
            restored.samples(Signal::Weight),
            live.samples(Signal::Weight)
        );
        // The rules' "newest weight" is the same one either way.
        assert_eq!(live.newest_between(Signal::Weight, 0, 2_000), Some(&first));
    }

    #[test]
    fn the_lowest_free_slot_is_reused() {
        let mut h = PatientHistory::default();
        let keep = Retention {
            span_ms: 0,
            keep_last: 2,
        };
        for t in 0..4 {
            let slot = h.free_slot();
            h.use_slot(slot);
            h.record(
                Sample {
                    slot,
                    ..of(Signal::SpO2, t)
                },
                keep,
            );
        }
        // Two held at a time, the new one taking its slot before the
        // oldest leaves: three slots take turns.
        let slots: Vec<u16> = h.samples(Signal::SpO2).iter().map(|s| s.slot).collect();
        assert_eq!(slots, [2, 0]);
        assert_eq!(h.slots(), 3);
        let mut h = PatientHistory::default();
        for slot in 0..300 {
            h.restore_slot(slot, [of(Signal::Weight, i64::from(slot))]);
        }
        assert_eq!(h.free_slot(), 300);
        h.forget_slot(70);
        assert_eq!(h.free_slot(), 70);
    }

    /// A fixed pseudo-random walk of 3 signals' samples from `seed`, each
    /// kept by `keep(x)` at time `time(i, x)`, checking at every step that
    /// the free slot is the lowest one no sample uses.
    fn walk_checking_the_free_slot(
        seed: u64,
        steps: i64,
        keep: impl Fn(u64) -> Retention,
        time: impl Fn(i64, u64) -> i64,
    ) -> PatientHistory {
        let mut h = PatientHistory::default();
        let mut x = seed;
        for i in 0..steps {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let signal = Signal::ALL[(x >> 60) as usize % 3];
            let brute = (0..=u16::MAX)
                .find(|slot| !h.samples.iter().any(|s| s.slot == *slot))
                .expect("a free slot");
            let slot = h.free_slot();
            assert_eq!(slot, brute, "step {i}");
            let sample = Sample {
                slot,
                ..of(signal, time(i, x))
            };
            if h.record(sample, keep(x)) {
                h.use_slot(slot);
            }
        }
        h
    }

    #[test]
    fn the_free_slot_skips_the_scan_only_when_no_gap_can_exist() {
        // Late and early samples, some leaving at once, some pushing
        // others out.
        let h = walk_checking_the_free_slot(
            7,
            3_000,
            |x| Retention {
                span_ms: 50,
                keep_last: (x >> 8) as usize % 4,
            },
            |i, x| i + (x >> 20) as i64 % 80 - 40,
        );
        assert!(h.slots() < 150, "{}", h.slots());
    }

    #[test]
    fn beyond_256_slots_the_free_slot_is_still_the_lowest_unused() {
        // A watch wearer's week: three signals at their MAX_SAMPLES, so
        // more than 256 slots are in use and samples keep leaving.
        let keep = |_| Retention {
            span_ms: 1,
            keep_last: MAX_SAMPLES,
        };
        let h = walk_checking_the_free_slot(11, 2_000, keep, |i, _| i);
        assert!(h.slots() > 256, "{}", h.slots());
        assert!(h.samples.len() <= 3 * MAX_SAMPLES);
    }

    #[test]
    fn a_restore_drops_what_left_the_look_back_as_the_live_history_did() {
        let keep = Retention {
            span_ms: 100,
            keep_last: 1,
        };
        let mut retention = [Retention::default(); Signal::COUNT];
        retention[Signal::Weight as usize] = keep;
        let mut live = PatientHistory::default();
        // Every record ever written per slot: the last one wins.
        let mut log = std::collections::BTreeMap::new();
        for t in [0, 50, 120, 90, 400, 30, 410, 600] {
            let slot = live.free_slot();
            if live.record(
                Sample {
                    slot,
                    ..sample(t, t)
                },
                keep,
            ) {
                live.use_slot(slot);
                log.insert(slot, live.slot_samples(slot).cloned().collect::<Vec<_>>());
            }
        }
        let mut restored = PatientHistory::default();
        for (slot, samples) in log {
            restored.restore_slot(slot, samples);
        }
        assert!(restored.samples(Signal::Weight).len() > live.samples(Signal::Weight).len());
        restored.prune_restored(&retention);
        assert_eq!(restored.samples, live.samples);
    }

    #[test]
    fn lowest_before_looks_only_inside_the_window() {
        let mut h = PatientHistory::default();
        let keep = Retention {
            span_ms: 1_000,
            keep_last: 0,
        };
        for (t, v) in [(100, 70), (500, 80), (600, 75), (900, 90)] {
            h.record(sample(t, v), keep);
        }
        let low = h
            .lowest_before(Signal::Weight, 900, 450)
            .expect("in window");
        assert_eq!(low.t_ms, 600);
        assert_eq!(
            h.lowest_before(Signal::Weight, 900, 1_000).map(|s| s.t_ms),
            Some(100)
        );
        assert!(h.lowest_before(Signal::Weight, 100, 50).is_none());
        assert_eq!(
            h.newest_between(Signal::Weight, 100, 599).map(|s| s.t_ms),
            Some(500)
        );
        assert!(h.newest_between(Signal::Weight, 601, 899).is_none());
    }

    #[test]
    fn baseline_is_the_mean_of_the_hours_in_the_window() {
        let mut h = PatientHistory::default();
        let day = 24 * HOUR_MS;
        for (t, v) in [(0, 40), (10, 60), (HOUR_MS, 50), (3 * day, 10)] {
            h.add_to_baseline(Signal::Rmssd, t, Decimal::from(v), 2 * day, &mut Vec::new());
        }
        // The first two hours fell out of the 2-day span.
        assert_eq!(
            h.baseline(Signal::Rmssd, 3 * day + 1, 7 * day),
            Some((Decimal::from(10), 1))
        );
        let mut h = PatientHistory::default();
        for (t, v) in [(0, 40), (10, 60), (HOUR_MS, 50)] {
            h.add_to_baseline(Signal::Rmssd, t, Decimal::from(v), day, &mut Vec::new());
        }
        assert_eq!(
            h.baseline(Signal::Rmssd, 2 * HOUR_MS, day),
            Some((Decimal::from(50), 3))
        );
        assert_eq!(
            h.baseline(Signal::Rmssd, HOUR_MS, day).map(|b| b.1),
            Some(2)
        );
    }

    #[test]
    fn cooldown_holds_same_or_lower_severity_only() {
        let mut h = PatientHistory::default();
        let rule = AlertRule::BpCrisis;
        h.start_cooldown(rule, 1_000, Severity::Urgent);
        assert!(h.cooling_down(rule, 1_500, Severity::Urgent, 1_000));
        assert!(h.cooling_down(rule, 1_500, Severity::Warning, 1_000));
        assert!(!h.cooling_down(rule, 1_500, Severity::Critical, 1_000));
        assert!(!h.cooling_down(rule, 2_000, Severity::Urgent, 1_000));
        assert!(
            h.cooling_down(rule, 500, Severity::Urgent, 1_000),
            "older event"
        );
        assert!(!h.cooling_down(AlertRule::Fever, 1_500, Severity::Warning, 1_000));
    }
}
