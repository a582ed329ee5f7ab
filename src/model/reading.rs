//! `RawReading`: one device measurement as the device-ingest gateway writes it.

use std::borrow::Cow;

use rust_decimal::Decimal;

/// A raw device reading from `vitals.readings.raw`.
///
/// String fields are `Cow` so a decoder may borrow them from the Kafka payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReading<'a> {
    /// Gateway idempotency key: the same physical reading always has the same id.
    pub reading_id: Cow<'a, str>,
    /// Device serial or gateway device handle.
    pub device_id: Cow<'a, str>,
    /// Device model name, e.g. `"Body Scan"`.
    pub device_model: Cow<'a, str>,
    /// Broad class of device.
    pub device_kind: DeviceKind,
    /// Patient the reading is attributed to; must equal the Kafka key.
    pub patient_id: Cow<'a, str>,
    /// Device clock, milliseconds since the Unix epoch (event time).
    pub measured_at_ms: i64,
    /// Gateway clock, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// How the reading was attributed to the patient.
    pub attribution: Attribution,
    /// The measurement itself.
    pub measurement: Measurement,
}

impl RawReading<'_> {
    /// Detaches the reading from the buffer it was decoded from.
    pub fn into_owned(self) -> RawReading<'static> {
        RawReading {
            reading_id: Cow::Owned(self.reading_id.into_owned()),
            device_id: Cow::Owned(self.device_id.into_owned()),
            device_model: Cow::Owned(self.device_model.into_owned()),
            patient_id: Cow::Owned(self.patient_id.into_owned()),
            device_kind: self.device_kind,
            measured_at_ms: self.measured_at_ms,
            received_at_ms: self.received_at_ms,
            attribution: self.attribution,
            measurement: self.measurement,
        }
    }
}

/// Broad class of the measuring device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Smart scale, possibly with bioimpedance.
    Scale,
    /// Wrist-worn watch (rhythm, SpO2, ECG, temperature).
    Watch,
    /// Blood-pressure monitor.
    BpMonitor,
    /// Thermometer.
    Thermometer,
    /// Pulse oximeter.
    PulseOximeter,
    /// Anything else.
    Other,
}

/// How the gateway attributed a reading to a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// The device identified the user.
    Device,
    /// The patient entered or confirmed it manually.
    Manual,
    /// A shared device could not tell its users apart.
    Ambiguous,
}

/// One measurement: the union of DESIGN.md §2.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// Weight and bioimpedance from a smart scale.
    BodyScan(BodyScan),
    /// Consecutive RR intervals.
    HeartRhythm(HeartRhythm),
    /// Cuff blood pressure.
    BloodPressure(BloodPressure),
    /// Peripheral oxygen saturation, percent.
    SpO2 {
        /// Saturation in percent.
        pct: Decimal,
    },
    /// Body temperature.
    Temperature {
        /// Temperature in degrees Celsius.
        celsius: Decimal,
    },
    /// On-device ECG classification.
    Ecg(EcgResult),
}

/// Measurement kind without its payload, for metrics and summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MeasurementKind {
    /// [`Measurement::BodyScan`]
    BodyScan,
    /// [`Measurement::HeartRhythm`]
    HeartRhythm,
    /// [`Measurement::BloodPressure`]
    BloodPressure,
    /// [`Measurement::SpO2`]
    SpO2,
    /// [`Measurement::Temperature`]
    Temperature,
    /// [`Measurement::Ecg`]
    Ecg,
}

impl MeasurementKind {
    /// All kinds, in schema union order.
    pub const ALL: [MeasurementKind; 6] = [
        Self::BodyScan,
        Self::HeartRhythm,
        Self::BloodPressure,
        Self::SpO2,
        Self::Temperature,
        Self::Ecg,
    ];

    /// Stable snake_case name, used as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BodyScan => "body_scan",
            Self::HeartRhythm => "heart_rhythm",
            Self::BloodPressure => "blood_pressure",
            Self::SpO2 => "spo2",
            Self::Temperature => "temperature",
            Self::Ecg => "ecg",
        }
    }
}

impl Measurement {
    /// The kind of this measurement.
    pub fn kind(&self) -> MeasurementKind {
        match self {
            Self::BodyScan(_) => MeasurementKind::BodyScan,
            Self::HeartRhythm(_) => MeasurementKind::HeartRhythm,
            Self::BloodPressure(_) => MeasurementKind::BloodPressure,
            Self::SpO2 { .. } => MeasurementKind::SpO2,
            Self::Temperature { .. } => MeasurementKind::Temperature,
            Self::Ecg(_) => MeasurementKind::Ecg,
        }
    }
}

/// Smart-scale weight with whole-body bioimpedance at 50 kHz.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyScan {
    /// Body weight, kg.
    pub weight_kg: Decimal,
    /// Whole-body resistance R, ohm.
    pub resistance_ohm: Decimal,
    /// Whole-body reactance Xc, ohm.
    pub reactance_ohm: Decimal,
    /// Optional segmental impedance.
    pub segments: Vec<SegmentImpedance>,
}

/// Impedance of one body segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentImpedance {
    /// Which segment.
    pub segment: BodySegment,
    /// Resistance, ohm.
    pub resistance_ohm: Decimal,
    /// Reactance, ohm.
    pub reactance_ohm: Decimal,
}

/// Body segment of a segmental impedance value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodySegment {
    /// Left arm.
    LeftArm,
    /// Right arm.
    RightArm,
    /// Left leg.
    LeftLeg,
    /// Right leg.
    RightLeg,
    /// Torso.
    Torso,
}

/// Consecutive RR intervals starting at `measured_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartRhythm {
    /// RR intervals in milliseconds, in beat order.
    pub rr_intervals_ms: Vec<i32>,
    /// Where the intervals came from.
    pub source: RhythmSource,
}

/// Source of RR intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RhythmSource {
    /// Electrocardiogram.
    Ecg,
    /// Photoplethysmogram (optical).
    Ppg,
}

/// A cuff blood-pressure measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct BloodPressure {
    /// Systolic pressure, mmHg.
    pub systolic_mmhg: i32,
    /// Diastolic pressure, mmHg.
    pub diastolic_mmhg: i32,
    /// Pulse, beats per minute, when the monitor reports it.
    pub pulse_bpm: Option<i32>,
}

/// On-device ECG result.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgResult {
    /// The device's rhythm classification.
    pub classification: EcgClassification,
    /// Average heart rate over the recording, bpm.
    pub heart_rate_bpm: i32,
}

/// Rhythm classification of an on-device ECG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcgClassification {
    /// Sinus rhythm.
    SinusRhythm,
    /// Atrial fibrillation.
    Afib,
    /// The device could not classify the recording.
    Inconclusive,
}
