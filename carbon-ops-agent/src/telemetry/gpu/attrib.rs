//! Per-process GPU attribution for one device and one window (pure, integer µJ).
//!
//! 1. Energy that spans more than this window (the first reading after a stale gap) has no
//!    basis in it: all `unattributed`.
//! 2. The device's own utilisation (`utilization.gpu`, percent of the period a kernel ran)
//!    splits the energy into an active part and an `idle` part (largest remainder over
//!    `[u, 100 − u]`), as idle CPU time goes to the idle bucket. Where the device does not
//!    report utilisation, the whole energy is treated as active.
//! 3. The active part is split between processes by the sum of their SM utilisation samples
//!    in the window (`nvmlDeviceGetProcessUtilization`). Where there are no samples with SM
//!    activity (MIG, vGPU, drivers that do not sample, or samples dropped) the fallback is
//!    each running process's share of framebuffer memory (the meter first carries the last
//!    window's samples for up to a second, since NVML samples less often than the tick); with no memory figures either, the
//!    active part is `unattributed`. The basis used is reported.
//!
//! Every split is [`largest_remainder`], so `total = attributed + idle + unattributed` and
//! `Σ per_pid = attributed` hold exactly.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{GpuProcess, ProcessSample};
use crate::attribution::split::largest_remainder;

/// What one window of one device is split by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Per-process SM utilisation samples taken in the window.
    SmSamples,
    /// No new sample in this window: the previous window's samples, carried for at most
    /// [`super::meter::SAMPLE_CARRY_NS`] (NVML samples per process less often than the tick).
    SmSamplesCarried,
    /// Share of framebuffer memory of the running processes (fallback).
    MemoryShare,
    /// Nothing to split by: the active energy is unattributed.
    #[default]
    None,
}

/// One device's window, as attribution needs it.
#[derive(Clone, Copy, Debug)]
pub struct DeviceWindow<'a> {
    /// Device energy in the window, µJ.
    pub energy_uj: u64,
    /// The energy covers more than this window (recovered after a gap): no basis.
    pub no_basis: bool,
    /// Device utilisation, percent (values above 100 are read as 100).
    pub gpu_util_pct: Option<u32>,
    /// SM samples taken in the window (duplicates of one `(pid, timestamp)` count once).
    pub samples: &'a [ProcessSample],
    /// Processes holding a context at the end of the window.
    pub processes: &'a [GpuProcess],
    /// `samples` are an earlier window's, carried because this one has none.
    pub carried: bool,
}

/// One device's window, split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GpuAttribution {
    /// Device energy in the window, µJ.
    pub total_uj: u64,
    /// Given to processes.
    pub attributed_uj: u64,
    /// The device's idle share.
    pub idle_uj: u64,
    /// Energy with no basis to split by.
    pub unattributed_uj: u64,
    /// Per process, by pid ascending; only non-zero weights appear.
    pub per_pid: Vec<(u32, u64)>,
    /// What the active part was split by.
    pub basis: Basis,
}

impl GpuAttribution {
    /// `total = attributed + idle + unattributed` and `Σ per_pid = attributed`.
    pub fn conserves(&self) -> bool {
        let per: u128 = self.per_pid.iter().map(|&(_, e)| u128::from(e)).sum();
        per == u128::from(self.attributed_uj)
            && u128::from(self.total_uj)
                == u128::from(self.attributed_uj)
                    + u128::from(self.idle_uj)
                    + u128::from(self.unattributed_uj)
    }
}

/// Per-pid SM weight: the sum of its samples' SM percent, each `(pid, timestamp)` once.
pub fn sm_weights(samples: &[ProcessSample]) -> BTreeMap<u32, u64> {
    let mut seen = BTreeMap::new();
    for s in samples {
        seen.insert((s.pid, s.timestamp_us), u64::from(s.sm_util_pct.min(100)));
    }
    let mut w: BTreeMap<u32, u64> = BTreeMap::new();
    for ((pid, _), sm) in seen {
        *w.entry(pid).or_default() += sm;
    }
    w.retain(|_, v| *v > 0);
    w
}

/// Per-pid memory weight of the running processes.
pub fn memory_weights(processes: &[GpuProcess]) -> BTreeMap<u32, u64> {
    let mut w: BTreeMap<u32, u64> = BTreeMap::new();
    for p in processes {
        if let Some(m) = p.used_memory_bytes.filter(|&m| m > 0) {
            let e = w.entry(p.pid).or_default();
            *e = e.saturating_add(m);
        }
    }
    w
}

/// Splits one device's window. Pure; conserves exactly.
pub fn split_device(win: &DeviceWindow<'_>) -> GpuAttribution {
    let total = win.energy_uj;
    let mut out = GpuAttribution {
        total_uj: total,
        ..GpuAttribution::default()
    };
    if win.no_basis {
        out.unattributed_uj = total;
        return out;
    }
    let active = match win.gpu_util_pct {
        Some(u) => {
            let u = u64::from(u.min(100));
            let parts = largest_remainder(total, &[u, 100 - u]);
            out.idle_uj = parts[1];
            parts[0]
        }
        None => total,
    };
    let (basis, weights) = {
        let sm = sm_weights(win.samples);
        if sm.is_empty() {
            let mem = memory_weights(win.processes);
            if mem.is_empty() {
                (Basis::None, mem)
            } else {
                (Basis::MemoryShare, mem)
            }
        } else if win.carried {
            (Basis::SmSamplesCarried, sm)
        } else {
            (Basis::SmSamples, sm)
        }
    };
    out.basis = basis;
    if weights.is_empty() {
        out.unattributed_uj = active;
        return out;
    }
    let (pids, w): (Vec<u32>, Vec<u64>) = weights.into_iter().unzip();
    let shares = largest_remainder(active, &w);
    out.attributed_uj = shares.iter().sum();
    out.per_pid = pids.into_iter().zip(shares).collect();
    out
}
