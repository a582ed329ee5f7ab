//! Operators' view of a running pipeline: `/metrics` after known traffic
//! matches what was processed and passes `promtool check metrics`;
//! `/healthz` and `/readyz` answer. One test per binary, because the
//! Prometheus recorder is process-wide and the values are compared exactly.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use tokio::time::Instant;
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;

fn bp(sys: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: 75,
        pulse_bpm: Some(70),
    })
}

/// Series → value from the Prometheus text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn promtool() -> String {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool not found: install Debian's prometheus package (apt-get install -y prometheus); scripts/test.sh does this"
    );
    "promtool".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_traffic_match_what_was_processed() {
    let promtool = promtool();
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;
    register_numbered(&broker, &cfg, 5).await;
    register_patients(&broker, &cfg, &["p-gone"]).await;
    erase_patient(&broker, &cfg, "p-gone").await;

    let p = start_pipeline(cfg.clone());
    let addr = p.http_addr().await;
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http_get(addr, "/readyz").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "not ready is 503: {body}");
        assert!(body.starts_with("not ready: "), "{body}");
        assert!(Instant::now() < deadline, "ready within 60 s: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let now = now_ms();
    let mut recs = Vec::new();
    for i in 0..40 {
        recs.push(raw_record(
            &format!("r-{i}"),
            &format!("p-{}", i % 5),
            now - 5_000,
            bp(118 + i % 20),
        ));
    }
    recs.push(recs[0].clone()); // duplicate
    recs.push(recs[1].clone()); // duplicate
    recs.push(Rec::new("p-1", b"garbage".to_vec())); // malformed
    recs.push(raw_record("oor", "p-2", now - 5_000, bp(400))); // out_of_range
    recs.push(raw_record("who", "p-x", now - 5_000, bp(120))); // unknown_patient
    recs.push(raw_record("gone-1", "p-gone", now - 5_000, bp(120))); // erased
    recs.push(Rec::new("p-gone", b"garbage".to_vec())); // erased, even undecodable
    // Heart rhythm: 10 minutes of beats in 60-beat readings, an hour ago:
    // closes at least one 5-minute window.
    let mut at = now - 3_600_000;
    for i in 0..10 {
        recs.push(raw_record(
            &format!("hr-{i}"),
            "p-3",
            at,
            Measurement::HeartRhythm(HeartRhythm {
                rr_intervals_ms: vec![1000; 60],
                source: RhythmSource::Ppg,
            }),
        ));
        at += 60_000;
    }
    produce(&broker, &cfg.topics.raw, &recs).await;
    p.wait_consumed(recs.len() as u64, Duration::from_secs(60))
        .await;
    let windows =
        p.stats.hrv_windows(HrvQuality::Ok) + p.stats.hrv_windows(HrvQuality::Insufficient);
    assert!(windows >= 1, "a window closed");

    // Consumer lag comes from librdkafka statistics every 5 s and counts
    // from the committed offset: scrape until both partitions report 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, m) = loop {
        let (status, text) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200);
        let m = parse(&text);
        let lags: Vec<f64> = ["0", "1"]
            .iter()
            .filter_map(|p| {
                m.get(&format!("vitalstream_consumer_lag{{partition=\"{p}\"}}"))
                    .copied()
            })
            .collect();
        if lags.len() == 2 && lags.iter().all(|l| *l == 0.0) {
            break (text, m);
        }
        assert!(
            Instant::now() < deadline,
            "consumer lag of both partitions reaches 0 within 20 s: {lags:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let get = |series: &str| {
        *m.get(series)
            .unwrap_or_else(|| panic!("{series} missing from /metrics:\n{text}"))
    };
    let total = recs.len() as f64;
    assert_eq!(get("vitalstream_readings_consumed_total"), total);
    assert_eq!(
        get("vitalstream_readings_enriched_total{kind=\"blood_pressure\"}"),
        40.0
    );
    assert_eq!(
        get("vitalstream_readings_enriched_total{kind=\"heart_rhythm\"}"),
        10.0
    );
    assert_eq!(get("vitalstream_readings_duplicate_total"), 2.0);
    assert_eq!(get("vitalstream_readings_erased_total"), 2.0);
    for reason in ["malformed", "out_of_range", "unknown_patient"] {
        assert_eq!(
            get(&format!(
                "vitalstream_readings_rejected_total{{reason=\"{reason}\"}}"
            )),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        get("vitalstream_readings_rejected_total{reason=\"key_mismatch\"}"),
        0.0,
        "every reason is exported from the start"
    );
    let published_windows = get("vitalstream_hrv_windows_total{quality=\"ok\"}")
        + get("vitalstream_hrv_windows_total{quality=\"insufficient\"}");
    assert_eq!(published_windows, windows as f64);
    assert_eq!(get("vitalstream_profiles"), 5.0, "erased profile removed");
    assert_eq!(get("vitalstream_erased_patients"), 1.0);
    assert_eq!(
        get("vitalstream_profile_updates_total{kind=\"tombstone\"}"),
        1.0
    );
    assert_eq!(get("vitalstream_ready"), 1.0);
    assert_eq!(get("vitalstream_assigned_partitions"), 2.0);
    assert_eq!(
        get("vitalstream_publish_latency_seconds_count"),
        total,
        "one latency sample per consumed reading"
    );
    assert_eq!(get("vitalstream_event_time_lag_seconds_count"), 50.0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("vitalstream_build_info{version=")),
        "build info exported"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("p-") && !line.contains("dev-"),
            "no patient or device id in a series: {line}"
        );
    }

    // The exposition format is valid for Prometheus.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = check.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The dashboard and the alert rules query only series this process exports.
    let families: std::collections::BTreeSet<String> = m
        .keys()
        .map(|series| {
            let name = series.split('{').next().unwrap_or(series);
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name)
                .to_owned()
        })
        .collect();
    for (what, names) in [
        ("dashboard", common::monitoring::dashboard_metric_names()),
        ("alert rules", common::monitoring::rule_metric_names()),
    ] {
        let missing: Vec<&String> = names.difference(&families).collect();
        assert!(
            missing.is_empty(),
            "{what} query series not in /metrics: {missing:?}"
        );
    }

    p.stop().await.expect("clean stop");
}
