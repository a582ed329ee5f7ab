//! Age in full years at the measurement time, from the profile's birth date
//! (Avro `date`, days since the epoch). Feeds [`super::BodyInput::age_years`].

/// Full years of age at `at_ms` (ms since the epoch, UTC) for a birth date
/// given as days since 1970-01-01 (Avro `date`).
///
/// A birthday counts from the start of its calendar day. Someone born on
/// 29 February turns a year older on 1 March in common years (the month/day
/// comparison `(3, 1) ≥ (2, 29)`), on 29 February in leap years.
/// `None` when `at_ms` is before the birth date.
pub fn age_years(birth_date_days_since_epoch: i32, at_ms: i64) -> Option<u32> {
    let at_days = at_ms.div_euclid(86_400_000);
    let (by, bm, bd) = civil_from_days(i64::from(birth_date_days_since_epoch));
    let (ay, am, ad) = civil_from_days(at_days);
    let mut years = ay.checked_sub(by)?;
    if (am, ad) < (bm, bd) {
        years = years.checked_sub(1)?;
    }
    u32::try_from(years).ok()
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`). Valid for the whole range reachable from
/// an `i64` millisecond timestamp.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    // Both are small and non-negative by construction.
    let (m, d) = (m as u32, d as u32);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_in_full_years_with_leap_days() {
        const DAY_MS: i64 = 86_400_000;
        // 2000-02-29 is day 11016; 1990-06-15 is day 7470.
        let leap_born = 11_016;
        let day = |y: i32, m: u32, dd: u32| days_from_civil(y, m, dd);
        assert_eq!(day(2000, 2, 29), leap_born);
        assert_eq!(day(1970, 1, 1), 0);
        let at = |y, m, dd| i64::from(day(y, m, dd)) * DAY_MS;
        assert_eq!(age_years(leap_born, at(2001, 2, 28)), Some(0));
        assert_eq!(age_years(leap_born, at(2001, 3, 1)), Some(1));
        assert_eq!(age_years(leap_born, at(2004, 2, 28)), Some(3));
        assert_eq!(age_years(leap_born, at(2004, 2, 29)), Some(4));
        assert_eq!(age_years(leap_born, at(2004, 2, 29) - 1), Some(3));
        let b = day(1990, 6, 15);
        assert_eq!(age_years(b, at(2030, 6, 14) + DAY_MS - 1), Some(39));
        assert_eq!(age_years(b, at(2030, 6, 15)), Some(40));
        assert_eq!(age_years(b, at(1990, 6, 15)), Some(0));
        assert_eq!(age_years(b, at(1990, 6, 14)), None);
        // Born before the epoch, measured at negative timestamps.
        let old = day(1950, 1, 1);
        assert!(old < 0);
        assert_eq!(age_years(old, at(1969, 12, 31)), Some(19));
        assert_eq!(age_years(old, i64::MIN), None);
        assert_eq!(age_years(i32::MIN, i64::MAX).map(|a| a > 0), Some(true));
    }

    /// Inverse of `civil_from_days`, for tests only.
    fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
        let y = i64::from(if m <= 2 { y - 1 } else { y });
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(m);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        i32::try_from(era * 146_097 + doe - 719_468).expect("test dates fit")
    }
}
