//! The alert engine's changelog entries over weeks of home readings: a
//! sample leaving the look-back costs no record, the slots a patient
//! uses stay as few as the samples held at once, a restore from the
//! compacted entries holds exactly what the engine held, and an erasure
//! names every key the patient ever had.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::tests::reading;
use super::*;
use crate::model::*;
use crate::process::Checked;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_000_000_000;

fn profile(id: &str) -> PatientProfile {
    PatientProfile {
        patient_id: id.into(),
        birth_date_days: 0,
        sex: Sex::Male,
        height_cm: Decimal::from(175),
        rpm_enrolled: true,
        consent_clinician_sharing: true,
        care_team: vec!["team".into()],
        threshold_overrides: vec![],
        dry_weight_kg: None,
    }
}

/// A home routine of `days` days from `first`: weigh-in, two cuff readings
/// with pulse, SpO2 and temperature every morning, a cuff reading and SpO2
/// every evening; on the last day a weight gain and a BP crisis with its
/// repeat, and a high pulse morning and evening.
fn routine(first: i64, days: i64) -> Vec<(String, i64, Measurement)> {
    let mut out = Vec::new();
    for day in first..first + days {
        let last = day == first + days - 1;
        let at = |h: i64, m: i64| day * DAY + h * HOUR + m * MIN;
        let kg = Decimal::new(80_000 + (day % 5) * 150 + if last { 2_000 } else { 0 }, 3);
        let cuff = |sys: i32, pulse: i32| {
            Measurement::BloodPressure(BloodPressure {
                systolic_mmhg: sys,
                diastolic_mmhg: 80,
                pulse_bpm: Some(pulse),
            })
        };
        let (sys, pulse) = if last { (190, 130) } else { (128, 70) };
        out.push((
            at(7, 0),
            Measurement::BodyScan(BodyScan {
                weight_kg: kg,
                resistance_ohm: Decimal::from(500),
                reactance_ohm: Decimal::from(50),
                segments: vec![],
            }),
        ));
        out.push((at(7, 5), cuff(sys, pulse)));
        out.push((at(7, 7), cuff(sys + 2, pulse)));
        out.push((
            at(7, 10),
            Measurement::SpO2 {
                pct: Decimal::new(965, 1),
            },
        ));
        out.push((
            at(7, 12),
            Measurement::Temperature {
                celsius: Decimal::new(3680, 2),
            },
        ));
        out.push((at(19, 30), cuff(sys, pulse)));
        out.push((
            at(19, 35),
            Measurement::SpO2 {
                pct: Decimal::new(958, 1),
            },
        ));
    }
    out.into_iter()
        .enumerate()
        .map(|(i, (t, m))| (format!("rd-{first}-{i:06}"), t, m))
        .collect()
}

/// The compacted changelog of the alert slots, (patient, slot) → samples,
/// and of the readings waiting for a repeat.
#[derive(Debug, Clone, Default)]
struct Log {
    slots: BTreeMap<(String, u16), Vec<Sample>>,
    pending: BTreeMap<(String, AlertRule), Pending>,
}

/// Feeds `readings` of `p` and applies the changed entries to `log` as the
/// changelog writer does; returns (slot records written, slot tombstones).
fn feed(
    e: &mut AlertEngine,
    p: &PatientProfile,
    readings: &[(String, i64, Measurement)],
    log: &mut Log,
) -> (usize, usize) {
    feed_in_batches(e, p, readings, 1, log)
}

/// As [`feed`], the changelog taking the changed entries after every
/// `batch` readings (the pipeline takes them once per batch).
fn feed_in_batches(
    e: &mut AlertEngine,
    p: &PatientProfile,
    readings: &[(String, i64, Measurement)],
    batch: usize,
    log: &mut Log,
) -> (usize, usize) {
    let (mut puts, mut tombstones) = (0, 0);
    for (n, (id, dt, m)) in readings.iter().enumerate() {
        let r = reading(id, &p.patient_id, T0 + dt, m.clone());
        e.observe_reading(&r, Checked::default(), p, T0 + dt);
        if (n + 1) % batch != 0 && n + 1 != readings.len() {
            continue;
        }
        for (patient, entries) in e.take_dirty() {
            let patient = patient.to_string();
            for entry in entries {
                if let AlertEntry::Pending(rule) = entry {
                    let key = (patient.clone(), rule);
                    match e.pending_of(&patient, rule) {
                        Some(waiting) => log.pending.insert(key, waiting.clone()),
                        None => log.pending.remove(&key),
                    };
                }
                let AlertEntry::Slot(slot) = entry else {
                    continue;
                };
                let samples: Vec<Sample> = e.slot_samples(&patient, slot).cloned().collect();
                if samples.is_empty() {
                    tombstones += 1;
                    log.slots.remove(&(patient.clone(), slot));
                } else {
                    puts += 1;
                    log.slots.insert((patient.clone(), slot), samples);
                }
            }
        }
    }
    (puts, tombstones)
}

/// An engine restored from `log` and the head record (`cooldowns`). The
/// slots are applied highest first: a flush writes a transaction's records
/// in key order, so a restore may read a patient's slots in any order of
/// the readings' arrival.
fn restored(p: &PatientProfile, log: &Log, cooldowns: Option<Cooldowns>) -> AlertEngine {
    let mut e = AlertEngine::new(AlertsConfig::default());
    e.restore_cooldowns(&p.patient_id, cooldowns.unwrap_or_default());
    for ((patient, slot), samples) in log.slots.iter().rev() {
        e.restore_slot(patient, *slot, samples.iter().cloned());
    }
    for ((patient, rule), waiting) in &log.pending {
        e.restore_pending(patient, *rule, waiting.clone());
    }
    e.finish_restore();
    e
}

#[test]
fn samples_leaving_the_look_back_cost_no_record_and_slots_stay_few() {
    let p = profile("p-home");
    let mut e = AlertEngine::new(AlertsConfig::default());
    let mut log = Log::default();
    let readings = routine(0, 30);
    let (puts, tombstones) = feed(&mut e, &p, &readings, &mut log);
    // One record per reading with samples kept (temperature keeps none),
    // none deleted, although all but the last week's weights left.
    assert_eq!(puts, readings.len() - 30);
    assert_eq!(tombstones, 0);
    let held = e.history(&p.patient_id).expect("history");
    let slots = usize::from(held.slots());
    assert!(slots <= 16, "{slots} slots for 30 days of readings");
    assert_eq!(log.slots.len(), slots, "one key per slot, no more");
    assert!(
        e.take_alerts()
            .iter()
            .any(|a| a.rule == AlertRule::BpCrisis)
    );
}

#[test]
fn a_restore_holds_what_the_engine_held_and_continues_alike() {
    let p = profile("p-home");
    for days in [1, 3, 9, 30] {
        let mut original = AlertEngine::new(AlertsConfig::default());
        let mut log = Log::default();
        feed(&mut original, &p, &routine(0, days), &mut log);
        original.take_alerts();
        let mut again = restored(&p, &log, original.cooldowns(&p.patient_id));
        assert_eq!(
            again.history(&p.patient_id),
            original.history(&p.patient_id),
            "after {days} days"
        );
        // The next week, with a weight gain, a confirmed crisis (its first
        // reading found among the samples) and a high pulse on its last day.
        let next = routine(days, 7);
        feed(&mut original, &p, &next, &mut log.clone());
        feed(&mut again, &p, &next, &mut log);
        let (a, b) = (original.take_alerts(), again.take_alerts());
        assert!(!a.is_empty());
        assert_eq!(a, b, "after {days} days");
        assert_eq!(
            again.history(&p.patient_id),
            original.history(&p.patient_id)
        );
    }
}

#[test]
fn an_erasure_deletes_every_slot_ever_written() {
    let p = profile("p-erased");
    let mut e = AlertEngine::new(AlertsConfig::default());
    let mut log = Log::default();
    feed(&mut e, &p, &routine(0, 20), &mut log);
    // Restored or not, every key of the log is named.
    let mut again = restored(&p, &log, e.cooldowns(&p.patient_id));
    for engine in [&mut e, &mut again] {
        engine.take_dirty();
        assert!(engine.purge_patient(&p.patient_id) > 0);
        let dirty = engine.take_dirty();
        let entries = &dirty[p.patient_id.as_str()];
        for (_, slot) in log.slots.keys() {
            assert!(entries.contains(&AlertEntry::Slot(*slot)), "slot {slot}");
        }
        assert!(entries.contains(&AlertEntry::Head));
        assert!(engine.history(&p.patient_id).is_none(), "nothing held");
        assert_eq!(engine.slot_samples(&p.patient_id, 0).count(), 0);
    }
}

#[test]
fn a_week_synced_at_once_is_one_record_and_restores_alike() {
    // A hub that was offline uploads a week of home readings at once: the
    // pipeline sees them in one batch. Their samples share one slot, so
    // the changelog gets one record instead of one per reading.
    let p = profile("p-offline-hub");
    let week = routine(0, 7);
    let mut daily = AlertEngine::new(AlertsConfig::default());
    let (per_reading, _) = feed(&mut daily, &p, &week, &mut Log::default());
    let mut synced = AlertEngine::new(AlertsConfig::default());
    let mut log = Log::default();
    let (puts, tombstones) = feed_in_batches(&mut synced, &p, &week, week.len(), &mut log);
    assert_eq!((puts, tombstones), (1, 0), "one slot record for the upload");
    assert!(
        per_reading > 30,
        "{per_reading} records when taken per reading"
    );
    // The same alerts as readings arriving one by one, and a restore from
    // that one record holds the same samples and continues alike.
    assert_eq!(synced.take_alerts(), daily.take_alerts());
    let mut again = restored(&p, &log, synced.cooldowns(&p.patient_id));
    let held = |e: &AlertEngine| {
        let h = e.history(&p.patient_id).expect("history");
        (0..h.slots())
            .flat_map(|s| e.slot_samples(&p.patient_id, s).cloned())
            .map(|s| (s.reading_id.to_string(), s.t_ms))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(held(&again), held(&synced));
    let next = routine(7, 7);
    feed(&mut synced, &p, &next, &mut log.clone());
    feed(&mut again, &p, &next, &mut log);
    let (a, b) = (synced.take_alerts(), again.take_alerts());
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(held(&again), held(&synced));
}

/// A scale that stamps time to the minute, and a patient who steps on
/// twice in one morning session (first in clothes, then without): two
/// weights of the same millisecond. The second is the day's weight; the
/// next morning's gain is measured from it, after a restart as without one.
#[test]
fn two_weigh_ins_stamped_alike_restore_to_the_same_previous_weight() {
    let p = profile("p-scale");
    let weight = |kg: i64| {
        Measurement::BodyScan(BodyScan {
            weight_kg: Decimal::new(kg, 3),
            resistance_ohm: Decimal::from(500),
            reactance_ohm: Decimal::from(50),
            segments: vec![],
        })
    };
    let morning = |day: i64| day * DAY + 7 * HOUR;
    let days = [
        ("rd-0".to_string(), morning(0), weight(80_200)),
        ("rd-1-a".to_string(), morning(1), weight(81_600)),
        ("rd-1-b".to_string(), morning(1), weight(80_400)),
    ];
    let mut original = AlertEngine::new(AlertsConfig::default());
    let mut log = Log::default();
    feed(&mut original, &p, &days, &mut log);
    original.take_alerts();
    let mut again = restored(&p, &log, original.cooldowns(&p.patient_id));
    assert_eq!(
        again.history(&p.patient_id),
        original.history(&p.patient_id)
    );
    // The next morning: 1.1 kg above the day's weight (0.1 below the first
    // step-on): the clinician sees a 24-hour weight gain, with or without
    // the restart.
    let next = [("rd-2".to_string(), morning(2), weight(81_500))];
    feed(&mut original, &p, &next, &mut log.clone());
    feed(&mut again, &p, &next, &mut log);
    let alerts = original.take_alerts();
    assert_eq!(again.take_alerts(), alerts);
    let gain: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule == AlertRule::WeightGain24h)
        .map(|a| (a.observed, a.evidence_reading_ids.clone()))
        .collect();
    assert_eq!(
        gain,
        [(Decimal::new(1_100, 3), vec!["rd-1-b".into(), "rd-2".into()])]
    );
}
