//! Largest-remainder (Hamilton) apportionment of an integer amount by integer weights.

/// Splits `amount` in proportion to `weights` so the parts sum to `amount` exactly: each gets
/// `floor(amount · w / Σw)`, and the few units left go one each to the largest remainders
/// (ties to the lower index, so the result is deterministic). All weights zero: all parts 0.
pub fn largest_remainder(amount: u64, weights: &[u64]) -> Vec<u64> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (i, &w) in weights.iter().enumerate() {
        let exact = u128::from(amount) * u128::from(w);
        let part = exact / total;
        given += part;
        parts.push(part as u64);
        rems.push((exact % total, i));
    }
    let left = (u128::from(amount) - given) as usize;
    if left > 0 {
        // Only the `left` largest remainders matter: partial selection, then order those.
        let k = left.min(rems.len());
        rems.select_nth_unstable_by(k - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in &rems[..k] {
            parts[i] += 1;
        }
    }
    parts
}
