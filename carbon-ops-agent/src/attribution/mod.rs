//! Attribution: splitting each package's energy between processes by CPU time (pure).
//!
//! Per tick and per package, the package's energy delta (package zone plus its DRAM zone) is
//! split in proportion to on-CPU nanoseconds on that package's CPUs: each process's time, the
//! idle task's time and time the kernel side could not store (lost). Where the idle share
//! goes is the [`IdlePolicy`]. Energy with no CPU-time basis (a package with no time at all,
//! energy recovered after a stale gap, time lost, host energy outside any package) is
//! `unattributed`. All arithmetic is integer µJ with a largest-remainder split
//! ([`split::largest_remainder`]), so for every tick
//! `total_uj == attributed_uj + idle_uj + unattributed_uj` holds exactly.

pub mod split;

use serde::{Deserialize, Serialize};

use crate::tasks::{ProcessId, delta::TaskDelta};

/// Where the energy of idle CPU time goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum IdlePolicy {
    /// To the `idle` bucket: a process is charged for the time it ran and nothing more.
    #[default]
    IdleBucket,
    /// Spread over the processes that ran in the tick, in proportion to their CPU time, so
    /// that processes carry the whole host energy whenever any ran.
    Spread,
}

impl IdlePolicy {
    /// The name used in the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            IdlePolicy::IdleBucket => "idle_bucket",
            IdlePolicy::Spread => "spread",
        }
    }
}

/// One package's energy in one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEnergy {
    /// The CPUs of this package.
    pub cpus: Vec<u32>,
    /// Package + DRAM energy in this tick, µJ.
    pub energy_uj: u64,
    /// The energy spans more than this tick (recovered after a stale gap): it has no CPU-time
    /// basis in this tick and is left unattributed.
    pub no_basis: bool,
}

/// Everything one tick's attribution needs.
#[derive(Clone, Copy, Debug)]
pub struct TickInput<'a> {
    /// Per package energy.
    pub packages: &'a [PackageEnergy],
    /// Host energy in this tick (≥ the packages' sum; the rest is unattributed).
    pub host_uj: u64,
    /// Per process CPU time in this tick.
    pub tasks: &'a [TaskDelta],
    /// Idle ns per CPU in this tick.
    pub idle_ns: &'a [u64],
    /// ns the kernel side lost in this tick (not per CPU: spread over CPUs by count).
    pub lost_ns: u64,
    /// Idle policy.
    pub policy: IdlePolicy,
}

/// One tick's attribution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickAttribution {
    /// Host energy in the tick.
    pub total_uj: u64,
    /// Given to processes.
    pub attributed_uj: u64,
    /// Given to idle CPU time.
    pub idle_uj: u64,
    /// Energy with no CPU-time basis.
    pub unattributed_uj: u64,
    /// Per process, same order as the input tasks.
    pub per_task_uj: Vec<(ProcessId, u64)>,
    /// Busy CPU ns of all processes in the tick (the denominator of allocation ratios).
    pub busy_ns: u64,
}

impl TickAttribution {
    /// `total == attributed + idle + unattributed` and the per-process sum is `attributed`.
    pub fn conserves(&self) -> bool {
        let per_task: u128 = self.per_task_uj.iter().map(|(_, e)| u128::from(*e)).sum();
        per_task == u128::from(self.attributed_uj)
            && u128::from(self.total_uj)
                == u128::from(self.attributed_uj)
                    + u128::from(self.idle_uj)
                    + u128::from(self.unattributed_uj)
    }
}

/// Attributes one tick.
pub fn attribute(input: &TickInput<'_>) -> TickAttribution {
    let ncpus_total: u64 = input.packages.iter().map(|p| p.cpus.len() as u64).sum();
    let mut per_task = vec![0u64; input.tasks.len()];
    let (mut idle_uj, mut unattributed_uj, mut pkg_sum) = (0u64, 0u64, 0u64);
    for pkg in input.packages {
        pkg_sum = pkg_sum.saturating_add(pkg.energy_uj);
        if pkg.no_basis {
            unattributed_uj += pkg.energy_uj;
            continue;
        }
        let on_pkg = |per_cpu: &[u64]| -> u64 {
            pkg.cpus
                .iter()
                .filter_map(|&c| per_cpu.get(c as usize))
                .fold(0u64, |a, &b| a.saturating_add(b))
        };
        // Weights: every process, then idle, then lost (this package's share by CPU count).
        let mut weights: Vec<u64> = input.tasks.iter().map(|t| on_pkg(&t.per_cpu_ns)).collect();
        let busy: u64 = weights.iter().fold(0u64, |a, &b| a.saturating_add(b));
        let idle = on_pkg(input.idle_ns);
        let lost = if ncpus_total == 0 {
            0
        } else {
            ((u128::from(input.lost_ns) * pkg.cpus.len() as u128) / u128::from(ncpus_total)) as u64
        };
        let (idle_w, lost_w) = match input.policy {
            // Spread: idle time's energy goes to the processes, unless none ran.
            IdlePolicy::Spread if busy > 0 => (0, lost),
            _ => (idle, lost),
        };
        weights.push(idle_w);
        weights.push(lost_w);
        let shares = split::largest_remainder(pkg.energy_uj, &weights);
        let n = input.tasks.len();
        for (slot, share) in per_task.iter_mut().zip(&shares[..n]) {
            *slot += share;
        }
        idle_uj += shares[n];
        unattributed_uj += shares[n + 1];
        // No time at all on this package: nothing to split by.
        if weights.iter().all(|&w| w == 0) {
            unattributed_uj += pkg.energy_uj;
        }
    }
    let total_uj = input.host_uj.max(pkg_sum);
    unattributed_uj += total_uj - pkg_sum;
    let attributed_uj = per_task.iter().sum();
    TickAttribution {
        total_uj,
        attributed_uj,
        idle_uj,
        unattributed_uj,
        per_task_uj: input.tasks.iter().map(|t| t.id).zip(per_task).collect(),
        busy_ns: input
            .tasks
            .iter()
            .map(TaskDelta::total_ns)
            .fold(0u64, u64::saturating_add),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
