//! Artifact filter over one window's beats, producing the running sums the
//! metrics need (no per-beat allocation).
//!
//! The beats are sorted by (beat time, RR) before filtering, so the result
//! does not depend on arrival order or on how beats were split into readings.
//! Within a window, in that order:
//!
//! 1. A beat at the same time as the previous one (overlapping readings) is
//!    rejected as a duplicate.
//! 2. `malik`: RR outside 300..=2000 ms is rejected; then RRᵢ is rejected when
//!    |RRᵢ − RRref| > 20 % of RRref, RRref being the last *accepted* RR of the
//!    window. The first in-range RR of a window is accepted: the filter starts
//!    afresh in every window (a window is analysed on its own, like a 5-minute
//!    recording). `none`: every RR is accepted.
//! 3. A successive difference RRᵢ − RRᵢ₋₁ is formed only when both beats are
//!    accepted *and* adjacent in the recording: beat i starts where beat i−1
//!    ended (`tᵢ − RRᵢ == tᵢ₋₁`). A rejected beat or a gap between readings
//!    breaks the chain, so no difference spans an artifact or missing data.
//!
//! Known limitation of "against the last accepted beat": if the first beat of a
//! window is itself ectopic but in range, following normal beats may differ
//! from it by more than 20 % and be rejected until the rhythm returns near it.

use crate::model::ArtifactFilter;

/// One beat: its time (end of its RR interval) and RR, ms.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(super) struct Beat {
    /// Beat time, ms since the epoch.
    pub t_ms: i64,
    /// RR interval ending at this beat, ms (positive).
    pub rr_ms: i32,
}

/// Malik filter range, ms (inclusive).
const RR_RANGE_MS: (i32, i32) = (300, 2000);

/// Sums over the accepted NN intervals of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct NnSums {
    /// Accepted NN intervals.
    pub n: u32,
    /// Rejected beats.
    pub n_rejected: u32,
    /// Σ NN, ms (also the accepted NN duration).
    pub sum: i128,
    /// Σ NN², ms².
    pub sum_sq: i128,
    /// Successive differences formed.
    pub n_diffs: u32,
    /// Σ (NNᵢ − NNᵢ₋₁)², ms².
    pub sum_diff_sq: i128,
    /// Successive differences with |d| > 50 ms.
    pub nn50: u32,
}

/// Filters `beats` (sorted by [`Beat`]'s order) and sums the accepted ones.
pub(super) fn filter_sorted(
    beats: impl IntoIterator<Item = Beat>,
    filter: ArtifactFilter,
) -> NnSums {
    let mut s = NnSums::default();
    let mut last_accepted: Option<i32> = None;
    // Previous beat in time order: its time and whether it was accepted.
    let mut prev: Option<(i64, bool)> = None;
    for b in beats {
        if prev.is_some_and(|(t, _)| t == b.t_ms) {
            s.n_rejected = s.n_rejected.saturating_add(1);
            continue;
        }
        let accepted = b.rr_ms > 0
            && match filter {
                ArtifactFilter::None => true,
                ArtifactFilter::Malik => {
                    (RR_RANGE_MS.0..=RR_RANGE_MS.1).contains(&b.rr_ms)
                        && last_accepted.is_none_or(|r| within_malik(b.rr_ms, r))
                }
            };
        if accepted {
            let rr = i128::from(b.rr_ms);
            s.n = s.n.saturating_add(1);
            s.sum += rr;
            s.sum_sq += rr * rr;
            let adjacent = prev
                .is_some_and(|(t, acc)| acc && b.t_ms.checked_sub(i64::from(b.rr_ms)) == Some(t));
            if let (true, Some(r)) = (adjacent, last_accepted) {
                let d = rr - i128::from(r);
                s.n_diffs = s.n_diffs.saturating_add(1);
                s.sum_diff_sq += d * d;
                if d.abs() > 50 {
                    s.nn50 = s.nn50.saturating_add(1);
                }
            }
            last_accepted = Some(b.rr_ms);
        } else {
            s.n_rejected = s.n_rejected.saturating_add(1);
        }
        prev = Some((b.t_ms, accepted));
    }
    s
}

/// |rr − reference| ≤ 20 % of reference, in exact integer arithmetic.
fn within_malik(rr: i32, reference: i32) -> bool {
    let diff = (i64::from(rr) - i64::from(reference)).abs();
    5 * diff <= i64::from(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Contiguous beats from t = 0.
    fn beats(rr: &[i32]) -> Vec<Beat> {
        let mut t = 0i64;
        rr.iter()
            .map(|&r| {
                t += i64::from(r);
                Beat { t_ms: t, rr_ms: r }
            })
            .collect()
    }

    #[test]
    fn malik_against_last_accepted_and_no_diff_across_artifacts() {
        // 1000 ok; 500 rejected (Malik); 1100 ok vs 1000 (10 %) but not adjacent
        // to an accepted beat; 1200 ok (9 %) and adjacent → d = 100.
        let s = filter_sorted(beats(&[1000, 500, 1100, 1200]), ArtifactFilter::Malik);
        assert_eq!((s.n, s.n_rejected, s.n_diffs, s.nn50), (3, 1, 1, 1));
        assert_eq!(s.sum, 3300);
        assert_eq!(s.sum_diff_sq, 100 * 100);
        // Without the filter every beat is accepted, three differences.
        let s = filter_sorted(beats(&[1000, 500, 1100, 1200]), ArtifactFilter::None);
        assert_eq!((s.n, s.n_rejected, s.n_diffs, s.nn50), (4, 0, 3, 3));
    }

    #[test]
    fn malik_boundaries_are_inclusive() {
        // 20 % of 1000 is exactly 200: 1200 and 800 accepted, 1201 / 799 not.
        for (rr, ok) in [(1200, true), (800, true), (1201, false), (799, false)] {
            let s = filter_sorted(beats(&[1000, rr]), ArtifactFilter::Malik);
            assert_eq!(s.n == 2, ok, "{rr}");
        }
        for (rr, ok) in [(299, false), (300, true), (2000, true), (2001, false)] {
            let s = filter_sorted(beats(&[rr]), ArtifactFilter::Malik);
            assert_eq!(s.n == 1, ok, "{rr}");
        }
    }

    #[test]
    fn gaps_and_duplicates() {
        let mut b = beats(&[800, 810]);
        // A second reading after a gap: no difference across the gap.
        b.push(Beat {
            t_ms: 10_000,
            rr_ms: 900,
        });
        // The same beat again (overlapping reading): duplicate.
        b.push(Beat {
            t_ms: 10_000,
            rr_ms: 900,
        });
        b.sort_unstable();
        let s = filter_sorted(b.iter().copied(), ArtifactFilter::None);
        assert_eq!((s.n, s.n_rejected, s.n_diffs), (3, 1, 1));
    }

    #[test]
    fn pathological_values_do_not_panic() {
        let b = [
            Beat {
                t_ms: i64::MIN,
                rr_ms: i32::MAX,
            },
            Beat {
                t_ms: 0,
                rr_ms: i32::MIN,
            },
            Beat {
                t_ms: i64::MAX,
                rr_ms: i32::MAX,
            },
        ];
        for f in [ArtifactFilter::None, ArtifactFilter::Malik] {
            let _ = filter_sorted(b.iter().copied(), f);
        }
    }
}
