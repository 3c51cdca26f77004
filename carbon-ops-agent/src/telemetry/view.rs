//! The published telemetry: what the server reads to answer `status` and `process`.
//!
//! Updated once per tick by [`super::Telemetry`]; cloned into the server's shared state.
//! Cumulative GPU figures conserve at every instant: per device
//! `energy_uj = attributed_uj + idle_uj + unattributed_uj` and
//! `attributed_uj = Σ per-pid µJ on it + expired_uj` (pids forgotten after the retention).
//! RSS is read from procfs only when `process_json` is called.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    GpuState, PidGpuEnergy,
    cpu::{Frequency, Utilisation},
    gpu::{
        DeviceSample, MigInstance,
        attrib::Basis,
        meter::{EnergyMethod, GpuFlags, GpuTick},
    },
    memory::{MemInfo, read_rss},
};

/// One CPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuEntry {
    pub cpu: u32,
    /// Busy fraction over the last window; `None` before two readings or after a reset.
    pub utilisation: Option<f64>,
    /// kHz, where cpufreq exists.
    pub frequency_khz: Option<u64>,
    /// Why there is no frequency.
    pub frequency_unavailable: Option<String>,
}

/// The CPU section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuView {
    /// Host busy fraction over the last window.
    pub host_utilisation: Option<f64>,
    pub cpus: Vec<CpuEntry>,
    /// The last `/proc/stat` error.
    pub error: Option<String>,
}

/// The memory section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryView {
    pub host: Option<MemInfo>,
    pub error: Option<String>,
    /// Σ RAPL DRAM zones since the agent started; `None` where the host has no DRAM zone.
    pub dram_energy_uj: Option<u64>,
}

/// One GPU, cumulative since the agent started, plus its last window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuDeviceView {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub method: EnergyMethod,
    pub relative_uncertainty: f64,
    pub energy_uj: u64,
    pub attributed_uj: u64,
    pub idle_uj: u64,
    pub unattributed_uj: u64,
    /// Attributed energy of pids forgotten after the retention window.
    pub expired_uj: u64,
    /// Last window.
    pub window_uj: u64,
    pub window_ns: u64,
    pub basis: Basis,
    pub flags: GpuFlags,
    pub stale: bool,
    pub sample: DeviceSample,
    pub mig: Vec<MigInstance>,
    pub errors: Vec<String>,
}

/// The GPU section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuView {
    /// `active`, `unavailable` or `disabled`.
    pub state: &'static str,
    /// Why not active.
    pub reason: Option<String>,
    /// The source, when active.
    pub source: Option<String>,
    pub devices: Vec<GpuDeviceView>,
}

/// Everything the server reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TelemetryView {
    /// procfs root for RSS on demand.
    #[serde(skip)]
    pub proc_root: PathBuf,
    /// The tick instant of these figures (monotonic ns).
    pub at_ns: u64,
    pub cpu: CpuView,
    pub memory: MemoryView,
    pub gpu: GpuView,
    /// GPU energy per pid.
    pub pids: BTreeMap<u32, PidGpuEnergy>,
}

impl TelemetryView {
    pub(super) fn new(proc_root: &Path, gpu: &GpuState) -> TelemetryView {
        let gpu = match gpu {
            GpuState::Disabled => GpuView {
                state: "disabled",
                reason: Some("GPU telemetry switched off by configuration".to_owned()),
                ..GpuView::default()
            },
            GpuState::Unavailable(r) => GpuView {
                state: "unavailable",
                reason: Some(r.clone()),
                ..GpuView::default()
            },
            GpuState::Active(m) => GpuView {
                state: "active",
                source: Some(m.describe()),
                ..GpuView::default()
            },
        };
        TelemetryView {
            proc_root: proc_root.to_owned(),
            gpu,
            ..TelemetryView::default()
        }
    }

    pub(super) fn set_cpu(
        &mut self,
        util: Option<&Utilisation>,
        freqs: Vec<(u32, Frequency)>,
        error: Option<String>,
    ) {
        self.cpu.host_utilisation = util.and_then(|u| u.host).map(|w| w.fraction());
        self.cpu.error = error;
        self.cpu.cpus = freqs
            .into_iter()
            .map(|(cpu, f)| CpuEntry {
                cpu,
                utilisation: util
                    .and_then(|u| u.cpus.iter().find(|(c, _)| *c == cpu))
                    .and_then(|(_, w)| *w)
                    .map(|w| w.fraction()),
                frequency_khz: f.khz(),
                frequency_unavailable: match f {
                    Frequency::Khz(_) => None,
                    Frequency::Unavailable(r) => Some(r),
                },
            })
            .collect();
    }

    pub(super) fn apply_gpu(&mut self, g: &GpuTick, retention_ns: u64) {
        for d in &g.devices {
            let pos = match self.gpu.devices.iter().position(|v| v.index == d.index) {
                Some(p) => p,
                None => {
                    self.gpu.devices.push(GpuDeviceView {
                        index: d.index,
                        ..GpuDeviceView::default()
                    });
                    self.gpu.devices.len() - 1
                }
            };
            let Some(v) = self.gpu.devices.get_mut(pos) else {
                continue;
            };
            let a = &d.attribution;
            v.name.clone_from(&d.name);
            v.uuid.clone_from(&d.uuid);
            v.method = d.method;
            v.relative_uncertainty = d.relative_uncertainty;
            v.energy_uj = v.energy_uj.saturating_add(a.total_uj);
            v.attributed_uj = v.attributed_uj.saturating_add(a.attributed_uj);
            v.idle_uj = v.idle_uj.saturating_add(a.idle_uj);
            v.unattributed_uj = v.unattributed_uj.saturating_add(a.unattributed_uj);
            v.window_uj = a.total_uj;
            v.window_ns = d.span_ns;
            v.basis = a.basis;
            v.flags = d.flags;
            v.stale = d.stale;
            v.sample = d.sample;
            v.mig.clone_from(&d.mig);
            v.errors.clone_from(&d.errors);
            for &(pid, uj) in &a.per_pid {
                let e = self.pids.entry(pid).or_default();
                let slot = e.per_device_uj.entry(d.index).or_default();
                *slot = slot.saturating_add(uj);
                e.last_ns = g.at_ns;
            }
        }
        // Forget pids that have had no GPU energy for the retention window; keep their
        // energy in `expired_uj` so the device totals still conserve.
        let cutoff = g.at_ns.saturating_sub(retention_ns);
        let expired: Vec<u32> = self
            .pids
            .iter()
            .filter(|(_, e)| e.last_ns < cutoff)
            .map(|(&p, _)| p)
            .collect();
        for pid in expired {
            if let Some(e) = self.pids.remove(&pid) {
                for (dev, uj) in e.per_device_uj {
                    if let Some(v) = self.gpu.devices.iter_mut().find(|v| v.index == dev) {
                        v.expired_uj = v.expired_uj.saturating_add(uj);
                    }
                }
            }
        }
    }

    /// Adds the `cpu`, `memory` and `gpu` sections to a `status` answer object.
    pub fn merge_status(&self, answer: &mut Value) {
        merge(answer, self.status_json());
    }

    /// Adds `rss_bytes`, `gpu_energy_uj` and their companions to a `process` answer object.
    pub fn merge_process(&self, answer: &mut Value, pid: u32) {
        merge(answer, self.process_json(pid));
    }

    /// GPU µJ given to `pid` since the agent started (0 if none).
    pub fn gpu_energy_uj(&self, pid: u32) -> u64 {
        self.pids.get(&pid).map_or(0, PidGpuEnergy::total_uj)
    }

    /// The `cpu`, `memory` and `gpu` sections of a `status` answer.
    pub fn status_json(&self) -> Value {
        let mem = self.memory.host.as_ref().map(|m| {
            json!({
                "total_bytes": m.total_bytes,
                "free_bytes": m.free_bytes,
                "available_bytes": m.available_bytes,
                "used_bytes": m.used_bytes(),
                "cached_bytes": m.cached_bytes,
                "swap_total_bytes": m.swap_total_bytes,
                "swap_free_bytes": m.swap_free_bytes,
            })
        });
        json!({
            "cpu": self.cpu,
            "memory": {
                "host": mem,
                "error": self.memory.error,
                "dram_energy_uj": self.memory.dram_energy_uj,
                "dram_unavailable": self.memory.dram_energy_uj.is_none()
                    .then_some("no RAPL dram zone on this host"),
            },
            "gpu": {
                "state": self.gpu.state,
                "available": self.gpu.state == "active",
                "reason": self.gpu.reason,
                "source": self.gpu.source,
                "devices": self.gpu.devices,
                "processes": self.pids.len(),
            },
        })
    }

    /// The telemetry fields of a `process` answer: `rss_bytes` (read now from procfs; `null`
    /// with `rss_error` when it cannot be) and `gpu_energy_uj` (cumulative, all devices).
    pub fn process_json(&self, pid: u32) -> Value {
        let (rss, rss_error) = match cached_rss(&self.proc_root, pid) {
            Ok(Some(b)) => (Some(b), None),
            Ok(None) => (None, Some("no VmRSS (a kernel thread)".to_owned())),
            Err(e) => (None, Some(e.to_string())),
        };
        let per_device: Vec<Value> = self
            .pids
            .get(&pid)
            .map(|e| {
                e.per_device_uj
                    .iter()
                    .map(|(d, uj)| json!({"device": d, "energy_uj": uj}))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "rss_bytes": rss,
            "rss_error": rss_error,
            "gpu_energy_uj": self.gpu_energy_uj(pid),
            "gpu_devices": per_device,
            "gpu_state": self.gpu.state,
        })
    }
}

/// RSS read at most once a second per process: a client polling `process` in a loop must not
/// turn every answer into a `/proc` read (it halved the socket's throughput). Bounded: the
/// cache is emptied when it reaches 4,096 processes.
fn cached_rss(proc_root: &std::path::Path, pid: u32) -> Result<Option<u64>, String> {
    type Cache = std::collections::HashMap<
        (std::path::PathBuf, u32),
        (std::time::Instant, Result<Option<u64>, String>),
    >;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let key = (proc_root.to_path_buf(), pid);
    let now = std::time::Instant::now();
    {
        let guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, v)) = guard.as_ref().and_then(|c| c.get(&key))
            && now.duration_since(*at) < std::time::Duration::from_secs(1)
        {
            return v.clone();
        }
    }
    let v = read_rss(proc_root, pid).map_err(|e| e.to_string());
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(Cache::new);
    if cache.len() >= 4096 {
        cache.clear();
    }
    cache.insert(key, (now, v.clone()));
    v
}

/// Moves `from`'s fields into `into` (both objects; anything else is left alone).
fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}
