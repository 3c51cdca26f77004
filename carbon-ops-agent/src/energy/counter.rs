//! The one type that knows every wrap, reset and gap rule of an energy counter.
//!
//! A RAPL counter is an unsigned integer that counts up in the zone's own ticks and wraps at a
//! modulus (`max_energy_range_uj + 1` µJ for powercap, 2^32 ticks for an MSR). [`Counter`]
//! differences consecutive raw readings *in raw ticks*, accumulates ticks in a `u128`, and only
//! then converts the cumulative tick count to µJ with an exact rational, so no fraction of a
//! microjoule is lost or invented however many ticks pass. Rules (see `docs/energy.md`):
//!
//! * increase: the delta is `new − old`;
//! * decrease that a wrap explains: `modulus − old + new`, if that much energy was physically
//!   possible in the elapsed time at the zone's maximum power;
//! * decrease that no wrap explains: a reset (module reload, firmware); it counts neither as a
//!   negative nor as a full range, only the `new` value if that is plausible, else nothing;
//! * increase larger than the maximum power allows: also a reset, counted as nothing;
//! * a read gap long enough for a full range at maximum power: counted as the single-wrap
//!   reading (the least energy consistent with the counter) and flagged, not silently folded.

use serde::Serialize;

/// How a zone's raw counter behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CounterSpec {
    /// Raw values lie in `0..modulus`; the counter wraps from `modulus − 1` to 0.
    pub modulus: u64,
    /// µJ per raw tick is `uj_num / uj_den` (1/1 for powercap, 10^6/2^ESU for an MSR).
    pub uj_num: u64,
    /// Denominator of µJ per raw tick; never 0.
    pub uj_den: u64,
    /// The most power the zone can draw, in µW: bounds what a wrap may explain.
    pub max_power_uw: u64,
}

impl CounterSpec {
    /// A counter in whole µJ that takes the values `0..=max_range_uj` (powercap semantics).
    pub fn microjoules(max_range_uj: u64, max_power_uw: u64) -> CounterSpec {
        CounterSpec {
            modulus: max_range_uj.saturating_add(1),
            uj_num: 1,
            uj_den: 1,
            max_power_uw,
        }
    }

    /// Raw ticks that `max_power_uw` can produce in `elapsed_ns`, rounded up, plus one tick of
    /// quantisation slack.
    pub fn bound_ticks(&self, elapsed_ns: u64) -> u128 {
        let uj_times_1e9 = u128::from(self.max_power_uw) * u128::from(elapsed_ns);
        let num = u128::from(self.uj_num.max(1)) * 1_000_000_000;
        let ticks = (uj_times_1e9 * u128::from(self.uj_den.max(1))).div_ceil(num);
        ticks + 1
    }

    /// Cumulative µJ for a cumulative tick count (floor, exact rational).
    pub fn ticks_to_uj(&self, ticks: u128) -> u64 {
        let uj = ticks.saturating_mul(u128::from(self.uj_num)) / u128::from(self.uj_den.max(1));
        u64::try_from(uj).unwrap_or(u64::MAX)
    }
}

/// How one raw reading was explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Step {
    /// The counter went up (or stayed).
    Increase,
    /// The counter went down and one wrap explains it.
    Wrap,
    /// The counter went down and no plausible wrap explains it.
    Reset,
}

/// Classify one step of a counter: raw ticks to count and how. Pure; the heart of [`Counter`].
///
/// `bound` is the most ticks physically possible since `prev` was read.
pub fn classify(prev: u64, raw: u64, modulus: u64, bound: u128) -> (u64, Step) {
    if raw >= prev {
        let up = raw - prev;
        if u128::from(up) <= bound {
            return (up, Step::Increase);
        }
        // More than the zone could draw: the counter was replaced (reload), not advanced.
        return (0, Step::Reset);
    }
    let wrapped = u128::from(modulus - prev) + u128::from(raw);
    if wrapped <= bound {
        // `wrapped < modulus` because `raw < prev`, so it fits a u64.
        (u64::try_from(wrapped).unwrap_or(u64::MAX), Step::Wrap)
    } else if u128::from(raw) <= bound {
        (raw, Step::Reset)
    } else {
        (0, Step::Reset)
    }
}

/// What one [`Counter::observe`] call concluded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// µJ added to the cumulative total by this reading.
    pub delta_uj: u64,
    /// Nanoseconds since the previous good reading (the span `delta_uj` covers).
    pub span_ns: u64,
    /// This was the first reading: it only sets the baseline.
    pub first: bool,
    /// The counter wrapped.
    pub wrapped: bool,
    /// The counter went back in a way no wrap explains.
    pub reset: bool,
    /// The span was long enough for a whole range at maximum power: the delta is a lower bound.
    pub gap_flagged: bool,
}

/// What happened to one energy counter (a RAPL zone, a GPU) in one tick, as reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CounterFlags {
    /// First good reading: baseline only, delta 0.
    pub first_reading: bool,
    /// The counter wrapped (handled exactly).
    pub wrapped: bool,
    /// The counter went back or jumped in a way no wrap explains (reload); not counted.
    pub reset_detected: bool,
    /// The energy spans a gap: a lower bound (counter), or lost (GPU power integration).
    pub gap_flagged: bool,
    /// First good reading after a stale period: the delta covers the gap, not one tick.
    pub recovered: bool,
}

impl CounterFlags {
    /// The flags of `obs`; `recovered` when the reading ends a stale period.
    pub fn observed(obs: &Observation, recovered: bool) -> CounterFlags {
        CounterFlags {
            first_reading: obs.first,
            wrapped: obs.wrapped,
            reset_detected: obs.reset,
            gap_flagged: obs.gap_flagged,
            recovered,
        }
    }
}

/// The reading was outside the counter's own range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("raw counter {raw} is outside its range 0..{modulus}")]
pub struct OutOfRange {
    pub raw: u64,
    pub modulus: u64,
}

/// A wrap-safe monotonic accumulator over one raw counter.
#[derive(Clone, Debug)]
pub struct Counter {
    spec: CounterSpec,
    last: Option<(u64, u64)>,
    cum_ticks: u128,
    cum_uj: u64,
}

impl Counter {
    /// A counter with no baseline yet.
    pub fn new(spec: CounterSpec) -> Counter {
        Counter {
            spec,
            last: None,
            cum_ticks: 0,
            cum_uj: 0,
        }
    }

    /// The counter's specification.
    pub fn spec(&self) -> &CounterSpec {
        &self.spec
    }

    /// µJ accumulated since the first reading; never decreases.
    pub fn cumulative_uj(&self) -> u64 {
        self.cum_uj
    }

    /// Whether a baseline reading exists.
    pub fn has_baseline(&self) -> bool {
        self.last.is_some()
    }

    /// Account one raw reading taken at `at_ns` (monotonic). Never panics; a reading outside
    /// the range is refused and leaves the state unchanged.
    pub fn observe(&mut self, raw: u64, at_ns: u64) -> Result<Observation, OutOfRange> {
        if raw >= self.spec.modulus {
            return Err(OutOfRange {
                raw,
                modulus: self.spec.modulus,
            });
        }
        let Some((prev, prev_at)) = self.last else {
            self.last = Some((raw, at_ns));
            return Ok(Observation {
                first: true,
                ..Observation::default()
            });
        };
        let span_ns = at_ns.saturating_sub(prev_at);
        let bound = self.spec.bound_ticks(span_ns);
        let (ticks, step) = classify(prev, raw, self.spec.modulus, bound);
        self.last = Some((raw, at_ns.max(prev_at)));
        self.cum_ticks += u128::from(ticks);
        let cum_uj = self.spec.ticks_to_uj(self.cum_ticks);
        let delta_uj = cum_uj.saturating_sub(self.cum_uj);
        self.cum_uj = self.cum_uj.max(cum_uj);
        Ok(Observation {
            delta_uj,
            span_ns,
            first: false,
            wrapped: step == Step::Wrap,
            reset: step == Step::Reset,
            gap_flagged: bound >= u128::from(self.spec.modulus),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msr_ticks_convert_exactly_without_drift() {
        // ESU 14: 10^6 / 2^14 = 61.03515625 µJ per tick.
        let spec = CounterSpec {
            modulus: 1 << 32,
            uj_num: 1_000_000,
            uj_den: 1 << 14,
            max_power_uw: 500_000_000,
        };
        let mut c = Counter::new(spec);
        c.observe(0, 0).ok();
        let mut at = 0;
        for k in 1..=1000u64 {
            at += 100_000_000;
            c.observe(k * 3, at).ok();
        }
        // 3000 ticks × 61.03515625 = 183105.46875 µJ → 183105 (floor, exact).
        assert_eq!(c.cumulative_uj(), 183_105);
    }

    #[test]
    fn bound_ticks_by_hand() {
        let spec = CounterSpec::microjoules(999, 100_000_000); // 100 W
        // 100 W × 0.1 s = 10 J = 10^7 µJ, plus one tick of slack.
        assert_eq!(spec.bound_ticks(100_000_000), 10_000_001);
    }
}
