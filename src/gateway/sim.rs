//! The simulated patient population: random readings of every kind with a
//! configurable share of duplicates, malformed, out-of-range and
//! unknown-patient records, interleaved with the scripted scenarios.
//!
//! Every record it sends is classified, so a run can check that the
//! pipeline's counts add up: valid + out-of-range + malformed + duplicates = sent.

use std::borrow::Cow;
use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rust_decimal::Decimal;

use super::scenarios::{Scenario, clinical_scenarios};
use crate::codec::{Codec, EncodeError};
use crate::model::{
    Attribution, BloodPressure, BodyScan, DeviceKind, EcgClassification, EcgResult, HeartRhythm,
    Measurement, MeasurementKind, PatientProfile, RawReading, RhythmSource, Sex,
};

/// What the simulated gateway sends.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Number of simulated patients.
    pub patients: usize,
    /// Share of records that re-send an earlier reading (gateway retry).
    pub duplicate_ratio: f64,
    /// Share of records with undecodable bytes.
    pub malformed_ratio: f64,
    /// Share of well-formed readings with an implausible value.
    pub out_of_range_ratio: f64,
    /// Share of readings from patients the gateway knows but who have no
    /// profile on the patients topic (DLQ `unknown_patient`).
    pub unknown_patient_ratio: f64,
    /// How far back in event time the watches' RR history starts. Watches
    /// sync consecutive 60-beat chunks from there towards the present, so
    /// HRV windows close during a short run.
    pub rr_history_ms: i64,
    /// One record in this many is the next reading of a scripted clinical
    /// scenario (while any remain); 0 sends no scenarios.
    pub scenario_every: u64,
    /// RNG seed, for reproducible runs.
    pub seed: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            patients: 200,
            duplicate_ratio: 0.03,
            malformed_ratio: 0.01,
            out_of_range_ratio: 0.02,
            unknown_patient_ratio: 0.005,
            // Under the 30-minute HRV idle close: the partition's event time
            // starts at the watches' history and jumps to the present with
            // the first reading of another kind, which must not close a
            // watch's windows between two of its chunks.
            rr_history_ms: 25 * 60 * 1000,
            scenario_every: 50,
            seed: 7,
        }
    }
}

/// How a simulated record is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Valid and new: enriched output.
    Valid(MeasurementKind),
    /// A re-send of an earlier valid reading: dropped as duplicate.
    Duplicate,
    /// Undecodable: DLQ `malformed`.
    Malformed,
    /// Implausible value: DLQ `out_of_range`.
    OutOfRange,
    /// A patient without a profile: DLQ `unknown_patient`.
    UnknownPatient,
}

/// One record ready to produce.
#[derive(Debug, Clone)]
pub struct SimRecord {
    /// Kafka key (patient id).
    pub key: String,
    /// Framed Avro payload (or garbage, for malformed records).
    pub payload: Vec<u8>,
    /// Expected outcome.
    pub expected: Expected,
}

/// Totals of what the gateway sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayReport {
    /// Records sent.
    pub sent: u64,
    /// Valid unique readings, per measurement kind.
    pub valid: [u64; MeasurementKind::ALL.len()],
    /// Re-sent readings.
    pub duplicates: u64,
    /// Undecodable records.
    pub malformed: u64,
    /// Implausible readings.
    pub out_of_range: u64,
    /// Readings of patients without a profile.
    pub unknown_patient: u64,
    /// Bytes of keys and values sent.
    pub bytes: u64,
}

impl GatewayReport {
    /// Valid unique readings of all kinds.
    pub fn valid_total(&self) -> u64 {
        self.valid.iter().sum()
    }

    pub(super) fn count(&mut self, expected: Expected) {
        self.sent += 1;
        match expected {
            Expected::Valid(kind) => self.valid[kind as usize] += 1,
            Expected::Duplicate => self.duplicates += 1,
            Expected::Malformed => self.malformed += 1,
            Expected::OutOfRange => self.out_of_range += 1,
            Expected::UnknownPatient => self.unknown_patient += 1,
        }
    }
}

struct SimPatient {
    id: String,
    weight_kg: Decimal,
    resting_rr_ms: i32,
    systolic: i32,
    sex: Sex,
    height_cm: Decimal,
    birth_date_days: i32,
    /// Known atrial fibrillation: most of this patient's ECGs show it.
    afib: bool,
    /// Event time where the patient's watch RR history continues; set on
    /// the first heart-rhythm reading.
    beat_clock_ms: Option<i64>,
}

/// Generates simulated gateway records.
pub struct Gateway {
    codec: Codec,
    cfg: GatewayConfig,
    rng: SmallRng,
    patients: Vec<SimPatient>,
    recent: VecDeque<(String, Vec<u8>)>,
    seq: u64,
    records: u64,
    scenarios: Vec<Scenario>,
    /// Scenario readings not sent yet: (scenario index, event-time offset, measurement).
    script: VecDeque<(usize, i64, Measurement, Attribution)>,
    /// Event time the scenario offsets count from, set on the first record.
    script_base_ms: Option<i64>,
}

impl Gateway {
    /// A gateway writing with `codec`'s schema ids.
    pub fn new(codec: Codec, cfg: GatewayConfig) -> Self {
        let scenarios = if cfg.scenario_every > 0 {
            clinical_scenarios()
        } else {
            Vec::new()
        };
        let script = scenarios
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.steps
                    .iter()
                    .enumerate()
                    .map(move |(k, (dt, m))| (i, *dt, m.clone(), s.attribution(k)))
            })
            .collect();
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let patients = (0..cfg.patients.max(1))
            .map(|i| SimPatient {
                id: format!("patient-{i:05}"),
                weight_kg: Decimal::new(rng.random_range(55_000..110_000), 3),
                resting_rr_ms: rng.random_range(700..1100),
                systolic: rng.random_range(105..150),
                // A few profiles leave sex unspecified: body composition is
                // then flagged unavailable, never guessed.
                sex: match rng.random_range(0..100) {
                    0..=2 => Sex::Unspecified,
                    3..=51 => Sex::Female,
                    _ => Sex::Male,
                },
                height_cm: Decimal::new(rng.random_range(1_550..1_950), 1),
                // Born 1940–2000.
                birth_date_days: rng.random_range(-10_957..10_957),
                afib: rng.random_bool(0.04),
                beat_clock_ms: None,
            })
            .collect();
        Self {
            codec,
            cfg,
            rng,
            patients,
            recent: VecDeque::with_capacity(256),
            seq: 0,
            records: 0,
            script,
            scenarios,
            script_base_ms: None,
        }
    }

    /// The scripted scenarios this gateway sends (empty when disabled).
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// Profiles of the simulated and scenario patients, encoded for the
    /// patients topic as `(key, value)`.
    ///
    /// # Errors
    /// Only if a generated value does not fit its schema (a defect).
    pub fn profiles(&self) -> Result<Vec<(String, Vec<u8>)>, EncodeError> {
        let scripted = self.scenarios.iter().map(|s| s.profile.clone());
        self.patients
            .iter()
            .map(|p| PatientProfile {
                patient_id: p.id.clone(),
                birth_date_days: p.birth_date_days,
                sex: p.sex,
                height_cm: p.height_cm,
                rpm_enrolled: true,
                consent_clinician_sharing: true,
                care_team: vec!["care-team-1".into()],
                threshold_overrides: Vec::new(),
                dry_weight_kg: None,
            })
            .chain(scripted)
            .map(|profile| {
                let mut buf = Vec::with_capacity(128);
                self.codec.encode_profile(&profile, &mut buf)?;
                Ok((profile.patient_id, buf))
            })
            .collect()
    }

    /// The next record, measured at about `now_ms`.
    ///
    /// # Errors
    /// Only if a generated value does not fit its schema (a defect).
    pub fn next_record(&mut self, now_ms: i64) -> Result<SimRecord, EncodeError> {
        self.records += 1;
        // Scenario offsets span 19 hours from about 20 hours ago: inside
        // the default 24-hour dedup horizon, never in the future.
        let base = *self.script_base_ms.get_or_insert(now_ms - 20 * 3_600_000);
        if self.cfg.scenario_every > 0
            && self.records.is_multiple_of(self.cfg.scenario_every)
            && let Some((i, dt, measurement, attribution)) = self.script.pop_front()
        {
            return self.scripted(i, base + dt, measurement, attribution);
        }
        let roll: f64 = self.rng.random();
        let c = &self.cfg;
        if roll < c.duplicate_ratio && !self.recent.is_empty() {
            let i = self.rng.random_range(0..self.recent.len());
            let (key, payload) = self.recent[i].clone();
            return Ok(SimRecord {
                key,
                payload,
                expected: Expected::Duplicate,
            });
        }
        if roll < c.duplicate_ratio + c.malformed_ratio {
            return Ok(self.malformed());
        }
        let out_of_range = roll < c.duplicate_ratio + c.malformed_ratio + c.out_of_range_ratio;
        let unregistered = !out_of_range
            && roll
                < c.duplicate_ratio
                    + c.malformed_ratio
                    + c.out_of_range_ratio
                    + c.unknown_patient_ratio;
        let mut reading = self.reading(now_ms, out_of_range);
        if unregistered {
            let n = self.rng.random_range(0..20);
            reading.patient_id = Cow::Owned(format!("unregistered-{n:03}"));
        }
        let mut payload = Vec::with_capacity(128);
        self.codec.encode_raw(&reading, &mut payload)?;
        let key = reading.patient_id.into_owned();
        let expected = if out_of_range {
            Expected::OutOfRange
        } else if unregistered {
            Expected::UnknownPatient
        } else {
            if self.recent.len() == self.recent.capacity() {
                self.recent.pop_front();
            }
            self.recent.push_back((key.clone(), payload.clone()));
            Expected::Valid(reading.measurement.kind())
        };
        Ok(SimRecord {
            key,
            payload,
            expected,
        })
    }

    fn scripted(
        &mut self,
        scenario: usize,
        measured_at_ms: i64,
        measurement: Measurement,
        attribution: Attribution,
    ) -> Result<SimRecord, EncodeError> {
        self.seq += 1;
        let device_kind = match &measurement {
            Measurement::BodyScan(_) => DeviceKind::Scale,
            Measurement::BloodPressure(_) => DeviceKind::BpMonitor,
            Measurement::Temperature { .. } => DeviceKind::Thermometer,
            _ => DeviceKind::Watch,
        };
        let patient_id = self.scenarios[scenario].profile.patient_id.clone();
        let reading = RawReading {
            reading_id: Cow::Owned(format!("rd-{}-{:010}", self.cfg.seed, self.seq)),
            device_id: Cow::Owned(format!("dev-scenario-{scenario}-{}", device_kind as u8)),
            device_model: Cow::Borrowed("Scenario"),
            device_kind,
            patient_id: Cow::Owned(patient_id.clone()),
            measured_at_ms,
            received_at_ms: measured_at_ms + 1_000,
            attribution,
            measurement,
        };
        let mut payload = Vec::with_capacity(128);
        self.codec.encode_raw(&reading, &mut payload)?;
        Ok(SimRecord {
            key: patient_id,
            payload,
            expected: Expected::Valid(reading.measurement.kind()),
        })
    }

    fn malformed(&mut self) -> SimRecord {
        let p = &self.patients[self.rng.random_range(0..self.patients.len())];
        let len = self.rng.random_range(0..40);
        let mut payload: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
        if let Some(first) = payload.first_mut() {
            // Keep the magic byte valid half of the time so decoding gets past the header.
            if self.rng.random_bool(0.5) {
                *first = 0;
            }
        }
        if payload.len() >= 5 && payload[0] == 0 {
            // Known schema id, garbage datum.
            payload[1..5].copy_from_slice(&self.codec.ids().raw_reading.to_be_bytes());
        }
        SimRecord {
            key: p.id.clone(),
            payload,
            expected: Expected::Malformed,
        }
    }

    fn reading(&mut self, now_ms: i64, out_of_range: bool) -> RawReading<'static> {
        self.seq += 1;
        let kind_roll: f64 = self.rng.random();
        if (0.20..0.50).contains(&kind_roll)
            && let Some(reading) = self.heart_rhythm(now_ms, out_of_range)
        {
            return reading;
        }
        let pi = self.rng.random_range(0..self.patients.len());
        let p = &self.patients[pi];
        let jitter = |rng: &mut SmallRng, spread: i32| rng.random_range(-spread..=spread);
        let (device_kind, measurement) = if kind_roll < 0.50 {
            let weight = if out_of_range {
                Decimal::new(512_000, 3)
            } else {
                p.weight_kg + Decimal::new(i64::from(jitter(&mut self.rng, 400)), 3)
            };
            let body = BodyScan {
                weight_kg: weight,
                resistance_ohm: Decimal::new(i64::from(self.rng.random_range(40_000..60_000)), 2),
                reactance_ohm: Decimal::new(i64::from(self.rng.random_range(4_500..7_000)), 2),
                segments: Vec::new(),
            };
            (DeviceKind::Scale, Measurement::BodyScan(body))
        } else if kind_roll < 0.70 {
            let systolic = if out_of_range {
                320
            } else {
                p.systolic + jitter(&mut self.rng, 8)
            };
            let bp = BloodPressure {
                systolic_mmhg: systolic,
                diastolic_mmhg: 70 + jitter(&mut self.rng, 8),
                pulse_bpm: Some(60_000 / p.resting_rr_ms),
            };
            (DeviceKind::BpMonitor, Measurement::BloodPressure(bp))
        } else if kind_roll < 0.85 {
            let pct = if out_of_range {
                Decimal::new(1200, 1)
            } else {
                Decimal::new(i64::from(self.rng.random_range(930..=995)), 1)
            };
            (DeviceKind::Watch, Measurement::SpO2 { pct })
        } else if kind_roll < 0.95 {
            let celsius = if out_of_range {
                Decimal::new(2510, 2)
            } else {
                Decimal::new(i64::from(self.rng.random_range(3600..3760)), 2)
            };
            (
                DeviceKind::Thermometer,
                Measurement::Temperature { celsius },
            )
        } else {
            let classification = if p.afib && self.rng.random_bool(0.7) {
                EcgClassification::Afib
            } else {
                EcgClassification::SinusRhythm
            };
            if out_of_range {
                // An ECG's classification is always valid (an implausible
                // rate is dropped, the reading kept): send an oximeter
                // reading off the scale instead.
                (
                    DeviceKind::Watch,
                    Measurement::SpO2 {
                        pct: Decimal::new(420, 1),
                    },
                )
            } else {
                let ecg = EcgResult {
                    classification,
                    heart_rate_bpm: 60_000 / p.resting_rr_ms,
                };
                (DeviceKind::Watch, Measurement::Ecg(ecg))
            }
        };
        let delay = i64::from(self.rng.random_range(0..2_000));
        self.raw(pi, device_kind, now_ms - delay, now_ms, measurement)
    }

    /// The next 60-beat RR chunk of the watch furthest behind, so all
    /// watches advance together through their history and a partition's
    /// watermark never leaves one behind. `None` once every watch has caught
    /// up with `now_ms` (the caller then sends another kind).
    fn heart_rhythm(&mut self, now_ms: i64, out_of_range: bool) -> Option<RawReading<'static>> {
        const CHUNK: usize = 60;
        // All watches start together, once: within a minute of the history start.
        if self
            .patients
            .first()
            .is_some_and(|p| p.beat_clock_ms.is_none())
        {
            let history_start = now_ms - self.cfg.rr_history_ms;
            for p in &mut self.patients {
                p.beat_clock_ms = Some(history_start + self.rng.random_range(0..60_000));
            }
        }
        let (pi, clock) = self
            .patients
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.beat_clock_ms.map(|c| (i, c)))
            .min_by_key(|&(_, c)| c)?;
        let base = self.patients[pi].resting_rr_ms;
        // Slow breathing-like modulation plus beat-to-beat noise.
        let mut rr: Vec<i32> = (0..CHUNK)
            .map(|i| {
                let wave = [0, 12, 20, 12, 0, -12, -20, -12][i % 8];
                base + wave + self.rng.random_range(-15..=15)
            })
            .collect();
        let span: i64 = rr.iter().map(|&v| i64::from(v)).sum();
        if clock + span > now_ms {
            return None;
        }
        if out_of_range {
            // No plausible interval at all (one odd beat is kept, flagged).
            rr.iter_mut().for_each(|v| *v = 0);
        }
        self.patients[pi].beat_clock_ms = Some(clock + span);
        let received = clock + span + i64::from(self.rng.random_range(0..2_000));
        let measurement = Measurement::HeartRhythm(HeartRhythm {
            rr_intervals_ms: rr,
            source: RhythmSource::Ppg,
        });
        Some(self.raw(pi, DeviceKind::Watch, clock, received, measurement))
    }

    fn raw(
        &mut self,
        pi: usize,
        device_kind: DeviceKind,
        measured_at_ms: i64,
        received_at_ms: i64,
        measurement: Measurement,
    ) -> RawReading<'static> {
        let p = &self.patients[pi];
        RawReading {
            reading_id: Cow::Owned(format!("rd-{}-{:010}", self.cfg.seed, self.seq)),
            device_id: Cow::Owned(format!("dev-{pi:05}-{}", device_kind as u8)),
            device_model: Cow::Borrowed(match device_kind {
                DeviceKind::Scale => "Body Scan",
                DeviceKind::BpMonitor => "BPM Connect",
                DeviceKind::Thermometer => "Thermo",
                _ => "ScanWatch",
            }),
            device_kind,
            patient_id: Cow::Owned(p.id.clone()),
            measured_at_ms,
            received_at_ms,
            attribution: if self.rng.random_bool(0.02) {
                Attribution::Ambiguous
            } else {
                Attribution::Device
            },
            measurement,
        }
    }
}
