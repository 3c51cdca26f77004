//! The estimate record: the `to_dict`/JSON shape of issue item 6, every number finite.

use serde::{Deserialize, Serialize};

use super::series::IntensityKind;

/// One carbon estimate, as serialised for the socket op, the CLI's `--json` and the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Energy measured at the IT equipment, Wh.
    pub energy_consumed_wh: f64,
    /// The same in kWh (Wh / 1000).
    pub energy_consumed_kwh: f64,
    /// IT energy × PUE, kWh: what the grid supplied.
    pub total_energy_with_pue_kwh: f64,
    /// Central estimate, gCO2e: `total_energy_with_pue_kwh × carbon_intensity_used_gco2_kwh`.
    pub carbon_emissions_gco2: f64,
    /// The same in kg (g / 1000).
    pub carbon_emissions_kgco2: f64,
    /// The (energy-weighted, for a series) grid intensity applied, gCO2e/kWh.
    pub carbon_intensity_used_gco2_kwh: f64,
    /// Relative standard uncertainty (σ/μ) of the intensity applied.
    pub intensity_uncertainty: f64,
    /// The PUE applied (its nominal value).
    pub pue_used: f64,
    /// Canonical region (`FRA`, `gcp:europe-west1`), or null for a series without a region.
    pub region: Option<String>,
    /// Span start, RFC 3339 UTC.
    pub start_ts: String,
    /// Span end, RFC 3339 UTC.
    pub end_ts: String,
    /// Fraction (0..1) of the span's duration covered by real intensity data; 1 for a
    /// region's annual average, which is defined for every hour.
    pub coverage: f64,
    /// `average` or `marginal` emission factor.
    pub intensity_kind: IntensityKind,
    /// Where every input came from.
    pub provenance: Provenance,
    /// How the interval was computed.
    pub meta: Meta,
}

/// Where each input came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Dataset or provider of the intensity (with the bundled package version).
    pub dataset: String,
    /// Year of the annual average, when one was used.
    pub year: Option<u32>,
    /// `bundled` (the table in the binary), `user_series` (a file), or `live` (a provider).
    pub source: String,
    /// How the energy was obtained: `caller` (given), or `pid:<n>` (the agent's record).
    pub energy_source: String,
    /// How energy was spread over the series buckets: `single` (no series), `uniform`, or
    /// `per_tick` (the process's recorded per-tick energy).
    pub energy_spread: String,
    /// The energy's standard uncertainty, Wh (0 = taken as exact).
    pub energy_sigma_wh: f64,
    /// Gap policy applied to the series (null without a series).
    pub gap_policy: Option<String>,
    /// Where the PUE came from (`datacenter:<type>` or `user`) and its σ.
    pub pue_source: String,
    pub pue_sigma: f64,
    /// Why a requested live provider was not used (the bundled table was, instead).
    pub fallback_reason: Option<String>,
}

/// How the interval was computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `analytical_truncated` or `monte_carlo`.
    pub method: String,
    /// Interval lower bound, gCO2e (never negative).
    pub ci_lower_g: f64,
    /// Interval upper bound, gCO2e.
    pub ci_upper_g: f64,
    /// Confidence level in percent (e.g. 95).
    pub confidence_level_pct: f64,
    /// Monte Carlo sample count (null for the analytical method).
    pub samples: Option<u32>,
    /// Monte Carlo seed (null for the analytical method).
    pub seed: Option<u64>,
}

impl Record {
    /// The record as a JSON value (`to_dict`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Whether every number in the record is finite (an invariant the estimator checks).
    pub fn all_finite(&self) -> bool {
        [
            self.energy_consumed_wh,
            self.energy_consumed_kwh,
            self.total_energy_with_pue_kwh,
            self.carbon_emissions_gco2,
            self.carbon_emissions_kgco2,
            self.carbon_intensity_used_gco2_kwh,
            self.intensity_uncertainty,
            self.pue_used,
            self.coverage,
            self.meta.ci_lower_g,
            self.meta.ci_upper_g,
            self.meta.confidence_level_pct,
            self.provenance.energy_sigma_wh,
            self.provenance.pue_sigma,
        ]
        .iter()
        .all(|x| x.is_finite())
    }
}
