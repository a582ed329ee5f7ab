//! Enrichment of an accepted reading: quality flags, LOINC code, BP category
//! and body composition (DESIGN.md §2, §4). Pure functions of the reading,
//! the patient profile and the validation settings.

use super::ValidationConfig;
use super::{
    BodyInput, Checked, age_years, bmi, body_composition, bp_category, segments_consistent,
};
use crate::model::{
    Attribution, BodyComposition, BodyScan, EnrichedReading, Measurement, MeasurementKind,
    PatientProfile, Provenance, QualityFlag, RawReading,
};

/// Builds the enriched record of an accepted, deduplicated reading whose
/// implausible secondary values `checked` names.
pub(crate) fn enrich<'a>(
    reading: RawReading<'a>,
    checked: Checked,
    profile: &PatientProfile,
    cfg: &ValidationConfig,
    provenance: Provenance<'a>,
    now_ms: i64,
) -> EnrichedReading<'a> {
    let mut quality_flags = Vec::new();
    match reading.attribution {
        Attribution::Ambiguous => quality_flags.push(QualityFlag::AmbiguousAttribution),
        Attribution::Manual => quality_flags.push(QualityFlag::ManualEntry),
        Attribution::Device => {}
    }
    if reading
        .received_at_ms
        .saturating_sub(reading.measured_at_ms)
        > cfg.delayed_delivery_ms
    {
        quality_flags.push(QualityFlag::DelayedDelivery);
    }
    quality_flags.extend(checked.flags());
    let mut bp = None;
    let mut body = None;
    let mut body_mass_index = None;
    match &reading.measurement {
        Measurement::BloodPressure(m) => bp = Some(bp_category(m.systolic_mmhg, m.diastolic_mmhg)),
        Measurement::BodyScan(scan) => {
            if cfg.ranges.height_cm.contains(profile.height_cm) {
                body_mass_index = bmi(scan.weight_kg, profile.height_cm).ok();
                if checked.impedance_dropped {
                    quality_flags.push(QualityFlag::BodyCompositionUnavailable);
                } else {
                    body = body_of(scan, profile, reading.measured_at_ms, &mut quality_flags);
                }
            } else {
                quality_flags.push(QualityFlag::HeightImplausible);
                quality_flags.push(QualityFlag::BodyCompositionUnavailable);
            }
        }
        _ => {}
    }
    EnrichedReading {
        loinc_code: loinc_code(&reading.measurement),
        reading,
        quality_flags,
        bp_category: bp,
        body_composition: body,
        bmi: body_mass_index,
        provenance,
        processed_at_ms: now_ms,
    }
}

/// Body composition of a scan, or `None` with
/// [`QualityFlag::BodyCompositionUnavailable`] when the profile or the scan
/// does not allow it (unspecified sex, birth date after the scan, impossible
/// result). The reading is published either way.
fn body_of(
    scan: &BodyScan,
    profile: &PatientProfile,
    measured_at_ms: i64,
    flags: &mut Vec<QualityFlag>,
) -> Option<BodyComposition> {
    if !scan.segments.is_empty() && !segments_consistent(scan) {
        flags.push(QualityFlag::SegmentalInconsistent);
    }
    let Some(age) = age_years(profile.birth_date_days, measured_at_ms) else {
        flags.push(QualityFlag::BodyCompositionUnavailable);
        return None;
    };
    let input = BodyInput::from_scan(scan, profile.height_cm, profile.sex, age);
    match body_composition(&input) {
        Ok((composition, extra)) => {
            flags.extend(extra);
            Some(composition)
        }
        Err(_) => {
            flags.push(QualityFlag::BodyCompositionUnavailable);
            None
        }
    }
}

/// LOINC code of the primary observation (DESIGN.md §2).
pub(crate) fn loinc_code(m: &Measurement) -> Option<&'static str> {
    Some(match m.kind() {
        MeasurementKind::BodyScan => "29463-7",
        MeasurementKind::HeartRhythm | MeasurementKind::Ecg => "8867-4",
        MeasurementKind::BloodPressure => "85354-9",
        MeasurementKind::SpO2 => "59408-5",
        MeasurementKind::Temperature => "8310-5",
    })
}
