//! Clinician alert scenarios (DESIGN.md §5) end to end through a real
//! Kafka-protocol broker: readings in on the raw topic, alerts read back from
//! `vitals.alerts`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::message::Message;
use rust_decimal::Decimal;
use vitalstream::config::Config;
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;
use vitalstream::telemetry::Stats;

const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

fn weight(grams: i64) -> Measurement {
    Measurement::BodyScan(BodyScan {
        weight_kg: Decimal::new(grams, 3),
        resistance_ohm: Decimal::new(50_000, 2),
        reactance_ohm: Decimal::new(5_000, 2),
        segments: vec![],
    })
}

fn bp(sys: i32, dia: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: Some(72),
    })
}

fn spo2(tenths: i64) -> Measurement {
    Measurement::SpO2 {
        pct: Decimal::new(tenths, 1),
    }
}

fn with_override(mut p: PatientProfile, rule: AlertRule, threshold: Decimal) -> PatientProfile {
    p.threshold_overrides.push(ThresholdOverride {
        rule: rule.as_str().into(),
        threshold,
    });
    p
}

async fn run_until_consumed(cfg: Config, n: u64) -> std::sync::Arc<Stats> {
    let p = start_pipeline(cfg);
    p.wait_consumed(n, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinical_scenarios_raise_exactly_the_expected_alerts() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    // A week of scale history must pass dedup, so the horizon covers it.
    cfg.validation.dedup_horizon_ms = 8 * DAY;
    create_topics(&broker, &cfg, 2).await;
    let mut hf = profile("p-hf");
    hf.care_team = vec!["hf-nurses".into(), "dr-cardio".into()];
    hf.dry_weight_kg = Some(Decimal::new(80_000, 3));
    let mut no_consent = profile("p-no-consent");
    no_consent.consent_clinician_sharing = false;
    let copd = with_override(profile("p-copd"), AlertRule::Spo2Low, Decimal::from(88));
    publish_profiles(
        &broker,
        &cfg,
        &[
            hf,
            profile("p-crisis"),
            profile("p-unconfirmed"),
            no_consent,
            copd,
            profile("p-spo2"),
        ],
    )
    .await;

    let now = now_ms();
    let start = now - 6 * DAY - 60 * MIN;
    let mut recs = Vec::new();
    // Heart failure: +2.5 kg over 6 days, never 0.9 kg within a day.
    for (day, grams) in [80_000, 80_400, 80_850, 81_300, 81_700, 82_100, 82_500]
        .into_iter()
        .enumerate()
    {
        recs.push(raw_record(
            &format!("hf-{day}"),
            "p-hf",
            start + day as i64 * DAY,
            weight(grams),
        ));
    }
    let t = now - 30 * MIN;
    // 185/125 confirmed 3 minutes later.
    recs.push(raw_record("cr-1", "p-crisis", t, bp(185, 125)));
    recs.push(raw_record("cr-2", "p-crisis", t + 3 * MIN, bp(183, 122)));
    // 185/125 whose repeat is below the crisis range.
    recs.push(raw_record("un-1", "p-unconfirmed", t, bp(185, 125)));
    recs.push(raw_record(
        "un-2",
        "p-unconfirmed",
        t + 3 * MIN,
        bp(150, 95),
    ));
    // The same confirmed crisis, without consent to clinician sharing.
    recs.push(raw_record("nc-1", "p-no-consent", t, bp(185, 125)));
    recs.push(raw_record(
        "nc-2",
        "p-no-consent",
        t + 3 * MIN,
        bp(183, 122),
    ));
    // SpO2 89 % twice: an alert by default, none under a COPD limit of 88 %.
    for p in ["p-copd", "p-spo2"] {
        recs.push(raw_record(&format!("{p}-1"), p, t, spo2(890)));
        recs.push(raw_record(&format!("{p}-2"), p, t + 4 * MIN, spo2(892)));
    }
    produce(&broker, &cfg.topics.raw, &recs).await;
    let stats = run_until_consumed(cfg.clone(), recs.len() as u64).await;
    assert_eq!(
        Stats::get(&stats.enriched),
        recs.len() as u64,
        "every reading is enriched, with or without consent"
    );

    let msgs = read_topic(&broker, &cfg.topics.alerts, 4, Duration::from_secs(3)).await;
    let alerts = alerts_by_patient(&msgs);
    assert_eq!(
        alert_rules(alerts.get("p-hf")),
        [(AlertRule::WeightGain7d, Severity::Warning)]
    );
    assert_eq!(
        alert_rules(alerts.get("p-crisis")),
        [(AlertRule::BpCrisis, Severity::Critical)]
    );
    assert_eq!(
        alert_rules(alerts.get("p-unconfirmed")),
        [(AlertRule::BpCrisis, Severity::Urgent)]
    );
    assert_eq!(
        alert_rules(alerts.get("p-spo2")),
        [(AlertRule::Spo2Low, Severity::Urgent)]
    );
    assert!(!alerts.contains_key("p-no-consent"), "no consent, no alert");
    assert!(
        !alerts.contains_key("p-copd"),
        "the clinician's limit holds"
    );
    assert_eq!(msgs.len(), 4, "nothing else: {alerts:?}");
    assert_eq!(stats.alerts_total(), 4);

    let hf = &alerts["p-hf"][0];
    assert_eq!(hf.care_team, ["hf-nurses", "dr-cardio"]);
    assert_eq!(hf.observed, Decimal::new(2_500, 3));
    assert_eq!(hf.threshold, Decimal::new(2_300, 3));
    assert_eq!(hf.unit, "kg");
    assert_eq!(hf.evidence_reading_ids, ["hf-0", "hf-6"]);
    assert_eq!(hf.event_time_ms, start + 6 * DAY);
    assert_eq!(hf.note, SCREENING_NOTE);
    let crisis = &alerts["p-crisis"][0];
    assert_eq!(crisis.evidence_reading_ids, ["cr-1", "cr-2"]);
    assert_eq!(crisis.threshold, Decimal::from(180));
    assert_eq!(alerts["p-unconfirmed"][0].evidence_reading_ids, ["un-1"]);

    // A replay of the same input (a new consumer group, as after a lost
    // commit) raises the same alerts under the same ids.
    let mut replay = cfg.clone();
    replay.kafka.group_id = "vitalstream-replay".into();
    replay.topics.alerts = "vitals.alerts.replay".into();
    create_topics(&broker, &replay, 2).await;
    run_until_consumed(replay.clone(), recs.len() as u64).await;
    let again = read_topic(&broker, &replay.topics.alerts, 4, Duration::from_secs(3)).await;
    let ids = |m: &BTreeMap<String, Vec<ClinicianAlert>>| -> Vec<String> {
        let mut ids: Vec<String> = m.values().flatten().map(|a| a.alert_id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&alerts_by_patient(&again)), ids(&alerts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_patient_gets_no_alert_and_nothing_after_the_tombstone() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    // Unconfirmed crisis readings are published after 2 s of waiting.
    cfg.alerts.confirm_wait_ms = 2_000;
    create_topics(&broker, &cfg, 2).await;
    register_patients(&broker, &cfg, &["p-erased", "p-kept"]).await;
    let p = start_pipeline(cfg.clone());

    // Both patients: a crisis reading that waits for its repeat.
    let t = now_ms() - 10 * MIN;
    let before = [
        raw_record("e-1", "p-erased", t, bp(190, 125)),
        raw_record("k-1", "p-kept", t, bp(190, 125)),
    ];
    produce(&broker, &cfg.topics.raw, &before).await;
    p.wait_consumed(2, Duration::from_secs(60)).await;
    erase_patient(&broker, &cfg, "p-erased").await;
    // After the tombstone: the confirming repeat, an undecodable record and
    // a fever reading. Keep sending until the tombstone is seen to apply.
    let mut after = 0;
    wait_until(Duration::from_secs(30), "tombstone applied", async || {
        after += 1;
        produce(
            &broker,
            &cfg.topics.raw,
            &[raw_record(
                &format!("e-after-{after}"),
                "p-erased",
                t + MIN,
                bp(188, 122),
            )],
        )
        .await;
        Stats::get(&p.stats.erased) > 0
    })
    .await;
    let late = [
        Rec::new("p-erased", b"garbage".to_vec()),
        raw_record(
            "e-fever",
            "p-erased",
            t + 2 * MIN,
            Measurement::Temperature {
                celsius: Decimal::new(391, 1),
            },
        ),
    ];
    produce(&broker, &cfg.topics.raw, &late).await;
    let total = 2 + after + late.len() as u64;
    p.wait_consumed(total, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    // The kept patient's reading stops waiting and becomes an unconfirmed
    // alert; the erased patient's was purged with the rest of their state
    // (it would have come out in the same turn: the same confirmation wait).
    wait_until(Duration::from_secs(30), "an alert", async || {
        stats.alerts_total() > 0
    })
    .await;
    p.stop().await.expect("clean stop");
    assert_eq!(Stats::get(&stats.erased), after + late.len() as u64);

    let alerts = read_topic(&broker, &cfg.topics.alerts, 1, Duration::from_secs(3)).await;
    let alerts = alerts_by_patient(&alerts);
    assert_eq!(
        alert_rules(alerts.get("p-kept")),
        [(AlertRule::BpCrisis, Severity::Urgent)]
    );
    assert!(!alerts.contains_key("p-erased"), "{alerts:?}");
    let enriched = read_topic(&broker, &cfg.topics.enriched, 2, Duration::from_secs(2)).await;
    let erased_enriched = enriched
        .iter()
        .filter(|m| m.key() == Some(&b"p-erased"[..]))
        .count();
    assert_eq!(erased_enriched, 1, "only the reading before the tombstone");
    let dlq = read_topic(&broker, &cfg.topics.dlq, 0, Duration::from_secs(2)).await;
    assert!(dlq.is_empty(), "erased readings are not dead-lettered");
    let windows = read_topic(&broker, &cfg.topics.hrv_windows, 0, Duration::from_secs(1)).await;
    assert!(windows.is_empty());
}
