//! Instants written for people: `2025-01-02 13:45 UTC`. Error messages that say *when* something
//! becomes possible (a new opt-in request, a queued message) need a date a person can read, and the
//! domain crate must not pull a calendar crate or read a time zone for it: UTC is unambiguous for a
//! team spread over several countries, and clients that want local time have the epoch value too.
//!
//! The conversion is Howard Hinnant's `civil_from_days` (proleptic Gregorian calendar), a dozen lines
//! of integer arithmetic that are exact for every `i64` millisecond the rules can produce.

use crate::Millis;

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;

/// The civil date `(year, month 1..=12, day 1..=31)` of a day counted from 1970-01-01 (day 0).
/// Negative days are before the epoch.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year (from March), 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both values are small and positive by construction (1..=31, 1..=12).
    (year, day_or_month(month), day_or_month(day))
}

fn day_or_month(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM UTC`, truncating seconds: the minute the instant falls in.
pub fn format_utc_minute(at: Millis) -> String {
    let days = at.div_euclid(MS_PER_DAY);
    let minute_of_day = at.rem_euclid(MS_PER_DAY) / MS_PER_MINUTE;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// The first whole minute at or after `at`, so "possible from 13:46" is never a minute too early.
pub fn ceil_to_minute(at: Millis) -> Millis {
    let rem = at.rem_euclid(MS_PER_MINUTE);
    if rem == 0 {
        at
    } else {
        at.saturating_add(MS_PER_MINUTE - rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_days_map_to_their_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29)); // a leap day in a /400 year
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28)); // 2100 is not a leap year
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
    }

    #[test]
    fn instants_are_written_as_utc_minutes() {
        assert_eq!(format_utc_minute(0), "1970-01-01 00:00 UTC");
        // 2025-01-02T13:45:59.999Z
        assert_eq!(format_utc_minute(1_735_825_559_999), "2025-01-02 13:45 UTC");
        assert_eq!(format_utc_minute(-1), "1969-12-31 23:59 UTC");
    }

    #[test]
    fn rounding_up_to_the_minute_never_goes_early() {
        assert_eq!(ceil_to_minute(120_000), 120_000);
        assert_eq!(ceil_to_minute(120_001), 180_000);
        assert_eq!(ceil_to_minute(-59_999), 0);
    }

    #[test]
    fn every_day_of_two_centuries_matches_a_calendar_walk() {
        let mut expected = (1970i64, 1u32, 1u32);
        for days in 0..73_000 {
            if days > 0 {
                expected = walk_one(expected);
            }
            assert_eq!(civil_from_days(days), expected, "day {days}");
        }
    }

    /// The slow, obviously-right way: the next calendar day, by month lengths.
    fn walk_one((y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if d < len {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        }
    }

    proptest! {
        #[test]
        fn consecutive_days_are_consecutive_dates(days in -1_000_000i64..1_000_000) {
            prop_assert_eq!(walk_one(civil_from_days(days)), civil_from_days(days + 1));
        }
    }
}
