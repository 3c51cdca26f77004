//! User-supplied grid-intensity time series: parsing.
//!
//! Formats (detected from the first non-blank character):
//! - **CSV**: lines `timestamp,intensity_gco2_kwh[,kind]`; an optional header line whose first
//!   field is `timestamp` (any case); `#` starts a comment line; `kind` is `average` or
//!   `marginal` (default: the caller's, normally `average`).
//! - **JSON lines** (first character `{` on every line): `{"datetime": "...", "carbonIntensity": n}`
//!   (Electricity Maps) or `{"timestamp": ..., "intensity_gco2_kwh": n, "kind": "..."}`;
//!   optional `"kind"` or `"emissionFactorType"` (`lifecycle`/`direct` both mean an average factor).
//! - **JSON document**: an Electricity Maps history/past-range response `{"history": [ ... ]}`
//!   or `{"data": [ ... ]}` whose items are as in JSON lines, a single Electricity Maps `past`
//!   object, or a GB Carbon Intensity response `{"data": [{"from": "2018-01-20T12:00Z",
//!   "intensity": {"forecast": n, "actual": n}}]}` (regional: `{"data": {"data": [...]}}`),
//!   where `actual` is used when not null, else `forecast`.
//!
//! Timestamps are RFC 3339 or unix seconds (see [`Timestamp`]). Each point holds from its
//! timestamp for one *resolution*: the smallest spacing between consecutive points (one hour
//! for a single point). Duplicate timestamps, negative or non-finite values, and a mix of
//! average and marginal factors are errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::CarbonError;
use super::time::Timestamp;

/// Whether a factor is a grid average or marginal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntensityKind {
    #[default]
    Average,
    Marginal,
}

impl IntensityKind {
    /// Parses `average`/`marginal` (and `lifecycle`/`direct`, Electricity Maps' names for
    /// average factors).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "average" | "avg" | "lifecycle" | "direct" => Some(Self::Average),
            "marginal" => Some(Self::Marginal),
            _ => None,
        }
    }
}

/// One value of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesPoint {
    pub ts: Timestamp,
    pub g_per_kwh: f64,
}

/// A sorted series with its resolution and factor kind.
#[derive(Clone, Debug, PartialEq)]
pub struct IntensitySeries {
    pub points: Vec<SeriesPoint>,
    pub kind: IntensityKind,
    /// How long each point holds, ms.
    pub resolution_ms: i64,
}

/// One hour, the resolution of a single-point series.
pub const DEFAULT_RESOLUTION_MS: i64 = 3_600_000;

fn bad(line: usize, reason: impl Into<String>) -> CarbonError {
    CarbonError::MalformedSeries {
        line,
        reason: reason.into(),
    }
}

/// Parses a series file's text (see the module doc for formats).
pub fn parse_series(
    text: &str,
    default_kind: IntensityKind,
) -> Result<IntensitySeries, CarbonError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let mut raw: Vec<(usize, Timestamp, f64, Option<IntensityKind>)> = Vec::new();
    if trimmed.starts_with('{') {
        // A whole document, or JSON lines.
        if let Ok(doc) = serde_json::from_str::<Value>(trimmed) {
            let items = doc
                .get("history")
                .or_else(|| doc.get("data"))
                .and_then(|v| {
                    v.as_array()
                        .or_else(|| v.get("data").and_then(Value::as_array))
                });
            match items {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        raw.push(json_point(item, i + 1)?);
                    }
                }
                None => raw.push(json_point(&doc, 1)?),
            }
        } else {
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() {
                    continue;
                }
                let v: Value =
                    serde_json::from_str(l).map_err(|e| bad(i + 1, format!("not JSON: {e}")))?;
                raw.push(json_point(&v, i + 1)?);
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            let l = line.trim().trim_start_matches('\u{feff}');
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            if raw.is_empty() && f[0].eq_ignore_ascii_case("timestamp") {
                continue;
            }
            if f.len() < 2 || f.len() > 3 {
                return Err(bad(i + 1, "expected `timestamp,intensity_gco2_kwh[,kind]`"));
            }
            let ts = Timestamp::parse(f[0]).map_err(|e| bad(i + 1, e.to_string()))?;
            let g: f64 = f[1]
                .parse()
                .map_err(|_| bad(i + 1, format!("intensity `{}` is not a number", f[1])))?;
            let kind =
                match f.get(2) {
                    Some(k) if !k.is_empty() => Some(IntensityKind::parse(k).ok_or_else(|| {
                        bad(i + 1, format!("kind `{k}` is not average or marginal"))
                    })?),
                    _ => None,
                };
            raw.push((i + 1, ts, g, kind));
        }
    }
    build(raw, default_kind)
}

fn json_point(
    v: &Value,
    line: usize,
) -> Result<(usize, Timestamp, f64, Option<IntensityKind>), CarbonError> {
    let ts_v = v
        .get("datetime")
        .or_else(|| v.get("timestamp"))
        .or_else(|| v.get("from"))
        .ok_or_else(|| bad(line, "missing `datetime`, `timestamp` or `from`"))?;
    let ts = match ts_v {
        Value::String(s) => Timestamp::parse(s).map_err(|e| bad(line, e.to_string()))?,
        Value::Number(n) => n
            .as_f64()
            .and_then(Timestamp::from_unix_seconds)
            .ok_or_else(|| bad(line, "timestamp out of range"))?,
        _ => return Err(bad(line, "timestamp must be a string or a number")),
    };
    let g_v = v
        .get("carbonIntensity")
        .or_else(|| v.get("intensity_gco2_kwh"))
        .or_else(|| v.get("intensity"))
        .ok_or_else(|| {
            bad(
                line,
                "missing `carbonIntensity`, `intensity_gco2_kwh` or `intensity`",
            )
        })?;
    // GB Carbon Intensity: {"intensity": {"forecast": n, "actual": n|null}}: actual if known.
    let g_v = match g_v {
        Value::Object(o) => o
            .get("actual")
            .filter(|a| !a.is_null())
            .or_else(|| o.get("forecast"))
            .unwrap_or(&Value::Null),
        other => other,
    };
    let g = g_v
        .as_f64()
        .ok_or_else(|| bad(line, "intensity is null or not a number"))?;
    let kind = match v.get("kind").or_else(|| v.get("emissionFactorType")) {
        Some(Value::String(k)) => Some(
            IntensityKind::parse(k)
                .ok_or_else(|| bad(line, format!("kind `{k}` is not average or marginal")))?,
        ),
        _ => None,
    };
    Ok((line, ts, g, kind))
}

fn build(
    mut raw: Vec<(usize, Timestamp, f64, Option<IntensityKind>)>,
    default_kind: IntensityKind,
) -> Result<IntensitySeries, CarbonError> {
    if raw.is_empty() {
        return Err(CarbonError::EmptySeries);
    }
    let mut kind: Option<IntensityKind> = None;
    for &(line, _, g, k) in &raw {
        if !g.is_finite() || g < 0.0 {
            return Err(bad(
                line,
                format!("intensity {g} must be a finite number >= 0"),
            ));
        }
        if let Some(k) = k {
            if kind.is_some_and(|prev| prev != k) {
                return Err(bad(
                    line,
                    "series mixes average and marginal factors; split it",
                ));
            }
            kind = Some(k);
        }
    }
    raw.sort_by_key(|r| r.1);
    let mut resolution = i64::MAX;
    for w in raw.windows(2) {
        let d = w[1].1.0 - w[0].1.0;
        if d == 0 {
            return Err(bad(w[1].0, format!("duplicate timestamp {}", w[1].1)));
        }
        resolution = resolution.min(d);
    }
    if resolution == i64::MAX {
        resolution = DEFAULT_RESOLUTION_MS;
    }
    Ok(IntensitySeries {
        points: raw
            .into_iter()
            .map(|(_, ts, g_per_kwh, _)| SeriesPoint { ts, g_per_kwh })
            .collect(),
        kind: kind.unwrap_or(default_kind),
        resolution_ms: resolution,
    })
}
