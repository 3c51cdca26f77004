//! RFC 3339 UTC timestamps for ledger entries, without a date-time dependency.
//!
//! Entries carry `ts` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, always microsecond precision).
//! The verifier accepts any RFC 3339 UTC form (`Z` suffix, 0–9 fraction digits) so that the
//! specification, not this code, defines validity. Pure: the caller supplies the clock reading.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a time as RFC 3339 UTC with microseconds, e.g. `2026-11-28T16:25:09.123456Z`.
/// Times before 1970 are clamped to the epoch (the agent never records them).
pub fn format_rfc3339_micros(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// True when `s` is an RFC 3339 `date-time` in UTC (`Z` offset), with valid field ranges.
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b.last() != Some(&b'Z') {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return false;
    }
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return false;
    };
    let fraction = &b[19..b.len() - 1];
    let fraction_ok = fraction.is_empty()
        || (fraction[0] == b'.'
            && (2..=10).contains(&fraction.len())
            && fraction[1..].iter().all(u8::is_ascii_digit));
    fraction_ok
        && (1..=12).contains(&mo)
        && d >= 1
        && d <= days_in_month(y, mo)
        && h <= 23
        && mi <= 59
        && sec <= 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            format_rfc3339_micros(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2000-02-29T12:34:56.789012Z = 951827696 s (leap day in a century leap year).
        let t = UNIX_EPOCH + Duration::new(951_827_696, 789_012_345);
        assert_eq!(format_rfc3339_micros(t), "2000-02-29T12:34:56.789012Z");
        // 2026-11-28T16:25:09Z = 1795883109 s.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_883_109);
        assert_eq!(format_rfc3339_micros(t), "2026-11-28T16:25:09.000000Z");
    }

    #[test]
    fn validates_rfc3339_utc() {
        assert!(is_rfc3339_utc("2026-11-28T16:25:09.123456Z"));
        assert!(is_rfc3339_utc("2026-11-28T16:25:09Z"));
        assert!(is_rfc3339_utc("2024-02-29T00:00:00.1Z"));
        assert!(!is_rfc3339_utc("2023-02-29T00:00:00Z"));
        assert!(!is_rfc3339_utc("2026-11-28T16:25:09+00:00"));
        assert!(!is_rfc3339_utc("2026-11-28 16:25:09Z"));
        assert!(!is_rfc3339_utc("2026-13-28T16:25:09Z"));
        assert!(!is_rfc3339_utc("2026-11-28T16:25:09.Z"));
    }
}
