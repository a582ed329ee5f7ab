//! Rule scenarios of DESIGN.md §5 against the engine alone.

use std::borrow::Cow;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::model::*;
use crate::process::Checked;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_000_000_000;

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

fn profile(id: &str) -> PatientProfile {
    PatientProfile {
        patient_id: id.into(),
        birth_date_days: 0,
        sex: Sex::Female,
        height_cm: d("165.0"),
        rpm_enrolled: true,
        consent_clinician_sharing: true,
        care_team: vec!["team-hf".into()],
        threshold_overrides: vec![],
        dry_weight_kg: None,
    }
}

fn with_override(mut p: PatientProfile, rule: AlertRule, threshold: &str) -> PatientProfile {
    p.threshold_overrides.push(ThresholdOverride {
        rule: rule.as_str().into(),
        threshold: d(threshold),
    });
    p
}

/// A device reading of `patient` at `t_ms` (also used by `slot_tests`).
pub(super) fn reading(
    id: &str,
    patient: &str,
    t_ms: i64,
    measurement: Measurement,
) -> RawReading<'static> {
    RawReading {
        reading_id: Cow::Owned(id.into()),
        device_id: Cow::Borrowed("dev"),
        device_model: Cow::Borrowed("model"),
        device_kind: DeviceKind::Other,
        patient_id: Cow::Owned(patient.into()),
        measured_at_ms: t_ms,
        received_at_ms: t_ms,
        attribution: Attribution::Device,
        measurement,
    }
}

fn weight(kg: &str) -> Measurement {
    Measurement::BodyScan(BodyScan {
        weight_kg: d(kg),
        resistance_ohm: d("500"),
        reactance_ohm: d("50"),
        segments: vec![],
    })
}

fn bp(sys: i32, dia: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: sys,
        diastolic_mmhg: dia,
        pulse_bpm: None,
    })
}

fn spo2(pct: &str) -> Measurement {
    Measurement::SpO2 { pct: d(pct) }
}

fn ecg(classification: EcgClassification, bpm: i32) -> Measurement {
    Measurement::Ecg(EcgResult {
        classification,
        heart_rate_bpm: bpm,
    })
}

fn engine() -> AlertEngine {
    AlertEngine::new(AlertsConfig::default())
}

/// Feeds `(id, offset from T0, measurement)` for `p`, processing clock = event time.
fn feed(e: &mut AlertEngine, p: &PatientProfile, readings: &[(&str, i64, Measurement)]) {
    for (id, dt, m) in readings {
        let r = reading(id, &p.patient_id, T0 + dt, m.clone());
        e.observe_reading(&r, Checked::default(), p, T0 + dt);
    }
}

fn rules_of(alerts: &[ClinicianAlert]) -> Vec<(AlertRule, Severity)> {
    alerts.iter().map(|a| (a.rule, a.severity)).collect()
}

#[test]
fn heart_failure_gain_of_2_5_kg_over_6_days_gives_one_7_day_alert() {
    let mut e = engine();
    let p = profile("p-hf");
    let days: Vec<(&str, i64, Measurement)> = [
        "80.000", "80.400", "80.850", "81.300", "81.700", "82.100", "82.500",
    ]
    .iter()
    .zip(["w0", "w1", "w2", "w3", "w4", "w5", "w6"])
    .enumerate()
    .map(|(i, (kg, id))| (id, i as i64 * DAY, weight(kg)))
    .collect();
    feed(&mut e, &p, &days);
    let alerts = e.take_alerts();
    assert_eq!(
        rules_of(&alerts),
        [(AlertRule::WeightGain7d, Severity::Warning)]
    );
    let a = &alerts[0];
    assert_eq!(a.observed, d("2.500"));
    assert_eq!(a.threshold, d("2.300"));
    assert_eq!(a.unit, "kg");
    assert_eq!(a.evidence_reading_ids, ["w0", "w6"]);
    assert_eq!(a.event_time_ms, T0 + 6 * DAY);
    assert_eq!(a.care_team, ["team-hf"]);
    assert_eq!(a.note, SCREENING_NOTE);
}

/// One weigh-in a day at about 07:00, ±30 min, as heart-failure patients
/// are told to do: `(id, minutes after 07:00, kg)` per day.
fn daily(days: &[(&str, i64, &str)]) -> Vec<(String, i64, Measurement)> {
    days.iter()
        .enumerate()
        .map(|(day, (id, minutes, kg))| {
            (
                (*id).to_owned(),
                day as i64 * DAY + 7 * HOUR + minutes * MIN,
                weight(kg),
            )
        })
        .collect()
}

fn feed_owned(e: &mut AlertEngine, p: &PatientProfile, readings: &[(String, i64, Measurement)]) {
    let borrowed: Vec<(&str, i64, Measurement)> = readings
        .iter()
        .map(|(id, t, m)| (id.as_str(), *t, m.clone()))
        .collect();
    feed(e, p, &borrowed);
}

#[test]
fn an_overnight_gain_alerts_however_the_weigh_in_times_vary() {
    // The previous weigh-in 24 h 50 min earlier (it was early, today's is
    // late): still "the previous day's weigh-in".
    for (yesterday, today) in [(-30, 20), (20, -30), (0, 0), (25, 25)] {
        let mut e = engine();
        let p = profile("p-hf");
        feed_owned(
            &mut e,
            &p,
            &daily(&[("d0", yesterday, "80.100"), ("d1", today, "81.600")]),
        );
        let alerts = e.take_alerts();
        assert_eq!(
            rules_of(&alerts),
            [(AlertRule::WeightGain24h, Severity::Warning)],
            "yesterday {yesterday:+} min, today {today:+} min"
        );
        assert_eq!(alerts[0].observed, d("1.500"));
        assert_eq!(alerts[0].evidence_reading_ids, ["d0", "d1"]);
    }
}

#[test]
fn diurnal_variation_does_not_fire_the_daily_rule() {
    // Morning and evening weigh-ins: 1 kg heavier every evening, back every
    // morning. Only readings 18-36 h apart are compared.
    let mut e = engine();
    let p = profile("p-hf");
    let mut readings = Vec::new();
    for day in 0..5i64 {
        readings.push((format!("m{day}"), day * DAY + 7 * HOUR, weight("80.000")));
        readings.push((format!("e{day}"), day * DAY + 19 * HOUR, weight("81.000")));
    }
    feed_owned(&mut e, &p, &readings);
    assert!(rules_of(&e.take_alerts()).is_empty());
}

#[test]
fn the_daily_rule_needs_a_weigh_in_the_day_before() {
    // Two days without weighing: the 1.5 kg over 48 h is not a daily gain
    // (the 7-day rule watches the longer rise).
    let mut e = engine();
    let p = profile("p-hf");
    feed(
        &mut e,
        &p,
        &[("a", 0, weight("80.000")), ("b", 2 * DAY, weight("81.500"))],
    );
    assert!(e.take_alerts().is_empty());
}

#[test]
fn a_crisis_confirmed_within_5_minutes_is_one_critical_alert() {
    let mut e = engine();
    let p = profile("p-1");
    feed(
        &mut e,
        &p,
        &[("bp1", 0, bp(185, 125)), ("bp2", 3 * MIN, bp(182, 121))],
    );
    e.expire(T0 + DAY);
    e.flush();
    let alerts = e.take_alerts();
    assert_eq!(
        rules_of(&alerts),
        [(AlertRule::BpCrisis, Severity::Critical)]
    );
    assert_eq!(alerts[0].evidence_reading_ids, ["bp1", "bp2"]);
    assert_eq!(alerts[0].observed, d("182"));
    assert_eq!(alerts[0].threshold, d("180"));
    assert_eq!(alerts[0].unit, "mm[Hg]");
}

#[test]
fn an_unconfirmed_crisis_is_one_urgent_alert_however_it_ends() {
    let p = profile("p-1");
    // A repeat below the crisis limits.
    let mut e = engine();
    feed(
        &mut e,
        &p,
        &[("bp1", 0, bp(185, 125)), ("bp2", 3 * MIN, bp(150, 95))],
    );
    let alerts = e.take_alerts();
    assert_eq!(rules_of(&alerts), [(AlertRule::BpCrisis, Severity::Urgent)]);
    assert_eq!(alerts[0].evidence_reading_ids, ["bp1"]);
    assert_eq!(alerts[0].event_time_ms, T0);
    // A later reading of another kind, past the repeat window.
    let mut e = engine();
    feed(
        &mut e,
        &p,
        &[("bp1", 0, bp(185, 125)), ("w", 6 * MIN, weight("80"))],
    );
    assert_eq!(
        rules_of(&e.take_alerts()),
        [(AlertRule::BpCrisis, Severity::Urgent)]
    );
    // Nothing more: the processing clock's wait runs out.
    let mut e = engine();
    feed(&mut e, &p, &[("bp1", 0, bp(120, 121))]);
    e.expire(T0 + 4 * MIN);
    assert!(e.take_alerts().is_empty(), "still waiting");
    e.expire(T0 + 5 * MIN);
    let alerts = e.take_alerts();
    assert_eq!(rules_of(&alerts), [(AlertRule::BpCrisis, Severity::Urgent)]);
    assert_eq!(alerts[0].observed, d("121"), "the diastolic value tripped");
    assert_eq!(alerts[0].threshold, d("120"));
    // Or the partition is given up.
    let mut e = engine();
    feed(&mut e, &p, &[("bp1", 0, bp(200, 100))]);
    e.flush();
    assert_eq!(
        rules_of(&e.take_alerts()),
        [(AlertRule::BpCrisis, Severity::Urgent)]
    );
}

#[test]
fn crisis_is_above_180_and_or_above_120() {
    for (sys, dia, alerts) in [(180, 100, 0), (179, 120, 0), (181, 100, 1), (170, 121, 1)] {
        let mut e = engine();
        let p = profile("p-1");
        feed(&mut e, &p, &[("bp1", 0, bp(sys, dia))]);
        e.flush();
        let crisis = rules_of(&e.take_alerts())
            .iter()
            .filter(|(r, _)| *r == AlertRule::BpCrisis)
            .count();
        assert_eq!(crisis, alerts, "{sys}/{dia}");
    }
}

#[test]
fn a_late_repeat_still_confirms_the_crisis() {
    // The cuff uploads its second reading 20 minutes later (phone out of
    // reach): the urgent alert went out when the wait ran out, and the
    // repeat measured 3 minutes after the first raises the critical one.
    let mut e = engine();
    let p = profile("p-1");
    let first = reading("bp1", "p-1", T0, bp(190, 110));
    e.observe_reading(&first, Checked::default(), &p, T0);
    e.expire(T0 + 5 * MIN);
    assert_eq!(
        rules_of(&e.take_alerts()),
        [(AlertRule::BpCrisis, Severity::Urgent)]
    );
    let repeat = reading("bp2", "p-1", T0 + 3 * MIN, bp(186, 108));
    e.observe_reading(&repeat, Checked::default(), &p, T0 + 20 * MIN);
    let alerts = e.take_alerts();
    assert_eq!(
        rules_of(&alerts),
        [(AlertRule::BpCrisis, Severity::Critical)]
    );
    assert_eq!(alerts[0].evidence_reading_ids, ["bp1", "bp2"]);
    assert_eq!(alerts[0].event_time_ms, T0 + 3 * MIN);
}

#[test]
fn a_diastolic_crisis_is_not_confirmed_by_an_earlier_normal_reading() {
    // 130/80, then 150/125 two minutes later: the crisis tripped on its
    // diastolic; the earlier reading is no crisis whatever limit tripped.
    let mut e = engine();
    let p = profile("p-1");
    feed(
        &mut e,
        &p,
        &[("a", 0, bp(130, 80)), ("b", 2 * MIN, bp(150, 125))],
    );
    assert!(e.take_alerts().is_empty(), "waits for its repeat");
    e.expire(T0 + 2 * MIN + 5 * MIN);
    let alerts = e.take_alerts();
    assert_eq!(rules_of(&alerts), [(AlertRule::BpCrisis, Severity::Urgent)]);
    assert_eq!(alerts[0].observed, d("125"));
    assert_eq!(alerts[0].evidence_reading_ids, ["b"]);
}

#[test]
fn hypotension_is_judged_on_systolic() {
    let mut e = engine();
    let p = profile("p-1");
    feed(
        &mut e,
        &p,
        &[("wide", 0, bp(150, 55)), ("low", DAY, bp(86, 58))],
    );
    let alerts = e.take_alerts();
    let hypo: Vec<&ClinicianAlert> = alerts
        .iter()
        .filter(|a| a.rule == AlertRule::Hypotension)
        .collect();
    assert_eq!(hypo.len(), 1);
    assert_eq!(hypo[0].evidence_reading_ids, ["low"]);
}

#[test]
fn a_slow_pulse_morning_and_evening_alerts_but_one_session_does_not() {
    let pulse = |hr| {
        Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: 118,
            diastolic_mmhg: 72,
            pulse_bpm: Some(hr),
        })
    };
    // Two cuff readings a minute apart in one session: not yet sustained.
    let mut e = engine();
    let p = profile("p-1");
    feed(
        &mut e,
        &p,
        &[
            ("m1", 7 * HOUR, pulse(36)),
            ("m2", 7 * HOUR + MIN, pulse(37)),
        ],
    );
    assert!(e.take_alerts().is_empty());
    // The evening reading confirms it.
    feed(&mut e, &p, &[("e1", 19 * HOUR, pulse(36))]);
    let alerts = e.take_alerts();
    assert_eq!(
        rules_of(&alerts),
        [(AlertRule::RestingHrLow, Severity::Warning)]
    );
    assert_eq!(alerts[0].evidence_reading_ids, ["m2", "e1"]);
    // Readings more than a day apart are not sustained.
    let mut e = engine();
    feed(
        &mut e,
        &p,
        &[("a", 0, pulse(130)), ("b", DAY + HOUR, pulse(130))],
    );
    assert!(e.take_alerts().is_empty());
}

#[test]
fn an_implausible_pulse_is_no_heart_rate() {
    let mut e = engine();
    let p = profile("p-1");
    let dropped = Checked {
        pulse_dropped: true,
        ..Checked::default()
    };
    for (id, t) in [("a", 0), ("b", 12 * HOUR)] {
        let r = reading(
            id,
            "p-1",
            T0 + t,
            Measurement::BloodPressure(BloodPressure {
                systolic_mmhg: 120,
                diastolic_mmhg: 80,
                pulse_bpm: Some(350),
            }),
        );
        e.observe_reading(&r, dropped, &p, T0 + t);
    }
    assert!(e.take_alerts().is_empty());
}

#[test]
fn withdrawn_consent_drops_the_pending_alert_at_once() {
    let mut e = engine();
    let p = profile("p-1");
    feed(&mut e, &p, &[("bp1", 0, bp(190, 110))]);
    assert_eq!(e.pending(), 1);
    e.drop_unconsented(|_| false);
    e.expire(T0 + DAY);
    e.flush();
    assert!(e.take_alerts().is_empty());
    assert_eq!((e.pending(), e.patients()), (0, 0));
}

#[test]
fn no_consent_no_alerts_and_nothing_remembered() {
    let mut e = engine();
    let mut p = profile("p-1");
    p.consent_clinician_sharing = false;
    feed(
        &mut e,
        &p,
        &[("bp1", 0, bp(185, 125)), ("bp2", MIN, bp(185, 125))],
    );
    e.flush();
    assert!(e.take_alerts().is_empty());
    assert_eq!(e.patients(), 0);
    // Consent withdrawn later: what was held is forgotten.
    let mut p = profile("p-2");
    feed(&mut e, &p, &[("w1", 0, weight("80"))]);
    assert_eq!(e.patients(), 1);
    p.rpm_enrolled = false;
    feed(&mut e, &p, &[("w2", DAY / 2, weight("82"))]);
    assert!(e.take_alerts().is_empty());
    assert_eq!(e.patients(), 0);
}

#[test]
fn clinician_overrides_change_the_outcome() {
    let low = [("s1", 0, spo2("89.0")), ("s2", 5 * MIN, spo2("89.5"))];
    let mut e = engine();
    feed(&mut e, &profile("p-default"), &low);
    let copd = with_override(profile("p-copd"), AlertRule::Spo2Low, "88");
    feed(&mut e, &copd, &low);
    let alerts = e.take_alerts();
    assert_eq!(rules_of(&alerts), [(AlertRule::Spo2Low, Severity::Urgent)]);
    assert_eq!(alerts[0].patient_id, "p-default");
    assert_eq!(alerts[0].evidence_reading_ids, ["s1", "s2"]);
    // Below the patient's own limit it fires.
    feed(
        &mut e,
        &copd,
        &[
            ("s3", 20 * MIN, spo2("87.0")),
            ("s4", 25 * MIN, spo2("86.5")),
        ],
    );
    let alerts = e.take_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].patient_id.as_str(), alerts[0].threshold),
        ("p-copd", d("88"))
    );
    // Rate-controlled AFib: only a fast rate alerts.
    let af = with_override(profile("p-af"), AlertRule::Afib, "110");
    feed(
        &mut e,
        &af,
        &[
            ("e1", 0, ecg(EcgClassification::Afib, 90)),
            ("e2", 7 * HOUR, ecg(EcgClassification::Afib, 128)),
        ],
    );
    let alerts = e.take_alerts();
    assert_eq!(rules_of(&alerts), [(AlertRule::Afib, Severity::Warning)]);
    assert_eq!(alerts[0].observed, d("128"));
}

#[test]
fn spo2_readings_too_far_apart_are_not_sustained() {
    let mut e = engine();
    feed(
        &mut e,
        &profile("p"),
        &[("s1", 0, spo2("85")), ("s2", 11 * MIN, spo2("85"))],
    );
    assert!(e.take_alerts().is_empty());
}

#[test]
fn single_and_sustained_rules_fire_on_their_evidence() {
    let mut e = engine();
    let p = profile("p-1");
    let pulse = |sys, hr| {
        Measurement::BloodPressure(BloodPressure {
            systolic_mmhg: sys,
            diastolic_mmhg: 70,
            pulse_bpm: Some(hr),
        })
    };
    feed(
        &mut e,
        &p,
        &[
            ("t", 0, Measurement::Temperature { celsius: d("38.0") }),
            ("h", HOUR, bp(85, 55)),
            ("p1", 2 * HOUR, pulse(118, 38)),
            ("p2", 2 * HOUR + 10 * MIN, pulse(119, 37)),
            (
                "e3",
                2 * HOUR + 20 * MIN,
                ecg(EcgClassification::SinusRhythm, 36),
            ),
        ],
    );
    let alerts = e.take_alerts();
    assert_eq!(
        rules_of(&alerts),
        [
            (AlertRule::Fever, Severity::Warning),
            (AlertRule::Hypotension, Severity::Warning),
            (AlertRule::RestingHrLow, Severity::Warning),
        ]
    );
    // Two readings at least 5 min apart suffice; the ECG is within the
    // cool-down of that alert.
    assert_eq!(alerts[2].evidence_reading_ids, ["p1", "p2"]);
    assert_eq!(alerts[1].observed, d("85"));
}

#[test]
fn cooldown_suppresses_repeats_unless_severity_rises() {
    let mut e = engine();
    let p = profile("p-1");
    let stage2: Vec<(String, i64)> = (0..6).map(|i| (format!("b{i}"), i * HOUR)).collect();
    let readings: Vec<(&str, i64, Measurement)> = stage2
        .iter()
        .map(|(id, t)| (id.as_str(), *t, bp(150, 95)))
        .collect();
    feed(&mut e, &p, &readings);
    // Readings 3..=6 are each "the last three at stage 2"; one alert in 6 h.
    assert_eq!(
        rules_of(&e.take_alerts()),
        [(AlertRule::BpStage2Sustained, Severity::Warning)]
    );
    assert_eq!(
        e.take_suppressed()[AlertRule::BpStage2Sustained as usize],
        3
    );
    // After the cool-down it may fire again.
    feed(&mut e, &p, &[("b7", 8 * HOUR, bp(150, 95))]);
    assert_eq!(e.take_alerts().len(), 1);
    // An urgent crisis, then a confirmed (critical) one within the cool-down.
    feed(
        &mut e,
        &p,
        &[
            ("c1", 9 * HOUR, bp(190, 100)),
            ("c2", 9 * HOUR + 30 * MIN, bp(130, 80)),
            ("c3", 10 * HOUR, bp(190, 100)),
            ("c4", 10 * HOUR + 2 * MIN, bp(191, 100)),
            ("c5", 11 * HOUR, bp(190, 100)),
            ("c6", 11 * HOUR + 2 * MIN, bp(191, 100)),
        ],
    );
    assert_eq!(
        rules_of(&e.take_alerts()),
        [
            (AlertRule::BpCrisis, Severity::Urgent),
            (AlertRule::BpCrisis, Severity::Critical),
        ]
    );
}

#[test]
fn rmssd_below_half_the_weekly_baseline_is_informational() {
    let mut e = engine();
    let p = profile("p-1");
    let window = |hour: i64, rmssd: &str| HrvWindow {
        patient_id: "p-1".into(),
        window_start_ms: T0 + hour * HOUR - 5 * MIN,
        window_end_ms: T0 + hour * HOUR,
        artifact_filter: ArtifactFilter::Malik,
        quality: HrvQuality::Ok,
        n_beats: 300,
        n_rejected: 0,
        n_late: 0,
        mean_nn_ms: Some(d("800")),
        sdnn_ms: Some(d("40")),
        rmssd_ms: Some(d(rmssd)),
        pnn50_pct: Some(d("10")),
        mean_hr_bpm: Some(d("75")),
        reading_ids: vec![format!("rr-{hour}")],
    };
    // Too little baseline yet: no alert however low.
    e.observe_window(&window(1, "10"), &p, T0);
    for h in 2..=24 {
        e.observe_window(&window(h, "40"), &p, T0);
    }
    assert!(e.take_alerts().is_empty());
    e.observe_window(&window(30, "16"), &p, T0);
    e.observe_window(&window(40, "39"), &p, T0);
    let alerts = e.take_alerts();
    assert_eq!(rules_of(&alerts), [(AlertRule::RmssdLow, Severity::Info)]);
    // Baseline = (10 + 23 × 40) / 24 = 38.75; half of it:
    assert_eq!(alerts[0].threshold, d("19.375"));
    assert_eq!(alerts[0].observed, d("16"));
    assert_eq!(alerts[0].evidence_reading_ids, ["rr-30"]);
}

#[test]
fn erasure_forgets_waiting_readings_and_history() {
    let mut e = engine();
    let p = profile("p-1");
    feed(
        &mut e,
        &p,
        &[("w", 0, weight("80")), ("bp1", MIN, bp(185, 125))],
    );
    assert_eq!(e.pending(), 1);
    assert!(e.purge_patient("p-1") >= 2);
    e.flush();
    assert!(
        e.take_alerts().is_empty(),
        "nothing of an erased patient is published"
    );
    assert_eq!((e.patients(), e.pending()), (0, 0));
}

#[test]
fn alert_ids_depend_on_the_evidence_only() {
    let id = |ev: &[&str]| {
        let ev: Vec<String> = ev.iter().map(|s| s.to_string()).collect();
        alert_id("p-1", AlertRule::BpCrisis, Severity::Critical, &ev)
    };
    assert_eq!(id(&["a", "b"]), id(&["b", "a"]));
    assert_ne!(id(&["a", "b"]), id(&["a", "c"]));
    assert_ne!(id(&["ab", "c"]), id(&["a", "bc"]));
    assert_eq!(id(&["a"]).len(), 32);
    assert_ne!(
        alert_id("p-1", AlertRule::BpCrisis, Severity::Urgent, &["a".into()]),
        alert_id("p-2", AlertRule::BpCrisis, Severity::Urgent, &["a".into()])
    );
}

fn arb_measurement() -> impl Strategy<Value = Measurement> {
    prop_oneof![
        (70_000i64..90_000).prop_map(|g| weight(&Decimal::new(g, 3).to_string())),
        (80i32..200, 50i32..130).prop_map(|(s, d)| bp(s, d)),
        (850i64..1000).prop_map(|p| spo2(&Decimal::new(p, 1).to_string())),
        (3600i64..3950).prop_map(|c| Measurement::Temperature {
            celsius: Decimal::new(c, 2)
        }),
        (30i32..140, any::<bool>()).prop_map(|(hr, af)| ecg(
            if af {
                EcgClassification::Afib
            } else {
                EcgClassification::SinusRhythm
            },
            hr
        )),
    ]
}

proptest! {
    /// Replaying the same readings gives the same alerts (ids included), and
    /// no rule repeats for a patient inside its cool-down unless severity rises.
    #[test]
    fn alerts_are_deterministic_and_respect_the_cooldown(
        steps in prop::collection::vec((0usize..3, 1i64..180, arb_measurement()), 1..120)
    ) {
        let run = || {
            let mut e = engine();
            let mut t = T0;
            for (i, (patient, dt_min, m)) in steps.iter().enumerate() {
                t += dt_min * MIN;
                let p = profile(&format!("p-{patient}"));
                e.observe_reading(&reading(&format!("r-{i}"), &p.patient_id, t, m.clone()), Checked::default(), &p, t);
                e.expire(t);
            }
            e.flush();
            e.take_alerts()
        };
        let first = run();
        prop_assert_eq!(&first, &run());
        let cooldown = AlertsConfig::default().cooldown_ms;
        for (i, a) in first.iter().enumerate() {
            for b in &first[i + 1..] {
                if a.patient_id == b.patient_id && a.rule == b.rule
                    && (b.event_time_ms - a.event_time_ms).abs() < cooldown {
                    prop_assert!(b.severity > a.severity, "{:?} repeated within cool-down", a.rule);
                }
            }
        }
    }
}
