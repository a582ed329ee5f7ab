//! `EnrichedReading`: an accepted reading with derived metrics and provenance.

use std::borrow::Cow;

use rust_decimal::Decimal;

use super::RawReading;

/// An accepted reading as published on `vitals.readings.enriched`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichedReading<'a> {
    /// The reading as received.
    pub reading: RawReading<'a>,
    /// Quality observations that did not warrant rejection.
    pub quality_flags: Vec<QualityFlag>,
    /// LOINC code of the primary observation, where one exists.
    pub loinc_code: Option<&'static str>,
    /// ACC/AHA 2017 category, for blood-pressure readings.
    pub bp_category: Option<BpCategory>,
    /// Body composition, for body scans of patients with a profile.
    pub body_composition: Option<BodyComposition>,
    /// BMI, kg/m², scale 3, for body scans whenever the profile's height is
    /// plausible: unlike body composition it needs no sex.
    pub bmi: Option<Decimal>,
    /// Where the reading came from.
    pub provenance: Provenance<'a>,
    /// Processor wall clock when the reading was enriched, ms since the epoch.
    pub processed_at_ms: i64,
}

impl EnrichedReading<'_> {
    /// Detaches the reading from the buffers it was decoded from.
    pub fn into_owned(self) -> EnrichedReading<'static> {
        EnrichedReading {
            reading: self.reading.into_owned(),
            quality_flags: self.quality_flags,
            loinc_code: self.loinc_code,
            bp_category: self.bp_category,
            body_composition: self.body_composition,
            bmi: self.bmi,
            provenance: Provenance {
                topic: Cow::Owned(self.provenance.topic.into_owned()),
                partition: self.provenance.partition,
                offset: self.provenance.offset,
            },
            processed_at_ms: self.processed_at_ms,
        }
    }
}

/// Source coordinates of an input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// Input topic (borrowed from the consumed message on the hot path).
    pub topic: Cow<'a, str>,
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
}

/// A quality observation attached to an accepted reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QualityFlag {
    /// The gateway could not tell which user of a shared device this was.
    AmbiguousAttribution,
    /// The value was entered manually rather than measured by the device.
    ManualEntry,
    /// The reading arrived at the gateway long after it was measured.
    DelayedDelivery,
    /// Body composition: the patient is outside the equation's validated age range.
    AgeOutsideEquationValidity,
    /// Body composition: BMI outside the equation's validated range.
    BmiOutsideEquationValidity,
    /// Body composition not computed: no usable profile (height, sex, birth date).
    BodyCompositionUnavailable,
    /// Segmental impedance inconsistent with the whole-body value.
    SegmentalInconsistent,
    /// Impedance implausible (e.g. measured through socks): the weight is
    /// kept, body composition is not computed.
    ImpedanceImplausible,
    /// The cuff's pulse implausible: blood pressure kept, pulse not used.
    PulseImplausible,
    /// The ECG's heart rate implausible: classification kept, rate not used.
    HeartRateImplausible,
    /// Some RR intervals implausible: kept in the reading, rejected as beats
    /// in HRV.
    RrIntervalsImplausible,
    /// An RR interval of 3 s or more: a pause (or a sensor gap) worth a look.
    PauseDetected,
    /// The profile's height is implausible (outside 50–250 cm, e.g. metres
    /// typed as centimetres): no BMI or body composition.
    HeightImplausible,
}

impl QualityFlag {
    /// Stable wire name of the flag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmbiguousAttribution => "ambiguous_attribution",
            Self::ManualEntry => "manual_entry",
            Self::DelayedDelivery => "delayed_delivery",
            Self::AgeOutsideEquationValidity => "age_outside_equation_validity",
            Self::BmiOutsideEquationValidity => "bmi_outside_equation_validity",
            Self::BodyCompositionUnavailable => "body_composition_unavailable",
            Self::SegmentalInconsistent => "segmental_inconsistent",
            Self::ImpedanceImplausible => "impedance_implausible",
            Self::PulseImplausible => "pulse_implausible",
            Self::HeartRateImplausible => "heart_rate_implausible",
            Self::RrIntervalsImplausible => "rr_intervals_implausible",
            Self::PauseDetected => "pause_detected",
            Self::HeightImplausible => "height_implausible",
        }
    }

    /// Every flag.
    pub const ALL: [QualityFlag; 13] = [
        Self::AmbiguousAttribution,
        Self::ManualEntry,
        Self::DelayedDelivery,
        Self::AgeOutsideEquationValidity,
        Self::BmiOutsideEquationValidity,
        Self::BodyCompositionUnavailable,
        Self::SegmentalInconsistent,
        Self::ImpedanceImplausible,
        Self::PulseImplausible,
        Self::HeartRateImplausible,
        Self::RrIntervalsImplausible,
        Self::PauseDetected,
        Self::HeightImplausible,
    ];

    /// Parses a wire name back into a flag.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// ACC/AHA 2017 blood-pressure category, with hypotension (systolic below
/// 90, or diastolic below 60 with systolic below 120).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BpCategory {
    /// Below 90 systolic or 60 diastolic.
    Hypotension,
    /// Below 120/80.
    Normal,
    /// 120–129 systolic and below 80 diastolic.
    Elevated,
    /// 130–139 systolic or 80–89 diastolic.
    Stage1,
    /// At least 140 systolic or 90 diastolic.
    Stage2,
    /// Above 180 systolic and/or above 120 diastolic.
    Crisis,
}

/// Body composition derived from a body scan and the patient profile (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq)]
pub struct BodyComposition {
    /// Body-mass index, kg/m², scale 3.
    pub bmi: Decimal,
    /// Fat-free mass (Kyle 2001), kg, scale 3.
    pub fat_free_mass_kg: Decimal,
    /// Fat mass, kg, scale 3.
    pub fat_mass_kg: Decimal,
    /// Fat ratio, percent, scale 2.
    pub fat_ratio_pct: Decimal,
    /// Skeletal muscle mass (Janssen 2000), kg, scale 3.
    pub skeletal_muscle_mass_kg: Decimal,
    /// Total body water, kg, scale 3.
    pub total_body_water_kg: Decimal,
    /// Basal metabolic rate (Katch–McArdle), kcal/day, scale 1.
    pub bmr_kcal: Decimal,
}
