//! Home routines in the field (DESIGN.md §3–§5), end to end through a real
//! Kafka-protocol broker: what patients and their devices actually do (one
//! weigh-in a day at a varying time, a scale and a cuff shared with a
//! housemate, a watch whose clock runs fast, an odd beat, socks on the scale,
//! a clinician typing °F, metres typed as centimetres, late uploads), and
//! what a clinician must then see on `vitals.alerts` and
//! `vitals.readings.enriched`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::message::{Message, OwnedMessage};
use rust_decimal::Decimal;
use vitalstream::model::*;
use vitalstream::pipeline::now_ms;
use vitalstream::telemetry::Stats;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

fn scan(kg: &str, resistance: &str) -> Measurement {
    Measurement::BodyScan(BodyScan {
        weight_kg: d(kg),
        resistance_ohm: d(resistance),
        reactance_ohm: d("55"),
        segments: vec![],
    })
}

fn weight(kg: &str) -> Measurement {
    scan(kg, "450")
}

fn cuff(sys: i32, dia: i32, pulse: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: Some(pulse),
    })
}

fn rhythm(rr: Vec<i32>) -> Measurement {
    Measurement::HeartRhythm(HeartRhythm {
        rr_intervals_ms: rr,
        source: RhythmSource::Ppg,
    })
}

/// A reading the shared device could not attribute.
fn ambiguous(id: &str, patient: &str, t: i64, m: Measurement) -> Rec {
    let mut r = raw_reading(id, patient, t, m);
    r.attribution = Attribution::Ambiguous;
    record_of(&r)
}

fn enriched_by_id(msgs: &[OwnedMessage]) -> BTreeMap<String, EnrichedReading<'static>> {
    let c = codec();
    msgs.iter()
        .map(|m| {
            let e = c
                .decode_enriched(m.payload().expect("value"))
                .expect("enriched decodes");
            (e.reading.reading_id.to_string(), e)
        })
        .collect()
}

fn flags(e: &EnrichedReading<'_>) -> Vec<&'static str> {
    e.quality_flags.iter().map(|f| f.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_routines_give_the_alerts_a_clinician_expects() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    // Ten days of history must pass dedup.
    cfg.validation.dedup_horizon_ms = 10 * DAY;
    create_topics(&broker, &cfg, 2).await;

    let mut fahrenheit = profile("p-fahrenheit");
    for (rule, t) in [("fever", "100.4"), ("fevr", "37.5")] {
        fahrenheit.threshold_overrides.push(ThresholdOverride {
            rule: rule.into(),
            threshold: d(t),
        });
    }
    let mut tall = profile("p-tall");
    tall.height_cm = d("1.8");
    let mut unsexed = profile("p-unsexed");
    unsexed.sex = Sex::Unspecified;
    let mut profiles: Vec<PatientProfile> = [
        "p-daily",
        "p-diurnal",
        "p-shared",
        "p-180",
        "p-late",
        "p-wide",
        "p-brady",
        "p-socks",
        "p-pause",
        "p-fast",
        "p-ok",
        "p-gone",
        "p-other",
    ]
    .iter()
    .map(|id| profile(id))
    .collect();
    profiles.extend([fahrenheit, tall, unsexed]);
    publish_profiles(&broker, &cfg, &profiles).await;
    erase_patient(&broker, &cfg, "p-gone").await;

    let now = now_ms();
    // 07:00 UTC eight days ago.
    let day0 = (now - 8 * DAY).div_euclid(DAY) * DAY + 7 * HOUR;
    let mut recs = Vec::new();

    // Heart failure, one weigh-in a day at 07:00 ± 30 min; an overnight gain
    // of 1.5 kg on day 7, whose previous weigh-in was 24 h 50 min earlier.
    let routine = [
        (10, "84.200"),
        (-25, "84.000"),
        (28, "84.300"),
        (-5, "84.100"),
        (15, "84.400"),
        (-10, "84.200"),
        (-20, "84.100"),
        (30, "85.600"),
    ];
    for (day, (minutes, kg)) in routine.iter().enumerate() {
        let t = day0 + day as i64 * DAY + minutes * MIN;
        recs.push(raw_record(
            &format!("daily-{day}"),
            "p-daily",
            t,
            weight(kg),
        ));
    }
    // Morning and evening weigh-ins, 1 kg heavier every evening.
    for day in 0..5i64 {
        let t = day0 + day * DAY;
        recs.push(raw_record(
            &format!("diurnal-m{day}"),
            "p-diurnal",
            t,
            weight("80.000"),
        ));
        recs.push(raw_record(
            &format!("diurnal-e{day}"),
            "p-diurnal",
            t + 12 * HOUR,
            weight("81.000"),
        ));
    }
    // A scale and a cuff shared with a housemate: the housemate's readings
    // could not be attributed (AMBIGUOUS) but land on the patient's account.
    for day in 0..6i64 {
        let t = day0 + day * DAY;
        let kg = if day == 5 { "90.300" } else { "90.000" };
        recs.push(raw_record(
            &format!("shared-{day}"),
            "p-shared",
            t,
            weight(kg),
        ));
        recs.push(ambiguous(
            &format!("housemate-{day}"),
            "p-shared",
            t + 10 * MIN,
            weight("62.000"),
        ));
    }
    let t = day0 + 6 * DAY;
    recs.push(ambiguous(
        "housemate-bp1",
        "p-shared",
        t,
        cuff(192, 124, 90),
    ));
    recs.push(ambiguous(
        "housemate-bp2",
        "p-shared",
        t + 3 * MIN,
        cuff(190, 122, 88),
    ));

    // Blood pressure: 180/100 twice is stage 2, not a crisis.
    let t = day0 + 7 * DAY + 8 * HOUR;
    recs.push(raw_record("180-1", "p-180", t, cuff(180, 100, 70)));
    recs.push(raw_record(
        "180-2",
        "p-180",
        t + 3 * MIN,
        cuff(178, 102, 70),
    ));
    // A crisis whose repeat (3 min later by the cuff's clock) is uploaded
    // after a later weigh-in: the urgent alert, then the critical one.
    recs.push(raw_record("late-1", "p-late", t, cuff(190, 110, 80)));
    recs.push(raw_record(
        "late-w",
        "p-late",
        t + 10 * MIN,
        weight("77.000"),
    ));
    recs.push(raw_record(
        "late-2",
        "p-late",
        t + 3 * MIN,
        cuff(186, 108, 80),
    ));
    // A wide pulse pressure is not hypotension.
    recs.push(raw_record("wide-1", "p-wide", t, cuff(150, 55, 70)));

    // Pulse 36 on the morning and evening cuff readings.
    for day in 0..3i64 {
        let t = day0 + 5 * DAY + day * DAY;
        recs.push(raw_record(
            &format!("brady-m{day}"),
            "p-brady",
            t,
            cuff(118, 72, 36),
        ));
        recs.push(raw_record(
            &format!("brady-e{day}"),
            "p-brady",
            t + 12 * HOUR,
            cuff(121, 74, 37),
        ));
    }
    // Weighed in socks: impedance unreadable, the gain still counts.
    recs.push(raw_record(
        "socks-1",
        "p-socks",
        day0 + 6 * DAY,
        scan("82.000", "5000"),
    ));
    recs.push(raw_record(
        "socks-2",
        "p-socks",
        day0 + 7 * DAY + 5 * MIN,
        scan("83.400", "5000"),
    ));
    // One 3.5 s pause among normal beats.
    let mut rr = vec![850; 40];
    rr.push(3500);
    rr.extend([850; 40]);
    recs.push(raw_record("pause-1", "p-pause", now - 2 * HOUR, rhythm(rr)));
    // A clinician typed the fever limit in °F (and misspelt a rule name).
    recs.push(raw_record(
        "fever-1",
        "p-fahrenheit",
        now - HOUR,
        Measurement::Temperature { celsius: d("38.6") },
    ));
    // Height typed in metres; and a profile without sex.
    recs.push(raw_record("tall-1", "p-tall", now - HOUR, weight("75.000")));
    recs.push(raw_record(
        "unsexed-1",
        "p-unsexed",
        now - HOUR,
        weight("75.000"),
    ));

    // Two watches on one partition, minute-long recordings; p-fast's clock
    // runs 4 minutes fast. Both upload in turn, as they sync.
    // Recording k's beats fall in [w0 + k min, w0 + (k+1) min).
    let w0 = (now - 40 * MIN).div_euclid(5 * MIN) * 5 * MIN;
    for k in 0..13i64 {
        let t = w0 + k * MIN - 1000;
        for (patient, skew) in [("p-fast", 4 * MIN), ("p-ok", 0)] {
            let r = raw_reading(
                &format!("{patient}-{k}"),
                patient,
                t + skew,
                rhythm(vec![1000; 60]),
            );
            let mut rec = record_of(&r);
            rec.partition = Some(0);
            recs.push(rec);
        }
    }

    // An erased patient's records without a key, or under another key.
    let gone = raw_record("gone-1", "p-gone", now - HOUR, weight("70.000"));
    let mut keyless = gone.clone();
    keyless.key = None;
    let mut miskeyed = gone.clone();
    miskeyed.key = Some(b"p-other".to_vec());
    recs.push(keyless);
    recs.push(miskeyed);

    produce(&broker, &cfg.topics.raw, &recs).await;
    let p = start_pipeline(cfg.clone());
    p.wait_consumed(recs.len() as u64, Duration::from_secs(90))
        .await;
    let stats = p.stats.clone();
    p.stop().await.expect("clean stop");
    assert_eq!(Stats::get(&stats.erased), 2, "both erased records dropped");
    assert_eq!(stats.dlq_total(), 0, "nothing dead-lettered");
    assert_eq!(Stats::get(&stats.enriched), recs.len() as u64 - 2);

    let alert_msgs = read_topic(&broker, &cfg.topics.alerts, 9, Duration::from_secs(3)).await;
    let alerts = alerts_by_patient(&alert_msgs);

    let daily = &alerts["p-daily"];
    assert_eq!(
        alert_rules(Some(daily)),
        [(AlertRule::WeightGain24h, Severity::Warning)]
    );
    assert_eq!(daily[0].observed, d("1.500"));
    assert_eq!(daily[0].evidence_reading_ids, ["daily-6", "daily-7"]);
    assert!(
        !alerts.contains_key("p-diurnal"),
        "diurnal variation: {alerts:?}"
    );
    assert!(
        !alerts.contains_key("p-shared"),
        "a housemate's values: {alerts:?}"
    );
    assert!(!alerts.contains_key("p-180"), "180/100 is not a crisis");
    assert_eq!(
        alert_rules(alerts.get("p-late")),
        [
            (AlertRule::BpCrisis, Severity::Urgent),
            (AlertRule::BpCrisis, Severity::Critical)
        ]
    );
    assert_eq!(
        alerts["p-late"][1].evidence_reading_ids,
        ["late-1", "late-2"]
    );
    assert!(!alerts.contains_key("p-wide"), "150/55 is not hypotension");
    let brady = &alerts["p-brady"];
    assert!(
        brady
            .iter()
            .all(|a| (a.rule, a.severity) == (AlertRule::RestingHrLow, Severity::Warning))
    );
    assert_eq!(brady[0].evidence_reading_ids, ["brady-m0", "brady-e0"]);
    assert_eq!(
        alert_rules(alerts.get("p-socks")),
        [(AlertRule::WeightGain24h, Severity::Warning)]
    );
    let fever = &alerts["p-fahrenheit"];
    assert_eq!(
        alert_rules(Some(fever)),
        [(AlertRule::Fever, Severity::Warning)]
    );
    assert_eq!(fever[0].threshold, d("38.0"), "the default applies");
    assert!(!alerts.contains_key("p-gone"));

    let enriched = read_topic(
        &broker,
        &cfg.topics.enriched,
        recs.len() - 2,
        Duration::from_secs(2),
    )
    .await;
    let e = enriched_by_id(&enriched);
    assert_eq!(e.len(), recs.len() - 2);
    assert_eq!(flags(&e["housemate-0"]), ["ambiguous_attribution"]);
    assert_eq!(e["180-1"].bp_category, Some(BpCategory::Stage2));
    let socks = &e["socks-2"];
    assert!(flags(socks).contains(&"impedance_implausible"));
    assert!(socks.body_composition.is_none());
    assert_eq!(socks.bmi, Some(d("25.741")), "BMI needs no impedance");
    assert!(flags(&e["pause-1"]).contains(&"pause_detected"));
    let tall = &e["tall-1"];
    assert!(flags(tall).contains(&"height_implausible"));
    assert_eq!((tall.bmi, tall.body_composition.is_some()), (None, false));
    let unsexed = &e["unsexed-1"];
    assert_eq!(unsexed.bmi, Some(d("23.148")), "BMI without sex");
    assert!(unsexed.body_composition.is_none());
    assert!(!e.contains_key("gone-1"));

    // p-ok's first two windows closed on p-ok's own clock, every beat in.
    let windows = read_topic(&broker, &cfg.topics.hrv_windows, 4, Duration::from_secs(2)).await;
    let c = codec();
    let ok: Vec<HrvWindow> = windows
        .iter()
        .map(|m| {
            c.decode_hrv_window(m.payload().expect("value"))
                .expect("decodes")
        })
        .filter(|w| w.patient_id == "p-ok")
        .collect();
    assert!(ok.len() >= 2, "{ok:?}");
    for w in &ok[..2] {
        assert_eq!(w.n_late, 0, "another watch's clock made no beat late");
        assert_eq!(w.n_beats + w.n_rejected, 300);
    }
    assert_eq!(Stats::get(&stats.late_beats), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_consent_drops_a_pending_alert() {
    let broker = start_broker().await;
    let mut cfg = config(&broker);
    cfg.alerts.confirm_wait_ms = 10_000;
    create_topics(&broker, &cfg, 1).await;
    register_patients(&broker, &cfg, &["p-withdraws", "p-control"]).await;
    let p = start_pipeline(cfg.clone());
    let addr = p.http_addr().await;
    let upserts = || async move {
        let (_, body) = http_get(addr, "/metrics").await;
        body.lines()
            .find(|l| l.starts_with("vitalstream_profile_updates_total{kind=\"upsert\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let t = now_ms() - 10 * MIN;
    // A crisis reading waiting for its repeat.
    produce(
        &broker,
        &cfg.topics.raw,
        &[raw_record("w-1", "p-withdraws", t, cuff(195, 115, 80))],
    )
    .await;
    p.wait_consumed(1, Duration::from_secs(60)).await;
    let before = upserts().await;
    let mut withdrawn = profile("p-withdraws");
    withdrawn.consent_clinician_sharing = false;
    publish_profiles(&broker, &cfg, &[withdrawn]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while upserts().await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "profile applied within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The control patient's crisis waits out its repeat later than the
    // first: once its urgent alert is out, the withdrawn one would be too.
    produce(
        &broker,
        &cfg.topics.raw,
        &[raw_record("c-1", "p-control", t, cuff(195, 115, 80))],
    )
    .await;
    p.wait_consumed(2, Duration::from_secs(60)).await;
    let stats = p.stats.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stats.alerts_total() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "control alert within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.stop().await.expect("clean stop");
    let alerts = alerts_by_patient(
        &read_topic(&broker, &cfg.topics.alerts, 1, Duration::from_secs(2)).await,
    );
    assert_eq!(
        alert_rules(alerts.get("p-control")),
        [(AlertRule::BpCrisis, Severity::Urgent)]
    );
    assert!(!alerts.contains_key("p-withdraws"), "{alerts:?}");
}
