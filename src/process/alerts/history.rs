//! What the alert rules remember about one patient: recent observations per
//! signal, hourly baseline sums, and the cool-down of each rule.
//!
//! Bounded by construction: samples older than the longest window a rule of
//! their signal looks back over are pruned on every insert (keeping at least
//! the count the sustained rules need), at most [`MAX_SAMPLES`] per signal;
//! baselines keep one bucket per hour.

use std::collections::VecDeque;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rules::Signal;
use crate::model::{AlertRule, Severity};

/// Most samples kept per signal and patient, whatever their age: a scale
/// used many times a day for a week stays well under it.
pub const MAX_SAMPLES: usize = 256;
const HOUR_MS: i64 = 3_600_000;

/// One remembered observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Event time, ms.
    pub t_ms: i64,
    /// Primary value (systolic for blood pressure).
    pub value: Decimal,
    /// Diastolic, for blood pressure.
    pub secondary: Option<Decimal>,
    /// Reading the value came from; held inline up to 24 bytes, so keeping a
    /// sample does not allocate for typical reading ids.
    pub reading_id: compact_str::CompactString,
}

/// Sum of one hour's values, for baselines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    hour_start_ms: i64,
    sum: Decimal,
    count: u32,
}

/// The last alert of each rule (event time, severity): what cool-downs
/// are measured from.
pub type Cooldowns = [Option<(i64, Severity)>; AlertRule::ALL.len()];

/// A signal and an event time (of samples) or hour start (of a baseline sum).
pub type SignalAt = (Signal, i64);

/// How long and how much of a signal to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Event-time span to keep, ms behind the newest sample.
    pub span_ms: i64,
    /// Newest samples always kept, whatever their age.
    pub keep_last: usize,
}

/// Alert history of one patient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientHistory {
    samples: [VecDeque<Sample>; Signal::COUNT],
    baselines: [VecDeque<Bucket>; Signal::COUNT],
    cooldowns: Cooldowns,
}

impl PatientHistory {
    /// Frees the capacity the samples and baselines do not use.
    pub fn shrink_to_fit(&mut self) {
        for q in &mut self.samples {
            q.shrink_to_fit();
        }
        for q in &mut self.baselines {
            q.shrink_to_fit();
        }
    }

    /// Samples of `signal`, oldest first.
    pub fn samples(&self, signal: Signal) -> &VecDeque<Sample> {
        &self.samples[signal as usize]
    }

    /// Remembers `sample` in event-time order and prunes what `keep` no
    /// longer needs. Pushes the event times whose samples changed (the
    /// new one's, those pruned) onto `changed`.
    pub fn record(
        &mut self,
        signal: Signal,
        sample: Sample,
        keep: Retention,
        changed: &mut Vec<i64>,
    ) {
        let samples = &mut self.samples[signal as usize];
        let at = samples.partition_point(|s| s.t_ms <= sample.t_ms);
        changed.push(sample.t_ms);
        samples.insert(at, sample);
        let newest = samples.back().map_or(i64::MIN, |s| s.t_ms);
        while samples.len() > keep.keep_last.max(1)
            && samples
                .front()
                .is_some_and(|s| s.t_ms < newest.saturating_sub(keep.span_ms))
        {
            changed.extend(samples.pop_front().map(|s| s.t_ms));
        }
        while samples.len() > MAX_SAMPLES {
            changed.extend(samples.pop_front().map(|s| s.t_ms));
        }
    }

    /// The samples of `signal` at event time `t_ms` (usually one).
    pub fn samples_at(&self, signal: Signal, t_ms: i64) -> impl Iterator<Item = &Sample> {
        let samples = self.samples(signal);
        let from = samples.partition_point(|s| s.t_ms < t_ms);
        samples.range(from..).take_while(move |s| s.t_ms == t_ms)
    }

    /// Restores one sample (no pruning: the changelog holds what was kept).
    pub fn restore_sample(&mut self, signal: Signal, sample: Sample) {
        let samples = &mut self.samples[signal as usize];
        let at = samples.partition_point(|s| s.t_ms <= sample.t_ms);
        samples.insert(at, sample);
    }

    /// Drops the samples of `signal` at `t_ms` (their record was deleted).
    pub fn forget_samples_at(&mut self, signal: Signal, t_ms: i64) {
        self.samples[signal as usize].retain(|s| s.t_ms != t_ms);
    }

    /// Drops the baseline sum of one hour (its record was deleted).
    pub fn forget_bucket(&mut self, signal: Signal, hour_start_ms: i64) {
        self.baselines[signal as usize].retain(|b| b.hour_start_ms != hour_start_ms);
    }

    /// The baseline sum and count of `signal` for the hour starting at
    /// `hour_start_ms`.
    pub fn bucket(&self, signal: Signal, hour_start_ms: i64) -> Option<(Decimal, u32)> {
        let buckets = &self.baselines[signal as usize];
        let at = buckets.partition_point(|b| b.hour_start_ms < hour_start_ms);
        buckets
            .get(at)
            .filter(|b| b.hour_start_ms == hour_start_ms)
            .map(|b| (b.sum, b.count))
    }

    /// Restores one hour's baseline sum (replacing it).
    pub fn restore_bucket(&mut self, signal: Signal, hour_start_ms: i64, sum: Decimal, count: u32) {
        let buckets = &mut self.baselines[signal as usize];
        let at = buckets.partition_point(|b| b.hour_start_ms < hour_start_ms);
        let bucket = Bucket {
            hour_start_ms,
            sum,
            count,
        };
        match buckets.get_mut(at) {
            Some(b) if b.hour_start_ms == hour_start_ms => *b = bucket,
            _ => buckets.insert(at, bucket),
        }
    }

    /// The cool-down of every rule.
    pub fn cooldowns(&self) -> &Cooldowns {
        &self.cooldowns
    }

    /// Restores the cool-downs.
    pub fn restore_cooldowns(&mut self, cooldowns: Cooldowns) {
        self.cooldowns = cooldowns;
    }

    /// Every (signal, event time) with samples and every (signal, hour)
    /// with a baseline sum: the entries the changelog holds for them.
    pub fn entries_held(&self) -> (Vec<SignalAt>, Vec<SignalAt>) {
        let mut samples = Vec::new();
        let mut buckets = Vec::new();
        for signal in Signal::ALL {
            let mut last = None;
            for s in self.samples(signal) {
                if last != Some(s.t_ms) {
                    samples.push((signal, s.t_ms));
                    last = Some(s.t_ms);
                }
            }
            buckets.extend(
                self.baselines[signal as usize]
                    .iter()
                    .map(|b| (signal, b.hour_start_ms)),
            );
        }
        (samples, buckets)
    }

    /// The lowest sample in `[t_ms − window_ms, t_ms)`, earliest on ties.
    pub fn lowest_before(&self, signal: Signal, t_ms: i64, window_ms: i64) -> Option<&Sample> {
        let from = t_ms.saturating_sub(window_ms);
        self.samples(signal)
            .iter()
            .filter(|s| s.t_ms >= from && s.t_ms < t_ms)
            .fold(None, |low: Option<&Sample>, s| match low {
                Some(l) if l.value <= s.value => Some(l),
                _ => Some(s),
            })
    }

    /// The newest sample with event time in `[from_ms, to_ms]`.
    pub fn newest_between(&self, signal: Signal, from_ms: i64, to_ms: i64) -> Option<&Sample> {
        self.samples(signal)
            .iter()
            .rev()
            .find(|s| s.t_ms >= from_ms && s.t_ms <= to_ms)
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
        let buckets = &mut self.baselines[signal as usize];
        let hour_start_ms = t_ms.div_euclid(HOUR_MS) * HOUR_MS;
        changed.push(hour_start_ms);
        let at = buckets.partition_point(|b| b.hour_start_ms < hour_start_ms);
        match buckets.get_mut(at) {
            Some(b) if b.hour_start_ms == hour_start_ms => {
                b.sum += value;
                b.count += 1;
            }
            _ => buckets.insert(
                at,
                Bucket {
                    hour_start_ms,
                    sum: value,
                    count: 1,
                },
            ),
        }
        let newest = buckets.back().map_or(i64::MIN, |b| b.hour_start_ms);
        while buckets
            .front()
            .is_some_and(|b| b.hour_start_ms < newest.saturating_sub(span_ms))
        {
            changed.extend(buckets.pop_front().map(|b| b.hour_start_ms));
        }
    }

    /// Mean and count of the baseline values of the hours starting in
    /// `[t_ms − window_ms, t_ms)`.
    pub fn baseline(&self, signal: Signal, t_ms: i64, window_ms: i64) -> Option<(Decimal, u32)> {
        let from = t_ms.saturating_sub(window_ms);
        let (sum, count) = self.baselines[signal as usize]
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
        self.cooldowns[rule as usize].is_some_and(|(last_ms, last_severity)| {
            t_ms.saturating_sub(last_ms) < cooldown_ms && severity <= last_severity
        })
    }

    /// Starts the cool-down of `rule` from an alert at `t_ms`.
    pub fn start_cooldown(&mut self, rule: AlertRule, t_ms: i64, severity: Severity) {
        let slot = &mut self.cooldowns[rule as usize];
        let from = slot.map_or(t_ms, |(last, _)| last.max(t_ms));
        *slot = Some((from, severity));
    }

    /// Entries held (samples, hourly buckets, cool-downs), for state metrics
    /// and erasure accounting.
    pub fn entries(&self) -> usize {
        self.samples.iter().map(VecDeque::len).sum::<usize>()
            + self.baselines.iter().map(VecDeque::len).sum::<usize>()
            + self.cooldowns.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: i64, value: i64) -> Sample {
        Sample {
            t_ms,
            value: Decimal::from(value),
            secondary: None,
            reading_id: format!("r-{t_ms}").into(),
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
            h.record(Signal::Weight, sample(t, t), keep, &mut Vec::new());
        }
        let kept: Vec<i64> = h.samples(Signal::Weight).iter().map(|s| s.t_ms).collect();
        assert_eq!(kept, [200, 250]);
        // The newest `keep_last` survive however old they are.
        let mut h = PatientHistory::default();
        for t in [0, 1_000_000] {
            h.record(Signal::SpO2, sample(t, 90), keep, &mut Vec::new());
        }
        assert_eq!(h.samples(Signal::SpO2).len(), 2);
    }

    #[test]
    fn lowest_before_looks_only_inside_the_window() {
        let mut h = PatientHistory::default();
        let keep = Retention {
            span_ms: 1_000,
            keep_last: 0,
        };
        for (t, v) in [(100, 70), (500, 80), (600, 75), (900, 90)] {
            h.record(Signal::Weight, sample(t, v), keep, &mut Vec::new());
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
