//! Live grid intensity (optional at runtime): Electricity Maps (`past-range`, honouring the
//! span's timestamps, never "latest") and the GB Carbon Intensity API (`/intensity/{from}/{to}`),
//! with a timeout, an in-memory cache, and fallback to the bundled table when a fetch fails
//! (the record then says `bundled` and why). The I/O is one [`Transport`] call; building URLs
//! and parsing the providers' documented formats is pure.

pub mod http;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use http::{Auto, Curl, PlainHttp, Transport};

use super::series::{IntensityKind, IntensitySeries, parse_series};
use super::time::Timestamp;

/// Why a live fetch failed (the estimate then falls back to the bundled table).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LiveError {
    #[error("cannot fetch {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("fetching {url} timed out; the provider is slow or unreachable")]
    Timeout { url: String },
    #[error("{url} answered HTTP {status} (401/403: check the API token)")]
    Status { url: String, status: u16 },
    #[error("unsupported URL {url}: use http:// or https://")]
    Unsupported { url: String },
    #[error("cannot read the response of {url}: {reason}")]
    Parse { url: String, reason: String },
    #[error("electricity maps needs an API token (set ELECTRICITYMAPS_TOKEN)")]
    NoToken,
    #[error("a live provider needs a zone (e.g. DE, FR, US-CAL-CISO)")]
    NoZone,
}

/// The providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Electricity Maps API v3.
    ElectricityMaps,
    /// National Grid ESO's GB Carbon Intensity API (no token; Great Britain only).
    GbCarbonIntensity,
}

impl Provider {
    /// Parses `electricity_maps`/`electricitymaps` or `gb_carbon_intensity`/`gb`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "electricity_maps" | "electricitymaps" => Some(Self::ElectricityMaps),
            "gb_carbon_intensity" | "gb" | "carbonintensity" => Some(Self::GbCarbonIntensity),
            _ => None,
        }
    }

    /// The public API's base URL.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::ElectricityMaps => "https://api.electricitymap.org",
            Self::GbCarbonIntensity => "https://api.carbonintensity.org.uk",
        }
    }

    /// The bundled region to fall back on for `zone`: GB for the GB API; for Electricity Maps
    /// the country part of the zone (`US-CAL-CISO` → `US`).
    pub fn fallback_region(self, zone: Option<&str>) -> Option<String> {
        match self {
            Self::GbCarbonIntensity => Some("GB".into()),
            Self::ElectricityMaps => zone.and_then(|z| z.split('-').next()).map(str::to_owned),
        }
    }
}

/// How to reach a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveConfig {
    pub provider: Provider,
    pub base_url: String,
    /// Electricity Maps `auth-token`.
    pub token: Option<String>,
    pub timeout: Duration,
}

impl LiveConfig {
    /// The public endpoint with a 5 s timeout.
    pub fn new(provider: Provider, token: Option<String>) -> Self {
        Self {
            provider,
            base_url: provider.default_base_url().to_owned(),
            token,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A fetched series and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSeries {
    pub series: IntensitySeries,
    /// e.g. "Electricity Maps past-range (zone DE, live)".
    pub dataset: String,
    /// Whether it was served from the cache.
    pub cached: bool,
}

/// Floors a timestamp to a multiple of `step_ms`.
fn floor_to(t: Timestamp, step_ms: i64) -> Timestamp {
    Timestamp(t.0.div_euclid(step_ms) * step_ms)
}
/// Ceils a timestamp to a multiple of `step_ms`.
fn ceil_to(t: Timestamp, step_ms: i64) -> Timestamp {
    Timestamp(-(-t.0).div_euclid(step_ms) * step_ms)
}

/// `YYYY-MM-DDTHH:MMZ`, the GB API's path form.
fn minute_form(t: Timestamp) -> String {
    let s = t.to_string(); // YYYY-MM-DDTHH:MM:SSZ (whole seconds after flooring)
    format!("{}Z", &s[..16.min(s.len())])
}

/// Extra request headers (name, value).
pub type Headers = Vec<(&'static str, String)>;

/// The URL that covers `[start, end]` (widened to whole hours for Electricity Maps, whole
/// half-hours for GB), and the extra headers.
pub fn request_url(
    cfg: &LiveConfig,
    zone: Option<&str>,
    start: Timestamp,
    end: Timestamp,
) -> Result<(String, Headers), LiveError> {
    let base = cfg.base_url.trim_end_matches('/');
    match cfg.provider {
        Provider::ElectricityMaps => {
            let zone = zone.ok_or(LiveError::NoZone)?;
            let token = cfg.token.clone().ok_or(LiveError::NoToken)?;
            let (s, mut e) = (floor_to(start, 3_600_000), ceil_to(end, 3_600_000));
            if e <= s {
                e = Timestamp(s.0 + 3_600_000);
            }
            Ok((
                format!("{base}/v3/carbon-intensity/past-range?zone={zone}&start={s}&end={e}"),
                vec![("auth-token", token)],
            ))
        }
        Provider::GbCarbonIntensity => {
            let (s, mut e) = (floor_to(start, 1_800_000), ceil_to(end, 1_800_000));
            if e <= s {
                e = Timestamp(s.0 + 1_800_000);
            }
            Ok((
                format!("{base}/intensity/{}/{}", minute_form(s), minute_form(e)),
                Vec::new(),
            ))
        }
    }
}

/// Fetched series by URL, kept for `ttl` (past data changes rarely), at most `max_entries`.
#[derive(Debug)]
pub struct LiveCache {
    entries: Mutex<HashMap<String, (Instant, IntensitySeries)>>,
    ttl: Duration,
    max_entries: usize,
}

impl LiveCache {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max_entries,
        }
    }

    fn get(&self, url: &str) -> Option<IntensitySeries> {
        let map = self.entries.lock().ok()?;
        map.get(url)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    fn put(&self, url: String, s: IntensitySeries) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= self.max_entries {
                let ttl = self.ttl;
                map.retain(|_, (at, _)| at.elapsed() < ttl);
                if map.len() >= self.max_entries {
                    map.clear();
                }
            }
            map.insert(url, (Instant::now(), s));
        }
    }
}

impl Default for LiveCache {
    /// One hour, 256 entries.
    fn default() -> Self {
        Self::new(Duration::from_secs(3600), 256)
    }
}

/// Fetches (or serves from `cache`) the provider's series covering `[start, end]`.
pub fn fetch_series(
    cfg: &LiveConfig,
    transport: &dyn Transport,
    cache: &LiveCache,
    zone: Option<&str>,
    start: Timestamp,
    end: Timestamp,
) -> Result<LiveSeries, LiveError> {
    let (url, headers) = request_url(cfg, zone, start, end)?;
    let name = match cfg.provider {
        Provider::ElectricityMaps => {
            format!("Electricity Maps past-range (zone {})", zone.unwrap_or("-"))
        }
        Provider::GbCarbonIntensity => {
            "GB Carbon Intensity API (national, actual else forecast)".to_owned()
        }
    };
    if let Some(series) = cache.get(&url) {
        return Ok(LiveSeries {
            series,
            dataset: name,
            cached: true,
        });
    }
    let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = transport.get(&url, &hdrs, cfg.timeout)?;
    let series = parse_series(&body, IntensityKind::Average).map_err(|e| LiveError::Parse {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    cache.put(url, series.clone());
    Ok(LiveSeries {
        series,
        dataset: name,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_honour_the_span() {
        let t = |s: &str| Timestamp::parse(s).expect("ts");
        let em = LiveConfig::new(Provider::ElectricityMaps, Some("tok".into()));
        let (u, h) = request_url(
            &em,
            Some("DE"),
            t("2024-05-01T12:20:00Z"),
            t("2024-05-01T14:05:00Z"),
        )
        .expect("url");
        assert_eq!(
            u,
            "https://api.electricitymap.org/v3/carbon-intensity/past-range?zone=DE&start=2024-05-01T12:00:00Z&end=2024-05-01T15:00:00Z"
        );
        assert_eq!(h, vec![("auth-token", "tok".to_owned())]);
        let gb = LiveConfig::new(Provider::GbCarbonIntensity, None);
        let (u, _) = request_url(
            &gb,
            None,
            t("2024-05-01T12:20:00Z"),
            t("2024-05-01T12:40:00Z"),
        )
        .expect("url");
        assert_eq!(
            u,
            "https://api.carbonintensity.org.uk/intensity/2024-05-01T12:00Z/2024-05-01T13:00Z"
        );
        assert!(matches!(
            request_url(
                &LiveConfig::new(Provider::ElectricityMaps, None),
                Some("DE"),
                t("2024-05-01T12:00:00Z"),
                t("2024-05-01T13:00:00Z")
            ),
            Err(LiveError::NoToken)
        ));
        assert_eq!(
            Provider::ElectricityMaps
                .fallback_region(Some("US-CAL-CISO"))
                .as_deref(),
            Some("US")
        );
    }
}
