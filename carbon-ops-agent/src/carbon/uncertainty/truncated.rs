//! A normal distribution N(μ, σ²) truncated below at `lower` (0 for energy and intensity, 1 for
//! PUE): exact moments in closed form and exact sampling by inverse CDF.
//!
//! With α = (lower − μ)/σ, Z = Q(α) = 1 − Φ(α) and λ = φ(α)/Z (the inverse Mills ratio):
//!
//! - mean `E[X] = μ + σλ`
//! - variance `Var[X] = σ²(1 + αλ − λ²)`
//!
//! σ = 0 is the degenerate point mass at μ (allowed when μ ≥ lower): mean μ, variance 0.

use super::UncertaintyError;
use super::normal;
use super::rng::Rng;

/// A normal truncated below; build with [`TruncatedNormal::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruncatedNormal {
    mu: f64,
    sigma: f64,
    lower: f64,
    /// α = (lower − μ)/σ (−∞ when σ = 0).
    alpha: f64,
    /// Z = Q(α), the mass the parent normal keeps above `lower`.
    mass: f64,
    /// Φ(α), used by the sampler when α ≤ 0.
    cdf_alpha: f64,
}

impl TruncatedNormal {
    /// N(μ, σ²) truncated to `[lower, ∞)`. Errors on non-finite inputs, σ < 0, a point mass
    /// below `lower`, or a parent normal with (numerically) no mass above `lower`.
    pub fn new(mu: f64, sigma: f64, lower: f64) -> Result<Self, UncertaintyError> {
        if !mu.is_finite() || !sigma.is_finite() || !lower.is_finite() {
            return Err(UncertaintyError::NotFinite { mu, sigma });
        }
        if sigma < 0.0 {
            return Err(UncertaintyError::NegativeSigma { sigma });
        }
        if sigma == 0.0 {
            if mu < lower {
                return Err(UncertaintyError::BelowBound { mu, lower });
            }
            return Ok(Self {
                mu,
                sigma,
                lower,
                alpha: f64::NEG_INFINITY,
                mass: 1.0,
                cdf_alpha: 0.0,
            });
        }
        let alpha = (lower - mu) / sigma;
        let mass = normal::upper_tail(alpha);
        // Beyond α ≈ 37, Q(α) underflows; far earlier the input is meaningless (the
        // "estimate" would lie dozens of σ beyond its own mean).
        if alpha > 30.0 || mass <= 0.0 {
            return Err(UncertaintyError::NoMassAboveBound { mu, sigma, lower });
        }
        Ok(Self {
            mu,
            sigma,
            lower,
            alpha,
            mass,
            cdf_alpha: normal::cdf(alpha),
        })
    }

    /// The parent mean μ.
    pub fn mu(&self) -> f64 {
        self.mu
    }
    /// The parent standard deviation σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
    /// The truncation bound.
    pub fn lower(&self) -> f64 {
        self.lower
    }

    /// Inverse Mills ratio λ = φ(α)/Q(α) (0 when σ = 0).
    fn mills(&self) -> f64 {
        if self.sigma == 0.0 {
            0.0
        } else {
            normal::pdf(self.alpha) / self.mass
        }
    }

    /// Exact mean μ + σλ.
    pub fn mean(&self) -> f64 {
        self.mu + self.sigma * self.mills()
    }

    /// Exact variance σ²(1 + αλ − λ²).
    pub fn variance(&self) -> f64 {
        if self.sigma == 0.0 {
            return 0.0;
        }
        let l = self.mills();
        let v = self.sigma * self.sigma * (1.0 + self.alpha * l - l * l);
        v.max(0.0)
    }

    /// Exact third central moment σ³(λ(α² − 1) − 3αλ² + 2λ³) (from the recursion
    /// `E[Zᵏ] = (k−1)E[Zᵏ⁻²] + αᵏ⁻¹λ` for the standard normal truncated to [α, ∞), written
    /// so no large terms cancel).
    pub fn third_central(&self) -> f64 {
        if self.sigma == 0.0 {
            return 0.0;
        }
        let (a, l) = (self.alpha, self.mills());
        self.sigma.powi(3) * (l * (a * a - 1.0) - 3.0 * a * l * l + 2.0 * l * l * l)
    }

    /// Exact fourth central moment
    /// σ⁴(3 + λ(3α + α³) − λ²(2 + 4α²) + 6αλ³ − 3λ⁴) (same recursion, `E[Z⁴] = 3E[Z²] + α³λ`).
    pub fn fourth_central(&self) -> f64 {
        if self.sigma == 0.0 {
            return 0.0;
        }
        let (a, l) = (self.alpha, self.mills());
        let l2 = l * l;
        self.sigma.powi(4)
            * (3.0 + l * (3.0 * a + a * a * a) - l2 * (2.0 + 4.0 * a * a) + 6.0 * a * l2 * l
                - 3.0 * l2 * l2)
    }

    /// Distribution function `(Φ((x − μ)/σ) − Φ(α))/Q(α)` for x ≥ lower, 0 below
    /// (a step at μ when σ = 0).
    pub fn cdf(&self, x: f64) -> f64 {
        if x < self.lower {
            return 0.0;
        }
        if self.sigma == 0.0 {
            return if x >= self.mu { 1.0 } else { 0.0 };
        }
        let z = (x - self.mu) / self.sigma;
        if z <= 0.0 {
            ((normal::cdf(z) - self.cdf_alpha) / self.mass).clamp(0.0, 1.0)
        } else {
            (1.0 - normal::upper_tail(z) / self.mass).clamp(0.0, 1.0)
        }
    }

    /// Density `φ((x − μ)/σ)/(σ Q(α))` for x ≥ lower, 0 below (0 when σ = 0).
    pub fn pdf(&self, x: f64) -> f64 {
        if x < self.lower || self.sigma == 0.0 {
            return 0.0;
        }
        normal::pdf((x - self.mu) / self.sigma) / (self.sigma * self.mass)
    }

    /// `(F(x), f(x), f'(x))` in one pass (one `erfc`, one `exp`), for root finding:
    /// `f'(x) = −((x − μ)/σ²)·f(x)` above the bound.
    pub fn cdf_pdf_slope(&self, x: f64) -> (f64, f64, f64) {
        if x < self.lower || self.sigma == 0.0 {
            return (self.cdf(x), 0.0, 0.0);
        }
        let z = (x - self.mu) / self.sigma;
        let f = if z <= 0.0 {
            ((normal::cdf(z) - self.cdf_alpha) / self.mass).clamp(0.0, 1.0)
        } else {
            (1.0 - normal::upper_tail(z) / self.mass).clamp(0.0, 1.0)
        };
        let d = normal::pdf(z) / (self.sigma * self.mass);
        (f, d, -z / self.sigma * d)
    }

    /// `E[X²] = Var + mean²`.
    pub fn second_moment(&self) -> f64 {
        let m = self.mean();
        self.variance() + m * m
    }

    /// One draw by inverse CDF: with u uniform on (0, 1), x = μ + σ Φ⁻¹(Φ(α) + u·Q(α)).
    /// When α > 0 the same is done on the upper tail, x = μ − σ Φ⁻¹(Q(α)·(1 − u)), so a
    /// bound far above μ keeps its precision.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        if self.sigma == 0.0 {
            return self.mu;
        }
        let u = rng.open01();
        let z = if self.alpha <= 0.0 {
            normal::quantile_fast(self.cdf_alpha + u * self.mass)
        } else {
            -normal::quantile_fast(self.mass * (1.0 - u))
        };
        // Rounding can put z a hair below α; the bound is part of the definition.
        (self.mu + self.sigma * z).max(self.lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn half_normal_closed_form() {
        // Truncating at the mean gives the half-normal: mean μ + σ√(2/π), variance σ²(1 − 2/π).
        let (mu, s) = (10.0, 3.0);
        let t = TruncatedNormal::new(mu, s, mu).expect("valid");
        assert!((t.mean() - (mu + s * (2.0 / PI).sqrt())).abs() < 1e-13);
        assert!((t.variance() - s * s * (1.0 - 2.0 / PI)).abs() < 1e-12);
        // Half-normal skewness √2(4 − π)/(π − 2)^{3/2}.
        let skew = t.third_central() / t.variance().powf(1.5);
        let want = 2f64.sqrt() * (4.0 - PI) / (PI - 2.0).powf(1.5);
        assert!((skew - want).abs() < 1e-12, "{skew} vs {want}");
        // Half-normal excess kurtosis 8(π − 3)/(π − 2)².
        let exk = t.fourth_central() / t.variance().powi(2) - 3.0;
        let want = 8.0 * (PI - 3.0) / (PI - 2.0).powi(2);
        assert!((exk - want).abs() < 1e-12, "{exk} vs {want}");
    }

    #[test]
    fn cdf_and_pdf_of_half_normal() {
        // Half-normal on [10, ∞) with σ = 3: F(10 + 3·1.959964) = 2·0.975 − 1 = 0.95.
        let t = TruncatedNormal::new(10.0, 3.0, 10.0).expect("valid");
        assert!((t.cdf(10.0 + 3.0 * 1.959_963_984_540_054) - 0.95).abs() < 1e-14);
        assert_eq!(t.cdf(9.0), 0.0);
        assert!((t.pdf(10.0) - 2.0 * normal::pdf(0.0) / 3.0).abs() < 1e-15);
        // The combined form agrees, and its slope matches a central difference.
        let x = 14.0;
        let (f, d, s) = t.cdf_pdf_slope(x);
        assert_eq!((f, d), (t.cdf(x), t.pdf(x)));
        let h = 1e-5;
        assert!((s - (t.pdf(x + h) - t.pdf(x - h)) / (2.0 * h)).abs() < 1e-9);
    }

    #[test]
    fn far_bound_changes_nothing() {
        let t = TruncatedNormal::new(100.0, 10.0, 0.0).expect("valid");
        // α = −10: Q = 1 − 7.6e-24, φ(−10) = 7.69e-23; mean shifts by 7.7e-22.
        assert!((t.mean() - 100.0).abs() < 1e-12);
        assert!((t.variance() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_and_invalid() {
        let t = TruncatedNormal::new(5.0, 0.0, 0.0).expect("point mass");
        assert_eq!((t.mean(), t.variance()), (5.0, 0.0));
        assert!(TruncatedNormal::new(-1.0, 0.0, 0.0).is_err());
        assert!(TruncatedNormal::new(1.0, -0.1, 0.0).is_err());
        assert!(TruncatedNormal::new(f64::NAN, 1.0, 0.0).is_err());
        assert!(TruncatedNormal::new(-100.0, 1.0, 0.0).is_err());
    }
}
