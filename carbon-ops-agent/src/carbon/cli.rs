//! `carbon-ops estimate`: flags, and a runner that works without an agent when `--energy-wh`
//! is given (with `--pid`, the lead's wiring asks the agent over the socket instead).

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;

use super::error::CarbonError;
use super::live::{self, Auto, LiveCache, LiveConfig, Provider};
use super::record::Record;
use super::region;
use super::request::{EstimateRequest, estimate_request_with_live};
use super::series::IntensityKind;
use super::span::GapPolicy;
use super::time::Timestamp;
use super::uncertainty::Method;

/// Flags of `carbon-ops estimate`.
#[derive(Clone, Debug, Default, Args)]
pub struct EstimateArgs {
    /// Energy of the IT equipment over the span, Wh.
    #[arg(long)]
    pub energy_wh: Option<f64>,
    /// Standard uncertainty of the energy, Wh (default 0: exact).
    #[arg(long)]
    pub energy_sigma_wh: Option<f64>,
    /// Process whose recorded energy is used (needs the agent).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Span start: RFC 3339 (2024-05-01T12:00:00Z) or unix seconds (default: the end).
    #[arg(long)]
    pub start: Option<String>,
    /// Span end: RFC 3339 or unix seconds (default: now).
    #[arg(long)]
    pub end: Option<String>,
    /// Region: ISO country code (FR, FRA) or cloud region (gcp:europe-west1).
    #[arg(long)]
    pub region: Option<String>,
    /// Intensity series file (CSV `timestamp,intensity_gco2_kwh[,kind]` or JSON lines).
    #[arg(long)]
    pub series: Option<PathBuf>,
    /// Factor kind of a series without a kind column: average or marginal.
    #[arg(long, value_parser = parse_kind)]
    pub intensity_kind: Option<IntensityKind>,
    /// Gap policy for a series: forward_fill, fallback_annual (needs --region) or error.
    #[arg(long, value_parser = parse_gap)]
    pub gap_policy: Option<GapPolicy>,
    /// PUE override (>= 1).
    #[arg(long)]
    pub pue: Option<f64>,
    /// Datacenter type for the PUE: hyperscale, enterprise (default), small, none.
    #[arg(long)]
    pub datacenter: Option<String>,
    /// analytical_truncated (default) or monte_carlo.
    #[arg(long, value_parser = parse_method)]
    pub method: Option<Method>,
    /// Confidence level: 95 or 0.95 (default 95).
    #[arg(long)]
    pub confidence: Option<f64>,
    /// Monte Carlo samples (default 10000).
    #[arg(long)]
    pub samples: Option<u32>,
    /// Monte Carlo seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Live provider for the span's intensity: electricity_maps or gb_carbon_intensity
    /// (falls back to the bundled table, saying why, when the fetch fails).
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<Provider>,
    /// Provider zone (Electricity Maps: DE, FR, US-CAL-CISO).
    #[arg(long)]
    pub zone: Option<String>,
    /// Provider base URL override (e.g. a local mirror or proxy).
    #[arg(long)]
    pub provider_url: Option<String>,
    /// Electricity Maps API token (from the environment only).
    #[arg(
        long = "electricitymaps-token",
        env = "ELECTRICITYMAPS_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    pub electricitymaps_token: Option<String>,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
    /// List every bundled region code and exit.
    #[arg(long)]
    pub list_regions: bool,
}

fn parse_kind(s: &str) -> Result<IntensityKind, String> {
    IntensityKind::parse(s).ok_or_else(|| format!("`{s}`: use average or marginal"))
}
fn parse_gap(s: &str) -> Result<GapPolicy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: use forward_fill, fallback_annual or error"))
}
fn parse_provider(s: &str) -> Result<Provider, String> {
    Provider::parse(s).ok_or_else(|| format!("`{s}`: use electricity_maps or gb_carbon_intensity"))
}
fn parse_method(s: &str) -> Result<Method, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| CarbonError::UnknownMethod { name: s.to_owned() }.to_string())
}

/// Builds the socket request from the flags (reads `--series` from disk).
pub fn request_from_args(a: &EstimateArgs) -> anyhow::Result<EstimateRequest> {
    let ts = |s: &Option<String>| s.as_deref().map(Timestamp::parse).transpose();
    let series = match &a.series {
        Some(p) => Some(
            std::fs::read_to_string(p).map_err(|e| CarbonError::SeriesFile {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?,
        ),
        None => None,
    };
    Ok(EstimateRequest {
        start_ts: ts(&a.start)?,
        end_ts: ts(&a.end)?,
        energy_wh: a.energy_wh,
        energy_sigma_wh: a.energy_sigma_wh,
        pid: a.pid,
        region: a.region.clone(),
        series,
        intensity_kind: a.intensity_kind,
        gap_policy: a.gap_policy,
        pue: a.pue,
        datacenter: a.datacenter.clone(),
        method: a.method,
        confidence: a.confidence,
        samples: a.samples,
        seed: a.seed,
        provider: a.provider,
        zone: a.zone.clone(),
        ..EstimateRequest::default()
    })
}

/// Now, as a [`Timestamp`].
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// Human-readable lines for a record.
pub fn render(r: &Record) -> String {
    let mut s = format!(
        "emissions      {:.4} gCO2e ({:.3} % CI {:.4} .. {:.4} g, {})\n",
        r.carbon_emissions_gco2,
        r.meta.confidence_level_pct,
        r.meta.ci_lower_g,
        r.meta.ci_upper_g,
        r.meta.method
    );
    s += &format!(
        "energy         {:.4} Wh = {:.6} kWh; x PUE {} = {:.6} kWh\n",
        r.energy_consumed_wh, r.energy_consumed_kwh, r.pue_used, r.total_energy_with_pue_kwh
    );
    s += &format!(
        "intensity      {:.3} gCO2e/kWh ({:?}, ±{:.0} %), region {}\n",
        r.carbon_intensity_used_gco2_kwh,
        r.intensity_kind,
        r.intensity_uncertainty * 100.0,
        r.region.as_deref().unwrap_or("-")
    );
    s += &format!(
        "span           {} .. {} (coverage {:.1} %)\nsource         {} [{}{}]\n",
        r.start_ts,
        r.end_ts,
        r.coverage * 100.0,
        r.provenance.dataset,
        r.provenance.source,
        r.provenance
            .year
            .map(|y| format!(", {y}"))
            .unwrap_or_default()
    );
    s
}

/// Runs `carbon-ops estimate` without an agent: needs `--energy-wh` (a `--pid` needs the agent,
/// which the lead's wiring provides). Returns the exit code.
pub fn run(args: EstimateArgs) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    if args.list_regions {
        for line in region::list_regions() {
            writeln!(out, "{line}")?;
        }
        return Ok(0);
    }
    if args.energy_wh.is_none() {
        anyhow::bail!(
            "without a running agent, give --energy-wh (the energy of the work, in watt-hours)"
        );
    }
    let req = request_from_args(&args)?;
    let now = now();
    let live = args.provider.map(|p| {
        let mut cfg = LiveConfig::new(p, args.electricitymaps_token.clone());
        if let Some(u) = &args.provider_url {
            cfg.base_url.clone_from(u);
        }
        let end = req.end_ts.unwrap_or(now);
        let start = req.start_ts.unwrap_or(end);
        live::fetch_series(
            &cfg,
            &Auto,
            &LiveCache::default(),
            req.zone.as_deref(),
            start,
            end,
        )
    });
    let rec = estimate_request_with_live(&req, None, now, live).context("estimate failed")?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rec)?)?;
    } else {
        write!(out, "{}", render(&rec))?;
    }
    Ok(0)
}
