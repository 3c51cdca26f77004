//! Differencing of cumulative snapshots into per-tick deltas (pure).
//!
//! Snapshots are cumulative per (process, CPU) and list only the processes whose counters moved
//! since the previous snapshot (a process absent from a snapshot is unchanged). A tick's delta
//! is `current − previous` for every process listed (a process seen for the first time
//! contributes all its time). Processes listed as exited are forgotten after their final delta. A value that
//! goes backwards (which the reading order is designed to prevent) contributes zero and is
//! counted in `regressions`, so it is visible and never negative.

use super::{ExitInfo, FastMap, ProcessId, Snapshot};

/// One process's CPU time in one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDelta {
    /// Which process.
    pub id: ProcessId,
    /// On-CPU ns in this tick, per CPU.
    pub per_cpu_ns: Vec<u64>,
    /// cgroup v2 id.
    pub cgroup_id: u64,
}

impl TaskDelta {
    /// Total ns over all CPUs.
    pub fn total_ns(&self) -> u64 {
        self.per_cpu_ns
            .iter()
            .fold(0u64, |a, &b| a.saturating_add(b))
    }
}

/// CPU accounting of one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickDelta {
    /// Instant of the previous snapshot (CLOCK_MONOTONIC ns; equal to `to_ns` on the first).
    pub from_ns: u64,
    /// Instant of this snapshot.
    pub to_ns: u64,
    /// Processes that ran in this tick (zero deltas omitted).
    pub tasks: Vec<TaskDelta>,
    /// Idle ns per CPU in this tick.
    pub idle_ns: Vec<u64>,
    /// Processes that ended, final values included in `tasks`.
    pub exited: Vec<ExitInfo>,
    /// ns lost by the kernel side in this tick (tables full).
    pub lost_ns: u64,
    /// Number of (process, CPU) values that went backwards in this tick.
    pub regressions: u64,
}

/// Keeps the previous snapshot's values and differences the next one against them.
#[derive(Debug, Default)]
pub struct Differ {
    prev: FastMap<ProcessId, Vec<u64>>,
    prev_idle: Vec<u64>,
    prev_at: Option<u64>,
    prev_lost_ns: u64,
}

fn sub_each(cur: &[u64], prev: Option<&Vec<u64>>, regressions: &mut u64) -> Vec<u64> {
    cur.iter()
        .enumerate()
        .map(|(cpu, &c)| {
            let p = prev.and_then(|p| p.get(cpu)).copied().unwrap_or(0);
            if c < p {
                *regressions += 1;
            }
            c.saturating_sub(p)
        })
        .collect()
}

impl Differ {
    /// A differ with no history: the first snapshot's values count in full.
    pub fn new() -> Differ {
        Differ::default()
    }

    /// The delta from the previous snapshot to `snap`.
    pub fn diff(&mut self, snap: &Snapshot) -> TickDelta {
        let mut regressions = 0;
        let mut tasks = Vec::with_capacity(snap.tasks.len());
        for t in &snap.tasks {
            let per_cpu_ns = sub_each(&t.per_cpu_ns, self.prev.get(&t.id), &mut regressions);
            if per_cpu_ns.iter().any(|&v| v > 0) {
                tasks.push(TaskDelta {
                    id: t.id,
                    per_cpu_ns,
                    cgroup_id: t.cgroup_id,
                });
            }
            // Keep the larger value per CPU, so a regression is never counted twice.
            match self.prev.get_mut(&t.id) {
                Some(p) => {
                    p.resize(t.per_cpu_ns.len().max(p.len()), 0);
                    for (pv, &cv) in p.iter_mut().zip(&t.per_cpu_ns) {
                        *pv = (*pv).max(cv);
                    }
                }
                None => {
                    self.prev.insert(t.id, t.per_cpu_ns.clone());
                }
            }
        }
        for e in &snap.exited {
            self.prev.remove(&e.id);
        }
        let idle_ns = sub_each(&snap.idle_ns, Some(&self.prev_idle), &mut regressions);
        let lost_ns = snap.lost.task_lost_ns.saturating_sub(self.prev_lost_ns);
        let from_ns = self.prev_at.unwrap_or(snap.at_ns);
        self.prev_idle = snap.idle_ns.clone();
        self.prev_at = Some(snap.at_ns);
        self.prev_lost_ns = snap.lost.task_lost_ns;
        TickDelta {
            from_ns,
            to_ns: snap.at_ns,
            tasks,
            idle_ns,
            exited: snap.exited.clone(),
            lost_ns,
            regressions,
        }
    }
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
