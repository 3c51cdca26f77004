//! The state store: cumulative per-process and host figures, updated once per tick (pure).
//!
//! The tick loop applies each tick's CPU deltas and attribution; the server reads. Exited
//! processes stay queryable for a retention window. For recent power, each process keeps its
//! energy of the last [`RING`] ticks in a ring indexed by tick number.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
};

use serde::Serialize;

use crate::{
    attribution::TickAttribution,
    tasks::{ExitInfo, FastMap, ProcessId, delta::TickDelta},
};

/// When an exited process leaves the store: ordered so that a `BinaryHeap` pops the earliest.
#[derive(Clone, Copy, Debug)]
struct Expiry {
    at_unix: f64,
    id: ProcessId,
}

impl PartialEq for Expiry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Expiry {}

impl PartialOrd for Expiry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Expiry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the earliest expiry is the heap's greatest element.
        other
            .at_unix
            .total_cmp(&self.at_unix)
            .then_with(|| other.id.cmp(&self.id))
    }
}

/// Ticks of recent energy kept per process (1 s at 10 Hz).
pub const RING: usize = 10;

/// Metadata of a process the tick loop learns on first sight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcMeta {
    /// Its name.
    pub comm: String,
    /// Its real uid (`u32::MAX` where unknown).
    pub uid: u32,
    /// Its parent's PID (0 where unknown).
    pub ppid: u32,
}

/// One process's cumulative figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcRecord {
    /// Which process.
    pub id: ProcessId,
    /// Name.
    pub comm: String,
    /// Real uid.
    pub uid: u32,
    /// Parent PID when first seen (at exit for processes first seen exiting).
    pub ppid: u32,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// On-CPU ns since the agent first saw it.
    pub cpu_time_ns: u64,
    /// Energy attributed to it, µJ.
    pub energy_uj: u64,
    /// Host busy CPU ns when it was first seen (base of its allocation ratio).
    pub host_busy_base_ns: u64,
    /// Start, Unix seconds.
    pub started_unix: f64,
    /// Exit, Unix seconds.
    pub exited_unix: Option<f64>,
    ring_uj: [u64; RING],
    ring_tick: [u64; RING],
}

impl ProcRecord {
    /// Energy over the last [`RING`] ticks ending at `tick`.
    pub fn recent_uj(&self, tick: u64) -> u64 {
        self.ring_uj
            .iter()
            .zip(&self.ring_tick)
            .filter(|&(_, &t)| t + (RING as u64) > tick && t <= tick)
            .map(|(&e, _)| e)
            .sum()
    }

    /// The fields every answer and record about one process carries: identity, owner, parent,
    /// cgroup, cumulative CPU time and energy, start and exit.
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({
            "pid": self.id.pid,
            "start_boottime_ns": self.id.start_boottime_ns,
            "comm": self.comm,
            "uid": self.uid,
            "ppid": self.ppid,
            "cgroup": self.cgroup_id,
            "cpu_time_ns": self.cpu_time_ns,
            "energy_uj": self.energy_uj,
            "started": self.started_unix,
            "exited": self.exited_unix,
        });
        match v {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// Share of the host's busy CPU time since first seen, in [0, 1].
    pub fn allocation_ratio(&self, host_busy_ns: u64) -> f64 {
        let window = host_busy_ns.saturating_sub(self.host_busy_base_ns);
        if window == 0 {
            return 0.0;
        }
        (self.cpu_time_ns as f64 / window as f64).clamp(0.0, 1.0)
    }
}

/// Host energy totals, µJ, cumulative since the agent started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EnergyTotals {
    /// All host energy.
    pub total_uj: u64,
    /// Given to processes.
    pub attributed_uj: u64,
    /// Given to idle time.
    pub idle_uj: u64,
    /// Without a CPU-time basis.
    pub unattributed_uj: u64,
}

/// One zone as served.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ZoneView {
    /// Zone name (`package-0`, `dram`, …).
    pub name: String,
    /// Zone kind.
    pub kind: String,
    /// Package index.
    pub package: Option<u32>,
    /// Cumulative µJ since start.
    pub energy_uj: u64,
    /// Unreadable now.
    pub stale: bool,
}

/// Clock conversions for one tick: monotonic and boot-time instants to Unix seconds.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    /// Unix seconds now.
    pub unix_now: f64,
    /// CLOCK_MONOTONIC ns now.
    pub mono_now_ns: u64,
    /// CLOCK_BOOTTIME ns now.
    pub boot_now_ns: u64,
}

impl Clocks {
    /// Unix time of a CLOCK_MONOTONIC instant.
    pub fn mono_to_unix(&self, ns: u64) -> f64 {
        self.unix_now - (self.mono_now_ns as f64 - ns as f64) / 1e9
    }
    /// Unix time of a CLOCK_BOOTTIME instant.
    pub fn boot_to_unix(&self, ns: u64) -> f64 {
        self.unix_now - (self.boot_now_ns as f64 - ns as f64) / 1e9
    }
}

/// Everything the server reads.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Processes by identity.
    pub procs: FastMap<ProcessId, ProcRecord>,
    /// Newest process per PID.
    pub by_pid: FastMap<u32, ProcessId>,
    /// Host totals.
    pub energy: EnergyTotals,
    /// Host busy CPU ns (all processes), cumulative.
    pub host_busy_ns: u64,
    /// Zones.
    pub zones: Vec<ZoneView>,
    /// Ticks applied.
    pub tick: u64,
    /// Unix time of the last tick applied.
    pub at_unix: f64,
    /// Relative standard uncertainty of the energy source.
    pub uncertainty_rel: f64,
    /// Exited processes are dropped this many seconds after exit.
    pub retention_s: f64,
    /// Host telemetry (CPU, memory, GPU) as of the last tick.
    pub telemetry: std::sync::Arc<crate::telemetry::TelemetryView>,
    /// Exited processes by expiry: a tick removes only what expired, never scans the store.
    expiries: BinaryHeap<Expiry>,
}

impl Store {
    /// An empty store keeping exited processes for `retention_s`.
    pub fn new(retention_s: f64) -> Store {
        Store {
            retention_s,
            ..Store::default()
        }
    }

    /// Applies one tick. `meta` is asked for the comm and uid of processes seen the first time
    /// (the exit record's are used for processes first seen at exit).
    pub fn apply(
        &mut self,
        clocks: &Clocks,
        delta: &TickDelta,
        attr: &TickAttribution,
        meta: &mut dyn FnMut(ProcessId) -> ProcMeta,
    ) {
        self.tick += 1;
        self.at_unix = clocks.mono_to_unix(delta.to_ns);
        self.energy.total_uj += attr.total_uj;
        self.energy.attributed_uj += attr.attributed_uj;
        self.energy.idle_uj += attr.idle_uj;
        self.energy.unattributed_uj += attr.unattributed_uj;
        let base = self.host_busy_ns;
        self.host_busy_ns += attr.busy_ns;
        let exits: FastMap<ProcessId, &ExitInfo> = delta.exited.iter().map(|e| (e.id, e)).collect();
        let now_tick = self.tick;
        let slot = (now_tick % RING as u64) as usize;
        for (t, (id, uj)) in delta.tasks.iter().zip(&attr.per_task_uj) {
            let rec = self.record(*id, clocks, base, exits.get(id).copied(), meta);
            rec.cpu_time_ns += t.total_ns();
            rec.energy_uj += uj;
            if t.cgroup_id != 0 {
                rec.cgroup_id = t.cgroup_id;
            }
            rec.ring_uj[slot] = *uj;
            rec.ring_tick[slot] = now_tick;
        }
        for e in &delta.exited {
            let exited = clocks.mono_to_unix(e.exit_monotonic_ns);
            let retention_s = self.retention_s;
            let rec = self.record(e.id, clocks, base, Some(e), meta);
            let first_exit = rec.exited_unix.is_none();
            rec.exited_unix = Some(exited);
            // A process first seen live may have been gone before /proc could be read: the
            // kernel's exit record fills in what is still unknown.
            if rec.ppid == 0 {
                rec.ppid = e.ppid;
            }
            if rec.comm.is_empty() {
                rec.comm.clone_from(&e.comm);
            }
            if rec.uid == u32::MAX {
                rec.uid = e.uid;
            }
            if first_exit {
                self.expiries.push(Expiry {
                    at_unix: exited + retention_s,
                    id: e.id,
                });
            }
        }
        // Drop exited processes past retention (exited strictly before now − retention).
        while let Some(next) = self.expiries.peek().copied() {
            if next.at_unix >= self.at_unix {
                break;
            }
            self.expiries.pop();
            self.procs.remove(&next.id);
            if self.by_pid.get(&next.id.pid) == Some(&next.id) {
                self.by_pid.remove(&next.id.pid);
            }
        }
    }

    fn record(
        &mut self,
        id: ProcessId,
        clocks: &Clocks,
        base: u64,
        exit: Option<&ExitInfo>,
        meta: &mut dyn FnMut(ProcessId) -> ProcMeta,
    ) -> &mut ProcRecord {
        let newest = self.by_pid.entry(id.pid).or_insert(id);
        if newest.start_boottime_ns < id.start_boottime_ns {
            *newest = id;
        }
        self.procs.entry(id).or_insert_with(|| {
            let m = match exit {
                Some(e) => ProcMeta {
                    comm: e.comm.clone(),
                    uid: e.uid,
                    ppid: e.ppid,
                },
                None => meta(id),
            };
            ProcRecord {
                id,
                comm: m.comm,
                uid: m.uid,
                ppid: m.ppid,
                cgroup_id: exit.map_or(0, |e| e.cgroup_id),
                cpu_time_ns: 0,
                energy_uj: 0,
                host_busy_base_ns: base,
                started_unix: clocks.boot_to_unix(id.start_boottime_ns),
                exited_unix: None,
                ring_uj: [0; RING],
                ring_tick: [0; RING],
            }
        })
    }

    /// `root` and all its descendants (by parent PID, each started no earlier than its
    /// parent, so a reused PID does not pull in strangers), live or exited.
    pub fn tree(&self, root: ProcessId) -> Vec<&ProcRecord> {
        let mut children: HashMap<u32, Vec<&ProcRecord>> = HashMap::new();
        for r in self.procs.values() {
            children.entry(r.ppid).or_default().push(r);
        }
        let mut out = Vec::new();
        let mut stack: Vec<(u32, u64)> = vec![(root.pid, root.start_boottime_ns)];
        if let Some(r) = self.procs.get(&root) {
            out.push(r);
        }
        let mut seen = std::collections::HashSet::new();
        while let Some((pid, start)) = stack.pop() {
            for c in children.get(&pid).into_iter().flatten() {
                if c.id != root && c.id.start_boottime_ns >= start && seen.insert(c.id) {
                    out.push(c);
                    stack.push((c.id.pid, c.id.start_boottime_ns));
                }
            }
        }
        out
    }

    /// The newest process with this PID.
    pub fn by_pid(&self, pid: u32) -> Option<&ProcRecord> {
        self.by_pid.get(&pid).and_then(|id| self.procs.get(id))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
