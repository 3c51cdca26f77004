//! The estimator: energy × PUE × grid intensity over a span, with provenance and an interval.
//!
//! The central figure is the product of the nominal inputs (checkable by hand:
//! `carbon_emissions_gco2 = total_energy_with_pue_kwh × carbon_intensity_used_gco2_kwh`); the
//! interval treats energy (≥ 0), intensity (≥ 0) and PUE (≥ 1) as independent truncated normals
//! (see [`super::uncertainty`]). A series' pieces share one intensity uncertainty, fully
//! correlated (a provider's bias does not average out hour by hour).

use super::error::CarbonError;
use super::pue::Pue;
use super::record::{Meta, Provenance, Record};
use super::region;
use super::series::{IntensityKind, IntensitySeries};
use super::span::{self, EnergyTick, GapPolicy, SpanParams};
use super::time::Timestamp;
use super::uncertainty::{self, Method, TruncatedNormal};

/// Relative σ of an annual average applied to a specific span. Hourly intensity on many grids
/// swings about 3× within a day (e.g. 0.5× to 1.5× the mean); a value anywhere in such a band
/// has σ = 1/√12 ≈ 0.29 of the mean, rounded up to 0.30. Not reduced for long spans.
pub const DEFAULT_ANNUAL_REL_UNCERTAINTY: f64 = 0.30;
/// Relative σ of one value of a user or provider series (estimation and emission-factor
/// error of hourly data): a stated assumption, override per estimate.
pub const DEFAULT_SERIES_REL_UNCERTAINTY: f64 = 0.10;

/// Where the intensity comes from.
#[derive(Clone, Copy, Debug)]
pub enum IntensityInput<'a> {
    /// A region of the bundled table.
    Region(&'a str),
    /// A series, with the process's per-tick energy when known, a gap policy, and an optional
    /// region for `fallback_annual` (also reported as the record's region).
    Series {
        series: &'a IntensitySeries,
        ticks: Option<&'a [EnergyTick]>,
        policy: GapPolicy,
        fallback_region: Option<&'a str>,
        /// `None` for a user file; `Some(dataset)` for a live provider's series.
        live: Option<&'a str>,
    },
}

/// Everything one estimate needs.
#[derive(Clone, Debug)]
pub struct EstimateInput<'a> {
    pub start: Timestamp,
    pub end: Timestamp,
    pub energy_wh: f64,
    /// Standard uncertainty of the energy, Wh (0 = exact).
    pub energy_sigma_wh: f64,
    /// `caller` or `pid:<n>`.
    pub energy_source: String,
    pub intensity: IntensityInput<'a>,
    /// Override of the intensity's relative σ.
    pub intensity_rel_uncertainty: Option<f64>,
    pub pue: Pue,
    pub method: Method,
    /// Fraction in (0, 1).
    pub confidence: f64,
    pub samples: u32,
    pub seed: u64,
}

/// Normalises a confidence given as a fraction (`0.95`) or a percentage (`95`) to a fraction:
/// values below 1 are fractions, values in [1, 100) percentages.
pub fn confidence_fraction(x: f64) -> Result<f64, CarbonError> {
    let c = if x >= 1.0 { x / 100.0 } else { x };
    if c.is_finite() && c > 0.0 && c < 1.0 {
        Ok(c)
    } else {
        Err(CarbonError::BadConfidence { value: x })
    }
}

fn check_nonneg(field: &'static str, value: f64) -> Result<f64, CarbonError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(CarbonError::InvalidUncertainty { field, value })
    }
}

/// Computes a [`Record`]; every number in it is finite or an error is returned.
pub fn estimate(inp: &EstimateInput<'_>) -> Result<Record, CarbonError> {
    let e_wh = inp.energy_wh;
    if !e_wh.is_finite() || e_wh < 0.0 {
        return Err(CarbonError::InvalidEnergy { value: e_wh });
    }
    let e_sigma = check_nonneg("energy_sigma_wh", inp.energy_sigma_wh)?;
    if inp.end < inp.start {
        return Err(CarbonError::EndBeforeStart {
            start: inp.start.to_string(),
            end: inp.end.to_string(),
        });
    }
    if !inp.pue.value.is_finite() || inp.pue.value < 1.0 {
        return Err(CarbonError::InvalidPue {
            value: inp.pue.value,
        });
    }
    let pue_sigma = check_nonneg("pue_sigma", inp.pue.sigma)?;
    let confidence = uncertainty::check_confidence(inp.confidence)?;
    if let Some(r) = inp.intensity_rel_uncertainty {
        check_nonneg("intensity_rel_uncertainty", r)?;
    }

    let kwh = e_wh / 1000.0;
    let total_kwh = kwh * inp.pue.value;
    // (intensity, rel σ, coverage, kind, region, dataset, year, source, spread, gap policy)
    let (intensity, rel, coverage, kind, region, dataset, year, source, spread, gap) =
        match inp.intensity {
            IntensityInput::Region(r) => {
                let ri = region::lookup(r)?;
                (
                    ri.g_per_kwh,
                    inp.intensity_rel_uncertainty
                        .unwrap_or(DEFAULT_ANNUAL_REL_UNCERTAINTY),
                    1.0,
                    IntensityKind::Average,
                    Some(ri.region),
                    ri.dataset,
                    ri.year,
                    "bundled",
                    "single",
                    None,
                )
            }
            IntensityInput::Series {
                series,
                ticks,
                policy,
                fallback_region,
                live,
            } => {
                let fallback = fallback_region.map(region::lookup).transpose()?;
                let integral = span::integrate(
                    series,
                    &SpanParams {
                        start: inp.start,
                        end: inp.end,
                        energy_wh: e_wh,
                        ticks,
                        policy,
                        annual_g_per_kwh: fallback.as_ref().map(|f| f.g_per_kwh),
                        series_rel: inp
                            .intensity_rel_uncertainty
                            .unwrap_or(DEFAULT_SERIES_REL_UNCERTAINTY),
                        annual_rel: DEFAULT_ANNUAL_REL_UNCERTAINTY,
                    },
                )?;
                let mut dataset = format!(
                    "{} ({} points, resolution {} s)",
                    live.unwrap_or("user series"),
                    series.points.len(),
                    series.resolution_ms / 1000
                );
                if let (Some(f), GapPolicy::FallbackAnnual) = (&fallback, policy) {
                    dataset.push_str(&format!("; gaps from {}", f.dataset));
                }
                (
                    integral.intensity,
                    integral.rel_uncertainty,
                    integral.coverage,
                    series.kind,
                    fallback.as_ref().map(|f| f.region.clone()),
                    dataset,
                    fallback
                        .as_ref()
                        .and_then(|f| f.year)
                        .filter(|_| policy == GapPolicy::FallbackAnnual),
                    if live.is_some() {
                        "live"
                    } else {
                        "user_series"
                    },
                    integral.spread,
                    Some(policy.as_str().to_owned()),
                )
            }
        };
    let grams = total_kwh * intensity;

    let factors = [
        TruncatedNormal::new(kwh, e_sigma / 1000.0, 0.0)?,
        TruncatedNormal::new(intensity, intensity * rel, 0.0)?,
        TruncatedNormal::new(inp.pue.value, pue_sigma, 1.0)?,
    ];
    let prop = uncertainty::propagate(&factors, inp.method, confidence, inp.samples, inp.seed)?;
    let is_mc = inp.method == Method::MonteCarlo;
    let rec = Record {
        energy_consumed_wh: e_wh,
        energy_consumed_kwh: kwh,
        total_energy_with_pue_kwh: total_kwh,
        carbon_emissions_gco2: grams,
        carbon_emissions_kgco2: grams / 1000.0,
        carbon_intensity_used_gco2_kwh: intensity,
        intensity_uncertainty: rel,
        pue_used: inp.pue.value,
        region,
        start_ts: inp.start.to_string(),
        end_ts: inp.end.to_string(),
        coverage,
        intensity_kind: kind,
        provenance: Provenance {
            dataset,
            year,
            source: source.to_owned(),
            energy_source: inp.energy_source.clone(),
            energy_spread: spread.to_owned(),
            energy_sigma_wh: e_sigma,
            gap_policy: gap,
            pue_source: inp.pue.source.clone(),
            pue_sigma,
            fallback_reason: None,
        },
        meta: Meta {
            method: inp.method.as_str().to_owned(),
            ci_lower_g: prop.lower,
            ci_upper_g: prop.upper,
            confidence_level_pct: confidence * 100.0,
            samples: is_mc.then_some(inp.samples),
            seed: is_mc.then_some(inp.seed),
        },
    };
    if rec.all_finite() {
        Ok(rec)
    } else {
        Err(CarbonError::NonFinite { what: "infinity" })
    }
}
