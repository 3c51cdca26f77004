//! Gauss–Hermite quadrature for expectations over a standard normal:
//! `E[f(Z)] ≈ Σ wᵢ f(zᵢ)`, exact for polynomials of degree < 2n. Nodes and weights are computed
//! once by Newton iteration on the orthonormal Hermite recurrence (the `gauher` routine of
//! Numerical Recipes, 3rd ed., §4.6), then rescaled from the physicists' weight e^{−x²} to the
//! standard normal (`zᵢ = √2·xᵢ`, `wᵢ = ωᵢ/√π`).

use std::sync::OnceLock;

/// Number of nodes used by the interval computation.
pub const NODES: usize = 16;

/// `(nodes, weights)` for `E[f(Z)]`, Z ~ N(0, 1), with [`NODES`] points.
pub fn standard_normal_rule() -> &'static ([f64; NODES], [f64; NODES]) {
    static RULE: OnceLock<([f64; NODES], [f64; NODES])> = OnceLock::new();
    RULE.get_or_init(|| {
        let (x, w) = gauss_hermite(NODES);
        let mut z = [0.0; NODES];
        let mut v = [0.0; NODES];
        let sqrt_pi = std::f64::consts::PI.sqrt();
        for i in 0..NODES {
            z[i] = std::f64::consts::SQRT_2 * x[i];
            v[i] = w[i] / sqrt_pi;
        }
        (z, v)
    })
}

/// Physicists' Gauss–Hermite rule with `n` points (weight e^{−x²}), nodes descending.
pub fn gauss_hermite(n: usize) -> (Vec<f64>, Vec<f64>) {
    const EPS: f64 = 1e-14;
    const PIM4: f64 = 0.751_125_544_464_942_5; // π^{-1/4}
    let nf = n as f64;
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let mut z = 0.0f64;
    for i in 0..n.div_ceil(2) {
        z = match i {
            0 => (2.0 * nf + 1.0).sqrt() - 1.855_75 * (2.0 * nf + 1.0).powf(-0.166_67),
            1 => z - 1.14 * nf.powf(0.426) / z,
            2 => 1.86 * z - 0.86 * x[0],
            3 => 1.91 * z - 0.91 * x[1],
            _ => 2.0 * z - x[i - 2],
        };
        let mut pp = 1.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (PIM4, 0.0);
            for j in 1..=n {
                let p3 = p2;
                p2 = p1;
                let jf = j as f64;
                p1 = z * (2.0 / jf).sqrt() * p2 - ((jf - 1.0) / jf).sqrt() * p3;
            }
            pp = (2.0 * nf).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= EPS {
                break;
            }
        }
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[n - 1 - i] = w[i];
    }
    (x, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments_are_exact() {
        let (z, w) = standard_normal_rule();
        let m = |k: i32| z.iter().zip(w).map(|(z, w)| w * z.powi(k)).sum::<f64>();
        assert!((m(0) - 1.0).abs() < 1e-13);
        assert!(m(1).abs() < 1e-13);
        assert!((m(2) - 1.0).abs() < 1e-12);
        assert!((m(4) - 3.0).abs() < 1e-11);
        assert!((m(10) - 945.0).abs() < 1e-8);
        assert!((m(20) - 654_729_075.0).abs() < 1e-3 * 654_729_075.0);
        // Two-point rule by hand: nodes ±1/√2, weights √π/2.
        let (x, w) = gauss_hermite(2);
        assert!((x[0] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-14);
        assert!((w[0] - std::f64::consts::PI.sqrt() / 2.0).abs() < 1e-14);
    }
}
