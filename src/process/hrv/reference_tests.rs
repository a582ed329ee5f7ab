//! Our window metrics against an independent implementation (hrv-analysis
//! 1.0.6) on real NN series from MIT-BIH NSRDB, as bundled with pyhrv 0.5.0.
//! Fixture, licence and the reference script: `tests/fixtures/hrv/README.md`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use super::{HrvConfig, HrvWindows};
use crate::model::{ArtifactFilter, HrvQuality, HrvWindow};

const EXPECTED: &str = include_str!("../../../tests/fixtures/hrv/expected.json");
const SHORT: &str = include_str!("../../../tests/fixtures/hrv/nsrdb_short_rr_ms.txt");
const LONG: &str = include_str!("../../../tests/fixtures/hrv/nsrdb_long_rr_ms.txt");

/// Ours are rounded to 3 decimals: half a unit plus float noise.
const TOLERANCE: f64 = 0.0005 + 1e-9;

fn series(text: &str) -> Vec<i32> {
    text.lines()
        .map(|l| l.trim().parse().expect("integer RR"))
        .collect()
}

/// Feeds `rr` from t = 0 as readings of 60 intervals. With `advance`, closed
/// windows are collected after every reading (watermark path), else all at
/// the end with `flush_all`.
fn run(rr: &[i32], filter: ArtifactFilter, advance: bool) -> BTreeMap<i64, HrvWindow> {
    let mut w = HrvWindows::new(HrvConfig {
        artifact_filter: filter,
        ..HrvConfig::default()
    })
    .expect("valid config");
    assert_eq!(w.config().window_ms, 300_000);
    let mut out = Vec::new();
    let mut t = 0i64;
    for (i, chunk) in rr.chunks(60).enumerate() {
        let o = w.add_reading("p1", &format!("r{i:03}"), t, chunk);
        assert_eq!(o.late, 0);
        t += chunk.iter().map(|&x| i64::from(x)).sum::<i64>();
        if advance {
            out.extend(w.advance());
        }
    }
    out.extend(w.flush_all());
    assert_eq!(w.buffered_beats(), 0);
    out.into_iter().map(|h| (h.window_start_ms, h)).collect()
}

fn close(ours: Option<Decimal>, reference: &Value, what: &str, at: i64) {
    let ours = ours
        .and_then(|d| d.to_f64())
        .unwrap_or_else(|| panic!("{what} missing at {at}"));
    let want = reference[what].as_f64().expect("reference number");
    assert!(
        (ours - want).abs() <= TOLERANCE,
        "{what} at window {at}: ours {ours} vs reference {want}"
    );
}

fn check(name: &str, rr: &[i32]) {
    let expected: Value = serde_json::from_str(EXPECTED).expect("expected.json");
    assert_eq!(expected["window_ms"].as_i64(), Some(300_000));
    let reference = &expected["series"][name];
    assert_eq!(reference["n_rr"].as_u64(), Some(rr.len() as u64));
    let windows = reference["windows"].as_array().expect("windows");
    let mut checked = 0;
    for filter in [ArtifactFilter::None, ArtifactFilter::Malik] {
        for advance in [false, true] {
            let ours = run(rr, filter, advance);
            let refs: Vec<&Value> = windows
                .iter()
                .filter(|w| w["filter"].as_str() == Some(filter.as_str()))
                .collect();
            assert_eq!(ours.len(), refs.len(), "{name} {filter:?}");
            for r in refs {
                let start = r["window_start_ms"].as_i64().expect("start");
                let h = ours.get(&start).expect("window present");
                assert_eq!(h.quality, HrvQuality::Ok);
                assert_eq!(h.artifact_filter, filter);
                assert_eq!(i64::from(h.n_beats), r["n_beats"].as_i64().expect("n"));
                assert_eq!(
                    i64::from(h.n_rejected),
                    r["n_rejected"].as_i64().expect("n")
                );
                for (ours, what) in [
                    (h.mean_nn_ms, "mean_nn_ms"),
                    (h.sdnn_ms, "sdnn_ms"),
                    (h.rmssd_ms, "rmssd_ms"),
                    (h.pnn50_pct, "pnn50_pct"),
                    (h.mean_hr_bpm, "mean_hr_bpm"),
                ] {
                    close(ours, r, what, start);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4);
}

#[test]
fn nsrdb_short_five_minutes_matches_hrv_analysis() {
    let rr = series(SHORT);
    assert_eq!(rr.len(), 337);
    check("nsrdb_short", &rr);
}

#[test]
fn nsrdb_long_twelve_windows_match_hrv_analysis() {
    let rr = series(LONG);
    assert_eq!(rr.len(), 4684);
    check("nsrdb_long", &rr);
}
