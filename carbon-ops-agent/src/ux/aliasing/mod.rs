//! The aliasing demo's logic (pure): what a 10 Hz sampler sees against a Prometheus-style
//! scraper, per process ([`procs`]) and at the counter level ([`counter`]); the table and
//! SVG chart it prints and writes ([`render`]). Everything here is SIMULATED (a model
//! timeline and a fake zone), and says so in its output; `examples/aliasing_demo.rs` is the
//! command-line wrapper and `docs/aliasing.md` the explanation.

pub mod counter;
pub mod procs;
pub mod render;

use serde::Serialize;

/// The demo's knobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DemoConfig {
    /// Simulated seconds.
    pub duration_s: u64,
    /// Scraper period, s.
    pub scrape_period_s: u64,
    /// Agent period, ms.
    pub agent_period_ms: u64,
    /// Seed of the job generator.
    pub seed: u64,
    /// Fake zone's power for the counter-level part, W.
    pub counter_power_w: u64,
    /// Fake zone's `max_energy_range_uj`.
    pub counter_range_uj: u64,
    /// Scraper periods compared at the counter level, s.
    pub counter_periods_s: Vec<u64>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            duration_s: 120,
            scrape_period_s: 15,
            agent_period_ms: 100,
            seed: 42,
            counter_power_w: 65,
            counter_range_uj: 399_999_999,
            counter_periods_s: vec![1, 5, 7, 15, 30, 60],
        }
    }
}

/// Everything the demo computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DemoResult {
    /// The knobs.
    pub config: DemoConfig,
    /// Per-process result.
    pub procs: procs::ProcResult,
    /// One row per compared period.
    pub counter: Vec<counter::CounterResult>,
    /// Raw readings at the agent's rate and at `scrape_period_s`, for the chart.
    #[serde(skip)]
    pub reads: (counter::Reads, counter::Reads),
}

/// Seconds simulated at the counter level for period `p`: the run rounded up to whole
/// periods, at least one.
pub fn counter_horizon_s(duration_s: u64, period_s: u64) -> u64 {
    duration_s.div_ceil(period_s.max(1)).max(1) * period_s.max(1)
}

/// Runs both parts.
pub fn run(config: &DemoConfig) -> DemoResult {
    let duration_ms = config.duration_s.max(1) * 1000;
    let jobs = procs::demo_jobs(duration_ms, config.seed);
    let procs = procs::simulate(
        &jobs,
        duration_ms,
        config.agent_period_ms,
        config.scrape_period_s.max(1) * 1000,
    );
    let power_uw = config.counter_power_w * 1_000_000;
    // Start a third of the way into the range: an arbitrary phase (the result does not
    // depend on it; the unit tests sweep it).
    let start = config.counter_range_uj / 3;
    let counter = config
        .counter_periods_s
        .iter()
        .map(|&p| {
            let h = counter_horizon_s(config.duration_s, p);
            counter::simulate(
                power_uw,
                config.counter_range_uj,
                start,
                p * 1000,
                config.agent_period_ms,
                h * 1000,
            )
            .0
        })
        .collect();
    let h = counter_horizon_s(config.duration_s, config.scrape_period_s);
    let (_, a, s) = counter::simulate(
        power_uw,
        config.counter_range_uj,
        start,
        config.scrape_period_s.max(1) * 1000,
        config.agent_period_ms,
        h * 1000,
    );
    DemoResult {
        config: config.clone(),
        procs,
        counter,
        reads: (a, s),
    }
}
