//! The Monte Carlo method: `n` independent draws of every input (inverse-CDF sampling of each
//! truncated normal from one seeded [`Rng`] stream, inputs drawn in order within each sample),
//! the product formed per draw, the mean taken over draws and the interval read from the
//! percentiles of the products (linear interpolation between order statistics, the
//! "type 7" rule of R and NumPy). Its width does not shrink with `n`; only its noise does.

use super::{Propagated, Rng, TruncatedNormal, UncertaintyError, check_confidence};

/// Smallest sample count accepted (fewer cannot place a 2.5 % percentile meaningfully).
pub const MIN_SAMPLES: u32 = 100;

/// Samples the product of `factors` `samples` times from `seed`.
pub fn monte_carlo(
    factors: &[TruncatedNormal],
    confidence: f64,
    samples: u32,
    seed: u64,
) -> Result<Propagated, UncertaintyError> {
    let c = check_confidence(confidence)?;
    if samples < MIN_SAMPLES {
        return Err(UncertaintyError::TooFewSamples { samples });
    }
    let mut rng = Rng::seed_from_u64(seed);
    let mut draws: Vec<f64> = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let mut p = 1.0;
        for f in factors {
            p *= f.sample(&mut rng);
        }
        draws.push(p);
    }
    let mean = draws.iter().sum::<f64>() / f64::from(samples);
    let tail = 0.5 * (1.0 - c);
    let lower = percentile(&mut draws, tail);
    let upper = percentile(&mut draws, 1.0 - tail);
    Ok(Propagated { mean, lower, upper })
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `xs` by linear interpolation between the order statistics
/// at ranks ⌊h⌋ and ⌊h⌋+1, h = (n−1)q. Reorders `xs` (selection, O(n)); `xs` must be non-empty
/// and free of NaN.
pub fn percentile(xs: &mut [f64], q: f64) -> f64 {
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let k = h.floor() as usize;
    let frac = h - k as f64;
    let (_, lo, rest) = xs.select_nth_unstable_by(k, f64::total_cmp);
    let lo = *lo;
    if frac == 0.0 || rest.is_empty() {
        return lo;
    }
    let hi = rest.iter().copied().fold(f64::INFINITY, f64::min);
    lo + frac * (hi - lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_type7_by_hand() {
        let mut xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&mut xs, 0.5), 3.0);
        assert_eq!(percentile(&mut xs, 0.0), 1.0);
        assert_eq!(percentile(&mut xs, 1.0), 5.0);
        // h = 4·0.1 = 0.4: 1 + 0.4·(2 − 1).
        assert!((percentile(&mut xs, 0.1) - 1.4).abs() < 1e-15);
    }

    #[test]
    fn same_seed_same_result() {
        let f = [
            TruncatedNormal::new(100.0, 10.0, 0.0).expect("ok"),
            TruncatedNormal::new(300.0, 90.0, 0.0).expect("ok"),
        ];
        let a = monte_carlo(&f, 0.95, 1000, 42).expect("ok");
        let b = monte_carlo(&f, 0.95, 1000, 42).expect("ok");
        let c = monte_carlo(&f, 0.95, 1000, 43).expect("ok");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(monte_carlo(&f, 0.95, 10, 42).is_err());
    }
}
