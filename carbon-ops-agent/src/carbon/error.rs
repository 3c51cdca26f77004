//! The carbon estimator's errors: each says what was wrong and how to fix it.

use super::uncertainty::UncertaintyError;

/// Why an estimate could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CarbonError {
    /// Energy NaN, infinite or negative.
    #[error("energy must be a finite number of watt-hours >= 0 (got {value})")]
    InvalidEnergy { value: f64 },
    /// An uncertainty (σ or relative) NaN, infinite or negative.
    #[error("{field} must be a finite number >= 0 (got {value}); use 0 for an exact value")]
    InvalidUncertainty { field: &'static str, value: f64 },
    /// PUE below 1 or not finite.
    #[error(
        "pue must be a finite number >= 1.0 (got {value}); 1.0 means no facility overhead, typical data centres are 1.1 to 2.0"
    )]
    InvalidPue { value: f64 },
    /// Unknown datacenter type for PUE.
    #[error("unknown datacenter type `{name}`; use one of: {known}")]
    UnknownDatacenter { name: String, known: String },
    /// Span ends before it starts.
    #[error("end {end} is before start {start}; swap them or fix the clock source")]
    EndBeforeStart { start: String, end: String },
    /// A series integration over an empty span.
    #[error("span {start} .. {end} is empty; integrating a series needs end after start")]
    EmptySpan { start: String, end: String },
    /// A timestamp that is neither RFC 3339 nor unix seconds.
    #[error(
        "cannot read timestamp `{value}`: use RFC 3339 (2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00) or unix seconds (1714564800)"
    )]
    BadTimestamp { value: String },
    /// Region not in the bundled table.
    #[error(
        "unknown region `{region}`: use an ISO 3166-1 country code (FR or FRA) or a cloud region like gcp:europe-west1; {hint}; `carbon-ops estimate --list-regions` prints every known code"
    )]
    UnknownRegion { region: String, hint: String },
    /// Neither a region nor a series was given.
    #[error(
        "no grid intensity source: give a region (--region FR) or an intensity series (--series FILE)"
    )]
    NoIntensitySource,
    /// A series file line could not be read.
    #[error("intensity series line {line}: {reason}")]
    MalformedSeries { line: usize, reason: String },
    /// A series with nothing usable in it.
    #[error(
        "intensity series is empty: expected lines `timestamp,intensity_gco2_kwh[,kind]` or JSON lines"
    )]
    EmptySeries,
    /// A gap under the `error` policy.
    #[error(
        "intensity series has no value at {at} and the gap policy is `error`; use gap policy forward_fill or fallback_annual (with a region), or supply the missing hours"
    )]
    SeriesGap { at: String },
    /// `fallback_annual` without a region to fall back on.
    #[error("gap policy fallback_annual needs a region for the annual average (e.g. --region FR)")]
    FallbackNeedsRegion,
    /// Bad method name.
    #[error("unknown method `{name}`: use analytical_truncated or monte_carlo")]
    UnknownMethod { name: String },
    /// Confidence outside (0, 100).
    #[error(
        "confidence must be a fraction in (0, 1) such as 0.95 or a percentage in [1, 100) such as 95 (got {value})"
    )]
    BadConfidence { value: f64 },
    /// No energy figure to convert.
    #[error(
        "no energy given: pass energy_wh (--energy-wh) or a pid whose recorded energy the agent supplies"
    )]
    NoEnergy,
    /// A pid was given but its energy record is not available.
    #[error("no energy record for pid {pid} over the span; is the process tracked by the agent?")]
    NoPidEnergy { pid: u32 },
    /// Cannot read a series file.
    #[error("cannot read intensity series file {path}: {reason}")]
    SeriesFile { path: String, reason: String },
    /// A parameter the propagation rejected.
    #[error("uncertainty propagation failed: {0}")]
    Uncertainty(#[from] UncertaintyError),
    /// The computation produced a non-finite number (inputs too large).
    #[error("the estimate overflowed to {what}; check the magnitudes of energy and intensity")]
    NonFinite { what: &'static str },
}
