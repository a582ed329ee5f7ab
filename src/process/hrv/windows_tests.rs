//! Behaviour of [`HrvWindows`]: closing, lateness, erasure, robustness, and
//! the invariance properties of the window metrics.

use proptest::prelude::*;

use super::{HrvConfig, HrvWindows};
use crate::model::{ArtifactFilter, HrvQuality, HrvWindow};

const MIN: i64 = 60_000;

fn windows(cfg: HrvConfig) -> HrvWindows {
    HrvWindows::new(cfg).expect("valid config")
}

/// `n` beats of `rr` ms.
fn steady(n: usize, rr: i32) -> Vec<i32> {
    vec![rr; n]
}

fn total(rr: &[i32]) -> i64 {
    rr.iter().map(|&x| i64::from(x)).sum()
}

#[test]
fn window_closes_when_watermark_passes_its_end() {
    let mut w = windows(HrvConfig::default());
    // 3 min of 1000 ms beats from t = 0: window [0, 5 min).
    w.add_reading("p", "r1", 0, &steady(180, 1000));
    assert!(w.advance().is_empty());
    // Newest beat at 7 min − 1 s: watermark 5 min − 1 s < end.
    w.add_reading("p", "r2", 6 * MIN, &steady(59, 1000));
    assert!(w.advance().is_empty());
    assert_eq!(w.open_windows(), 2);
    // Newest beat at 7 min: watermark = 5 min = end → closes.
    w.add_reading("p", "r3", 7 * MIN - 1000, &[1000]);
    let out = w.advance();
    assert_eq!(out.len(), 1);
    let h = &out[0];
    assert_eq!((h.window_start_ms, h.window_end_ms), (0, 5 * MIN));
    assert_eq!(h.quality, HrvQuality::Ok);
    assert_eq!((h.n_beats, h.n_rejected, h.n_late), (180, 0, 0));
    assert_eq!(h.mean_nn_ms.map(|d| d.to_string()), Some("1000.000".into()));
    assert_eq!(h.sdnn_ms.map(|d| d.to_string()), Some("0.000".into()));
    assert_eq!(h.mean_hr_bpm.map(|d| d.to_string()), Some("60.000".into()));
    assert_eq!(h.pnn50_pct.map(|d| d.to_string()), Some("0.000".into()));
    assert_eq!(h.reading_ids, vec!["r1".to_owned()]);
    assert_eq!(w.open_windows(), 1);
    assert_eq!(w.buffered_beats(), 60);
}

#[test]
fn reading_spanning_two_windows_contributes_to_both() {
    let mut w = windows(HrvConfig::default());
    // From 4 min: 30 beats in [0, 5 min) (t = 4:01 … 4:30 … 5:00 is the 60th).
    w.add_reading("p", "r1", 4 * MIN, &steady(90, 1000));
    let out = w.flush_all();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].n_beats, out[1].n_beats), (59, 31));
    assert!(out.iter().all(|h| h.reading_ids == ["r1"]));
    // Under 2 minutes of NN each: insufficient, no metrics.
    assert!(out.iter().all(|h| h.quality == HrvQuality::Insufficient
        && h.mean_nn_ms.is_none()
        && h.rmssd_ms.is_none()));
}

#[test]
fn late_beats_are_counted_and_reported_not_lost() {
    let mut w = windows(HrvConfig::default());
    w.add_reading("p", "r1", 0, &steady(180, 1000));
    // p's own newer beats (8 min) pass the end of [0, 5 min) + lateness.
    w.add_reading("p", "r2", 8 * MIN, &steady(10, 1000));
    let first = w.advance();
    assert_eq!(first.len(), 1);
    // A delayed reading for the closed window [0, 5 min).
    let o = w.add_reading("p", "late", 3 * MIN, &steady(30, 1000));
    assert_eq!((o.buffered, o.late), (0, 30));
    assert_eq!(w.late_beats_total(), 30);
    assert_eq!(w.late_beats_unreported("p"), 30);
    // Reported on p's next emitted window.
    let out = w.flush_all();
    let p: Vec<&HrvWindow> = out.iter().filter(|h| h.patient_id == "p").collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].n_late, 30);
    assert_eq!(w.late_beats_unreported("p"), 0);
}

#[test]
fn a_fast_watch_does_not_make_another_patients_beats_late() {
    let mut w = windows(HrvConfig::default());
    // q's watch runs 4 minutes fast; p's is right. They alternate.
    for k in 0..10i64 {
        let t = k * MIN;
        let o = w.add_reading("p", &format!("p{k}"), t, &steady(60, 1000));
        assert_eq!(o.late, 0, "p's beats are judged on p's clock");
        w.add_reading("q", &format!("q{k}"), t + 4 * MIN, &steady(60, 1000));
    }
    let out = w.flush_all();
    let p: Vec<&HrvWindow> = out.iter().filter(|h| h.patient_id == "p").collect();
    // Beats from 0:01 to 10:00: windows [0, 5), [5, 10) and [10, 15) min.
    assert_eq!(p.len(), 3);
    assert_eq!(p.iter().map(|h| h.n_beats).sum::<u32>(), 600);
    assert_eq!(w.late_beats_total(), 0);
}

#[test]
fn a_silent_patients_window_closes_on_partition_event_time() {
    let mut w = windows(HrvConfig::default());
    w.add_reading("p", "r1", 0, &steady(180, 1000));
    // Others move the partition's event time; p never sends again.
    w.add_reading("q", "q1", 20 * MIN, &steady(10, 1000));
    assert!(w.advance().iter().all(|h| h.patient_id != "p"));
    w.observe_event_time(5 * MIN + 30 * MIN);
    let out = w.advance();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].patient_id.as_str(), out[0].n_beats), ("p", 180));
}

#[test]
fn a_watch_uploading_hours_of_backlog_is_not_cut_off() {
    let mut w = windows(HrvConfig::default());
    w.observe_event_time(10 * 60 * MIN);
    // p's phone was away all morning: ten minutes of minute-long readings
    // from 6 hours ago arrive now, one batch per reading.
    let mut out = Vec::new();
    for k in 0..10i64 {
        let o = w.add_reading(
            "p",
            &format!("r{k}"),
            4 * 60 * MIN + k * MIN,
            &steady(60, 1000),
        );
        assert_eq!(o.late, 0);
        out.extend(w.advance());
    }
    out.extend(w.flush_all());
    assert_eq!(out.iter().map(|h| h.n_beats).sum::<u32>(), 600);
}

#[test]
fn implausible_rr_values_are_rejected_beats_that_keep_the_clock() {
    let mut w = windows(HrvConfig {
        artifact_filter: ArtifactFilter::None,
        ..HrvConfig::default()
    });
    w.set_plausible_rr(200, 3000);
    // 60 normal beats, a 3.5 s pause, 60 normal beats.
    let mut rr = steady(60, 1000);
    rr.push(3500);
    rr.extend(steady(60, 1000));
    let o = w.add_reading("p", "r", 0, &rr);
    assert_eq!((o.buffered, o.invalid, o.late), (120, 1, 0));
    let out = w.flush_all();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].n_beats, out[0].n_rejected), (120, 1));
    // The beats after the pause sit 3.5 s later: the pause advanced the
    // clock, and no successive difference spans it (RMSSD of equal beats).
    assert_eq!(out[0].rmssd_ms.map(|d| d.to_string()), Some("0.000".into()));
}

#[test]
fn beats_within_lateness_still_count() {
    let mut w = windows(HrvConfig::default());
    w.add_reading("p", "r2", 5 * MIN, &steady(60, 1000));
    // 6 min newest → watermark 4 min; the window [0, 5 min) is still open.
    let o = w.add_reading("p", "r1", 2 * MIN, &steady(150, 1000));
    assert_eq!((o.buffered, o.late), (150, 0));
    let out = w.flush_all();
    assert_eq!(out[0].n_beats, 150);
    assert_eq!(out[0].reading_ids, ["r1"]);
}

#[test]
fn purge_erases_a_patient() {
    let mut w = windows(HrvConfig::default());
    w.add_reading("p", "r1", 0, &steady(100, 1000));
    w.add_reading("p", "r2", 6 * MIN, &steady(10, 1000));
    w.add_reading("q", "r3", 0, &steady(10, 1000));
    assert_eq!(w.purge_patient("p"), 110);
    assert_eq!(w.purge_patient("p"), 0);
    assert_eq!(
        (w.open_windows(), w.buffered_beats(), w.patients()),
        (1, 10, 1)
    );
    let out = w.flush_all();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].patient_id, "q");
}

#[test]
fn bad_rr_values_never_panic_or_produce_nan() {
    let mut w = windows(HrvConfig {
        artifact_filter: ArtifactFilter::None,
        min_nn_duration_ms: 0,
        ..HrvConfig::default()
    });
    assert_eq!(w.add_reading("p", "empty", 0, &[]), Default::default());
    assert_eq!(w.open_windows(), 0);
    let o = w.add_reading("p", "r", 0, &[0, -5, i32::MIN, 800, 0, 810]);
    assert_eq!((o.buffered, o.invalid), (2, 4));
    w.add_reading("p", "edge", i64::MAX - 10, &[i32::MAX, 5]);
    w.add_reading("p", "edge2", i64::MIN, &[1, i32::MAX]);
    let out = w.flush_all();
    let h = out
        .iter()
        .find(|h| h.window_start_ms == 0)
        .expect("window 0");
    assert_eq!((h.n_beats, h.n_rejected), (2, 4));
    // 800 → 810 are adjacent despite the zeros in between: they carry no time.
    assert_eq!(h.rmssd_ms.map(|d| d.to_string()), Some("10.000".into()));
    for h in &out {
        for v in [
            h.mean_nn_ms,
            h.sdnn_ms,
            h.rmssd_ms,
            h.pnn50_pct,
            h.mean_hr_bpm,
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(v.scale(), 3);
        }
    }
}

#[test]
fn malik_window_with_artifacts() {
    let mut w = windows(HrvConfig::default());
    let mut rr = steady(200, 900);
    rr[50] = 250; // out of range
    rr[100] = 1500; // Malik
    rr[150] = 3000; // out of range
    w.add_reading("p", "r", 0, &rr);
    let out = w.flush_all();
    assert_eq!((out[0].n_beats, out[0].n_rejected), (197, 3));
    assert_eq!(out[0].rmssd_ms.map(|d| d.to_string()), Some("0.000".into()));
}

#[test]
fn invalid_config_is_rejected() {
    for cfg in [
        HrvConfig {
            window_ms: 0,
            ..HrvConfig::default()
        },
        HrvConfig {
            allowed_lateness_ms: -1,
            ..HrvConfig::default()
        },
        HrvConfig {
            min_nn_duration_ms: -1,
            ..HrvConfig::default()
        },
    ] {
        assert!(HrvWindows::new(cfg).is_err());
    }
    let err = HrvConfig {
        window_ms: 0,
        ..HrvConfig::default()
    }
    .validate()
    .expect_err("invalid");
    assert_eq!(err.to_string(), "hrv.window_ms=0: must be in 1..=86400000");
}

/// Window outputs without reading ids (which legitimately depend on the split).
fn metrics_only(mut out: Vec<HrvWindow>) -> Vec<HrvWindow> {
    for h in &mut out {
        h.reading_ids.clear();
    }
    out
}

/// Splits `rr` at `cuts` into contiguous readings `(measured_at, rr)`.
fn split(start: i64, rr: &[i32], cuts: &[usize]) -> Vec<(i64, Vec<i32>)> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (rr.len() + 1)).collect();
    cuts.push(0);
    cuts.push(rr.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut t = start;
    cuts.windows(2)
        .map(|p| {
            let part = rr[p[0]..p[1]].to_vec();
            let at = t;
            t += total(&part);
            (at, part)
        })
        .collect()
}

/// RR series with occasional artifacts so the filter has work to do.
fn rr_series() -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(
        prop_oneof![
            20 => 600i32..1200,
            1 => 200i32..2600,
        ],
        1..700,
    )
}

fn cfg(filter: bool, lateness_ms: i64) -> HrvConfig {
    HrvConfig {
        window_ms: 2 * MIN,
        allowed_lateness_ms: lateness_ms,
        artifact_filter: if filter {
            ArtifactFilter::Malik
        } else {
            ArtifactFilter::None
        },
        min_nn_duration_ms: 30_000,
        idle_close_ms: 30 * MIN,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn metrics_do_not_depend_on_reading_split(
        rr in rr_series(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        start in -10_000_000i64..10_000_000,
        filter in any::<bool>(),
    ) {
        let mut whole = windows(cfg(filter, MIN));
        whole.add_reading("p", "all", start, &rr);
        let want = metrics_only(whole.flush_all());

        let mut parts = windows(cfg(filter, MIN));
        for (i, (at, part)) in split(start, &rr, &cuts).iter().enumerate() {
            let o = parts.add_reading("p", &i.to_string(), *at, part);
            prop_assert_eq!(o.late, 0);
        }
        prop_assert_eq!(metrics_only(parts.flush_all()), want);
    }

    #[test]
    fn metrics_do_not_depend_on_arrival_order_within_lateness(
        rr in rr_series(),
        chunk in 1usize..=20,
        jitter in prop::collection::vec(0i64..MIN, 1..50),
        filter in any::<bool>(),
    ) {
        // Readings of at most 20 beats (≤ 52 s) delayed by up to 1 min of
        // jitter, with 2 min allowed lateness: the newest beat seen when a
        // reading arrives is < 1 min + 52 s after its start, so nothing is
        // late. Windows (2 min) close along the way.
        let mut readings = Vec::new();
        let mut t = 0i64;
        for part in rr.chunks(chunk) {
            readings.push((t, part.to_vec()));
            t += total(part);
        }
        let run = |order: &[usize]| -> Result<Vec<HrvWindow>, TestCaseError> {
            let mut w = windows(cfg(filter, 2 * MIN));
            let mut out = Vec::new();
            for &i in order {
                let (at, part) = &readings[i];
                let o = w.add_reading("p", &i.to_string(), *at, part);
                prop_assert_eq!(o.late, 0);
                out.extend(w.advance());
            }
            out.extend(w.flush_all());
            Ok(out)
        };
        let in_order: Vec<usize> = (0..readings.len()).collect();
        let mut arrival = in_order.clone();
        arrival.sort_by_key(|&i| (readings[i].0 + jitter[i % jitter.len()], i));
        let want = run(&in_order)?;
        prop_assert!(want.iter().all(|h| h.n_late == 0));
        prop_assert_eq!(run(&arrival)?, want);
    }

    #[test]
    fn every_rr_value_is_accounted_for(
        readings in prop::collection::vec(
            (0i64..20 * MIN, prop::collection::vec(-100i32..3000, 0..120)),
            1..40,
        ),
        lateness in 0i64..3 * MIN,
    ) {
        let mut w = windows(cfg(true, lateness));
        let (mut late, mut out) = (0u64, Vec::new());
        let mut n_rr = 0u64;
        for (i, (at, rr)) in readings.iter().enumerate() {
            n_rr += rr.len() as u64;
            let o = w.add_reading(&format!("p{}", i % 3), &i.to_string(), *at, rr);
            late += u64::from(o.late);
            out.extend(w.advance());
        }
        out.extend(w.flush_all());
        prop_assert_eq!(w.late_beats_total(), late);
        let emitted: u64 = out.iter().map(|h| u64::from(h.n_beats) + u64::from(h.n_rejected)).sum();
        prop_assert_eq!(emitted + late, n_rr);
        let reported: u64 = out.iter().map(|h| u64::from(h.n_late)).sum();
        let unreported: u64 = (0..3).map(|p| u64::from(w.late_beats_unreported(&format!("p{p}")))).sum();
        prop_assert_eq!(reported + unreported, late);
        for h in &out {
            prop_assert_eq!(h.quality == HrvQuality::Ok, h.sdnn_ms.is_some());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// DESIGN.md §4: one patient's device can never make another patient's
    /// beats late. Patient p's readings (in order) give the same windows
    /// whatever other patients' readings, with clocks hours slow to minutes
    /// fast (within what validation lets through), share the partition in
    /// any interleaving.
    #[test]
    fn a_patients_windows_do_not_depend_on_other_patients(
        own in prop::collection::vec(prop::collection::vec(600i32..1400, 1..60), 1..12),
        others in prop::collection::vec(
            (0usize..4, -4 * 60 * MIN..15 * MIN, prop::collection::vec(250i32..2500, 1..60)),
            0..40,
        ),
        slots in prop::collection::vec(any::<prop::sample::Index>(), 40),
        filter in any::<bool>(),
    ) {
        let base = 1_700_000_000_000i64;
        let mut p_readings = Vec::new();
        let mut t = base;
        for rr in &own {
            p_readings.push((t, rr.clone()));
            t += total(rr);
        }
        let run = |with_others: bool| -> Vec<HrvWindow> {
            let mut w = windows(cfg(filter, 2 * MIN));
            let mut out = Vec::new();
            let mut theirs = others.iter().enumerate().peekable();
            for (i, (at, rr)) in p_readings.iter().enumerate() {
                // A few of the others' readings before each of p's.
                let n = if with_others { slots[i].index(others.len() + 1) } else { 0 };
                for _ in 0..n {
                    if let Some((j, (q, dt, rr))) = theirs.next() {
                        w.add_reading(&format!("q{q}"), &format!("o{j}"), base + dt, rr);
                        out.extend(w.advance());
                    }
                }
                w.add_reading("p", &format!("p{i}"), *at, rr);
                out.extend(w.advance());
            }
            if with_others {
                for (j, (q, dt, rr)) in theirs {
                    w.add_reading(&format!("q{q}"), &format!("o{j}"), base + dt, rr);
                    out.extend(w.advance());
                }
            }
            out.extend(w.flush_all());
            out.retain(|h| h.patient_id == "p");
            out
        };
        let alone = run(false);
        prop_assert!(alone.iter().all(|h| h.n_late == 0));
        prop_assert_eq!(run(true), alone);
    }
}
