//! Derived metrics through a real broker: body composition joined with the
//! patient profile, and HRV windows on `vitals.hrv.windows`.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::message::Message;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;
use vitalstream::telemetry::Stats;

fn worked_example_scan() -> Measurement {
    Measurement::BodyScan(BodyScan {
        weight_kg: Decimal::new(80, 0),
        resistance_ohm: Decimal::new(450, 0),
        reactance_ohm: Decimal::new(55, 0),
        segments: vec![],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_scan_comes_out_with_the_worked_example_values() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;
    let unspecified = PatientProfile {
        sex: Sex::Unspecified,
        ..profile("p-nosex")
    };
    publish_profiles(&broker, &cfg, &[profile("p-man"), unspecified]).await;
    let at = now_ms() - 60_000;
    let recs = [
        record_of(&raw_reading("scan-1", "p-man", at, worked_example_scan())),
        record_of(&raw_reading("scan-2", "p-nosex", at, worked_example_scan())),
        record_of(&raw_reading(
            "scan-3",
            "p-stranger",
            at,
            worked_example_scan(),
        )),
    ];
    produce(&broker, &cfg.topics.raw, &recs).await;

    let p = start_pipeline(cfg.clone());
    p.wait_consumed(3, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");

    let out = read_topic(&broker, &cfg.topics.enriched, 2, Duration::from_secs(2)).await;
    assert_eq!(out.len(), 2, "both profiled scans are enriched");
    let c = codec();
    let by_id = |id: &str| {
        out.iter()
            .map(|m| {
                c.decode_enriched(m.payload().expect("value"))
                    .expect("decodes")
            })
            .find(|e| e.reading.reading_id == id)
            .unwrap_or_else(|| panic!("{id} on the enriched topic"))
    };
    let man = by_id("scan-1");
    let body = man
        .body_composition
        .expect("body composition for a full profile");
    // Strings pin the published scale as well as the value (DESIGN.md §4).
    assert_eq!(body.bmi.to_string(), "24.691");
    assert_eq!(body.fat_free_mass_kg.to_string(), "63.051");
    assert_eq!(body.fat_mass_kg.to_string(), "16.949");
    assert_eq!(body.fat_ratio_pct.to_string(), "21.19");
    assert_eq!(body.skeletal_muscle_mass_kg.to_string(), "34.959");
    assert_eq!(body.total_body_water_kg.to_string(), "46.027");
    assert_eq!(body.bmr_kcal.to_string(), "1731.9");
    assert!(man.quality_flags.is_empty(), "{:?}", man.quality_flags);
    assert_eq!(man.loinc_code, Some("29463-7"));

    let nosex = by_id("scan-2");
    assert_eq!(nosex.body_composition, None, "never guessed");
    assert_eq!(
        nosex.quality_flags,
        vec![QualityFlag::BodyCompositionUnavailable]
    );

    let dlq = read_topic(&broker, &cfg.topics.dlq, 1, Duration::from_secs(1)).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        header(&dlq[0], "reason").as_deref(),
        Some("unknown_patient")
    );
    assert_eq!(Stats::get(&stats.body_compositions), 1);
}

/// One beat as the test sees it: time (end of its RR) and RR.
#[derive(Clone, Copy)]
struct Beat {
    t: i64,
    rr: i32,
}

/// Independent reference: HRV of the beats of one window, in f64, after
/// dropping the beats the test itself marked as artifacts. Successive
/// differences pair only beats adjacent in the recording (an artifact breaks
/// the chain), as DESIGN.md §4 and the filter's contract state.
struct Reference {
    mean_nn: f64,
    sdnn: f64,
    rmssd: f64,
    pnn50: f64,
    mean_hr: f64,
}

fn reference(nn: &[(usize, i32)]) -> Reference {
    let n = nn.len();
    let v: Vec<f64> = nn.iter().map(|&(_, x)| f64::from(x)).collect();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let diffs: Vec<f64> = nn
        .windows(2)
        .filter(|w| w[1].0 == w[0].0 + 1)
        .map(|w| f64::from(w[1].1) - f64::from(w[0].1))
        .collect();
    let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let nn50 = diffs.iter().filter(|d| d.abs() > 50.0).count();
    Reference {
        mean_nn: mean,
        sdnn: var.sqrt(),
        rmssd,
        pnn50: 100.0 * nn50 as f64 / diffs.len() as f64,
        mean_hr: 60_000.0 / mean,
    }
}

fn close(got: Option<Decimal>, want: f64, what: &str) {
    let got = got
        .unwrap_or_else(|| panic!("{what} present"))
        .to_f64()
        .expect("f64");
    assert!(
        (got - want).abs() <= 0.0015,
        "{what}: published {got}, reference {want}"
    );
}

const WINDOW: i64 = 5 * 60 * 1000;
/// Breathing-like RR pattern: successive differences of 45–60 ms, all
/// within the Malik 20 % rule, some above 50 ms (pNN50 > 0).
const PATTERN: [i32; 8] = [800, 860, 905, 850, 790, 735, 790, 845];
const ARTIFACT_MS: i32 = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_rhythm_stream_produces_the_expected_windows() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-hrv"]).await;

    // Windows are epoch-aligned; start 30 s before a boundary an hour ago so
    // the first window is partial (insufficient) and the next ones full.
    let t0 = (now_ms() - 3_600_000).div_euclid(WINDOW) * WINDOW;
    let start = t0 - 30_000;
    // One continuous RR series cut into readings of varying length, so
    // readings span window boundaries. One artifact in the second window.
    let mut rr_all: Vec<i32> = (0..1400).map(|i| PATTERN[i % PATTERN.len()]).collect();
    let artifact_at = 420;
    rr_all[artifact_at] = ARTIFACT_MS;
    let mut beats = Vec::new();
    let mut t = start;
    for &rr in &rr_all {
        t += i64::from(rr);
        beats.push(Beat { t, rr });
    }
    let sizes = [37, 60, 81, 23, 60];
    let mut readings = Vec::new();
    let (mut i, mut at, mut k) = (0usize, start, 0usize);
    while i < rr_all.len() {
        let n = sizes[k % sizes.len()].min(rr_all.len() - i);
        let chunk = rr_all[i..i + n].to_vec();
        let span: i64 = chunk.iter().map(|&v| i64::from(v)).sum();
        readings.push(raw_reading(
            &format!("hr-{k:03}"),
            "p-hrv",
            at,
            Measurement::HeartRhythm(HeartRhythm {
                rr_intervals_ms: chunk,
                source: RhythmSource::Ecg,
            }),
        ));
        i += n;
        at += span;
        k += 1;
    }
    let last_beat = beats.last().expect("beats").t;
    // Out of order within the lateness bound: swap two neighbours.
    readings.swap(10, 11);
    // After everything, a reading whose window closed long ago: its beats
    // are late, counted, and reported on the patient's next window.
    let late = raw_reading(
        "hr-late",
        "p-hrv",
        t0 - 200_000,
        Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: vec![800; 20],
            source: RhythmSource::Ecg,
        }),
    );
    // Split: the late reading goes in before the stream's last chunks, so
    // the window that closes afterwards reports it.
    let tail = readings.split_off(readings.len() - 8);
    let mut recs: Vec<Rec> = readings.iter().map(record_of).collect();
    recs.push(record_of(&late));
    recs.extend(tail.iter().map(record_of));
    produce(&broker, &cfg.topics.raw, &recs).await;

    let p = start_pipeline(cfg.clone());
    p.wait_consumed(recs.len() as u64, Duration::from_secs(60))
        .await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");

    // Watermark = last beat − 2 min; every window ending at or before it closed.
    let watermark = last_beat - 120_000;
    let first_start = start.div_euclid(WINDOW) * WINDOW;
    let expected: Vec<i64> = (0..)
        .map(|w| first_start + w * WINDOW)
        .take_while(|s| s + WINDOW <= watermark)
        .collect();
    assert!(expected.len() >= 4, "the stream closes several windows");
    let out = read_topic(
        &broker,
        &cfg.topics.hrv_windows,
        expected.len(),
        Duration::from_secs(2),
    )
    .await;
    let c = codec();
    let mut windows: Vec<HrvWindow> = out
        .iter()
        .map(|m| {
            assert_eq!(m.key(), Some(&b"p-hrv"[..]), "keyed by patient");
            c.decode_hrv_window(m.payload().expect("value"))
                .expect("window decodes")
        })
        .collect();
    windows.sort_by_key(|w| w.window_start_ms);
    let starts: Vec<i64> = windows.iter().map(|w| w.window_start_ms).collect();
    assert_eq!(starts, expected, "one window per closed period, no more");

    let late_reported: u32 = windows.iter().map(|w| w.n_late).sum();
    assert_eq!(late_reported, 20, "late beats reported on a later window");
    assert_eq!(Stats::get(&stats.late_beats), 20);

    for w in &windows {
        assert_eq!(w.patient_id, "p-hrv");
        assert_eq!(w.window_end_ms - w.window_start_ms, WINDOW);
        assert_eq!(w.artifact_filter, ArtifactFilter::Malik);
        let in_window: Vec<(usize, Beat)> = beats
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, b)| (w.window_start_ms..w.window_end_ms).contains(&b.t))
            .collect();
        let rejected = in_window.iter().filter(|(i, _)| *i == artifact_at).count();
        let nn: Vec<(usize, i32)> = in_window
            .iter()
            .filter(|(i, _)| *i != artifact_at)
            .map(|(i, b)| (*i, b.rr))
            .collect();
        assert_eq!(
            w.n_rejected as usize, rejected,
            "window {}",
            w.window_start_ms
        );
        assert_eq!(w.n_beats as usize, nn.len(), "window {}", w.window_start_ms);
        let nn_time: i64 = nn.iter().map(|&(_, v)| i64::from(v)).sum();
        if nn_time < 120_000 {
            assert_eq!(w.quality, HrvQuality::Insufficient);
            assert_eq!(w.sdnn_ms, None, "no metrics when insufficient");
            continue;
        }
        assert_eq!(w.quality, HrvQuality::Ok);
        let r = reference(&nn);
        close(w.mean_nn_ms, r.mean_nn, "mean NN");
        close(w.sdnn_ms, r.sdnn, "SDNN");
        close(w.rmssd_ms, r.rmssd, "RMSSD");
        close(w.pnn50_pct, r.pnn50, "pNN50");
        close(w.mean_hr_bpm, r.mean_hr, "mean HR");
        assert!(!w.reading_ids.is_empty());
        assert!(!w.reading_ids.iter().any(|id| id == "hr-late"));
    }
    assert_eq!(windows[0].quality, HrvQuality::Insufficient);
    assert!(
        windows.iter().any(|w| w.n_rejected == 1),
        "the artifact is rejected by the Malik filter"
    );
    assert_eq!(
        Stats::get(&stats.enriched),
        recs.len() as u64,
        "every heart-rhythm reading is also published enriched"
    );
}
