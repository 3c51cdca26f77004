//! The analytical method's interval for a product of independent truncated normals
//! `G = X · W`, where `X` is the factor with the largest relative variance (kept exact) and
//! `W` the product of the others, represented by the shifted log-normal with `W`'s exact mean,
//! variance and skewness (see [`shifted_lognormal_params`]). Then
//!
//! `F_G(g) = E_W[F_X(g/W)] ≈ Σᵢ ωᵢ F_X(g/wᵢ)`, `wᵢ = τ + exp(m + s·zᵢ)`
//!
//! over a Gauss–Hermite rule (zᵢ, ωᵢ) (a node with wᵢ ≤ 0 counts as G ≤ 0). Each bound solves
//! `F_G(g) = p` by Newton's method on the mixture (its density is `Σ ωᵢ f_X(g/wᵢ)/wᵢ`),
//! safeguarded by bisection and started from the whole product's shifted log-normal bound.
//! Keeping the widest, most truncated factor exact is what makes the bound follow the hard
//! floor of a truncated PUE or the heavy left tail of a product of wide normals, which a
//! three-moment fit of the whole product misses by several percent.

use super::quadrature::{NODES, standard_normal_rule};

/// Quadrature weights below this are skipped.
const MIN_WEIGHT: f64 = 1e-8;
use super::{Moments, TruncatedNormal, UncertaintyError, check_confidence, normal};

/// `(scale, s, s²)` of the shifted log-normal matching `m`: the variable is
/// `mean + scale·expm1(s·Z − s²/2)` with Z standard normal; `None` when the skewness is ≤ 0
/// (then a normal with the same mean and variance is used: `mean + sd·Z`).
pub fn shifted_lognormal_params(m: Moments) -> Option<(f64, f64, f64)> {
    let g = m.skewness();
    if g.is_nan() || g <= 1e-12 || m.variance <= 0.0 {
        return None;
    }
    let t = 0.5 * (g * g + g * (g * g + 4.0).sqrt());
    let beta_m1 = (t.ln_1p() / 3.0).exp_m1(); // β − 1, precise for small γ
    let w_m1 = beta_m1 * beta_m1 / (1.0 + beta_m1); // w − 1 = β + 1/β − 2
    let s2 = w_m1.ln_1p();
    Some((m.variance.sqrt() / w_m1.sqrt(), s2.sqrt(), s2))
}

/// The value of the matched shifted log-normal (or normal) at standard-normal quantile `z`.
pub fn shifted_lognormal_at(m: Moments, z: f64) -> f64 {
    at(m, shifted_lognormal_params(m), z)
}

/// [`shifted_lognormal_at`] with the parameters already computed.
fn at(m: Moments, params: Option<(f64, f64, f64)>, z: f64) -> f64 {
    match params {
        Some((scale, s, s2)) => m.mean + scale * (s * z - 0.5 * s2).exp_m1(),
        None => m.mean + m.variance.max(0.0).sqrt() * z,
    }
}

/// Equal-tailed interval `[lower, upper]` of the product of `factors` at `confidence`
/// (fraction), given their exact product moments `m`. Bounds are ≥ 0.
pub fn product_interval(
    factors: &[TruncatedNormal],
    m: Moments,
    confidence: f64,
) -> Result<(f64, f64), UncertaintyError> {
    let c = check_confidence(confidence)?;
    if m.mean <= 0.0 || m.variance <= 0.0 {
        let x = m.mean.max(0.0);
        return Ok((x, x));
    }
    let rel_var = |f: &TruncatedNormal| {
        let mu = f.mean();
        if mu > 0.0 {
            f.variance() / (mu * mu)
        } else {
            0.0
        }
    };
    let Some(j) =
        (0..factors.len()).max_by(|&a, &b| rel_var(&factors[a]).total_cmp(&rel_var(&factors[b])))
    else {
        return Ok((m.mean, m.mean));
    };
    let x = factors[j];
    let wm = super::product_moments_iter(
        factors
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != j)
            .map(|(_, f)| f),
    );
    let (zs, ws) = standard_normal_rule();
    let mut nodes = [0.0f64; NODES];
    let mut weights = [0.0f64; NODES];
    let mut n = 0;
    let mut at_zero = 0.0; // Σ ω over nodes with w ≤ 0: mass the mixture puts at G ≤ 0
    if wm.variance <= 0.0 {
        nodes[0] = wm.mean;
        weights[0] = 1.0;
        n = 1;
    } else {
        let params = shifted_lognormal_params(wm);
        for i in 0..NODES {
            // Nodes beyond |z| ≈ 6.5 carry weights below 1e-10: negligible against the
            // tail probabilities solved for, and skipping them saves a third of the work.
            if ws[i] < MIN_WEIGHT {
                continue;
            }
            let w = at(wm, params, zs[i]);
            if w <= 0.0 {
                at_zero += ws[i];
            } else {
                nodes[n] = w;
                weights[n] = ws[i];
                n += 1;
            }
        }
    }
    let (nodes, weights) = (&nodes[..n], &weights[..n]);
    // F_G(0): the mass at or below zero (X's own mass at 0 is F_X(0) for every node).
    let cdf_at_zero = at_zero + weights.iter().sum::<f64>() * x.cdf(0.0);
    // F_G, its density and the density's slope at g (for Halley steps).
    let cdf_pdf = |g: f64| -> (f64, f64, f64) {
        let (mut f, mut d, mut s) = (0.0, 0.0, 0.0);
        for (&w, &om) in nodes.iter().zip(weights) {
            let inv = 1.0 / w;
            let (fx, dx, sx) = x.cdf_pdf_slope(g * inv);
            f += om * fx;
            d += om * dx * inv;
            s += om * sx * inv * inv;
        }
        (f + at_zero, d, s)
    };
    let z = normal::quantile(0.5 * (1.0 + c));
    let tail = 0.5 * (1.0 - c);
    let lo = solve(&cdf_pdf, cdf_at_zero, tail, shifted_lognormal_at(m, -z));
    let hi = solve(
        &cdf_pdf,
        cdf_at_zero,
        1.0 - tail,
        shifted_lognormal_at(m, z),
    );
    Ok((lo, hi.max(lo)))
}

/// Solves `F(g) = p` for g ≥ 0 from `guess` (`f0` = F(0)): Halley steps (cubic convergence,
/// using the density and its slope) kept inside a shrinking bracket, bisection when a step
/// leaves it; stops when |F(g) − p| < 1e-9, or after the
/// Halley step taken from a residual below 1e-6.
fn solve(cdf_pdf: &dyn Fn(f64) -> (f64, f64, f64), f0: f64, p: f64, guess: f64) -> f64 {
    if f0 >= p {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut g = if guess.is_finite() && guess > 0.0 {
        guess
    } else {
        1.0
    };
    for _ in 0..200 {
        let (f, d, slope) = cdf_pdf(g);
        let r = f - p;
        if r.abs() < 1e-9 {
            return g;
        }
        if r < 0.0 {
            lo = g;
        } else {
            hi = g;
        }
        let denom = 2.0 * d * d - r * slope;
        let newton = if d > 0.0 && denom > 0.0 {
            g - 2.0 * r * d / denom
        } else if d > 0.0 {
            g - r / d
        } else {
            f64::NAN
        };
        let halley_ok = newton > lo && newton < hi;
        // From a residual this small one Halley step leaves an error of order (Δg)³: accept
        // it without another evaluation.
        if halley_ok && r.abs() < 1e-6 {
            return newton;
        }
        let next = if halley_ok {
            newton
        } else if hi.is_finite() {
            0.5 * (lo + hi)
        } else {
            2.0 * g.max(f64::MIN_POSITIVE)
        };
        if (next - g).abs() <= 1e-13 * g.abs() {
            return next;
        }
        g = next;
    }
    g
}
