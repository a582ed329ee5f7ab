//! Checked clinician overrides (DESIGN.md §5): a profile's threshold
//! overrides are checked once, when the profile arrives, against each rule's
//! sane bounds ([`RuleDef::override_bounds`]). An unknown rule name or a
//! threshold outside the bounds is removed from the profile, so the rule's
//! default applies: a typo never turns an alert off silently. The caller (the
//! profile loader) logs and counts what was removed, without the patient id.

use rust_decimal::Decimal;

use super::rules::{RULES, RuleDef};
use crate::model::{AlertRule, PatientProfile};

/// Why an override was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideRejection {
    /// The rule name is not one of vitalstream's rules.
    UnknownRule,
    /// The threshold is outside the rule's sane bounds.
    OutOfBounds {
        /// The rule.
        rule: AlertRule,
        /// Lowest accepted threshold.
        min: Decimal,
        /// Highest accepted threshold.
        max: Decimal,
    },
}

impl OverrideRejection {
    /// The rule's wire name, or `unknown` (the metric label: bounded, never
    /// the unknown name itself).
    pub fn rule_label(self) -> &'static str {
        match self {
            Self::UnknownRule => "unknown",
            Self::OutOfBounds { rule, .. } => rule.as_str(),
        }
    }
}

/// Removes from `profile` the overrides that cannot apply and returns why
/// each was removed, in profile order. A later override of the same rule
/// does not resurrect a rejected one: the first valid override of a rule is
/// the one [`PatientProfile::threshold_for`] finds.
pub fn check_overrides(profile: &mut PatientProfile) -> Vec<OverrideRejection> {
    let mut rejected = Vec::new();
    profile.threshold_overrides.retain(|o| {
        let Some(rule) = AlertRule::from_wire(&o.rule) else {
            rejected.push(OverrideRejection::UnknownRule);
            return false;
        };
        let RuleDef {
            override_bounds: (min, max),
            ..
        } = RULES[rule as usize];
        if o.threshold < min || o.threshold > max {
            rejected.push(OverrideRejection::OutOfBounds { rule, min, max });
            return false;
        }
        true
    });
    rejected
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Sex, ThresholdOverride};

    fn profile(overrides: &[(&str, &str)]) -> PatientProfile {
        PatientProfile {
            patient_id: "p".into(),
            birth_date_days: 0,
            sex: Sex::Female,
            height_cm: Decimal::from(165),
            rpm_enrolled: true,
            consent_clinician_sharing: true,
            care_team: vec![],
            threshold_overrides: overrides
                .iter()
                .map(|(rule, t)| ThresholdOverride {
                    rule: (*rule).into(),
                    threshold: t.parse().expect("decimal"),
                })
                .collect(),
            dry_weight_kg: None,
        }
    }

    #[test]
    fn unit_mistakes_and_unknown_names_fall_back_to_the_default() {
        let mut p = profile(&[
            ("fever", "100.4"),
            ("spo2_low", "0.88"),
            ("weight_gain_24h", "50"),
            ("weigth_gain_24h", "0.5"),
            ("spo2_low", "88"),
            ("fever", "37.8"),
        ]);
        let rejected = check_overrides(&mut p);
        let labels: Vec<&str> = rejected.iter().map(|r| r.rule_label()).collect();
        assert_eq!(labels, ["fever", "spo2_low", "weight_gain_24h", "unknown"]);
        assert_eq!(p.threshold_for("spo2_low"), Some(Decimal::from(88)));
        assert_eq!(p.threshold_for("fever"), Some("37.8".parse().expect("d")));
        assert_eq!(p.threshold_for("weight_gain_24h"), None, "default applies");
    }

    #[test]
    fn every_default_is_within_its_own_bounds() {
        for def in &RULES {
            let (min, max) = def.override_bounds;
            assert!(
                min <= def.threshold && def.threshold <= max,
                "{}",
                def.rule.as_str()
            );
        }
    }
}
