//! Wall-clock timestamps in the formats AWS puts on the wire: Lambda's `LastModified`
//! (`2024-05-01T12:00:00.000+0000`) and IAM's ISO-8601 `CreateDate` (`2024-05-01T12:00:00Z`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

/// Splits Unix seconds into a `YYYY-MM-DD` date and the seconds into that day, using Howard
/// Hinnant's days-from-civil inverse, which is exact for the proleptic Gregorian calendar.
fn civil(secs: i64) -> (String, i64) {
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), secs_of_day)
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
}
