//! Timestamps for estimate spans and intensity series: accepted as RFC 3339 (any offset,
//! optional fractional seconds; seconds may be omitted, as the GB Carbon Intensity API does) or as unix seconds (integer or decimal); kept as integer
//! milliseconds since the unix epoch (UTC); written back as RFC 3339 UTC (`…Z`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::CarbonError;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.5+02:00`) or unix seconds
    /// (`1714564800`, `1714564800.25`).
    pub fn parse(s: &str) -> Result<Self, CarbonError> {
        let t = s.trim();
        let bad = || CarbonError::BadTimestamp {
            value: s.to_owned(),
        };
        if !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            && !t[1..].contains('-')
        {
            let secs: f64 = t.parse().map_err(|_| bad())?;
            return Self::from_unix_seconds(secs).ok_or_else(bad);
        }
        parse_rfc3339(t).ok_or_else(bad)
    }

    /// From unix seconds; `None` when not finite or out of range (beyond ±292 million years).
    pub fn from_unix_seconds(secs: f64) -> Option<Self> {
        let ms = (secs * 1000.0).round();
        (ms.is_finite() && ms.abs() < 9.0e15).then_some(Self(ms as i64))
    }

    /// Unix seconds, as a float.
    pub fn unix_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn parse_rfc3339(t: &str) -> Option<Timestamp> {
    let b = t.as_bytes();
    if !t.is_ascii()
        || b.len() < 17
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?);
    let (h, mi) = (num(&t[11..13])?, num(&t[14..16])?);
    // Seconds may be omitted (`2018-01-20T12:00Z`, the GB Carbon Intensity API's form).
    let (s, mut rest) = if b.len() >= 19 && b[16] == b':' {
        (num(&t[17..19])?, &t[19..])
    } else {
        (0, &t[16..])
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &frac[..n];
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        ms = num(&padded)?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let v = num(&rest[1..3])? * 60 + num(&rest[4..6])?;
            if rest.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    Some(Timestamp(secs * 1000 + ms))
}

impl fmt::Display for Timestamp {
    /// RFC 3339 UTC with milliseconds only when non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// Accepts an RFC 3339 string, a string of unix seconds, or a JSON number of unix seconds.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(x) => Timestamp::from_unix_seconds(x)
                .ok_or_else(|| serde::de::Error::custom(format!("unix seconds {x} out of range"))),
            Raw::Str(s) => Timestamp::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // 2024-05-01T12:00:00Z = 1714564800 (19844 days · 86400 + 43200).
        let t = Timestamp::parse("2024-05-01T12:00:00Z").expect("ok");
        assert_eq!(t, Timestamp(1_714_564_800_000));
        assert_eq!(
            Timestamp::parse("2024-05-01T14:00:00+02:00").expect("ok"),
            t
        );
        assert_eq!(Timestamp::parse("1714564800").expect("ok"), t);
        assert_eq!(
            Timestamp::parse("1714564800.25").expect("ok").0,
            1_714_564_800_250
        );
        assert_eq!(
            Timestamp::parse("2024-05-01 12:00:00.25Z").expect("ok").0,
            1_714_564_800_250
        );
        assert_eq!(t.to_string(), "2024-05-01T12:00:00Z");
        assert_eq!(
            Timestamp(1_714_564_800_250).to_string(),
            "2024-05-01T12:00:00.250Z"
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse("2024-05-01T12:00Z").expect("no seconds"),
            t
        );
        assert_eq!(
            Timestamp::parse("2000-02-29T00:00:00Z").expect("ok").0,
            951_782_400_000
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-05-01T12:00:00",
            "1e3",
            "NaN",
            "--5",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
