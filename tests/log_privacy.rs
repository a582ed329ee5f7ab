//! Privacy in logs (DESIGN.md §7): a full run of the binary on tansu, with
//! JSON logs at debug, over a workload of valid, invalid (out of range,
//! malformed, unknown patient), erased and alert-raising readings plus
//! broken patient records. No line at INFO or above names a patient, and no
//! line at WARN or above carries a clinical value.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use vitalstream::model::{BloodPressure, BodyScan, Measurement};
use vitalstream::pipeline::now_ms;

const BIN: &str = env!("CARGO_BIN_EXE_vitalstream");

/// Every patient id of the test contains this; nothing else does.
const TAG: &str = "Pv7qXz";

fn patient(n: &str) -> String {
    format!("pt-{TAG}-{n}")
}

/// Whether `line` contains `value` as a whole number (not inside a longer
/// one, such as a timestamp or a duration).
fn has_number(line: &str, value: &str) -> bool {
    let digit_or_dot = |c: char| c.is_ascii_digit() || c == '.';
    line.match_indices(value).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + value.len()..].chars().next();
        !before.is_some_and(digit_or_dot) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// The vitalstream child, killed if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sum of a counter's series on `/metrics`.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_full_run_name_no_patient_and_no_clinical_value() {
    let broker = start_broker().await;
    let cfg = config(&broker);
    create_topics(&broker, &cfg, 2).await;

    // Patients: two known, one erased before the run.
    let (alice, bob, erased) = (patient("alice"), patient("bob"), patient("erased"));
    register_patients(&broker, &cfg, &[&alice, &bob, &erased]).await;
    erase_patient(&broker, &cfg, &erased).await;
    // Broken patient records: one that does not decode, one whose key is
    // not its patient id. Both are logged at WARN.
    let codec = codec();
    let mut mismatched = Vec::new();
    codec
        .encode_profile(&profile(&patient("inside")), &mut mismatched)
        .expect("encode");
    produce(
        &broker,
        &cfg.topics.patients,
        &[
            Rec::new(
                &patient("garbage"),
                b"\x00\x00\x00\x00\x07not avro".to_vec(),
            ),
            Rec::new(&patient("outside"), mismatched),
        ],
    )
    .await;

    // Distinctive clinical values (decimals, so they do not occur by chance).
    let weight = Decimal::new(123_457, 3); // 123.457 kg, valid
    let spo2_low = Decimal::new(864, 1); // 86.4 %, valid, then
    let spo2_lower = Decimal::new(879, 1); // 87.9 %: two low readings raise spo2_low
    let spo2_bad = Decimal::new(1_037, 1); // 103.7 %, out of range
    let temp_bad = Decimal::new(4_683, 2); // 46.83 °C, out of range
    let temp_erased = Decimal::new(3_917, 2); // 39.17 °C, erased patient
    let temp_unknown = Decimal::new(3_829, 2); // 38.29 °C, unknown patient
    let values = [
        "123.457", "86.4", "87.9", "103.7", "46.83", "39.17", "38.29",
    ];

    let t = now_ms() - 120_000;
    let scan = |w: Decimal| {
        Measurement::BodyScan(BodyScan {
            weight_kg: w,
            resistance_ohm: Decimal::new(45_000, 2),
            reactance_ohm: Decimal::new(5_500, 2),
            segments: vec![],
        })
    };
    let mut records = vec![
        raw_record("r-1", &alice, t, scan(weight)),
        raw_record(
            "r-2",
            &alice,
            t + 1_000,
            Measurement::SpO2 { pct: spo2_low },
        ),
        raw_record(
            "r-2b",
            &alice,
            t + 1_500,
            Measurement::SpO2 { pct: spo2_lower },
        ),
        raw_record(
            "r-3",
            &bob,
            t + 2_000,
            Measurement::BloodPressure(BloodPressure {
                systolic_mmhg: 131,
                diastolic_mmhg: 83,
                pulse_bpm: Some(71),
            }),
        ),
        raw_record("r-4", &bob, t + 3_000, Measurement::SpO2 { pct: spo2_bad }),
        raw_record(
            "r-5",
            &bob,
            t + 4_000,
            Measurement::Temperature { celsius: temp_bad },
        ),
        raw_record(
            "r-6",
            &erased,
            t + 5_000,
            Measurement::Temperature {
                celsius: temp_erased,
            },
        ),
        raw_record(
            "r-7",
            &patient("unknown"),
            t + 6_000,
            Measurement::Temperature {
                celsius: temp_unknown,
            },
        ),
        // Malformed: not Avro at all, keyed by a patient.
        Rec::new(&alice, b"\x00\x00\x00\x00\x01\xff\xff\xff garbage".to_vec()),
    ];
    // A duplicate of r-1, and enough valid readings that the invalid ones
    // stay under the invalid-ratio guard.
    records.push(records[0].clone());
    for i in 0..12 {
        let m = Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 118 + i,
            diastolic_mmhg: 79,
            pulse_bpm: Some(66),
        });
        let who = if i % 2 == 0 { &alice } else { &bob };
        records.push(raw_record(
            &format!("ok-{i}"),
            who,
            t + 10_000 + i64::from(i) * 1_000,
            m,
        ));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vitalstream.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = {:?}\ngroup_id = \"privacy\"\nsession_timeout_ms = 6000\n\
             changelog_reader = \"log_markers\"\n\
             [processing]\nbatch_max_wait_ms = 20\n\
             [http]\nlisten_addr = \"127.0.0.1:0\"\n\
             [telemetry]\nlog_format = \"json\"\nlog_level = \"debug\"\n",
            broker.bootstrap
        ),
    )
    .expect("config");
    let log = dir.path().join("stderr.log");
    let mut child = KillOnDrop(
        Command::new(BIN)
            // --create-topics: the group's state topic (the rest exist).
            .args(["run", "--create-topics", "--config"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start vitalstream"),
    );
    produce(&broker, &cfg.topics.raw, &records).await;
    let http = http_addr_from_log(&log, Duration::from_secs(30)).await;

    // Wait until every record was consumed and an alert went out.
    wait_for(
        Duration::from_secs(60),
        format_args!("{} records consumed and an alert", records.len()),
        async || {
            assert!(
                child.0.try_wait().expect("poll").is_none(),
                "vitalstream exited early: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            let (_, metrics) = http_get(http, "/metrics").await;
            let seen = (
                counter(&metrics, "vitalstream_readings_consumed_total"),
                counter(&metrics, "vitalstream_alerts_total"),
            );
            if seen.0 >= records.len() as f64 && seen.1 >= 1.0 {
                Ok(())
            } else {
                Err(format!("(consumed, alerts) = {seen:?}"))
            }
        },
    )
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = wait_exit(&mut child.0, Duration::from_secs(30), "of SIGTERM").await;
    assert_eq!(exit.code(), Some(0), "clean shutdown");

    let text = std::fs::read_to_string(&log).expect("log");
    let mut by_level: BTreeMap<String, usize> = BTreeMap::new();
    let mut leaks = Vec::new();
    for line in text.lines() {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
            // Only the final `error:` line may be plain text; none is expected.
            leaks.push(format!("not a JSON log line: {line}"));
            continue;
        };
        let level = json["level"].as_str().unwrap_or("?").to_owned();
        *by_level.entry(level.clone()).or_default() += 1;
        let at_least_info = matches!(level.as_str(), "INFO" | "WARN" | "ERROR");
        let at_least_warn = matches!(level.as_str(), "WARN" | "ERROR");
        if at_least_info && line.contains(TAG) {
            leaks.push(format!("patient id at {level}: {line}"));
        }
        if at_least_warn {
            for v in values {
                if has_number(line, v) {
                    leaks.push(format!("clinical value {v} at {level}: {line}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "PHI in logs:\n{}", leaks.join("\n"));
    // The scan saw the run: its start, its warnings (the broken patient
    // records) and the per-record debug lines.
    for level in ["INFO", "WARN", "DEBUG"] {
        assert!(
            by_level.get(level).copied().unwrap_or(0) > 0,
            "{level} lines in the log: {by_level:?}"
        );
    }
}

#[test]
fn a_number_is_found_whole_only() {
    assert!(has_number("value=86.4 x", "86.4"));
    assert!(has_number("\"v\":\"86.4\"", "86.4"));
    assert!(!has_number("took 0.864s", "86.4"));
    assert!(!has_number("took 186.45s", "86.4"));
    assert!(!has_number("t=1286.4", "86.4"));
}
