//! Host telemetry: CPU utilisation and frequency, memory, and GPUs with per-process GPU energy.
//!
//! [`Telemetry`] lives on the tick thread beside the energy meter: [`Telemetry::tick`] reads
//! `/proc/stat`, `/proc/meminfo` and every GPU at the tick instant, differences them and splits
//! each GPU's energy between processes ([`gpu::attrib`]). What the server needs is published
//! as a [`TelemetryView`] (cheap to clone, `Send + Sync`), whose
//! [`TelemetryView::status_json`] and [`TelemetryView::process_json`] back the `status` and
//! `process` answers. GPU telemetry never stops the agent: without the NVIDIA driver the GPU
//! section says `available: false` with the loader's reason. See `docs/telemetry.md`.

pub mod args;
pub mod cpu;
pub mod gpu;
pub mod memory;
pub mod render;
pub mod view;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Serialize;

pub use view::TelemetryView;

use crate::energy::{ZoneKind, meter::EnergyTick};
use gpu::{
    GpuSource,
    meter::{GpuMeter, GpuTick},
    nvml::NvmlSource,
};

/// CPU frequencies are read at most this often (1 s): a cpufreq file per CPU per 100 ms tick
/// costs more than the rest of the CPU section, and the figure is informational.
pub const FREQ_REFRESH_NS: u64 = 1_000_000_000;

/// A telemetry read failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A kernel file did not have the expected shape.
    #[error("cannot parse {what} (line {line}): {reason}")]
    Parse {
        what: &'static str,
        line: usize,
        reason: String,
    },
    /// No such process (it exited, or never existed).
    #[error("no process {pid} in procfs (it exited or never existed)")]
    NoProcess { pid: u32 },
}

/// Where GPU figures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuMode {
    /// No GPU telemetry (reported as disabled).
    Off,
    /// NVML, from this library path or the default names.
    Nvml { lib_path: Option<PathBuf> },
}

/// Paths and choices; every path is an argument so tests point them at temp trees.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// procfs root (`/proc`).
    pub proc_root: PathBuf,
    /// CPU sysfs root (`/sys/devices/system/cpu`).
    pub cpu_sysfs_root: PathBuf,
    /// GPU source.
    pub gpu: GpuMode,
    /// A pid's GPU energy is forgotten this long after it was last given any, ns.
    pub pid_retention_ns: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            proc_root: PathBuf::from("/proc"),
            cpu_sysfs_root: PathBuf::from("/sys/devices/system/cpu"),
            gpu: GpuMode::Nvml { lib_path: None },
            pid_retention_ns: 600_000_000_000,
        }
    }
}

/// The GPU side's state.
#[derive(Debug)]
pub enum GpuState {
    /// Switched off by configuration.
    Disabled,
    /// No usable GPU source; the reason.
    Unavailable(String),
    /// Measuring.
    Active(GpuMeter),
}

/// What one tick learned.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TelemetryTick {
    /// The tick instant (monotonic ns).
    pub at_ns: u64,
    /// CPU utilisation since the previous tick (`None` at the first or on a read error).
    pub cpu: Option<cpu::Utilisation>,
    /// Host memory now.
    pub memory: Option<memory::MemInfo>,
    /// GPUs, where active.
    pub gpu: Option<GpuTick>,
}

/// Per pid: cumulative GPU µJ per device index, and when it was last given any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PidGpuEnergy {
    /// µJ per device index.
    pub per_device_uj: BTreeMap<u32, u64>,
    /// Monotonic ns of the last tick that gave it energy.
    pub last_ns: u64,
}

impl PidGpuEnergy {
    /// Σ over devices.
    pub fn total_uj(&self) -> u64 {
        self.per_device_uj
            .values()
            .fold(0u64, |a, &b| a.saturating_add(b))
    }
}

const _: fn() = || {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Telemetry>();
    assert_send_sync::<TelemetryView>();
};

/// The telemetry aggregate (owned by the tick thread).
#[derive(Debug)]
pub struct Telemetry {
    cfg: TelemetryConfig,
    prev_stat: Option<cpu::ProcStat>,
    /// Frequencies and when they were read (refreshed every [`FREQ_REFRESH_NS`]).
    freqs: Option<(u64, Vec<(u32, cpu::Frequency)>)>,
    gpu: GpuState,
    view: TelemetryView,
}

impl Telemetry {
    /// Telemetry per `cfg`; loads NVML if asked. Never fails: a GPU that cannot be used is
    /// reported unavailable with the reason.
    pub fn new(cfg: TelemetryConfig) -> Telemetry {
        let gpu = match &cfg.gpu {
            GpuMode::Off => GpuState::Disabled,
            GpuMode::Nvml { lib_path } => {
                match NvmlSource::open(lib_path.as_deref().map(Path::as_os_str)) {
                    Ok(src) => {
                        tracing::info!(source = %src.describe(), "GPU telemetry active");
                        GpuState::Active(GpuMeter::new(Box::new(src)))
                    }
                    Err(e) => {
                        tracing::info!(reason = %e, "GPU telemetry unavailable");
                        GpuState::Unavailable(e.to_string())
                    }
                }
            }
        };
        Telemetry::with_gpu_state(cfg, gpu)
    }

    /// Telemetry over a given GPU source (tests, the fake).
    pub fn with_gpu_source(cfg: TelemetryConfig, source: Box<dyn GpuSource>) -> Telemetry {
        Telemetry::with_gpu_state(cfg, GpuState::Active(GpuMeter::new(source)))
    }

    fn with_gpu_state(cfg: TelemetryConfig, gpu: GpuState) -> Telemetry {
        let view = TelemetryView::new(&cfg.proc_root, &gpu);
        Telemetry {
            cfg,
            prev_stat: None,
            freqs: None,
            gpu,
            view,
        }
    }

    /// The GPU side's state.
    pub fn gpu_state(&self) -> &GpuState {
        &self.gpu
    }

    /// The latest published view (clone it into the server's shared state once per tick).
    pub fn view(&self) -> &TelemetryView {
        &self.view
    }

    /// Reads everything at `at_ns` (CLOCK_MONOTONIC) and updates the view. Never panics.
    pub fn tick(&mut self, at_ns: u64) -> TelemetryTick {
        let mut out = TelemetryTick {
            at_ns,
            ..TelemetryTick::default()
        };
        self.view.at_ns = at_ns;
        match cpu::read_proc_stat(&self.cfg.proc_root) {
            Ok(stat) => {
                if let Some(prev) = &self.prev_stat {
                    out.cpu = Some(cpu::utilisation(prev, &stat));
                }
                let fresh = self.freqs.as_ref().is_some_and(|(t, f)| {
                    at_ns.saturating_sub(*t) < FREQ_REFRESH_NS
                        && f.iter().map(|x| x.0).eq(stat.cpus.iter().map(|x| x.0))
                });
                if !fresh {
                    let f = stat
                        .cpus
                        .iter()
                        .map(|&(c, _)| (c, cpu::read_frequency(&self.cfg.cpu_sysfs_root, c)))
                        .collect();
                    self.freqs = Some((at_ns, f));
                }
                let freqs = self
                    .freqs
                    .as_ref()
                    .map(|(_, f)| f.clone())
                    .unwrap_or_default();
                self.view.set_cpu(out.cpu.as_ref(), freqs, None);
                self.prev_stat = Some(stat);
            }
            Err(e) => {
                self.prev_stat = None;
                self.view.set_cpu(None, Vec::new(), Some(e.to_string()));
            }
        }
        match memory::read_meminfo(&self.cfg.proc_root) {
            Ok(m) => {
                self.view.memory.host = Some(m.clone());
                self.view.memory.error = None;
                out.memory = Some(m);
            }
            Err(e) => {
                self.view.memory.host = None;
                self.view.memory.error = Some(e.to_string());
            }
        }
        if let GpuState::Active(meter) = &mut self.gpu {
            let g = meter.tick(at_ns);
            self.view.apply_gpu(&g, self.cfg.pid_retention_ns);
            out.gpu = Some(g);
        }
        out
    }

    /// Takes the RAPL DRAM zones' energy from the energy meter's tick (call once per tick
    /// after [`Telemetry::tick`]); where there is no DRAM zone the memory section says so.
    pub fn observe_energy(&mut self, energy: &EnergyTick) {
        let dram: Vec<_> = energy
            .zones
            .iter()
            .filter(|z| z.kind == ZoneKind::Dram)
            .collect();
        self.view.memory.dram_energy_uj = if dram.is_empty() {
            None
        } else {
            Some(
                dram.iter()
                    .fold(0u64, |a, z| a.saturating_add(z.cumulative_uj.0)),
            )
        };
    }

    /// `status` sections: `{cpu, memory, gpu}` (see [`TelemetryView::status_json`]).
    pub fn status_json(&self) -> serde_json::Value {
        self.view.status_json()
    }

    /// `process` fields for `pid`: `{rss_bytes, gpu_energy_uj, …}`.
    pub fn process_json(&self, pid: u32) -> serde_json::Value {
        self.view.process_json(pid)
    }
}
