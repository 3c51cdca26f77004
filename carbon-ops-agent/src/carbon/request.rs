//! The socket op `estimate`: its request (field names as in the issue) and a pure function from
//! request to [`Record`]. The agent supplies the pid's recorded energy; the CLI builds the same
//! request from its flags, so both paths share one implementation.

use serde::{Deserialize, Serialize};

use super::error::CarbonError;
use super::estimate::{EstimateInput, IntensityInput, confidence_fraction, estimate};
use super::live::{LiveError, LiveSeries, Provider};
use super::pue::Pue;
use super::record::Record;
use super::series::{IntensityKind, parse_series};
use super::span::{EnergyTick, GapPolicy};
use super::time::Timestamp;
use super::uncertainty::{DEFAULT_SAMPLES, DEFAULT_SEED, Method};

/// The `estimate` request. Timestamps are RFC 3339 strings or unix seconds (number or string).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    pub start_ts: Option<Timestamp>,
    pub end_ts: Option<Timestamp>,
    /// Energy of the IT equipment over the span, Wh (else `pid`).
    pub energy_wh: Option<f64>,
    /// Standard uncertainty of `energy_wh`, Wh.
    pub energy_sigma_wh: Option<f64>,
    /// Relative uncertainty of `energy_wh` (σ/μ), used when `energy_sigma_wh` is absent.
    pub energy_rel_uncertainty: Option<f64>,
    /// A process whose recorded energy over the span the agent uses.
    pub pid: Option<u32>,
    /// Region code (`FR`, `FRA`, `gcp:europe-west1`); with a series, the fallback region.
    pub region: Option<String>,
    /// Inline series text (CSV or JSON lines, see [`super::series`]).
    pub series: Option<String>,
    /// `average` (default) or `marginal`, for a series without a kind column.
    pub intensity_kind: Option<IntensityKind>,
    /// Override of the intensity's relative σ.
    pub intensity_rel_uncertainty: Option<f64>,
    /// Gap policy for a series (default `forward_fill`).
    pub gap_policy: Option<GapPolicy>,
    /// PUE override (≥ 1); else `datacenter`'s, else the default (enterprise, 1.58).
    pub pue: Option<f64>,
    pub pue_sigma: Option<f64>,
    pub datacenter: Option<String>,
    pub method: Option<Method>,
    /// 0.95 or 95 (default 95 %).
    pub confidence: Option<f64>,
    pub samples: Option<u32>,
    pub seed: Option<u64>,
    /// Live provider to ask for the span's intensity (falls back to the bundled table).
    pub provider: Option<Provider>,
    /// The provider's zone (Electricity Maps: `DE`, `US-CAL-CISO`; GB needs none).
    pub zone: Option<String>,
    /// Whether the agent should append the result to its ledger (the handler's business).
    #[serde(default)]
    pub record: bool,
}

/// Energy the agent recorded for a pid over the span.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PidEnergy {
    pub energy_wh: f64,
    pub energy_sigma_wh: f64,
    /// Per-tick energy, for spreading over series buckets.
    pub ticks: Vec<EnergyTick>,
}

/// Turns a request into a record. `pid_energy` is what the agent recorded for `req.pid`;
/// `now` is used for a missing `end_ts` (and for `start_ts`, which then equals it). A
/// `provider` in the request is not queried here (pure): it falls back to the bundled table,
/// saying so; use [`estimate_request_with_live`] with a fetched series.
pub fn estimate_request(
    req: &EstimateRequest,
    pid_energy: Option<&PidEnergy>,
    now: Timestamp,
) -> Result<Record, CarbonError> {
    estimate_request_with_live(req, pid_energy, now, None)
}

/// [`estimate_request`] with the outcome of a live fetch for `req.provider` (see
/// [`super::live::fetch_series`]): a series is integrated over the span (gaps filled from the
/// bundled region); an error, or no fetch, falls back to the bundled region of `req.region`
/// or the provider's zone, with `provenance.fallback_reason` set.
pub fn estimate_request_with_live(
    req: &EstimateRequest,
    pid_energy: Option<&PidEnergy>,
    now: Timestamp,
    live: Option<Result<LiveSeries, LiveError>>,
) -> Result<Record, CarbonError> {
    let end = req.end_ts.unwrap_or(now);
    let start = req.start_ts.unwrap_or(end);
    let (energy_wh, mut sigma, source, ticks) = match (req.energy_wh, req.pid, pid_energy) {
        (Some(e), _, _) => (e, 0.0, "caller".to_owned(), None),
        (None, Some(pid), Some(pe)) => (
            pe.energy_wh,
            pe.energy_sigma_wh,
            format!("pid:{pid}"),
            Some(pe.ticks.as_slice()),
        ),
        (None, Some(pid), None) => return Err(CarbonError::NoPidEnergy { pid }),
        (None, None, _) => return Err(CarbonError::NoEnergy),
    };
    if let Some(s) = req.energy_sigma_wh {
        sigma = s;
    } else if let Some(r) = req.energy_rel_uncertainty {
        if !r.is_finite() || r < 0.0 {
            return Err(CarbonError::InvalidUncertainty {
                field: "energy_rel_uncertainty",
                value: r,
            });
        }
        sigma = r * energy_wh;
    }
    let pue = match (req.pue, &req.datacenter) {
        (Some(v), _) => Pue::user(v, req.pue_sigma)?,
        (None, Some(d)) => Pue::for_datacenter(d)?,
        (None, None) => Pue::default_datacenter(),
    };
    let series = req
        .series
        .as_deref()
        .map(|t| parse_series(t, req.intensity_kind.unwrap_or_default()))
        .transpose()?;
    let provider_region = req
        .provider
        .and_then(|p| p.fallback_region(req.zone.as_deref()));
    let region = req.region.clone().or(provider_region);
    let (live_series, fallback_reason) = match (req.provider, live) {
        (None, _) => (None, None),
        (Some(_), Some(Ok(ls))) => (Some(ls), None),
        (Some(_), Some(Err(e))) => (None, Some(e.to_string())),
        (Some(_), None) => (None, Some("live provider not queried".to_owned())),
    };
    let ticks = ticks.filter(|t| !t.is_empty());
    let policy = req.gap_policy.unwrap_or_default();
    let intensity = match (&series, &live_series, &region) {
        (Some(s), _, r) => IntensityInput::Series {
            series: s,
            ticks,
            policy,
            fallback_region: r.as_deref(),
            live: None,
        },
        (None, Some(ls), r) => IntensityInput::Series {
            series: &ls.series,
            ticks,
            policy,
            fallback_region: r.as_deref(),
            live: Some(&ls.dataset),
        },
        (None, None, Some(r)) => IntensityInput::Region(r),
        (None, None, None) => return Err(CarbonError::NoIntensitySource),
    };
    let mut rec = estimate(&EstimateInput {
        start,
        end,
        energy_wh,
        energy_sigma_wh: sigma,
        energy_source: source,
        intensity,
        intensity_rel_uncertainty: req.intensity_rel_uncertainty,
        pue,
        method: req.method.unwrap_or_default(),
        confidence: confidence_fraction(req.confidence.unwrap_or(95.0))?,
        samples: req.samples.unwrap_or(DEFAULT_SAMPLES),
        seed: req.seed.unwrap_or(DEFAULT_SEED),
    })?;
    rec.provenance.fallback_reason = fallback_reason;
    Ok(rec)
}
