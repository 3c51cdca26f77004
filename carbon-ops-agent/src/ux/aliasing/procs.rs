//! Per-process aliasing (pure): a simulated timeline of jobs (steady, bursty, short-lived)
//! drawing power in proportion to their CPU use times a per-job factor (vector code draws
//! more per CPU-second), read by the 10 Hz agent and by a scraper every `T` seconds. Both
//! split each window's active energy (package minus a known idle power) by the CPU time they
//! can see in it: the agent sees every process that ran in a tick (eBPF accounts exits); the
//! scraper sees only processes alive at the scrape instant, so jobs that start and end
//! between scrapes are invisible, and the last CPU time of those that end is lost.

use serde::Serialize;

/// Simulation step, ms (the true timeline's resolution).
pub const STEP_MS: u64 = 10;
/// Power drawn per full core at factor 100 %, mW.
const MW_PER_CORE: u64 = 10_000;

/// One simulated job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Its PID.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Lifetime `[start_ms, end_ms)`.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
    /// CPU use while active, thousandths of a core.
    pub millicores: u64,
    /// Power per CPU-second relative to the reference, percent.
    pub factor_pct: u64,
    /// `(period_ms, on_ms)`: active only during the first `on_ms` of each period.
    pub burst: Option<(u64, u64)>,
}

impl Job {
    fn active(&self, t_ms: u64) -> bool {
        t_ms >= self.start_ms
            && t_ms < self.end_ms
            && self
                .burst
                .is_none_or(|(period, on)| (t_ms - self.start_ms) % period < on)
    }

    fn alive(&self, t_ms: u64) -> bool {
        t_ms >= self.start_ms && t_ms < self.end_ms
    }

    /// Whether it both starts and ends inside `[0, duration)`.
    pub fn short_lived(&self, duration_ms: u64) -> bool {
        self.start_ms > 0 && self.end_ms < duration_ms
    }
}

/// A small deterministic generator (SplitMix64), so the demo is reproducible.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn between(state: &mut u64, lo: u64, hi: u64) -> u64 {
    lo + next(state) % (hi - lo + 1)
}

/// The demo's jobs over `duration_ms`: a steady web server, a bursty vector batch job (2 s
/// of every 9 s) and short-lived cron jobs (0.3–4 s, every 2.5–6 s).
pub fn demo_jobs(duration_ms: u64, seed: u64) -> Vec<Job> {
    let mut jobs = vec![
        Job {
            pid: 100,
            name: "web".into(),
            start_ms: 0,
            end_ms: duration_ms,
            millicores: 500,
            factor_pct: 100,
            burst: None,
        },
        Job {
            pid: 101,
            name: "batch-avx".into(),
            start_ms: 0,
            end_ms: duration_ms,
            millicores: 1000,
            factor_pct: 130,
            burst: Some((9_000, 2_000)),
        },
    ];
    let mut rng = seed;
    let (mut t, mut pid) = (1_300u64, 200u32);
    while t < duration_ms {
        let len = between(&mut rng, 3, 40) * 100;
        jobs.push(Job {
            pid,
            name: format!("cron-{pid}"),
            start_ms: t,
            end_ms: (t + len).min(duration_ms),
            millicores: 1000,
            factor_pct: between(&mut rng, 100, 120),
            burst: None,
        });
        pid += 1;
        t += between(&mut rng, 25, 60) * 100;
    }
    jobs
}

/// How a sampler's attribution compares with the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Split {
    /// Energy given to the process that used it, µJ (Σ min(attributed, true)).
    pub right_uj: u64,
    /// Energy given to a process that did not use it, µJ (Σ max(0, attributed − true)).
    pub wrong_uj: u64,
    /// Energy given to no one, µJ (total − Σ attributed).
    pub no_one_uj: u64,
}

/// One process: its true energy and what each sampler attributed to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcRow {
    /// The job.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// True energy, µJ.
    pub true_uj: u64,
    /// The 10 Hz agent's, µJ.
    pub agent_uj: u64,
    /// The scraper's, µJ.
    pub scraper_uj: u64,
    /// Started and ended inside the run.
    pub short_lived: bool,
    /// The scraper saw it at least once.
    pub seen_by_scraper: bool,
}

/// The per-process result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcResult {
    /// Every job.
    pub rows: Vec<ProcRow>,
    /// Total active energy, µJ.
    pub total_uj: u64,
    /// The agent's split.
    pub agent: Split,
    /// The scraper's split.
    pub scraper: Split,
}

fn split(rows: &[ProcRow], total: u64, attributed: impl Fn(&ProcRow) -> u64) -> Split {
    let (mut right, mut wrong, mut sum) = (0, 0, 0);
    for r in rows {
        let a = attributed(r);
        right += a.min(r.true_uj);
        wrong += a.saturating_sub(r.true_uj);
        sum += a;
    }
    Split {
        right_uj: right,
        wrong_uj: wrong,
        no_one_uj: total.saturating_sub(sum),
    }
}

/// Splits `energy` between `visible` processes by their CPU deltas (floor; the remainder of
/// a few µJ goes to no one, as rounding).
fn attribute(energy: u64, deltas: &[(usize, u64)], into: &mut [u64]) {
    let cpu: u64 = deltas.iter().map(|d| d.1).sum();
    if cpu == 0 {
        return;
    }
    for &(i, d) in deltas {
        into[i] +=
            u64::try_from(u128::from(energy) * u128::from(d) / u128::from(cpu)).unwrap_or(u64::MAX);
    }
}

/// Runs the timeline: truth at [`STEP_MS`], the agent every `agent_ms`, the scraper every
/// `scrape_ms` (both multiples of [`STEP_MS`]).
pub fn simulate(jobs: &[Job], duration_ms: u64, agent_ms: u64, scrape_ms: u64) -> ProcResult {
    let n = jobs.len();
    let (mut cpu, mut truth) = (vec![0u64; n], vec![0u64; n]);
    let (mut agent, mut scraper) = (vec![0u64; n], vec![0u64; n]);
    let (mut cpu_at_tick, mut cpu_at_scrape) = (vec![0u64; n], vec![None::<u64>; n]);
    let mut seen = vec![false; n];
    let (mut total, mut total_at_tick, mut total_at_scrape) = (0u64, 0u64, 0u64);
    let mut t = 0;
    while t < duration_ms {
        for (i, j) in jobs.iter().enumerate() {
            if j.active(t) {
                let cpu_us = j.millicores * STEP_MS;
                let uj = j.millicores * MW_PER_CORE / 1000 * j.factor_pct / 100 * STEP_MS;
                cpu[i] += cpu_us;
                truth[i] += uj;
                total += uj;
            }
        }
        t += STEP_MS;
        if t % agent_ms == 0 || t == duration_ms {
            let deltas: Vec<(usize, u64)> = (0..n).map(|i| (i, cpu[i] - cpu_at_tick[i])).collect();
            attribute(total - total_at_tick, &deltas, &mut agent);
            cpu_at_tick.clone_from(&cpu);
            total_at_tick = total;
        }
        if t % scrape_ms == 0 {
            // Alive at the scrape instant: the ones /proc still lists.
            let deltas: Vec<(usize, u64)> = (0..n)
                .filter(|&i| jobs[i].alive(t) || (jobs[i].end_ms == t && t == duration_ms))
                .map(|i| (i, cpu[i] - cpu_at_scrape[i].unwrap_or(0)))
                .collect();
            for &(i, _) in &deltas {
                seen[i] = true;
                cpu_at_scrape[i] = Some(cpu[i]);
            }
            attribute(total - total_at_scrape, &deltas, &mut scraper);
            total_at_scrape = total;
        }
    }
    let rows: Vec<ProcRow> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| ProcRow {
            pid: j.pid,
            name: j.name.clone(),
            true_uj: truth[i],
            agent_uj: agent[i],
            scraper_uj: scraper[i],
            short_lived: j.short_lived(duration_ms),
            seen_by_scraper: seen[i],
        })
        .collect();
    ProcResult {
        agent: split(&rows, total, |r| r.agent_uj),
        scraper: split(&rows, total, |r| r.scraper_uj),
        rows,
        total_uj: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(pid: u32, start_ms: u64, end_ms: u64) -> Job {
        Job {
            pid,
            name: format!("j{pid}"),
            start_ms,
            end_ms,
            millicores: 1000,
            factor_pct: 100,
            burst: None,
        }
    }

    #[test]
    fn a_job_between_scrapes_is_invisible_to_the_scraper_and_its_energy_goes_elsewhere() {
        // A steady job all along, a second one from 2 s to 5 s; scrapes at 10 s and 20 s.
        let r = simulate(
            &[job(1, 0, 20_000), job(2, 2_000, 5_000)],
            20_000,
            100,
            10_000,
        );
        // 10 W each: 200 J and 30 J.
        assert_eq!(r.rows[0].true_uj, 200_000_000);
        assert_eq!(r.rows[1].true_uj, 30_000_000);
        assert_eq!(r.total_uj, 230_000_000);
        // The agent attributes exactly (same factor, so CPU share is the energy share).
        assert_eq!(
            r.agent,
            Split {
                right_uj: 230_000_000,
                wrong_uj: 0,
                no_one_uj: 0
            }
        );
        // The scraper gives job 2's 30 J to job 1.
        assert!(!r.rows[1].seen_by_scraper);
        assert_eq!(r.rows[0].scraper_uj, 230_000_000);
        assert_eq!(
            r.scraper,
            Split {
                right_uj: 200_000_000,
                wrong_uj: 30_000_000,
                no_one_uj: 0
            }
        );
    }

    #[test]
    fn with_no_one_alive_at_the_scrape_the_energy_goes_to_no_one() {
        let r = simulate(&[job(7, 1_000, 4_000)], 15_000, 100, 15_000);
        assert_eq!(r.scraper.no_one_uj, 30_000_000);
        assert_eq!(r.agent.right_uj, 30_000_000);
    }

    #[test]
    fn demo_jobs_are_reproducible_and_inside_the_run() {
        let a = demo_jobs(120_000, 7);
        assert_eq!(a, demo_jobs(120_000, 7));
        assert!(
            a.iter()
                .all(|j| j.start_ms < j.end_ms && j.end_ms <= 120_000)
        );
        assert!(a.iter().filter(|j| j.short_lived(120_000)).count() > 10);
    }
}
