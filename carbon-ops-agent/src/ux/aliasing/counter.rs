//! Counter-level aliasing (pure): a fake zone whose raw counter (`0..=range_uj`, powercap
//! semantics) advances at a constant power and wraps, read every 100 ms by the agent and every
//! `T` seconds by a scraper. Wraps are counted from the RAW readings (a reading lower than the
//! previous one is one wrap the reader can see); both readers accumulate with the project's
//! [`Counter`], so the scraper's total is what the agent's own wrap rule would give at period
//! `T`. Between two scrapes `P·T` µJ pass; the counter shows them modulo `range + 1`, so the
//! scraper misses exactly `floor(P·T / (range + 1))` whole ranges per interval whatever the
//! phase, which [`CounterResult::missed_arithmetic`] states and the demo's test checks.

use serde::Serialize;

use crate::energy::counter::{Counter, CounterSpec};

/// One scraper period's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CounterResult {
    /// Scrape period, ms.
    pub period_ms: u64,
    /// Scrape intervals simulated.
    pub intervals: u64,
    /// Zone power, µW.
    pub power_uw: u64,
    /// `range + 1`, µJ.
    pub modulus_uj: u64,
    /// Wraps seen in the agent's 100 ms raw readings (every wrap: a range takes far longer
    /// than 100 ms at this power).
    pub wraps_actual: u64,
    /// Wraps visible in the scraper's raw readings (a reading below the previous one).
    pub wraps_seen_by_scraper: u64,
    /// Counted from raw readings: `wraps_actual − wraps_seen_by_scraper`.
    pub wraps_missed: u64,
    /// True energy over the horizon, µJ.
    pub true_uj: u64,
    /// The agent's unwrapped total, µJ.
    pub agent_uj: u64,
    /// The scraper's unwrapped total, µJ.
    pub scraper_uj: u64,
    /// The counter type flagged the scraper's gaps as long enough for a whole range.
    pub scraper_gaps_flagged: u64,
}

impl CounterResult {
    /// `intervals × floor(P·T / (range + 1))`: the wraps arithmetic says a scraper misses.
    pub fn missed_arithmetic(&self) -> u64 {
        let per = u128::from(self.power_uw) * u128::from(self.period_ms) / 1000;
        let per_interval = per / u128::from(self.modulus_uj.max(1));
        u64::try_from(per_interval).unwrap_or(u64::MAX) * self.intervals
    }
}

/// Raw readings `(t_ms, raw)`.
pub type Reads = Vec<(u64, u64)>;

/// Simulates `horizon_ms` (a multiple of `period_ms`) of a zone at `power_uw` with
/// `max_energy_range_uj = range_uj`, starting at raw `start_uj`. Returns the result and both
/// readers' raw readings (for the chart).
pub fn simulate(
    power_uw: u64,
    range_uj: u64,
    start_uj: u64,
    period_ms: u64,
    agent_ms: u64,
    horizon_ms: u64,
) -> (CounterResult, Reads, Reads) {
    let modulus = range_uj.saturating_add(1);
    let raw_at = |t_ms: u64| -> u64 {
        let e = u128::from(start_uj) + u128::from(power_uw) * u128::from(t_ms) / 1000;
        u64::try_from(e % u128::from(modulus)).unwrap_or(0)
    };
    // Bound the wrap rule with twice the simulated power, as a zone's maximum power would.
    let spec = CounterSpec::microjoules(range_uj, power_uw.saturating_mul(2));
    let read = |every: u64| -> (Reads, Counter, u64, u64) {
        let mut c = Counter::new(spec);
        let (mut reads, mut wraps, mut flagged) = (Vec::new(), 0, 0);
        let mut t = 0;
        while t <= horizon_ms {
            let raw = raw_at(t);
            if reads.last().is_some_and(|&(_, prev)| raw < prev) {
                wraps += 1;
            }
            if let Ok(o) = c.observe(raw, t * 1_000_000)
                && o.gap_flagged
            {
                flagged += 1;
            }
            reads.push((t, raw));
            t += every;
        }
        (reads, c, wraps, flagged)
    };
    let (agent_reads, agent, wraps_actual, _) = read(agent_ms);
    let (scrape_reads, scraper, wraps_seen, flagged) = read(period_ms);
    let true_uj =
        u64::try_from(u128::from(power_uw) * u128::from(horizon_ms) / 1000).unwrap_or(u64::MAX);
    let result = CounterResult {
        period_ms,
        intervals: horizon_ms / period_ms.max(1),
        power_uw,
        modulus_uj: modulus,
        wraps_actual,
        wraps_seen_by_scraper: wraps_seen,
        wraps_missed: wraps_actual.saturating_sub(wraps_seen),
        true_uj,
        agent_uj: agent.cumulative_uj(),
        scraper_uj: scraper.cumulative_uj(),
        scraper_gaps_flagged: flagged,
    };
    (result, agent_reads, scrape_reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_match_the_arithmetic_at_every_phase() {
        // 65 W, a 400 J range: 975 J per 15 s interval = 2 whole ranges + 175 J.
        for start in [0, 1, 224_999_999, 225_000_000, 399_999_999] {
            let (r, _, _) = simulate(65_000_000, 399_999_999, start, 15_000, 100, 60_000);
            assert_eq!(r.intervals, 4);
            assert_eq!(r.missed_arithmetic(), 8);
            assert_eq!(r.wraps_missed, 8, "start {start}: {r:?}");
            assert_eq!(r.agent_uj, r.true_uj);
            assert_eq!(r.true_uj - r.scraper_uj, 8 * 400_000_000);
        }
    }

    #[test]
    fn a_scraper_faster_than_a_range_misses_nothing() {
        let (r, _, _) = simulate(65_000_000, 399_999_999, 7, 5_000, 100, 60_000);
        assert_eq!((r.wraps_missed, r.missed_arithmetic()), (0, 0));
        assert_eq!(r.scraper_uj, r.true_uj);
    }
}
