//! Body composition from a bioimpedance body scan plus the patient profile
//! (DESIGN.md §4). Called during enrichment of `BodyScan` readings; the result
//! goes into [`EnrichedReading::body_composition`](crate::model::EnrichedReading).
//!
//! Arithmetic is exact `Decimal` with checked operations (no floating point,
//! no NaN, no panic on overflow). Every output is rounded once, half away from
//! zero, from the *unrounded* intermediates, to the scale documented on
//! [`BodyComposition`]: BMI 3, masses 3 (kg), fat ratio 2 (%), BMR 1 (kcal).
//!
//! Rounding relation: `fat_mass_kg = round3(W − FFM)` and
//! `fat_free_mass_kg = round3(FFM)`, so for a weight with at most 3 decimals
//! `fat_mass_kg + fat_free_mass_kg == W` exactly, except when FFM lies exactly
//! on a half-gram midpoint, where both round up and the sum is W + 0.001 kg.
//! `fat_ratio_pct` is `round2(100·(W − FFM)/W)`, within 0.005 + 0.05/W
//! percentage points of `100·fat_mass_kg / W`.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::model::{BodyComposition, BodyScan, QualityFlag, Sex};

/// Inputs of the body-composition equations: the scan plus profile data.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyInput {
    /// Height, cm (profile).
    pub height_cm: Decimal,
    /// Weight, kg (scan).
    pub weight_kg: Decimal,
    /// Whole-body resistance R at 50 kHz, ohm (scan).
    pub resistance_ohm: Decimal,
    /// Whole-body reactance Xc at 50 kHz, ohm (scan).
    pub reactance_ohm: Decimal,
    /// Sex (profile).
    pub sex: Sex,
    /// Age in full years at the measurement time, see [`crate::process::age_years`].
    pub age_years: u32,
}

impl BodyInput {
    /// Combines a scan with the profile values.
    pub fn from_scan(scan: &BodyScan, height_cm: Decimal, sex: Sex, age_years: u32) -> Self {
        Self {
            height_cm,
            weight_kg: scan.weight_kg,
            resistance_ohm: scan.resistance_ohm,
            reactance_ohm: scan.reactance_ohm,
            sex,
            age_years,
        }
    }
}

/// Why body composition could not be computed.
///
/// Every variant means bad or incomplete input, never a transient condition:
/// publish the reading without body composition, flagged
/// [`QualityFlag::BodyCompositionUnavailable`], and count it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyCompError {
    /// The profile gives no sex; the equations are sex-specific.
    #[error("sex is unspecified; body composition needs male or female")]
    SexUnspecified,
    /// An input that must be strictly positive is not.
    #[error("{field}={value} must be positive")]
    NonPositive {
        /// Input field name.
        field: &'static str,
        /// Offending value.
        value: Decimal,
    },
    /// Reactance below zero is physically impossible at 50 kHz.
    #[error("reactance_ohm={0} must not be negative")]
    NegativeReactance(Decimal),
    /// The equations produced a physically impossible result, e.g. fat-free
    /// mass ≤ 0 or above the weight (negative fat mass).
    #[error("{quantity}={value} is impossible; inputs are implausible")]
    Implausible {
        /// Derived quantity.
        quantity: &'static str,
        /// Its unrounded value.
        value: Decimal,
    },
    /// An intermediate exceeded the `Decimal` range.
    #[error("arithmetic overflow computing {0}; inputs are implausible")]
    Overflow(&'static str),
}

/// Kyle 2001 validity range, years.
const KYLE_AGE_YEARS: (u32, u32) = (22, 94);
/// Kyle 2001 validity range of BMI, kg/m² (17–33.8).
const KYLE_BMI_MIN: Decimal = Decimal::from_parts(17, 0, 0, false, 0);
const KYLE_BMI_MAX: Decimal = Decimal::from_parts(338, 0, 0, false, 1);

/// Computes body composition and its quality flags (DESIGN.md §4).
///
/// Outside the Kyle 2001 validity range (age 22–94, BMI 17–33.8, BMI taken at
/// its published scale so the flag agrees with the number shown) the values
/// are still computed and [`QualityFlag::AgeOutsideEquationValidity`] /
/// [`QualityFlag::BmiOutsideEquationValidity`] are returned.
///
/// # Errors
/// [`BodyCompError`] for unspecified sex, non-positive height, weight or
/// resistance, negative reactance, overflow, or an impossible result
/// (FFM ≤ 0, FFM > weight, skeletal muscle mass ≤ 0).
pub fn body_composition(
    input: &BodyInput,
) -> Result<(BodyComposition, Vec<QualityFlag>), BodyCompError> {
    let sex = match input.sex {
        Sex::Male => Decimal::ONE,
        Sex::Female => Decimal::ZERO,
        Sex::Unspecified => return Err(BodyCompError::SexUnspecified),
    };
    positive("height_cm", input.height_cm)?;
    positive("weight_kg", input.weight_kg)?;
    positive("resistance_ohm", input.resistance_ohm)?;
    if input.reactance_ohm.is_sign_negative() && !input.reactance_ohm.is_zero() {
        return Err(BodyCompError::NegativeReactance(input.reactance_ohm));
    }
    let (ht, w, r, xc) = (
        input.height_cm,
        input.weight_kg,
        input.resistance_ohm,
        input.reactance_ohm,
    );
    let age = Decimal::from(input.age_years);

    // BMI = W / (Ht/100)²
    let ht_m = div(ht, Decimal::ONE_HUNDRED, "bmi")?;
    let bmi = div(w, mul(ht_m, ht_m, "bmi")?, "bmi")?;
    // Impedance index Ht²/R, shared by Kyle and Janssen.
    let ht2_r = div(mul(ht, ht, "ht2_r")?, r, "ht2_r")?;

    // Kyle 2001: FFM = −4.104 + 0.518·Ht²/R + 0.231·W + 0.130·Xc + 4.229·sex
    let ffm = sum(
        &[
            Decimal::new(-4104, 3),
            mul(Decimal::new(518, 3), ht2_r, "fat_free_mass")?,
            mul(Decimal::new(231, 3), w, "fat_free_mass")?,
            mul(Decimal::new(130, 3), xc, "fat_free_mass")?,
            mul(Decimal::new(4229, 3), sex, "fat_free_mass")?,
        ],
        "fat_free_mass",
    )?;
    if ffm <= Decimal::ZERO {
        return Err(BodyCompError::Implausible {
            quantity: "fat_free_mass_kg",
            value: ffm,
        });
    }
    let fat = sub(w, ffm, "fat_mass")?;
    if fat.is_sign_negative() && !fat.is_zero() {
        return Err(BodyCompError::Implausible {
            quantity: "fat_mass_kg",
            value: fat,
        });
    }
    let fat_pct = mul(div(fat, w, "fat_ratio")?, Decimal::ONE_HUNDRED, "fat_ratio")?;

    // Janssen 2000: SMM = 0.401·Ht²/R + 3.825·sex − 0.071·age + 5.102
    let smm = sum(
        &[
            mul(Decimal::new(401, 3), ht2_r, "skeletal_muscle_mass")?,
            mul(Decimal::new(3825, 3), sex, "skeletal_muscle_mass")?,
            mul(Decimal::new(-71, 3), age, "skeletal_muscle_mass")?,
            Decimal::new(5102, 3),
        ],
        "skeletal_muscle_mass",
    )?;
    if smm <= Decimal::ZERO {
        return Err(BodyCompError::Implausible {
            quantity: "skeletal_muscle_mass_kg",
            value: smm,
        });
    }
    let tbw = mul(Decimal::new(73, 2), ffm, "total_body_water")?;
    // Katch–McArdle: BMR = 370 + 21.6·FFM
    let bmr = add(
        Decimal::from(370),
        mul(Decimal::new(216, 1), ffm, "bmr")?,
        "bmr",
    )?;

    let comp = BodyComposition {
        bmi: at_scale(bmi, 3),
        fat_free_mass_kg: at_scale(ffm, 3),
        fat_mass_kg: at_scale(fat, 3),
        fat_ratio_pct: at_scale(fat_pct, 2),
        skeletal_muscle_mass_kg: at_scale(smm, 3),
        total_body_water_kg: at_scale(tbw, 3),
        bmr_kcal: at_scale(bmr, 1),
    };
    let mut flags = Vec::new();
    if !(KYLE_AGE_YEARS.0..=KYLE_AGE_YEARS.1).contains(&input.age_years) {
        flags.push(QualityFlag::AgeOutsideEquationValidity);
    }
    if comp.bmi < KYLE_BMI_MIN || comp.bmi > KYLE_BMI_MAX {
        flags.push(QualityFlag::BmiOutsideEquationValidity);
    }
    Ok((comp, flags))
}

/// BMI = W / (Ht/100)², kg/m², at scale 3, the same value
/// [`body_composition`] reports. Needs no sex or age, so it is published for
/// every body scan whose profile height is plausible.
///
/// # Errors
/// [`BodyCompError`] for a non-positive height or weight, or overflow.
pub fn bmi(weight_kg: Decimal, height_cm: Decimal) -> Result<Decimal, BodyCompError> {
    positive("height_cm", height_cm)?;
    positive("weight_kg", weight_kg)?;
    let ht_m = div(height_cm, Decimal::ONE_HUNDRED, "bmi")?;
    Ok(at_scale(div(weight_kg, mul(ht_m, ht_m, "bmi")?, "bmi")?, 3))
}

/// `v` rounded half away from zero to exactly `dp` decimals.
///
/// Integer arithmetic on the mantissa: the same result as
/// `round_dp_with_strategy(dp, MidpointAwayFromZero)` then `rescale(dp)`
/// (a property test checks it), at a fraction of the cost.
fn at_scale(v: Decimal, dp: u32) -> Decimal {
    let (mantissa, scale) = (v.mantissa(), v.scale());
    let exact = if scale <= dp {
        10i128
            .checked_pow(dp - scale)
            .and_then(|f| mantissa.checked_mul(f))
    } else {
        10i128.checked_pow(scale - dp).map(|f| {
            let (q, r) = (mantissa / f, mantissa % f);
            if r.unsigned_abs() * 2 >= f.unsigned_abs() {
                q + mantissa.signum()
            } else {
                q
            }
        })
    };
    match exact.and_then(|m| Decimal::try_from_i128_with_scale(m, dp).ok()) {
        Some(r) => r,
        None => {
            let mut r = v.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
            r.rescale(dp);
            r
        }
    }
}

fn positive(field: &'static str, value: Decimal) -> Result<(), BodyCompError> {
    if value > Decimal::ZERO {
        Ok(())
    } else {
        Err(BodyCompError::NonPositive { field, value })
    }
}

pub(super) fn mul(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, BodyCompError> {
    a.checked_mul(b).ok_or(BodyCompError::Overflow(what))
}

fn div(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, BodyCompError> {
    a.checked_div(b).ok_or(BodyCompError::Overflow(what))
}

fn add(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, BodyCompError> {
    a.checked_add(b).ok_or(BodyCompError::Overflow(what))
}

pub(super) fn sub(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, BodyCompError> {
    a.checked_sub(b).ok_or(BodyCompError::Overflow(what))
}

pub(super) fn sum(terms: &[Decimal], what: &'static str) -> Result<Decimal, BodyCompError> {
    terms
        .iter()
        .try_fold(Decimal::ZERO, |acc, &t| add(acc, t, what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn at_scale_rounds_like_rust_decimal(m in any::<i64>(), scale in 0u32..=20, dp in 0u32..=4) {
            let v = Decimal::new(m, scale);
            let mut expected = v.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
            expected.rescale(dp);
            let got = at_scale(v, dp);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(got.scale(), expected.scale());
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal literal")
    }

    fn worked_example() -> BodyInput {
        BodyInput {
            height_cm: d("180"),
            weight_kg: d("80"),
            resistance_ohm: d("450"),
            reactance_ohm: d("55"),
            sex: Sex::Male,
            age_years: 40,
        }
    }

    #[test]
    fn design_worked_example_is_exact() {
        let (c, flags) = body_composition(&worked_example()).expect("valid input");
        // Compare strings so the scale is pinned too.
        assert_eq!(c.bmi.to_string(), "24.691");
        assert_eq!(c.fat_free_mass_kg.to_string(), "63.051");
        assert_eq!(c.fat_mass_kg.to_string(), "16.949");
        assert_eq!(c.fat_ratio_pct.to_string(), "21.19");
        assert_eq!(c.skeletal_muscle_mass_kg.to_string(), "34.959");
        assert_eq!(c.total_body_water_kg.to_string(), "46.027");
        assert_eq!(c.bmr_kcal.to_string(), "1731.9");
        assert!(flags.is_empty());
    }

    #[test]
    fn female_and_scale_padding() {
        let input = BodyInput {
            sex: Sex::Female,
            ..worked_example()
        };
        let (c, _) = body_composition(&input).expect("valid input");
        // FFM 63.051 − 4.229 = 58.822; BMR 370 + 21.6·58.822 = 1640.5552
        assert_eq!(c.fat_free_mass_kg.to_string(), "58.822");
        assert_eq!(c.bmr_kcal.to_string(), "1640.6");
        // 100·21.178/80 = 26.4725 → 26.47
        assert_eq!(c.fat_ratio_pct.to_string(), "26.47");
        // SMM 34.959 − 3.825 = 31.134
        assert_eq!(c.skeletal_muscle_mass_kg.to_string(), "31.134");
    }

    #[test]
    fn outside_kyle_validity_is_flagged_not_failed() {
        let young = BodyInput {
            age_years: 21,
            ..worked_example()
        };
        let (_, flags) = body_composition(&young).expect("computed anyway");
        assert_eq!(flags, vec![QualityFlag::AgeOutsideEquationValidity]);
        let old = BodyInput {
            age_years: 95,
            ..worked_example()
        };
        let (_, flags) = body_composition(&old).expect("computed anyway");
        assert_eq!(flags, vec![QualityFlag::AgeOutsideEquationValidity]);
        for age in [22, 94] {
            let edge = BodyInput {
                age_years: age,
                ..worked_example()
            };
            assert!(body_composition(&edge).expect("valid").1.is_empty());
        }
        // 180 cm, 110 kg → BMI 33.951
        let heavy = BodyInput {
            weight_kg: d("110"),
            ..worked_example()
        };
        let (c, flags) = body_composition(&heavy).expect("computed anyway");
        assert_eq!(c.bmi.to_string(), "33.951");
        assert_eq!(flags, vec![QualityFlag::BmiOutsideEquationValidity]);
        // 180 cm, 55 kg → BMI 16.975 (R 600 keeps FFM below the weight)
        let light = BodyInput {
            weight_kg: d("55"),
            resistance_ohm: d("600"),
            ..worked_example()
        };
        let (_, flags) = body_composition(&light).expect("computed anyway");
        assert_eq!(flags, vec![QualityFlag::BmiOutsideEquationValidity]);
    }

    #[test]
    fn impossible_inputs_are_clear_errors() {
        let cases = [
            (
                BodyInput {
                    sex: Sex::Unspecified,
                    ..worked_example()
                },
                BodyCompError::SexUnspecified,
            ),
            (
                BodyInput {
                    height_cm: Decimal::ZERO,
                    ..worked_example()
                },
                BodyCompError::NonPositive {
                    field: "height_cm",
                    value: Decimal::ZERO,
                },
            ),
            (
                BodyInput {
                    weight_kg: d("-1"),
                    ..worked_example()
                },
                BodyCompError::NonPositive {
                    field: "weight_kg",
                    value: d("-1"),
                },
            ),
            (
                BodyInput {
                    resistance_ohm: Decimal::ZERO,
                    ..worked_example()
                },
                BodyCompError::NonPositive {
                    field: "resistance_ohm",
                    value: Decimal::ZERO,
                },
            ),
            (
                BodyInput {
                    reactance_ohm: d("-0.1"),
                    ..worked_example()
                },
                BodyCompError::NegativeReactance(d("-0.1")),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(body_composition(&input).expect_err("rejected"), want);
        }
        // Tiny resistance → FFM far above weight → negative fat mass.
        let tiny_r = BodyInput {
            resistance_ohm: d("10"),
            ..worked_example()
        };
        assert!(matches!(
            body_composition(&tiny_r),
            Err(BodyCompError::Implausible {
                quantity: "fat_mass_kg",
                ..
            })
        ));
        // Huge resistance, tiny body → FFM ≤ 0.
        let huge_r = BodyInput {
            height_cm: d("50"),
            weight_kg: d("3"),
            resistance_ohm: d("100000"),
            reactance_ohm: Decimal::ZERO,
            sex: Sex::Female,
            age_years: 0,
        };
        assert!(matches!(
            body_composition(&huge_r),
            Err(BodyCompError::Implausible {
                quantity: "fat_free_mass_kg",
                ..
            })
        ));
        let overflow = BodyInput {
            height_cm: Decimal::MAX,
            ..worked_example()
        };
        assert!(matches!(
            body_composition(&overflow),
            Err(BodyCompError::Overflow(_))
        ));
        let err = body_composition(&BodyInput {
            height_cm: Decimal::ZERO,
            ..worked_example()
        })
        .expect_err("rejected");
        assert_eq!(err.to_string(), "height_cm=0 must be positive");
    }

    fn dec(mantissa: i64, scale: u32) -> Decimal {
        Decimal::new(mantissa, scale)
    }

    proptest! {
        #[test]
        fn masses_add_up_and_ratio_matches(
            ht in 1400i64..=2100,
            w in 35_000i64..=160_000,
            r in 2500i64..=9000,
            xc in 200i64..=1000,
            male in any::<bool>(),
            age in 18u32..=100,
        ) {
            let input = BodyInput {
                height_cm: dec(ht, 1),
                weight_kg: dec(w, 3),
                resistance_ohm: dec(r, 1),
                reactance_ohm: dec(xc, 1),
                sex: if male { Sex::Male } else { Sex::Female },
                age_years: age,
            };
            match body_composition(&input) {
                Ok((c, _)) => {
                    let sum = c.fat_mass_kg + c.fat_free_mass_kg;
                    let off = sum - input.weight_kg;
                    prop_assert!(off == Decimal::ZERO || off == dec(1, 3), "sum {sum} vs {}", input.weight_kg);
                    let ratio = c.fat_mass_kg / input.weight_kg * Decimal::ONE_HUNDRED;
                    let tol = dec(5, 3) + dec(5, 2) / input.weight_kg;
                    prop_assert!((c.fat_ratio_pct - ratio).abs() <= tol, "{} vs {ratio}", c.fat_ratio_pct);
                    prop_assert_eq!(c.bmi.scale(), 3);
                    prop_assert_eq!(c.fat_ratio_pct.scale(), 2);
                    prop_assert_eq!(c.bmr_kcal.scale(), 1);
                    prop_assert!(c.fat_free_mass_kg > Decimal::ZERO);
                    prop_assert!(c.fat_mass_kg >= Decimal::ZERO);
                }
                Err(e) => prop_assert!(matches!(e, BodyCompError::Implausible { .. }), "{e}"),
            }
        }

        #[test]
        fn arbitrary_decimals_never_panic(
            ht in any::<i64>(), hs in 0u32..=28,
            w in any::<i64>(), ws in 0u32..=28,
            r in any::<i64>(), rs in 0u32..=28,
            xc in any::<i64>(), age in any::<u32>(),
        ) {
            let input = BodyInput {
                height_cm: dec(ht, hs),
                weight_kg: dec(w, ws),
                resistance_ohm: dec(r, rs),
                reactance_ohm: dec(xc, 0),
                sex: Sex::Male,
                age_years: age,
            };
            let _ = body_composition(&input);
        }
    }
}
