//! UTC timestamps for logs, reports and debug directory names, without a date-time dependency.
//!
//! Only formatting of "now" is needed; the civil-date conversion is the standard days-to-date algorithm on the
//! proleptic Gregorian calendar.

use std::time::{SystemTime, UNIX_EPOCH};

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

/// Breaks `t` down into UTC fields (times before 1970 clamp to the epoch).
pub fn utc(t: SystemTime) -> Utc {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    Utc {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        millis: d.subsec_millis(),
    }
}

impl Utc {
    /// `2026-01-31T12:34:56Z`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2026-01-31T12:34:56.789Z`.
    pub fn rfc3339_millis(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `20260131-123456`.
    pub fn compact(&self) -> String {
        format!("{:04}{:02}{:02}-{:02}{:02}{:02}", self.year, self.month, self.day, self.hour, self.minute, self.second)
    }
}

/// Days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(utc(UNIX_EPOCH).rfc3339(), "1970-01-01T00:00:00Z");
        // 2000-02-29 12:00:00 UTC (a leap day) = 951825600.
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(951_825_600)).rfc3339(), "2000-02-29T12:00:00Z");
        // 2024-12-31 23:59:59.250 UTC = 1735689599.
        let t = utc(UNIX_EPOCH + Duration::from_millis(1_735_689_599_250));
        assert_eq!(t.rfc3339_millis(), "2024-12-31T23:59:59.250Z");
        assert_eq!(t.compact(), "20241231-235959");
    }
}
