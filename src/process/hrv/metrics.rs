//! Time-domain HRV metrics from a window's [`NnSums`].
//!
//! Sums are exact integers; SDNN's numerator `n·ΣNN² − (ΣNN)²` is formed
//! exactly before the single conversion to `f64` for the square root, so there
//! is no cancellation error. Mean NN, mean HR and pNN50 are exact `Decimal`
//! divisions. Every value is rounded half away from zero to scale 3; a
//! non-finite or unrepresentable value yields `None` (never NaN or ∞).

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::filter::NnSums;

/// Metrics of a window with sufficient data, all at scale 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Metrics {
    pub mean_nn_ms: Decimal,
    pub sdnn_ms: Decimal,
    pub rmssd_ms: Decimal,
    pub pnn50_pct: Decimal,
    pub mean_hr_bpm: Decimal,
}

/// Computes the metrics, or `None` when the window is insufficient: less
/// accepted NN time than `min_nn_duration_ms`, fewer than two accepted beats,
/// or no successive difference.
pub(super) fn compute(s: &NnSums, min_nn_duration_ms: i64) -> Option<Metrics> {
    if s.sum < i128::from(min_nn_duration_ms) || s.n < 2 || s.n_diffs == 0 {
        return None;
    }
    let n = i128::from(s.n);
    let sum = Decimal::try_from_i128_with_scale(s.sum, 0).ok()?;
    let mean_nn = sum.checked_div(Decimal::from(s.n))?;
    let mean_hr = Decimal::from(60_000)
        .checked_mul(Decimal::from(s.n))?
        .checked_div(sum)?;
    let var_num = n
        .checked_mul(s.sum_sq)?
        .checked_sub(s.sum.checked_mul(s.sum)?)?;
    let var_den = n.checked_mul(n - 1)?;
    let sdnn = (var_num.max(0) as f64 / var_den as f64).sqrt();
    let rmssd = (s.sum_diff_sq as f64 / f64::from(s.n_diffs)).sqrt();
    let pnn50 = Decimal::from(s.nn50)
        .checked_mul(Decimal::ONE_HUNDRED)?
        .checked_div(Decimal::from(s.n_diffs))?;
    Some(Metrics {
        mean_nn_ms: scale3(mean_nn),
        sdnn_ms: scale3(from_f64(sdnn)?),
        rmssd_ms: scale3(from_f64(rmssd)?),
        pnn50_pct: scale3(pnn50),
        mean_hr_bpm: scale3(mean_hr),
    })
}

fn from_f64(v: f64) -> Option<Decimal> {
    if v.is_finite() {
        Decimal::from_f64(v)
    } else {
        None
    }
}

fn scale3(v: Decimal) -> Decimal {
    let mut r = v.round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(3);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_window() {
        // NN 800, 900, 1000 contiguous: mean 900, SDNN 100, diffs 100, 100.
        let s = NnSums {
            n: 3,
            n_rejected: 0,
            sum: 2700,
            sum_sq: 800 * 800 + 900 * 900 + 1000 * 1000,
            n_diffs: 2,
            sum_diff_sq: 2 * 100 * 100,
            nn50: 2,
        };
        let m = compute(&s, 0).expect("sufficient");
        assert_eq!(m.mean_nn_ms.to_string(), "900.000");
        assert_eq!(m.sdnn_ms.to_string(), "100.000");
        assert_eq!(m.rmssd_ms.to_string(), "100.000");
        assert_eq!(m.pnn50_pct.to_string(), "100.000");
        assert_eq!(m.mean_hr_bpm.to_string(), "66.667");
        assert!(compute(&s, 2701).is_none(), "under the minimum duration");
    }

    #[test]
    fn degenerate_sums_are_insufficient_not_nan() {
        let one = NnSums {
            n: 1,
            sum: 200_000,
            sum_sq: 200_000 * 200_000,
            ..NnSums::default()
        };
        assert!(compute(&one, 0).is_none());
        assert!(compute(&NnSums::default(), 0).is_none());
        let huge = NnSums {
            n: u32::MAX,
            n_rejected: 0,
            sum: i128::MAX,
            sum_sq: i128::MAX,
            n_diffs: 1,
            sum_diff_sq: i128::MAX,
            nn50: 1,
        };
        assert!(compute(&huge, 0).is_none());
    }
}
