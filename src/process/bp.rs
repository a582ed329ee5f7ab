//! Blood-pressure category (ACC/AHA 2017, DESIGN.md §4), attached to every
//! accepted blood-pressure reading during enrichment.
//!
//! Systolic and diastolic are classified independently and the higher
//! category wins (ACC/AHA: "when systolic and diastolic fall into different
//! categories, the higher category applies"). Crisis is strictly *above*
//! 180 systolic and/or 120 diastolic: 180/100 is stage 2. Hypotension
//! (systolic < 90, or diastolic < 60 with systolic < 120) is not part of the
//! ACC/AHA ladder; it is reported only when the reading would otherwise be
//! [`BpCategory::Normal`]. So 85/95 is [`BpCategory::Stage2`] (the
//! hypertensive diastolic wins) and 125/55 is [`BpCategory::Elevated`]: a
//! raised value is never hidden behind a low one.

use crate::model::BpCategory;

/// Classifies a cuff reading, mmHg.
///
/// Total: any pair of integers gets a category (the validator upstream
/// rejects implausible values; nothing here can panic).
pub fn bp_category(systolic: i32, diastolic: i32) -> BpCategory {
    let ladder = systolic_category(systolic).max(diastolic_category(diastolic));
    if ladder == BpCategory::Normal && (systolic < 90 || diastolic < 60) {
        BpCategory::Hypotension
    } else {
        ladder
    }
}

/// ACC/AHA category implied by the systolic value alone.
fn systolic_category(systolic: i32) -> BpCategory {
    match systolic {
        181.. => BpCategory::Crisis,
        140.. => BpCategory::Stage2,
        130.. => BpCategory::Stage1,
        120.. => BpCategory::Elevated,
        _ => BpCategory::Normal,
    }
}

/// ACC/AHA category implied by the diastolic value alone ("elevated" is a
/// systolic-only category).
fn diastolic_category(diastolic: i32) -> BpCategory {
    match diastolic {
        121.. => BpCategory::Crisis,
        90.. => BpCategory::Stage2,
        80.. => BpCategory::Stage1,
        _ => BpCategory::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BpCategory::*;

    #[test]
    fn every_boundary() {
        let table: &[(i32, i32, BpCategory)] = &[
            // systolic ladder with a normal diastolic
            (89, 70, Hypotension),
            (90, 70, Normal),
            (119, 70, Normal),
            (120, 70, Elevated),
            (129, 79, Elevated),
            (130, 70, Stage1),
            (139, 70, Stage1),
            (140, 70, Stage2),
            (179, 70, Stage2),
            (180, 70, Stage2),
            (180, 100, Stage2),
            (181, 70, Crisis),
            // diastolic ladder with a normal systolic
            (110, 59, Hypotension),
            (110, 60, Normal),
            (110, 79, Normal),
            (110, 80, Stage1),
            (110, 89, Stage1),
            (110, 90, Stage2),
            (110, 119, Stage2),
            (110, 120, Stage2),
            (110, 121, Crisis),
            // higher category wins
            (125, 80, Stage1),
            (125, 85, Stage1),
            (135, 95, Stage2),
            (145, 85, Stage2),
            (185, 85, Crisis),
            (150, 125, Crisis),
            (180, 120, Stage2),
            (181, 121, Crisis),
            // hypotension only when nothing above normal applies
            (85, 95, Stage2),
            (85, 80, Stage1),
            (85, 125, Crisis),
            (125, 55, Elevated),
            (135, 55, Stage1),
            (200, 50, Crisis),
            (89, 59, Hypotension),
            (95, 55, Hypotension),
            // robustness at the extremes
            (i32::MIN, i32::MIN, Hypotension),
            (i32::MAX, i32::MAX, Crisis),
            (0, 0, Hypotension),
        ];
        for &(sys, dia, want) in table {
            assert_eq!(bp_category(sys, dia), want, "{sys}/{dia}");
        }
    }
}
