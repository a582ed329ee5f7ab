//! Scripted clinical scenarios: patients whose readings must raise known
//! alerts (or, for the patient without consent, none), so a demo run shows
//! the rules working and checks them end to end.
//!
//! Event times are offsets from a base the gateway sets about 20 hours
//! before its first record, inside the default 24-hour dedup horizon.

use rust_decimal::Decimal;

use crate::model::{
    AlertRule, BloodPressure, BodyScan, EcgClassification, EcgResult, Measurement, PatientProfile,
    Severity, Sex, ThresholdOverride,
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
        },
        Scenario {
            name: "heart failure, clinician limit 0.5 kg a day, 0.7 kg gained",
            profile: profile(
                "scenario-hf-override",
                &[(AlertRule::WeightGain24h, d(500, 3))],
            ),
            steps: vec![(HOUR, weight(91_000)), (13 * HOUR, weight(91_700))],
            expected: vec![(AlertRule::WeightGain24h, Severity::Warning)],
        },
        Scenario {
            name: "BP crisis confirmed by a repeat 3 minutes later",
            profile: profile("scenario-crisis-confirmed", &[]),
            steps: vec![
                (2 * HOUR, bp(186, 124, 88)),
                (2 * HOUR + 3 * MIN, bp(183, 121, 86)),
            ],
            expected: vec![(AlertRule::BpCrisis, Severity::Critical)],
        },
        Scenario {
            name: "BP crisis not confirmed by the repeat",
            profile: profile("scenario-crisis-unconfirmed", &[]),
            steps: vec![
                (3 * HOUR, bp(184, 112, 80)),
                (3 * HOUR + 4 * MIN, bp(158, 96, 78)),
            ],
            expected: vec![(AlertRule::BpCrisis, Severity::Urgent)],
        },
        Scenario {
            name: "BP crisis, patient without consent to clinician sharing",
            profile: no_consent,
            steps: vec![
                (4 * HOUR, bp(190, 125, 90)),
                (4 * HOUR + 2 * MIN, bp(188, 123, 90)),
            ],
            expected: vec![],
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
        },
        Scenario {
            name: "atrial fibrillation on an ECG",
            profile: profile("scenario-afib", &[]),
            steps: vec![(7 * HOUR, ecg(EcgClassification::Afib, 104))],
            expected: vec![(AlertRule::Afib, Severity::Warning)],
        },
        Scenario {
            name: "resting heart rate under 40 on three readings",
            profile: profile("scenario-bradycardia", &[]),
            steps: vec![
                (9 * HOUR, bp(118, 76, 38)),
                (9 * HOUR + 15 * MIN, bp(116, 74, 37)),
                (9 * HOUR + 30 * MIN, ecg(EcgClassification::SinusRhythm, 36)),
            ],
            expected: vec![(AlertRule::RestingHrLow, Severity::Warning)],
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
        },
    ]
}
