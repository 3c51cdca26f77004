//! The standard normal distribution: density, distribution function, upper tail and quantile,
//! to double precision.
//!
//! `Φ` and its upper tail `Q = 1 − Φ` come from `erfc` (the `libm` crate, a port of musl's
//! double-precision implementation), never from `1 − Φ`, so tails keep their relative precision.
//! The quantile is Acklam's rational approximation (relative error below 1.15e-9), refined by one
//! Halley step to full double precision where an exact quantile matters (interval half-widths);
//! Monte Carlo sampling uses the unrefined form, whose error is nine orders below sampling noise.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// 1/√(2π).
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal density φ(x).
pub fn pdf(x: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Standard normal distribution function Φ(x) = erfc(−x/√2)/2.
pub fn cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// Upper tail Q(x) = 1 − Φ(x) = erfc(x/√2)/2, accurate where Φ(x) rounds to 1.
pub fn upper_tail(x: f64) -> f64 {
    0.5 * libm::erfc(x * FRAC_1_SQRT_2)
}

// Acklam's coefficients (P. J. Acklam, "An algorithm for computing the inverse normal
// cumulative distribution function", 2003).
const A: [f64; 6] = [
    -3.969_683_028_665_376e1,
    2.209_460_984_245_205e2,
    -2.759_285_104_469_687e2,
    1.383_577_518_672_69e2,
    -3.066_479_806_614_716e1,
    2.506_628_277_459_239,
];
const B: [f64; 5] = [
    -5.447_609_879_822_406e1,
    1.615_858_368_580_409e2,
    -1.556_989_798_598_866e2,
    6.680_131_188_771_972e1,
    -1.328_068_155_288_572e1,
];
const C: [f64; 6] = [
    -7.784_894_002_430_293e-3,
    -3.223_964_580_411_365e-1,
    -2.400_758_277_161_838,
    -2.549_732_539_343_734,
    4.374_664_141_464_968,
    2.938_163_982_698_783,
];
const D: [f64; 4] = [
    7.784_695_709_041_462e-3,
    3.224_671_290_700_398e-1,
    2.445_134_137_142_996,
    3.754_408_661_907_416,
];
const P_LOW: f64 = 0.024_25;

/// Φ⁻¹(p) by Acklam's approximation (relative error < 1.15e-9) for p in (0, 1);
/// returns ∓∞ at 0 and 1 and NaN outside [0, 1].
pub fn quantile_fast(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Φ⁻¹(p) to double precision: Acklam's start refined by one Halley step on Φ(x) − p.
pub fn quantile(p: f64) -> f64 {
    let x = quantile_fast(p);
    if !x.is_finite() {
        return x;
    }
    // Work on the side whose tail is small, so the residual keeps its precision.
    let e = if x <= 0.0 {
        cdf(x) - p
    } else {
        (1.0 - p) - upper_tail(x)
    };
    let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_values() {
        // Abramowitz & Stegun table 26.1 and the usual z-values.
        assert!((cdf(0.0) - 0.5).abs() < 1e-16);
        assert!((cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((cdf(-1.959_963_984_540_054) - 0.025).abs() < 1e-15);
        assert!((upper_tail(5.0) - 2.866_515_718_791_939e-7).abs() < 1e-20);
        assert!((pdf(0.0) - INV_SQRT_2PI).abs() < 1e-17);
        assert!((quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-13);
        assert!((quantile(0.995) - 2.575_829_303_548_901).abs() < 1e-13);
        assert!((quantile(0.05) + 1.644_853_626_951_472_2).abs() < 1e-13);
        assert!((quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-9);
    }

    #[test]
    fn quantile_inverts_cdf() {
        for i in 1..1000 {
            let p = f64::from(i) / 1000.0;
            assert!((cdf(quantile(p)) - p).abs() < 1e-14, "p={p}");
            let (x, y) = (quantile(p), quantile_fast(p));
            assert!((x - y).abs() <= 1.2e-9 * x.abs() + 1e-15, "p={p}");
        }
    }
}
