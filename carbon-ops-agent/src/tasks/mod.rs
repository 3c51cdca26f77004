//! Per-process CPU accounting: what each process ran on each CPU, read once per tick.
//!
//! A [`TaskStats`] returns one consistent, cumulative [`Snapshot`] for a given tick instant.
//! Three implementations: the eBPF reader ([`crate::ebpf::EbpfTaskStats`], exact, catches
//! processes that live less than a tick), [`procfs::ProcfsTaskStats`] (polls `/proc`, the
//! fallback where eBPF cannot load and the baseline eBPF is measured against) and
//! [`fake::FakeTaskStats`] for unit tests. [`delta::Differ`] turns successive snapshots into
//! per-tick deltas for attribution.

pub mod delta;
pub mod fake;
pub mod procfs;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How CPU time is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributionMode {
    /// Scheduler tracepoints: exact per-CPU time, short-lived processes included.
    Ebpf,
    /// `/proc` polling: clock-tick resolution, misses processes that start and end between polls.
    Procfs,
}

impl AttributionMode {
    /// The name used in the protocol and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionMode::Ebpf => "ebpf",
            AttributionMode::Procfs => "procfs",
        }
    }
}

/// A hash map keyed by process identities or PIDs, which come from the kernel, not from
/// clients: a fast hasher (foldhash, randomly seeded) instead of SipHash, because the agent
/// looks up every process that ran in every tick.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Identity of a process: its PID and its start time, so that a reused PID is a new process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessId {
    /// Thread-group id.
    pub pid: u32,
    /// Start time of the process in ns since boot (suspend included; the clock of field 22 of
    /// `/proc/<pid>/stat`). Clock-tick resolution in procfs mode.
    pub start_boottime_ns: u64,
}

/// One process in a snapshot: cumulative on-CPU time per CPU since accounting began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSample {
    /// Which process.
    pub id: ProcessId,
    /// Cumulative on-CPU ns, indexed by CPU number.
    pub per_cpu_ns: Vec<u64>,
    /// Cumulative number of switch-outs (0 where unknown).
    pub switches: u64,
    /// cgroup v2 id (0 where unknown).
    pub cgroup_id: u64,
}

impl TaskSample {
    /// Total on-CPU ns over all CPUs.
    pub fn total_ns(&self) -> u64 {
        self.per_cpu_ns
            .iter()
            .fold(0u64, |a, &b| a.saturating_add(b))
    }
}

/// A process that ended; its sample in the same snapshot holds its final value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// Which process.
    pub id: ProcessId,
    /// CLOCK_MONOTONIC ns at exit (the snapshot's instant in procfs mode, where exit is unseen).
    pub exit_monotonic_ns: u64,
    /// Real uid at exit (`u32::MAX` where unknown).
    pub uid: u32,
    /// Parent's PID at exit (0 where unknown).
    pub ppid: u32,
    /// Name of the exiting thread.
    pub comm: String,
    /// cgroup v2 id at exit.
    pub cgroup_id: u64,
}

/// Losses the accounting itself reports (never silent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossCounters {
    /// Slices not stored because the process table was full.
    pub task_insert_failed: u64,
    /// Nanoseconds in those slices.
    pub task_lost_ns: u64,
    /// Exits not recorded because the exit table was full.
    pub exit_insert_failed: u64,
    /// Failed kernel memory reads.
    pub read_failed: u64,
}

/// Cumulative CPU accounting at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The tick instant (CLOCK_MONOTONIC ns) at which running slices were closed.
    pub at_ns: u64,
    /// Number of CPU slots in every `per_cpu_ns` and in `idle_ns`.
    pub ncpus: usize,
    /// The processes whose counters moved since the previous snapshot of the same source (all
    /// of them in the first), and every process in `exited`. A process absent is unchanged.
    pub tasks: Vec<TaskSample>,
    /// Cumulative idle ns per CPU.
    pub idle_ns: Vec<u64>,
    /// Processes whose final values are in this snapshot; they are absent from the next one.
    pub exited: Vec<ExitInfo>,
    /// Cumulative losses.
    pub lost: LossCounters,
}

/// What went wrong taking a snapshot.
#[derive(Debug, Error)]
pub enum TaskStatsError {
    /// A map could not be read.
    #[error("failed to read eBPF map `{map}`")]
    Map {
        /// The map.
        map: &'static str,
        /// The cause.
        #[source]
        source: aya::maps::MapError,
    },
    /// A file under the procfs root could not be read.
    #[error("failed to read {path}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file had an unexpected format.
    #[error("failed to parse {path}: {what}")]
    Parse {
        /// The path.
        path: String,
        /// What was wrong.
        what: String,
    },
}

/// A source of per-process CPU accounting.
pub trait TaskStats: Send {
    /// How this source measures.
    fn mode(&self) -> AttributionMode;
    /// Cumulative accounting with every running slice closed at `at_ns` (CLOCK_MONOTONIC).
    fn snapshot(&mut self, at_ns: u64) -> Result<Snapshot, TaskStatsError>;
}

/// CLOCK_MONOTONIC now, in ns: the clock of `bpf_ktime_get_ns()` and of the tick instants.
pub fn monotonic_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_BOOTTIME now, in ns: the clock of process start times.
pub fn boottime_now_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks exist on every supported kernel.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}
