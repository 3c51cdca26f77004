//! [`GpuSource`] over NVML via `nvml-wrapper`, which opens `libnvidia-ml.so` with `dlopen`
//! at run time: the agent builds and starts on machines without the NVIDIA driver, and
//! [`NvmlSource::open`] then returns [`GpuError::Unavailable`] with the loader's reason.
//!
//! Queries per tick and device: `nvmlDeviceGetTotalEnergyConsumption`, `…GetPowerUsage`,
//! `…GetUtilizationRates`, `…GetMemoryInfo`, `…GetProcessUtilization` (since the last sample
//! seen), `…GetComputeRunningProcesses` and, where MIG is enabled, the MIG device handles.

use std::ffi::OsStr;

use nvml_wrapper::{Device, Nvml, error::NvmlError};

use super::{DeviceSample, GpuDevice, GpuError, GpuProcess, GpuSource, MigInstance, ProcessSample};

/// Library names tried in order: the versioned soname every driver install has, then the
/// development symlink.
pub const LIBRARY_NAMES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so"];

/// NVML, loaded, with its devices.
pub struct NvmlSource {
    nvml: Nvml,
    devices: Vec<GpuDevice>,
    /// Per device: the newest process-sample timestamp seen (µs), for "since last seen".
    last_seen_us: Vec<u64>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("devices", &self.devices)
            .finish()
    }
}

fn query(device: u32, what: &'static str) -> impl Fn(NvmlError) -> GpuError {
    move |e| match e {
        NvmlError::NotSupported => GpuError::NotSupported { device, what },
        e => GpuError::Query {
            device,
            what,
            reason: e.to_string(),
        },
    }
}

impl NvmlSource {
    /// Loads NVML from `lib_path`, or from [`LIBRARY_NAMES`] in turn, and lists the devices.
    /// Never panics: no library, no driver or no device is `Unavailable` with the reason.
    pub fn open(lib_path: Option<&OsStr>) -> Result<NvmlSource, GpuError> {
        let names: Vec<&OsStr> = match lib_path {
            Some(p) => vec![p],
            None => LIBRARY_NAMES.iter().map(OsStr::new).collect(),
        };
        let mut reasons = Vec::new();
        let mut nvml = None;
        for name in names {
            match Nvml::builder().lib_path(name).init() {
                Ok(n) => {
                    nvml = Some(n);
                    break;
                }
                Err(e) => reasons.push(format!("{}: {e}", name.to_string_lossy())),
            }
        }
        let Some(nvml) = nvml else {
            return Err(GpuError::Unavailable {
                reason: format!(
                    "cannot load NVML ({}); install the NVIDIA driver to measure GPUs",
                    reasons.join("; ")
                ),
            });
        };
        let count = nvml.device_count().map_err(|e| GpuError::Unavailable {
            reason: format!("NVML loaded but cannot count devices: {e}"),
        })?;
        if count == 0 {
            return Err(GpuError::Unavailable {
                reason: "NVML loaded but reports no GPU".to_owned(),
            });
        }
        let mut devices = Vec::new();
        for index in 0..count {
            let d = nvml
                .device_by_index(index)
                .map_err(|e| GpuError::Unavailable {
                    reason: format!("cannot open GPU {index}: {e}"),
                })?;
            let max_power_mw = d
                .power_management_limit_constraints()
                .map(|c| u64::from(c.max_limit))
                .or_else(|_| d.enforced_power_limit().map(u64::from))
                .unwrap_or(0);
            devices.push(GpuDevice {
                index,
                name: d.name().unwrap_or_else(|_| format!("GPU {index}")),
                uuid: d.uuid().unwrap_or_default(),
                max_power_mw,
            });
        }
        let n = devices.len();
        Ok(NvmlSource {
            nvml,
            devices,
            last_seen_us: vec![0; n],
        })
    }

    fn dev(&self, device: u32) -> Result<Device<'_>, GpuError> {
        self.nvml
            .device_by_index(device)
            .map_err(query(device, "device handle"))
    }
}

impl GpuSource for NvmlSource {
    fn describe(&self) -> String {
        let driver = self.nvml.sys_driver_version().unwrap_or_default();
        format!("nvml (driver {driver}, {} devices)", self.devices.len())
    }

    fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    fn energy_mj(&mut self, device: u32) -> Result<u64, GpuError> {
        self.dev(device)?
            .total_energy_consumption()
            .map_err(query(device, "total energy consumption"))
    }

    fn sample(&mut self, device: u32) -> Result<DeviceSample, GpuError> {
        let d = self.dev(device)?;
        let util = d.utilization_rates().ok();
        let mem = d.memory_info().ok();
        Ok(DeviceSample {
            power_mw: d.power_usage().ok().map(u64::from),
            gpu_util_pct: util.as_ref().map(|u| u.gpu),
            mem_util_pct: util.as_ref().map(|u| u.memory),
            memory_used_bytes: mem.as_ref().map(|m| m.used),
            memory_total_bytes: mem.as_ref().map(|m| m.total),
        })
    }

    fn process_samples(&mut self, device: u32) -> Result<Vec<ProcessSample>, GpuError> {
        let since = self.last_seen_us.get(device as usize).copied().unwrap_or(0);
        let samples = match self.dev(device)?.process_utilization_stats(since) {
            Ok(s) => s,
            // No sample newer than `since`.
            Err(NvmlError::NotFound) => Vec::new(),
            Err(e) => return Err(query(device, "process utilization")(e)),
        };
        let out: Vec<ProcessSample> = samples
            .into_iter()
            .filter(|s| s.timestamp > since)
            .map(|s| ProcessSample {
                pid: s.pid,
                timestamp_us: s.timestamp,
                sm_util_pct: s.sm_util,
            })
            .collect();
        if let (Some(slot), Some(max)) = (
            self.last_seen_us.get_mut(device as usize),
            out.iter().map(|s| s.timestamp_us).max(),
        ) {
            *slot = (*slot).max(max);
        }
        Ok(out)
    }

    fn processes(&mut self, device: u32) -> Result<Vec<GpuProcess>, GpuError> {
        use nvml_wrapper::enums::device::UsedGpuMemory;
        let d = self.dev(device)?;
        let list = d
            .running_compute_processes()
            .map_err(query(device, "running compute processes"))?;
        Ok(list
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_memory_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                },
                gpu_instance_id: p.gpu_instance_id,
            })
            .collect())
    }

    fn mig_instances(&mut self, device: u32) -> Result<Vec<MigInstance>, GpuError> {
        let d = self.dev(device)?;
        match d.mig_mode() {
            Ok(m) if m.current == 1 => {}
            // MIG off, or a board without MIG: no instances, not an error.
            _ => return Ok(Vec::new()),
        }
        let max = d
            .mig_device_count()
            .map_err(query(device, "MIG device count"))?;
        let mut out = Vec::new();
        for index in 0..max {
            // Slots without an instance answer NotFound.
            let Ok(m) = d.mig_device_by_index(index) else {
                continue;
            };
            let mem = m.memory_info().ok();
            out.push(MigInstance {
                index,
                uuid: m.uuid().unwrap_or_default(),
                memory_used_bytes: mem.as_ref().map(|x| x.used),
                memory_total_bytes: mem.as_ref().map(|x| x.total),
            });
        }
        Ok(out)
    }
}
