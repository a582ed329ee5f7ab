//! Scripted clinical scenarios: patients whose readings must raise known
//! alerts (or, for the patient without consent, none), so a demo run shows
//! the rules working and checks them end to end.
//!
//! Event times are offsets from a base the gateway sets about 20 hours
//! before its first record (from 3.5 hours before the base to 19 hours
//! after it), inside the default 24-hour dedup horizon.

use rust_decimal::Decimal;

use crate::model::{
    AlertRule, Attribution, BloodPressure, BodyScan, EcgClassification, EcgResult, HeartRhythm,
    Measurement, PatientProfile, RhythmSource, Severity, Sex, ThresholdOverride,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// One scripted patient.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short description (no PHI: these are synthetic patients).
    pub name: &'static str,
    /// The patient's profile (published with the others).
    pub profile: PatientProfile,
    /// Readings as (event-time offset from the base, measurement), in send order.
    pub steps: Vec<(i64, Measurement)>,
    /// Alerts the scenario must raise, exactly.
    pub expected: Vec<(AlertRule, Severity)>,
    /// Indexes of the steps from a shared device that could not tell its
    /// users apart (attribution AMBIGUOUS): another person's values.
    pub ambiguous: Vec<usize>,
}

impl Scenario {
    /// The attribution of step `i`.
    pub fn attribution(&self, i: usize) -> Attribution {
        if self.ambiguous.contains(&i) {
            Attribution::Ambiguous
        } else {
            Attribution::Device
        }
    }
}

fn d(unscaled: i64, scale: u32) -> Decimal {
    Decimal::new(unscaled, scale)
}

fn profile(id: &str, overrides: &[(AlertRule, Decimal)]) -> PatientProfile {
    PatientProfile {
        patient_id: id.to_owned(),
        // Born 1956-01-01.
        birth_date_days: -5_114,
        sex: Sex::Female,
        height_cm: d(1_640, 1),
        rpm_enrolled: true,
        consent_clinician_sharing: true,
        care_team: vec!["rpm-nurses".into(), "cardiology".into()],
        threshold_overrides: overrides
            .iter()
            .map(|(rule, threshold)| ThresholdOverride {
                rule: rule.as_str().to_owned(),
                threshold: *threshold,
            })
            .collect(),
        dry_weight_kg: None,
    }
}

fn weight(grams: i64) -> Measurement {
    Measurement::BodyScan(BodyScan {
        weight_kg: d(grams, 3),
        resistance_ohm: d(52_000, 2),
        reactance_ohm: d(5_400, 2),
        segments: Vec::new(),
    })
}

fn bp(systolic: i32, diastolic: i32, pulse: i32) -> Measurement {
    Measurement::BloodPressure(BloodPressure {
        systolic_mmhg: systolic,
        diastolic_mmhg: diastolic,
        pulse_bpm: Some(pulse),
    })
}

fn ecg(classification: EcgClassification, bpm: i32) -> Measurement {
    Measurement::Ecg(EcgResult {
        classification,
        heart_rate_bpm: bpm,
    })
}

/// The scripted scenarios, patient ids prefixed `scenario-`.
pub fn clinical_scenarios() -> Vec<Scenario> {
    let mut hf = profile("scenario-hf-gain", &[]);
    hf.dry_weight_kg = Some(d(78_000, 3));
    let mut no_consent = profile("scenario-no-consent", &[]);
    no_consent.consent_clinician_sharing = false;
    vec![
        Scenario {
            name: "heart failure, 1.1 kg gained within a day",
            profile: hf,
            steps: vec![
                (0, weight(78_200)),
                (10 * HOUR, weight(78_650)),
                (19 * HOUR, weight(79_300)),
            ],
            expected: vec![(AlertRule::WeightGain24h, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "heart failure, clinician limit 0.5 kg a day, 0.7 kg gained",
            profile: profile(
                "scenario-hf-override",
                &[(AlertRule::WeightGain24h, d(500, 3))],
            ),
            steps: vec![(HOUR, weight(91_000)), (19 * HOUR, weight(91_700))],
            expected: vec![(AlertRule::WeightGain24h, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "BP crisis confirmed by a repeat 3 minutes later",
            profile: profile("scenario-crisis-confirmed", &[]),
            steps: vec![
                (2 * HOUR, bp(186, 124, 88)),
                (2 * HOUR + 3 * MIN, bp(183, 121, 86)),
            ],
            expected: vec![(AlertRule::BpCrisis, Severity::Critical)],
            ambiguous: vec![],
        },
        Scenario {
            name: "BP crisis not confirmed by the repeat",
            profile: profile("scenario-crisis-unconfirmed", &[]),
            steps: vec![
                (3 * HOUR, bp(184, 112, 80)),
                (3 * HOUR + 4 * MIN, bp(158, 96, 78)),
            ],
            expected: vec![(AlertRule::BpCrisis, Severity::Urgent)],
            ambiguous: vec![],
        },
        Scenario {
            name: "BP crisis, patient without consent to clinician sharing",
            profile: no_consent,
            steps: vec![
                (4 * HOUR, bp(190, 125, 90)),
                (4 * HOUR + 2 * MIN, bp(188, 123, 90)),
            ],
            expected: vec![],
            ambiguous: vec![],
        },
        Scenario {
            name: "COPD, clinician SpO2 limit 88 %",
            profile: profile("scenario-copd", &[(AlertRule::Spo2Low, d(88, 0))]),
            steps: vec![
                (5 * HOUR, Measurement::SpO2 { pct: d(890, 1) }),
                (5 * HOUR + 4 * MIN, Measurement::SpO2 { pct: d(895, 1) }),
                (8 * HOUR, Measurement::SpO2 { pct: d(870, 1) }),
                (8 * HOUR + 5 * MIN, Measurement::SpO2 { pct: d(865, 1) }),
            ],
            expected: vec![(AlertRule::Spo2Low, Severity::Urgent)],
            ambiguous: vec![],
        },
        Scenario {
            name: "fever",
            profile: profile("scenario-fever", &[]),
            steps: vec![(
                6 * HOUR,
                Measurement::Temperature {
                    celsius: d(3_860, 2),
                },
            )],
            expected: vec![(AlertRule::Fever, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "atrial fibrillation on an ECG",
            profile: profile("scenario-afib", &[]),
            steps: vec![(7 * HOUR, ecg(EcgClassification::Afib, 104))],
            expected: vec![(AlertRule::Afib, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "pulse under 40 on the morning and the evening cuff reading",
            profile: profile("scenario-bradycardia", &[]),
            steps: vec![
                (HOUR, bp(118, 76, 38)),
                (HOUR + 2 * MIN, bp(116, 74, 37)),
                (13 * HOUR, bp(119, 77, 37)),
            ],
            expected: vec![(AlertRule::RestingHrLow, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "stage-2 blood pressure on three readings",
            profile: profile("scenario-stage2", &[]),
            steps: vec![
                (10 * HOUR, bp(152, 94, 72)),
                (14 * HOUR, bp(148, 92, 70)),
                (18 * HOUR, bp(156, 97, 74)),
            ],
            expected: vec![(AlertRule::BpStage2Sustained, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "heart failure, daily 07:00 weigh-in, 1.3 kg overnight",
            profile: profile("scenario-hf-daily", &[]),
            // 07:25 one day, 07:00 the next (the demo's event time spans
            // under a day: the routine's other half is in tests/field.rs).
            steps: vec![
                (-3 * HOUR + 25 * MIN, weight(84_100)),
                (19 * HOUR, weight(85_400)),
            ],
            expected: vec![(AlertRule::WeightGain24h, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "heart failure, 1 kg heavier in the evening than the morning",
            profile: profile("scenario-hf-diurnal", &[]),
            steps: vec![
                (-3 * HOUR, weight(80_000)),
                (9 * HOUR, weight(81_000)),
                (19 * HOUR, weight(80_100)),
            ],
            expected: vec![],
            ambiguous: vec![],
        },
        Scenario {
            name: "shared scale and cuff: a housemate's readings (ambiguous)",
            profile: profile("scenario-shared-devices", &[]),
            steps: vec![
                (0, weight(90_000)),
                (10 * MIN, weight(61_500)),
                (18 * HOUR, weight(90_200)),
                (18 * HOUR + 10 * MIN, bp(194, 124, 90)),
                (18 * HOUR + 13 * MIN, bp(191, 122, 88)),
            ],
            expected: vec![],
            ambiguous: vec![1, 3, 4],
        },
        Scenario {
            name: "BP crisis whose repeat is uploaded after a later reading",
            profile: profile("scenario-crisis-late-repeat", &[]),
            steps: vec![
                (11 * HOUR, bp(192, 112, 84)),
                (11 * HOUR + 20 * MIN, weight(77_000)),
                (11 * HOUR + 3 * MIN, bp(188, 110, 82)),
            ],
            expected: vec![
                (AlertRule::BpCrisis, Severity::Urgent),
                (AlertRule::BpCrisis, Severity::Critical),
            ],
            ambiguous: vec![],
        },
        Scenario {
            name: "fever limit typed in F by the clinician (100.4): default used",
            profile: profile(
                "scenario-fever-fahrenheit",
                &[(AlertRule::Fever, d(1_004, 1))],
            ),
            steps: vec![(
                12 * HOUR,
                Measurement::Temperature {
                    celsius: d(3_860, 2),
                },
            )],
            expected: vec![(AlertRule::Fever, Severity::Warning)],
            ambiguous: vec![],
        },
        Scenario {
            name: "a 3.5 s pause among normal beats: kept, flagged, no alert",
            profile: profile("scenario-pause-beat", &[]),
            steps: vec![(15 * HOUR, rhythm_with_pause())],
            expected: vec![],
            ambiguous: vec![],
        },
        Scenario {
            name: "watch clock 4 min fast, next to another watch: no late beats",
            profile: profile("scenario-fast-watch", &[]),
            steps: (0..6)
                .map(|k| (16 * HOUR + 4 * MIN + k * MIN, steady_rhythm()))
                .collect(),
            expected: vec![],
            ambiguous: vec![],
        },
        Scenario {
            name: "the other watch, on time",
            profile: profile("scenario-watch-on-time", &[]),
            steps: (0..6)
                .map(|k| (16 * HOUR + k * MIN, steady_rhythm()))
                .collect(),
            expected: vec![],
            ambiguous: vec![],
        },
    ]
}

/// A minute of beats at 60 bpm.
fn steady_rhythm() -> Measurement {
    Measurement::HeartRhythm(HeartRhythm {
        rr_intervals_ms: vec![1_000; 60],
        source: RhythmSource::Ppg,
    })
}

/// Normal beats around one 3.5 s pause.
fn rhythm_with_pause() -> Measurement {
    let mut rr = vec![850; 40];
    rr.push(3_500);
    rr.extend([850; 40]);
    Measurement::HeartRhythm(HeartRhythm {
        rr_intervals_ms: rr,
        source: RhythmSource::Ppg,
    })
}
