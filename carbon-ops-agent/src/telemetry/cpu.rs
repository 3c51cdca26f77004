//! CPU telemetry: per-CPU and host utilisation over a window from `/proc/stat`, and the
//! current frequency from `cpufreq` where the kernel exposes it.
//!
//! [`parse_proc_stat`] is a pure parser of the `cpu`/`cpuN` lines (jiffies), [`utilisation`]
//! a pure differ of two snapshots. Busy time is `user + nice + system + irq + softirq + steal`
//! (guest time is already inside user/nice and is not counted twice); idle is `idle + iowait`.
//! A CPU whose counters went back (hotplug, a reset) or did not advance has no utilisation in
//! that window (`None`), never a made-up 0. Frequency is read from
//! `<cpu sysfs root>/cpuN/cpufreq/scaling_cur_freq` (kHz); where that file is absent (VMs,
//! containers, this build machine) it is reported as unavailable with the reason, never as 0.

use std::path::Path;

use serde::Serialize;

use super::TelemetryError;

/// Jiffy counters of one CPU line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuTimes {
    /// Time in user, nice, system, irq, softirq and steal.
    pub busy: u64,
    /// Time in idle and iowait.
    pub idle: u64,
}

impl CpuTimes {
    /// `busy + idle`.
    pub fn total(&self) -> u64 {
        self.busy.saturating_add(self.idle)
    }
}

/// One reading of `/proc/stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcStat {
    /// The aggregate `cpu` line.
    pub host: CpuTimes,
    /// `cpuN` lines as `(N, times)`, in file order.
    pub cpus: Vec<(u32, CpuTimes)>,
}

/// Parses the CPU lines of `/proc/stat`. Pure. Needs the aggregate `cpu` line; lines with
/// fewer than the four fields every kernel since 2.6 has are refused.
pub fn parse_proc_stat(text: &str) -> Result<ProcStat, TelemetryError> {
    let mut host = None;
    let mut cpus = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(label) = it.next() else { continue };
        let Some(rest) = label.strip_prefix("cpu") else {
            continue;
        };
        let bad = |why: &str| TelemetryError::Parse {
            what: "/proc/stat",
            line: lineno + 1,
            reason: why.to_owned(),
        };
        let mut f = [0u64; 8];
        let mut n = 0;
        for (slot, field) in f.iter_mut().zip(it.by_ref()) {
            *slot = field
                .parse()
                .map_err(|_| bad(&format!("field `{field}` is not a count")))?;
            n += 1;
        }
        if n < 4 {
            return Err(bad("fewer than four time fields"));
        }
        // user nice system idle iowait irq softirq steal (guest, guest_nice are in user/nice).
        let busy = [f[0], f[1], f[2], f[5], f[6], f[7]]
            .iter()
            .fold(0u64, |a, &b| a.saturating_add(b));
        let times = CpuTimes {
            busy,
            idle: f[3].saturating_add(f[4]),
        };
        if rest.is_empty() {
            host = Some(times);
        } else {
            let idx: u32 = rest
                .parse()
                .map_err(|_| bad(&format!("`{label}` is not cpu<N>")))?;
            cpus.push((idx, times));
        }
    }
    let host = host.ok_or(TelemetryError::Parse {
        what: "/proc/stat",
        line: 0,
        reason: "no aggregate `cpu` line".to_owned(),
    })?;
    Ok(ProcStat { host, cpus })
}

/// Reads and parses `<proc_root>/stat`.
pub fn read_proc_stat(proc_root: &Path) -> Result<ProcStat, TelemetryError> {
    let path = proc_root.join("stat");
    let text = std::fs::read_to_string(&path).map_err(|source| TelemetryError::Read {
        path: path.clone(),
        source,
    })?;
    parse_proc_stat(&text)
}

/// Utilisation of one CPU (or the host) over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuWindow {
    /// Busy jiffies in the window.
    pub busy: u64,
    /// All jiffies in the window.
    pub total: u64,
}

impl CpuWindow {
    /// Busy fraction in `[0, 1]`.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.busy as f64 / self.total as f64
    }
}

fn window(prev: CpuTimes, now: CpuTimes) -> Option<CpuWindow> {
    // A counter that went back (hotplug, reset) or a window with no time has no utilisation.
    if now.busy < prev.busy || now.idle < prev.idle {
        return None;
    }
    let w = CpuWindow {
        busy: now.busy - prev.busy,
        total: now.total() - prev.total(),
    };
    (w.total > 0).then_some(w)
}

/// Host and per-CPU utilisation between two readings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Utilisation {
    /// The host over the window; `None` when no time passed or counters went back.
    pub host: Option<CpuWindow>,
    /// Per CPU present in both readings, by index.
    pub cpus: Vec<(u32, Option<CpuWindow>)>,
}

/// Differences two readings. Pure. CPUs missing from either reading are left out.
pub fn utilisation(prev: &ProcStat, now: &ProcStat) -> Utilisation {
    let cpus = now
        .cpus
        .iter()
        .filter_map(|&(idx, t)| {
            prev.cpus
                .iter()
                .find(|(i, _)| *i == idx)
                .map(|&(_, p)| (idx, window(p, t)))
        })
        .collect();
    Utilisation {
        host: window(prev.host, now.host),
        cpus,
    }
}

/// A CPU's current frequency, or why it is not known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// `scaling_cur_freq`, in kHz.
    Khz(u64),
    /// No reading; the reason.
    Unavailable(String),
}

impl Frequency {
    /// The kHz figure, if any.
    pub fn khz(&self) -> Option<u64> {
        match self {
            Frequency::Khz(k) => Some(*k),
            Frequency::Unavailable(_) => None,
        }
    }
}

/// Reads `<cpu_sysfs_root>/cpu<cpu>/cpufreq/scaling_cur_freq`. Never 0 for "unknown": an
/// absent file, unreadable text or a 0 reading are all `Unavailable` with the reason.
pub fn read_frequency(cpu_sysfs_root: &Path, cpu: u32) -> Frequency {
    let path = cpu_sysfs_root
        .join(format!("cpu{cpu}"))
        .join("cpufreq")
        .join("scaling_cur_freq");
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(0) => Frequency::Unavailable(format!("{} reads 0", path.display())),
            Ok(k) => Frequency::Khz(k),
            Err(_) => Frequency::Unavailable(format!(
                "{} holds `{}`, not a kHz count",
                path.display(),
                text.trim()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Frequency::Unavailable(format!(
            "no cpufreq for cpu{cpu} ({} is absent: no cpufreq driver, e.g. in a VM)",
            path.display()
        )),
        Err(e) => Frequency::Unavailable(format!("cannot read {}: {e}", path.display())),
    }
}
