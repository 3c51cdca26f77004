//! Property tests of the wrap/reset rules: random counter sequences with and without wraps,
//! with resets, and with arbitrary garbage, against the exact truth.

use carbon_ops::energy::{Counter, CounterSpec};
use proptest::prelude::*;

const TICK_NS: u64 = 100_000_000;

/// A µJ counter of modulus `m` whose ceiling lets at most about m/2 pass per 100 ms tick.
fn spec_for(m: u64) -> CounterSpec {
    CounterSpec {
        modulus: m,
        uj_num: 1,
        uj_den: 1,
        max_power_uw: (m / 2).saturating_mul(10),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Without resets, the cumulative total equals the true energy exactly, however many wraps.
    #[test]
    fn wraps_are_unwrapped_exactly(
        m in prop_oneof![Just(1u64 << 32), Just(262_143_328_851u64), 4u64..1_000_000_000_000],
        start_frac in 0.0f64..1.0,
        incs in prop::collection::vec(0.0f64..=1.0, 1..200),
    ) {
        let spec = spec_for(m);
        let bound = spec.bound_ticks(TICK_NS) as u64;
        prop_assume!(bound < m);
        let mut c = Counter::new(spec);
        let mut raw = ((m - 1) as f64 * start_frac) as u64;
        c.observe(raw, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut truth = 0u64;
        for (k, f) in incs.iter().enumerate() {
            let inc = ((m / 2) as f64 * f) as u64;
            truth += inc;
            let next = ((u128::from(raw) + u128::from(inc)) % u128::from(m)) as u64;
            let crossed = next < raw;
            raw = next;
            let o = c.observe(raw, (k as u64 + 1) * TICK_NS).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(o.delta_uj, inc);
            prop_assert_eq!(o.wrapped, crossed);
            prop_assert!(!o.reset && !o.gap_flagged && !o.first);
        }
        prop_assert_eq!(c.cumulative_uj(), truth);
    }

    /// Detectable resets are flagged exactly where they happen and count only the new value.
    #[test]
    fn resets_are_flagged_and_count_only_the_new_value(
        m in 1_000u64..1_000_000_000,
        ops in prop::collection::vec((any::<bool>(), 0.0f64..=1.0), 1..200),
    ) {
        let spec = spec_for(m);
        let bound = spec.bound_ticks(TICK_NS) as u64;
        prop_assume!(bound < m);
        let mut c = Counter::new(spec);
        let mut raw = m / 3;
        c.observe(raw, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut truth = 0u64;
        for (k, &(reset, f)) in ops.iter().enumerate() {
            let at = (k as u64 + 1) * TICK_NS;
            if reset {
                let r = ((m / 4) as f64 * f) as u64;
                // Detectable: a decrease that no wrap within the bound explains.
                let detectable = r < raw && u128::from(m - raw) + u128::from(r) > u128::from(bound);
                if detectable {
                    raw = r;
                    truth += r;
                    let o = c.observe(raw, at).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(o.reset && !o.wrapped);
                    prop_assert_eq!(o.delta_uj, r);
                    continue;
                }
            }
            let inc = ((m / 2) as f64 * f) as u64;
            truth += inc;
            raw = ((u128::from(raw) + u128::from(inc)) % u128::from(m)) as u64;
            let o = c.observe(raw, at).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!o.reset);
            prop_assert_eq!(o.delta_uj, inc);
        }
        prop_assert_eq!(c.cumulative_uj(), truth);
    }

    /// Whatever the counter reads, the total never decreases, a step never exceeds what the
    /// maximum power allows (or one range in a flagged gap), and out-of-range reads are refused
    /// without changing anything.
    #[test]
    fn garbage_never_decreases_and_never_invents(
        m in 2u64..1_000_000_000_000,
        reads in prop::collection::vec((any::<u64>(), 0u64..3_000_000_000), 1..200),
    ) {
        let spec = spec_for(m);
        let mut c = Counter::new(spec);
        let mut at = 0u64;
        let mut last = 0u64;
        for &(r, dt) in &reads {
            at += dt;
            let before = c.cumulative_uj();
            match c.observe(r, at) {
                Ok(o) => {
                    prop_assert!(r < m);
                    prop_assert_eq!(c.cumulative_uj(), before + o.delta_uj);
                    prop_assert!(u128::from(o.delta_uj) <= spec.bound_ticks(o.span_ns));
                    prop_assert!(o.delta_uj < m);
                }
                Err(e) => {
                    prop_assert!(r >= m);
                    prop_assert_eq!(e.raw, r);
                    prop_assert_eq!(c.cumulative_uj(), before);
                }
            }
            prop_assert!(c.cumulative_uj() >= last);
            last = c.cumulative_uj();
        }
    }

    /// MSR ticks: 32-bit wraps differenced in ticks, converted once: the total is the exact
    /// floor of all ticks × 10^6 / 2^esu, whatever the split.
    #[test]
    fn msr_ticks_convert_exactly(
        esu in 8u32..20,
        start in any::<u32>(),
        incs in prop::collection::vec(0.0f64..=1.0, 1..200),
    ) {
        // 1 kW ceiling: 100 J per tick = 100 × 2^esu ticks, far below 2^32.
        let spec = CounterSpec { modulus: 1 << 32, uj_num: 1_000_000, uj_den: 1 << esu, max_power_uw: 1_000_000_000 };
        let bound = spec.bound_ticks(TICK_NS) as u64;
        prop_assert!(bound < 1 << 32);
        let mut c = Counter::new(spec);
        let mut raw = u64::from(start);
        c.observe(raw, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut ticks: u128 = 0;
        let mut sum = 0u64;
        for (k, &f) in incs.iter().enumerate() {
            let inc = ((bound - 1) as f64 * f) as u64;
            ticks += u128::from(inc);
            raw = (raw + inc) & 0xFFFF_FFFF;
            sum += c.observe(raw, (k as u64 + 1) * TICK_NS).map_err(|e| TestCaseError::fail(e.to_string()))?.delta_uj;
        }
        let expected = (ticks * 1_000_000 / (1u128 << esu)) as u64;
        prop_assert_eq!(sum, expected);
        prop_assert_eq!(c.cumulative_uj(), expected);
    }
}
