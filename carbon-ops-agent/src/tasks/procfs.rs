//! Per-process CPU accounting by polling `/proc` (the fallback, and the baseline eBPF beats).
//!
//! Each snapshot reads `<root>/stat` (idle time per CPU) and `<root>/<pid>/stat` for every
//! process. Its limits are structural, and why eBPF is the default: times are in clock ticks
//! (10 ms at `USER_HZ` 100); the split across CPUs is unknown, so each poll's increase is put
//! on the CPU the process last ran on (field 39); and a process that starts and ends between
//! two polls is never seen. A process that disappears is reported as exited at the poll that
//! no longer finds it, with its last seen time.

use std::{collections::HashMap, fs, path::PathBuf};

use super::{
    AttributionMode, ExitInfo, LossCounters, ProcessId, Snapshot, TaskSample, TaskStats,
    TaskStatsError,
};

/// The fields of `/proc/<pid>/stat` carbon-ops uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidStat {
    /// Field 1.
    pub pid: u32,
    /// Field 2, without its parentheses (it may hold spaces and parentheses itself).
    pub comm: String,
    /// Field 4: parent PID.
    pub ppid: u32,
    /// Fields 14 + 15: user + system time of all threads, in clock ticks.
    pub cpu_ticks: u64,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
    /// Field 39: the CPU it last ran on.
    pub processor: usize,
}

/// Parses one `/proc/<pid>/stat` line.
pub fn parse_pid_stat(text: &str) -> Result<PidStat, String> {
    let open = text.find('(').ok_or("no `(` before comm")?;
    let close = text.rfind(')').ok_or("no `)` after comm")?;
    if close < open {
        return Err("`)` before `(`".into());
    }
    let pid = text[..open]
        .trim()
        .parse()
        .map_err(|_| "pid is not a number")?;
    let comm = text[open + 1..close].to_owned();
    // Field 3 is at index 0 of `rest`.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        rest.get(n - 3)
            .ok_or_else(|| format!("missing field {n}"))?
            .parse::<u64>()
            .map_err(|_| format!("field {n} is not a number"))
    };
    Ok(PidStat {
        pid,
        comm,
        ppid: field(4)? as u32,
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        start_ticks: field(22)?,
        processor: field(39)? as usize,
    })
}

/// Parses `/proc/stat`: idle + iowait ticks per CPU, indexed by CPU number.
pub fn parse_proc_stat_idle(text: &str) -> Result<Vec<u64>, String> {
    let mut idle = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        // `cpuN ...`; the aggregate line is `cpu  ...` (no number right after `cpu`).
        let Some((num, tail)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        let Ok(cpu) = num.parse::<usize>() else {
            continue;
        };
        let parts = tail.split_whitespace();
        let nums: Vec<u64> = parts.map(|p| p.parse().unwrap_or(0)).collect();
        if nums.len() < 5 {
            return Err(format!(
                "cpu{cpu} line has {} fields, expected ≥ 5",
                nums.len()
            ));
        }
        if idle.len() <= cpu {
            idle.resize(cpu + 1, 0);
        }
        idle[cpu] = nums[3] + nums[4];
    }
    if idle.is_empty() {
        return Err("no cpuN lines".into());
    }
    Ok(idle)
}

struct Known {
    per_cpu_ns: Vec<u64>,
    total_ticks: u64,
    comm: String,
    uid: u32,
    ppid: u32,
}

/// `TaskStats` from `/proc` polling.
pub struct ProcfsTaskStats {
    root: PathBuf,
    ns_per_tick: u64,
    known: HashMap<ProcessId, Known>,
}

impl ProcfsTaskStats {
    /// Reads `root` (normally `/proc`) with the kernel's `USER_HZ` (`clk_tck`, normally 100).
    pub fn new(root: impl Into<PathBuf>, clk_tck: u64) -> ProcfsTaskStats {
        ProcfsTaskStats {
            root: root.into(),
            ns_per_tick: 1_000_000_000 / clk_tck.max(1),
            known: HashMap::new(),
        }
    }

    /// For the real `/proc` with the running kernel's `USER_HZ`.
    pub fn system() -> ProcfsTaskStats {
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcfsTaskStats::new("/proc", u64::try_from(tck).unwrap_or(100))
    }

    fn read(&self, rel: &str) -> Result<String, TaskStatsError> {
        let path = self.root.join(rel);
        fs::read_to_string(&path).map_err(|source| TaskStatsError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

impl TaskStats for ProcfsTaskStats {
    fn mode(&self) -> AttributionMode {
        AttributionMode::Procfs
    }

    fn snapshot(&mut self, at_ns: u64) -> Result<Snapshot, TaskStatsError> {
        let stat = self.read("stat")?;
        let idle_ticks = parse_proc_stat_idle(&stat).map_err(|what| TaskStatsError::Parse {
            path: self.root.join("stat").display().to_string(),
            what,
        })?;
        let ncpus = idle_ticks.len();
        let dir = fs::read_dir(&self.root).map_err(|source| TaskStatsError::Io {
            path: self.root.display().to_string(),
            source,
        })?;
        let mut seen = HashMap::with_capacity(self.known.len());
        let mut changed = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name();
            if !name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            {
                continue;
            }
            // A process may vanish between readdir and read: that is an exit, not an error.
            let Ok(text) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Ok(ps) = parse_pid_stat(&text) else {
                continue;
            };
            let id = ProcessId {
                pid: ps.pid,
                start_boottime_ns: ps.start_ticks.saturating_mul(self.ns_per_tick),
            };
            let is_new = !self.known.contains_key(&id);
            let mut known = self.known.remove(&id).unwrap_or_else(|| Known {
                per_cpu_ns: vec![0; ncpus],
                total_ticks: 0,
                comm: ps.comm.clone(),
                uid: uid_of(&entry.path()),
                ppid: ps.ppid,
            });
            let grown = ps.cpu_ticks.saturating_sub(known.total_ticks);
            known.total_ticks = known.total_ticks.max(ps.cpu_ticks);
            let cpu = ps.processor.min(ncpus.saturating_sub(1));
            if let Some(slot) = known.per_cpu_ns.get_mut(cpu) {
                *slot = slot.saturating_add(grown.saturating_mul(self.ns_per_tick));
            }
            if is_new || grown > 0 {
                changed.push(id);
            }
            seen.insert(id, known);
        }
        let mut tasks: Vec<TaskSample> = Vec::with_capacity(seen.len() + self.known.len());
        let mut exited = Vec::new();
        // Whatever is left in `known` was not found this time: it exited.
        for (id, k) in self.known.drain() {
            exited.push(ExitInfo {
                id,
                exit_monotonic_ns: at_ns,
                uid: k.uid,
                ppid: k.ppid,
                comm: k.comm,
                cgroup_id: 0,
            });
            tasks.push(TaskSample {
                id,
                per_cpu_ns: k.per_cpu_ns,
                switches: 0,
                cgroup_id: 0,
            });
        }
        // Only what moved (or is new): a process absent from a snapshot is unchanged.
        for id in changed {
            if let Some(k) = seen.get(&id) {
                tasks.push(TaskSample {
                    id,
                    per_cpu_ns: k.per_cpu_ns.clone(),
                    switches: 0,
                    cgroup_id: 0,
                });
            }
        }
        self.known = seen;
        Ok(Snapshot {
            at_ns,
            ncpus,
            tasks,
            idle_ns: idle_ticks
                .iter()
                .map(|t| t.saturating_mul(self.ns_per_tick))
                .collect(),
            exited,
            lost: LossCounters::default(),
        })
    }
}

fn uid_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// Process metadata for a live process, read on demand: (comm, uid, ppid).
pub fn live_meta(proc_root: &std::path::Path, pid: u32) -> Option<(String, u32, u32)> {
    let dir = proc_root.join(pid.to_string());
    let text = fs::read_to_string(dir.join("stat")).ok()?;
    let ps = parse_pid_stat(&text).ok()?;
    Some((ps.comm, uid_of(&dir), ps.ppid))
}

#[cfg(test)]
#[path = "procfs_tests.rs"]
mod tests;
