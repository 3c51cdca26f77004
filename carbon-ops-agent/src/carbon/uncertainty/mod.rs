//! Uncertainty propagation for a product of independent non-negative quantities
//! (energy × PUE × intensity), by two methods that must agree where the inputs are tight:
//!
//! - [`Method::AnalyticalTruncated`]: each input is a [`TruncatedNormal`]; the product's mean,
//!   variance and skewness are exact (`E[(ΠX)ᵏ] = ΠE[Xᵏ]` by independence), and the interval
//!   comes from [`interval::product_interval`]: the widest factor kept exact, the others
//!   represented by a shifted log-normal with their three moments, the mixture's quantiles
//!   solved by Halley's method. Bounds are never negative.
//! - [`Method::MonteCarlo`]: `samples` draws of every input from a seeded [`Rng`], the interval
//!   from the percentiles of the sampled products (not of a bootstrap of their mean).
//!
//! Pure: no I/O, no clock; the only global state is the Gauss–Hermite rule, computed once.

pub mod interval;
pub mod monte_carlo;
pub mod normal;
pub mod quadrature;
pub mod rng;
pub mod truncated;

use serde::{Deserialize, Serialize};

pub use monte_carlo::monte_carlo;
pub use rng::Rng;
pub use truncated::TruncatedNormal;

/// Default number of Monte Carlo samples.
pub const DEFAULT_SAMPLES: u32 = 10_000;
/// Default seed when the caller gives none (recorded, so the run is reproducible).
pub const DEFAULT_SEED: u64 = 0x00C0_2E5E_ED00_0001;

/// Invalid parameters for a distribution or a propagation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UncertaintyError {
    /// A mean or σ is NaN or infinite.
    #[error("distribution parameters must be finite (got mean {mu}, sigma {sigma})")]
    NotFinite { mu: f64, sigma: f64 },
    /// σ below zero.
    #[error("standard deviation must be >= 0 (got {sigma})")]
    NegativeSigma { sigma: f64 },
    /// A point mass (σ = 0) below its own bound.
    #[error("value {mu} is below its lower bound {lower}")]
    BelowBound { mu: f64, lower: f64 },
    /// The parent normal has no usable mass above the bound.
    #[error(
        "mean {mu} with sigma {sigma} lies more than 30 sigma below the bound {lower}; check the value and its uncertainty"
    )]
    NoMassAboveBound { mu: f64, sigma: f64, lower: f64 },
    /// Confidence level outside (0, 1).
    #[error("confidence level must be strictly between 0 and 1 (got {level}); e.g. 0.95 or 95")]
    BadConfidence { level: f64 },
    /// Monte Carlo asked for too few samples to form percentiles.
    #[error("monte carlo needs at least 100 samples (got {samples})")]
    TooFewSamples { samples: u32 },
}

/// How the interval is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact moments, log-normal moment-matched interval.
    #[default]
    AnalyticalTruncated,
    /// Seeded sampling, percentile interval.
    MonteCarlo,
}

impl Method {
    /// The name used in records and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::AnalyticalTruncated => "analytical_truncated",
            Method::MonteCarlo => "monte_carlo",
        }
    }
}

/// Mean, variance and third central moment of a distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub mean: f64,
    pub variance: f64,
    /// Third central moment E[(X − mean)³].
    pub third_central: f64,
}

impl Moments {
    /// Skewness κ₃/σ³ (0 when the variance is 0).
    pub fn skewness(&self) -> f64 {
        if self.variance > 0.0 {
            self.third_central / self.variance.powf(1.5)
        } else {
            0.0
        }
    }
}

/// The outcome of a propagation: the product's mean (exact, or the sample mean) and an
/// equal-tailed interval at the requested confidence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Propagated {
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Exact mean, variance and third central moment of the product of independent truncated
/// normals. Raw moments multiply (`E[(ΠX)ᵏ] = ΠE[Xᵏ]`); to keep precision when the spreads are
/// small they are multiplied in relative form, `E[Yᵏ] − 1` with `Y = X/E[X]`, through
/// `ln_1p`/`exp_m1`.
pub fn product_moments(factors: &[TruncatedNormal]) -> Moments {
    product_moments_iter(factors.iter())
}

/// [`product_moments`] over any iterator of factors (the empty product is the constant 1).
pub fn product_moments_iter<'a>(
    factors: impl Iterator<Item = &'a TruncatedNormal> + Clone,
) -> Moments {
    let mean: f64 = factors.clone().map(TruncatedNormal::mean).product();
    if mean == 0.0 {
        return Moments {
            mean,
            variance: 0.0,
            third_central: 0.0,
        };
    }
    let (mut ln2, mut ln3) = (0.0, 0.0);
    for f in factors {
        let m = f.mean();
        let v = f.variance() / (m * m);
        let k = f.third_central() / (m * m * m);
        // E[Y²] − 1 = v; E[Y³] − 1 = 3v + k.
        ln2 += v.ln_1p();
        ln3 += (3.0 * v + k).ln_1p();
    }
    let r2 = ln2.exp_m1();
    let r3 = ln3.exp_m1();
    // Central third of the relative product: E[Y³] − 3E[Y²] + 2 = (r3) − 3(r2).
    let k3 = r3 - 3.0 * r2;
    Moments {
        mean,
        variance: (r2 * mean * mean).max(0.0),
        third_central: k3 * mean * mean * mean,
    }
}

/// Checks a confidence level given as a fraction in (0, 1).
pub fn check_confidence(level: f64) -> Result<f64, UncertaintyError> {
    if level.is_finite() && level > 0.0 && level < 1.0 {
        Ok(level)
    } else {
        Err(UncertaintyError::BadConfidence { level })
    }
}

/// Equal-tailed interval of a three-moment fit of the whole product (kept for comparison and
/// as the starting point's rationale; the analytical method uses
/// [`interval::product_interval`]): the three-parameter (shifted) log-normal `τ + exp(N(m, s²))` with
/// the same mean, variance and skewness γ as `m`:
/// `w = e^{s²} = β + 1/β − 1` with `β³ = (2 + γ² + γ√(γ² + 4))/2`, `e^m = √(v/(w(w − 1)))`,
/// `τ = mean − e^m√w`; bounds `τ + e^{m ± z s}`, `z = Φ⁻¹((1 + c)/2)`, computed as
/// `mean + e^m√w·expm1(±zs − s²/2)` so no large terms cancel. A skewness ≤ 0 (never produced
/// by products of truncated normals, kept for safety) falls back to the normal interval.
/// Bounds are clamped at 0 (emissions cannot be negative); zero variance gives `[m, m]`.
pub fn shifted_lognormal_interval(
    m: Moments,
    confidence: f64,
) -> Result<(f64, f64), UncertaintyError> {
    let c = check_confidence(confidence)?;
    let z = normal::quantile(0.5 * (1.0 + c));
    if m.mean <= 0.0 || m.variance <= 0.0 {
        let x = m.mean.max(0.0);
        return Ok((x, x));
    }
    match interval::shifted_lognormal_params(m) {
        Some((scale, s, s2)) => {
            let lo = m.mean + scale * (-z * s - 0.5 * s2).exp_m1();
            let hi = m.mean + scale * (z * s - 0.5 * s2).exp_m1();
            Ok((lo.max(0.0), hi.max(0.0)))
        }
        None => {
            let sd = m.variance.sqrt();
            Ok(((m.mean - z * sd).max(0.0), m.mean + z * sd))
        }
    }
}

/// The analytical method: exact product moments plus the log-normal interval.
pub fn analytical(
    factors: &[TruncatedNormal],
    confidence: f64,
) -> Result<Propagated, UncertaintyError> {
    let m = product_moments(factors);
    let (lower, upper) = interval::product_interval(factors, m, confidence)?;
    Ok(Propagated {
        mean: m.mean,
        lower,
        upper,
    })
}

/// Propagates by `method`; `samples` and `seed` matter only to Monte Carlo.
pub fn propagate(
    factors: &[TruncatedNormal],
    method: Method,
    confidence: f64,
    samples: u32,
    seed: u64,
) -> Result<Propagated, UncertaintyError> {
    match method {
        Method::AnalyticalTruncated => analytical(factors, confidence),
        Method::MonteCarlo => monte_carlo(factors, confidence, samples, seed),
    }
}
