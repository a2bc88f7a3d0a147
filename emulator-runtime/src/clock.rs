//! Wall-clock timestamps in the formats AWS puts on the wire: Lambda's `LastModified`
//! (`2024-05-01T12:00:00.000+0000`), IAM's ISO-8601 `CreateDate` (`2024-05-01T12:00:00Z`) and the
//! `time` of Lambda's platform log events (`2024-05-01T12:00:00.000Z`), without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The UTC calendar date (year, month, day) of an instant in Unix milliseconds.
pub fn date(millis: i64) -> (i64, i64, i64) {
    civil_from_days(millis.div_euclid(86_400_000))
}

/// `2024-05-01T12:00:00.000+0000`, the form Lambda uses for `LastModified`.
pub fn lambda_timestamp(millis: i64) -> String {
    let (date, secs_of_day) = civil(millis.div_euclid(1000));
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}+0000",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        millis.rem_euclid(1000)
    )
}

/// `2024-05-01T12:00:00.000Z`, ISO-8601 with milliseconds (how log events' times are shown).
pub fn iso8601_millis(millis: i64) -> String {
    let (date, secs_of_day) = civil(millis.div_euclid(1000));
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        millis.rem_euclid(1000)
    )
}

/// `2024-05-01T12:00:00Z`, the ISO-8601 form IAM uses for `CreateDate`.
pub fn iso8601(millis: i64) -> String {
    let (date, secs_of_day) = civil(millis.div_euclid(1000));
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// Splits Unix seconds into a `YYYY-MM-DD` date and the seconds into that day.
fn civil(secs: i64) -> (String, i64) {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    (
        format!("{year:04}-{month:02}-{day:02}"),
        secs.rem_euclid(86_400),
    )
}

/// Days since 1970-01-01 to a (year, month, day) by Howard Hinnant's days-from-civil inverse,
/// which is exact for the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(lambda_timestamp(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(iso8601(1_714_564_800_123), "2024-05-01T12:00:00Z");
        assert_eq!(
            lambda_timestamp(951_782_400_007),
            "2000-02-29T00:00:00.007+0000"
        );
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            iso8601_millis(1_764_505_496_789),
            "2025-11-30T12:24:56.789Z"
        );
    }
}
