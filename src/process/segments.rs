//! Segmental bioimpedance consistency check for body scans that carry
//! per-segment values; a failure adds [`QualityFlag::SegmentalInconsistent`].

use rust_decimal::Decimal;

use super::body_composition::{mul, sub, sum};
#[cfg(doc)]
use crate::model::QualityFlag;
use crate::model::{BodyScan, BodySegment};

/// Tolerance of the segmental series check, as a fraction of whole-body R.
pub const SEGMENT_TOLERANCE: Decimal = Decimal::from_parts(25, 0, 0, false, 2);

/// Checks segmental impedance against the whole-body value.
///
/// Whole-body R is measured hand to foot; in the series model it is the sum
/// arm + torso + leg of one side. For each side whose three segments are
/// present, that sum must be within [`SEGMENT_TOLERANCE`] (25 %) of the
/// whole-body R. Returns `false` (→ [`QualityFlag::SegmentalInconsistent`])
/// when a side fails, when a segment appears twice, or when a segment's or the
/// whole-body resistance is not positive. With no segments, or no complete
/// side, there is nothing to check and the result is `true`.
pub fn segments_consistent(scan: &BodyScan) -> bool {
    if scan.segments.is_empty() {
        return true;
    }
    let whole = scan.resistance_ohm;
    if whole <= Decimal::ZERO {
        return false;
    }
    let mut r: [Option<Decimal>; 5] = [None; 5];
    for seg in &scan.segments {
        let slot = &mut r[segment_index(seg.segment)];
        if slot.is_some() || seg.resistance_ohm <= Decimal::ZERO {
            return false;
        }
        *slot = Some(seg.resistance_ohm);
    }
    let torso = r[segment_index(BodySegment::Torso)];
    let sides = [
        (BodySegment::LeftArm, BodySegment::LeftLeg),
        (BodySegment::RightArm, BodySegment::RightLeg),
    ];
    sides.iter().all(
        |&(arm, leg)| match (r[segment_index(arm)], torso, r[segment_index(leg)]) {
            (Some(a), Some(t), Some(l)) => side_within_tolerance(whole, &[a, t, l]),
            _ => true,
        },
    )
}

fn side_within_tolerance(whole: Decimal, parts: &[Decimal]) -> bool {
    let Ok(series) = sum(parts, "segments") else {
        return false;
    };
    let Ok(dev) = sub(series, whole, "segments") else {
        return false;
    };
    match mul(SEGMENT_TOLERANCE, whole, "segments") {
        Ok(tol) => dev.abs() <= tol,
        Err(_) => false,
    }
}

fn segment_index(s: BodySegment) -> usize {
    match s {
        BodySegment::LeftArm => 0,
        BodySegment::RightArm => 1,
        BodySegment::LeftLeg => 2,
        BodySegment::RightLeg => 3,
        BodySegment::Torso => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SegmentImpedance;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal literal")
    }

    fn seg(segment: BodySegment, r: &str) -> SegmentImpedance {
        SegmentImpedance {
            segment,
            resistance_ohm: d(r),
            reactance_ohm: d("10"),
        }
    }

    fn scan(whole: &str, segments: Vec<SegmentImpedance>) -> BodyScan {
        BodyScan {
            weight_kg: d("80"),
            resistance_ohm: d(whole),
            reactance_ohm: d("55"),
            segments,
        }
    }

    #[test]
    fn segmental_series_check() {
        use BodySegment::*;
        let full = |la, ra, t, ll, rl| {
            vec![
                seg(LeftArm, la),
                seg(RightArm, ra),
                seg(Torso, t),
                seg(LeftLeg, ll),
                seg(RightLeg, rl),
            ]
        };
        assert!(segments_consistent(&scan("450", vec![])));
        // 200 + 25 + 210 = 435 ≈ 450
        assert!(segments_consistent(&scan(
            "450",
            full("200", "205", "25", "210", "215")
        )));
        // exactly at the 25 % edge: 562.5
        assert!(segments_consistent(&scan(
            "450",
            full("300", "300", "62.5", "200", "200")
        )));
        assert!(!segments_consistent(&scan(
            "450",
            full("300", "300", "62.6", "200", "200")
        )));
        // one side far off (right arm 2× too high)
        assert!(!segments_consistent(&scan(
            "450",
            full("200", "400", "25", "210", "215")
        )));
        // duplicate segment, non-positive values
        assert!(!segments_consistent(&scan(
            "450",
            vec![seg(LeftArm, "200"), seg(LeftArm, "200")]
        )));
        assert!(!segments_consistent(&scan("450", vec![seg(Torso, "0")])));
        assert!(!segments_consistent(&scan("0", vec![seg(Torso, "25")])));
        // incomplete: nothing to compare
        assert!(segments_consistent(&scan(
            "450",
            vec![seg(LeftArm, "999"), seg(Torso, "25")]
        )));
    }
}
